"""systemd-resolved: global DNS= and Domains= in a drop-in, which no lease replaces."""

import logging

from .owner_files import HEADER, WontLast, remove_dropin, write_dropin
from .settings import summary

log = logging.getLogger(__name__)

RESOLVED_DROPIN = "/etc/systemd/resolved.conf.d/guestagent.conf"


def persist(system, dns):
    if dns.options:
        log.warning("systemd-resolved has no resolver options; ignoring %s",
                    " ".join(dns.options))
    lines = [HEADER, "[Resolve]\n"]
    if dns.nameservers:
        lines.append("DNS=" + " ".join(dns.nameservers) + "\n")
    if dns.search:
        lines.append("Domains=" + " ".join(dns.search) + "\n")
    if len(lines) == 2:
        raise WontLast("the settings are resolver options only, which systemd-resolved "
                       "does not have")
    if not write_dropin(system, RESOLVED_DROPIN, "".join(lines), "systemd-resolved"):
        return []
    return [f"wrote {RESOLVED_DROPIN} for systemd-resolved ({summary(dns)})"]


def release(system):
    return remove_dropin(system, RESOLVED_DROPIN, "systemd-resolved")
