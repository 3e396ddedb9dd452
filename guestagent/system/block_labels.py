"""Filesystem labels read straight off block devices, without blkid.

A boot asks "is there a disk labelled config-2 / ephemeral0?" before udev has
made every /dev/disk/by-label link.  blkid answers too, but it is a process
that probes every device for every format (0.65 s under emulation on a first
boot); this reads the few superblock fields of the formats a cloud puts on
a disk it hands a guest: iso9660 (config drives), FAT, ext2/3/4, XFS, btrfs
and swap (Nova's ephemeral and swap disks).  Read-only, no subprocess.
"""

import os

# never a disk a cloud attaches (and some, floppies without media, stall on a read)
SKIPPED = ("loop", "ram", "zram", "nbd", "fd")


def read_label(dev):
    """The filesystem label of ``dev`` ('' when it has none), or None when it
    holds none of the formats above or cannot be read."""
    try:
        fd = os.open(dev, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        return _label(fd)
    except OSError:
        return None
    finally:
        os.close(fd)


def _label(fd):
    iso = os.pread(fd, 2048, 16 * 2048)
    if iso[1:6] == b"CD001":
        return _text(iso[40:72])
    head = os.pread(fd, 4096, 0)
    if head[:4] == b"XFSB":
        return _text(head[108:120])
    if head[4086:4096] in (b"SWAPSPACE2", b"SWAP-SPACE"):  # 4 KiB pages
        return _text(head[1052:1068])
    if len(head) >= 2048 and head[1080:1082] == b"\x53\xef":  # ext2/3/4
        return _text(head[1144:1160])
    btrfs = os.pread(fd, 4096, 64 << 10)
    if btrfs[64:72] == b"_BHRfS_M":
        return _text(btrfs[299:299 + 256])
    if len(head) >= 512 and head[510:512] == b"\x55\xaa":
        for off, fstype_off in ((71, 82), (43, 54)):  # FAT32, then FAT12/16
            if head[fstype_off:fstype_off + 3] == b"FAT":
                return _text(head[off:off + 11])
    return None


def _text(raw):
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace").strip()


def find(labels, sys_block="/sys/class/block", dev_dir="/dev", max_sectors=None,
         skipped=SKIPPED):
    """The first block device (by name) whose label is in ``labels``, or None.

    ``max_sectors``: pass over larger devices (a config drive is small);
    ``skipped``: name prefixes never opened."""
    try:
        names = sorted(os.listdir(sys_block))
    except OSError:
        return None
    for name in names:
        if name.startswith(skipped):
            continue
        try:
            with open(os.path.join(sys_block, name, "size")) as f:
                sectors = int(f.read())
        except (OSError, ValueError):
            continue
        if sectors == 0 or (max_sectors is not None and sectors > max_sectors):
            continue
        dev = os.path.join(dev_dir, name)
        if read_label(dev) in labels:
            return dev
    return None
