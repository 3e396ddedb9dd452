"""#cloud-config disk_setup and fs_setup, the simple cases, once per instance,
before the mounts step (as in cloud-init).

    disk_setup:
      /dev/vdb: {table_type: gpt, layout: true, overwrite: false}
    fs_setup:
      - {label: data, filesystem: ext4, device: /dev/vdb, partition: auto}

Handled: one partition table (mbr or gpt) with one partition over the whole
disk (`layout: true`, `[100]` or `[[100, 82]]`), and one filesystem per entry
(ext2/3/4, xfs, btrfs, vfat, swap) on a disk, its Nth partition or the first
one (`partition: auto/any`), `extra_opts` passed on.  Several partitions on
one disk and `cmd` are warned about and not done.

Nothing is ever overwritten unless `overwrite: true`: a disk with a
partition table or a filesystem is not repartitioned, a device with a
filesystem is not reformatted (a filesystem with the wanted label is
already what was asked).  Devices: /dev paths, short names (vdb), `ephemeralN`
(the filesystem Nova labelled so).  Only on a live system: under --root the
disks named are the host's, so the step only says what it would do.
"""

import logging
import os
import re
import time

from . import PER_INSTANCE, Outcome, Skip

log = logging.getLogger(__name__)

FREQUENCY = PER_INSTANCE
MKFS = {"ext2": ["mkfs.ext2", "-F", "-L"], "ext3": ["mkfs.ext3", "-F", "-L"],
        "ext4": ["mkfs.ext4", "-F", "-L"], "xfs": ["mkfs.xfs", "-f", "-L"],
        "btrfs": ["mkfs.btrfs", "-f", "-L"], "vfat": ["mkfs.vfat", "-n"],
        "swap": ["mkswap", "-L"]}
_SHORT = re.compile(r"^(sd|vd|xvd|hd|nvme)[a-z0-9]+$")
_SFDISK_TYPES = {"82": "S", "83": "L", "8e": "V", "fd": "R"}


def run(ctx):
    cc = ctx.cloud_config
    disks, filesystems = cc.get("disk_setup") or {}, cc.get("fs_setup") or []
    if not disks and not filesystems:
        raise Skip("no disk_setup or fs_setup in #cloud-config")
    if not ctx.system.live:
        raise Skip("disk_setup/fs_setup act on the host's disks: only on a live system, "
                   "not under --root")
    changes, problems = [], []
    for name, spec in disks.items():
        try:
            changes += _partition(ctx.system, name, spec)
        except RuntimeError as e:
            problems.append(f"disk_setup {name}: {e}")
    for n, spec in enumerate(filesystems, 1):
        try:
            changes += _filesystem(ctx.system, spec)
        except RuntimeError as e:
            problems.append(f"fs_setup entry {n} ({spec.get('device')}): {e}")
    if not changes and not problems:
        raise Skip("every disk and filesystem asked for is there already")
    return Outcome(changes, problems)


def device_path(system, name):
    """A cloud-config device name as a /dev path, or None when it is not attached."""
    base, _, part = name.partition(".")  # cloud-init's "sdb.1"
    if re.match(r"^ephemeral[0-9]*$", base):
        res = system.run(["blkid", "-L", base], timeout=30)
        dev = res.stdout.strip() if res.returncode == 0 else ""
    elif _SHORT.match(base):
        dev = f"/dev/{base}"
    else:
        dev = base
    if not dev or not os.path.exists(dev):
        return None
    return partition_path(dev, int(part)) if part.isdigit() else dev


def partition_path(disk, n):
    sep = "p" if disk[-1:].isdigit() else ""
    return f"{disk}{sep}{n}"


def _probe(system, dev, what):
    res = system.run(["blkid", "-p", "-o", "value", "-s", what, dev], timeout=30)
    return res.stdout.strip() if res.returncode == 0 else ""


