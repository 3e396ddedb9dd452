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
import stat

from .. import block_labels
from ..log import shown
from ..metadata import InjectedFile
from ..system import CommandFailed
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
    # no udev link (yet, or no udev): the labels read off the small devices;
    # units/guestagent-local-source does the same in sh
    return block_labels.find(LABELS, sys_block, dev_dir, max_sectors=_MAX_DRIVE_SECTORS,
                             skipped=block_labels.SKIPPED + ("dm-", "md"))


def _read_device(system, dev, limit):
    import tempfile  # only when a device is mounted (it brings shutil, random, bz2...)

    mnt = tempfile.mkdtemp(prefix="guestagent-configdrive-", dir="/run")
    try:
        try:
            system.run(["mount", "-o", "ro,nosuid,nodev,noexec", dev, mnt], check=True)
        except CommandFailed as e:
            raise RuntimeError(f"cannot mount the config drive {dev}: "
                               f"{e.detail or f'exit {e.returncode}'}") from None
        try:
            return read_tree(mnt, limit, source=f"configdrive ({dev})")
        finally:
            system.run(["umount", mnt])
    finally:
        try:
            os.rmdir(mnt)
        except OSError:
            pass


# Caps on what a drive may make the agent hold (docs/hostname-dns-files.md).
MAX_DOCUMENT = 4 << 20      # each JSON document
MAX_INJECTED_FILES = 100    # entries in meta_data.json `files`


class OutsideDrive(OSError):
    """A path on the drive that leads off it (a symlink), is not a plain
    file, or is over its size cap."""

    def __str__(self):
        return f"{self.filename}: {self.strerror}"


def read_tree(top, limit, source="configdrive"):
    """The Metadata on the drive mounted (or copied) at ``top``.

    Nothing is read through a symlink that leaves ``top`` (at any depth),
    and only regular files are read.  ``limit`` caps the user-data and,
    all together, the injected files; an oversized or unreadable optional
    document or file is refused by name and the rest is used.
    """
    from ..documents import BadDocument, load_json

    drive = _Drive(top)
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


class _Drive:
    """Reads under one directory, as if it were the root: no symlink may lead
    off it, and only regular files are read (a FIFO would block the boot)."""

    def __init__(self, top):
        self.top = top

    def _open(self, rel, directory=False):
        parts = [p for p in rel.split("/") if p and p != "."]
        fds = [os.open(self.top, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)]
        links = 0
        try:
            while parts:
                part = parts.pop(0)
                if part == "..":
                    if len(fds) == 1:
                        raise OutsideDrive(errno.EXDEV, "leads off the config drive", rel)
                    os.close(fds.pop())
                    continue
                flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
                if parts or directory:
                    flags |= os.O_DIRECTORY
                try:
                    fd = os.open(part, flags, dir_fd=fds[-1])
                except OSError as e:
                    if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                        raise
                    st = os.stat(part, dir_fd=fds[-1], follow_symlinks=False)
                    if not stat.S_ISLNK(st.st_mode):
                        raise
                    target = os.readlink(part, dir_fd=fds[-1])
                    links += 1
                    if target.startswith("/") or links > 16:
                        raise OutsideDrive(errno.EXDEV, f"{part} is a symlink to {target!r}, "
                                           f"which leads off the config drive", rel) from None
                    parts[:0] = [p for p in target.split("/") if p and p != "."]
                    continue
                fds.append(fd)
            fd = fds.pop()
            if not directory and not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                raise OutsideDrive(errno.EINVAL, "not a regular file", rel)
            return fd
        finally:
            for fd in fds:
                os.close(fd)

    def read(self, rel, limit):
        """Bytes of the file ``rel`` (None when it does not exist); OSError
        (OutsideDrive, or ValueError-like size refusal) names the problem."""
        try:
            fd = self._open(rel)
        except FileNotFoundError:
            return None
        with os.fdopen(fd, "rb") as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise OutsideDrive(errno.EFBIG, f"larger than {limit} bytes", rel)
        return data

    def isdir(self, rel):
        try:
            os.close(self._open(rel, directory=True))
            return True
        except OSError:
            return False

    def listdir(self, rel):
        fd = self._open(rel, directory=True)
        try:
            return os.listdir(fd)
        finally:
            os.close(fd)


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
                content = OutsideDrive(errno.ENOENT, "missing")
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
