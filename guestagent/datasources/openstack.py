"""OpenStack metadata service: /openstack/latest/ documents, five requests.

meta_data.json decides whether the service is there; network_data.json,
vendor_data.json, vendor_data2.json and user_data follow, and a 404 on any
of them means "none".  No directory listing is ever crawled.
"""

import logging

from . import NotFound
from .documents import BadDocument, load_json
from .openstack_documents import from_openstack_documents

log = logging.getLogger(__name__)

NEEDS_NETWORK = True
BASE = "openstack/latest"


def fetch(ctx):
    client = ctx.client()
    r = client.get(f"{BASE}/meta_data.json")
    if r.status != 200:
        raise NotFound(f"{client.base}/{BASE}/meta_data.json answered HTTP {r.status}")
    meta = load_json(r.body, f"meta_data.json from {client.base}")
    if not isinstance(meta, dict):
        raise ValueError(f"meta_data.json from {client.base} is not a JSON object")
    names = ("network_data.json", "vendor_data.json", "vendor_data2.json", "user_data")
    found = client.get_optional(f"{BASE}/{name}" for name in names)
    docs = {name: found[f"{BASE}/{name}"] for name in names if f"{BASE}/{name}" in found}
    user_data = docs.pop("user_data", b"")
    parsed = {}
    for name, body in docs.items():
        try:
            parsed[name] = load_json(body, name)
        except BadDocument as e:
            # an unusable optional document is ignored; the keys still count
            log.warning("ignoring %s: %s", name, e)
    return from_openstack_documents(f"openstack ({client.base})", meta,
                                    parsed.get("network_data.json"),
                                    parsed.get("vendor_data.json"), user_data,
                                    vendor_data2=parsed.get("vendor_data2.json"))
