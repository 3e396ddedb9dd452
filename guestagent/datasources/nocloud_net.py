"""NoCloud over HTTP: ``ds=nocloud;s=http://host/path/`` (or ``nocloud-net``).

The seed URL comes from the kernel command line or the DMI system serial
number (Proxmox and libvirt: ``-smbios type=1,serial=ds=nocloud;s=...``);
without one this source is not there, and nothing is asked.  The seed's
files are fetched with the metadata service's client (the same retries,
deadline and size cap, and no redirect followed, to another host or any):
``meta-data`` decides whether the seed is there, ``user-data``,
``vendor-data`` and ``network-config`` follow and a 404 on them means none.
"""

import logging

from ..log import shown
from . import NotFound
from .evidence import nocloud_argument
from .nocloud import from_seed_files

log = logging.getLogger(__name__)

NEEDS_NETWORK = True


def fetch(ctx):
    arg = nocloud_argument(ctx.system)
    if arg is None or not arg.over_network:
        raise NotFound("no ds=nocloud with an http(s) seed URL on the kernel command line "
                       "or in the DMI serial number")
    base = arg.seedfrom if arg.seedfrom.endswith("/") else arg.seedfrom + "/"
    client = ctx.client_for(base)
    r = client.get("meta-data")
    if r.status != 200:
        raise NotFound(f"{shown(base + 'meta-data')} answered HTTP {r.status}")
    files = {"meta-data": r.body}
    files.update(client.get_optional(("user-data", "vendor-data", "network-config")))
    return from_seed_files(f"nocloud-net ({base})", files, arg.meta)
