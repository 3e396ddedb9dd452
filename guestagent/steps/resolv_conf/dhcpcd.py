"""dhcpcd beside a plain /etc/resolv.conf: ``nohook resolv.conf`` (servers
given) or ``static domain_search`` in a marked block of /etc/dhcpcd.conf."""

from .owner_files import release_block, write_block

DHCPCD_CONF = "/etc/dhcpcd.conf"
DHCPCD_BINARIES = ("/sbin/dhcpcd", "/usr/sbin/dhcpcd")


def persist(system, dns):
    if dns.nameservers:
        lines = ["nohook resolv.conf"]
    else:
        lines = ["static domain_search=" + " ".join(dns.search)]
    if not write_block(system, DHCPCD_CONF, lines):
        return []
    return [f"set {DHCPCD_CONF}: dhcpcd " + ("leaves /etc/resolv.conf alone" if dns.nameservers
                                             else "takes the metadata's search domains")]


def release(system):
    return release_block(system, DHCPCD_CONF)
