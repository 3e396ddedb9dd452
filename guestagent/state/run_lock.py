"""One agent run at a time per root: the stages' units can overlap (the final
stage starts while the local stage, already READY=1, still grows the root)."""

import fcntl
import logging
import os
import time

from . import STATE_DIR

log = logging.getLogger(__name__)

LOCK = STATE_DIR + "/lock"  # `status --wait` waits on it too (boot_wait.py)
LOCK_WAIT = 300


class RunLock:
    """One agent at a time: a second run waits (and says so), then goes on."""

    def __init__(self, system):
        self.system = system
        self.path = LOCK

    def __enter__(self):
        # opened through the System seam: a symlinked /var/lib/guestagent in
        # an image tree stays in the tree.  The descriptor itself is ours to
        # hold, lock and rewrite (the holder's pid) until the run ends.
        try:
            self.fd = self.system.open_rw(self.path, mode=0o600)
        except OSError as e:
            from ..system.disk_space import NO_SPACE_ERRNOS
            if e.errno not in NO_SPACE_ERRNOS:
                raise
            # a full root that could not grow: no lock file can be made, and
            # waiting for space would wait for ever
            log.warning("running without the run lock: %s", e)
            self.fd = None
            return self
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self.fd, 32, 0).decode("ascii", "replace").strip() or "?"
            # the usual case: the final stage starts while the local stage,
            # its unit already up (READY=1), still grows the root
            log.info("another guestagent run (pid %s) is in progress; waiting for it "
                     "to finish (up to %d s)", holder, LOCK_WAIT)
            deadline = time.monotonic() + LOCK_WAIT
            while True:
                try:
                    fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        os.close(self.fd)
                        raise RuntimeError(f"another guestagent run (pid {holder}) still "
                                           f"holds {self.path}; giving up") from None
                    time.sleep(0.1)
        os.ftruncate(self.fd, 0)
        try:
            os.pwrite(self.fd, str(os.getpid()).encode(), 0)
        except OSError as e:  # the lock holds without the pid (a full root)
            log.debug("cannot write the pid into %s: %s", self.path, e)
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            os.close(self.fd)
