"""Tell "no network yet" from "network up, but no metadata service".

Asked only after a request to the service failed, so pyroute2's import cost
stays off the happy path.
"""

import errno
import logging

log = logging.getLogger(__name__)


def _quiet_pyroute2():
    """pyroute2 sets its own loggers to DEBUG on import and narrates its
    netlink traffic (and asyncio its event loop); --verbose is for what the
    agent found, not for that."""
    for name in list(logging.root.manager.loggerDict):
        if name == "asyncio" or name.startswith("pyroute2"):
            logging.getLogger(name).setLevel(logging.WARNING)


def describe(address):
    """One sentence on how the kernel would reach ``address`` right now."""
    try:
        from pyroute2 import IPRoute
    except ImportError:
        return "network state unknown (pyroute2 is not installed)"
    _quiet_pyroute2()
    try:
        with IPRoute() as ipr:
            try:
                routes = ipr.route("get", dst=address)
            except Exception as e:  # pyroute2's NetlinkError carries an errno
                code = getattr(e, "code", None)
                if code in (errno.ENETUNREACH, errno.EHOSTUNREACH):
                    return f"no network yet: no route to {address}"
                return f"no network yet: route lookup for {address} failed ({e})"
            if not routes:
                return f"no network yet: no route to {address}"
            r = routes[0]
            oif = r.get_attr("RTA_OIF")
            src = r.get_attr("RTA_PREFSRC")
            gw = r.get_attr("RTA_GATEWAY")
            name = "?"
            for link in ipr.get_links(oif):
                name = link.get_attr("IFLA_IFNAME")
            if not src:
                return f"no network yet: {name} has no address"
            via = f" via {gw}" if gw else ""
            return (f"network is up ({src} on {name}{via}) "
                    f"but the metadata service at {address} does not answer")
    except OSError as e:
        return f"network state unknown ({e})"
