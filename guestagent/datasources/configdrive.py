"""OpenStack config drive: a filesystem labelled config-2 (iso9660 or vfat).

Found through /dev/disk/by-label, or, where there is no udev, by reading the
label straight off small block devices (no subprocess, so probing costs
nothing when there is no drive).  Mounted read-only in a private directory
and unmounted again.  ``[configdrive] path`` names a tree instead (image
builders, tests, systems that mount the drive themselves).
"""

import json
import logging
import os
import re

from ..metadata import InjectedFile
from . import NotFound
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
    try:
        names = sorted(os.listdir(sys_block))
    except OSError:
        return None
    for name in names:
        if name.startswith(("loop", "ram", "zram", "dm-", "md", "nbd")):
            continue
        try:
            with open(os.path.join(sys_block, name, "size")) as f:
                sectors = int(f.read())
        except (OSError, ValueError):
            continue
        if sectors == 0 or sectors > _MAX_DRIVE_SECTORS:
            continue
        dev = os.path.join(dev_dir, name)
        if read_label(dev) in LABELS:
            return dev
    return None


def read_label(dev):
    """The iso9660 volume id or FAT label of ``dev``, or None."""
    try:
        fd = os.open(dev, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        head = os.pread(fd, 512, 0)
        iso = os.pread(fd, 2048, 16 * 2048)
    except OSError:
        return None
    finally:
        os.close(fd)
    if iso[1:6] == b"CD001":
        return iso[40:72].decode("ascii", "replace").strip()
    if len(head) == 512 and head[510:512] == b"\x55\xaa":
        for off, fstype_off in ((71, 82), (43, 54)):  # FAT32, then FAT12/16
            if head[fstype_off:fstype_off + 3] == b"FAT":
                return head[off:off + 11].decode("ascii", "replace").strip()
    return None


def _read_device(system, dev, limit):
    import tempfile  # only when a device is mounted (it brings shutil, random, bz2...)

    mnt = tempfile.mkdtemp(prefix="guestagent-configdrive-", dir="/run")
    try:
        res = system.run(["mount", "-o", "ro,nosuid,nodev,noexec", dev, mnt])
        if res.returncode != 0:
            raise RuntimeError(f"cannot mount the config drive {dev}: "
                               f"{(res.stderr or res.stdout).strip()}")
        try:
            return read_tree(mnt, limit, source=f"configdrive ({dev})")
        finally:
            system.run(["umount", mnt])
    finally:
        try:
            os.rmdir(mnt)
        except OSError:
            pass


def read_tree(top, limit, source="configdrive"):
    base = _version_dir(top)
    meta = _json(base, "meta_data.json", required=True)
    network = _json(base, "network_data.json")
    vendor = _json(base, "vendor_data.json")
    vendor2 = _json(base, "vendor_data2.json")
    user_data = _bytes(os.path.join(base, "user_data"), limit) or b""
    files = _injected_files(top, meta, limit)
    return from_openstack_documents(source, meta, network, vendor, user_data, files,
                                    vendor_data2=vendor2)


def _version_dir(top):
    osdir = os.path.join(top, "openstack")
    latest = os.path.join(osdir, "latest")
    if os.path.isdir(latest):
        return latest
    try:
        dated = sorted(d for d in os.listdir(osdir) if re.match(r"^\d{4}-\d\d-\d\d$", d))
    except OSError:
        dated = []
    if not dated:
        raise NotFound(f"{top} has no openstack/latest directory")
    return os.path.join(osdir, dated[-1])


def _bytes(path, limit):
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except FileNotFoundError:
        return None
    if len(data) > limit:
        raise ValueError(f"{os.path.basename(path)} is larger than {limit} bytes")
    return data


def _json(base, name, required=False):
    data = _bytes(os.path.join(base, name), 4 << 20)
    if data is None:
        if required:
            raise NotFound(f"{base} has no {name}")
        return None
    try:
        return json.loads(data)
    except ValueError as e:
        if required:
            raise ValueError(f"{name} on the config drive is not valid JSON: {e}") from None
        log.warning("ignoring %s on the config drive: not valid JSON (%s)", name, e)
        return None


def _injected_files(top, meta, limit):
    entries = meta.get("files") if isinstance(meta, dict) else None
    if entries is None:
        return []
    if not isinstance(entries, list):
        log.warning("ignoring files in meta_data.json: expected a list")
        return []
    out = []
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or not isinstance(e.get("path"), str) \
                or not isinstance(e.get("content_path"), str):
            log.warning("ignoring files[%d]: needs string path and content_path", i)
            continue
        cp = e["content_path"]
        if not _CONTENT_PATH.fullmatch(cp):
            log.warning("ignoring injected file %r: content path %r is not under "
                        "openstack/content/", e["path"], cp)
            continue
        src = os.path.join(top, "openstack", cp.lstrip("/"))
        if os.path.islink(src) or not os.path.isfile(src):
            log.warning("ignoring injected file %r: %s is missing or not a plain file",
                        e["path"], cp)
            continue
        try:
            content = _bytes(src, limit)
        except ValueError as err:
            log.warning("ignoring injected file %r: %s", e["path"], err)
            continue
        out.append(InjectedFile(e["path"], content or b""))
    return out
