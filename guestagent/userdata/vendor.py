"""Vendor data: the cloud's own #cloud-config, applied under the user's.

Nova serves vendor_data.json (static) and vendor_data2.json (dynamic).  As
cloud-init reads them (sources.convert_vendordata): a string is a user-data
document of its own (#cloud-config, MIME, gzip...); a mapping gives its
``cloud-init`` entry, which is such a string or a list of them.  Anything
else carries nothing for guestagent.

Only the #cloud-config in vendor data is used; vendor scripts are named in a
note and not run.  The user-data wins: a key the user gives replaces the
vendor's, except that mappings merge key by key (the user's keys win), as
cloud-init merges its configs.  ``[userdata] vendor_data = no`` in the config,
or ``vendor_data: {enabled: false}`` in the user's #cloud-config, turns vendor
data off.
"""

from ..schema.checks import INVALID, UNSUPPORTED, Note
from .merging import _dict

DOCUMENTS = ("vendor_data.json", "vendor_data2.json")


def payloads(md):
    """[(document name, bytes)] of the vendor data worth decoding."""
    out = []
    for name, doc in zip(DOCUMENTS, (md.vendor_data, getattr(md, "vendor_data2", None))):
        if isinstance(doc, dict):
            doc = doc.get("cloud-init")
        if isinstance(doc, str) and doc.strip():
            out.append((name, doc.encode("utf-8", "surrogateescape")))
        elif isinstance(doc, list):
            for n, item in enumerate(doc, 1):
                if isinstance(item, str) and item.strip():
                    out.append((f"{name} cloud-init[{n}]", item.encode("utf-8",
                                                                       "surrogateescape")))
    return out


def decode_all(md, max_bytes, log_warnings=True, jinja=None):
    """One UserData for all vendor documents: their #cloud-config merged in order
    (``jinja``: the instance data for template parts, as in `decode`)."""
    from . import UserData, decode
    vd = UserData()
    for name, raw in payloads(md):
        ud = decode(raw, max_bytes, log_warnings=False, jinja=jinja)
        for w in ud.warnings:
            vd.warnings.append(Note(f"vendor data ({name}): {w}", getattr(w, "kind", INVALID)))
        if ud.scripts:
            vd.warnings.append(Note(f"vendor data ({name}): {len(ud.scripts)} script(s) not "
                                    "run: guestagent applies only vendor #cloud-config",
                                    UNSUPPORTED))
        vd.cloud_config = under(ud.cloud_config, vd.cloud_config)
    if log_warnings:
        import logging
        log = logging.getLogger(__name__)
        for w in vd.warnings:
            log.warning("%s", w)
    return vd


def under(user, vendor):
    """``vendor`` with ``user`` on top: the user's keys win, mappings merge."""
    return _dict(user, vendor, {"dict": set()})


def wanted(cloud_config):
    """False when the user's #cloud-config says vendor_data: {enabled: false}."""
    return (cloud_config.get("vendor_data") or {}).get("enabled", True) is not False


