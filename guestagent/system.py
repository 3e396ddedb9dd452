"""The one seam through which steps change the machine.

Every file a step reads or writes goes through `System` paths relative to a
root directory (``/`` on a real boot, a scratch tree under ``--root``), and
every command goes through `System.run` (or `System.start`, for one that runs
on without us waiting).  Tests point the root elsewhere.

Writes walk the path one component at a time with ``O_NOFOLLOW`` and
directory file descriptors, so a symlink planted by an unprivileged user
(``~/.ssh -> /etc``) cannot redirect a write made by root, and nothing
escapes the root directory.  Symlinks owned by root in root-owned,
non-writable directories (``/lib -> usr/lib`` on merged-/usr systems) are
followed, but resolved inside the root.
"""

import errno
import logging
import os
import stat
import subprocess
import time

log = logging.getLogger(__name__)

_MAX_LINKS = 16
_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class UnsafePathError(OSError):
    """A path could be redirected by someone other than root, or leaves the root."""


class System:
    def __init__(self, root="/"):
        self.root = os.path.abspath(root)
        self.live = self.root == "/"

    # -- paths ---------------------------------------------------------
    def path(self, path):
        """Host path of ``path`` (an absolute path inside the root).

        Every symlink on the way to the last component is resolved as if
        chrooted, so an image's absolute link (``/var/run -> /run``) leads
        to ROOT/run, never to the host's /run; the last component is left
        as named (it may be a link the caller means to inspect).  Only for
        reading and for handing to commands: writes go through
        `write_file`, which does not trust symlinks.
        """
        rel = _relative(path)
        if self.root == "/":
            return "/" + rel
        if not rel:
            return self.root
        host = self.resolve(path, follow_last=False, missing_ok=True)
        if host is None:
            raise UnsafePathError(errno.ELOOP, "too many levels of symbolic links", path)
        return host

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

    # -- safe writes ---------------------------------------------------
    def write_file(self, path, data, mode=0o644, uid=None, gid=None,
                   make_dirs=True, dir_mode=0o755, trusted_uids=(0,)):
        """Atomically replace ``path`` with ``data``: temp file, fsync, rename.

        Refuses (UnsafePathError) when the file itself is a symlink or a
        directory on the way is a symlink that is not root's own, so the
        target of a planted link is never touched.  ``trusted_uids`` names
        owners whose directories we may walk (the user's own home, for
        ~/.ssh); links are never followed inside those.
        """
        if isinstance(data, str):
            data = data.encode("utf-8")
        parent, name = os.path.split(_relative(path))
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
                                      "/" + _relative(path))
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
        parent, name = os.path.split(_relative(path))
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
        so a link swapped in afterwards cannot redirect them.
        """
        if isinstance(data, str):
            data = data.encode("utf-8")
        fd = self.open_append(path, mode)
        try:
            if uid is not None or gid is not None:
                os.fchown(fd, -1 if uid is None else uid, -1 if gid is None else gid)
            os.fchmod(fd, mode)
            os.write(fd, data)
        finally:
            os.close(fd)

    def symlink(self, path, target):
        """Atomically make ``path`` a symlink to ``target`` (never through a link)."""
        parent, name = os.path.split(_relative(path))
        dfd = self.open_dir(parent, create=True)
        try:
            tmp = f".{name}.guestagent-new"
            try:
                os.unlink(tmp, dir_fd=dfd)
            except FileNotFoundError:
                pass
            os.symlink(target, tmp, dir_fd=dfd)
            os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def open_append(self, path, mode=0o644):
        """A descriptor open for appending to the regular file ``path`` (created
        when missing), reached without following untrusted links."""
        parent, name = os.path.split(_relative(path))
        if not name:
            raise UnsafePathError(errno.EINVAL, "not a file path", path)
        dfd = self.open_dir(parent, create=True)
        try:
            # O_NONBLOCK: opening a FIFO for writing would wait for a reader
            fd = os.open(name, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW
                         | os.O_NONBLOCK | os.O_CLOEXEC, mode, dir_fd=dfd)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise UnsafePathError(errno.ELOOP, "refusing to write: a symlink",
                                      "/" + _relative(path)) from None
            if e.errno == errno.ENXIO:
                raise UnsafePathError(errno.ENXIO, "refusing to write: not a regular file",
                                      "/" + _relative(path)) from None
            raise
        finally:
            os.close(dfd)
        try:
            _require_regular(fd, "/" + _relative(path), "write")
            os.set_blocking(fd, True)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def remove(self, path):
        parent, name = os.path.split(_relative(path))
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

    def makedirs(self, path, mode=0o755):
        os.close(self.open_dir(_relative(path), create=True, mode=mode))

    def chmod_dir(self, path, mode):
        """Set the mode of directory ``path`` (opened as `open_dir` does)."""
        fd = self.open_dir(path)
        try:
            os.fchmod(fd, mode)
        finally:
            os.close(fd)

    def lchown(self, path, uid, gid):
        """Change the owner of ``path`` itself (a symlink is never followed)."""
        os.chown(self.path(path), uid, gid, follow_symlinks=False)

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

    def open_dir(self, path, create=False, mode=0o755, trusted_uids=(0,)):
        """Open a directory inside the root without following untrusted links."""
        parts = [p for p in _relative(path).split("/") if p]
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        links = 0
        try:
            while parts:
                part = parts.pop(0)
                if part == "..":
                    raise UnsafePathError(errno.EINVAL, "'..' in path", path)
                try:
                    nfd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
                                  | os.O_CLOEXEC, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    try:
                        os.mkdir(part, mode, dir_fd=fd)
                    except FileExistsError:
                        pass
                    parts.insert(0, part)
                    continue
                except OSError as e:
                    if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                        raise
                    target = self._trusted_link(fd, part, path)
                    links += 1
                    if links > _MAX_LINKS:
                        raise UnsafePathError(errno.ELOOP, "too many links", path) from None
                    if target.startswith("/"):
                        os.close(fd)
                        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                        # a link to an absolute path restarts at the root
                    parts[:0] = [p for p in target.split("/") if p and p != "."]
                    continue
                st = os.fstat(nfd)
                os.close(fd)
                fd = nfd
                if st.st_uid not in trusted_uids:
                    os.close(fd)
                    fd = -1
                    raise UnsafePathError(errno.EPERM, f"directory owned by uid {st.st_uid}",
                                          path)
            return fd
        except BaseException:
            if fd >= 0:
                os.close(fd)
            raise

    def _trusted_link(self, dfd, name, path):
        st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        if not stat.S_ISLNK(st.st_mode):
            raise UnsafePathError(errno.ENOTDIR, f"{name} is not a directory", path)
        dst = os.fstat(dfd)
        if st.st_uid != 0 or dst.st_uid != 0 or dst.st_mode & 0o022:
            raise UnsafePathError(errno.ELOOP, f"refusing to follow symlink {name!r}", path)
        target = os.readlink(name, dir_fd=dfd)
        if ".." in target.split("/"):
            # resolve '..' lexically against the link's place is not possible
            # from a dir fd; such links are rare in system trees
            raise UnsafePathError(errno.ELOOP, f"refusing symlink with '..': {name}", path)
        return target

    def _open_file(self, path, flags):
        """Open for reading; symlinks resolve inside the root (sysfs has many)."""
        if self.live:
            return os.open("/" + _relative(path), flags | os.O_CLOEXEC)
        host = self.resolve(path)
        if host is None:
            raise FileNotFoundError(errno.ENOENT, "no such file inside the root", path)
        return os.open(host, flags | os.O_CLOEXEC)

    def resolve(self, path, follow_last=True, missing_ok=False):
        """Host path of ``path`` with every symlink resolved as if chrooted.

        None when a component is missing (or, with ``follow_last``, when the
        final link dangles); with ``missing_ok`` the missing rest is appended
        as named instead.  For reading and inspecting only: writes go
        through `write_file`, which trusts no link it did not check.
        """
        todo = [p for p in _relative(path).split("/") if p]
        done = []
        links = 0
        missing = False
        while todo:
            part = todo.pop(0)
            if part == "..":
                if done:
                    done.pop()
                continue
            if missing:
                done.append(part)
                continue
            host = os.path.join(self.root, *done, part)
            try:
                st = os.lstat(host)
            except OSError:
                if not missing_ok:
                    return None
                missing = True
                done.append(part)
                continue
            if stat.S_ISLNK(st.st_mode) and (todo or follow_last):
                links += 1
                if links > _MAX_LINKS:
                    return None
                target = os.readlink(host)
                if target.startswith("/"):
                    done = []
                todo[:0] = [p for p in target.split("/") if p and p != "."]
                continue
            done.append(part)
        return os.path.join(self.root, *done)

    # -- commands ------------------------------------------------------
    def which(self, name):
        """Find a command on the host's PATH (commands always run on the host).

        systemd, rc.local and sudo all put the sbin directories on PATH; an
        unset PATH gets the same default.
        """
        for d in os.environ.get("PATH", _DEFAULT_PATH).split(":"):
            p = os.path.join(d, name)
            if os.path.isfile(p) and os.access(p, os.X_OK):
                return p
        return None

    def run(self, argv, input=None, timeout=None, check=False, env=None):
        """Run a command, log it, and return CompletedProcess (text output).

        ``input`` is never logged: it carries passwords (chpasswd).
        """
        t0 = time.monotonic()
        log.debug("running: %s", " ".join(argv))
        try:
            res = subprocess.run(argv, input=input, capture_output=True, text=True,
                                 timeout=timeout, env=env, errors="replace")
        except FileNotFoundError:
            raise CommandMissing(argv[0]) from None
        log.debug("%s exited %d in %.2fs", argv[0], res.returncode, time.monotonic() - t0)
        if check and res.returncode != 0:
            raise CommandFailed(argv, res)
        return res

    def start(self, argv, stdout=None, stderr=None, cwd=None, env=None):
        """Start a command and return its Popen without waiting for it.

        For commands watched while they run (user scripts) or left to run on
        (the background host key): a session of its own, so the caller can
        signal the whole group and our exit does not take it down; stdin is
        /dev/null.  OSError from starting it reaches the caller, which can
        say why (a script's bad #! line).
        """
        log.debug("starting: %s", " ".join(argv))
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                                cwd=cwd, env=env, start_new_session=True, close_fds=True)


class _AnyUid:
    def __contains__(self, uid):
        return True


_ANY_UID = _AnyUid()


class CommandMissing(RuntimeError):
    def __init__(self, name):
        super().__init__(f"command not found: {name}")
        self.name = name


class CommandFailed(RuntimeError):
    """`System.run(check=True)`: the command exited non-zero; the message names
    it, its exit code and the last line it printed (``detail``)."""

    def __init__(self, argv, res):
        self.detail = output_tail(res)
        msg = f"{' '.join(argv[:3])} failed (exit {res.returncode})"
        if self.detail:
            msg += ": " + self.detail
        super().__init__(msg)
        self.returncode = res.returncode
        self.result = res


def output_tail(res, limit=300):
    """The last line a command printed (stderr, else stdout), cut to ``limit``,
    for a message about it; '' when it printed nothing."""
    lines = (res.stderr or res.stdout or "").strip().splitlines()
    return lines[-1].strip()[:limit] if lines else ""


def _require_regular(fd, path, what="read"):
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise UnsafePathError(errno.EINVAL, f"refusing to {what}: not a regular file", path)


def _relative(path):
    """'/etc/hostname' -> 'etc/hostname'; refuses '..' and NUL."""
    path = os.fspath(path)
    if "\0" in path:
        raise UnsafePathError(errno.EINVAL, "NUL in path", path)
    parts = [p for p in path.split("/") if p and p != "."]
    if ".." in parts:
        raise UnsafePathError(errno.EINVAL, "'..' in path", path)
    return "/".join(parts)
