"""network-config version 2 (netplan's schema) into the `netconfig` model.

Reference: netplan's YAML reference (netplan.io, "Netplan YAML configuration")
and cloud-init's "Networking config Version 2".  Read: ``ethernets``
(``match`` by ``macaddress`` and/or ``name`` glob, else the id is the
kernel name; ``set-name``), ``bonds`` (``interfaces``, ``parameters``:
mode, mii-monitor-interval, transmit-hash-policy, lacp-rate), ``vlans``
(``id``, ``link``), ``bridges`` (``interfaces``, ``parameters`` stp and
forward-delay; STP on unless said, as in netplan), and on each: ``dhcp4``, ``dhcp6``, ``accept-ra``,
``addresses``, ``gateway4``/``gateway6``, ``routes`` (``to`` as a network,
an address or ``default``; ``via``; ``metric``; ``on-link``),
``nameservers`` (``addresses``, ``search``), ``mtu``, ``macaddress``.

The other device kinds (wifis, tunnels, vrfs, ...) are not in the model.
The whole document is also kept as netplan YAML (`NetworkConfig.netplan`):
an image whose stack is netplan is handed it as it is, when every value in
it could be read.
"""

import logging

from ..log import shown
from ..metadata import netconfig as nc
from .network_config import (
    Problems,
    Unsupported,
    as_list,
    attach_route,
    bridge_link,
    gateway_route,
    ifname,
    mac,
    make_route,
    name_glob,
    nameservers,
    report,
    search_domains,
    unmangled,
)
from .network_data import (
    bond_from_fields,
    interface_address,
    mtu_value,
    vlan_from_fields,
    without_dangling,
)

log = logging.getLogger(__name__)

KINDS = ("ethernets", "bonds", "vlans", "bridges")
OTHER_KINDS = ("wifis", "tunnels", "vrfs", "modems", "dummy-devices", "virtual-ethernets",
               "nm-devices", "openvswitch")
_BOND_PARAMS = {"mode": "bond_mode", "mii-monitor-interval": "bond_miimon",
                "transmit-hash-policy": "bond_xmit_hash_policy", "lacp-rate": "bond_lacp_rate"}
# netplan keys the model has no place for; they change nothing a renderer writes
_NOT_APPLIED = {"optional", "critical", "dhcp-identifier", "dhcp4-overrides",
                "dhcp6-overrides", "link-local", "wakeonlan", "ipv6-privacy", "renderer",
                "emit-lldp", "receive-checksum-offload", "transmit-checksum-offload",
                "generic-segmentation-offload", "generic-receive-offload",
                "large-receive-offload", "ignore-carrier", "activation-mode",
                "ipv6-address-generation", "ipv6-address-token", "ipv6-mtu", "optional-addresses"}
_ADDRESSING = {"dhcp4", "dhcp6", "accept-ra", "addresses", "gateway4", "gateway6", "routes",
               "nameservers", "mtu", "macaddress", "match", "set-name", "interfaces",
               "parameters", "id", "link"}


def parse_v2(doc):
    problems = Problems(nc.NETWORK_CONFIG_V2)
    for key in doc:
        if key in OTHER_KINDS:
            problems.unsupported("%s are not set up by the agent except through netplan",
                                 shown(key))
        elif key not in KINDS and key not in ("version", "renderer"):
            problems.invalid("ignoring unknown key %s", shown(key))
    sections = {}
    for kind in KINDS:
        value = doc.get(kind)
        if value is None:
            value = {}
        if not isinstance(value, dict):
            problems.invalid("ignoring %s: not a mapping", kind)
            value = {}
        sections[kind] = {k: (v if v is not None else {}) for k, v in value.items()}
    links, devices = [], []
    for kind in ("ethernets", "bonds", "vlans", "bridges"):
        for dev_id, d in sections[kind].items():
            try:
                if not isinstance(dev_id, str) or not dev_id:
                    raise ValueError("not a name")
                if any(x.id == dev_id for x in links):
                    raise ValueError("a second definition with this id")
                if not isinstance(d, dict):
                    raise ValueError("not a mapping")
                links.append(_link(kind, dev_id, d, problems))
                devices.append((dev_id, d))
            except ValueError as err:
                report(problems, err, "ignoring %s %s: %s", kind, shown(dev_id))
    links = without_dangling(links)
    usable = {x.id for x in links}
    subnets, servers, search = [], [], []
    for dev_id, d in devices:
        if dev_id in usable:
            found, dns = _addressing(dev_id, d, problems)
            subnets += found
            if not found:  # nowhere on the interface to put them: the machine's
                servers += [x for x in dns[0] if x not in servers]
                search += [x for x in dns[1] if x not in search]
    return nc.NetworkConfig(links, subnets, servers, search, source=nc.NETWORK_CONFIG_V2,
                            netplan=_netplan_text(doc, problems))


