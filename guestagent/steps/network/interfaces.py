"""The document's links matched to this machine's interfaces, by MAC address.

A NIC is found in /sys/class/net (under the root): the interface with the
link's MAC that is not itself a bond, VLAN or bridge.  Bonds and VLANs get
names of the agent's choosing (``bond0``, ``eth0.100``).  A link whose NIC
is missing is warned about and dropped, with what stands on it.
"""

import logging
import time

from ... import netconfig as nc
from ...log import shown

log = logging.getLogger(__name__)

SYS_NET = "/sys/class/net"
IFNAMSIZ = 15


class Iface:
    """One interface to configure: what a renderer needs and nothing more."""

    def __init__(self, name, kind, link, subnets):
        self.name = name
        self.kind = kind            # phy, bond, vlan
        self.mac = link.mac         # phy: its MAC; bond/vlan: the one to set, or ""
        self.mtu = link.mtu
        self.subnets = subnets
        self.bond_mode = link.bond_mode
        self.bond_options = dict(link.bond_options)
        self.members = []           # bond: member interface names
        self.master = ""            # phy in a bond: the bond's name
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
        """The document's MTU, unless DHCP decides it (Nova leaves it out then)."""
        if self.mtu and nc.DHCP in self.methods(4):
            return None
        return self.mtu

    def describe(self):
        parts = [str(s.address) if s.method == nc.STATIC else f"ipv{s.family} {s.method}"
                 for s in self.subnets]
        if self.kind == nc.BOND:
            parts.insert(0, f"bond of {', '.join(self.members)}")
        if self.kind == nc.VLAN:
            parts.insert(0, f"VLAN {self.vlan_id} on {self.parent}")
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
    wanted = {x.mac for x in config.links if x.kind == nc.PHY}
    deadline = clock() + wait
    nics = kernel_nics(system)
    while not wanted <= set(nics) and clock() < deadline:
        sleep(0.1)
        nics = kernel_nics(system)
    missing = wanted - set(nics)
    if missing and wait:
        log.info("waited %.0f s for the NICs with MAC %s", wait, ", ".join(sorted(missing)))
    names = {}
    for link in config.links:
        if link.kind != nc.PHY:
            continue
        candidates = nics.get(link.mac, [])
        if not candidates:
            log.warning("network_data.json link %s: no interface here has MAC %s; "
                        "leaving it out", shown(link.id), link.mac)
            continue
        if len(candidates) > 1:
            log.warning("network_data.json link %s: several interfaces have MAC %s (%s); "
                        "using %s", shown(link.id), link.mac, ", ".join(candidates),
                        candidates[0])
        if candidates[0] in names.values():
            log.warning("network_data.json link %s: interface %s is already taken by "
                        "another link; leaving it out", shown(link.id), candidates[0])
            continue
        names[link.id] = candidates[0]
    bond_no = 0
    for link in config.links:
        if link.kind == nc.BOND:
            if all(m in names for m in link.bond_links):
                while f"bond{bond_no}" in _all_names(nics, names):
                    bond_no += 1
                names[link.id] = f"bond{bond_no}"
                bond_no += 1
            else:
                log.warning("network_data.json bond %s: a member NIC is missing; leaving "
                            "the bond and its members as the image has them", shown(link.id))
    for link in config.links:  # VLANs may stand on VLANs' parents only once resolved
        if link.kind == nc.VLAN and link.vlan_link in names:
            parent = names[link.vlan_link]
            name = f"{parent}.{link.vlan_id}"
            if len(name) > IFNAMSIZ:
                name = f"vlan{link.vlan_id}"
            names[link.id] = name
        elif link.kind == nc.VLAN:
            log.warning("network_data.json VLAN %s: its parent link is not here; leaving "
                        "it out", shown(link.id))
    ifaces = {}
    for link in config.links:
        if link.id in names:
            ifaces[link.id] = Iface(names[link.id], link.kind, link,
                                    config.subnets_on(link.id))
    for link in config.links:
        it = ifaces.get(link.id)
        if it is None:
            continue
        if link.kind == nc.BOND:
            it.members = [names[m] for m in link.bond_links]
            for m in link.bond_links:
                ifaces[m].master = it.name
                if ifaces[m].subnets:
                    log.warning("network_data.json: %s is in bond %s; its own networks are "
                                "ignored", ifaces[m].name, it.name)
                    ifaces[m].subnets = []
        if link.kind == nc.VLAN:
            it.parent = names[link.vlan_link]
            ifaces[link.vlan_link].vlans.append(it.name)
    order = {nc.PHY: 0, nc.BOND: 1, nc.VLAN: 2}
    return sorted(ifaces.values(), key=lambda i: order[i.kind])


def _all_names(nics, names):
    taken = set(names.values())
    for v in nics.values():
        taken.update(v)
    return taken