def _partition(system, name, spec):
    layout = spec.get("layout", False)
    if layout is False:
        return []
    table = str(spec.get("table_type", "mbr")).lower()
    if table not in ("mbr", "gpt"):
        raise RuntimeError(f"table_type {table[:20]!r} is not mbr or gpt; not partitioned")
    ptype = None
    if layout is not True:
        parts = layout if isinstance(layout, list) else [layout]
        if len(parts) != 1:
            raise RuntimeError("only a single partition over the whole disk is supported "
                               f"(layout asks for {len(parts)}); not partitioned")
        size, ptype = (parts[0] + [None])[:2] if isinstance(parts[0], list) else (parts[0], None)
        if size not in (100, "100"):
            raise RuntimeError("only a partition over the whole disk (100%) is supported; "
                               "not partitioned")
    dev = device_path(system, name)
    if dev is None:
        raise RuntimeError("no such disk here; not partitioned")
    if not spec.get("overwrite", False):
        used = _probe(system, dev, "PTTYPE") or _probe(system, dev, "TYPE")
        if used:
            log.info("disk_setup: %s already holds %s; kept (overwrite: false)", dev, used)
            return []
    kind = _SFDISK_TYPES.get(str(ptype).lower(), "L") if ptype is not None else "L"
    script = f"label: {'gpt' if table == 'gpt' else 'dos'}\n,,{kind}\n"
    res = system.run(["sfdisk", "--quiet", "--wipe", "always", dev], input=script,
                     timeout=120)
    if res.returncode != 0:
        raise RuntimeError("sfdisk failed: " + (res.stderr or res.stdout).strip()[-200:])
    _wait_partition(system, dev)
    return [f"{dev}: {table} partition table, one partition"]


def _wait_partition(system, dev):
    first = partition_path(dev, 1)
    system.run(["partx", "-u", dev], timeout=30)
    if system.which("udevadm"):
        system.run(["udevadm", "settle", "--timeout=10"], timeout=30)
    sysdev = f"/sys/class/block/{os.path.basename(first)}/dev"
    for _ in range(50):
        if os.path.exists(first):
            return
        time.sleep(0.1)
    if os.path.exists(sysdev):  # the kernel has it; no udev made the node
        import stat
        with open(sysdev) as f:
            major, minor = (int(x) for x in f.read().split(":"))
        os.mknod(first, 0o600 | stat.S_IFBLK, os.makedev(major, minor))
        log.info("disk_setup: made the device node %s (no udev)", first)
        return
    log.warning("disk_setup: %s did not appear yet", first)


def _filesystem(system, spec):
    if spec.get("cmd"):
        raise RuntimeError("cmd is not supported; not formatted")
    fs = spec["filesystem"].lower()
    if fs not in MKFS:
        raise RuntimeError(f"filesystem {fs[:20]!r} is not one of {', '.join(MKFS)}")
    label = spec.get("label")
    label = None if label in (None, "None", "") else str(label)
    dev = device_path(system, spec["device"])
    if dev is None:
        raise RuntimeError("no such device here; not formatted")
    part = spec.get("partition", "any")
    if isinstance(part, int) and not isinstance(part, bool):
        dev = partition_path(dev, part)
    elif str(part) in ("auto", "any") and os.path.exists(partition_path(dev, 1)):
        dev = partition_path(dev, 1)
    if not os.path.exists(dev):
        raise RuntimeError(f"{dev} does not exist; not formatted")
    have = _probe(system, dev, "TYPE")
    if have and not (spec.get("overwrite") or spec.get("replace_fs") == have):
        if label and _probe(system, dev, "LABEL") == label:
            return []
        log.info("fs_setup: %s already has a %s filesystem; kept (overwrite: false)", dev,
                 have)
        return []
    argv = list(MKFS[fs])
    argv = argv + [label] if label else [a for a in argv if a not in ("-L", "-n")]
    extra = spec.get("extra_opts") or []
    argv += [str(a) for a in (extra if isinstance(extra, list) else str(extra).split())]
    res = system.run(argv + [dev], timeout=600)
    if res.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed: " + (res.stderr or res.stdout).strip()[-200:])
    return [f"made {fs} on {dev}" + (f" labelled {label}" if label else "")]
