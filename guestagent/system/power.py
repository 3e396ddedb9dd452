"""Reboot or power off once a stage has finished (power_state, packages that
need a reboot).

Steps only ask (`Context.power_requests`); the runner acts after the stage's
status is written, so `guestagent status` on the next boot shows the run
that asked.  Under --root nothing is ever rebooted: the request is logged.
"""

import logging

log = logging.getLogger(__name__)

MODES = {"reboot": "-r", "poweroff": "-P", "halt": "-H"}


class Request:
    """``mode`` reboot/poweroff/halt; ``delay`` "now" or "+N" (minutes)."""

    def __init__(self, mode, delay="now", message="", reason=""):
        self.mode, self.delay, self.message, self.reason = mode, delay, message, reason

    def describe(self):
        when = "now" if self.delay in ("now", "+0") else f"in {self.delay.lstrip('+')} min"
        return f"{self.mode} {when}"

    def argv(self, system):
        """The command that carries the request out on ``system``."""
        if system.which("systemctl") and system.exists("/run/systemd/system"):
            # queued, not waited for: the unit running us must be able to stop.
            # systemctl and systemd-run reach systemd without D-Bus (as root);
            # shutdown +N needs logind, which minimal images may not run.
            if self.delay in ("now", "+0"):
                return ["systemctl", "--no-block", self.mode]
            if system.which("systemd-run"):
                return ["systemd-run", "--quiet", "--unit=guestagent-power-state",
                        f"--on-active={self.delay.lstrip('+')}min",
                        "systemctl", "--no-block", self.mode]
        argv = ["shutdown", MODES[self.mode], self.delay]
        return argv + [self.message] if self.message else argv


def act(system, requests):
    """Carry out the first request (a user's power_state is asked last, and
    a reboot for packages must not turn a requested poweroff into a reboot:
    so an explicit poweroff/halt wins over a reboot)."""
    if not requests:
        return None
    chosen = next((r for r in requests if r.mode != "reboot"), requests[0])
    if chosen.message:
        log.info("%s", chosen.message)
    if not system.live:
        log.info("would %s (%s), but not under --root", chosen.describe(), chosen.reason)
        return chosen
    argv = chosen.argv(system)
    log.info("%s (%s): %s", chosen.describe(), chosen.reason, " ".join(argv[:3]))
    try:
        system.run(argv, timeout=60, check=True)
    except Exception as e:  # a missing or failing shutdown must not turn into a traceback
        log.error("cannot %s: %s", chosen.mode, e)
    return chosen
