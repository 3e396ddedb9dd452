"""OpenStack config drive: a filesystem labelled config-2 (iso9660 or vfat).

Found through /dev/disk/by-label, or, where there is no udev, by reading the
label straight off small block devices (no subprocess, so probing costs
nothing when there is no drive).  Mounted read-only in a private directory
and unmounted again.  ``[configdrive] path`` names a tree instead (image
builders, tests, systems that mount the drive themselves).
"""

import errno
import logging
import os
import re

from ..log import shown
from ..metadata import InjectedFile
from ..system import block_labels
from . import NotFound, seed_tree
from .openstack_documents import from_openstack_documents

log = logging.getLogger(__name__)

NEEDS_NETWORK = False
LABELS = ("config-2", "CONFIG-2")
_CONTENT_PATH = re.compile(r"/?content/[A-Za-z0-9._-]{1,64}")
_MAX_DRIVE_SECTORS = 2 * 1024 * 1024 * 2  # 2 GiB: config drives are 64 MiB


def fetch(ctx):
    path = ctx.config.getpath("configdrive", "path")
    limit = ctx.config.getint("userdata", "max_bytes")
    if path:
        if not os.path.isdir(path):
            raise NotFound(f"configured config drive {path} is not a directory")
        return read_tree(path, limit, source=f"configdrive ({path})")
    if not ctx.system.live:
        raise NotFound("no [configdrive] path set, and devices are not probed under --root")
    dev = find_device()
    if not dev:
        raise NotFound("no filesystem labelled config-2")
    return _read_device(ctx.system, dev, limit)


def find_device(sys_block="/sys/class/block", dev_dir="/dev"):
    for label in LABELS:
        link = os.path.join(dev_dir, "disk/by-label", label)
        if os.path.exists(link):
            return os.path.realpath(link)
    # no udev link (yet, or no udev): the labels read off the small devices;
    # units/guestagent-local-source does the same in sh
    return block_labels.find(LABELS, sys_block, dev_dir, max_sectors=_MAX_DRIVE_SECTORS,
                             skipped=block_labels.SKIPPED + ("dm-", "md"))


def _read_device(system, dev, limit):
    return seed_tree.read_mounted(
        system, dev, "the config drive",
        lambda mnt: read_tree(mnt, limit, source=f"configdrive ({dev})"))


# Caps on what a drive may make the agent hold (docs/hostname-dns-files.md).
MAX_DOCUMENT = 4 << 20      # each JSON document
MAX_INJECTED_FILES = 100    # entries in meta_data.json `files`


def read_tree(top, limit, source="configdrive"):
    """The Metadata on the drive mounted (or copied) at ``top``.

    Nothing is read through a symlink that leaves ``top`` (at any depth),
    and only regular files are read.  ``limit`` caps the user-data and,
    all together, the injected files; an oversized or unreadable optional
    document or file is refused by name and the rest is used.
    """
    from .documents import BadDocument, load_json

    drive = seed_tree.Tree(top, "the config drive")
    base = _version_dir(drive, top)
    docs = {}
    for name in ("meta_data.json", "network_data.json", "vendor_data.json",
                 "vendor_data2.json"):
        try:
            data = drive.read(f"{base}/{name}", MAX_DOCUMENT)
            if data is not None:
                docs[name] = load_json(data, f"{name} on the config drive")
        except (OSError, BadDocument) as e:
            if name == "meta_data.json":
                raise ValueError(str(e)) from None
            log.warning("ignoring %s on the config drive: %s", name, e)
    if "meta_data.json" not in docs:
        raise NotFound(f"{top}/{base} has no meta_data.json")
    meta = docs["meta_data.json"]
    try:
        user_data = drive.read(f"{base}/user_data", limit) or b""
    except OSError as e:
        # only the user-data is refused: keys, host name and the rest still count
        log.warning("ignoring the user-data on the config drive: %s", e)
        user_data = b""
    files = _injected_files(drive, meta, limit)
    return from_openstack_documents(source, meta, docs.get("network_data.json"),
                                    docs.get("vendor_data.json"), user_data, files,
                                    vendor_data2=docs.get("vendor_data2.json"))


def _version_dir(drive, top):
    if drive.isdir("openstack/latest"):
        return "openstack/latest"
    try:
        dated = sorted(d for d in drive.listdir("openstack")
                       if re.match(r"^\d{4}-\d\d-\d\d$", d))
    except OSError:
        dated = []
    if not dated:
        raise NotFound(f"{top} has no openstack/latest directory")
    return "openstack/" + dated[-1]


def _injected_files(drive, meta, limit):
    """Injected files; ``limit`` bytes in all.  A content named by several
    entries is read once, and a refused content is named once."""
    entries = meta.get("files") if isinstance(meta, dict) else None
    if entries is None:
        return []
    if not isinstance(entries, list):
        log.warning("ignoring files in meta_data.json: expected a list")
        return []
    if len(entries) > MAX_INJECTED_FILES:
        log.warning("ignoring files[%d] and after in meta_data.json: at most %d injected "
                    "files", MAX_INJECTED_FILES, MAX_INJECTED_FILES)
        entries = entries[:MAX_INJECTED_FILES]
    out = []
    contents = {}   # content path -> bytes, read once
    refused = {}    # content path or reason -> [file paths]
    total = 0
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or not isinstance(e.get("path"), str) \
                or not isinstance(e.get("content_path"), str):
            log.warning("ignoring files[%d]: needs string path and content_path", i)
            continue
        cp = e["content_path"]
        if not _CONTENT_PATH.fullmatch(cp):
            refused.setdefault(f"content path {shown(cp)} is not under openstack/content/",
                               []).append(e["path"])
            continue
        rel = "openstack/" + cp.lstrip("/")
        if cp not in contents:
            try:
                content = drive.read(rel, limit)
            except OSError as err:
                content = err
            if content is None:
                content = seed_tree.OutsideTree(errno.ENOENT, "missing")
            contents[cp] = content
        content = contents[cp]
        if isinstance(content, Exception):
            reason = content.strerror if isinstance(content, OSError) else str(content)
            refused.setdefault(f"{cp} is missing or not a plain file ({reason})",
                               []).append(e["path"])
            continue
        if total + len(content) > limit:
            refused.setdefault(f"the injected files would take more than {limit} bytes in "
                               f"all ([userdata] max_bytes)", []).append(e["path"])
            continue
        total += len(content)
        out.append(InjectedFile(e["path"], content))
    for reason, paths in refused.items():
        names = ", ".join(shown(p) for p in paths[:5]) + (
            f" and {len(paths) - 5} more" if len(paths) > 5 else "")
        log.warning("ignoring injected file%s %s: %s", "s" if len(paths) > 1 else "",
                    names, reason)
    return out
