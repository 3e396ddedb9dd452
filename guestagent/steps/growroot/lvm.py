"""Grow an LVM root: give its volume group the disk's new space, extend the LV.

The image guide's path, in order of preference for each physical volume of
the root LV's volume group:

1. the PV is a partition with free space right after it: ``growpart`` it,
   then ``pvresize``;
2. the PV is a whole disk that grew: ``pvresize``;
3. otherwise, if a disk that already holds the VG has unallocated space
   elsewhere: a new partition there (`partition_table`: the backup GPT
   header moved first; on msdos a primary or a logical partition), flagged
   ``lvm``, known to the kernel, then ``pvcreate``, ``vgextend``.

Then, when the VG has free extents, ``lvextend -l +100%FREE`` the root LV.
The filesystem is grown by the caller, like any other.

Only disks that already hold the VG are ever partitioned: an empty data disk
attached to the instance is not ours to take.

`plan` (which of the paths applies) is pure, so it is unit-tested on output
captured from the real tools; `grow_lv` runs it against the live system.
"""

import json
import logging

from . import blockdev, unfinished_pv
from .blockdev import human_size as _size
from .partition_table import (
    PartitionError,
    add_partition,
    new_partition,
    partition_node,
    read_layout,
    run_tool,
)

log = logging.getLogger(__name__)

MIN_GROWTH = 1024 * 1024         # growpart's own threshold: less is not worth it
MIN_NEW_PARTITION = 16 * 1024 * 1024
_ENV = {"LVM_SUPPRESS_FD_WARNINGS": "1", "LC_ALL": "C"}


class LvmError(PartitionError):
    """An LVM or partitioning command failed (the message says which and why)."""


# -- parsing what the tools print ------------------------------------------------

def parse_report(text, kind):
    """Rows of an LVM ``--reportformat json`` report (``kind``: lv, pv, vg)."""
    rows = []
    for report in json.loads(text).get("report", []):
        rows.extend(report.get(kind, []))
    return rows


# -- deciding ---------------------------------------------------------------------

class Action:
    """One thing to do: growpart+pvresize, pvresize, or mkpart+pvcreate+vgextend
    (``new``: the NewPartition to make on ``disk``)."""

    def __init__(self, kind, pv=None, disk=None, number=None, new=None):
        self.kind, self.pv, self.disk, self.number, self.new = kind, pv, disk, number, new

    def __eq__(self, other):
        return isinstance(other, Action) and vars(self) == vars(other)

    def __repr__(self):
        return "Action(" + ", ".join(f"{k}={v!r}" for k, v in vars(self).items()
                                     if v is not None) + ")"


def plan(pvs, pv_partitions, layouts, min_new=MIN_NEW_PARTITION):
    """Decide how to give the VG more space.

    ``pvs``: rows of ``pvs -o pv_name,pv_size,dev_size --units b``;
    ``pv_partitions``: pv_name -> (disk path, partition number), or None for a
    whole-disk PV; ``layouts``: disk path -> DiskLayout.
    Returns (actions, notes): notes name unallocated space on the VG's disks
    that no partition can be made in, and why (a quiet "nothing to do" has
    no note).
    """
    actions, notes = [], []
    for pv in pvs:
        name = pv["pv_name"]
        loc = pv_partitions.get(name)
        if loc is None:
            if _unused_extents(pv):
                actions.append(Action("pvresize", pv=name))
            continue
        disk, number = loc
        layout = layouts.get(disk)
        free = layout.free_after(number) if layout else None
        if free is not None and free.sectors * layout.sector_size >= MIN_GROWTH:
            actions.append(Action("growpart", pv=name, disk=disk, number=number))
        elif _unused_extents(pv):
            # the partition grew already (an earlier boot stopped before pvresize)
            actions.append(Action("pvresize", pv=name))
    if actions:
        return actions, notes
    disks = sorted({loc[0] for loc in pv_partitions.values() if loc})
    for disk in disks:
        layout = layouts.get(disk)
        if layout is None:
            continue
        new, note = new_partition(disk, layout, min_new)
        if new is not None:
            actions.append(Action("mkpart", disk=disk, new=new))
            break
        if note:
            notes.append(note)
    return actions, notes


