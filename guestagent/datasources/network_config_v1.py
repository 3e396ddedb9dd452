"""network-config version 1 (cloud-init's own format) into the `netconfig` model.

Reference: cloud-init's "Networking config Version 1"
(doc/rtd/reference/network-config-format-v1.rst).  Read: ``physical``
(``name``, ``mac_address``, ``mtu``), ``bond`` (``bond_interfaces``,
``params``: mode, miimon, xmit_hash_policy, lacp_rate with or without a
``bond-`` prefix), ``vlan`` (``vlan_link``, ``vlan_id``), ``nameserver``
(``address``, ``search``, ``interface``), ``route`` (``destination``,
``gateway``, ``metric``), and ``subnets`` of type ``static``, ``static6``,
``dhcp``/``dhcp4``, ``dhcp6``, ``ipv6_slaac``, ``ipv6_dhcpv6-stateful``,
``ipv6_dhcpv6-stateless`` and ``manual`` with ``address`` (CIDR, or with
``netmask`` or ``prefix``), ``gateway``, ``routes``, ``dns_nameservers``,
``dns_search``; ``bridge`` (``bridge_interfaces``, ``params`` bridge_stp,
bridge_fd; STP off unless said, as the kernel has it).

A physical entry with ``mac_address`` is found by MAC (cloud-init renames
it to ``name``; the agent keeps the kernel's name); one without is found
by its kernel name.
"""

import logging

from ..log import shown
from ..metadata import netconfig as nc
from .network_config import (
    Problems,
    as_list,
    attach_route,
    bridge_link,
    gateway_route,
    ifname,
    mac,
    make_route,
    nameservers,
    search_domains,
)
from .network_data import (
    bond_from_fields,
    interface_address,
    mtu_value,
    prefix_length,
    vlan_from_fields,
    without_dangling,
)

log = logging.getLogger(__name__)

SUBNET_TYPES = {
    "dhcp": (4, nc.DHCP), "dhcp4": (4, nc.DHCP),
    "dhcp6": (6, nc.DHCP), "ipv6_dhcpv6-stateful": (6, nc.DHCP),
    "ipv6_dhcpv6-stateless": (6, nc.DHCPV6_STATELESS), "ipv6_slaac": (6, nc.SLAAC),
    "static": (None, nc.STATIC), "static6": (6, nc.STATIC),
}
_BOND_PARAMS = {"mode": "bond_mode", "miimon": "bond_miimon",
                "xmit_hash_policy": "bond_xmit_hash_policy", "lacp_rate": "bond_lacp_rate"}


def parse_v1(doc):
    problems = Problems(nc.NETWORK_CONFIG_V1)
    entries = doc.get("config")
    if not isinstance(entries, list):
        problems.invalid("ignoring it: config is %s, not a list", type(entries).__name__)
        return None
    links, with_subnets, dns_entries, route_entries = [], [], [], []
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            problems.invalid("ignoring config[%d]: not a mapping", i)
            continue
        kind = e.get("type")
        if kind == "nameserver":
            dns_entries.append(e)
            continue
        if kind == "route":
            route_entries.append(e)
            continue
        if kind not in ("physical", "bond", "vlan", "bridge"):
            problems.invalid("ignoring config[%d]: unknown type %s", i, shown(kind))
            continue
        name = e.get("name")
        try:
            name = ifname(name, "name")
            if any(x.id == name for x in links):
                raise ValueError("a second entry with this name")
            links.append(_link(kind, name, e, problems))
            with_subnets.append((name, e.get("subnets")))
        except ValueError as err:
            problems.invalid("ignoring %s entry %s: %s", shown(kind), shown(name), err)
    links = without_dangling(links)
    usable = {x.id for x in links}
    subnets = []
    for name, entries in with_subnets:
        if name in usable:
            subnets += _subnets(name, entries, problems)
    servers, search = _global_dns(dns_entries, subnets, problems)
    for e in route_entries:
        _global_route(e, subnets, problems)
    return nc.NetworkConfig(links, subnets, servers, search, source=nc.NETWORK_CONFIG_V1)


_BRIDGE_PARAMS = {"bridge_stp", "bridge_fd", "bridge_hw"}


def _link(kind, name, e, problems):
    mtu = mtu_value(e.get("mtu"))
    if kind == "bridge":
        params = e.get("params") or {}
        if not isinstance(params, dict):
            raise ValueError("params is not a mapping")
        for key in params:
            if key not in _BRIDGE_PARAMS:
                problems.unsupported("bridge %s: ignoring %s (the agent sets bridge_stp and "
                                     "bridge_fd)", shown(name), shown(key))
        return bridge_link(name, e.get("bridge_interfaces"), params.get("bridge_stp", False),
                           params.get("bridge_fd"),
                           e.get("mac_address", params.get("bridge_hw")), mtu)
    if kind == "physical":
        found = mac(e.get("mac_address"))
        return nc.Link(name, nc.PHY, found, mtu, vif_type="physical",
                       match_name="" if found else name, name=name)
    if kind == "bond":
        fields = {"bond_links": e.get("bond_interfaces"),
                  "ethernet_mac_address": e.get("mac_address")}
        params = e.get("params") or {}
        if not isinstance(params, dict):
            raise ValueError("params is not a mapping")
        for key, value in params.items():
            plain = str(key).replace("-", "_")
            plain = plain[len("bond_"):] if plain.startswith("bond_") else plain
            fields[_BOND_PARAMS.get(plain, "bond_" + plain)] = value
        link = bond_from_fields(fields, name, mtu)
    else:
        link = vlan_from_fields({"vlan_link": e.get("vlan_link"), "vlan_id": e.get("vlan_id"),
                                 "vlan_mac_address": e.get("mac_address")}, name, mtu)
    link.name = name
    return link


