"""cloud-init's network-config, version 1 or 2, made into the `netconfig` model.

NoCloud seeds (`network-config`) and Hetzner's metadata carry it.  The
document comes parsed (YAML or JSON), bare (``version:`` at the top, as
cloud-localds, Proxmox VE and Multipass write it) or under a top-level
``network:`` key (as in cloud.cfg and netplan files).  ``config: disabled``
means: no network configuration.  Version 1 is read by
`network_config_v1`, version 2 (netplan's schema) by `network_config_v2`.

What cannot be used is dropped with one warning naming it, and what
depends on it goes with it; nothing here raises on a bad document.  Values
are checked the way network_data.json's are (`network_data`), so renderers
can put any value of the model into a file.
"""

import fnmatch
import ipaddress
import logging
import re

from ..log import shown
from ..metadata import netconfig as nc
from ..metadata.dns_names import BadName, check_name
from .network_data import mac_address

log = logging.getLogger(__name__)

# what the renderers may put into a file name or a stanza: the kernel's
# IFNAMSIZ less one, no slash, no space, no leading dot or dash
_IFNAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}")
_NAME_GLOB = re.compile(r"[A-Za-z0-9_.*?\[\]!-]{1,64}")


def parse(document):
    """A `NetworkConfig` from a network-config document, or None when it
    describes none (absent, empty, ``config: disabled``, or unusable)."""
    if document is None:
        return None
    if not isinstance(document, dict):
        log.warning("ignoring network-config: expected a mapping, got %s",
                    type(document).__name__)
        return None
    doc = document
    if "network" in doc and "version" not in doc:
        doc = doc["network"]
        if doc is None:
            return None
        if not isinstance(doc, dict):
            log.warning("ignoring network-config: network is %s, not a mapping",
                        type(doc).__name__)
            return None
    if not doc:
        return None
    if doc.get("config") == "disabled":
        log.info("network-config says config: disabled; the network is left as the image "
                 "configures it")
        return None
    version = doc.get("version")
    if isinstance(version, str) and version.strip() in ("1", "2"):
        version = int(version)  # Multipass's yaml-cpp writes it as text at times
    if version == 1 and not isinstance(version, bool):
        from .network_config_v1 import parse_v1
        return parse_v1(doc)
    if version == 2 and not isinstance(version, bool):
        from .network_config_v2 import parse_v2
        return parse_v2(doc)
    log.warning("ignoring network-config: version %s is not 1 or 2", shown(version))
    return None


class Problems:
    """Warnings about a document, counted: a v2 document with none is handed to
    netplan as it is; one with bad values is rendered from what could be read."""

    def __init__(self, source):
        self.source = source
        self.bad = 0

    def invalid(self, fmt, *args):
        """A value that is wrong: it is left out, and netplan is not handed it either."""
        self.bad += 1
        log.warning(f"{self.source}: {fmt}", *args)

    def unsupported(self, fmt, *args):
        """Valid, but not in the agent's model (netplan still gets it verbatim)."""
        log.warning(f"{self.source}: {fmt}", *args)


class Unsupported(ValueError):
    """Valid in the format, but not something the agent's model can hold."""


def report(problems, err, fmt, *args):
    """One warning for ``err``: an Unsupported one leaves netplan its document."""
    if isinstance(err, Unsupported):
        problems.unsupported(fmt, *args, err)
    else:
        problems.invalid(fmt, *args, err)


def mac(value):
    """A checked MAC address.  An unquoted MAC whose groups are all decimal (and
    below 60 after the first) is a base-60 integer to a YAML 1.1 loader such as
    PyYAML (``52:54:00:12:34:56``); it is turned back into the MAC it was."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        groups = []
        for _ in range(5):
            value, rest = divmod(value, 60)
            groups.append(rest)
        if value < 100:
            value = ":".join(f"{g:02d}" for g in [value] + groups[::-1])
    return mac_address(value)


def unmangled(doc):
    """``doc`` with every ``macaddress`` a YAML loader read as a number written as
    the MAC it was (for netplan, which would refuse the number)."""
    if isinstance(doc, dict):
        return {k: (_unmangled_mac(v) if k == "macaddress" else unmangled(v))
                for k, v in doc.items()}
    if isinstance(doc, list):
        return [unmangled(v) for v in doc]
    return doc


def _unmangled_mac(value):
    # only a number a YAML loader made of a MAC; anything else netplan judges
    if not isinstance(value, int) or isinstance(value, bool):
        return unmangled(value)
    try:
        return mac(value)
    except ValueError:
        return value


def ifname(value, what):
    """A name a renderer may use for an interface; ValueError naming ``what``."""
    if not isinstance(value, str) or not _IFNAME.fullmatch(value):
        raise ValueError(f"{what} {shown(value)} is not an interface name "
                         f"(letters, digits, _ . -; at most 15)")
    return value


def name_glob(value, what):
    if not isinstance(value, str) or not _NAME_GLOB.fullmatch(value):
        raise ValueError(f"{what} {shown(value)} is not an interface name or pattern")
    return value


def matches(pattern, name):
    """netplan's ``match: name``: a shell-style glob over kernel names."""
    return fnmatch.fnmatchcase(name, pattern)


