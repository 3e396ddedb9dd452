"""The network from network_data.json or network-config, in the image's own
network stack.

Once per instance: the document's links are matched to this machine's NICs
by MAC address or name (`interfaces`), the stack the image uses is found (`stack`),
its renderer writes that stack's native files, and the image's own files
for the same NICs are moved aside (`image_files`, `apply`).  On a
config-drive boot this runs in the local stage, before network-pre.target,
so the stack brings the NICs up as described.  Later (the metadata service
was reached, so the network is up) the files are written all the same and
what the document adds is also configured live (`live`), without taking
away anything that works now.

Never less reachable than without the agent: a NIC the document does not
describe is not touched; an ``ipv4_dhcp`` network stays DHCP; a NIC whose
configuration the agent cannot take over in full is left as it is, with a
warning saying why.  ``[network] enabled = no`` or ``guestagent.network=off``
on the kernel command line turn the step off.
"""

import logging

from ...config import NETWORK_RENDERERS
from ...metadata import netconfig as nc
from .. import PER_INSTANCE, Skip
from . import apply as applying
from . import image_files
from .interfaces import resolve
from .plan import Plan
from .stack import detect

log = logging.getLogger(__name__)

FREQUENCY = PER_INSTANCE
NIC_WAIT = 5.0
CMDLINE_OFF = ("guestagent.network=off", "guestagent.network=disabled")


def run(ctx):
    system = ctx.system
    if not ctx.config.getbool("network", "enabled"):
        raise Skip("[network] enabled = no")
    off = [w for w in system.kernel_cmdline().split() if w in CMDLINE_OFF]
    if off:
        raise Skip(f"{off[0]} is on the kernel command line")
    renderer, why = detect(system, ctx.config.get("network", "renderer").strip())
    config = ctx.metadata.network
    if config is None or not config.links:
        return _nothing_to_render(system, renderer,
                                  "the metadata describes no network (no "
                                  f"{config.source if config else 'network_data.json'} "
                                  "links)")
    # early in boot a NIC's driver may still be loading (udev is only asked
    # to start before the local stage)
    ifaces = resolve(config, system, wait=NIC_WAIT if system.live else 0)
    if not ifaces:
        return _nothing_to_render(system, renderer,
                                  f"no link in {config.source} matches an interface here")
    if renderer is None:
        log.warning("not configuring the network: %s", why)
        raise Skip(why)
    log.info("network stack: %s (%s)", renderer, why)
    plan, ifaces = build_plan(system, renderer, ifaces, config)
    if not ifaces:
        raise Skip("every described interface stays as the image configures it")
    changes = applying.apply(system, plan)
    if system.live and ctx.stage.network_up:
        from . import live
        changes += live.configure(ifaces)
    return changes


def _nothing_to_render(system, renderer, why):
    """A new instance with nothing to render still must not keep an earlier
    instance's addresses: the agent's own files from then are moved aside."""
    if renderer is None:
        raise Skip(why)
    plan = Plan(renderer)
    for path in image_files.stale(system, [renderer_module(renderer).DIR], plan):
        plan.replace(path)
    changes = applying.apply(system, plan)
    if not changes:
        raise Skip(why)
    log.info("%s; the earlier instance's network files are moved aside", why)
    return changes


def build_plan(system, renderer, ifaces, config=None):
    """(Plan, the interfaces it configures) for ``renderer``; ``config`` (the
    NetworkConfig) names the document in the files and may carry netplan's."""
    mod = renderer_module(renderer)
    aside = []
    if renderer == "netplan":
        left, aside = image_files.netplan(system, ifaces, mod.PATH, mod.DIR)
        ifaces = without(ifaces, left)
        document = config.netplan if config is not None else ""
        if document and left:
            log.info("not handing the network-config to netplan as it is: an image file "
                     "also describes %s; writing what the agent read instead",
                     ", ".join(sorted(left)))
            document = ""
        plan = mod.render(ifaces, document)
    else:
        plan = mod.render(ifaces)
    if config is not None:
        plan.retitle(config.source)
    for path in aside:
        plan.replace(path)
    if renderer == "ifupdown":
        image_files.ifupdown(system, [it.name for it in ifaces], plan, mod.PATH)
    elif renderer == "ifcfg":
        image_files.ifcfg(system, ifaces, plan, mod.DIR)
    elif renderer == "networkmanager":
        image_files.networkmanager(system, ifaces, plan, mod.DIR)
    for path in image_files.stale(system, [mod.DIR], plan):
        plan.replace(path)
    return plan, ifaces


def renderer_module(renderer):
    """The module that writes ``renderer``'s files (a name in NETWORK_RENDERERS).
    Its ``DIR`` is where they live, so where an earlier instance's are found."""
    from ... import named_module
    return named_module(f"{__name__}.render_{renderer}")


def own_dirs():
    """Where the agent's files for every stack live (`guestagent clean --network`
    looks in all of them)."""
    return [renderer_module(name).DIR for name in NETWORK_RENDERERS]


def without(ifaces, names):
    """``ifaces`` minus ``names`` and whatever stands on them (bonds, VLANs)."""
    if not names:
        return ifaces
    drop = set(names)
    changed = True
    while changed:
        changed = False
        for it in ifaces:
            if it.name in drop:
                continue
            if (it.kind in (nc.BOND, nc.BRIDGE) and drop & set(it.members)) or \
                    (it.kind == nc.VLAN and it.parent in drop) or it.master in drop:
                drop.add(it.name)
                changed = True
    for it in ifaces:
        it.vlans = [v for v in it.vlans if v not in drop]
    return [it for it in ifaces if it.name not in drop]
