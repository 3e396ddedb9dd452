"""From a mount point to the block device, partition and disk behind it.

Everything here reads live kernel state (the mount table, /sys, /dev):
block devices have no meaning relative to a ``--root`` tree, so these
functions take host paths.  Nothing here changes anything.

- The mount table comes from `guestagent.system.mount_table` (/proc/self/mountinfo, which
  gives major:minor, the most robust way to reach /sys).
- A device's /sys entry is /sys/dev/block/MAJ:MIN; a partition has a
  ``partition`` file (its number) and sits in its disk's directory, which
  covers sd, vd, xvd, nvme...p, mmcblk...p and loop...p names alike.
- btrfs reports an anonymous 0:N device in mountinfo, so there the mount
  source (a /dev path, or /dev/root through the kernel's root=) is used.
"""

import os
import stat

from ...system import System

SYS_BLOCK = "/sys/class/block"
SYS_DEV_BLOCK = "/sys/dev/block"
SECTOR = 512  # /sys sizes and starts are always in 512-byte units

# -- the kernel command line's root= -------------------------------------------

def root_from_cmdline(cmdline):
    """The value of the last ``root=`` on a kernel command line, or ''."""
    value = ""
    for word in cmdline.split():
        if word.startswith("root="):
            value = word[5:]
    return value


_BY_LINK = {"UUID": "/dev/disk/by-uuid", "LABEL": "/dev/disk/by-label",
            "PARTUUID": "/dev/disk/by-partuuid", "PARTLABEL": "/dev/disk/by-partlabel"}


def resolve_spec(system, spec):
    """A /dev path for a root= / fstab style spec (UUID=, LABEL=, PARTUUID=, a path).

    The /dev/disk/by-* links are used where udev made them; otherwise
    ``blkid -t TOKEN=value -o device`` asks the disks themselves.
    Returns None when nothing matches.
    """
    spec = spec.strip()
    if not spec:
        return None
    if spec.startswith("/"):
        return spec
    token, sep, value = spec.partition("=")
    token = token.upper()
    if not sep or token not in _BY_LINK or not value:
        if len(spec) == 4 and all(c in "0123456789abcdefABCDEF" for c in spec):
            return _from_devno(int(spec[:2], 16), int(spec[2:], 16))  # root=0801
        return None
    value = value.strip('"')
    if token in ("UUID", "PARTUUID"):
        value_link = value.lower()
    else:
        value_link = value
    link = os.path.join(_BY_LINK[token], value_link)
    if os.path.exists(link):
        return os.path.realpath(link)
    if not system.which("blkid"):
        return None
    res = system.run(["blkid", "-t", f"{token}={value}", "-o", "device"], timeout=30)
    lines = res.stdout.split()
    return lines[0] if res.returncode == 0 and lines else None


def _from_devno(major, minor):
    name = _name_of(major, minor)
    return "/dev/" + name if name else None


# -- /sys -------------------------------------------------------------------------

class BlockDevice:
    """A block device as /sys shows it."""

    def __init__(self, sysdir):
        self.sysdir = sysdir
        self.name = os.path.basename(sysdir)

    @property
    def path(self):
        return "/dev/" + self.name

    def _read(self, leaf, default=None):
        try:
            with open(os.path.join(self.sysdir, leaf), encoding="ascii") as f:
                return f.read().strip()
        except OSError:
            return default

    @property
    def devno(self):
        major, _, minor = (self._read("dev") or "0:0").partition(":")
        return int(major), int(minor)

    @property
    def size_bytes(self):
        return int(self._read("size", "0")) * SECTOR

    @property
    def start_bytes(self):
        return int(self._read("start", "0")) * SECTOR

    @property
    def partition_number(self):
        """The partition number, or None for a whole disk."""
        n = self._read("partition")
        return int(n) if n and n.isdigit() else None

    @property
    def disk(self):
        """The whole disk holding this partition (a partition's parent in /sys)."""
        return BlockDevice(os.path.dirname(os.path.realpath(self.sysdir)))

    @property
    def dm_name(self):
        return self._read("dm/name")

    @property
    def dm_uuid(self):
        return self._read("dm/uuid", "")

    @property
    def is_lvm(self):
        return self.dm_uuid.startswith("LVM-")

    @property
    def slaves(self):
        try:
            names = sorted(os.listdir(os.path.join(self.sysdir, "slaves")))
        except OSError:
            return []
        return [BlockDevice(os.path.join(SYS_BLOCK, n)) for n in names]

    def partitions(self):
        """This disk's partitions (their /sys entries sit in the disk's directory)."""
        out = []
        try:
            names = sorted(os.listdir(self.sysdir))
        except OSError:
            return out
        for n in names:
            d = os.path.join(self.sysdir, n)
            if os.path.exists(os.path.join(d, "partition")):
                out.append(BlockDevice(d))
        return out

    def space_after(self):
        """Bytes between this partition's end and the next partition or the disk's end.

        An upper bound on what growpart could add (it also keeps GPT's backup
        header), so a small value lets the caller skip growpart altogether.
        """
        end = self.start_bytes + self.size_bytes
        limit = self.disk.size_bytes
        for p in self.disk.partitions():
            if p.name != self.name and p.start_bytes >= end:
                limit = min(limit, p.start_bytes)
        return max(0, limit - end)

    def __repr__(self):
        return f"<BlockDevice {self.name}>"


def _name_of(major, minor):
    link = os.path.join(SYS_DEV_BLOCK, f"{major}:{minor}")
    try:
        return os.path.basename(os.path.realpath(link)) if os.path.exists(link) else None
    except OSError:
        return None


def device_by_number(major, minor):
    link = os.path.join(SYS_DEV_BLOCK, f"{major}:{minor}")
    if not os.path.exists(link):
        return None
    return BlockDevice(os.path.realpath(link))


def device_of_path(path):
    """The BlockDevice of a /dev node (following /dev/mapper links), or None."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISBLK(st.st_mode):
        return None
    return device_by_number(os.major(st.st_rdev), os.minor(st.st_rdev))


def device_of_mount(system, mount, cmdline=None):
    """The BlockDevice a mount lives on, or None when it has none we can find.

    major:minor first (exact); for btrfs's anonymous devices the mount source,
    with /dev/root taken from the kernel command line.
    """
    if mount.major != 0:
        dev = device_by_number(mount.major, mount.minor)
        if dev is not None:
            return dev
    source = mount.source
    if source == "/dev/root":
        if cmdline is None:
            # the mount table is the host's, so its /dev/root is the running
            # kernel's root=: the host's command line, under --root too
            cmdline = System("/").kernel_cmdline()
        source = resolve_spec(system, root_from_cmdline(cmdline)) or ""
    elif not source.startswith("/"):
        source = resolve_spec(system, source) or ""
    return device_of_path(source) if source else None


def human_size(n):
    """Bytes in the unit an operator reads at a glance (1.5 GiB, 300.0 MiB)."""
    for unit, div in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= div:
            return f"{n / div:.1f} {unit}"
    return f"{n} bytes"
