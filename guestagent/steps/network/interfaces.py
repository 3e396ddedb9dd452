"""The document's links matched to this machine's interfaces, by MAC address
or by name.

A NIC is found in /sys/class/net (under the root): the interface with the
link's MAC that is not itself a bond, VLAN or bridge; or, for a
network-config link without a MAC, the interfaces whose kernel name matches
its name or glob (each of them is configured, as netplan does; only one
when the link has a static address).  A NIC keeps its kernel name.  Bonds
and VLANs get the document's name when it is free, else names of the
agent's choosing (``bond0``, ``eth0.100``).  A link whose NIC is missing is
warned about and dropped, with what stands on it.
"""

import fnmatch
import logging
import time

from ...log import shown
from ...metadata import netconfig as nc

log = logging.getLogger(__name__)

SYS_NET = "/sys/class/net"
IFNAMSIZ = 15


class Iface:
    """One interface to configure: what a renderer needs and nothing more."""

    def __init__(self, name, kind, link, subnets):
        self.name = name
        self.kind = kind            # phy, bond, vlan, bridge
        self.mac = link.mac         # phy: its MAC; others: the one to set, or ""
        self.mtu = link.mtu
        self.subnets = subnets
        self.bond_mode = link.bond_mode
        self.bond_options = dict(link.bond_options)
        self.members = []           # bond, bridge: member (port) interface names
        self.master = ""            # in a bond or bridge: its name
        self.master_kind = ""       # ... and which: bond or bridge
        self.bridge_options = dict(link.bridge_options)
        self.dhcp_decides_mtu = True  # network_data.json's rule; see mtu_to_set
        self.parent = ""            # vlan: the parent's name
        self.vlan_id = link.vlan_id
        self.vlans = []             # names of the VLANs on this interface

    def by_family(self, family):
        return [s for s in self.subnets if s.family == family]

    def static(self, family=None):
        return [s for s in self.subnets if s.method == nc.STATIC
                and (family is None or s.family == family)]

    def methods(self, family):
        return {s.method for s in self.subnets if s.family == family}

    def nameservers(self):
        out = []
        for s in self.subnets:
            out += [n for n in s.nameservers if n not in out]
        return out

    def search(self):
        out = []
        for s in self.subnets:
            out += [n for n in s.search if n not in out]
        return out

    def routes(self):
        """(subnet family, Route) of the static networks, in document order."""
        return [(s.family, r) for s in self.static() for r in s.routes]

    def mtu_to_set(self):
        """The document's MTU, unless DHCP decides it: Nova's network_data.json
        states the network's MTU, which its DHCP server hands out too.  A
        network-config's ``mtu`` is the user's own and is set with DHCP as well,
        as cloud-init and netplan set it."""
        if self.mtu and self.dhcp_decides_mtu and nc.DHCP in self.methods(4):
            return None
        return self.mtu

    def describe(self):
        parts = [str(s.address) if s.method == nc.STATIC else f"ipv{s.family} {s.method}"
                 for s in self.subnets]
        if self.kind == nc.BOND:
            parts.insert(0, f"bond of {', '.join(self.members)}")
        if self.kind == nc.VLAN:
            parts.insert(0, f"VLAN {self.vlan_id} on {self.parent}")
        if self.kind == nc.BRIDGE:
            parts.insert(0, f"bridge of {', '.join(self.members) or 'no ports'}")
        if self.master:
            parts.append(f"in {self.master}")
        if self.mtu_to_set():
            parts.append(f"mtu {self.mtu_to_set()}")
        return ", ".join(parts) or "link up, no addresses"

    def __repr__(self):
        return f"Iface({self.name}, {self.kind})"


def kernel_nics(system):
    """{mac: [names]} of the interfaces that can stand for a NIC."""
    found = {}
    try:
        names = system.listdir(SYS_NET)
    except OSError:
        return found
    for name in names:
        d = f"{SYS_NET}/{name}"
        if name == "lo" or any(system.exists(f"{d}/{x}") for x in ("bonding", "bridge")):
            continue
        uevent = system.read_attribute(f"{d}/uevent")
        if "DEVTYPE=vlan" in uevent or "DEVTYPE=bond" in uevent or "DEVTYPE=bridge" in uevent:
            continue
        mac = system.read_attribute(f"{d}/address").strip().lower()
        # a bond member shows the bond's MAC; its own is the permanent one
        perm = system.read_attribute(f"{d}/bonding_slave/perm_hwaddr").strip().lower()
        for m in {mac, perm} - {""}:
            found.setdefault(m, []).append(name)
    return found


