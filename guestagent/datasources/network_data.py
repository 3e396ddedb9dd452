"""Nova's network_data.json made into the `netconfig` model, value by value.

The config drive and the metadata service serve the same document.  What
cannot be used is dropped with one warning naming it (an unknown link or
network type, a bad address, a bond member that does not exist), and what
depends on it goes with it; nothing here raises on a bad document.

Shapes, from Nova (nova.virt.netutils.get_network_metadata, the Ironic
driver's bonds) and Nova's schema (doc/api_schemas/network_data.json):
links ``phy`` (and the VIF types Nova exposes as they are: ``bridge``,
``ovs``, ``tap``, ``vif``, ``hw_veb``, ``dvs``, ``vhostuser``, ...),
``bond`` (``bond_links``, ``bond_mode``, ``bond_miimon``,
``bond_xmit_hash_policy``, ``bond_lacp_rate``) and ``vlan`` (``vlan_link``,
``vlan_id``, ``vlan_mac_address``); networks ``ipv4``, ``ipv4_dhcp``,
``ipv6``, ``ipv6_slaac``, ``ipv6_dhcpv6-stateful``,
``ipv6_dhcpv6-stateless``, ``ipv6_dhcp``, with ``ip_address``,
``netmask``, ``routes`` and their own ``services``.
"""

import ipaddress
import logging
import re

from ..log import shown
from ..metadata import netconfig as nc
from ..metadata.dns_names import BadName, check_name

log = logging.getLogger(__name__)

# Nova's nova.network.model.LEGACY_EXPOSED_VIF_TYPES (and a few older names):
# a NIC all the same, named by the hypervisor's plumbing.
PHYSICAL_TYPES = {"phy", "ethernet", "bridge", "ovs", "tap", "vif", "hw_veb", "dvs",
                  "vhostuser", "hyperv", "vrouter", "macvtap", "802.1qbh", "802.1qbg",
                  "ib_hostdev", "midonet", "iovisor", "other"}
NETWORK_TYPES = {
    "ipv4": (4, nc.STATIC),
    "ipv4_dhcp": (4, nc.DHCP),
    "ipv6": (6, nc.STATIC),
    "ipv6_slaac": (6, nc.SLAAC),
    "ipv6_dhcpv6-stateful": (6, nc.DHCP),
    "ipv6_dhcpv6-stateless": (6, nc.DHCPV6_STATELESS),
    "ipv6_dhcp": (6, nc.DHCP),
}
BOND_MODES = ["balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad",
              "balance-tlb", "balance-alb"]
XMIT_HASH_POLICIES = {"layer2", "layer2+3", "layer3+4", "encap2+3", "encap3+4", "vlan+srcmac"}
LACP_RATES = {"slow": "slow", "fast": "fast", "0": "slow", "1": "fast"}
_MAC = re.compile(r"[0-9a-f]{2}([:-][0-9a-f]{2}){5}")


def parse(doc):
    """A `NetworkConfig` from the document, or None when there is none."""
    if doc is None:
        return None
    if not isinstance(doc, dict):
        log.warning("ignoring network_data.json: expected an object, got %s",
                    type(doc).__name__)
        return None
    if not doc:
        return None  # Nova serves {} when it has nothing to say
    links = _links(_list(doc, "links"))
    known = {link.id for link in links}
    subnets = []
    for i, n in enumerate(_list(doc, "networks")):
        s = _network(i, n, known)
        if s is not None:
            subnets.append(s)
    servers, search = dns_services(doc.get("services"), "network_data.json services")
    return nc.NetworkConfig(links, subnets, servers, search)


def _list(doc, key):
    value = doc.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        log.warning("ignoring network_data.json %s: expected a list, got %s", key,
                    type(value).__name__)
        return []
    return value


# -- links ---------------------------------------------------------------------

