"""How long sshd waits for the metadata: at most [main] ssh_wait seconds.

The network unit is ordered before sshd and ends when the stage says it is
ready (readiness.py), so that the keys and the host name are in place before
anyone can log in.  While the
metadata service answers that is right; when it does not answer at all, sshd
would wait out the whole search ([main] deadline, 120 s), and an operator
with a key of their own (baked into the image, or a console) could not get
in to see why.  cloud-init holds sshd for its whole network stage (its EC2
source waits up to 120 s, its OpenStack source 10 s a request, 5 retries).

So a search that has found nothing ``ssh_wait`` seconds into the stage
(counted like the deadline: from the process's start, or in the boot's one
process from the stage unit's signal) lets sshd start: one console line
says there are no keys yet and why, then the stage says it is ready.  The search goes on
until the deadline; if the metadata comes, the steps run as always (sshd
reads authorized_keys at each login, so the key works from then on).  sshd
must have a valid host key when it starts and must not have them swapped
under it: on what looks like a new instance's boot (`new_instance`) the new
host keys are made first (steps/hostkeys/early.py), and the hostkeys
step keeps them as the instance's own when the metadata comes; elsewhere
sshd starts with the keys there (made first only where there are none).

Only under systemd (the stage's unit or $NOTIFY_SOCKET waits): SysV and
rc.local start sshd after the agent's run whatever it does.
"""

import logging
import threading
import time

from . import readiness

log = logging.getLogger(__name__)


class SshWait:
    """Started before the search, stopped after it; ``released`` is the
    agent's age in seconds when sshd was let start, or None."""

    def __init__(self, system, config, deadline):
        self.system, self.config, self.deadline = system, config, deadline
        self.released = None
        self._timer = None

    def start(self):
        if not readiness.awaited():
            return self  # nothing waits for this unit's READY=1
        from ..datasources import process_age
        wait = self.config.getfloat("main", "ssh_wait")
        if wait >= self.deadline:
            return self  # the search ends first: sshd waits for it, as configured
        self._timer = threading.Timer(max(0.0, wait - process_age()), self._release)
        self._timer.name = "ssh-wait"
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self):
        """The search is over: no release from now on (one under way ends first)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer.join()

    def _release(self):
        from ..datasources import process_age
        from ..steps.hostkeys import early
        age, t0 = process_age(), time.monotonic()
        try:
            made = early.make_for_early_sshd(self.system, self.config,
                                                new_instance(self.system))
        except Exception as e:  # sshd may still have keys: it starts regardless
            log.warning("cannot make host keys for sshd: %s", e)
            made = []
        keys = (f"with new host keys ({', '.join(made)}, made in "
                f"{time.monotonic() - t0:.1f} s)" if made else "with the image's host keys")
        log.info("no metadata after %.0f s (no datasource has answered), so no SSH keys, "
                 "user or host name for this instance yet: sshd starts now %s; the "
                 "search goes on until the %.0f s deadline and puts them in place if "
                 "the metadata comes", age, keys, self.deadline)
        self.released = round(process_age(), 1)
        readiness.ready("no metadata yet; sshd may start")


def new_instance(system):
    """Whether this boot is, as far as the disk and the DMI tell before any
    metadata, a new instance's: no instance recorded on the disk, or a DMI
    system UUID (Nova's instance UUID) other than the one recorded."""
    from ..state import State
    prev = State(system).previous_instance_id().lower()
    if not prev:
        return True
    try:
        uuid = system.read_text("/sys/class/dmi/id/product_uuid").strip().lower()
    except OSError:
        return False
    return bool(uuid) and uuid != prev


def start_final_unit(system, final_pending):
    """The metadata came after sshd started: the final unit (user scripts)
    skipped itself when multi-user.target came, as the flag it needs was not
    there yet; start it now when it has work.  Returns what was done."""
    if not final_pending or not system.live:
        return ""
    tool = system.which("systemctl")
    if tool is None:
        return ""
    res = system.run([tool, "start", "--no-block", "guestagent-final.service"], timeout=30)
    if res.returncode != 0:
        log.warning("cannot start guestagent-final.service for the user scripts (exit "
                    "%d); they run on the next boot", res.returncode)
        return ""
    log.info("the metadata came after sshd started: guestagent-final.service started "
             "for %s", ", ".join(final_pending))
    return "started guestagent-final.service"