def resolve(config, system, wait=0.0, sleep=time.sleep, clock=time.monotonic):
    """[Iface] in an order a stack can bring them up: NICs, bonds, VLANs.

    ``wait``: seconds to give NICs still missing (early in boot, udev may
    not have loaded their driver yet); 0 looks once.
    """
    src = config.source
    deadline = clock() + wait
    nics = kernel_nics(system)
    while _missing(config, nics) and clock() < deadline:
        sleep(0.1)
        nics = kernel_nics(system)
    if _missing(config, nics) and wait:
        log.info("waited %.0f s for the NICs %s", wait, ", ".join(_missing(config, nics)))
    links = [nc.Link.from_dict(x.to_dict()) for x in config.links]  # a glob may add twins
    subnets = {x.id: config.subnets_on(x.id) for x in links}
    names, macs = {}, {}
    for link in list(links):
        if link.kind != nc.PHY:
            continue
        candidates = _candidates(link, nics, src)
        if not candidates:
            continue
        if len(candidates) > 1 and not link.match_name:
            log.warning("%s link %s: several interfaces have MAC %s (%s); using %s", src,
                        shown(link.id), link.mac, ", ".join(candidates), candidates[0])
            candidates = candidates[:1]
        free = [c for c in candidates if c not in names.values()]
        if not free:
            log.warning("%s link %s: interface %s is already taken by another link; "
                        "leaving it out", src, shown(link.id), candidates[0])
            continue
        if len(free) > 1 and any(s.method == nc.STATIC for s in subnets[link.id]):
            log.warning("%s link %s matches %s; one static address belongs on one: using "
                        "%s", src, shown(link.id), ", ".join(free), free[0])
            free = free[:1]
        names[link.id], macs[link.id] = free[0], link.mac or _mac_of(system, free[0])
        for extra in free[1:]:  # a glob that matches several NICs configures each
            twin = nc.Link.from_dict(dict(link.to_dict(), id=f"{link.id} ({extra})"))
            links.append(twin)
            subnets[twin.id] = [nc.Subnet.from_dict(dict(x.to_dict(), link=twin.id))
                                for x in subnets[link.id]]
            names[twin.id], macs[twin.id] = extra, _mac_of(system, extra)
            for bond in links:
                if bond.kind == nc.BOND and link.id in bond.bond_links:
                    bond.bond_links = bond.bond_links + [twin.id]
        if link.name and link.name != free[0]:
            log.info("%s link %s is %s here; the document's name %s is applied by netplan "
                     "only", src, shown(link.id), free[0], shown(link.name))
    _name_bonds(links, names, nics, src)
    pending = [x for x in links if x.kind in (nc.VLAN, nc.BRIDGE)]
    while True:  # a VLAN may stand on a bridge, a bridge on VLANs: name what can be named
        ready = [x for x in pending if (x.vlan_link in names if x.kind == nc.VLAN
                                        else all(p in names for p in x.bridge_links))]
        if not ready:
            break
        for link in ready:
            pending.remove(link)
            names[link.id] = _virtual_name(link, names, nics)
    for link in pending:
        if link.kind == nc.BRIDGE:
            _leave_members(link, links, names, "bridge", "port", src)
    for link in pending + [x for x in links if x.kind == nc.VLAN and x.id in names
                           and x.vlan_link not in names]:
        if link.kind == nc.VLAN:
            names.pop(link.id, None)
            log.warning("%s VLAN %s: its parent link is not here; leaving it out", src,
                        shown(link.id))
    ifaces = {}
    for link in links:
        if link.id in names:
            it = Iface(names[link.id], link.kind, link, subnets[link.id])
            it.mac = macs.get(link.id, it.mac)
            it.dhcp_decides_mtu = src == nc.NETWORK_DATA
            ifaces[link.id] = it
    for link in links:
        it = ifaces.get(link.id)
        if it is None:
            continue
        if link.kind in (nc.BOND, nc.BRIDGE):
            ports = link.bond_links if link.kind == nc.BOND else link.bridge_links
            it.members = [names[m] for m in ports]
            for m in ports:
                ifaces[m].master, ifaces[m].master_kind = it.name, link.kind
                if ifaces[m].subnets:
                    log.warning("%s: %s is in %s %s; its own networks are ignored", src,
                                ifaces[m].name, link.kind, it.name)
                    ifaces[m].subnets = []
        if link.kind == nc.VLAN:
            it.parent = names[link.vlan_link]
            ifaces[link.vlan_link].vlans.append(it.name)
    order = {nc.PHY: 0, nc.BOND: 1, nc.VLAN: 2, nc.BRIDGE: 3}
    return sorted(ifaces.values(), key=lambda i: order[i.kind])


