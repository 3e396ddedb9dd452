"""netplan (Ubuntu): one file, /etc/netplan/90-guestagent.yaml (0600).

NICs are ``ethernets`` matched by MAC address, under the kernel's name as
their id; ``bonds`` and ``vlans`` refer to those ids.  netplan merges
files in name order; the step moves an image's file aside when it only
describes NICs this file describes, and otherwise leaves those NICs as the
image had them.  Written without a YAML library: every scalar is a checked
address, number or name, quoted where YAML could misread it.
A network-config v2 document is netplan's own format: when the whole of it
could be read, it is written as it is instead (`render` ``document``),
so what the model has no place for (bridges, set-name, dhcp4-overrides,
match by driver) is netplan's to do.
Reference: netplan's YAML reference (netplan.io 0.106).
"""

from ...metadata import netconfig as nc
from .plan import HEADER, Plan, bond_option_lines

DIR = "/etc/netplan"
PATH = f"{DIR}/90-guestagent.yaml"
_BOND_FORMATS = {"miimon": "  mii-monitor-interval: {}",
                 "xmit_hash_policy": '  transmit-hash-policy: "{}"',
                 "lacp_rate": '  lacp-rate: "{}"'}


def render(ifaces, document=""):
    """The plan for ``ifaces``; with ``document`` (network-config v2 as netplan
    YAML), that document as it is, for netplan to read in full."""
    plan = Plan("netplan")
    if document:
        for it in ifaces:
            plan.summary[it.name] = it.describe()
        plan.add(PATH, f"# {HEADER}\n{document}", mode=0o600,
                 what="the instance's network-config v2 as it is: " + plan.described())
        return plan
    groups = {"ethernets": [], "bonds": [], "vlans": [], "bridges": []}
    for it in ifaces:
        key = {nc.PHY: "ethernets", nc.BOND: "bonds", nc.VLAN: "vlans",
               nc.BRIDGE: "bridges"}[it.kind]
        groups[key].append(it)
        plan.summary[it.name] = it.describe()
    out = [f"# {HEADER}", "network:", "  version: 2"]
    for key, members in groups.items():
        if not members:
            continue
        out.append(f"  {key}:")
        for it in members:
            out.append(f'    "{it.name}":')
            out += ["      " + line for line in _device(it)]
    plan.add(PATH, "\n".join(out) + "\n", mode=0o600, what=plan.described())
    return plan


def _q(value):
    return f'"{value}"'


def _device(it):
    out = []
    if it.kind == nc.PHY:
        out += ["match:", f"  macaddress: {_q(it.mac)}"]
    elif it.mac:
        out.append(f"macaddress: {_q(it.mac)}")
    if it.kind == nc.BOND:
        out.append("interfaces: [" + ", ".join(_q(m) for m in it.members) + "]")
        out += ["parameters:", f"  mode: {_q(it.bond_mode)}"]
        out += bond_option_lines(it, _BOND_FORMATS)
    if it.kind == nc.VLAN:
        out += [f"id: {it.vlan_id}", f"link: {_q(it.parent)}"]
    if it.kind == nc.BRIDGE:
        out.append("interfaces: [" + ", ".join(_q(m) for m in it.members) + "]")
        out += ["parameters:", f"  stp: {'true' if it.bridge_options.get('stp') else 'false'}"]
        if "forward_delay" in it.bridge_options:
            out.append(f"  forward-delay: {it.bridge_options['forward_delay']}")
    mtu = it.mtu_to_set()
    if mtu:
        out.append(f"mtu: {mtu}")
    if it.master:
        out += ["dhcp4: false", "dhcp6: false"]
        return out
    m4, m6 = it.methods(4), it.methods(6)
    out.append(f"dhcp4: {'true' if nc.DHCP in m4 else 'false'}")
    out.append(f"dhcp6: {'true' if nc.DHCP in m6 else 'false'}")
    if m6 & {nc.SLAAC, nc.DHCPV6_STATELESS, nc.DHCP}:
        out += ["accept-ra: true", "ipv6-address-generation: eui64"]
    static = it.static()
    if static:
        out.append("addresses: [" + ", ".join(_q(s.address) for s in static) + "]")
    routes = it.routes()
    if routes:
        out.append("routes:")
        for _family, r in routes:
            to = "default" if r.default else _q(r.destination)
            out += [f"  - to: {to}", f"    via: {_q(r.gateway)}"]
            if r.on_link:
                out.append("    on-link: true")
            if r.metric is not None:
                out.append(f"    metric: {r.metric}")
    if it.nameservers() or it.search():
        out.append("nameservers:")
        if it.nameservers():
            out.append("  addresses: [" + ", ".join(_q(x) for x in it.nameservers()) + "]")
        if it.search():
            out.append("  search: [" + ", ".join(_q(x) for x in it.search()) + "]")
    return out
