"""Hetzner Cloud: two requests to the metadata address, only on a Hetzner DMI.

A Hetzner server says so in its DMI system vendor (``Hetzner``) and carries
its instance id as the DMI system serial number; anywhere else this source
is not there and asks nothing.  ``/hetzner/v1/metadata`` is one YAML
document (hostname, instance-id, public-keys, network-config version 1,
vendor_data, the public addresses); ``/hetzner/v1/userdata`` is the
user-data as given, 404 or empty when there is none.  As cloud-init's
DataSourceHetzner reads them.
"""

import logging

from ..log import shown
from ..metadata import Metadata, text
from . import NotFound
from .evidence import HETZNER_VENDOR, dmi
from .nocloud import keys_from_meta, parse_network_config

log = logging.getLogger(__name__)

NEEDS_NETWORK = True
BASE = "hetzner/v1"


def fetch(ctx):
    from .documents import BadDocument, load_yaml
    from .http import Refused

    vendor = dmi(ctx.system, "sys_vendor")
    if vendor != HETZNER_VENDOR:
        raise NotFound(f"the DMI system vendor is {shown(vendor)}, not {HETZNER_VENDOR!r}")
    client = ctx.client()
    r = client.get(f"{BASE}/metadata")
    if r.status != 200:
        raise NotFound(f"{client.base}/{BASE}/metadata answered HTTP {r.status}")
    try:
        meta = load_yaml(r.body, f"{BASE}/metadata")
    except BadDocument as e:
        raise ValueError(str(e)) from None
    if not isinstance(meta, dict):
        raise ValueError(f"{BASE}/metadata from {client.base} is not a mapping")
    iid = text(meta.get("instance-id"), "instance-id")
    serial = dmi(ctx.system, "product_serial")
    if serial and iid and serial != iid:
        log.warning("the metadata's instance-id %s differs from the DMI serial number %s; "
                    "using the metadata's", shown(iid), shown(serial))
    user_data = b""
    try:
        r = client.get(f"{BASE}/userdata")
        if r.status == 200:
            user_data = r.body
        elif r.status != 404:
            log.warning("ignoring the user-data: HTTP %d", r.status)
    except Refused as e:
        log.warning("ignoring the user-data: %s", e)
    vendor_data = meta.get("vendor_data")
    if vendor_data is not None and not isinstance(vendor_data, (str, list, dict)):
        log.warning("ignoring vendor_data: expected text, got %s", type(vendor_data).__name__)
        vendor_data = None
    network, dns, search = parse_network_config(meta.get("network-config"))
    return Metadata(
        source=f"hetzner ({client.base})",
        instance_id=iid,
        hostname=text(meta.get("hostname"), "hostname"),
        public_keys=keys_from_meta(meta.get("public-keys")),
        user_data=user_data,
        vendor_data=vendor_data,
        availability_zone=text(meta.get("availability-zone"), "availability-zone"),
        dns_nameservers=dns,
        dns_search=search,
        raw={"metadata": meta},
        network=network,
    )
