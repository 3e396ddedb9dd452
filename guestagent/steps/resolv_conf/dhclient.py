"""isc-dhcp-client beside a plain /etc/resolv.conf: an enter hook
(/etc/dhcp/dhclient-enter-hooks.d/guestagent, or /etc/dhcp/dhclient-enter-hooks
where there is no .d) that makes dhclient-script's make_resolv_conf do
nothing; with search domains only, it supersedes the lease's domain and
search instead, so DHCP's servers still arrive."""

import logging

from .owner_files import HEADER, remove_if_there, write_if_changed

log = logging.getLogger(__name__)

DHCLIENT_HOOK_DIR = "/etc/dhcp/dhclient-enter-hooks.d"
DHCLIENT_HOOK = DHCLIENT_HOOK_DIR + "/guestagent"
DHCLIENT_HOOK_FILE = "/etc/dhcp/dhclient-enter-hooks"  # where there is no .d
DHCLIENT_BINARIES = ("/sbin/dhclient", "/usr/sbin/dhclient")
_HOOK_MARK = "# guestagent: DNS from the instance metadata outlasts the DHCP lease"


def persist(system, dns):
    """An enter hook: dhclient-script sources it before it writes resolv.conf."""
    path = hook_path(system)
    if dns.nameservers:
        body = ("# dhclient leaves /etc/resolv.conf alone: guestagent wrote it from the\n"
                "# instance metadata (servers, search domains, options).\n"
                "make_resolv_conf() { :; }\n")
    else:
        # search domains only: DHCP's servers still come, with the metadata's domains
        search = " ".join(dns.search)
        body = ("# the lease's servers, the metadata's search domains\n"
                f"new_domain_search='{search}'\nnew_domain_name=''\n"
                f"new_dhcp6_domain_search='{search}'\n")
        if dns.options:
            log.warning("resolver options %s are not kept by dhclient when the metadata "
                        "names no DNS servers; they last until the next lease",
                        " ".join(dns.options))
    if not write_if_changed(system, path, f"{_HOOK_MARK}\n{HEADER}{body}"):
        return []
    what = "keeps the metadata's resolv.conf" if dns.nameservers else \
        "takes the metadata's search domains"
    return [f"wrote {path}: dhclient {what} at every lease"]


def release(system):
    changes = remove_if_there(system, DHCLIENT_HOOK)
    if _ours(system.read_text(DHCLIENT_HOOK_FILE, default="")):
        system.remove(DHCLIENT_HOOK_FILE)
        changes.append(f"removed {DHCLIENT_HOOK_FILE}")
    return changes


def hook_path(system):
    """Where the enter hook goes, or None when only someone else's file is there."""
    if system.exists(DHCLIENT_HOOK_DIR):
        return DHCLIENT_HOOK
    text = system.read_text(DHCLIENT_HOOK_FILE, default="")
    if not text or _ours(text):
        return DHCLIENT_HOOK_FILE
    return None


def _ours(text):
    return text.startswith(_HOOK_MARK)
