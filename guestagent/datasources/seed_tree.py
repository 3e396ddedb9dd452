"""A seed on a filesystem (config drive, NoCloud `cidata`, a seed directory),
read as if it were the root: no symlink leads off it, only regular files are
read, each under a size cap.  And the read-only mount of such a filesystem
in a private directory, unmounted again once read.
"""

import errno
import os
import stat

from ..system import CommandFailed


class OutsideTree(OSError):
    """A path in the seed that leads off it (a symlink), is not a plain
    file, or is over its size cap."""

    def __str__(self):
        return f"{self.filename}: {self.strerror}"


def read_mounted(system, dev, what, reader):
    """``reader(mount point)`` with ``dev`` mounted read-only (nosuid, nodev,
    noexec) in a private directory under /run; RuntimeError naming ``what``
    when it cannot be mounted."""
    import tempfile  # only when a device is mounted (it brings shutil, random, bz2...)

    mnt = tempfile.mkdtemp(prefix="guestagent-seed-", dir="/run")
    try:
        try:
            system.run(["mount", "-o", "ro,nosuid,nodev,noexec", dev, mnt], check=True)
        except CommandFailed as e:
            raise RuntimeError(f"cannot mount {what} {dev}: "
                               f"{e.detail or f'exit {e.returncode}'}") from None
        try:
            return reader(mnt)
        finally:
            system.run(["umount", mnt])
    finally:
        try:
            os.rmdir(mnt)
        except OSError:
            pass


class Tree:
    """Reads under one directory, as if it were the root: no symlink may lead
    off it, and only regular files are read (a FIFO would block the boot).
    ``what`` names the seed in errors ("the config drive")."""

    def __init__(self, top, what):
        self.top = top
        self.what = what

    def _open(self, rel, directory=False):
        parts = [p for p in rel.split("/") if p and p != "."]
        fds = [os.open(self.top, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)]
        links = 0
        try:
            while parts:
                part = parts.pop(0)
                if part == "..":
                    if len(fds) == 1:
                        raise OutsideTree(errno.EXDEV, f"leads off {self.what}", rel)
                    os.close(fds.pop())
                    continue
                flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
                if parts or directory:
                    flags |= os.O_DIRECTORY
                try:
                    fd = os.open(part, flags, dir_fd=fds[-1])
                except OSError as e:
                    if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                        raise
                    st = os.stat(part, dir_fd=fds[-1], follow_symlinks=False)
                    if not stat.S_ISLNK(st.st_mode):
                        raise
                    target = os.readlink(part, dir_fd=fds[-1])
                    links += 1
                    if target.startswith("/") or links > 16:
                        raise OutsideTree(errno.EXDEV, f"{part} is a symlink to {target!r}, "
                                          f"which leads off {self.what}", rel) from None
                    parts[:0] = [p for p in target.split("/") if p and p != "."]
                    continue
                fds.append(fd)
            fd = fds.pop()
            if not directory and not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                raise OutsideTree(errno.EINVAL, "not a regular file", rel)
            return fd
        finally:
            for fd in fds:
                os.close(fd)

    def read(self, rel, limit):
        """Bytes of the file ``rel`` (None when it does not exist); OSError
        (OutsideTree, or a size refusal) names the problem."""
        try:
            fd = self._open(rel)
        except FileNotFoundError:
            return None
        with os.fdopen(fd, "rb") as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise OutsideTree(errno.EFBIG, f"larger than {limit} bytes", rel)
        return data

    def isdir(self, rel):
        try:
            os.close(self._open(rel, directory=True))
            return True
        except OSError:
            return False

    def listdir(self, rel):
        fd = self._open(rel, directory=True)
        try:
            return os.listdir(fd)
        finally:
            os.close(fd)
