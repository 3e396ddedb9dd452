"""#cloud-config mounts, mount_default_fields and swap, and Nova's ephemeral
disk, once per instance (cloud-init's cc_mounts semantics).

- Nova formats the ephemeral disk with the label `ephemeral0`: when a
  filesystem with that label exists, it is mounted at /mnt, as cloud-init's
  default `[ephemeral0, /mnt]` does, unless `mounts` says otherwise (another
  mount point, or `[ephemeral0]` / `[ephemeral0, null]` for none).
- `mounts` entries: sdX/vdX/xvdX/hdX names get /dev/; `ephemeralN` becomes
  LABEL=ephemeralN (an entry for a disk that is not there is left out);
  `swap` (a swap disk from the metadata) is not known here and is left out.
  Missing fields come from `mount_default_fields` (default
  `auto defaults,nofail 0 2`: a missing disk never blocks a boot).
- `swap`: a file of `size` bytes (or "auto": as much as the memory up to
  4 GiB, 4 GiB up to 16 GiB of memory, then sqrt(GiB) GiB; never more than
  `maxsize`, a quarter of the free space, or twice the memory), made with
  fallocate (dd where that fails), mode 0600, mkswap, and an fstab line.
- Every fstab line the agent writes carries `comment=guestagent`: a later
  run replaces only those lines; the image's own lines are never touched.
  On a live system the new entries are mounted and swapped on at once
  (under --root only fstab and the files are written).
"""

import logging
import math
import os
import re

from ...system import CommandFailed
from .. import PER_INSTANCE, Skip

log = logging.getLogger(__name__)

FREQUENCY = PER_INSTANCE
FSTAB = "/etc/fstab"
MARK = "comment=guestagent"
DEFAULT_FIELDS = [None, None, "auto", "defaults,nofail", "0", "2"]
DEFAULT_MOUNTS = [["ephemeral0", "/mnt"], ["swap", "none", "swap", "sw", "0", "0"]]
DEFAULT_SWAPFILE = "/swap.img"
_SHORT = re.compile(r"^(sd|vd|xvd|hd|nvme)[a-z0-9]+$")
_EPHEMERAL = re.compile(r"^ephemeral([0-9]*)$")
GiB = 1024 ** 3


def run(ctx):
    cc = ctx.cloud_config
    system = ctx.system
    defaults = cc.get("mount_default_fields") or DEFAULT_FIELDS
    entries = _entries(system, cc.get("mounts") or [], defaults)
    changes = []
    swapfile = _swapfile(ctx, cc.get("swap") or {}, changes)
    if swapfile:
        entries.append([swapfile, "none", "swap", "sw", "0", "0"])
    old = system.read_text(FSTAB, default="")
    kept = [ln for ln in old.splitlines() if MARK not in ln]
    ours = ["\t".join(e[:3] + [_marked(e[3])] + e[4:]) for e in entries]
    if not ours and len(kept) == len(old.splitlines()):
        if changes:
            return changes
        raise Skip("no mounts, swap or ephemeral disk")
    new = "\n".join(kept + ours) + "\n"
    if new != old:
        system.write_file(FSTAB, new, mode=0o644)
        for line in ours:
            changes.append(f"fstab: {line.replace(chr(9), ' ')}")
    for e in entries:
        if e[1].startswith("/"):
            system.makedirs(e[1])
    if system.live and entries:
        changes += _activate(system, entries)
    return changes


def _marked(options):
    return options if MARK in options else f"{options},{MARK}"


def _entries(system, user, defaults):
    """The user's entries plus the defaults they do not override, resolved."""
    given = user_specs = {e[0] for e in user}
    wanted = list(user) + [list(d) for d in DEFAULT_MOUNTS if d[0] not in given]
    removed = {e[0] for e in wanted if len(e) < 2 or e[1] is None}
    out = []
    for entry in wanted:
        if entry[0] in removed:
            continue
        spec = _device(system, entry[0])
        if spec is None:
            if entry[0] in user_specs:
                log.info("mounts: %s is not attached here; no fstab entry for it", entry[0])
            continue
        fields = [spec] + [v if v is not None else defaults[i]
                           for i, v in enumerate(entry[1:], 1)]
        fields += [defaults[i] for i in range(len(fields), 6)]
        if any(f is None for f in fields):
            log.warning("mounts: entry for %s has no %s; skipped", entry[0],
                        "mount point" if fields[1] is None else "value for a field")
            continue
        out.append([str(f) for f in fields])
    return out


