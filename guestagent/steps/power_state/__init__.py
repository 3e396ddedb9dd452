"""#cloud-config power_state: reboot, power off or halt once the final stage is
done, once per instance.

    power_state:
      mode: reboot | poweroff | halt     (required)
      delay: now | "+N" | N              (minutes, as shutdown(8) takes it; default now)
      message: text                      (shown on the console and, with a delay, as
                                          shutdown's wall message)
      timeout: seconds                   (default 30: how long `condition` may run)
      condition: true | false | command  (a command: act only if it exits 0)

The step is the last of the final stage and only records the request; the
runner carries it out after the stage's status is written (cloud-init
waits up to `timeout` for itself to finish: here the stage has already
finished, so `timeout` bounds the condition command).  The step is marked
done before the machine goes down, so the next boot does not act again.
"""

import logging
import shlex

from ...system.power import Request
from .. import PER_INSTANCE, Skip, asked_for

log = logging.getLogger(__name__)

FREQUENCY = PER_INSTANCE


def pending(ctx):
    return bool(ctx.cloud_config.get("power_state"))


def run(ctx):
    ps = asked_for(ctx, "power_state")
    condition = ps.get("condition", True)
    if condition is False:
        raise Skip("power_state condition is false")
    if condition is not True:
        ok, why = _condition(ctx, condition, ps.get("timeout", 30.0))
        if not ok:
            raise Skip(f"power_state condition {why}; not acting")
    request = Request(ps["mode"], ps.get("delay", "now"), ps.get("message", ""),
                      "power_state")
    ctx.power_requests.append(request)
    return [f"{request.describe()} once the final stage is done"]


def _condition(ctx, condition, timeout):
    """(passed, how it ended) for a command string (sh -c) or argv list."""
    argv = ["sh", "-c", condition] if isinstance(condition, str) else list(condition)
    shown = condition if isinstance(condition, str) else shlex.join(condition)
    try:
        res = ctx.system.run(argv, timeout=timeout)
    except Exception as e:  # missing command, timeout
        return False, f"{shown[:80]!r} could not run: {e}"
    if res.returncode != 0:
        return False, f"{shown[:80]!r} exited {res.returncode}"
    log.info("power_state: condition %r passed", shown[:80])
    return True, ""