def _links(entries):
    links = []
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            log.warning("ignoring links[%d]: expected an object", i)
            continue
        link_id = e.get("id")
        if not isinstance(link_id, str) or not link_id:
            log.warning("ignoring links[%d]: no id", i)
            continue
        if any(x.id == link_id for x in links):
            log.warning("ignoring links[%d]: a second link with id %s", i, shown(link_id))
            continue
        kind = e.get("type")
        try:
            mtu = mtu_value(e.get("mtu"))
            if kind in PHYSICAL_TYPES:
                links.append(nc.Link(link_id, nc.PHY, mac_address(e.get("ethernet_mac_address"),
                                                           required=True),
                                     mtu, vif_type=kind))
            elif kind == "bond":
                links.append(bond_from_fields(e, link_id, mtu))
            elif kind == "vlan":
                links.append(vlan_from_fields(e, link_id, mtu))
            else:
                raise ValueError(f"unknown link type {shown(kind)}")
        except ValueError as err:
            log.warning("ignoring link %s: %s", shown(link_id), err)
    return without_dangling(links)


def without_dangling(links):
    """``links`` less the bonds and VLANs whose members or parent are not in it
    (one warning each): what leans on a dropped link goes too."""
    while True:
        ids = {x.id for x in links}
        bad = [x for x in links
               if (x.kind == nc.BOND and not set(x.bond_links) <= ids)
               or (x.kind == nc.BRIDGE and not set(x.bridge_links) <= ids)
               or (x.kind == nc.VLAN and x.vlan_link not in ids)]
        if not bad:
            return links
        for x in bad:
            missing = (sorted(set(x.bond_links) - ids) if x.kind == nc.BOND
                       else sorted(set(x.bridge_links) - ids) if x.kind == nc.BRIDGE
                       else [x.vlan_link])
            log.warning("ignoring %s link %s: it needs link %s, which is not usable",
                        x.kind, shown(x.id), ", ".join(shown(m) for m in missing))
            links.remove(x)


def bond_from_fields(e, link_id, mtu):
    members = e.get("bond_links")
    if not isinstance(members, list) or not members or \
            not all(isinstance(m, str) for m in members):
        raise ValueError("bond_links must be a list of link ids")
    mode = e.get("bond_mode", "balance-rr")
    if isinstance(mode, int) or (isinstance(mode, str) and mode.isdigit()):
        mode = BOND_MODES[int(mode)] if 0 <= int(mode) < len(BOND_MODES) else mode
    if mode not in BOND_MODES:
        raise ValueError(f"unknown bond_mode {shown(mode)}")
    options = {}
    for key, value in e.items():
        if not key.startswith("bond_") or key in ("bond_links", "bond_mode"):
            continue
        name = key[len("bond_"):]
        if name == "hash_policy":
            name = "xmit_hash_policy"
        text = str(value).strip().lower() if isinstance(value, (str, int)) else None
        if name == "miimon" and text is not None and text.isdigit() and int(text) <= 100000:
            options["miimon"] = int(text)
        elif name == "xmit_hash_policy" and text in XMIT_HASH_POLICIES:
            options["xmit_hash_policy"] = text
        elif name == "lacp_rate" and text in LACP_RATES:
            options["lacp_rate"] = LACP_RATES[text]
        else:
            log.warning("bond %s: ignoring %s = %s (not a bond option the agent sets, "
                        "or not a valid value)", shown(link_id), shown(key), shown(value))
    return nc.Link(link_id, nc.BOND, mac_address(e.get("ethernet_mac_address")), mtu,
                   vif_type="bond", bond_mode=mode, bond_links=members, bond_options=options)


def vlan_from_fields(e, link_id, mtu):
    parent = e.get("vlan_link")
    if not isinstance(parent, str) or not parent:
        raise ValueError("no vlan_link")
    vid = e.get("vlan_id")
    if isinstance(vid, str) and vid.isdigit():
        vid = int(vid)
    if not isinstance(vid, int) or isinstance(vid, bool) or not 1 <= vid <= 4094:
        raise ValueError(f"vlan_id {shown(vid)} is not a VLAN id (1-4094)")
    return nc.Link(link_id, nc.VLAN, mac_address(e.get("vlan_mac_address")), mtu, vif_type="vlan",
                   vlan_link=parent, vlan_id=vid)


def mac_address(value, required=False):
    if value is None or value == "":
        if required:
            raise ValueError("no ethernet_mac_address")
        return ""
    if not isinstance(value, str) or not _MAC.fullmatch(value.lower()):
        raise ValueError(f"{shown(value)} is not a MAC address")
    return value.lower().replace("-", ":")


def mtu_value(value):
    if value is None:
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 68 <= value <= 65535:
        raise ValueError(f"mtu {shown(value)} is not an MTU (68-65535)")
    return value