def _unused_extents(pv):
    """Whether the device holds at least one more extent than the PV uses.

    pv_size counts whole extents after the metadata area (pe_start), so a
    fresh PV is always a little smaller than its device.
    """
    spare = int(pv["dev_size"]) - int(pv.get("pe_start") or 0) - int(pv["pv_size"])
    return spare >= max(int(pv.get("vg_extent_size") or 0), MIN_GROWTH)


# -- doing --------------------------------------------------------------------

def _run(system, argv, what):
    return run_tool(system, argv, what, LvmError, _ENV)


def find_lv(system, dev):
    """(vg_name, lv_name) of the LV at BlockDevice ``dev`` (matched by major:minor)."""
    major, minor = dev.devno
    out = _run(system, ["lvs", "--reportformat", "json",
                        "-o", "vg_name,lv_name,lv_kernel_major,lv_kernel_minor"],
               "listing logical volumes")
    for row in parse_report(out, "lv"):
        if (row.get("lv_kernel_major"), row.get("lv_kernel_minor")) == (str(major),
                                                                          str(minor)):
            return row["vg_name"], row["lv_name"]
    raise LvmError(f"lvs lists no logical volume for {dev.path} ({major}:{minor})")


def all_pvs(system):
    out = _run(system, ["pvs", "--reportformat", "json", "--units", "b", "--nosuffix",
                        "-o", "pv_name,vg_name,pv_size,dev_size,pe_start,vg_extent_size"],
               "listing physical volumes")
    return parse_report(out, "pv")


def vg_pvs(system, vg):
    return [r for r in all_pvs(system) if r.get("vg_name") == vg]


def vg_free_extents(system, vg):
    out = _run(system, ["vgs", "--reportformat", "json", "-o", "vg_name,vg_free_count", vg],
               f"reading volume group {vg}")
    for row in parse_report(out, "vg"):
        if row.get("vg_name") == vg:
            return int(row["vg_free_count"])
    return 0


def locate_pvs(pvs):
    """pv_name -> (disk path, partition number) or None (whole disk / unknown)."""
    out = {}
    for pv in pvs:
        dev = blockdev.device_of_path(pv["pv_name"])
        if dev is not None and dev.partition_number is not None:
            out[pv["pv_name"]] = (dev.disk.path, dev.partition_number)
        else:
            out[pv["pv_name"]] = None
    return out


def grow_vg(system, vg, grow_partition, changes):
    """Give VG ``vg`` the free space on its disks, adding to ``changes``.

    Returns the notes on unallocated space that no partition can be made in.

    ``grow_partition(disk_path, number)`` grows one partition with growpart
    and returns its changes (the step's own, so both paths behave alike).
    """
    _finish_unfinished(system, vg, changes)
    pvs = vg_pvs(system, vg)
    if not pvs:
        raise LvmError(f"pvs lists no physical volume in volume group {vg}")
    where = locate_pvs(pvs)
    layouts = {}
    for disk in sorted({loc[0] for loc in where.values() if loc}):
        layouts[disk] = read_layout(system, disk)
    actions, notes = plan(pvs, where, layouts)
    for note in notes:
        log.warning("volume group %s: %s", vg, note)
    if not actions:
        return notes
    # measured around all the actions: some LVM versions see a grown device
    # before pvresize runs
    before = {pv["pv_name"]: int(pv["pv_size"]) for pv in pvs}
    for a in actions:
        if a.kind == "growpart":
            changes += grow_partition(a.disk, a.number)
        if a.kind in ("growpart", "pvresize"):
            _run(system, ["pvresize", a.pv], f"resizing physical volume {a.pv}")
        elif a.kind == "mkpart":
            changes += _new_pv(system, vg, a)
    for pv in vg_pvs(system, vg):
        old = before.get(pv["pv_name"])
        if old is not None and int(pv["pv_size"]) > old:
            changes.append(f"resized physical volume {pv['pv_name']} from {_size(old)} "
                           f"to {_size(int(pv['pv_size']))}")
    return notes


