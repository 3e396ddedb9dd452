"""Partition tables of the disks an LVM root grows onto: read, choose, add.

``parted -m DISK unit s print free`` is the one view of a table (`DiskLayout`);
`new_partition` chooses where a new partition goes (pure, so it is
unit-tested on captured parted output), and `add_partition` makes it on the
live disk and tells the kernel.

GPT: a disk that grew keeps its backup header, and so the end of the usable
range, where the image put it; parted in script mode will not make a
partition past it, so the header is moved to the new end first (``sfdisk
--relocate gpt-bak-std``, else ``sgdisk -e``), as growpart does.
msdos: a primary partition while one of the four slots is free, else a
logical one inside the extended partition, which is grown to the disk's
end first when the free space starts where it ends.
"""

import json
import logging
import os
import time

from ...system import CommandFailed, output_tail
from . import blockdev
from .blockdev import human_size as _size

log = logging.getLogger(__name__)

ALIGN_SECTORS = 2048             # new partitions start on a 1 MiB boundary
MSDOS_EXTENDED_TYPES = {"5", "f", "85"}  # sfdisk's type ids for an extended partition
MSDOS_MAX_SECTOR = 2**32 - 1  # an msdos entry cannot reach past this
_ENV = {"LC_ALL": "C"}


class PartitionError(RuntimeError):
    """A partitioning command failed (the message says which and why)."""


class Segment:
    """A partition (number set) or free space (number None), in sectors."""

    def __init__(self, number, start, end, fstype="", flags=""):
        self.number, self.start, self.end = number, start, end
        self.fstype, self.flags = fstype, flags

    @property
    def sectors(self):
        return self.end - self.start + 1

    def __repr__(self):
        return f"<Segment {self.number or 'free'} {self.start}-{self.end}>"


class DiskLayout:
    """``parted -m DISK unit s print free``, parsed.

    ``extended``: on msdos, the number of the extended partition, or None.
    parted's machine output does not say which one it is: `parse_parted`
    takes the primary that holds the logical partitions, and `read_layout`
    asks sfdisk, which also knows an empty one.
    """

    def __init__(self, path, sectors, sector_size, table, segments):
        self.path, self.sectors, self.sector_size = path, sectors, sector_size
        self.table, self.segments = table, segments
        self.extended = None

    def partition(self, number):
        for s in self.segments:
            if s.number == number:
                return s
        return None

    @property
    def partitions(self):
        return [s for s in self.segments if s.number is not None]

    def free_after(self, number):
        """The free segment that starts right after partition ``number``, or None."""
        part = self.partition(number)
        if part is None:
            return None
        for s in self.segments:
            if s.number is None and s.start == part.end + 1:
                return s
        return None


def _sectors(field):
    return int(field.rstrip("s"))


def parse_parted(text):
    """Parse parted's machine-readable (``-m``) output in sectors."""
    lines = [ln.strip().rstrip(";") for ln in text.splitlines() if ln.strip()]
    if not lines or lines[0] != "BYT":
        raise ValueError("not parted -m output in sectors (no 'BYT;' header)")
    head = lines[1].split(":")
    if len(head) < 6:
        raise ValueError(f"unexpected parted disk line: {lines[1]!r}")
    layout = DiskLayout(head[0], _sectors(head[1]), int(head[3]), head[5], [])
    for ln in lines[2:]:
        f = ln.split(":")
        if len(f) < 5:
            continue
        start, end = _sectors(f[1]), _sectors(f[2])
        if f[4] == "free":
            layout.segments.append(Segment(None, start, end))
        else:
            layout.segments.append(Segment(int(f[0]), start, end, f[4], f[-1]))
    if layout.table == "msdos":
        logical = [p for p in layout.partitions if p.number > 4]
        for p in layout.partitions:
            if p.number <= 4 and logical and all(p.start < q.start and q.end <= p.end
                                                 for q in logical):
                layout.extended = p.number
    return layout


def msdos_extended(sfdisk_json):
    """The number of the extended partition in ``sfdisk --json`` output, or None."""
    table = json.loads(sfdisk_json).get("partitiontable", {})
    for p in table.get("partitions", []):
        if str(p.get("type", "")).lower() in MSDOS_EXTENDED_TYPES:
            digits = ""
            for ch in reversed(p.get("node", "")):
                if not ch.isdigit():
                    break
                digits = ch + digits
            if digits:
                return int(digits)
    return None


