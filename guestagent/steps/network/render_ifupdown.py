"""ifupdown (Debian): one file, /etc/network/interfaces.d/50-guestagent.

ifupdown has no MAC matching: stanzas name the kernel's interfaces.  Static
routes other than the default are ``post-up``/``pre-down`` ``ip route``
commands (every value in them was checked as an address).  Bonds need
Debian's ifenslave (``bond-*`` options), bridges bridge-utils
(``bridge-ports``), VLANs are ifupdown's own ``NAME.VID`` interfaces with
``vlan-raw-device``.
Reference: interfaces(5) of ifupdown 0.8, ifenslave's README.Debian.
"""

from ...metadata import netconfig as nc
from .plan import HEADER, Plan, bond_option_lines

DIR = "/etc/network/interfaces.d"
PATH = f"{DIR}/50-guestagent"
_BOND_FORMATS = {"miimon": "bond-miimon {}", "xmit_hash_policy": "bond-xmit-hash-policy {}",
                 "lacp_rate": "bond-lacp-rate {}"}


def render(ifaces):
    plan = Plan("ifupdown")
    out = [f"# {HEADER}"]
    for it in ifaces:
        out += [""] + _stanzas(it)
        plan.summary[it.name] = it.describe()
    plan.add(PATH, "\n".join(out) + "\n", what=plan.described())
    return plan


def _stanzas(it):
    if it.master:
        # ifenslave enslaves the master's bond-slaves, bridge-utils a bridge's
        # bridge-ports; a member has no stanza
        return [f"# {it.name}: a {'port' if it.master_kind == nc.BRIDGE else 'member'} "
                f"of {it.master}"]
    out = [f"auto {it.name}"]
    v4 = it.by_family(4)
    v6 = it.by_family(6)
    first = True
    for family, subnets in ((4, v4), (6, v6)):
        if not subnets and (family == 6 or v6):
            continue
        out.append(f"iface {it.name} {_inet(family)} {_method(family, subnets)}")
        if first:
            out += ["    " + x for x in _link_options(it)]
            first = False
        static = [s for s in subnets if s.method == nc.STATIC]
        for s in static:
            out.append(f"    address {s.address}")
        for s in static:
            for r in s.routes:
                if _plain_default(r):
                    out.append(f"    gateway {r.gateway}")
                    break
        for s in static:
            for r in s.routes:
                if not _plain_default(r):
                    opt = "-6 " if family == 6 else ""
                    extra = (" onlink" if r.on_link else "") + (
                        f" metric {r.metric}" if r.metric is not None else "")
                    out.append(f"    post-up ip {opt}route add {r.destination} via "
                               f"{r.gateway} dev {it.name}{extra}")
                    out.append(f"    pre-down ip {opt}route del {r.destination} via "
                               f"{r.gateway} dev {it.name}{extra} || true")
        if family == 6 and nc.DHCPV6_STATELESS in {s.method for s in subnets}:
            out.append("    dhcp 1")
        servers = [n for s in subnets for n in s.nameservers]
        if servers:
            out.append("    dns-nameservers " + " ".join(dict.fromkeys(servers)))
        search = [n for s in subnets for n in s.search]
        if search:
            out.append("    dns-search " + " ".join(dict.fromkeys(search)))
    return out


def _plain_default(r):
    """A default route ifupdown's ``gateway`` can say (no metric, not on-link)."""
    return r.default and r.metric is None and not r.on_link


def _inet(family):
    return "inet" if family == 4 else "inet6"


def _method(family, subnets):
    methods = {s.method for s in subnets}
    if not subnets:
        return "manual"
    if nc.STATIC in methods:
        return "static"
    if nc.DHCP in methods:
        return "dhcp"
    return "auto"  # SLAAC (with "dhcp 1" for stateless DHCPv6)


def _link_options(it):
    out = []
    if it.kind == nc.BOND:
        out += [f"bond-slaves {' '.join(it.members)}", f"bond-mode {it.bond_mode}"]
        out += bond_option_lines(it, _BOND_FORMATS)
    if it.kind == nc.VLAN:
        out.append(f"vlan-raw-device {it.parent}")
    if it.kind == nc.BRIDGE:
        out += [f"bridge-ports {' '.join(it.members) or 'none'}",
                f"bridge-stp {'on' if it.bridge_options.get('stp') else 'off'}"]
        if "forward_delay" in it.bridge_options:
            out.append(f"bridge-fd {it.bridge_options['forward_delay']}")
    if it.mac and it.kind != nc.PHY:
        out.append(f"hwaddress ether {it.mac}")
    mtu = it.mtu_to_set()
    if mtu:
        out.append(f"mtu {mtu}")
    return out
