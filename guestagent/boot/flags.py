"""What a stage leaves behind for the units after it and for the next boot.

The flags in /run are what the later units' conditions read (LOCAL_DONE:
the network unit need not start; FINAL_PENDING: the final unit has work);
the reboot guard (guard.py) is what lets the next boot start no Python.
The stage's row in the table (stages.py) says which it leaves; the runner
leaves them once what a login needs is done.
"""

import logging

from ..steps import PER_INSTANCE
from . import guard
from .guard import FINAL_PENDING, LOCAL_DONE

log = logging.getLogger(__name__)


class Flags:
    """The flags in /run that the later units' conditions read, left once
    per run as the stage's table row says (stages.py)."""

    def __init__(self, ctx, state, spec, lineup):
        self.ctx, self.state, self.spec, self.lineup = ctx, state, spec, lineup
        self.final_pending = None  # the final steps with work left, once decided

    def leave(self):
        ctx = self.ctx
        md = ctx.metadata
        if md is None:
            return
        if LOCAL_DONE in self.spec.flags:
            # guestagent.service has ConditionPathExists=!LOCAL_DONE: on a config
            # drive or DMI-confirmed boot its Python never starts (/run is
            # emptied every boot)
            try:
                ctx.system.write_file(LOCAL_DONE, md.instance_id + "\n", mode=0o644)
            except OSError as e:
                log.warning("cannot write %s: %s", LOCAL_DONE, e)
        if FINAL_PENDING in self.spec.flags:
            self.final_pending = flag_final(ctx, self.state, self.lineup)


def flag_final(ctx, state, lineup):
    """Leave FINAL_PENDING when a final step has work left for this instance;
    returns the steps with work left.

    guestagent-final.service has ConditionPathExists= on it: a reboot, or a
    first boot without scripts or runcmd, starts no Python for that stage.
    """
    iid = ctx.metadata.instance_id
    pending = []
    for name in lineup.final:
        if state.done(iid, name):
            continue
        try:
            if lineup.step(name).pending(ctx):
                pending.append(name)
        except Exception as e:  # when in doubt, let the final stage decide
            log.debug("%s: cannot tell whether it has work: %s", name, e)
            pending.append(name)
    try:
        if pending:
            ctx.system.write_file(FINAL_PENDING, " ".join(pending) + "\n", mode=0o644)
            log.debug("final stage has work: %s", ", ".join(pending))
        else:
            ctx.system.remove(FINAL_PENDING)
    except OSError as e:
        log.warning("cannot write %s: %s", FINAL_PENDING, e)
    return pending


def leave_guard(ctx, state, spec, lineup, final_pending):
    """The reboot guard after a run with no failed step (guard.py)."""
    if spec.guard == "write":
        # a step with a done marker is per-instance, and the guard reads
        # only per-boot steps: such steps need not be imported to be passed
        iid = ctx.metadata.instance_id if ctx.metadata else None
        guard.write(ctx, lineup.steps([n for n in lineup.all if lineup.loaded(n) or iid is None
                                       or not state.done(iid, n)]), final_pending)
    elif spec.guard == "publish" and all(
            state.done(ctx.metadata.instance_id, n)
            or lineup.step(n).frequency != PER_INSTANCE for n in lineup.final):
        guard.publish(ctx.system)