def _link(kind, dev_id, d, problems):
    mtu = mtu_value(d.get("mtu"))
    ignored = sorted(k for k in d if k in _NOT_APPLIED)
    if ignored:
        log.info("%s %s: %s are not applied except through netplan", nc.NETWORK_CONFIG_V2,
                 shown(dev_id), ", ".join(ignored))
    for key in d:
        if key not in _NOT_APPLIED and key not in _ADDRESSING:
            problems.unsupported("%s: ignoring %s (not a key the agent knows)",
                                 shown(dev_id), shown(key))
    if kind == "ethernets":
        match = d.get("match")
        if match is not None and not isinstance(match, dict):
            raise ValueError("match is not a mapping")
        match = match or {}
        if match.get("driver") is not None:
            raise Unsupported("matching by driver is done only through netplan (the agent "
                              "matches by macaddress or name)")
        found = mac(match.get("macaddress"))
        if match.get("name") is not None:
            pattern = name_glob(match.get("name"), "match.name")
        else:
            pattern = "" if found else name_glob(dev_id, "the id")
        set_name = d.get("set-name")
        if set_name is not None:
            set_name = ifname(set_name, "set-name")
        if d.get("macaddress") is not None:
            mac(d.get("macaddress"))  # a bad one is refused as anywhere else
            problems.unsupported("%s: macaddress (a new MAC for the NIC) is set only "
                                 "through netplan", shown(dev_id))
        return nc.Link(dev_id, nc.PHY, found, mtu, vif_type="ethernet", match_name=pattern,
                       name=set_name or "")
    name = ifname(dev_id, "the id")
    if kind == "bridges":
        params = d.get("parameters") or {}
        if not isinstance(params, dict):
            raise ValueError("parameters is not a mapping")
        for key in params:
            if key not in ("stp", "forward-delay"):
                problems.unsupported("bridge %s: %s is set only through netplan (the agent "
                                     "sets stp and forward-delay)", shown(dev_id), shown(key))
        # netplan's default is STP on
        return bridge_link(dev_id, d.get("interfaces") or [], params.get("stp", True),
                           params.get("forward-delay"), d.get("macaddress"), mtu)
    if kind == "bonds":
        fields = {"bond_links": d.get("interfaces"),
                  "ethernet_mac_address": d.get("macaddress")}
        params = d.get("parameters") or {}
        if not isinstance(params, dict):
            raise ValueError("parameters is not a mapping")
        for key, value in params.items():
            fields[_BOND_PARAMS.get(key, "bond_" + str(key))] = value
        link = bond_from_fields(fields, dev_id, mtu)
    else:
        link = vlan_from_fields({"vlan_link": d.get("link"), "vlan_id": d.get("id"),
                                 "vlan_mac_address": d.get("macaddress")}, dev_id, mtu)
    link.name = name
    return link


