"""Configure the document's additions on the running system, through netlink.

Used when the network is already up (the metadata service answered, or a
manual run): the files the renderer wrote take effect at the next start of
the network stack, and this makes what they add true now.  It only adds:
missing bonds, bridges and VLANs, static addresses, routes, MTU, links up.  It
never removes an address or route, never adds a second default route next
to one that works, and never enslaves a NIC that carries addresses (that
would cut the network that reached the metadata service): such changes are
left to the next boot, and the step says so.

pyroute2 is imported only here, only when this runs.
"""

import ipaddress
import logging

from ...metadata import netconfig as nc

log = logging.getLogger(__name__)

BOND_MODE_NUMBERS = {"balance-rr": 0, "active-backup": 1, "balance-xor": 2, "broadcast": 3,
                     "802.3ad": 4, "balance-tlb": 5, "balance-alb": 6}


def configure(ifaces):
    try:
        from pyroute2 import IPRoute
    except ImportError:
        log.warning("pyroute2 is not installed: the network files are written, but "
                    "nothing is configured until the network stack restarts")
        return []
    changes = []
    with IPRoute() as ipr:
        for it in ifaces:
            try:
                changes += _one(ipr, it)
            except Exception as e:  # noqa: BLE001 - one interface must not stop the next
                log.warning("%s: live configuration failed (%s); the written files apply "
                            "when the network stack next starts", it.name, e)
    return changes


def _index(ipr, name):
    found = ipr.link_lookup(ifname=name)
    return found[0] if found else None


def _addresses(ipr, index):
    return {f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}" for a in ipr.get_addr(index=index)}


def _has_global_address(ipr, index):
    return any(a["scope"] == 0 for a in ipr.get_addr(index=index))


def _one(ipr, it):
    changes = []
    index = _index(ipr, it.name)
    if it.kind in (nc.BOND, nc.BRIDGE) and index is None:
        members = [_index(ipr, m) for m in it.members]
        busy = [m for m, i in zip(it.members, members) if i is None or
                _has_global_address(ipr, i)]
        if busy:
            log.warning("%s: not creating the %s now: %s carries the running network "
                        "(or is missing); it is created at the next boot", it.name, it.kind,
                        ", ".join(busy))
            return []
        if it.kind == nc.BOND:
            kw = {"bond_mode": BOND_MODE_NUMBERS[it.bond_mode]}
            if "miimon" in it.bond_options:
                kw["bond_miimon"] = it.bond_options["miimon"]
        else:
            kw = {"br_stp_state": 1 if it.bridge_options.get("stp") else 0}
            if "forward_delay" in it.bridge_options:  # in centiseconds
                kw["br_forward_delay"] = it.bridge_options["forward_delay"] * 100
        ipr.link("add", ifname=it.name, kind=it.kind, **kw)
        index = _index(ipr, it.name)
        for i in members:
            if it.kind == nc.BOND:
                ipr.link("set", index=i, state="down")  # the kernel enslaves only those
            ipr.link("set", index=i, master=index)
            ipr.link("set", index=i, state="up")
        changes.append(f"{it.name}: created the {it.kind} of {', '.join(it.members)} "
                       f"(live)")
    if it.kind == nc.VLAN and index is None:
        parent = _index(ipr, it.parent)
        if parent is None:
            log.warning("%s: its parent %s is not here; not creating it now", it.name,
                        it.parent)
            return []
        kw = {"address": it.mac} if it.mac else {}
        ipr.link("add", ifname=it.name, kind="vlan", link=parent, vlan_id=it.vlan_id, **kw)
        index = _index(ipr, it.name)
        changes.append(f"{it.name}: created VLAN {it.vlan_id} on {it.parent} (live)")
    if index is None:
        log.warning("%s: not present now; it is configured at the next boot", it.name)
        return changes
    link = ipr.get_links(index)[0]
    mtu = it.mtu_to_set()
    if mtu and link.get_attr("IFLA_MTU") != mtu:
        ipr.link("set", index=index, mtu=mtu)
        changes.append(f"{it.name}: set mtu {mtu} (live)")
    if not link["flags"] & 1:  # IFF_UP
        ipr.link("set", index=index, state="up")
        changes.append(f"{it.name}: brought the link up (live)")
    if it.master:
        return changes
    have = _addresses(ipr, index)
    for s in it.static():
        if s.address not in have:
            iface = ipaddress.ip_interface(s.address)
            ipr.addr("add", index=index, address=str(iface.ip),
                     prefixlen=iface.network.prefixlen)
            changes.append(f"{it.name}: added {s.address} (live)")
    for family, r in it.routes():
        changes += _route(ipr, it, index, family, r)
    for s in it.subnets:
        if s.method == nc.DHCP and not _has_global_address(ipr, index):
            log.info("%s: IPv%d by DHCP starts when the network stack next brings it up",
                     it.name, s.family)
    return changes


RTNH_F_ONLINK = 4  # linux/rtnetlink.h


def _route(ipr, it, index, family, r):
    import socket
    fam = socket.AF_INET if family == 4 else socket.AF_INET6
    net = ipaddress.ip_network(r.destination)
    existing = ipr.get_routes(family=fam, dst_len=net.prefixlen, table=254)
    for e in existing:
        dst = e.get_attr("RTA_DST") or ("0.0.0.0" if family == 4 else "::")
        if dst == str(net.network_address):
            if r.default:
                log.info("%s: a default route for IPv%d is already in place; keeping it "
                         "(the document's, via %s, applies from the next boot)", it.name,
                         family, r.gateway)
                return []
            if e.get_attr("RTA_GATEWAY") == r.gateway:
                return []
    kw = {"dst": str(net.network_address), "dst_len": net.prefixlen} if not r.default else {}
    if r.metric is not None:
        kw["priority"] = r.metric
    if r.on_link:
        kw["flags"] = RTNH_F_ONLINK  # the gateway is outside every prefix on the link
    ipr.route("add", family=fam, gateway=r.gateway, oif=index, **kw)
    return [f"{it.name}: added the route to {r.destination} via {r.gateway} (live)"]
