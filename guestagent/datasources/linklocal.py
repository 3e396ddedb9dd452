"""Nova's IPv6 metadata address, one URL per interface that is up.

Since Victoria, Nova's metadata service also answers on the link-local
address fe80::a9fe:a9fe, for guests without IPv4.  A link-local address
means nothing without an interface, so there is one URL per interface
(RFC 6874 zone: ``http://[fe80::a9fe:a9fe%25eth0]``).  They are tried only
after the configured 169.254.169.254 cannot be reached, within the same
retries and deadline.  The network is the host's even under ``--root``.
"""

import os
import re
from urllib.parse import urlsplit

IPV6_METADATA = "fe80::a9fe:a9fe"
IPV4_METADATA = "169.254.169.254"
SYS_NET = "/sys/class/net"
IFF_UP = 0x1
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,15}")


def ipv6_urls(configured_url, sys_net=SYS_NET):
    """Base URLs on fe80::a9fe:a9fe, when the configured URL is Nova's IPv4 one."""
    parts = urlsplit(configured_url)
    if parts.hostname != IPV4_METADATA:
        return []
    port = f":{parts.port}" if parts.port else ""
    out = []
    for name in interfaces_up(sys_net):
        out.append(f"{parts.scheme}://[{IPV6_METADATA}%25{name}]{port}{parts.path}")
    return out


def interfaces_up(sys_net=SYS_NET):
    try:
        names = sorted(os.listdir(sys_net))
    except OSError:
        return []
    up = []
    for name in names:
        if name == "lo" or not _NAME.fullmatch(name):
            continue
        try:
            with open(os.path.join(sys_net, name, "flags")) as f:
                flags = int(f.read().strip(), 16)
        except (OSError, ValueError):
            continue
        if flags & IFF_UP:
            up.append(name)
    return up