def _addressing(dev_id, d, problems):
    """([Subnet] of a device, (its DNS servers, its search domains))."""
    subnets = []

    def flag(key):
        value = d.get(key)
        if value in (None, False, "false", "no", "off"):
            return False
        if value in (True, "true", "yes", "on"):
            return True
        problems.invalid("%s: ignoring %s = %s (not true or false)", shown(dev_id), key,
                         shown(value))
        return False

    if flag("dhcp4"):
        subnets.append(nc.Subnet(f"{dev_id} dhcp4", dev_id, 4, nc.DHCP))
    if flag("dhcp6"):
        subnets.append(nc.Subnet(f"{dev_id} dhcp6", dev_id, 6, nc.DHCP))
    for i, a in enumerate(as_list(d.get("addresses"))):
        if isinstance(a, dict) and len(a) == 1:
            a = next(iter(a))  # {"192.0.2.5/24": {lifetime: 0, label: ...}}
        try:
            if not isinstance(a, str) or "/" not in a:
                raise ValueError("netplan needs an address with its prefix length")
            address = interface_address(a.strip(), None, 6 if ":" in a else 4)
        except ValueError as err:
            problems.invalid("%s: ignoring address %s: %s", shown(dev_id), shown(a), err)
            continue
        subnets.append(nc.Subnet(f"{dev_id} addresses[{i}]", dev_id,
                                 6 if ":" in address else 4, nc.STATIC, address))
    if flag("accept-ra") and not any(s.family == 6 for s in subnets):
        subnets.append(nc.Subnet(f"{dev_id} accept-ra", dev_id, 6, nc.SLAAC))
    for family in (4, 6):
        gateway = d.get(f"gateway{family}")
        if gateway is None:
            continue
        static = [s for s in subnets if s.method == nc.STATIC and s.family == family]
        try:
            if not static:
                raise Unsupported(f"no static IPv{family} address to route from (a gateway "
                                  "beside DHCP is set only through netplan)")
            if any(r.default for r in static[0].routes):
                raise Unsupported("a second default route is set only through netplan")
            static[0].routes.append(gateway_route(gateway, static[0]))
        except ValueError as err:
            report(problems, err, "%s: ignoring gateway%d %s: %s", shown(dev_id), family,
                   shown(gateway))
    for r in as_list(d.get("routes")):
        try:
            route = _route(r)
            subnet = attach_route(route, subnets)
            if subnet is None:
                raise Unsupported("no static address of the interface reaches the gateway "
                                  "(routes beside DHCP are set only through netplan; "
                                  "on-link: true says the gateway is on the link)")
            if route.default and any(x.default for x in subnet.routes):
                raise Unsupported("a second default route is set only through netplan")
            subnet.routes.append(route)
        except ValueError as err:
            report(problems, err, "%s: ignoring route %s: %s", shown(dev_id), shown(r))
    ns = d.get("nameservers") or {}
    if not isinstance(ns, dict):
        problems.invalid("%s: ignoring nameservers: not a mapping", shown(dev_id))
        ns = {}
    what = f"{dev_id} nameservers"
    dns = (nameservers(ns.get("addresses"), what, problems),
           search_domains(ns.get("search"), what, problems))
    if subnets:
        subnets[0].nameservers, subnets[0].search = dns
    return subnets, dns


def _route(r):
    if not isinstance(r, dict):
        raise ValueError("not a mapping")
    for key, fine in (("table", None), ("from", None), ("type", "unicast"),
                      ("scope", "global")):
        if r.get(key) not in (None, fine):
            raise Unsupported(f"{key} {shown(r.get(key))} is set only through netplan")
    if r.get("via") is None:
        raise Unsupported("a route without via is set only through netplan")
    on_link = r.get("on-link", False)
    if on_link not in (True, False):
        raise ValueError(f"on-link {shown(on_link)} is not true or false")
    to = r.get("to")
    if to is None:
        raise ValueError("no to")
    if isinstance(to, str) and to.strip() in ("default", "0.0.0.0/0", "::/0"):
        to = "default"
    route = make_route(to, r.get("via"), r.get("metric"), on_link)
    if to == "default" and r.get("to").strip() != "default":
        # "0.0.0.0/0" says the family itself
        want = 6 if ":" in r.get("to") else 4
        if (":" in route.gateway) != (want == 6):
            raise ValueError("mixes IPv4 and IPv6")
    return route


def _netplan_text(doc, problems):
    """The document as netplan YAML (under ``network:``), or "" when part of it
    could not be read: netplan refuses a whole configuration over one bad value,
    and a rendering of what could be read is the safer file."""
    if problems.bad:
        log.info("%s: not handing it to netplan as it is (%d problem(s) above); an image "
                 "with netplan gets what could be read", nc.NETWORK_CONFIG_V2, problems.bad)
        return ""
    import yaml
    try:
        return yaml.safe_dump({"network": unmangled(doc)}, default_flow_style=False,
                              sort_keys=False)
    except yaml.YAMLError as e:
        log.warning("%s: cannot write it back as YAML (%s)", nc.NETWORK_CONFIG_V2, e)
        return ""
