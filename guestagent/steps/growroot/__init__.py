"""growroot: grow the partition and filesystem of / (or the configured mount
points) to fill the disk, every boot.

Cheap when there is nothing to grow: the space after a partition is read
from /sys, and growpart is only called when there is room.  The filesystem
grow is always tried (an earlier boot may have died between the partition
and the filesystem) but only a size that actually changed is reported, so a
second run is quiet.

Off with ``[growroot] enabled = no``, ``/etc/growroot-disabled`` (inside the
root), or ``#cloud-config`` ``growpart: {mode: off}`` / ``resize_rootfs:
false``.

Under ``--root``: mount points and block devices are live things with no
meaning inside a directory tree, so growroot still reads the live mount
table, but acts only on mount points named explicitly (host paths), never on
``/``, and never on a disk that holds this machine's own root.
"""

import logging
import os

from ...system import CommandFailed, CommandTimedOut
from ...system.filesystems import GROWERS, NOT_ON_A_DISK, SETTLE_AFTER_GROWING
from ...system.mount_table import find_mount
from .. import PER_BOOT, Outcome, Skip
from . import blockdev, lvm
from .blockdev import human_size
from .partition_table import PartitionError

FREQUENCY = PER_BOOT
NEEDS_METADATA = False
# growpart and resize2fs take seconds and no later step needs the room: the
# steps after it run beside it
BACKGROUND = True

log = logging.getLogger(__name__)

GROWPART_FUDGE = 1024 * 1024  # growpart does not grow by less than this
BTRFS_MIN_RESIZE = 256 * 1024 * 1024  # the kernel refuses (EINVAL) to resize below it
_OFF = ("off", "false", "no", "0", "disabled")


class GrowError(RuntimeError):
    """A grow command ran and failed: the step fails with this message."""


def run(ctx):
    system = ctx.system
    if not ctx.config.getbool("growroot", "enabled"):
        raise Skip("turned off by [growroot] enabled = no")
    cc = _cloud_config(ctx)
    if system.exists("/etc/growroot-disabled"):
        if (cc.get("growpart") or {}).get("ignore_growroot_disabled") is not True:
            raise Skip("/etc/growroot-disabled exists")
        log.info("growroot: /etc/growroot-disabled exists, but #cloud-config growpart says "
                 "ignore_growroot_disabled: true")
    configured = ctx.config.getlist("growroot", "devices")
    devices = _apply_cloud_config(cc, configured)
    if not system.live:
        # under --root, mount points are this machine's: user-data may only
        # narrow what the operator named in [growroot] devices, never widen it
        allowed = {os.path.normpath(d) for d in configured}
        refused = [d for d in devices if os.path.normpath(d) not in allowed]
        if refused:
            log.warning("growroot: under --root, ignoring #cloud-config growpart devices "
                        "not named in [growroot] devices: %s", ", ".join(refused))
        devices = [d for d in devices if os.path.normpath(d) in allowed]
        if any(os.path.normpath(d) == "/" for d in devices):
            log.info("growroot: under --root, / is this machine's own root: left alone")
        devices = [d for d in devices if os.path.normpath(d) != "/"]
        if not devices:
            raise Skip("under --root only mount points named in [growroot] devices are "
                       "grown, never /")
    changes, skipped, errors = [], [], []
    for mountpoint in devices:
        try:
            grow_mountpoint(system, mountpoint, changes)
        except Skip as e:
            skipped.append(f"{mountpoint}: {e}")
        except (GrowError, PartitionError, CommandFailed, CommandTimedOut) as e:
            errors.append(f"{mountpoint}: {e}")
    if errors:  # a partition grown before its filesystem failed is told with the failure
        return Outcome(changes, errors, error="; ".join(errors + skipped))
    if skipped and not changes and len(skipped) == len(devices):
        raise Skip("; ".join(skipped))
    for s in skipped:
        log.info("growroot: skipped %s", s)
    return changes


def unchanged_inputs(ctx):
    """What decides the next boot's growroot (see boot_guard): the block
    devices' sizes, so a disk grown while the instance was down is noticed."""
    try:
        names = ctx.system.listdir("/sys/class/block")
    except OSError:
        return []
    # not loop/ram devices, nor optical drives (a config drive on sr0 may be
    # probed after the guard runs, and nothing grows on it)
    return [f"/sys/class/block/{n}/size" for n in names
            if not n.startswith(("loop", "ram", "zram", "sr", "fd"))]


def _cloud_config(ctx):
    try:
        cc = ctx.cloud_config
    except Exception as e:  # broken user-data must not stop the root growing
        log.warning("growroot: cannot read #cloud-config (%s); using the config file", e)
        return {}
    return cc if isinstance(cc, dict) else {}


