"""`guestagent status --wait`: block until this boot's agent work is over.

"This boot" is the kernel's boot id, which every run records in status.json.
The work is over when no agent run is going (the run lock is free and no
``guestagent --once`` process for this root is alive, nor the boot's one
process, ``guestagent --boot``) and no stage that
this boot still owes has yet to start:

- the network stage, when the local stage found no config drive (or was
  skipped for it: then no run is recorded yet);
- the final stage, when the config stage left /run/guestagent/final-pending
  (user scripts or runcmd not yet run) and no final run is recorded.

It is also over at once when the agent will not run this boot: the reboot
guard skipped it (/run/guestagent/unchanged), an off switch is set
(/etc/guestagent/disabled, ``guestagent=disabled``, cloud-init owns the
boot), or the stored state is a newer format than this agent knows.

Waiting costs no CPU to speak of: while a run holds the lock, a helper
thread blocks in flock() on it; between stages (or for a non-root caller,
who cannot open the lock) the state is looked at again after a growing
pause, at most one second.  psutil (imported only here) finds the runs.
Nothing here depends on systemd: the same holds under SysV and rc.local.
"""

import fcntl
import os
import threading
import time

from ..boot.guard import FINAL_PENDING, LOCAL_DONE, skipped_this_boot
from ..boot.off_switches import disabled_reason
from ..stages import SEARCH, STAGES
from ..state import State
from ..state.run_lock import LOCK as LOCK_PATH

# cloud-init status --wait's codes, so scripts written for it work unchanged
DONE, FAILED, RECOVERABLE = 0, 1, 2
TIMED_OUT = 3  # not done when --timeout ran out (cloud-init has no timeout)

MAX_PAUSE = 1.0


class Outcome:
    """Where this boot's agent work stands.

    ``state``: running, not-started (a stage still to come), done, skipped
    (reboot guard), disabled, error (the state is a newer format);
    ``detail``: one line saying why; ``exit_code`` once it is over."""

    OVER = ("done", "skipped", "disabled", "error")

    def __init__(self, state, detail, exit_code=None):
        self.state, self.detail, self.exit_code = state, detail, exit_code

    @property
    def over(self):
        return self.state in self.OVER

    def as_dict(self):
        return {"state": self.state, "detail": self.detail, "exit_code": self.exit_code}


def assess(system, status):
    """This boot's Outcome from the stored ``status`` (State.read_status) and
    the flags in /run; looks at the processes only while work may be left."""
    state = State(system)
    newer = state.newer_format()
    if newer:
        return Outcome("error", newer, FAILED)
    boot_id = state.boot_id()
    runs = (status or {}).get("runs", []) if boot_id and (status or {}).get(
        "boot_id") == boot_id else []
    running = agent_runs(system)
    if running:
        return Outcome("running", "guestagent is running (pid "
                       + ", ".join(str(p) for p in running) + ")")
    if not runs:
        if skipped_this_boot(system):
            return Outcome("skipped", "the agent did not start this boot (same instance, "
                           "disks, host name, DNS and config as when it last ran)", DONE)
        why = disabled_reason(system)
        if why:
            return Outcome("disabled", f"the agent will not run: {why}", DONE)
        return Outcome("not-started", "no guestagent run yet in this boot")
    ran = [STAGES[r.get("stage")] for r in runs if r.get("stage") in STAGES]
    if not any(s.unit is None for s in ran):  # a run by hand did the whole boot's work
        configured = any(r.get("configured") for r in runs) or system.exists(LOCAL_DONE)
        if not configured and not any(s.metadata == SEARCH for s in ran):
            return Outcome("not-started", "the local stage found no config drive; "
                           "the network stage has not run yet")
        if system.exists(FINAL_PENDING) and not any(s.steps == "final" for s in ran):
            return Outcome("not-started", "user scripts or runcmd wait for the final stage")
    return _finished(runs)


def _finished(runs):
    failed = [r for r in runs if r.get("exit_code") != 0 or any(
        isinstance(s, dict) and s.get("result") == "failed" for s in r.get("steps") or [])]
    if failed:
        last = failed[-1]
        return Outcome("done", f"the {last.get('stage')} stage exited "
                       f"{last.get('exit_code')}", FAILED)
    warned = sum(len(r.get("warnings") or []) for r in runs)
    if warned:
        return Outcome("done", f"done, with {warned} warning(s)", RECOVERABLE)
    return Outcome("done", "done", DONE)


def wait(system, timeout=None, read_status=None):
    """Block until this boot's work is over or ``timeout`` seconds pass;
    returns (Outcome, status).  A timed-out Outcome keeps its running or
    not-started state, with exit_code TIMED_OUT."""
    read_status = read_status or State(system).read_status
    deadline = None if timeout is None else time.monotonic() + timeout
    pause = 0.05
    while True:
        status = read_status()
        outcome = assess(system, status)
        if outcome.over:
            return outcome, status
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            outcome.exit_code = TIMED_OUT
            return outcome, status
        if outcome.state == "running" and _wait_for_lock(system, left):
            pause = 0.05  # a run ended: the next stage may follow at once
            continue
        time.sleep(pause if left is None else min(pause, left))
        pause = min(pause * 2, MAX_PAUSE)


def _wait_for_lock(system, seconds):
    """Block until the run lock is free (True), or ``seconds`` pass (False);
    False at once when it is free already or cannot be opened (poll instead)."""
    try:
        fd = os.open(system.path(LOCK_PATH),
                     os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False  # not root, or no run has taken it yet
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        pass
    else:  # free: the run is starting up or ending, outside its lock
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
        return False
    freed = threading.Event()

    def take():
        # shared, and let go at once: the stage that starts next takes it
        # exclusively without waiting for us.  A thread, so that the caller
        # can give up at its timeout; it ends with the process if it must.
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
            freed.set()

    threading.Thread(target=take, name="run-lock", daemon=True).start()
    return freed.wait(seconds)


def agent_runs(system):
    """Pids of the ``guestagent --once`` processes working on this root, and
    of the boot's one process (``--boot``), which lives until no stage is
    owed (boot_process.py)."""
    import psutil

    root = os.path.realpath(system.root)
    mine = os.getpid()
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        argv = proc.info.get("cmdline") or []
        if proc.info["pid"] == mine or not {"--once", "--boot"} & set(argv):
            continue
        if not any(os.path.basename(a) == "guestagent" for a in argv):
            continue
        if os.path.realpath(_root_of(argv)) == root:
            found.append(proc.info["pid"])
    return found


def _root_of(argv):
    for i, arg in enumerate(argv):
        if arg == "--root" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--root="):
            return arg.split("=", 1)[1]
    return "/"
