"""Real disks for tests: sparse image files on loop devices.

This machine has no udev, so partition nodes can lag or never appear after
``losetup -P``: `LoopDisk` retries ``partx -a`` and, failing that, makes the
node itself from /sys/block/loopN/loopNpM/dev (and removes it afterwards).
Everything made is undone in `close`, even after a failure half-way.
"""

import hashlib
import os
import stat
import subprocess
import time

MiB = 1024 * 1024
MKFS = {
    "ext4": ["mkfs.ext4", "-q", "-F"],
    "xfs": ["mkfs.xfs", "-q", "-f"],
    "btrfs": ["mkfs.btrfs", "-q", "-f"],
}


def sh(*argv, check=True, input=None):
    res = subprocess.run([str(a) for a in argv], capture_output=True, text=True, input=input)
    if check and res.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))} exited {res.returncode}: "
                           f"{res.stderr.strip() or res.stdout.strip()}")
    return res


def has_cap_sys_resource():
    """Growing a mounted ext4 needs CAP_SYS_RESOURCE (some sandboxes drop it)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) & (1 << 24))
    return False


class LoopDisk:
    """An image file of ``size_mib`` on a loop device, partitioned per ``layout``.

    ``table``: "gpt", "dos" or None (a filesystem on the whole disk);
    ``layout``: sfdisk lines for the partitions ("size=100MiB", ...).
    """

    def __init__(self, workdir, size_mib, table="gpt", layout=("size=100MiB",)):
        self.workdir = str(workdir)
        self.image = os.path.join(self.workdir, "disk.img")
        self.table, self.layout = table, list(layout)
        self.size_mib = size_mib
        self.dev = None
        self.mounts = []
        self.made_nodes = []
        self.btrfs_devs = []
        self.name = None

    # -- set up ----------------------------------------------------------
    def __enter__(self):
        try:
            self.create()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def create(self):
        with open(self.image, "wb") as f:
            f.truncate(self.size_mib * MiB)
        if self.table:
            script = f"label: {self.table}\n" + "".join(f"{p}\n" for p in self.layout)
            sh("sfdisk", "-q", self.image, input=script)
        self.dev = sh("losetup", "-f", "--show", "-P", self.image).stdout.strip()
        self.name = os.path.basename(self.dev)
        if self.table:
            for n in range(1, len(self.layout) + 1):
                self.wait_partition(n)

    def part(self, n):
        """The node of partition ``n`` (loop0p1 style)."""
        return f"{self.dev}p{n}"

    def wait_partition(self, n, timeout=5.0):
        """The node of partition ``n``: ask partx until /sys has it, mknod if /dev lags."""
        node = self.part(n)
        sysdev = f"/sys/block/{self.name}/{self.name}p{n}/dev"
        now = time.monotonic()
        deadline, grace = now + timeout, now + 1.0
        while True:
            if os.path.exists(sysdev):
                if self._node_ok(node, sysdev):
                    return node
                if time.monotonic() > grace:
                    major, minor = (int(x) for x in open(sysdev).read().split(":"))
                    if os.path.lexists(node):
                        os.unlink(node)
                    os.mknod(node, 0o600 | stat.S_IFBLK, os.makedev(major, minor))
                    self.made_nodes.append(node)
                    return node
            else:
                sh("partx", "-a", "--nr", str(n), self.dev, check=False)
            if time.monotonic() > deadline:
                raise RuntimeError(f"partition {n} of {self.dev} never appeared in /sys")
            time.sleep(0.05)

    @staticmethod
    def _node_ok(node, sysdev):
        try:
            st = os.stat(node)
        except FileNotFoundError:
            return False
        want = open(sysdev).read().strip()
        return stat.S_ISBLK(st.st_mode) and f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}" == want

    def mkfs(self, fstype, target):
        sh(*MKFS[fstype], target)
        if fstype == "btrfs":
            self.btrfs_devs.append(target)

    def mount(self, target, mountpoint, options=None):
        os.makedirs(mountpoint, exist_ok=True)
        argv = ["mount"] + (["-o", options] if options else []) + [target, mountpoint]
        sh(*argv)
        self.mounts.append(str(mountpoint))
        return str(mountpoint)

    def umount(self, mountpoint):
        sh("umount", mountpoint)
        self.mounts.remove(str(mountpoint))

    # -- changes ---------------------------------------------------------
    def enlarge(self, mib):
        with open(self.image, "r+b") as f:
            f.truncate(os.path.getsize(self.image) + mib * MiB)
        sh("losetup", "-c", self.dev)

    def sectors(self):
        return int(open(f"/sys/block/{self.name}/size").read())

    def part_extent(self, n):
        """(start, size) of partition ``n`` in 512-byte sectors, as the kernel sees it."""
        base = f"/sys/block/{self.name}/{self.name}p{n}"
        return int(open(f"{base}/start").read()), int(open(f"{base}/size").read())

    # -- tear down -------------------------------------------------------
    def close(self):
        for mp in reversed(self.mounts):
            if sh("umount", mp, check=False).returncode != 0:
                sh("umount", "-l", mp, check=False)
        self.mounts = []
        for dev in self.btrfs_devs:  # the btrfs module remembers devices it saw
            sh("btrfs", "device", "scan", "--forget", dev, check=False)
        self.btrfs_devs = []
        if self.dev:
            sh("losetup", "-d", self.dev, check=False)
            self.dev = None
        for node in self.made_nodes:
            try:
                os.unlink(node)
            except FileNotFoundError:
                pass
        self.made_nodes = []
        try:
            os.unlink(self.image)
        except FileNotFoundError:
            pass


def write_data(mountpoint, size=256 * 1024):
    """A file of known content; returns its sha256, for checking it survived."""
    data = hashlib.sha256(b"guestagent").digest() * (size // 32)
    with open(os.path.join(mountpoint, "data.bin"), "wb") as f:
        f.write(data)
        os.fsync(f.fileno())
    return hashlib.sha256(data).hexdigest()


def read_digest(mountpoint):
    with open(os.path.join(mountpoint, "data.bin"), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def fs_bytes(mountpoint):
    st = os.statvfs(mountpoint)
    return st.f_blocks * st.f_frsize
