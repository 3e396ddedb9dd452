"""Reading an image tree without ever leaving it or running anything from it.

An image mounted at ROOT has absolute symlinks (``/bin -> /usr/bin`` on some
merged-/usr trees, ``75-persistent-net-generator.rules -> /dev/null``) that
the host would resolve against its own ``/``.  Every lookup here resolves
links against ROOT instead, so a check of an image never reports the host's
growpart or sshd.
"""

import os

from ..system import distro

_BIN_DIRS = ("/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin")

# what to install, per family, for a missing program
_PACKAGES = {
    "growpart": {"debian": "cloud-guest-utils", "rhel": "cloud-utils-growpart"},
    "resize2fs": {"debian": "e2fsprogs", "rhel": "e2fsprogs"},
    "xfs_growfs": {"debian": "xfsprogs", "rhel": "xfsprogs"},
    "btrfs": {"debian": "btrfs-progs", "rhel": "btrfs-progs"},
    "sshd": {"debian": "openssh-server", "rhel": "openssh-server"},
    "lvextend": {"debian": "lvm2", "rhel": "lvm2"},
    "pvresize": {"debian": "lvm2", "rhel": "lvm2"},
    "parted": {"debian": "parted", "rhel": "parted"},
    "acpid": {"debian": "acpid", "rhel": "acpid"},
}


class Image:
    """The tree under ``system.root`` (``/`` for the running system)."""

    def __init__(self, system):
        self.system = system
        self.root = system.root
        self.live = system.live
        self.family = distro.family(system)
        self.os_release = distro.os_release(system)

    # -- paths -----------------------------------------------------------
    def resolve(self, path, follow_last=True):
        """Host path of ``path`` with every symlink resolved inside the root.

        None when a component is missing (or, with ``follow_last``, when the
        final link dangles).  A link to ``/dev/null`` resolves to the root's
        ``dev/null``, which an image tree may well lack: use `link_target`
        to ask where a link points.
        """
        return self.system.resolve(path, follow_last)

    def lexists(self, path):
        """The entry exists (a dangling symlink counts)."""
        return self.resolve(path, follow_last=False) is not None

    def exists(self, path):
        return self.resolve(path) is not None

    def is_file(self, path):
        return self.system.is_file(path)

    def is_dir(self, path):
        host = self.resolve(path)
        return host is not None and os.path.isdir(host)

    def link_target(self, path):
        """Where a symlink points (as written), or None when it is not one."""
        try:
            return self.system.readlink(path)
        except OSError:
            return None

    def listdir(self, path):
        try:
            return self.system.listdir(path)
        except OSError:
            return []

    def read(self, path, default=None):
        """Text of a file inside the root (links resolved inside it)."""
        if not self.system.is_file(path):
            return default
        try:
            return self.system.read_bytes(path, limit=4 << 20).decode("utf-8", "replace")
        except OSError:
            return default

    def program(self, name):
        """The image's own copy of a program (root path), or None."""
        for d in _BIN_DIRS:
            p = f"{d}/{name}"
            if self.system.is_file(p, executable=True):
                return p
        return None

    def host(self, path):
        """``path`` as a command run on the host must name it (for fix texts)."""
        return path if self.live else self.root.rstrip("/") + path

    # -- what the image is -----------------------------------------------
    def uses_systemd(self):
        return any(self.is_file(p) for p in ("/lib/systemd/systemd", "/usr/lib/systemd/systemd"))

    def install_cmd(self, *programs):
        """The command that installs what provides ``programs`` in this image."""
        fam = self.family or "debian"
        pkgs = []
        for prog in programs:
            pkg = _PACKAGES.get(prog, {}).get(fam, prog)
            if pkg not in pkgs:
                pkgs.append(pkg)
        tool = "apt-get install -y" if fam == "debian" else "dnf install -y"
        cmd = f"{tool} {' '.join(pkgs)}"
        if not self.live:
            cmd = f"chroot {self.root} {cmd}"
        return cmd

    def fstab(self):
        """(spec, mountpoint, fstype, options) for each line of /etc/fstab."""
        out = []
        for line in (self.read("/etc/fstab", "") or "").splitlines():
            fields = line.split("#", 1)[0].split()
            if len(fields) >= 3:
                opts = fields[3] if len(fields) > 3 else "defaults"
                out.append((fields[0], fields[1], fields[2], opts))
        return out

    def root_mount(self):
        """(source, fstype) of ``/`` in the live mount table, or None."""
        if not self.live:
            return None
        from ..system.mount_table import find_mount
        try:
            mount = find_mount("/")
        except OSError:
            return None
        return (mount.source, mount.fstype) if mount else None

    def kernel_cmdline(self):
        """The running kernel's command line (live only), else None."""
        if not self.live:
            return None
        return self.system.kernel_cmdline().strip() or None


def parse_shell_vars(text):
    """KEY=value lines of a shell-style config file (quotes removed)."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("export "):
            line = line[7:].lstrip()
        key, sep, value = line.partition("=")
        if not sep or not key or line.startswith("#") or not key.replace("_", "").isalnum():
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        else:
            value = value.split("#", 1)[0].strip()
        out[key] = value
    return out
