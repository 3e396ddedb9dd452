"""systemd-networkd: one .network per interface, a .netdev per bond and VLAN.

Files are /etc/systemd/network/10-guestagent-NAME.{network,netdev}: networkd
uses the first .network file (in name order) that matches an interface, so
these win over an image's catch-all DHCP file (``80-dhcp.network``,
``99-default.network``) for the NICs the document describes, and every
other NIC still matches the image's file.  NICs match on MAC address and
``Type=ether`` (a VLAN or bond shares the MAC, not the type).
Reference: systemd.network(5), systemd.netdev(5), systemd 252.
"""

from ...metadata import netconfig as nc
from .plan import HEADER, Plan, bond_option_lines

DIR = "/etc/systemd/network"
PREFIX = "10-guestagent-"
_BOND_FORMATS = {"miimon": "MIIMonitorSec={}ms", "xmit_hash_policy": "TransmitHashPolicy={}",
                 "lacp_rate": "LACPTransmitRate={}"}


def render(ifaces):
    plan = Plan("systemd-networkd")
    for it in ifaces:
        base = f"{DIR}/{PREFIX}{it.name}"
        if it.kind in (nc.BOND, nc.VLAN, nc.BRIDGE):
            plan.add(base + ".netdev", _netdev(it), what=it.name)
        plan.add(base + ".network", _network(it), what=f"{it.name}: {it.describe()}")
        plan.summary[it.name] = it.describe()
    return plan


def _netdev(it):
    out = [f"# {HEADER}", "[NetDev]", f"Name={it.name}",
           f"Kind={it.kind}"]
    if it.mac:
        out.append(f"MACAddress={it.mac}")
    if it.mtu:
        out.append(f"MTUBytes={it.mtu}")
    if it.kind == nc.BOND:
        out += ["", "[Bond]", f"Mode={it.bond_mode}"]
        out += bond_option_lines(it, _BOND_FORMATS)
    elif it.kind == nc.BRIDGE:
        out += ["", "[Bridge]", f"STP={'yes' if it.bridge_options.get('stp') else 'no'}"]
        if "forward_delay" in it.bridge_options:
            out.append(f"ForwardDelaySec={it.bridge_options['forward_delay']}")
    else:
        out += ["", "[VLAN]", f"Id={it.vlan_id}"]
    return "\n".join(out) + "\n"


def _network(it):
    out = [f"# {HEADER}", "[Match]"]
    if it.kind == nc.PHY:
        out += [f"MACAddress={it.mac}", "Type=ether"]
    else:
        out.append(f"Name={it.name}")
    mtu = it.mtu_to_set()
    if it.kind == nc.PHY and mtu:
        out += ["", "[Link]", f"MTUBytes={mtu}"]
    out += ["", "[Network]"]
    if it.master:
        out.append(f"{'Bridge' if it.master_kind == nc.BRIDGE else 'Bond'}={it.master}")
        return "\n".join(out) + "\n"
    m4, m6 = it.methods(4), it.methods(6)
    dhcp = [f for f, m in (("ipv4", m4), ("ipv6", m6)) if nc.DHCP in m]
    out.append("DHCP=" + ("yes" if len(dhcp) == 2 else dhcp[0] if dhcp else "no"))
    if m6 & {nc.SLAAC, nc.DHCPV6_STATELESS, nc.DHCP}:
        out.append("IPv6AcceptRA=yes")
    elif not m4 and not m6:
        out.append("LinkLocalAddressing=ipv6")
    for s in it.static():
        out.append(f"Address={s.address}")
    for ns in it.nameservers():
        out.append(f"DNS={ns}")
    if it.search():
        out.append("Domains=" + " ".join(it.search()))
    for v in it.vlans:
        out.append(f"VLAN={v}")
    if m6 & {nc.SLAAC, nc.DHCPV6_STATELESS}:
        # Neutron's port security expects the EUI-64 address it computed
        out += ["", "[IPv6AcceptRA]", "Token=eui64"]
    for _family, r in it.routes():
        out += ["", "[Route]", f"Destination={r.destination}", f"Gateway={r.gateway}"]
        if r.on_link:
            out.append("GatewayOnLink=yes")
        if r.metric is not None:
            out.append(f"Metric={r.metric}")
    return "\n".join(out) + "\n"