def _apply_cloud_config(cc, devices):
    """Honour #cloud-config growpart / resize_rootfs; returns the mount points."""
    # checked as the user-data was read (guestagent/schema/growroot.py): a
    # mapping, its mode false or a string, its devices a list of strings
    growpart = cc.get("growpart") or {}
    mode = growpart.get("mode", "auto")
    if mode is False or mode.strip().lower() in _OFF:
        raise Skip("#cloud-config says growpart: {mode: off}")
    wanted = growpart.get("devices")
    if wanted and all(d.startswith("/") for d in wanted):
        devices = wanted
    elif wanted is not None:
        log.warning("growroot: #cloud-config growpart devices should be a list of "
                    "mount points; using [growroot] devices (%s)", ", ".join(devices))
    if cc.get("resize_rootfs", True) is False:
        raise Skip("#cloud-config says resize_rootfs: false")
    return devices


def grow_mountpoint(system, mountpoint, changes):
    """Grow what holds ``mountpoint`` (a live host path), adding to ``changes``.

    Changes are added as they happen, so a partition grown before a failing
    filesystem grow is still reported.
    """
    mount = find_mount(mountpoint)
    if mount is None:
        raise Skip("not a mount point")
    fstype = mount.fstype
    if fstype in NOT_ON_A_DISK or fstype.startswith("fuse."):
        raise Skip(f"{fstype} filesystem, nothing to grow")
    if fstype not in GROWERS:
        raise Skip(f"{fstype} filesystem (growroot grows ext2/3/4, xfs and btrfs)")
    if mount.read_only:
        raise Skip(f"mounted read-only ({fstype} on {mount.source})")
    dev = blockdev.device_of_mount(system, mount)
    if dev is None:
        raise Skip(f"cannot find the block device behind it ({mount.source})")
    if not system.live:
        _refuse_host_root_disk(system, dev)
    tool, argv = GROWERS[fstype]
    if not system.which(tool):
        raise Skip(f"{tool} is not installed, so its {fstype} filesystem cannot grow")
    node = _node(dev, mount)
    first_change, unusable = len(changes), []
    if dev.is_lvm:
        for t in ("lvs", "pvs", "vgs", "pvresize", "lvextend", "parted"):
            if not system.which(t):
                raise Skip(f"on LVM volume {dev.dm_name}, but {t} is not installed (lvm2, "
                           "parted)")
        unusable = lvm.grow_lv(system, dev, lambda disk, n: _growpart(system, disk, n),
                               changes)
    elif dev.dm_name:
        raise Skip(f"on device-mapper volume {dev.dm_name}, which is not LVM "
                   "(encrypted or multipath volumes are not grown)")
    elif dev.partition_number is not None:
        changes += grow_partition(system, dev)
    # a filesystem on a whole disk: only the filesystem grows
    if fstype == "btrfs" and dev.size_bytes < BTRFS_MIN_RESIZE:
        log.debug("growroot: %s is under 256 MiB: btrfs will not resize it", node)
    else:
        changes += grow_filesystem(system, fstype, node, mount.mountpoint, argv)
    if unusable and len(changes) == first_change:
        # the disk has room the root cannot have: say so in status, not "ok"
        raise Skip("; ".join(unusable))


def _node(dev, mount):
    """A /dev node for ``dev``: the mount source when it is that device, else /dev/NAME."""
    for path in (mount.source, dev.path):
        found = blockdev.device_of_path(path) if path.startswith("/dev/") else None
        if found is not None and found.devno == dev.devno:
            return path
    raise Skip(f"no /dev node for {dev.name} (neither {mount.source} nor {dev.path})")


def _refuse_host_root_disk(system, dev):
    """Under --root, a disk that holds this machine's own / is never touched."""
    host = find_mount("/")
    hdev = blockdev.device_of_mount(system, host) if host else None
    if hdev is None:
        return
    if _disks_of(hdev) & _disks_of(dev):
        raise Skip(f"{dev.path} shares a disk with this machine's own root; under --root "
                   "growroot leaves it alone")


def _disks_of(dev):
    if dev.slaves:
        out = set()
        for s in dev.slaves:
            out |= _disks_of(s)
        return out
    return {dev.disk.name if dev.partition_number is not None else dev.name}


def grow_partition(system, part):
    """growpart the partition ``part`` (a BlockDevice) if there is room after it."""
    if part.space_after() < GROWPART_FUDGE:
        return []  # the common later-boot case: no command at all
    return _growpart(system, part.disk.path, part.partition_number)


