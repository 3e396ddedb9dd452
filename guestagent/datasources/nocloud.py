"""NoCloud, from what the machine holds (no network): cloud-init's NoCloud.

A seed is a directory of files: ``meta-data`` (YAML, or JSON), ``user-data``,
and optionally ``vendor-data`` and ``network-config``.  Found, first match
wins:

1. ``ds=nocloud;s=file:///path/`` (or ``s=/path/``) on the kernel command
   line or in the DMI system serial number;
2. a filesystem labelled ``cidata``/``CIDATA`` (iso9660 or vfat, as
   cloud-localds, libvirt, Proxmox and Multipass make it), mounted read-only;
3. a seed directory baked into the image: /var/lib/cloud/seed/nocloud, then
   /var/lib/cloud/seed/nocloud-net.

``h=``/``i=`` on the ``ds=`` argument override the meta-data's
local-hostname and instance-id, as cloud-init does.  An http(s) seed is
nocloud_net.py's, in the network stage.
"""

import logging
import os

from ..log import shown
from ..metadata import Metadata, dedupe, text
from ..system import block_labels
from . import NotFound, seed_tree
from .evidence import nocloud_argument

log = logging.getLogger(__name__)

NEEDS_NETWORK = False
LABELS = ("cidata", "CIDATA")
SEED_DIRS = ("/var/lib/cloud/seed/nocloud", "/var/lib/cloud/seed/nocloud-net")
FILES = ("meta-data", "user-data", "vendor-data", "network-config")
MAX_DOCUMENT = 4 << 20  # meta-data, vendor-data, network-config (user-data: [userdata] max_bytes)
DEFAULT_INSTANCE_ID = "nocloud"  # cloud-init's, when meta-data names none
_MAX_SEED_SECTORS = 2 * 1024 * 1024 * 2  # 2 GiB: seeds are a few hundred KiB


def fetch(ctx):
    limit = ctx.config.getint("userdata", "max_bytes")
    arg = nocloud_argument(ctx.system)
    overrides = arg.meta if arg is not None else {}
    if arg is not None and arg.seedfrom and not arg.over_network:
        path = local_seed_path(arg.seedfrom)
        host = ctx.system.path(path) if path else None
        if host and os.path.isdir(host):
            return read_seed(host, limit, f"nocloud ({path})", overrides)
        # as cloud-init: a seed that is not there leaves the other places
        log.warning("ds=%s on %s: seed %s is %s; looking for a cidata filesystem and a "
                    "seed directory instead", arg.name, arg.where, shown(arg.seedfrom),
                    "not a directory" if path else
                    "neither a file:// URL, a path, nor http(s)://")
    if ctx.system.live:
        dev = find_device()
        if dev:
            return seed_tree.read_mounted(
                ctx.system, dev, "the NoCloud seed",
                lambda mnt: read_seed(mnt, limit, f"nocloud ({dev})", overrides))
    for path in SEED_DIRS:
        host = ctx.system.path(path)
        if os.path.isfile(os.path.join(host, "meta-data")):
            return read_seed(host, limit, f"nocloud ({path})", overrides)
    raise NotFound("no filesystem labelled cidata, no seed in /var/lib/cloud/seed"
                   + ("" if ctx.system.live else " (devices are not probed under --root)"))


def local_seed_path(seedfrom):
    """The directory a ``file://`` or ``/`` seedfrom names, or None."""
    if seedfrom.startswith("file://"):
        seedfrom = seedfrom[len("file://"):]
    return seedfrom if seedfrom.startswith("/") else None


def find_device(sys_block="/sys/class/block", dev_dir="/dev"):
    for label in LABELS:
        link = os.path.join(dev_dir, "disk/by-label", label)
        if os.path.exists(link):
            return os.path.realpath(link)
    return block_labels.find(LABELS, sys_block, dev_dir, max_sectors=_MAX_SEED_SECTORS,
                             skipped=block_labels.SKIPPED + ("dm-", "md"))


