"""Network checks: nothing bound to the build machine's MAC, DHCP, no zeroconf route.

Every instance of an image gets a new MAC address.  A persistent-net rule or
an ``HWADDR=`` recorded at install time then names the NIC eth1 (or leaves it
unconfigured), and the instance never reaches the metadata service or SSH.
"""

import os
import re

from .finding import failed, passed, warned
from .tree import parse_shell_vars

PERSISTENT_NET = "/etc/udev/rules.d/70-persistent-net.rules"
GENERATOR = "75-persistent-net-generator.rules"
GENERATOR_MASK = f"/etc/udev/rules.d/{GENERATOR}"
GENERATOR_DIRS = ("/lib/udev/rules.d", "/usr/lib/udev/rules.d")
IFCFG_DIR = "/etc/sysconfig/network-scripts"
SYSCONFIG_NETWORK = "/etc/sysconfig/network"

_HWADDR = re.compile(r"\s*(export\s+)?HWADDR\s*=")
_MARK = "# guestagent check-image --fix"


def _rule_lines(text):
    return [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def check_persistent_net_rules(image):
    if not image.lexists(PERSISTENT_NET):
        return passed("persistent-net-rules", f"{PERSISTENT_NET} is absent")
    if image.link_target(PERSISTENT_NET) == "/dev/null":
        return passed("persistent-net-rules", f"{PERSISTENT_NET} is a link to /dev/null")
    rules = _rule_lines(image.read(PERSISTENT_NET, ""))
    if not rules:
        return passed("persistent-net-rules", f"{PERSISTENT_NET} has no rules")
    macs = re.findall(r'ATTR\{address\}=="([^"]+)"', "\n".join(rules))
    bound = f" bound to {', '.join(macs)}" if macs else ""
    return failed("persistent-net-rules",
                  f"{PERSISTENT_NET} has {len(rules)} rule(s){bound}: on a new instance "
                  "(new MAC) the NIC comes up as eth1, not eth0",
                  "empty the file (keep it, so udev does not warn): "
                  f": > {image.host(PERSISTENT_NET)}",
                  repair=_empty_persistent_net)


def _empty_persistent_net(image):
    text = image.read(PERSISTENT_NET, "")
    comments = [ln for ln in text.splitlines() if ln.lstrip().startswith("#")]
    body = "\n".join(comments + [f"{_MARK}: rules removed, they bound NIC names "
                                 "to the build machine's MAC"]) + "\n"
    image.system.write_file(PERSISTENT_NET, body)
    return [f"emptied {PERSISTENT_NET} ({len(_rule_lines(text))} MAC-bound rule(s) removed, "
            "comments kept)"]


def check_persistent_net_generator(image):
    generator = next((f"{d}/{GENERATOR}" for d in GENERATOR_DIRS
                      if image.is_file(f"{d}/{GENERATOR}")), None)
    if image.lexists(GENERATOR_MASK):
        target = image.link_target(GENERATOR_MASK)
        if target == "/dev/null":
            return passed("persistent-net-generator", f"{GENERATOR_MASK} -> /dev/null masks it")
        rules = _rule_lines(image.read(GENERATOR_MASK, ""))
        if not rules:
            return passed("persistent-net-generator",
                          f"masked by an empty {GENERATOR_MASK}")
        return warned("persistent-net-generator",
                      f"{GENERATOR_MASK} holds {len(rules)} rule(s) of its own instead of "
                      "masking the generator",
                      f"make it empty: echo '#' > {image.host(GENERATOR_MASK)}")
    if generator is None:
        return passed("persistent-net-generator",
                      "this udev ships no persistent-net generator (names do not follow MACs)")
    return failed("persistent-net-generator",
                  f"{generator} is active: on first boot it writes {PERSISTENT_NET} with "
                  "this machine's MAC, which breaks eth0 on every later instance",
                  f"mask it with an empty file: echo '#' > {image.host(GENERATOR_MASK)} "
                  "(a file in /etc "
                  "overrides the packaged one and survives udev upgrades)",
                  repair=_mask_generator)


def _mask_generator(image):
    image.system.write_file(GENERATOR_MASK, f"{_MARK}: masks the packaged {GENERATOR}, "
                            "which writes MAC-bound rules\n")
    return [f"masked {GENERATOR} with an empty {GENERATOR_MASK}"]


def _ifcfg_files(image):
    return [f"{IFCFG_DIR}/{n}" for n in image.listdir(IFCFG_DIR)
            if n.startswith("ifcfg-") and n != "ifcfg-lo" and not n.endswith((".bak", "~"))
            and image.is_file(f"{IFCFG_DIR}/{n}")]


def check_ifcfg_hwaddr(image):
    bound = [p for p in _ifcfg_files(image)
             if any(_HWADDR.match(ln) for ln in image.read(p, "").splitlines())]
    if not bound:
        if not _ifcfg_files(image):
            return passed("ifcfg-hwaddr", f"no {IFCFG_DIR}/ifcfg-* files")
        return passed("ifcfg-hwaddr", "no HWADDR= in the ifcfg files")
    return failed("ifcfg-hwaddr",
                  f"HWADDR= in {', '.join(bound)}: the interface config is bound to the build "
                  "machine's NIC and is skipped on a new instance",
                  "delete the HWADDR lines: sed -i '/^HWADDR=/d' "
                  + " ".join(image.host(p) for p in bound),
                  repair=_drop_hwaddr)


def _drop_hwaddr(image):
    changes = []
    for path in _ifcfg_files(image):
        text = image.read(path, "")
        lines = text.splitlines(keepends=True)
        kept = [ln for ln in lines if not _HWADDR.match(ln)]
        if len(kept) != len(lines):
            mode = _mode(image, path)
            image.system.write_file(path, "".join(kept), mode=mode)
            changes.append(f"removed {len(lines) - len(kept)} HWADDR line(s) from {path}")
    return changes


def _mode(image, path):
    host = image.resolve(path)
    return os.stat(host).st_mode & 0o7777 if host else 0o644


def check_mac_bound_config(image):
    """MAC matches or fixed MACs elsewhere: reported, never auto-edited (user config)."""
    found = []
    for p in _ifcfg_files(image):
        if re.search(r"^\s*MACADDR\s*=", image.read(p, ""), re.M):
            found.append(f"{p} (MACADDR=)")
    for d, suffixes, rx in (
            ("/etc/systemd/network", (".link", ".network"),
             r"^\s*(MACAddress|PermanentMACAddress)\s*="),
            ("/etc/netplan", (".yaml", ".yml"), r"^\s*macaddress\s*:"),
            ("/etc/NetworkManager/system-connections", ("",), r"^\s*mac-address\s*="),
            ("/etc/network/interfaces.d", ("",), r"^\s*hwaddress\s")):
        for name in image.listdir(d):
            if name.endswith(suffixes) and re.search(rx, image.read(f"{d}/{name}", ""), re.M):
                found.append(f"{d}/{name}")
    if re.search(r"^\s*hwaddress\s", image.read("/etc/network/interfaces", ""), re.M):
        found.append("/etc/network/interfaces (hwaddress)")
    if not found:
        return passed("mac-bound-config", "no network config names a MAC address")
    return warned("mac-bound-config",
                  f"network config names a MAC address: {', '.join(found)}; it will not match "
                  "(or will clash) on other instances",
                  "match interfaces by name (eth0, en*) instead of by MAC, "
                  "and drop fixed MAC settings")


def check_nozeroconf(image):
    if image.family == "debian" or (image.family != "rhel"
                                    and not image.lexists(SYSCONFIG_NETWORK)):
        why = ("Debian family: nothing reads /etc/sysconfig/network, and ifupdown adds no "
               "169.254.0.0/16 zeroconf route" if image.family == "debian"
               else "no /etc/sysconfig/network and not a RHEL-family image")
        hook = "/etc/network/if-up.d/avahi-autoipd"
        if image.lexists(hook):
            return warned("nozeroconf",
                          f"{hook} is installed: it may add a 169.254.0.0/16 link-local "
                          "route that competes with the route to the metadata service",
                          image.install_cmd("avahi-autoipd").replace("install", "purge", 1))
        return passed("nozeroconf", f"not applicable ({why})")
    value = parse_shell_vars(image.read(SYSCONFIG_NETWORK, "")).get("NOZEROCONF", "")
    if value.lower() in ("yes", "true", "1"):
        return passed("nozeroconf", f"NOZEROCONF={value} in {SYSCONFIG_NETWORK}")
    found = f"NOZEROCONF={value}" if value else "no NOZEROCONF"
    return failed("nozeroconf",
                  f"{found} in {SYSCONFIG_NETWORK}: the network scripts add a "
                  "169.254.0.0/16 zeroconf route that can break access to the metadata "
                  "service at 169.254.169.254",
                  f"echo NOZEROCONF=yes >> {image.host(SYSCONFIG_NETWORK)}",
                  repair=_set_nozeroconf)


def _set_nozeroconf(image):
    text = image.read(SYSCONFIG_NETWORK, "")
    lines = text.splitlines()
    rx = re.compile(r"\s*(export\s+)?NOZEROCONF\s*=")
    if any(rx.match(ln) for ln in lines):
        lines = ["NOZEROCONF=yes" if rx.match(ln) else ln for ln in lines]
    else:
        lines.append("NOZEROCONF=yes")
    image.system.write_file(SYSCONFIG_NETWORK, "\n".join(lines) + "\n",
                            mode=_mode(image, SYSCONFIG_NETWORK))
    return [f"set NOZEROCONF=yes in {SYSCONFIG_NETWORK}"]


def check_network_dhcp(image):
    how = _dhcp_config(image)
    if how:
        return passed("network-dhcp", f"the network comes up with DHCP ({how})")
    return warned("network-dhcp",
                  "no DHCP configuration found (ifupdown, ifcfg, systemd-networkd, netplan, "
                  "NetworkManager): the instance may boot without network (a config drive "
                  "still works, the metadata service does not)",
                  "configure DHCP on the first NIC, e.g. ifupdown: 'allow-hotplug eth0' and "
                  "'iface eth0 inet dhcp' in /etc/network/interfaces.d/eth0; or a "
                  "systemd-networkd .network file with Name=en* eth* and DHCP=yes")


def _dhcp_config(image):
    from .units import is_enabled
    texts = [("/etc/network/interfaces", image.read("/etc/network/interfaces", ""))]
    texts += [(f"/etc/network/interfaces.d/{n}", image.read(f"/etc/network/interfaces.d/{n}", ""))
              for n in image.listdir("/etc/network/interfaces.d")]
    for path, text in texts:
        if re.search(r"^\s*iface\s+(?!lo\s)\S+\s+inet6?\s+(dhcp|auto)", text or "", re.M):
            return f"ifupdown, {path}"
    for p in _ifcfg_files(image):
        if parse_shell_vars(image.read(p, "")).get("BOOTPROTO", "").lower() == "dhcp":
            return f"ifcfg, {p}"
    for n in image.listdir("/etc/systemd/network"):
        text = image.read(f"/etc/systemd/network/{n}", "") or ""
        if n.endswith(".network") and re.search(r"^\s*DHCP\s*=\s*(yes|true|ipv4|both)", text,
                                                re.M | re.I):
            if is_enabled(image, "systemd-networkd.service"):
                return f"systemd-networkd, /etc/systemd/network/{n}"
    for n in image.listdir("/etc/netplan"):
        if re.search(r"dhcp4\s*:\s*(true|yes)", image.read(f"/etc/netplan/{n}", "") or ""):
            return f"netplan, /etc/netplan/{n}"
    if image.program("NetworkManager") and is_enabled(image, "NetworkManager.service"):
        return "NetworkManager, which brings up wired NICs with DHCP by default"
    return ""


CHECKS = [check_persistent_net_rules, check_persistent_net_generator, check_ifcfg_hwaddr,
          check_mac_bound_config, check_nozeroconf, check_network_dhcp]