def _new_pv(system, vg, action):
    # written down first: a cut before vgextend is finished on the next boot
    unfinished_pv.begin(system, action.disk, action.new.start, vg)
    new, node = add_partition(system, action.disk, action.new, flag="lvm")
    _run(system, ["pvcreate", node], f"making {node} a physical volume")
    _run(system, ["vgextend", vg, node], f"adding {node} to volume group {vg}")
    unfinished_pv.done(system)
    sector_size = read_layout(system, action.disk).sector_size
    return [f"made partition {new.number} on {action.disk} "
            f"({_size(new.sectors * sector_size)}) a physical volume of volume group {vg}"]


def _finish_unfinished(system, vg, changes):
    """Complete the new PV an earlier boot began for ``vg`` and a power cut
    stopped (see unfinished_pv): the partition made, its PV not made or
    not in the group yet."""
    found = unfinished_pv.pending(system, vg)
    if found is None:
        return
    disk, start = found
    layout = read_layout(system, disk)
    part = next((p for p in layout.partitions if p.start == start), None)
    if part is None:  # cut before parted wrote the table: the plan makes it anew
        unfinished_pv.done(system)
        return
    node = partition_node(system, disk, part.number)
    row = next((r for r in all_pvs(system) if r.get("pv_name") == node), None)
    if row is not None and row.get("vg_name") == vg:
        unfinished_pv.done(system)  # cut after vgextend: nothing left but the record
        return
    if row is None:
        found = unfinished_pv.signature(system, node)
        if found not in ("", "LVM2_member"):
            log.warning("growroot: partition %d of %s, begun for volume group %s on an "
                        "earlier boot, now holds %s: left alone", part.number, disk, vg, found)
            unfinished_pv.done(system)
            return
        if "lvm" not in part.flags:
            system.run(["parted", "-s", disk, "set", str(part.number), "lvm", "on"],
                       timeout=120)
        _run(system, ["pvcreate", "-y", node], f"making {node} a physical volume")
    elif row.get("vg_name"):
        log.warning("growroot: partition %d of %s, begun for volume group %s on an earlier "
                    "boot, is a physical volume of %s now: left alone", part.number, disk, vg,
                    row["vg_name"])
        unfinished_pv.done(system)
        return
    _run(system, ["vgextend", vg, node], f"adding {node} to volume group {vg}")
    unfinished_pv.done(system)
    changes.append(f"finished partition {part.number} on {disk} "
                   f"({_size(part.sectors * layout.sector_size)}), which a boot cut off before "
                   f"it joined volume group {vg}: it is a physical volume of {vg} now")


def extend_lv(system, vg, lv):
    """``lvextend -l +100%FREE`` when the VG has free extents; returns the changes."""
    if vg_free_extents(system, vg) == 0:
        return []
    before = _lv_size(system, vg, lv)
    _run(system, ["lvextend", "-l", "+100%FREE", f"{vg}/{lv}"],
         f"extending logical volume {vg}/{lv}")
    after = _lv_size(system, vg, lv)
    return [f"extended logical volume {vg}/{lv} from {_size(before)} to {_size(after)}"]


def _lv_size(system, vg, lv):
    out = _run(system, ["lvs", "--reportformat", "json", "--units", "b", "--nosuffix",
                        "-o", "lv_size", f"{vg}/{lv}"], f"reading {vg}/{lv}")
    rows = parse_report(out, "lv")
    return int(rows[0]["lv_size"]) if rows else 0


def grow_lv(system, dev, grow_partition, changes):
    """The whole LVM path for the LV at BlockDevice ``dev``, adding to ``changes``.

    The filesystem on the LV is left to the caller.  Returns the notes on
    space that could not be used (see `plan`).
    """
    vg, lv = find_lv(system, dev)
    notes = grow_vg(system, vg, grow_partition, changes)
    changes += extend_lv(system, vg, lv)
    return notes
