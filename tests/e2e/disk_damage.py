"""Damage a powered-off guest's files the way a power cut can, on the host.

A cut lands at a moment the harness picks, but what the guest's page cache
had not yet written is luck: the sweep's seed 11 xfs-cut4 left apt's
package lists full of NULs (apt writes them without fsync, sized before
their data is on the disk) and the same cut repeated did not.  A boot that
must meet that damage gets it here, after a real cut and before the next
boot: the files named are kept at their size with every byte NUL.

The qcow2 overlay is converted to a sparse raw copy, partition 1 (a plain
layout's root) is mounted from a loop device at its offset, never a host
disk, and the copy goes back as a standalone qcow2 in the overlay's place.
Mounting replays an ext4 journal on the host: keep this to ext4 roots,
whose recovery the guest's kernel does the same way.
"""

import glob
import os
import shutil
import subprocess
import tempfile

from disk_check import partitions


def nul_fill(overlay, patterns, scratch):
    """NUL-fill the root's files matching ``patterns`` (globs, absolute in
    the guest); returns the guest paths damaged."""
    work = tempfile.mkdtemp(prefix="disk-damage-", dir=str(scratch))
    raw, mnt = os.path.join(work, "disk.raw"), os.path.join(work, "root")
    os.mkdir(mnt)
    loop, damaged = None, []
    try:
        subprocess.run(["qemu-img", "convert", "-O", "raw", overlay, raw], check=True)
        _, start, size = next(p for p in partitions(raw) if p[0] == 1)
        loop = subprocess.run(["losetup", "-f", "--show", "-o", str(start), "--sizelimit",
                               str(size), raw], capture_output=True, text=True,
                              check=True).stdout.strip()
        subprocess.run(["mount", loop, mnt], check=True)
        try:
            for pattern in patterns:
                for path in sorted(glob.glob(mnt + pattern)):
                    if os.path.isfile(path) and not os.path.islink(path):
                        with open(path, "r+b") as f:
                            f.write(b"\0" * os.path.getsize(path))
                        damaged.append(path[len(mnt):])
        finally:
            subprocess.run(["umount", mnt], check=True)
        subprocess.run(["qemu-img", "convert", "-O", "qcow2", raw, overlay + ".new"],
                       check=True)
        os.replace(overlay + ".new", overlay)
    finally:
        if loop:
            subprocess.run(["losetup", "-d", loop], check=False)
        shutil.rmtree(work, ignore_errors=True)
    return damaged
