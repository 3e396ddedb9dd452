"""A new physical volume an earlier boot began and a power cut stopped.

The LVM path's new partition takes several commands: the partition (parted
mkpart, then its lvm flag), ``pvcreate``, ``vgextend``.  Cut between them,
the next boot finds the disk's free space gone into a partition that is no
PV, or a PV in no volume group, and the root could never grow again.  So
before the partition is made, the disk, its first sector and the volume
group are written down (fsynced: on the disk before parted writes the
table); `finish` on a later boot finds that partition and completes it,
and the record goes once the PV is in the group.  Only the partition the
record names is ever touched, and only while it holds nothing or an LVM
label of no group: the agent made it, nobody else has used it.
"""

import json
import logging

log = logging.getLogger(__name__)

RECORD = "/var/lib/guestagent/growroot-new-pv.json"


def begin(system, disk, start, vg):
    """Write down the partition about to be made on ``disk`` at ``start``
    for ``vg``.  A root too full to hold it goes on without: the grow
    matters more than its record."""
    try:
        system.write_file(RECORD, json.dumps({"disk": disk, "start": start, "vg": vg}) + "\n",
                          mode=0o600, dir_mode=0o700)
    except OSError as e:
        log.debug("growroot: cannot record the new partition about to be made: %s", e)


def done(system):
    try:
        system.remove(RECORD)
    except OSError as e:
        log.debug("growroot: cannot remove %s: %s", RECORD, e)


def pending(system, vg):
    """(disk, start sector) of a partition begun for ``vg``, or None."""
    try:
        doc = json.loads(system.read_text(RECORD, default="null"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("vg") != vg or not isinstance(
            doc.get("start"), int) or not isinstance(doc.get("disk"), str):
        return None
    return doc["disk"], doc["start"]


def signature(system, node):
    """The filesystem or volume type ``blkid -p`` finds on ``node``: '' for
    none (a stale GPT backup header the disk's growth left inside the new
    partition is no type), '?' when blkid cannot tell."""
    res = system.run(["blkid", "-p", "-o", "value", "-s", "TYPE", node], timeout=30)
    if res.returncode == 2:  # blkid: nothing found
        return ""
    return (res.stdout or "").strip() if res.returncode == 0 else "?"
