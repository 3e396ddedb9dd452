"""DNS names from untrusted metadata (host names, search domains): checked,
lightly fixed, or refused.

RFC 1123: labels of letters, digits and '-', 1-63 characters, not starting
or ending with '-'; at most 253 characters in all.  What can be fixed without
guessing is fixed (upper case, '_' in host names, one trailing dot); anything
else is refused, so a hostile value never reaches /etc/hostname, /etc/hosts,
resolv.conf or a command line.
"""

import ipaddress
import re
import unicodedata
from collections import namedtuple

MAX_NAME = 253
MAX_LABEL = 63
_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_ALLOWED = re.compile(r"[A-Za-z0-9._-]+")
_SHELL = set(";|&$`'\"<>(){}[]\\*?!~#^=%")

HostName = namedtuple("HostName", "fqdn short")


class BadName(ValueError):
    """A name that cannot be used; the message says why, in plain words."""


def check_name(value, fix_underscores=True):
    """The normalised name (lower case, no trailing dot) or BadName."""
    if not isinstance(value, str):
        raise BadName(f"expected a string, got {type(value).__name__}")
    if not value:
        raise BadName("it is empty")
    _refuse_bad_characters(value)
    name = value.lower()
    if fix_underscores:
        name = name.replace("_", "-")
    elif "_" in name:
        raise BadName("it contains '_', which a domain name may not hold")
    if name.endswith("."):
        name = name[:-1]
    if not name:
        raise BadName("it is only a dot")
    if len(name) > MAX_NAME:
        raise BadName(f"it is {len(name)} characters long (at most {MAX_NAME})")
    for label in name.split("."):
        if not label:
            raise BadName("it has an empty label (two dots in a row, or a leading dot)")
        if len(label) > MAX_LABEL:
            raise BadName(f"a label is {len(label)} characters long (at most {MAX_LABEL})")
        if not _LABEL.fullmatch(label):
            raise BadName(f"label {label!r} starts or ends with '-'")
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return name
    raise BadName("it is an IP address, not a name")


def check_hostname(value):
    """HostName(fqdn, short) from a metadata host name, or BadName.

    'test.novalocal' -> fqdn 'test.novalocal', short 'test'; a name without
    a dot is both.
    """
    name = check_name(value, fix_underscores=True)
    short = name.split(".", 1)[0]
    for candidate in (name, short):
        if _reads_as_ipv4(candidate):
            raise BadName(f"{candidate!r} reads as an IPv4 address to the resolver "
                          f"(inet_aton), not as a host name")
    return HostName(name, short)


def _reads_as_ipv4(name):
    """True for what inet_aton(3) takes: '2130706433', '0x7f000001', '127.1'."""
    import socket
    try:
        socket.inet_aton(name)
    except (OSError, ValueError):
        return False
    return True


def _refuse_bad_characters(value):
    if _ALLOWED.fullmatch(value):
        return
    if any(c in "\n\r" for c in value):
        raise BadName("it contains a line break")
    if any(c.isspace() for c in value):
        raise BadName("it contains whitespace")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") for c in value):
        raise BadName("it contains control characters")
    if any(ord(c) > 127 for c in value):
        raise BadName("it contains non-ASCII characters")
    bad = sorted({c for c in value if c in _SHELL})
    if bad:
        raise BadName("it contains shell characters " + " ".join(bad))
    bad = sorted({c for c in value if not _ALLOWED.fullmatch(c)})
    raise BadName("it contains characters not allowed in a name: " + " ".join(bad))
