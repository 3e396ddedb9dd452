"""The OpenStack documents (meta_data.json, network_data.json, vendor data)
made into the one `Metadata`: shared by the config drive and the metadata
service, which serve the same documents.
"""

import logging

from ..metadata import Metadata, dedupe, text
from .network_data import parse as parse_network_data

log = logging.getLogger(__name__)


def keys_from_openstack(meta):
    """Keys from both `public_keys` (name -> key) and `keys` (list of dicts).

    A key present in both appears once; order is document order.
    """
    found = []
    pk = meta.get("public_keys")
    if isinstance(pk, dict):
        for name, key in pk.items():
            found.extend(_split_keys(key, f"public_keys[{name!r}]"))
    elif pk is not None:
        log.warning("ignoring public_keys: expected an object, got %s", type(pk).__name__)
    ks = meta.get("keys")
    if isinstance(ks, list):
        for i, k in enumerate(ks):
            if not isinstance(k, dict):
                log.warning("ignoring keys[%d]: expected an object", i)
                continue
            if k.get("type", "ssh") != "ssh":
                continue
            found.extend(_split_keys(k.get("data"), f"keys[{i}].data"))
    elif ks is not None:
        log.warning("ignoring keys: expected a list, got %s", type(ks).__name__)
    return dedupe(found)


def _split_keys(value, what):
    if not isinstance(value, str):
        if value is not None:
            log.warning("ignoring %s: expected a string, got %s", what, type(value).__name__)
        return []
    return [ln.strip() for ln in value.splitlines() if ln.strip()]


def dns_from_network_data(nd):
    """Nameservers (document order) and search domains from network_data.json.

    DNS services sit at the top level and may also sit inside each network.
    """
    servers, search = [], []
    if not isinstance(nd, dict):
        return servers, search
    groups = [nd.get("services")]
    nets = nd.get("networks")
    if isinstance(nets, list):
        groups += [n.get("services") for n in nets if isinstance(n, dict)]
    for services in groups:
        if not isinstance(services, list):
            continue
        for s in services:
            if not isinstance(s, dict) or s.get("type") != "dns":
                continue
            addr = s.get("address")
            if isinstance(addr, str) and addr.strip():
                servers.append(addr.strip())
            dom = s.get("search")
            if isinstance(dom, list):
                search += [d for d in dom if isinstance(d, str)]
    return dedupe(servers), dedupe(search)


def from_openstack_documents(source, meta, network_data=None, vendor_data=None,
                             user_data=b"", files=None, vendor_data2=None):
    """Build Metadata from the OpenStack documents (config drive or service)."""
    if not isinstance(meta, dict):
        raise ValueError("meta_data.json is not a JSON object")
    iid = text(meta.get("uuid"), "uuid") or text(meta.get("instance-id"), "instance-id")
    if not iid:
        raise ValueError("meta_data.json has no uuid")
    dns, search = dns_from_network_data(network_data)
    raw = {"meta_data.json": meta}
    if network_data is not None:
        raw["network_data.json"] = network_data
    if vendor_data is not None:
        raw["vendor_data.json"] = vendor_data
    if vendor_data2 is not None:
        raw["vendor_data2.json"] = vendor_data2
    return Metadata(
        source=source,
        instance_id=iid,
        hostname=text(meta.get("hostname"), "hostname"),
        public_keys=keys_from_openstack(meta),
        user_data=user_data or b"",
        vendor_data=vendor_data,
        vendor_data2=vendor_data2,
        admin_pass=text(meta.get("admin_pass"), "admin_pass"),
        random_seed=text(meta.get("random_seed"), "random_seed"),
        dns_nameservers=dns,
        dns_search=search,
        files=files or [],
        availability_zone=text(meta.get("availability_zone"), "availability_zone"),
        name=text(meta.get("name"), "name"),
        raw=raw,
        network=parse_network_data(network_data),
    )