def _device(system, name):
    """fstab's fs_spec for a cloud-config name; None when there is no such disk."""
    if name == "ephemeral":
        name = "ephemeral0"
    m = _EPHEMERAL.match(name)
    if m:
        return f"LABEL={name}" if has_label(system, name) else None
    if name == "swap":
        return None  # a swap disk named by the metadata: not known to the agent
    if _SHORT.match(name):
        return f"/dev/{name}"
    return name


def has_label(system, label):
    """Is there a filesystem labelled ``label``?  udev's link, then the labels
    read off the machine's block devices (udev may not have got to the disk
    yet this early in the boot; blkid costs a process that probes for every
    format)."""
    if system.exists(f"/dev/disk/by-label/{label}"):
        return True
    if not system.live:
        return False
    from ...system.block_labels import find
    return find((label,)) is not None


def _swapfile(ctx, cfg, changes):
    """Make the swap file; returns its path for fstab, or None."""
    path = cfg.get("filename", DEFAULT_SWAPFILE)
    size = cfg.get("size", 0)
    if not size:
        return None
    system = ctx.system
    if system.exists(path):
        log.info("mounts: swap file %s exists already; kept", path)
        return path
    if size == "auto":
        size = auto_swap_size(_memory(), cfg.get("maxsize"),
                              _free_bytes(system, os.path.dirname(path) or "/"))
    elif cfg.get("maxsize"):
        size = min(size, cfg["maxsize"])
    mib = int(size // (1024 * 1024))
    if mib <= 0:
        log.info("mounts: no swap file: the size comes to 0")
        return None
    system.makedirs(os.path.dirname(path) or "/")
    host = system.command_path(path)  # the commands get a path no link leads out of
    try:
        try:
            system.run(["fallocate", "-l", f"{mib}M", host], timeout=300, check=True)
        except CommandFailed:  # filesystems without fallocate support
            system.run(["dd", "if=/dev/zero", f"of={host}", "bs=1M", f"count={mib}"],
                       timeout=600, check=True)
    except CommandFailed as e:
        system.remove(path)
        raise RuntimeError(f"cannot make swap file {path} of {mib} MiB: {e}") from None
    system.set_mode(path, 0o600)
    try:
        system.run(["mkswap", host], timeout=120, check=True)
    except CommandFailed as e:
        system.remove(path)
        raise RuntimeError(f"cannot make swap file {path}: {e}") from None
    changes.append(f"made swap file {path} ({mib} MiB)")
    return path


def auto_swap_size(memory, maxsize, free):
    """cloud-init's suggestion for size: auto."""
    if maxsize is None:
        maxsize = min(free // 4, memory * 2)
    elif maxsize > free * 0.9:
        maxsize = int(free * 0.9)
    if memory < 4 * GiB:
        size = memory
    elif memory < 16 * GiB:
        size = 4 * GiB
    else:
        size = round(math.sqrt(memory / GiB)) * GiB
    return min(size, maxsize)


def _memory():
    # the machine's memory, not a file of the image: the host's /proc even under --root
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def _free_bytes(system, path):
    st = system.statvfs(path)
    return st.f_frsize * st.f_bfree


def _activate(system, entries):
    """Mount and swap on what was just added (never `mount -a`: only ours).

    No `systemctl daemon-reload` (cloud-init's): mount(8) and swapon read
    fstab themselves, systemd picks up what is mounted, and a reload in the
    middle of the boot costs seconds before SSH; the next boot's fstab
    generator has the new lines anyway."""
    done = []
    active_swaps = system.read_text("/proc/swaps", default="")
    mounted = {m.mountpoint for m in system.mounts()}
    for e in entries:
        if e[2] == "swap":
            if e[0] in active_swaps:
                continue
            argv = ["swapon", e[0]]
            what = f"swap on {e[0]}"
        elif e[1].startswith("/") and "noauto" not in e[3].split(","):
            if e[1] in mounted:
                continue
            argv = ["mount", e[1]]
            what = f"mounted {e[0]} on {e[1]}"
        else:
            continue
        try:
            system.run(argv, timeout=120, check=True)
            done.append(what)
        except CommandFailed as err:  # nofail: the boot goes on; the next boot may succeed
            log.warning("mounts: %s", err)
    return done
