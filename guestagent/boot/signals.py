"""How the stage units and the boot's one process talk: a FIFO and a lock per stage.

The boot's process (`guestagent --boot`, units/guestagent-main.service)
starts early and waits; each stage unit (units/guestagent-local.service,
guestagent.service, guestagent-final.service) is a thin sh script,
units/guestagent-stage, that systemd starts once the stage's ordering is met
(local file systems; the network; logins possible).  Under RUN_DIR:

  request      a FIFO.  The script writes its stage's name and a newline.
               The process holds it open for reading and writing, so the
               script's write never blocks, whatever the process is doing.
  STAGE.lock   the process holds an exclusive flock(2) on it from before
               it says READY=1 until that stage's work that a login needs is
               done (the unit's readiness, as READY=1 was for a Type=notify
               unit), or until the process ends in any way.  The script
               waits with ``flock -s``: it returns then, crash or not.
  STAGE.result the stage's exit code so far, written (atomically) before the
               lock is let go.  No result behind a free lock means the
               process ended before the stage was done: the script then runs
               ``guestagent --once --stage STAGE`` itself, and the run lock
               and the done markers make that finish the work.

No Python in the script, and no netcat (cloud-init 24.3's stage units pipe
into ``nc -U``): sh, flock(1) from util-linux.  Nothing here imports more
than the standard library's os and fcntl.
"""

import fcntl
import os

RUN_DIR = "/run/guestagent/boot"
REQUEST = RUN_DIR + "/request"
STAGES = ("local", "network", "final")


class Channel:
    """The process's end: made before READY=1, held until the process ends."""

    def __init__(self, system):
        self.system = system
        self.locks = {}
        self.answered = set()
        self._pending = b""
        system.makedirs(os.path.dirname(RUN_DIR))  # /run/guestagent, as the flags' units read it
        self.dir_fd = system.open_dir(RUN_DIR, create=True, mode=0o700)
        # a process started again in the same boot: the last one's leftovers go
        for name in ["request"] + [f"{s}.{x}" for s in STAGES for x in ("lock", "result")]:
            try:
                os.unlink(name, dir_fd=self.dir_fd)
            except FileNotFoundError:
                pass
        for stage in STAGES:
            fd = os.open(f"{stage}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600, dir_fd=self.dir_fd)
            fcntl.flock(fd, fcntl.LOCK_EX)
            self.locks[stage] = fd
        # the FIFO last: a script that finds it finds the locks held
        os.mkfifo("request", 0o600, dir_fd=self.dir_fd)
        self.request_fd = os.open("request", os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC,
                                  dir_fd=self.dir_fd)

    def next_request(self):
        """Block until a stage unit signals; returns the stage's name.  Lines
        that name no stage are ignored (only root can write the FIFO)."""
        while True:
            while b"\n" not in self._pending:
                chunk = os.read(self.request_fd, 64)
                if not chunk:  # cannot happen while we hold a writer end
                    raise EOFError("the request FIFO closed")
                self._pending += chunk
            line, self._pending = self._pending.split(b"\n", 1)
            stage = line.decode("ascii", "replace").strip()
            if stage in STAGES:
                return stage

    def answer(self, stage, code):
        """The stage's unit may end now, exiting ``code``; later calls for the
        same stage do nothing (the first answer is the unit's)."""
        if stage in self.answered:
            return False
        self.answered.add(stage)
        tmp = f".{stage}.result"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600, dir_fd=self.dir_fd)
        try:
            os.write(fd, f"{int(code)}\n".encode())
        finally:
            os.close(fd)
        os.rename(tmp, f"{stage}.result", src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)
        lock = self.locks.pop(stage)
        fcntl.flock(lock, fcntl.LOCK_UN)
        os.close(lock)
        return True

    def pass_over(self, stage):
        """A stage whose unit did not start (a later one signalled first): its
        lock goes, with no result, so a unit of it started after all runs the
        stage itself."""
        self.answered.add(stage)
        lock = self.locks.pop(stage, None)
        if lock is not None:
            os.close(lock)

    def close(self):
        """The process is done: any stage not answered finds a free lock and
        no result (its script runs the stage itself)."""
        for fd in self.locks.values():
            os.close(fd)
        self.locks = {}
        for fd in (self.request_fd, self.dir_fd):
            try:
                os.close(fd)
            except OSError:
                pass
