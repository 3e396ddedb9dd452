"""Files under the root: the file half of the `System` seam.

`System` (guestagent/system/__init__.py) is the one object steps use; this module
reads, writes and inspects files named by their path inside the root,
reached through `RootPaths` (guestagent/system/root_paths.py).

Writes walk the path one component at a time with ``O_NOFOLLOW`` and
directory file descriptors, so a symlink planted by an unprivileged user
(``~/.ssh -> /etc``) cannot redirect a write made by root, and nothing
escapes the root directory.
"""

import errno
import logging
import os
import stat

from .disk_space import said
from .mount_table import parse_mountinfo
from .root_paths import RootPaths, UnsafePathError, relative

log = logging.getLogger(__name__)

class RootFiles(RootPaths):
    """Files under ``root``: read, written and inspected without trusting
    links a non-root user could have planted."""

    def exists(self, path):
        return os.path.lexists(self.path(path))

    def read_bytes(self, path, limit=None):
        """Read a regular file inside the root; symlinks are resolved inside the root.

        A FIFO, socket or device (planted where a file was expected) is
        refused rather than read: it could block the boot or never end.
        """
        fd = self._open_file(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            _require_regular(fd, path)
        except BaseException:
            os.close(fd)
            raise
        with os.fdopen(fd, "rb") as f:
            return f.read() if limit is None else f.read(limit)

    def read_text(self, path, default=None):
        try:
            return self.read_bytes(path).decode("utf-8", "replace")
        except (FileNotFoundError, NotADirectoryError):
            if default is not None:
                return default
            raise

    def _open_file(self, path, flags):
        """Open for reading; symlinks resolve inside the root (sysfs has many)."""
        if self.live:
            return os.open("/" + relative(path), flags | os.O_CLOEXEC)
        host = self.resolve(path)
        if host is None:
            raise FileNotFoundError(errno.ENOENT, "no such file inside the root", path)
        return os.open(host, flags | os.O_CLOEXEC)

    # -- safe writes ---------------------------------------------------
    def write_file(self, path, data, mode=0o644, uid=None, gid=None,
                   make_dirs=True, dir_mode=0o755, trusted_uids=(0,)):
        """Atomically replace ``path`` with ``data``: temp file, fsync, rename.

        Refuses (UnsafePathError) when the file itself is a symlink or a
        directory on the way is a symlink that is not root's own, so the
        target of a planted link is never touched.  ``trusted_uids`` names
        owners whose directories we may walk (the user's own home, for
        ~/.ssh); links are never followed inside those.

        A full filesystem leaves the old file as it was (the temp file goes)
        and raises NoSpaceError naming the file and the full mount point.
        """
        log.debug("writing %s", "/" + relative(path))
        with said(self, "write", path):
            self._write_file(path, data, mode, uid, gid, make_dirs, dir_mode, trusted_uids)

    def _write_file(self, path, data, mode, uid, gid, make_dirs, dir_mode, trusted_uids):
        if isinstance(data, str):
            data = data.encode("utf-8")
        parent, name = os.path.split(relative(path))
        if not name:
            raise UnsafePathError(errno.EINVAL, "not a file path", path)
        dfd = self.open_dir(parent, create=make_dirs, mode=dir_mode,
                            trusted_uids=trusted_uids)
        try:
            try:
                st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            except FileNotFoundError:
                st = None
            if st is not None and not stat.S_ISREG(st.st_mode):
                kind = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a regular file"
                raise UnsafePathError(errno.ELOOP, f"refusing to write: {kind}",
                                      "/" + relative(path))
            # A fixed name: a run killed half-way leaves at most one stale
            # temp file, and the next write of the same file clears it.
            tmp = f".{name}.guestagent-new"
            try:
                os.unlink(tmp, dir_fd=dfd)
            except FileNotFoundError:
                pass
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600, dir_fd=dfd)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    if uid is not None or gid is not None:
                        os.fchown(f.fileno(), -1 if uid is None else uid,
                                  -1 if gid is None else gid)
                    os.fchmod(f.fileno(), mode)
                    os.fsync(f.fileno())
                os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
            except BaseException:
                try:
                    os.unlink(tmp, dir_fd=dfd)
                except OSError:
                    pass
                raise
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def write_existing(self, path, data):
        """Write into a file or device that must already exist (/dev/urandom):
        no create, no truncate, never through a symlink."""
        parent, name = os.path.split(relative(path))
        dfd = self.open_dir(parent, create=False)
        try:
            fd = os.open(name, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
        finally:
            os.close(dfd)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    def append_file(self, path, data, mode=0o644, uid=None, gid=None):
        """Append to a regular file (not atomic; never through a symlink).

        The owner and mode are set on the file descriptor that was written,
        so a link swapped in afterwards cannot redirect them.  A write cut
        short (a full filesystem) is taken back: the file keeps its old
        length, never half of what was appended.
        """
        if isinstance(data, str):
            data = data.encode("utf-8")
        fd = self.open_append(path, mode)
        try:
            if uid is not None or gid is not None:
                os.fchown(fd, -1 if uid is None else uid, -1 if gid is None else gid)
            os.fchmod(fd, mode)
            size = os.fstat(fd).st_size
            with said(self, "append to", path):
                try:
                    written = os.write(fd, data)
                    if written < len(data):  # a short write: the filesystem filled up
                        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
                except OSError:
                    os.ftruncate(fd, size)
                    raise
        finally:
            os.close(fd)

    def symlink(self, path, target):
        """Atomically make ``path`` a symlink to ``target`` (never through a link)."""
        parent, name = os.path.split(relative(path))
        dfd = self.open_dir(parent, create=True)
        try:
            tmp = f".{name}.guestagent-new"
            try:
                os.unlink(tmp, dir_fd=dfd)
            except FileNotFoundError:
                pass
            with said(self, "make the link", path):
                os.symlink(target, tmp, dir_fd=dfd)
            os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def open_append(self, path, mode=0o644, readable=False):
        """A descriptor open for appending to the regular file ``path`` (created
        when missing), reached without following untrusted links;
        ``readable``: also open for reading (a log read back with pread)."""
        access = os.O_RDWR if readable else os.O_WRONLY
        return self._open_regular(path, access | os.O_APPEND, mode)

    def open_rw(self, path, mode=0o600):
        """A read-write descriptor on the regular file ``path`` (created when
        missing, never truncated), reached without following untrusted links:
        for a file the caller holds open and locks (the runner's lock)."""
        return self._open_regular(path, os.O_RDWR, mode)

    def _open_regular(self, path, flags, mode=0o600, create=True, what="write"):
        parent, name = os.path.split(relative(path))
        if not name:
            raise UnsafePathError(errno.EINVAL, "not a file path", path)
        with said(self, "create", path):
            dfd = self.open_dir(parent, create=create)
        try:
            # O_NONBLOCK: opening a FIFO for writing would wait for a reader
            with said(self, "create", path):
                fd = os.open(name, flags | (os.O_CREAT if create else 0) | os.O_NOFOLLOW
                             | os.O_NONBLOCK | os.O_CLOEXEC, mode, dir_fd=dfd)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise UnsafePathError(errno.ELOOP, f"refusing to {what}: a symlink",
                                      "/" + relative(path)) from None
            if e.errno == errno.ENXIO:
                raise UnsafePathError(errno.ENXIO, f"refusing to {what}: not a regular file",
                                      "/" + relative(path)) from None
            raise
        finally:
            os.close(dfd)
        try:
            _require_regular(fd, "/" + relative(path), what)
            os.set_blocking(fd, True)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def remove(self, path):
        parent, name = os.path.split(relative(path))
        try:
            dfd = self.open_dir(parent, create=False)
        except FileNotFoundError:
            return False
        try:
            os.unlink(name, dir_fd=dfd)
            return True
        except FileNotFoundError:
            return False
        finally:
            os.close(dfd)

    def remove_tree(self, path):
        """Remove ``path`` and, when it is a directory, everything in it; a
        link is removed itself, never followed.  False when it was not there."""
        parent, name = os.path.split(relative(path))
        if not name:
            raise UnsafePathError(errno.EINVAL, "refusing to remove the root", path)
        try:
            dfd = self.open_dir(parent, create=False)
        except FileNotFoundError:
            return False
        try:
            return _remove_at(dfd, name)
        finally:
            os.close(dfd)

    def makedirs(self, path, mode=0o755):
        with said(self, "create the directory", path):
            os.close(self.open_dir(relative(path), create=True, mode=mode))

    def chmod_dir(self, path, mode):
        """Set the mode of directory ``path`` (opened as `open_dir` does)."""
        fd = self.open_dir(path)
        try:
            os.fchmod(fd, mode)
        finally:
            os.close(fd)

    def set_mode(self, path, mode, uid=None, gid=None):
        """Set the mode (and owner) of the existing regular file ``path``
        through a descriptor opened without following a link, so a link
        swapped in cannot redirect them."""
        fd = self._open_regular(path, os.O_RDONLY, create=False, what="change")
        try:
            if uid is not None or gid is not None:
                os.fchown(fd, -1 if uid is None else uid, -1 if gid is None else gid)
            os.fchmod(fd, mode)
        finally:
            os.close(fd)

    def lchown(self, path, uid, gid):
        """Change the owner of ``path`` itself (a symlink is never followed)."""
        os.chown(self.path(path), uid, gid, follow_symlinks=False)

    # -- durability ----------------------------------------------------
    def sync_to_disk(self, paths=("/", "/etc", "/home", "/var")):
        """Flush to the disk every filesystem holding one of ``paths`` (inside
        the root): syncfs(2) once per filesystem, so what commands wrote
        without fsync (ssh-keygen, useradd's home) is on the disk before a
        record that says it is done.  Where syncfs is missing, sync(2)."""
        seen = set()
        for path in paths:
            host = self.resolve(path)
            if host is None:
                continue
            try:
                fd = os.open(host, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                dev = os.fstat(fd).st_dev
                if dev not in seen:
                    seen.add(dev)
                    _syncfs(fd)
            finally:
                os.close(fd)

    # -- inspecting ----------------------------------------------------
    def lstat(self, path):
        """os.lstat of ``path`` inside the root: the link itself, never its target."""
        return os.lstat(self.path(path))

    def readlink(self, path):
        """The target of symlink ``path``, or None when it is not a link or not there."""
        try:
            return os.readlink(self.path(path))
        except OSError as e:
            if e.errno in (errno.EINVAL, errno.ENOENT, errno.ENOTDIR):
                return None
            raise

    def listdir(self, path):
        """The sorted names in directory ``path`` ([] when there is none);
        symlinks on the way resolve inside the root."""
        host = self.resolve(path)
        if host is None:
            return []
        try:
            return sorted(os.listdir(host))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def is_file(self, path, executable=False):
        """Is ``path`` a regular file (links resolved inside the root)?
        ``executable``: one its owner may run, as a command found there."""
        host = self.resolve(path)
        if host is None or not os.path.isfile(host):
            return False
        return not executable or os.access(host, os.X_OK)

    def read_attribute(self, path):
        """The text of a small kernel or config file (a /sys attribute), or
        '' when it is missing or refuses to be read (sysfs answers some reads
        with EINVAL)."""
        try:
            return self.read_text(path, default="")
        except OSError:
            return ""

    def statvfs(self, path):
        """os.statvfs of the filesystem holding ``path`` inside the root."""
        return os.statvfs(self.path(path))

    def mounts(self):
        """The mount table (guestagent.system.mount_table.Mount list) of
        /proc/self/mountinfo inside the root; [] where there is none."""
        return parse_mountinfo(self.read_attribute("/proc/self/mountinfo"))


def _remove_at(dfd, name):
    try:
        st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    if stat.S_ISDIR(st.st_mode):
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                     dir_fd=dfd)
        try:
            for entry in os.listdir(fd):
                _remove_at(fd, entry)
        finally:
            os.close(fd)
        os.rmdir(name, dir_fd=dfd)
    else:
        os.unlink(name, dir_fd=dfd)
    return True


def _require_regular(fd, path, what="read"):
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise UnsafePathError(errno.EINVAL, f"refusing to {what}: not a regular file", path)


_libc_syncfs = []


def _syncfs(fd):
    """syncfs(2) on ``fd``'s filesystem; sync(2) where libc has no syncfs."""
    if not _libc_syncfs:
        try:
            import ctypes  # only when a step is recorded as done

            fn = ctypes.CDLL(None, use_errno=True).syncfs
            fn.argtypes = [ctypes.c_int]
            _libc_syncfs.append(fn)
        except (OSError, AttributeError):
            _libc_syncfs.append(None)
    fn = _libc_syncfs[0]
    if fn is None or fn(fd) != 0:
        os.sync()
