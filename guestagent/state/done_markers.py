"""When a per-instance step counts as done, and whether it still is.

A step's done marker (``instances/<id>/done/<step>``, see guestagent/state/__init__.py)
tells every later boot of the instance to leave the step alone.  So the
marker may reach the disk only after everything the step wrote has: a power
cut in the first seconds of an instance's life must never leave a marker
that certifies host keys still in the page cache (sshd would then fail on
every boot, and no one could log in again).  Three rules, in this module:

- `mark`: one syncfs() of the root's filesystems, then the marker (itself
  written with temp file, fsync, rename, directory fsync).  A step that
  skipped wrote nothing, and its marker needs no sync.
- `leave_running` / `finish_left_running`: work a step started and left
  running (the RSA host key made in the background, while sshd starts with
  the others) is not done until it has ended well and been synced; only
  then does the stage write the marker.  Cut before that, the next boot
  does the step again.
- `broken_since`: on a later boot, a step whose loss locks people out
  (hostkeys, users) may define ``check_done(ctx)``, which says what is
  missing or damaged of what it left ('' when all is well); the runner then
  runs the step's ``redo(ctx)`` (else its ``run``) again and says why.

And one rule for telling it: on a later boot of an instance, a per-instance
step with no marker was cut off (or failed) on an earlier one, and
`say_resumed` says so in the step's status; a step that runs the user's code
(`USER_CODE_STEPS`: scripts, runcmd) leaves a "started" marker first, so
that what it ran before the cut is known to run a second time.
"""

import logging
import subprocess

log = logging.getLogger(__name__)

# how long a stage waits for work a step left running before leaving it
# unmarked (the next boot then does the step again)
LEFT_RUNNING_TIMEOUT = 300


def mark(ctx, iid, name, result):
    """Record ``name`` as done for ``iid`` once what it wrote is on the disk;
    False when the step left work running (the stage marks it later)."""
    if name in ctx.left_running:
        return False
    if result != "skipped":
        ctx.system.sync_to_disk()
    ctx.state.mark_done(iid, name)
    return True


def leave_running(ctx, name, process, what):
    """Step ``name`` started ``process`` (a Popen) doing ``what`` and returns
    before it ends: the step is done only once it has ended well."""
    ctx.left_running[name] = (process, what)


def finish_left_running(ctx, records, timeout=LEFT_RUNNING_TIMEOUT):
    """Wait for the work steps left running; mark each step done once its
    work ended well and is synced, else record the step as failed (it runs
    again on the next boot).  ``records`` are the stage's step results."""
    iid = ctx.metadata.instance_id if ctx.metadata else None
    for name, (process, what) in list(ctx.left_running.items()):
        rec = next((r for r in records if r.get("name") == name), None)
        try:
            code = process.wait(timeout)
        except subprocess.TimeoutExpired:
            code = None
        del ctx.left_running[name]
        problem = ""
        if code == 0 and iid is not None:
            try:
                mark(ctx, iid, name, "changed")
                log.info("%s: %s is done and on the disk", name, what)
            except OSError as e:
                problem = f"cannot record it as done for this instance: {e}"
        elif code is None:
            problem = (f"{what} was still running after {timeout} s; the step is "
                       "done again on the next boot")
        elif code != 0:
            problem = f"{what} failed (exit {code}); the step is done again on the next boot"
        if problem:
            log.error("%s failed: %s", name, problem)
            if rec is not None:
                rec["result"], rec["error"] = "failed", problem


def broken_since(ctx, step):
    """What is missing or damaged of what the done `Step` ``step`` left, or ''
    (its ``redo`` then does it again)."""
    try:
        return step.check_done(ctx) or ""
    except Exception as e:  # a check that cannot tell must not redo a step
        log.debug("%s: cannot check what it left: %s", step.name, e, exc_info=True)
        return ""


# the steps that run the user's code: their start goes on the disk first
USER_CODE_STEPS = ("scripts", "runcmd")


def started(ctx, iid, name):
    """Step ``name`` is about to run the user's code: on the disk first."""
    try:
        ctx.state.mark_started(iid, name)
    except OSError as e:  # a full root: the step runs all the same
        log.debug("%s: cannot record its start: %s", name, e)


def say_resumed(ctx, iid, name, record):
    """Per-instance step ``name``, not done, runs on a later boot of the
    instance: say why in its status ``record`` (``resumed``) and the log.
    A warning only where the user's code runs a second time; the rest is
    the boot doing what a cut one left."""
    if not ctx.later_boot:
        return
    if ctx.state.started(iid, name):
        record["resumed"] = ("started on an earlier boot of this instance and never "
                             "recorded as done (that boot was cut off): running it again, "
                             "so what it had run by then runs a second time")
        log.warning("%s: %s", name, record["resumed"])
        return
    record["resumed"] = ("not done on an earlier boot of this instance (cut off, failed, "
                         "or new in this release): doing it now")
    log.info("%s: %s", name, record["resumed"])