def _growpart(system, disk, number):
    """``growpart DISK N``, dry run first; returns the changes ([] for NOCHANGE)."""
    if not system.which("growpart"):
        raise Skip(f"partition {number} of {disk} could grow, but growpart is not "
                   "installed (cloud-guest-utils or cloud-utils-growpart)")
    env = _growpart_env()
    dry = system.run(["growpart", "-N", disk, str(number)], env=env, timeout=120)
    if dry.returncode == 1 and "NOCHANGE" in dry.stdout:
        log.debug("growpart: %s", dry.stdout.strip())
        return []
    if dry.returncode != 0:
        raise GrowError(_growpart_failure(["growpart", "-N", disk, str(number)], dry))
    part = _partition_of(disk, number)
    before = part.size_bytes if part else 0
    res = system.run(["growpart", disk, str(number)], env=env, timeout=300)
    if res.returncode == 1 and "NOCHANGE" in res.stdout:
        return []
    if res.returncode != 0:
        raise GrowError(_growpart_failure(["growpart", disk, str(number)], res))
    part = _partition_of(disk, number)
    after = part.size_bytes if part else 0
    if part is not None and after <= before:
        # growpart wrote the table; make sure the kernel sees it too
        system.run(["partx", "--update", "--nr", str(number), disk], timeout=60)
        after = part.size_bytes
        if after <= before:
            raise GrowError(f"growpart grew partition {number} of {disk} on disk, but the "
                            "kernel still sees the old size (partx --update did not help); "
                            "the next boot will finish the job")
    return [f"grew partition {number} of {disk} from {human_size(before)} "
            f"to {human_size(after)}"]


# growpart keeps its sfdisk dumps in a mktemp -d under TMPDIR; on an image
# whose root is full, /tmp (on the root) has no room for even that, and
# growpart stops with "failed to make temp dir" before growing anything.
SCRATCH_ROOM = 4 << 20
SCRATCH_DIRS = ("/run", "/dev/shm")


def _growpart_env():
    """growpart's environment: the C locale, and a TMPDIR with room (the
    caller's, else /run or /dev/shm, both tmpfs at boot)."""
    env = dict(os.environ, LC_ALL="C")
    for d in (env.get("TMPDIR") or "/tmp",) + SCRATCH_DIRS:
        try:
            st = os.statvfs(d)
        except OSError:
            continue
        if st.f_bavail * st.f_frsize >= SCRATCH_ROOM and os.access(d, os.W_OK | os.X_OK):
            if d != (env.get("TMPDIR") or "/tmp"):
                log.debug("growroot: growpart's temp files go to %s (too little room in %s)",
                          d, env.get("TMPDIR") or "/tmp")
                env["TMPDIR"] = d
            break
    return env


def _partition_of(disk, number):
    dev = blockdev.device_of_path(disk)
    for p in dev.partitions() if dev else []:
        if p.partition_number == number:
            return p
    return None


def _growpart_failure(argv, res):
    lines = [ln for ln in (res.stdout + "\n" + res.stderr).splitlines()
             if ln.strip() and not ln.startswith(("#", "label", "device", "unit", "first-lba",
                                                   "sector-size", "/dev/"))]
    failed = [ln for ln in lines if "FAILED" in ln]
    detail = (failed or lines or ["no output"])[-1].strip()
    return f"{' '.join(argv)} failed (exit {res.returncode}): {detail[:300]}"


def _fs_size(mountpoint):
    # a live host mount point: growroot grows this machine's disks, not a tree's
    st = os.statvfs(mountpoint)
    return st.f_blocks * st.f_frsize


def grow_filesystem(system, fstype, node, mountpoint, argv):
    """Grow the filesystem to fill its device; returns the change, if any."""
    cmd = argv(node, mountpoint)
    before = _fs_size(mountpoint)
    try:
        system.run(cmd, env=dict(os.environ, LC_ALL="C"), timeout=600, check=True)
    except CommandFailed as e:
        msg = str(e)
        if fstype.startswith("ext") and "Permission denied" in msg:
            msg += (" (growing a mounted ext filesystem needs CAP_SYS_RESOURCE, which "
                    "this process does not have: a container or restricted sandbox?)")
        raise GrowError(msg) from None
    after = _fs_size(mountpoint)
    if after <= before:
        return []
    _settle(system, fstype, mountpoint)
    return [f"grew the {fstype} filesystem on {mountpoint} ({node}) {_grown(before, after)}"]


def _settle(system, fstype, mountpoint):
    """Put a grown filesystem on the disk in place (see SETTLE_AFTER_GROWING).
    The grow has happened either way: a failure here is a warning."""
    if fstype not in SETTLE_AFTER_GROWING:
        return
    tool, argv = SETTLE_AFTER_GROWING[fstype]
    if not system.which(tool):
        log.warning("growroot: %s is not installed, so the grown %s filesystem on %s stays "
                    "in its log until the kernel writes it; a power cut before then makes "
                    "the next mount replay the grow", tool, fstype, mountpoint)
        return
    try:
        system.run(argv(mountpoint), timeout=120, check=True)
    except (CommandFailed, CommandTimedOut) as e:
        log.warning("growroot: could not write the grown %s filesystem on %s in place "
                    "(%s); a power cut before the kernel does makes the next mount replay "
                    "the grow", fstype, mountpoint, e)


def _grown(before, after):
    """"from 1.4 GiB to 2.9 GiB", or "by 3.0 MiB (to 1.4 GiB)" when the two
    sizes would read the same."""
    old, new = human_size(before), human_size(after)
    if old != new:
        return f"from {old} to {new}"
    return f"by {human_size(after - before)} (to {new})"


# -- #cloud-config `growpart` and `resize_rootfs`, checked before anything acts ---------


