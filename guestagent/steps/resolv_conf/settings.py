"""The DNS settings the instance asks for, checked value by value.

From the metadata (network_data.json ``services`` of type ``dns``) and,
taking precedence field by field, #cloud-config ``resolv_conf`` when
``manage_resolv_conf: true``.  The #cloud-config's shape was checked as the
user-data was read (guestagent/schema/resolv_conf.py: a mapping of the known
fields, lists of strings, options by name); here every value is checked
before it can reach a file: addresses through `ipaddress`, domains per RFC
1123, options against a plain pattern.  Junk is dropped with a warning
naming it; nothing with a line break or a space ever gets through.
"""

import ipaddress
import logging
import re

from ...log import shown
from ...metadata import dedupe
from ...metadata.dns_names import BadName, check_name

log = logging.getLogger(__name__)

_SCOPE = re.compile(r"[A-Za-z0-9_.-]{1,15}")
_OPTION = re.compile(r"[a-z][a-z0-9-]{0,31}")


class DnsSettings:
    def __init__(self, nameservers=None, search=None, options=None):
        self.nameservers = list(nameservers or [])
        self.search = list(search or [])  # the domain first, when one was given
        self.options = list(options or [])  # resolv.conf tokens: rotate, timeout:1

    def __eq__(self, other):
        return isinstance(other, DnsSettings) and (
            self.nameservers, self.search, self.options) == (
            other.nameservers, other.search, other.options)

    def __repr__(self):
        return (f"DnsSettings(nameservers={self.nameservers!r}, search={self.search!r}, "
                f"options={self.options!r})")

    def empty(self):
        return not (self.nameservers or self.search or self.options)


def from_context(ctx):
    """DnsSettings from the metadata and #cloud-config."""
    md = ctx.metadata
    servers = nameservers(md.dns_nameservers if md else [], "the metadata's DNS servers")
    search = domains(md.dns_search if md else [], "the metadata's DNS search domains")
    options = []
    cc = _cloud_resolv_conf(ctx.cloud_config or {})
    if cc is not None:
        if cc.get("nameservers") is not None:
            servers = nameservers(cc["nameservers"], "#cloud-config resolv_conf.nameservers")
        if cc.get("searchdomains") is not None or cc.get("domain") is not None:
            domain = [] if cc.get("domain") in (None, "") else [cc["domain"]]
            search = domains(domain + (cc.get("searchdomains") or []),
                             "#cloud-config resolv_conf domain and searchdomains")
        options = resolver_options(cc.get("options"))
    return DnsSettings(dedupe(servers), dedupe(search), options)


def _cloud_resolv_conf(cc):
    """The resolv_conf mapping when manage_resolv_conf is true, else None (the
    reading of the user-data said why a resolv_conf without it is ignored)."""
    if cc.get("manage_resolv_conf") is not True:
        return None
    rc = cc.get("resolv_conf")
    if rc is None:
        log.warning("#cloud-config manage_resolv_conf is true but resolv_conf is missing; "
                    "using the metadata's DNS settings")
    return rc


def nameservers(values, what):
    out = []
    for v in values:
        try:
            out.append(nameserver(v))
        except ValueError as e:
            log.warning("ignoring DNS server %s from %s: %s", shown(v), what, e)
    return out


def nameserver(value):
    """The address in canonical form, or ValueError."""
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    addr, sep, scope = value.partition("%")
    if sep and not _SCOPE.fullmatch(scope):
        raise ValueError("bad interface scope after '%'")
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        raise ValueError("not an IP address") from None
    if sep and ip.version != 6:
        raise ValueError("only IPv6 addresses take an interface scope")
    return str(ip) + (sep + scope)


def domains(values, what):
    out = []
    for v in values:
        try:
            out.append(check_name(v, fix_underscores=False))
        except BadName as e:
            log.warning("ignoring DNS search domain %s from %s: %s", shown(v), what, e)
    return out


def resolver_options(value):
    """resolv.conf option tokens from {rotate: true, timeout: 1}."""
    if value is None:
        return []
    out = []
    for key, v in value.items():
        if not _OPTION.fullmatch(key):
            log.warning("ignoring resolver option %s: not an option name", shown(key))
            continue
        if v is True:
            out.append(key)
        elif v is False or v is None:
            continue
        elif isinstance(v, int) or (isinstance(v, str) and v.isascii() and v.isdigit()
                                    and len(v) < 6):
            if int(v) < 0:
                log.warning("ignoring resolver option %s: negative value", key)
                continue
            out.append(f"{key}:{int(v)}")
        else:
            log.warning("ignoring resolver option %s: value %s is not true, false or a "
                        "number", key, shown(v))
    return out


def summary(dns):
    """The settings in a few words, for the log and `status`."""
    parts = []
    if dns.nameservers:
        parts.append("servers " + ", ".join(dns.nameservers))
    if dns.search:
        parts.append("search " + " ".join(dns.search))
    if dns.options:
        parts.append("options " + " ".join(dns.options))
    return "; ".join(parts)