def as_list(value):
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def nameservers(value, what, problems):
    out = []
    for v in as_list(value):
        try:
            if not isinstance(v, str):
                raise ValueError
            addr = str(ipaddress.ip_address(v.strip()))
        except ValueError:
            problems.invalid("ignoring DNS server %s in %s: not an IP address", shown(v), what)
            continue
        if addr not in out:
            out.append(addr)
    return out


def search_domains(value, what, problems):
    out = []
    for v in as_list(value):
        try:
            name = check_name(v, fix_underscores=False)
        except BadName as e:
            problems.invalid("ignoring DNS search domain %s in %s: %s", shown(v), what, e)
            continue
        if name not in out:
            out.append(name)
    return out


def metric(value):
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 4294967295:
        raise ValueError(f"metric {shown(value)} is not a number (0-4294967295)")
    return value


def make_route(destination, gateway, route_metric=None, on_link=False):
    """A checked `Route`; ``destination`` is a network (CIDR, or a bare address for
    a host route) or "default"; the family follows the gateway for "default"."""
    try:
        if not isinstance(gateway, str):
            raise ValueError
        via = ipaddress.ip_address(gateway.strip())
    except ValueError:
        raise ValueError(f"gateway {shown(gateway)} is not an IP address") from None
    if destination in ("default", None):
        dest = ipaddress.ip_network("0.0.0.0/0" if via.version == 4 else "::/0")
    else:
        try:
            if not isinstance(destination, str):
                raise ValueError
            dest = ipaddress.ip_network(destination.strip(), strict=False)
        except ValueError:
            raise ValueError(f"route destination {shown(destination)} is not a network") \
                from None
    if dest.version != via.version:
        raise ValueError(f"route to {dest} via {via} mixes IPv4 and IPv6")
    return nc.Route(str(dest), str(via), metric(route_metric), bool(on_link))


def attach_route(route, candidates):
    """The static network (of ``candidates``) a route belongs on: the one whose
    prefix holds the gateway; for an on-link route or a link-local IPv6 gateway,
    the first of its family.  None when there is none."""
    family = 6 if ":" in route.gateway else 4
    same = [s for s in candidates if s.method == nc.STATIC and s.family == family]
    gateway = ipaddress.ip_address(route.gateway)
    for s in same:
        if gateway in ipaddress.ip_interface(s.address).network:
            return s
    if same and (route.on_link or gateway.is_link_local):
        return same[0]
    return None


def gateway_route(gateway, subnet):
    """The default route of a static network's ``gateway``; on-link when the
    gateway lies outside the network (a /32 with a router beside it), which the
    kernel refuses otherwise."""
    route = make_route("default", gateway)
    family = 6 if ":" in route.gateway else 4
    if family != subnet.family:
        raise ValueError(f"gateway {route.gateway} is not IPv{subnet.family}")
    via = ipaddress.ip_address(route.gateway)
    if not via.is_link_local and via not in ipaddress.ip_interface(subnet.address).network:
        route.on_link = True
    return route


def bridge_link(link_id, ports, stp, forward_delay, mac_value, mtu):
    """A bridge `Link` of ``ports`` (link ids); ValueError naming a bad value."""
    if not isinstance(ports, list) or not all(isinstance(p, str) and p for p in ports):
        raise ValueError("its ports must be a list of interface names")
    options = {"stp": _flag(stp, "stp")}
    if forward_delay is not None:
        text = str(forward_delay).strip().lower()
        text = text[:-1] if text.endswith("s") else text
        if isinstance(forward_delay, bool) or not text.isdigit() or int(text) > 30:
            raise ValueError(f"forward delay {shown(forward_delay)} is not 0-30 seconds")
        options["forward_delay"] = int(text)
    return nc.Link(link_id, nc.BRIDGE, mac(mac_value), mtu, vif_type="bridge",
                   name=ifname(link_id, "the name"), bridge_links=ports,
                   bridge_options=options)


def _flag(value, what):
    if value in (True, "on", "yes", "true", 1):
        return True
    if value in (False, "off", "no", "false", 0):
        return False
    raise ValueError(f"{what} {shown(value)} is not on or off")
