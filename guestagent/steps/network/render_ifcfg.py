"""ifcfg network-scripts (RHEL 7/8, CentOS): ifcfg-NAME, route-NAME, route6-NAME.

Read by initscripts' ``network`` service and by NetworkManager's ifcfg-rh
plugin alike.  The file names the kernel's interface (``DEVICE=``); bonds
take ``BONDING_OPTS``, VLANs ``VLAN=yes`` with ``PHYSDEV``, bridges
``TYPE=Bridge`` and their ports ``BRIDGE=``.  Values are
quoted only where they hold spaces (all are checked addresses and numbers).
Reference: nm-settings-ifcfg-rh(5), initscripts' sysconfig.txt.
"""

from ...metadata import netconfig as nc
from .plan import BOND_OPTIONS, HEADER, Plan, bond_option_lines

DIR = "/etc/sysconfig/network-scripts"


def render(ifaces):
    plan = Plan("ifcfg")
    for it in ifaces:
        plan.add(f"{DIR}/ifcfg-{it.name}", _ifcfg(it), what=f"{it.name}: {it.describe()}")
        for family, name in ((4, "route"), (6, "route6")):
            lines = [f"{'default' if r.default else r.destination} via {r.gateway} "
                     f"dev {it.name}" + (" onlink" if r.on_link else "")
                     + (f" metric {r.metric}" if r.metric is not None else "")
                     for f, r in it.routes() if f == family and not _plain_default(r)]
            path = f"{DIR}/{name}-{it.name}"
            if lines:
                plan.add(path, f"# {HEADER}\n" + "\n".join(lines) + "\n",
                         what=f"{it.name}: routes")
            else:
                plan.replace(path)  # an image's old routes for this NIC would mislead
        plan.summary[it.name] = it.describe()
    return plan


def _ifcfg(it):
    out = [f"# {HEADER}", f"DEVICE={it.name}", "ONBOOT=yes"]
    if it.kind == nc.PHY:
        out.append("TYPE=Ethernet")
    elif it.kind == nc.BOND:
        out += ["TYPE=Bond", "BONDING_MASTER=yes", f'BONDING_OPTS="{_bonding_opts(it)}"']
    elif it.kind == nc.BRIDGE:
        out += ["TYPE=Bridge", f"STP={'yes' if it.bridge_options.get('stp') else 'no'}"]
        if "forward_delay" in it.bridge_options:
            out.append(f"DELAY={it.bridge_options['forward_delay']}")
    else:
        out += ["VLAN=yes", f"PHYSDEV={it.parent}", f"VLAN_ID={it.vlan_id}"]
    if it.mac and it.kind != nc.PHY:
        out.append(f"MACADDR={it.mac}")
    mtu = it.mtu_to_set()
    if mtu:
        out.append(f"MTU={mtu}")
    if it.master and it.master_kind == nc.BRIDGE:
        out += [f"BRIDGE={it.master}", "BOOTPROTO=none"]
        return "\n".join(out) + "\n"
    if it.master:
        out += [f"MASTER={it.master}", "SLAVE=yes", "BOOTPROTO=none"]
        return "\n".join(out) + "\n"
    m4, m6 = it.methods(4), it.methods(6)
    out.append("BOOTPROTO=" + ("dhcp" if nc.DHCP in m4 else "none"))
    v4 = it.static(4)
    for n, s in enumerate(v4):
        suffix = "" if n == 0 else str(n)
        addr, prefix = s.address.split("/")
        out += [f"IPADDR{suffix}={addr}", f"PREFIX{suffix}={prefix}"]
    gw4 = next((r.gateway for s in v4 for r in s.routes if _plain_default(r)), None)
    if gw4:
        out.append(f"GATEWAY={gw4}")
    if m6:
        out.append("IPV6INIT=yes")
        out.append("IPV6_AUTOCONF=" + ("yes" if m6 & {nc.SLAAC, nc.DHCPV6_STATELESS}
                                       else "no"))
        if nc.DHCP in m6:
            out.append("DHCPV6C=yes")
        elif nc.DHCPV6_STATELESS in m6:
            out += ["DHCPV6C=yes", 'DHCPV6C_OPTIONS="-S"']
        v6 = it.static(6)
        if v6:
            out.append(f"IPV6ADDR={v6[0].address}")
        if len(v6) > 1:
            out.append('IPV6ADDR_SECONDARIES="' + " ".join(s.address for s in v6[1:]) + '"')
        gw6 = next((r.gateway for s in v6 for r in s.routes if _plain_default(r)), None)
        if gw6:
            out.append(f"IPV6_DEFAULTGW={gw6}")
    for n, ns in enumerate(it.nameservers()[:3], 1):
        out.append(f"DNS{n}={ns}")
    if it.search():
        out.append('DOMAIN="' + " ".join(it.search()) + '"')
    return "\n".join(out) + "\n"


def _plain_default(r):
    """A default route GATEWAY= can say; one with a metric or on-link goes into
    the route file, as ``default via ...``."""
    return r.default and r.metric is None and not r.on_link


def _bonding_opts(it):
    opts = [f"mode={it.bond_mode}"]
    opts += bond_option_lines(it, {key: key + "={}" for key in BOND_OPTIONS})
    return " ".join(opts)
