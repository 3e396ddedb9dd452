"""Debian's resolvconf and openresolv: both build /etc/resolv.conf from what
the DHCP clients hand them, and both take the agent's settings first.

  resolvconf  /etc/resolvconf/resolv.conf.d/head, which it puts before every
              interface's servers;
  openresolv  name_servers= and search_domains= in a marked block of
              /etc/resolvconf.conf.
"""

import logging

from .owner_files import HEADER, release_block, write_block, write_if_changed
from .settings import summary

log = logging.getLogger(__name__)

RESOLVCONF_HEAD = "/etc/resolvconf/resolv.conf.d/head"
OPENRESOLV_CONF = "/etc/resolvconf.conf"


def persist_resolvconf(system, dns):
    """Debian's resolvconf: the head file comes before every interface's servers."""
    old = system.read_text(RESOLVCONF_HEAD, default="")
    if not write_if_changed(system, RESOLVCONF_HEAD, _strip_ours(old) + HEADER
                            + "".join(f"{line}\n" for line in _resolv_lines(dns))):
        return []
    _update(system)
    return [f"wrote {RESOLVCONF_HEAD}, which resolvconf puts first in /etc/resolv.conf "
            f"({summary(dns)})"]


def persist_openresolv(system, dns):
    lines = []
    if dns.nameservers:
        lines.append(f'name_servers="{" ".join(dns.nameservers)}"')
    if dns.search:
        lines.append(f'search_domains="{" ".join(dns.search)}"')
    if dns.options:
        lines.append(f'resolv_conf_options="{" ".join(dns.options)}"')
    if not write_block(system, OPENRESOLV_CONF, lines):
        return []
    _update(system)
    return [f"set {OPENRESOLV_CONF} for openresolv ({summary(dns)})"]


def release(system):
    changes = release_block(system, OPENRESOLV_CONF)
    head = system.read_text(RESOLVCONF_HEAD, default="")
    if HEADER in head:
        system.write_file(RESOLVCONF_HEAD, _strip_ours(head), mode=0o644)
        changes.append(f"took the guestagent lines out of {RESOLVCONF_HEAD}")
    return changes


def _update(system):
    """resolvconf -u, so /etc/resolv.conf says it now rather than at the next lease."""
    if not system.live:
        return
    tool = system.which("resolvconf")
    res = system.run([tool, "-u"], timeout=60) if tool else None
    if res is None or res.returncode != 0:
        log.warning("resolvconf -u %s; /etc/resolv.conf follows at the next lease",
                    "is not available" if res is None
                    else f"failed (exit {res.returncode})")


def _resolv_lines(dns):
    lines = ["search " + " ".join(dns.search)] if dns.search else []
    lines += ["nameserver " + ns for ns in dns.nameservers]
    if dns.options:
        lines.append("options " + " ".join(dns.options))
    return lines


def _strip_ours(text):
    """``text`` without the header line and the lines the agent wrote after it."""
    if HEADER not in text:
        return text
    before, _, after = text.partition(HEADER)
    kept = [ln for ln in after.splitlines(True)
            if ln.split()[:1] not in (["search"], ["nameserver"], ["options"])]
    return before + "".join(kept)