def _subnets(link, entries, problems):
    if entries is None:
        return []
    if not isinstance(entries, list):
        problems.invalid("%s: ignoring subnets: not a list", shown(link))
        return []
    out = []
    for i, s in enumerate(entries):
        what = f"{link} subnet {i}"
        if not isinstance(s, dict):
            problems.invalid("ignoring %s: not a mapping", shown(what))
            continue
        kind = s.get("type")
        if kind is None and s.get("address"):
            kind = "static"  # Hetzner's IPv6 subnet in cloud-init's own test data
        if kind == "manual":
            continue  # the link is up, without addresses
        if kind not in SUBNET_TYPES:
            problems.invalid("ignoring %s: unknown type %s", shown(what), shown(kind))
            continue
        try:
            out.append(_subnet(link, what, kind, s, problems))
        except ValueError as err:
            problems.invalid("ignoring %s: %s", shown(what), err)
    return out


def _subnet(link, what, kind, s, problems):
    family, method = SUBNET_TYPES[kind]
    address = ""
    if method == nc.STATIC:
        address = _address(s, family)
        family = 6 if ":" in address else 4
    subnet = nc.Subnet(what, link, family, method, address,
                       nameservers=nameservers(s.get("dns_nameservers"), what, problems),
                       search=search_domains(s.get("dns_search"), what, problems))
    if method != nc.STATIC:
        if s.get("gateway") or s.get("routes"):
            problems.unsupported("%s: gateway and routes are set by DHCP on a %s subnet; "
                                 "ignoring the document's", shown(what), kind)
        return subnet
    if s.get("gateway"):
        subnet.routes.append(gateway_route(s["gateway"], subnet))
    for r in as_list(s.get("routes")):
        try:
            route = _route(r)
            if route.default and any(x.default for x in subnet.routes):
                raise ValueError("a second default route")
            subnet.routes.append(route)
        except ValueError as err:
            problems.invalid("%s: ignoring route %s: %s", shown(what), shown(r), err)
    return subnet


def _address(s, family):
    address = s.get("address")
    if isinstance(address, list) and len(address) == 1:
        address = address[0]
    if not isinstance(address, str) or not address.strip():
        raise ValueError("a static subnet needs an address")
    address = address.strip()
    netmask = s.get("netmask", s.get("prefix"))
    if "/" not in address and netmask in (None, ""):
        # cloud-init's default when neither is given
        netmask = 64 if ":" in address else 24
        log.info("%s: %s has no netmask; using /%d as cloud-init does",
                 nc.NETWORK_CONFIG_V1, shown(address), netmask)
    if isinstance(netmask, str) and netmask.startswith("/"):
        netmask = netmask[1:]
    guess = family or (6 if ":" in address else 4)
    iface = interface_address(address, netmask, guess)
    if family and (":" in iface) != (family == 6):
        raise ValueError(f"address {shown(address)} is not IPv{family}")
    return iface


def _route(r):
    if not isinstance(r, dict):
        raise ValueError("not a mapping")
    dest = r.get("destination", r.get("network"))
    netmask = r.get("netmask", r.get("prefix"))
    if isinstance(dest, str) and "/" not in dest and netmask not in (None, ""):
        dest = f"{dest}/{prefix_length(netmask, 6 if ':' in dest else 4)}"
    if dest is None:
        raise ValueError("no destination")
    return make_route(dest, r.get("gateway"), r.get("metric"))


def _global_dns(entries, subnets, problems):
    servers, search = [], []
    for e in entries:
        found = nameservers(e.get("address"), "nameserver", problems)
        domains = search_domains(e.get("search"), "nameserver", problems)
        iface = e.get("interface")
        on = [s for s in subnets if s.link == iface] if iface is not None else []
        if iface is not None and not on:
            problems.unsupported("nameserver for interface %s: no usable subnet there; "
                                 "using it for the whole machine", shown(iface))
        target = on[0] if on else None
        for value, into in ((found, "nameservers"), (domains, "search")):
            bucket = getattr(target, into) if target else (servers if into == "nameservers"
                                                          else search)
            bucket += [x for x in value if x not in bucket]
    return servers, search


def _global_route(e, subnets, problems):
    try:
        route = _route(e)
    except ValueError as err:
        problems.invalid("ignoring route %s: %s", shown(e), err)
        return
    subnet = attach_route(route, subnets)
    if subnet is None:
        problems.invalid("ignoring route to %s via %s: no static subnet holds the gateway",
                         route.destination, route.gateway)
        return
    if route.default and any(x.default for x in subnet.routes):
        problems.invalid("ignoring route to %s via %s: %s already has a default route",
                         route.destination, route.gateway, shown(subnet.id))
        return
    subnet.routes.append(route)