class NewPartition:
    """Where a new partition goes, in sectors.

    ``part_type``: parted's primary or logical.  ``extended_end``, when set,
    is where the extended partition (number ``extended``) must end first so
    the logical one fits inside it.
    """

    def __init__(self, start, end, part_type="primary", extended=None, extended_end=None):
        self.start, self.end, self.part_type = start, end, part_type
        self.extended, self.extended_end = extended, extended_end

    def __eq__(self, other):
        return isinstance(other, NewPartition) and vars(self) == vars(other)

    def __repr__(self):
        return "NewPartition(" + ", ".join(f"{k}={v!r}" for k, v in vars(self).items()
                                           if v is not None) + ")"


def _align_up(sector):
    return -(-sector // ALIGN_SECTORS) * ALIGN_SECTORS


def new_partition(disk, layout, min_new):
    """(NewPartition, None) for the largest partition that fits, or (None, why not).

    No note when there is no space worth taking: that is every later boot.
    """
    free = _free_runs(layout)
    roomy = [s for s in free if s.sectors * layout.sector_size >= min_new]
    if not roomy:
        return None, None
    space = _size(max(s.sectors for s in roomy) * layout.sector_size)
    if layout.table not in ("gpt", "msdos"):
        return None, (f"{disk} has {space} unallocated, but a {layout.table!r} partition "
                      "table, where growroot makes no partitions")
    candidates = []  # (size, takes no resize, NewPartition)
    for s in free:
        slots = _msdos_slots(layout, s) if layout.table == "msdos" \
            else [("primary", _align_up(s.start), s.end, None)]
        for kind, start, end, extended_end in slots:
            size = (end - start + 1) * layout.sector_size
            if size >= min_new:
                candidates.append((size, extended_end is None, NewPartition(
                    start, end, kind, layout.extended if extended_end else None,
                    extended_end)))
    if not candidates:
        return None, (f"{disk} has {space} unallocated, but no partition can be added: "
                      "all four primary msdos slots are taken and no extended partition "
                      "reaches that space (repartition by hand)")
    return max(candidates, key=lambda c: c[:2])[2], None


def _free_runs(layout):
    """The free segments, neighbours joined (parted splits them at an extended
    partition's end, but a grown extended partition can take both)."""
    runs = []
    for s in layout.segments:
        if s.number is not None:
            continue
        if runs and runs[-1].end + 1 == s.start:
            runs[-1] = Segment(None, runs[-1].start, s.end)
        else:
            runs.append(s)
    return runs


def _msdos_slots(layout, free):
    """[(part_type, start, end, extended_end)]: the partitions msdos allows in ``free``.

    A logical partition needs a sector before it for its own table (the EBR),
    so it starts on the boundary after the free space's first sector.
    ``extended_end`` is set when the extended partition must grow to hold it.
    """
    ext = layout.partition(layout.extended) if layout.extended else None
    end = min(free.end, MSDOS_MAX_SECTOR)
    slots = []
    if ext is not None and ext.start < free.start <= ext.end + 1:
        if free.end <= ext.end:
            return [("logical", _align_up(free.start + 1), end, None)]
        if not any(ext.end < p.start <= free.end for p in layout.partitions):
            slots.append(("logical", _align_up(free.start + 1), end, end))
    if len([p for p in layout.partitions if p.number <= 4]) < 4:
        first = free.start
        if ext is not None and ext.start <= first <= ext.end:
            first = ext.end + 1  # a primary partition cannot lie inside the extended one
        slots.append(("primary", _align_up(first), end, None))
    return slots


# -- the live disk ---------------------------------------------------------

def run_tool(system, argv, what, error=None, env=None):
    """``argv``'s output; where it fails, ``error`` (PartitionError unless
    given) saying ``what`` failed and why.  ``env`` is added to the
    environment (default: the C locale, so the output parses)."""
    try:
        return system.run(argv, env=dict(os.environ, **(env or _ENV)), timeout=300,
                          check=True).stdout
    except CommandFailed as e:
        raise (error or PartitionError)(f"{what}: {e}") from None


def read_layout(system, disk):
    out = run_tool(system, ["parted", "-m", "-s", disk, "unit", "s", "print", "free"],
               f"reading the partition table of {disk}")
    layout = parse_parted(out)
    if layout.table == "msdos" and system.which("sfdisk"):
        res = system.run(["sfdisk", "--json", disk], env=dict(os.environ, **_ENV), timeout=60)
        try:
            layout.extended = msdos_extended(res.stdout) if res.returncode == 0 \
                else layout.extended
        except ValueError as e:
            log.debug("sfdisk --json %s: %s", disk, e)
    return layout


def relocate_gpt_backup(system, disk):
    """Move the backup GPT header to the disk's (new) end.

    A disk that grew keeps its backup header, and so the end of the usable
    range, where the image put it; parted in script mode will not make a
    partition past it.  growpart does the same before it grows a partition.
    """
    env = dict(os.environ, **_ENV)
    if system.which("sfdisk"):
        # nothing about the partitions changes, so nothing to tell the kernel
        argv = ["sfdisk", "--no-reread", "--no-tell-kernel", "--relocate", "gpt-bak-std", disk]
    elif system.which("sgdisk"):
        argv = ["sgdisk", "--move-second-header", disk]
    else:
        raise PartitionError(f"{disk} grew, but neither sfdisk (fdisk, util-linux) nor sgdisk "
                       "(gdisk) is installed to move its backup GPT header to the new end, "
                       "so no partition can be made in the new space")
    try:
        system.run(argv, env=env, timeout=120, check=True)
    except CommandFailed as e:
        raise PartitionError(f"moving the backup GPT header of {disk} to its end: {e}") from None


def _grow_extended(system, disk, number, end):
    res = system.run(["parted", "-s", disk, "unit", "s", "resizepart", str(number), f"{end}s"],
                     env=dict(os.environ, **_ENV), timeout=120)
    ext = read_layout(system, disk).partition(number)
    if ext is None or ext.end != end:
        raise PartitionError(f"parted could not grow extended partition {number} of {disk} to "
                             f"sector {end}: {output_tail(res) or 'no detail'}")


def add_partition(system, disk, where, flag=None):
    """Make partition ``where`` (a NewPartition) on ``disk``; returns (Segment, /dev node).

    ``flag``: a parted flag to set on it (``lvm``), a label for people and
    tools only, so failing to set it is a warning.
    """
    if read_layout(system, disk).table == "gpt":
        relocate_gpt_backup(system, disk)
    if where.extended_end is not None:
        _grow_extended(system, disk, where.extended, where.extended_end)
    res = system.run(["parted", "-s", disk, "unit", "s", "mkpart", where.part_type,
                      f"{where.start}s", f"{where.end}s"],
                     env=dict(os.environ, **_ENV), timeout=120)
    layout = read_layout(system, disk)
    new = next((s for s in layout.partitions if s.start == where.start), None)
    if new is None:
        raise PartitionError(f"parted could not make a partition on {disk} from sector "
                             f"{where.start}: {output_tail(res) or 'no detail'}")
    # parted exits 1 when it wrote the table but could not tell the kernel
    # about partitions in use; partition_node adds the new one either way
    if flag:
        res = system.run(["parted", "-s", disk, "set", str(new.number), flag, "on"],
                         env=dict(os.environ, **_ENV), timeout=120)
        if flag not in (read_layout(system, disk).partition(new.number) or new).flags:
            log.warning("could not flag partition %d of %s for %s (%s); going on without",
                        new.number, disk, flag,
                        output_tail(res, 200) or "no detail")
    return new, partition_node(system, disk, new.number)


def partition_node(system, disk, number, wait=5.0):
    """The /dev node of a new partition, once the kernel knows it."""
    disk_dev = blockdev.device_of_path(disk)
    if disk_dev is None:
        raise PartitionError(f"{disk} is not a block device")
    tries = [["partx", "-a", "--nr", str(number), disk], ["partx", "-u", disk],
             ["partprobe", disk]]
    deadline = time.monotonic() + wait
    while True:
        for p in disk_dev.partitions():
            if p.partition_number == number and os.path.exists(p.path):
                return p.path
        if tries and system.which(tries[0][0]):
            system.run(tries.pop(0), timeout=60)
            continue
        if tries:
            tries.pop(0)
            continue
        if time.monotonic() > deadline:
            raise PartitionError(f"the kernel does not show partition {number} of {disk} "
                           "(partx and partprobe tried); a reboot will")
        time.sleep(0.1)