def _name_bonds(links, names, nics, src):
    bond_no = 0
    for link in links:
        if link.kind != nc.BOND:
            continue
        if not all(m in names for m in link.bond_links):
            _leave_members(link, links, names, "bond", "member NIC", src)
            continue
        if link.name and link.name not in _all_names(nics, names):
            names[link.id] = link.name
            continue
        while f"bond{bond_no}" in _all_names(nics, names):
            bond_no += 1
        names[link.id] = f"bond{bond_no}"
        bond_no += 1


def _leave_members(link, links, names, kind, member, src):
    """A bond or bridge that cannot be made: its members that are here (and theirs,
    for a bond in a bridge) stay as the image has them: configured alone, without
    the addresses the whole had, they would be less reachable than before."""
    log.warning("%s %s %s: a %s is missing; leaving the %s and its %ss as the image has "
                "them", src, kind, shown(link.id), member, kind, member)
    by_id = {x.id: x for x in links}
    todo = list(link.bond_links if link.kind == nc.BOND else link.bridge_links)
    while todo:
        m = todo.pop()
        if names.pop(m, None) is not None and m in by_id:
            todo += by_id[m].bond_links + by_id[m].bridge_links


def _virtual_name(link, names, nics):
    """The document's name for a VLAN or bridge when free, else one of the agent's."""
    taken = _all_names(nics, names)
    if link.name and link.name not in taken:
        return link.name
    if link.kind == nc.BRIDGE:
        n = 0
        while f"br{n}" in taken:
            n += 1
        return f"br{n}"
    name = f"{names[link.vlan_link]}.{link.vlan_id}"
    return name if len(name) <= IFNAMSIZ else f"vlan{link.vlan_id}"


def _missing(config, nics):
    """The NICs the document names that are not here (yet), in words."""
    here = {n for names in nics.values() for n in names}
    out = []
    for link in config.links:
        if link.kind != nc.PHY:
            continue
        if link.match_name:
            if not any(fnmatch.fnmatchcase(n, link.match_name) for n in here):
                out.append(f"named {link.match_name}")
        elif link.mac not in nics:
            out.append(f"with MAC {link.mac}")
    return out


def _candidates(link, nics, src):
    """This machine's interfaces that stand for a NIC link, best first."""
    if not link.match_name:
        found = nics.get(link.mac, [])
        if not found:
            log.warning("%s link %s: no interface here has MAC %s; leaving it out", src,
                        shown(link.id), link.mac)
        return found
    here = sorted({n for names in nics.values() for n in names})
    found = [n for n in here if fnmatch.fnmatchcase(n, link.match_name)
             and (not link.mac or n in nics.get(link.mac, []))]
    if not found:
        log.warning("%s link %s: no interface here is named %s%s; leaving it out", src,
                    shown(link.id), shown(link.match_name),
                    f" with MAC {link.mac}" if link.mac else "")
    return found


def _mac_of(system, name):
    """A NIC's own MAC (the permanent one of a bond member): what the stacks that
    match by MAC are given for a NIC the document names."""
    d = f"{SYS_NET}/{name}"
    perm = system.read_attribute(f"{d}/bonding_slave/perm_hwaddr").strip().lower()
    return perm or system.read_attribute(f"{d}/address").strip().lower()


def _all_names(nics, names):
    taken = set(names.values())
    for v in nics.values():
        taken.update(v)
    return taken
