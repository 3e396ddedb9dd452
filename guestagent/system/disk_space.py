"""A full filesystem: when the root counts as full, and what a write that
found no space says.

An image can ship with its root at 100% (built to the byte, or a log that
filled it before the snapshot).  On a bigger disk growroot fixes that, so the
runner grows such a root before it writes anything else (runner.grow_first).  Where the
disk cannot grow, each write fails: `NoSpaceError` says which write and why in
the words an operator acts on ("cannot write /etc/hostname: no space left on
/"), instead of ``[Errno 28] No space left on device: '.hostname.new'``.  It
is an OSError with errno ENOSPC (or EDQUOT), so callers that catch OSError
keep working and only the message changes.
"""

import contextlib
import errno
import os

# Below this much space for unprivileged writers (f_bavail: what `df` shows),
# or with no inode left, the root is grown before anything is written: the
# agent's own state, a user's home from /etc/skel and the host keys need a
# few MiB, and the services after it need their share.
LOW_SPACE = 16 << 20
# Below this much space for root, a failed command is said to have met a
# full filesystem (a useradd or ssh-keygen needs a few blocks at most).
FULL_BELOW = 1 << 20
NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


class NoSpaceError(OSError):
    """A write found no space (or no inode, or the quota spent) on a filesystem."""

    def __init__(self, action, path, mountpoint, err=errno.ENOSPC):
        self.action, self.path, self.mountpoint = action, path, mountpoint
        why = "disk quota exceeded on" if err == errno.EDQUOT else "no space left on"
        # strerror says why in these words too: callers that show
        # "{e.strerror} ({e.filename})" read "no space left on / (/etc/motd)"
        super().__init__(err, f"{why} {mountpoint}", path)

    def __str__(self):
        return f"cannot {self.action} {self.path}: {self.strerror}"


def _statvfs(system, path):
    try:
        return system.statvfs(path)
    except OSError:
        return None


def free_bytes(system, path="/"):
    """Bytes free for unprivileged writers on the filesystem holding ``path``
    inside the root (what `df` shows as available); None where unknown."""
    st = _statvfs(system, path)
    return None if st is None else st.f_bavail * st.f_frsize


def is_low(system, path="/"):
    """Whether the filesystem holding ``path`` is (nearly) full."""
    st = _statvfs(system, path)
    if st is None:
        return False
    return st.f_bavail * st.f_frsize < LOW_SPACE or (st.f_files > 0 and st.f_favail == 0)


def is_full(system, path="/"):
    """Whether even root can write (next to) nothing more there: no inode
    left, or less than FULL_BELOW that root can have.  `df`'s figure does
    not tell: root may have the blocks reserved for it (ext4's 5 %), and
    ext4 counts as free a reserve no file may use; so below FULL_BELOW a
    probe file asks the filesystem for that much itself."""
    st = _statvfs(system, path)
    if st is None:
        return False
    if st.f_files > 0 and st.f_ffree == 0:
        return True
    if st.f_bavail * st.f_frsize >= FULL_BELOW:
        return False
    return not _room_for(system, path, FULL_BELOW)


def _room_for(system, path, size):
    """Can ``size`` bytes be allocated in directory ``path``?  (A probe file,
    removed at once; an error other than no space counts as room.)"""
    try:
        name = os.path.join(system.path(path), ".guestagent-space-probe")
        try:
            os.unlink(name)
        except FileNotFoundError:
            pass
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                     | os.O_CLOEXEC, 0o600)
    except OSError as e:
        return e.errno not in NO_SPACE_ERRNOS
    try:
        os.posix_fallocate(fd, 0, size)
        return True
    except OSError as e:
        return e.errno not in NO_SPACE_ERRNOS
    finally:
        os.close(fd)
        try:
            os.unlink(name)
        except OSError:
            pass


def mount_point(system, path):
    """The mount point (inside the root) of the filesystem holding ``path``:
    the highest directory above it on the same device."""
    root = system.root
    try:
        host = system.path(path)
    except OSError:
        return "/"
    while not os.path.lexists(host) and host != root and host != "/":
        host = os.path.dirname(host)
    try:
        dev = os.lstat(host).st_dev
    except OSError:
        return "/"
    while host != root and host != "/":
        parent = os.path.dirname(host)
        try:
            if os.stat(parent).st_dev != dev:
                break
        except OSError:
            break
        host = parent
    if system.live:
        return host
    inside = host[len(root):] if host.startswith(root) else host
    return "/" + inside.strip("/")


@contextlib.contextmanager
def said(system, action, path):
    """Turn ENOSPC/EDQUOT met inside the block into a NoSpaceError naming
    ``action`` (write, create, append to) on ``path`` and the mount point
    that is full."""
    try:
        yield
    except NoSpaceError:
        raise
    except OSError as e:
        if e.errno not in NO_SPACE_ERRNOS:
            raise
        shown = "/" + path.lstrip("/") if isinstance(path, str) else str(path)
        raise NoSpaceError(action, shown, mount_point(system, shown), e.errno) from None


# systemd's own units that write to / in every boot before any agent runs
# (before sysinit.target): on a root that shipped full they fail.  Run again
# once the root has grown, they succeed (a seed saved, wtmp's boot record).
EARLY_WRITERS = ("systemd-random-seed.service", "systemd-update-utmp.service")


def early_writers_failed(system):
    """Those of EARLY_WRITERS that failed in this boot (a live systemd only)."""
    tool = system.which("systemctl") if system.live else None
    if tool is None or not system.exists("/run/systemd/system"):
        return []
    res = system.run([tool, "is-failed", *EARLY_WRITERS], timeout=30)
    states = res.stdout.split()
    return [u for u, state in zip(EARLY_WRITERS, states) if state == "failed"]


def restart_early_writers(system, units):
    """Start again the ``units`` that failed for want of space before the
    root grew (without waiting: the boot's own jobs may still be queued)."""
    import logging
    log = logging.getLogger(__name__)
    for unit in units:
        res = system.run(["systemctl", "--no-block", "restart", unit], timeout=30)
        if res.returncode == 0:
            log.info("%s had failed for want of space on / before the root grew: started "
                     "again", unit)
        else:
            log.warning("%s had failed for want of space on / before the root grew, and "
                        "cannot be started again (systemctl exit %d)", unit, res.returncode)


def source_shown(system):
    """' (DEVICE)' for the live root's mount, '' where unknown."""
    if not system.live:
        return ""
    from .mount_table import find_mount
    try:
        m = find_mount("/")
    except OSError:
        return ""
    return f" ({m.source})" if m is not None and m.source else ""


def command_note(system):
    """What to add to a failed command's last line while the root is full
    ('' when it is not): useradd says "cannot lock /etc/passwd; try again
    later" where the truth is that / has no space left."""
    if not is_full(system, "/"):
        return ""
    return f"(no space left on {mount_point(system, '/')}: the filesystem is full)"