# -- networks ------------------------------------------------------------------

def _network(i, n, known_links):
    if not isinstance(n, dict):
        log.warning("ignoring networks[%d]: expected an object", i)
        return None
    net_id = n.get("id") if isinstance(n.get("id"), str) else f"networks[{i}]"
    kind = n.get("type")
    if kind not in NETWORK_TYPES:
        log.warning("ignoring network %s: unknown type %s", shown(net_id), shown(kind))
        return None
    link = n.get("link")
    if link not in known_links:
        log.warning("ignoring network %s: its link %s is not a usable link", shown(net_id),
                    shown(link))
        return None
    family, method = NETWORK_TYPES[kind]
    address = ""
    try:
        if n.get("ip_address") not in (None, ""):
            address = interface_address(n.get("ip_address"), n.get("netmask"), family)
        elif method == nc.STATIC:
            raise ValueError("a static network needs ip_address")
        routes = [_route(r, family) for r in (n.get("routes") or [])]
    except ValueError as err:
        log.warning("ignoring network %s: %s", shown(net_id), err)
        return None
    servers, search = dns_services(n.get("services"), f"network {shown(net_id)} services")
    return nc.Subnet(net_id, link, family, method, address, routes, servers, search)


def interface_address(ip, netmask, family):
    if not isinstance(ip, str):
        raise ValueError(f"ip_address {shown(ip)} is not an address")
    try:
        if "/" in ip:
            iface = ipaddress.ip_interface(ip)
        else:
            iface = ipaddress.ip_interface(f"{ip}/{prefix_length(netmask, family)}")
    except ValueError:
        raise ValueError(f"ip_address {shown(ip)} with netmask {shown(netmask)} is not "
                         f"an IPv{family} address") from None
    if iface.version != family:
        raise ValueError(f"ip_address {shown(ip)} is not IPv{family}")
    return str(iface)


def prefix_length(netmask, family):
    """A prefix length from a dotted mask, an IPv6 mask, or a number."""
    if isinstance(netmask, int) and not isinstance(netmask, bool):
        return netmask
    if not isinstance(netmask, str) or not netmask:
        raise ValueError("no netmask")
    if netmask.isdigit():
        return int(netmask)
    mask = int(ipaddress.ip_address(netmask))
    bits = 32 if family == 4 else 128
    prefix = bin(mask).count("1")
    if mask != ((1 << bits) - 1) ^ ((1 << (bits - prefix)) - 1):
        raise ValueError(f"netmask {shown(netmask)} is not contiguous")
    return prefix


def _route(r, family):
    if not isinstance(r, dict):
        raise ValueError("a route is not an object")
    try:
        dest = ipaddress.ip_network(f"{r.get('network')}/{prefix_length(r.get('netmask'), family)}",
                                    strict=False)
        gateway = ipaddress.ip_address(r.get("gateway"))
    except (ValueError, TypeError):
        raise ValueError(f"route to {shown(r.get('network'))} via {shown(r.get('gateway'))} "
                         f"is not a valid IPv{family} route") from None
    if dest.version != family or gateway.version != family:
        raise ValueError(f"route to {dest} via {gateway} is not IPv{family}")
    return nc.Route(str(dest), str(gateway))


def dns_services(services, what):
    """Nameservers and search domains from a ``services`` list, checked."""
    servers, search = [], []
    if services is None:
        return servers, search
    if not isinstance(services, list):
        log.warning("ignoring %s: expected a list", what)
        return servers, search
    for s in services:
        if not isinstance(s, dict) or s.get("type") != "dns":
            continue
        try:
            addr = str(ipaddress.ip_address(s.get("address")))
        except ValueError:
            # the resolv_conf step warns about the same entry when it reads it
            log.debug("ignoring DNS server %s in %s: not an IP address",
                      shown(s.get("address")), what)
            continue
        if addr not in servers:
            servers.append(addr)
        domains = s.get("search") if isinstance(s.get("search"), list) else []
        for d in domains:
            try:
                name = check_name(d, fix_underscores=False)
            except BadName as e:
                log.debug("ignoring DNS search domain %s in %s: %s", shown(d), what, e)
                continue
            if name not in search:
                search.append(name)
    return servers, search
