"""The instance's network as the metadata states it: links, networks, routes.

Datasource-neutral and already checked: every address went through
`ipaddress`, every MAC through a pattern, every number through a range, so
a renderer can put any value here into a file without escaping.  Link ids
are the document's own names and only ever connect links to networks; they
never reach a file.

Plain classes, not dataclasses: those pull `inspect` into every boot.
"""

# How a network gets its addresses.
STATIC = "static"
DHCP = "dhcp"                        # DHCPv4, or DHCPv6 stateful for IPv6
SLAAC = "slaac"                      # router advertisements only
DHCPV6_STATELESS = "dhcpv6-stateless"  # SLAAC addresses, DHCPv6 for the rest
METHODS = (STATIC, DHCP, SLAAC, DHCPV6_STATELESS)

PHY, BOND, VLAN = "phy", "bond", "vlan"


class Route:
    __slots__ = ("destination", "gateway")

    def __init__(self, destination, gateway):
        self.destination = destination  # "0.0.0.0/0", "198.51.100.0/24"
        self.gateway = gateway

    @property
    def default(self):
        return self.destination in ("0.0.0.0/0", "::/0")

    def to_dict(self):
        return {"destination": self.destination, "gateway": self.gateway}

    @classmethod
    def from_dict(cls, d):
        return cls(d["destination"], d["gateway"])

    def __eq__(self, other):
        return isinstance(other, Route) and self.to_dict() == other.to_dict()

    def __repr__(self):
        return f"Route({self.destination} via {self.gateway})"


class Link:
    """A layer-2 interface: a NIC (by MAC), a bond of NICs, or a VLAN on a link."""

    __slots__ = ("id", "kind", "mac", "mtu", "vif_type", "bond_mode", "bond_links",
                 "bond_options", "vlan_link", "vlan_id")

    def __init__(self, id, kind, mac="", mtu=None, vif_type="", bond_mode="",
                 bond_links=None, bond_options=None, vlan_link="", vlan_id=None):
        self.id = id
        self.kind = kind
        self.mac = mac            # lower case; for a VLAN its own MAC, if given
        self.mtu = mtu
        self.vif_type = vif_type  # as the document said: phy, ovs, bridge, ...
        self.bond_mode = bond_mode              # kernel name: 802.3ad, active-backup, ...
        self.bond_links = list(bond_links or [])  # link ids
        self.bond_options = dict(bond_options or {})  # miimon, xmit_hash_policy, lacp_rate
        self.vlan_link = vlan_link
        self.vlan_id = vlan_id

    def to_dict(self):
        d = {"id": self.id, "kind": self.kind, "mac": self.mac, "mtu": self.mtu,
             "vif_type": self.vif_type}
        if self.kind == BOND:
            d.update(bond_mode=self.bond_mode, bond_links=list(self.bond_links),
                     bond_options=dict(self.bond_options))
        if self.kind == VLAN:
            d.update(vlan_link=self.vlan_link, vlan_id=self.vlan_id)
        return d

    @classmethod
    def from_dict(cls, d):
        return cls(d["id"], d["kind"], d.get("mac", ""), d.get("mtu"), d.get("vif_type", ""),
                   d.get("bond_mode", ""), d.get("bond_links"), d.get("bond_options"),
                   d.get("vlan_link", ""), d.get("vlan_id"))

    def __repr__(self):
        return f"Link({self.id!r}, {self.kind}, {self.mac or '-'})"


class Subnet:
    """One network on a link: its family, how it gets addresses, routes and DNS."""

    __slots__ = ("id", "link", "family", "method", "address", "routes", "nameservers",
                 "search")

    def __init__(self, id, link, family, method, address="", routes=None,
                 nameservers=None, search=None):
        self.id = id
        self.link = link          # a Link id
        self.family = family      # 4 or 6
        self.method = method      # one of METHODS
        self.address = address    # "192.0.2.10/24" (static only; else informative)
        self.routes = list(routes or [])
        self.nameservers = list(nameservers or [])
        self.search = list(search or [])

    def to_dict(self):
        return {"id": self.id, "link": self.link, "family": self.family,
                "method": self.method, "address": self.address,
                "routes": [r.to_dict() for r in self.routes],
                "nameservers": list(self.nameservers), "search": list(self.search)}

    @classmethod
    def from_dict(cls, d):
        return cls(d["id"], d["link"], d["family"], d["method"], d.get("address", ""),
                   [Route.from_dict(r) for r in d.get("routes") or []],
                   d.get("nameservers"), d.get("search"))

    def __repr__(self):
        return f"Subnet({self.id!r}, ipv{self.family} {self.method} {self.address})"


class NetworkConfig:
    """Links, the networks on them, and the document-wide DNS servers."""

    def __init__(self, links=None, subnets=None, nameservers=None, search=None):
        self.links = list(links or [])
        self.subnets = list(subnets or [])
        self.nameservers = list(nameservers or [])
        self.search = list(search or [])

    def link(self, link_id):
        for link in self.links:
            if link.id == link_id:
                return link
        return None

    def subnets_on(self, link_id):
        return [s for s in self.subnets if s.link == link_id]

    def to_dict(self):
        return {"links": [x.to_dict() for x in self.links],
                "networks": [s.to_dict() for s in self.subnets],
                "nameservers": list(self.nameservers), "search": list(self.search)}

    @classmethod
    def from_dict(cls, d):
        if not d:
            return None
        return cls([Link.from_dict(x) for x in d.get("links") or []],
                   [Subnet.from_dict(s) for s in d.get("networks") or []],
                   d.get("nameservers"), d.get("search"))

    def __repr__(self):
        return f"NetworkConfig({self.links!r}, {self.subnets!r})"
