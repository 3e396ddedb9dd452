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

PHY, BOND, VLAN, BRIDGE = "phy", "bond", "vlan", "bridge"

# Which document a NetworkConfig came from (NetworkConfig.source).
NETWORK_DATA = "network_data.json"
NETWORK_CONFIG_V1 = "network-config v1"
NETWORK_CONFIG_V2 = "network-config v2"


class Route:
    __slots__ = ("destination", "gateway", "metric", "on_link")

    def __init__(self, destination, gateway, metric=None, on_link=False):
        self.destination = destination  # "0.0.0.0/0", "198.51.100.0/24"
        self.gateway = gateway
        self.metric = metric            # None: the stack's default
        self.on_link = on_link          # the gateway is on the link though outside the subnet

    @property
    def default(self):
        return self.destination in ("0.0.0.0/0", "::/0")

    def to_dict(self):
        d = {"destination": self.destination, "gateway": self.gateway}
        if self.metric is not None:
            d["metric"] = self.metric
        if self.on_link:
            d["on_link"] = True
        return d

    @classmethod
    def from_dict(cls, d):
        return cls(d["destination"], d["gateway"], d.get("metric"), bool(d.get("on_link")))

    def __eq__(self, other):
        return isinstance(other, Route) and self.to_dict() == other.to_dict()

    def __repr__(self):
        return f"Route({self.destination} via {self.gateway})"


class Link:
    """A layer-2 interface: a NIC (by MAC or by name), a bond of NICs, a VLAN on
    a link, or a bridge of links (network-config only: Nova's ``bridge`` is a
    VIF type, a NIC)."""

    __slots__ = ("id", "kind", "mac", "mtu", "vif_type", "bond_mode", "bond_links",
                 "bond_options", "vlan_link", "vlan_id", "match_name", "name",
                 "bridge_links", "bridge_options")

    def __init__(self, id, kind, mac="", mtu=None, vif_type="", bond_mode="",
                 bond_links=None, bond_options=None, vlan_link="", vlan_id=None,
                 match_name="", name="", bridge_links=None, bridge_options=None):
        self.id = id
        self.kind = kind
        self.mac = mac            # lower case; for a VLAN its own MAC, if given
        # a NIC found by its kernel name instead (or as well): a name or a
        # shell-style glob (network-config v1 without mac_address, v2 match.name)
        self.match_name = match_name
        # the name the document wants: a bond's or VLAN's is used when free; a
        # NIC keeps the kernel's name (renaming is netplan's alone, see docs)
        self.name = name
        self.bridge_links = list(bridge_links or [])  # link ids: the bridge's ports
        self.bridge_options = dict(bridge_options or {})  # stp (bool), forward_delay (s)
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
        if self.kind == BRIDGE:
            d.update(bridge_links=list(self.bridge_links),
                     bridge_options=dict(self.bridge_options))
        if self.match_name:
            d["match_name"] = self.match_name
        if self.name:
            d["name"] = self.name
        return d

    @classmethod
    def from_dict(cls, d):
        return cls(d["id"], d["kind"], d.get("mac", ""), d.get("mtu"), d.get("vif_type", ""),
                   d.get("bond_mode", ""), d.get("bond_links"), d.get("bond_options"),
                   d.get("vlan_link", ""), d.get("vlan_id"), d.get("match_name", ""),
                   d.get("name", ""), d.get("bridge_links"), d.get("bridge_options"))

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
    """Links, the networks on them, and the document-wide DNS servers.

    ``source`` names the document in logs and in the files the agent writes
    (network_data.json, network-config v1, network-config v2).  ``netplan``
    is a network-config v2 document as YAML text: netplan's own format, which
    an image whose stack is netplan is handed as it is.
    """

    def __init__(self, links=None, subnets=None, nameservers=None, search=None,
                 source=NETWORK_DATA, netplan=""):
        self.links = list(links or [])
        self.subnets = list(subnets or [])
        self.nameservers = list(nameservers or [])
        self.search = list(search or [])
        self.source = source
        self.netplan = netplan

    def link(self, link_id):
        for link in self.links:
            if link.id == link_id:
                return link
        return None

    def subnets_on(self, link_id):
        return [s for s in self.subnets if s.link == link_id]

    def dns(self):
        """(servers, search domains): the document-wide ones, then each network's."""
        servers, search = list(self.nameservers), list(self.search)
        for s in self.subnets:
            servers += [x for x in s.nameservers if x not in servers]
            search += [x for x in s.search if x not in search]
        return list(dict.fromkeys(servers)), list(dict.fromkeys(search))

    def to_dict(self):
        d = {"links": [x.to_dict() for x in self.links],
             "networks": [s.to_dict() for s in self.subnets],
             "nameservers": list(self.nameservers), "search": list(self.search)}
        if self.source != NETWORK_DATA:
            d["source"] = self.source
        if self.netplan:
            d["netplan"] = self.netplan
        return d

    @classmethod
    def from_dict(cls, d):
        if not d:
            return None
        return cls([Link.from_dict(x) for x in d.get("links") or []],
                   [Subnet.from_dict(s) for s in d.get("networks") or []],
                   d.get("nameservers"), d.get("search"), d.get("source") or NETWORK_DATA,
                   d.get("netplan") or "")

    def __repr__(self):
        return f"NetworkConfig({self.links!r}, {self.subnets!r})"
