"""/etc/resolv.conf itself, where nothing else owns it: the agent's lines in
place of the ones they replace, the rest of the file kept in order."""

import logging

from .owner_files import HEADER
from .settings import summary

log = logging.getLogger(__name__)

RESOLV_CONF = "/etc/resolv.conf"
GLIBC_MAX_NAMESERVERS = 3


def write_resolv_conf(system, dns):
    if len(dns.nameservers) > GLIBC_MAX_NAMESERVERS:
        log.warning("the metadata gives %d DNS servers; glibc uses only the first %d (%s)",
                    len(dns.nameservers), GLIBC_MAX_NAMESERVERS,
                    ", ".join(dns.nameservers[:GLIBC_MAX_NAMESERVERS]))
    old = system.read_text(RESOLV_CONF, default="")
    new = resolv_conf_text(old, dns)
    if new == old:
        log.debug("/etc/resolv.conf already says %s", summary(dns))
        return []
    system.write_file(RESOLV_CONF, new, mode=0o644)
    return [f"wrote /etc/resolv.conf ({summary(dns)})"]


def resolv_conf_text(old, dns):
    """``old`` with the agent's lines in place of the ones it replaces.

    Nameserver lines are replaced only when there are servers to write,
    search/domain lines only when there are domains, and option tokens only
    those the settings name; the rest of the file stays in order.
    """
    replace = set()
    if dns.nameservers:
        replace.add("nameserver")
    if dns.search:
        replace |= {"search", "domain"}
    ours = ["search " + " ".join(dns.search)] if dns.search else []
    ours += ["nameserver " + ns for ns in dns.nameservers]
    option_keys = {o.split(":", 1)[0] for o in dns.options}
    out, placed = [], False
    for line in old.splitlines():
        words = line.split()
        key = words[0] if words else ""
        if key in replace:
            if not placed:
                out += ours
                placed = True
            continue
        if key == "options" and option_keys:
            kept = [w for w in words[1:] if w.split(":", 1)[0] not in option_keys]
            if not kept:
                continue
            line = "options " + " ".join(kept)
        out.append(line)
    if not placed and ours:
        at = 0
        while at < len(out) and (not out[at].strip() or out[at].lstrip().startswith(("#", ";"))):
            at += 1
        out[at:at] = ours
    if dns.options:
        out.append("options " + " ".join(dns.options))
    if not old.strip():
        out.insert(0, HEADER.rstrip("\n"))
    return "\n".join(out) + "\n"
