"""The #cloud-config the steps read: the user's over the vendor's.

Worked out once per instance: the result is kept beside the metadata
(State.store_cloud_config), under a key made of the documents it came from
and the settings that shaped it, so a later boot reads JSON and never
imports YAML.  A changed user-data, vendor data or setting misses the key
and is worked out again.
"""

import logging
import zlib

log = logging.getLogger(__name__)


def cloud_config(md, config, state, user_cloud_config, jinja):
    """The #cloud-config dict for ``md`` ({} when there is none).

    ``user_cloud_config()`` gives the user-data's #cloud-config (called only
    when the stored copy does not answer: it decodes the user-data);
    ``jinja`` gives the variables for template parts (as in `decode`);
    ``state`` may be None (nothing stored or read).
    """
    max_bytes = config.getint("userdata", "max_bytes")
    with_vendor = config.getbool("userdata", "vendor_data")
    payloads = []
    if with_vendor:
        from . import vendor
        payloads = vendor.payloads(md)
    key = _key(md, payloads, max_bytes, with_vendor)
    cc = state.stored_cloud_config(md.instance_id, key) if state else None
    if cc is not None:
        log.debug("#cloud-config: using the copy worked out on this instance's first boot")
        return cc
    cc = user_cloud_config() if md.user_data else {}
    if payloads:
        cc = _under_vendor(cc, md, max_bytes, jinja)
    if state and md.instance_id:
        state.store_cloud_config(md.instance_id, key, cc)
    return cc


def _key(md, payloads, max_bytes, with_vendor):
    """What the stored copy was worked out from: the documents' length and
    CRC, and the settings that change the result."""
    raw = b"\0".join([md.user_data or b""] + [p for _, p in payloads])
    return f"{len(raw)}:{zlib.crc32(raw):08x}:{max_bytes}:{int(with_vendor)}"


def _under_vendor(cc, md, max_bytes, jinja):
    """``cc`` over the vendor data's #cloud-config, unless ``cc`` turns it off."""
    from . import vendor
    if not vendor.wanted(cc):
        log.info("vendor data turned off by the user-data (vendor_data: {enabled: false})")
        return cc
    vd = vendor.decode_all(md, max_bytes, jinja=jinja)
    return vendor.under(cc, vd.cloud_config)
