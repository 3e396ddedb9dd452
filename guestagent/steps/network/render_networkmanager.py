"""NetworkManager keyfiles (RHEL 9, Fedora): one connection per interface.

/etc/NetworkManager/system-connections/guestagent-NAME.nmconnection, 0600
(NetworkManager ignores keyfiles others can read).  NICs are bound by
``mac-address``; bonds and VLANs by the name the agent gives them.  The
connections carry ``autoconnect-priority=100`` so they win over an image's
own profile for the same NIC (and over NetworkManager's in-memory "Wired
connection"), which the step moves aside anyway.
Reference: nm-settings-keyfile(5), nm-settings-nmcli(5), NetworkManager 1.42.
"""

import uuid

from ...metadata import netconfig as nc
from .plan import BOND_OPTIONS, HEADER, Plan, bond_option_lines

DIR = "/etc/NetworkManager/system-connections"
PREFIX = "guestagent-"
SUFFIX = ".nmconnection"
PRIORITY = 100
_NAMESPACE = uuid.UUID("3a6a8e0e-8f2a-4c1e-9d4b-6f1d2b7e9c10")


def path_for(name):
    return f"{DIR}/{PREFIX}{name}{SUFFIX}"


def render(ifaces):
    plan = Plan("NetworkManager")
    for it in ifaces:
        plan.add(path_for(it.name), _keyfile(it), mode=0o600,
                 what=f"{it.name}: {it.describe()}")
        plan.summary[it.name] = it.describe()
    return plan


def connection_uuid(name, mac):
    """Stable for the same interface and MAC, so a rerun rewrites the same profile."""
    return str(uuid.uuid5(_NAMESPACE, f"{name} {mac}"))


def _keyfile(it):
    kind = {nc.PHY: "ethernet", nc.BOND: "bond", nc.VLAN: "vlan",
            nc.BRIDGE: "bridge"}[it.kind]
    out = [f"# {HEADER}", "[connection]", f"id=guestagent {it.name}",
           f"uuid={connection_uuid(it.name, it.mac)}", f"type={kind}",
           "autoconnect=true", f"autoconnect-priority={PRIORITY}"]
    if it.kind != nc.PHY:
        out.append(f"interface-name={it.name}")
    if it.master:
        out += [f"master={it.master}", f"slave-type={it.master_kind}"]
    mtu = it.mtu_to_set()
    out += ["", "[ethernet]"]
    if it.kind == nc.PHY:
        out.append(f"mac-address={it.mac.upper()}")
    elif it.mac:
        out.append(f"cloned-mac-address={it.mac.upper()}")
    if mtu:
        out.append(f"mtu={mtu}")
    if it.kind == nc.BOND:
        out += ["", "[bond]", f"mode={it.bond_mode}"]
        out += bond_option_lines(it, {key: key + "={}" for key in BOND_OPTIONS})
    if it.kind == nc.VLAN:
        out += ["", "[vlan]", f"id={it.vlan_id}", f"parent={it.parent}"]
    if it.kind == nc.BRIDGE:
        # NetworkManager's default is STP on: say it either way
        out += ["", "[bridge]", f"stp={'true' if it.bridge_options.get('stp') else 'false'}"]
        if 2 <= it.bridge_options.get("forward_delay", 0):  # NM's range is 2-30
            out.append(f"forward-delay={it.bridge_options['forward_delay']}")
    if it.master:
        return "\n".join(out) + "\n"
    for family in (4, 6):
        out += [""] + _ip_section(it, family)
    return "\n".join(out) + "\n"


def _plain_default(r):
    """A default route ``gateway=`` can say; one with a metric or on-link is a
    route (0.0.0.0/0) of its own."""
    return r.default and r.metric is None and not r.on_link


def _ip_section(it, family):
    subnets = it.by_family(family)
    methods = {s.method for s in subnets}
    out = [f"[ipv{family}]"]
    if nc.STATIC in methods:
        out.append("method=manual")
    elif nc.DHCP in methods:
        out.append("method=auto" if family == 4 else "method=dhcp")
    elif methods & {nc.SLAAC, nc.DHCPV6_STATELESS}:
        out.append("method=auto")
    else:
        # nothing said: IPv4 off, IPv6 as NetworkManager would do by itself
        out.append("method=disabled" if family == 4 else "method=auto")
    if family == 6 and methods & {nc.SLAAC, nc.DHCPV6_STATELESS, nc.DHCP}:
        out.append("addr-gen-mode=eui64")  # the address Neutron's port security expects
    n = 0
    for s in subnets:
        if s.method == nc.STATIC:
            n += 1
            out.append(f"address{n}={s.address}")
    gateway = next((r.gateway for s in subnets if s.method == nc.STATIC
                    for r in s.routes if _plain_default(r)), None)
    if gateway:
        out.append(f"gateway={gateway}")
    n = 0
    for s in subnets:
        if s.method != nc.STATIC:
            continue
        for r in s.routes:
            if not _plain_default(r):
                n += 1
                metric = f",{r.metric}" if r.metric is not None else ""
                out.append(f"route{n}={r.destination},{r.gateway}{metric}")
                if r.on_link:
                    out.append(f"route{n}_options=onlink=true")
    servers = [x for x in it.nameservers() if (":" in x) == (family == 6)]
    if servers:
        out.append("dns=" + "".join(f"{x};" for x in servers))
    if it.search() and family == 4:
        out.append("dns-search=" + "".join(f"{x};" for x in it.search()))
    return out
