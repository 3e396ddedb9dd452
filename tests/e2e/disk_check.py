"""A powered-off guest's root disk, checked on the host: the root filesystem
with ``e2fsck -fn`` (ext4) or ``xfs_repair -n`` (XFS), and the LVM metadata
with ``vgck``.

Checking a mounted root from inside the guest reports errors that are not
there (the kernel's view moves under the checker), so the guest is powered
off cleanly first and its qcow2 overlay read here: ``qemu-img convert`` to a
sparse raw copy in a scratch directory, then read-only loop devices at the
partitions' offsets (``losetup -r -o``), never a host disk.  LVM runs with a
private ``LVM_SYSTEM_DIR`` (no backups, archives or devices file of this
machine's), activation off and ``--devices`` naming only those loop devices,
so the host's own volume groups are neither scanned nor touched.  The host
has no device-mapper, so an LV is checked as a file: its segments are copied
out of the PVs in order (holes stay holes).
"""

import json
import os
import re
import shutil
import subprocess
import tempfile

LVM_CONF = """\
global {{ activation = 0 locking_dir = "{d}" }}
activation {{ udev_sync = 0 udev_rules = 0 }}
devices {{ obtain_device_list_from_udev = 0 use_devicesfile = 0 }}
backup {{ backup = 0 archive = 0 backup_dir = "{d}" archive_dir = "{d}" }}
"""
CHUNK = 4 << 20


def _run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=900, **kw)


def partitions(raw):
    """[(number, start byte, size bytes)] of the raw disk's partition table."""
    table = json.loads(_run(["sfdisk", "-J", raw], check=True).stdout)["partitiontable"]
    sector = table.get("sectorsize", 512)
    return [(int(re.search(r"(\d+)$", p["node"]).group(1)), p["start"] * sector,
             p["size"] * sector) for p in table["partitions"]]


def check_root_disk(overlay, fs, lvm, scratch):
    """Check the root filesystem (``fs``: ext4 or xfs) and, with ``lvm``,
    volume group vg0 on the powered-off disk ``overlay``; returns a list of
    findings (empty: clean) and a summary line for the sweep's record."""
    work = tempfile.mkdtemp(prefix="disk-check-", dir=str(scratch))
    loops = []
    findings, said = [], []
    try:
        raw = os.path.join(work, "disk.raw")
        _run(["qemu-img", "convert", "-O", "raw", overlay, raw], check=True)
        parts = partitions(raw)
        for number, start, size in parts:
            loop = _run(["losetup", "-f", "--show", "-r", "-o", str(start), "--sizelimit",
                         str(size), raw], check=True).stdout.strip()
            loops.append((number, loop))
        if lvm:
            root, lvm_said = _lv_as_file(work, [loop for _, loop in loops], findings)
            said.append(lvm_said)
        else:
            root = dict(loops).get(1)
        if root is not None:
            said.append(_check_fs(root, fs, findings))
    finally:
        for _, loop in loops:
            _run(["losetup", "-d", loop])
        shutil.rmtree(work, ignore_errors=True)
    return findings, "; ".join(said)


def _check_fs(device, fs, findings):
    if fs == "ext4":
        argv = ["e2fsck", "-f", "-n", device]
    elif fs == "xfs":
        # -f: the LV copied out is a file, not a device
        argv = ["xfs_repair", "-n"] + ([] if device.startswith("/dev/") else ["-f"]) + [device]
    else:
        raise ValueError(f"no offline check for {fs}")
    res = _run(argv)
    if res.returncode != 0:
        findings.append(f"{' '.join(argv[:-1])} exited {res.returncode}:\n"
                        f"{(res.stdout + res.stderr)[-3000:]}")
        return f"{argv[0]} found problems"
    return f"{argv[0]} -n clean"


def _lvm(lvmdir, devices, *argv):
    env = dict(os.environ, LVM_SYSTEM_DIR=lvmdir, LVM_SUPPRESS_FD_WARNINGS="1")
    return _run(["lvm", argv[0], "--devices", ",".join(devices)] + list(argv[1:]), env=env)


def _lv_as_file(work, devices, findings, vg="vg0", lv="root"):
    """vgck the VG, then copy LV ``lv`` out of its PVs into a file."""
    lvmdir = os.path.join(work, "lvm")
    os.mkdir(lvmdir)
    with open(os.path.join(lvmdir, "lvm.conf"), "w") as f:
        f.write(LVM_CONF.format(d=lvmdir))
    res = _lvm(lvmdir, devices, "vgck", vg)
    # (activation is off on purpose: no device-mapper here)
    warned = [ln.strip() for ln in res.stderr.splitlines()
              if "WARNING" in ln and "Activation disabled" not in ln]
    if res.returncode != 0 or warned:
        findings.append(f"vgck {vg} exited {res.returncode}: {(res.stdout + res.stderr)[-2000:]}")
    said = f"vgck {vg} " + ("clean" if res.returncode == 0 else f"exit {res.returncode}")
    pvs = _lvm(lvmdir, devices, "pvs", "--reportformat", "json", "--units", "b", "--nosuffix",
               "-o", "pv_name,vg_name,pe_start")
    segs = _lvm(lvmdir, devices, "lvs", "--segments", "--reportformat", "json", "--units", "b",
                "--nosuffix", "-o", "seg_start_pe,seg_size_pe,seg_pe_ranges,vg_extent_size",
                f"{vg}/{lv}")
    if pvs.returncode != 0 or segs.returncode != 0:
        findings.append(f"lvm cannot read {vg}/{lv}: {pvs.stderr[-1000:]} {segs.stderr[-1000:]}")
        return None, said
    pv_rows = [r for rep in json.loads(pvs.stdout)["report"] for r in rep.get("pv", [])]
    orphans = [r["pv_name"] for r in pv_rows if not r.get("vg_name")]
    if orphans:
        findings.append(f"physical volumes in no volume group: {orphans}")
    said += f", {len(pv_rows)} PV(s)" + (f", orphans {orphans}" if orphans else "")
    pe_start = {r["pv_name"]: int(r["pe_start"]) for r in pv_rows}
    path = os.path.join(work, "lv.raw")
    with open(path, "wb") as out:
        for rep in json.loads(segs.stdout)["report"]:
            for s in rep.get("seg", []):
                extent = int(s["vg_extent_size"])
                pv, ranges = s["seg_pe_ranges"].rsplit(":", 1)
                first = int(ranges.split("-")[0])
                if pv not in pe_start or not pv.startswith("/dev/"):
                    findings.append(f"{vg}/{lv} has extents on a missing PV ({pv})")
                    return None, said
                _copy(pv, pe_start[pv] + first * extent, out,
                      int(s["seg_start_pe"]) * extent, int(s["seg_size_pe"]) * extent)
    return path, said


def _copy(src, offset, out, at, length):
    """``length`` bytes of ``src`` from ``offset`` to ``out`` at ``at``;
    runs of zeros are skipped, so the file stays sparse."""
    zero = bytes(CHUNK)
    with open(src, "rb") as f:
        f.seek(offset)
        done = 0
        while done < length:
            data = f.read(min(CHUNK, length - done))
            if not data:
                break
            if data != zero[:len(data)]:
                out.seek(at + done)
                out.write(data)
            done += len(data)
    out.truncate(max(out.seek(0, os.SEEK_END), at + length))