def read_seed(top, limit, source, overrides=None):
    """The Metadata of the seed directory ``top`` (read as its own root)."""
    tree = seed_tree.Tree(top, "the NoCloud seed")
    files = {}
    for name in FILES:
        try:
            files[name] = tree.read(name, limit if name == "user-data" else MAX_DOCUMENT)
        except OSError as e:
            if name == "meta-data":
                raise ValueError(f"{source}: {e}") from None
            log.warning("ignoring %s in %s: %s", name, source, e)
            files[name] = None
    if files["meta-data"] is None:
        raise NotFound(f"{top} has no meta-data")
    return from_seed_files(source, files, overrides)


def from_seed_files(source, files, overrides=None):
    """Metadata from the seed's files ({name: bytes or None}), wherever they
    came from (a directory, a label, an HTTP seed)."""
    from .documents import BadDocument, load_yaml

    try:
        meta = load_yaml(files["meta-data"], f"meta-data in {source}")
    except BadDocument as e:
        raise ValueError(str(e)) from None
    if meta is None:
        meta = {}  # an empty meta-data is a valid seed
    if not isinstance(meta, dict):
        raise ValueError(f"meta-data in {source} is not a mapping")
    meta = dict(meta)
    meta.update(overrides or {})
    if meta.get("network-interfaces"):
        log.warning("meta-data in %s: network-interfaces (the old ifupdown form) is not "
                    "read; give a network-config instead", source)
    iid = text(meta.get("instance-id"), "instance-id")
    if not iid.strip():
        log.warning("meta-data in %s names no instance-id; using %r, as cloud-init does "
                    "(every such seed is the same instance)", source, DEFAULT_INSTANCE_ID)
        iid = DEFAULT_INSTANCE_ID
    raw = {"meta-data": meta}
    network_doc = None
    if files.get("network-config"):
        try:
            network_doc = load_yaml(files["network-config"], f"network-config in {source}")
        except BadDocument as e:
            log.warning("ignoring %s", e)
        if network_doc is not None:
            raw["network-config"] = network_doc
    network, dns, search = parse_network_config(network_doc)
    vendor = None
    if files.get("vendor-data"):
        vendor = str(files["vendor-data"], "utf-8", "surrogateescape")
    return Metadata(
        source=source,
        instance_id=iid,
        hostname=text(meta.get("local-hostname") or meta.get("hostname"), "local-hostname"),
        public_keys=keys_from_meta(meta.get("public-keys", meta.get("public_keys"))),
        user_data=files.get("user-data") or b"",
        vendor_data=vendor,
        dns_nameservers=dns,
        dns_search=search,
        raw=raw,
        network=network,
    )


def keys_from_meta(value):
    """public-keys as a string (one key a line), a list, or a map (EC2's
    ``{name: key}``, or ``{index: {openssh-key: key}}``)."""
    out = []
    if value is None:
        return out
    if isinstance(value, str):
        return dedupe(ln.strip() for ln in value.splitlines() if ln.strip())
    items = value.values() if isinstance(value, dict) else value
    if not isinstance(items, (list, type({}.values()))):
        log.warning("ignoring public-keys: expected a string, list or map, got %s",
                    type(value).__name__)
        return out
    for item in items:
        if isinstance(item, dict):
            item = item.get("openssh-key")
        if isinstance(item, list):
            out += keys_from_meta(item)
        elif isinstance(item, str):
            out += keys_from_meta(item)
        elif item is not None:
            log.warning("ignoring a public-keys entry: expected a string, got %s",
                        type(item).__name__)
    return dedupe(out)


def parse_network_config(doc):
    """network-config v1/v2 into the network model (network_config.py; it
    names what it cannot use), and the DNS servers and search domains it
    gives, for resolv.conf: (NetworkConfig or None, servers, search)."""
    if doc is None:
        return None, [], []
    from .network_config import parse
    network = parse(doc)
    if network is None:
        return None, [], []
    servers, search = network.dns()
    return network, servers, search
