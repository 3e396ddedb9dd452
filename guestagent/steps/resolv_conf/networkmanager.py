"""NetworkManager: a global-dns drop-in (global DNS wins over DHCP and
per-connection DNS), and whether NetworkManager writes resolv.conf at all."""

import configparser
import logging

from .owner_files import HEADER, WontLast, remove_dropin, write_dropin
from .settings import summary

log = logging.getLogger(__name__)

NM_DROPIN = "/etc/NetworkManager/conf.d/90-guestagent-dns.conf"
NM_CONF = "/etc/NetworkManager/NetworkManager.conf"
NM_CONF_DIR = "/etc/NetworkManager/conf.d"


def persist(system, dns):
    if not dns.nameservers:
        raise WontLast("NetworkManager's global DNS needs servers; the metadata gives only "
                       f"search domains ({' '.join(dns.search) or 'none'})")
    lines = [HEADER, "[global-dns]\n"]
    if dns.search:
        lines.append("searches=" + ",".join(dns.search) + "\n")
    if dns.options:
        lines.append("options=" + ",".join(dns.options) + "\n")
    lines += ["\n", "[global-dns-domain-*]\n", "servers=" + ",".join(dns.nameservers) + "\n"]
    if not write_dropin(system, NM_DROPIN, "".join(lines), "NetworkManager"):
        return []
    return [f"wrote {NM_DROPIN}, NetworkManager's global DNS ({summary(dns)})"]


def release(system):
    return remove_dropin(system, NM_DROPIN, "NetworkManager")


def dns_mode(system):
    """Why NetworkManager will write resolv.conf here, or '' when it will not."""
    if not system.exists(NM_CONF):
        return ""
    files = [NM_CONF]
    try:
        files += [f"{NM_CONF_DIR}/{n}" for n in system.listdir(NM_CONF_DIR)
                  if n.endswith(".conf")]
    except OSError:
        pass
    dns, rc_manager = "default", ""
    for f in files:
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            parser.read_string(system.read_text(f, default=""), source=f)
        except (configparser.Error, OSError) as e:
            log.debug("cannot read %s: %s", f, e)
            continue
        dns = parser.get("main", "dns", fallback=dns).strip()
        rc_manager = parser.get("main", "rc-manager", fallback=rc_manager).strip()
    if dns == "none" or rc_manager == "unmanaged":
        return ""
    if dns == "systemd-resolved":
        return ""  # it hands DNS to resolved; the symlink check decided already
    return f"NetworkManager.conf is present with dns={dns}"
