"""Run one stage: find metadata, run its steps, leave its flags, record the run.

What each stage does (how it finds metadata, its steps, the flags it leaves,
whether the network is up) is the table in guestagent/stages.py; this
module reads that table and never a stage's name.
"""

import logging
import os
import threading
import time

from . import datasources, steps
from . import log as logsetup
from .boot import guard as boot_guard
from .boot import readiness
from .boot.flags import Flags, leave_guard
from .boot.off_switches import disabled_reason
from .stages import LOCAL, STAGES
from .state import State, done_markers
from .state.run_lock import RunLock
from .steps.context import Context
from .system import disk_space

log = logging.getLogger(__name__)

EXIT_OK, EXIT_STEP_FAILED, EXIT_USAGE, EXIT_NO_DATASOURCE = 0, 1, 2, 3


def run(system, config, stage="all", only=None, lineup=None):
    """One run of ``stage`` (a name in stages.STAGES); returns the exit code.
    ``lineup``: the steps it may run (a `steps.Lineup`; by default the real
    ones, each loaded when first needed)."""
    why = disabled_reason(system)
    if why:
        log.info("standing aside: %s", why)
        return EXIT_OK
    state = State(system)
    newer = state.newer_format()
    if newer:
        log.error("%s", newer)
        return EXIT_USAGE
    spec = STAGES[stage]
    lineup = lineup or steps.Lineup()
    grown = None
    if "growroot" in spec.step_names(lineup) and (not only or "growroot" in only):
        # a root that shipped full grows before anything is written to it
        grown = grow_first(
            system, lambda: _run_step(Context(system, config, None, None, False, spec),
                                      lineup.step("growroot")))
    try:
        state.ensure()
    except disk_space.NoSpaceError as e:
        # a full root that could not grow: the steps still run (the key may
        # still fit where the agent's own records do not)
        log.error("cannot keep the agent's state: %s", e)
    with RunLock(system):
        return _run_locked(system, config, state, spec, only, lineup, grown)


def grow_first(system, run_growroot):
    """An image whose root shipped (nearly) full: grow it before anything is
    written (the state, the log, the keys), in the foreground, by calling
    ``run_growroot()`` (the runner's growroot step; returns its record).
    Returns that record, or None when the root had room; the stage then
    shows it in growroot's place instead of running growroot again."""
    if not disk_space.is_low(system):
        return None
    free = disk_space.free_bytes(system)
    log.info("the root filesystem%s has %s free: growing it before anything else is written",
             disk_space.source_shown(system), "no space" if not free else f"only {free >> 10} KiB")
    rec = run_growroot()
    rec["before_anything_else"] = True
    failed = disk_space.early_writers_failed(system)
    if disk_space.is_full(system):
        log.error("the root filesystem%s is still full after growroot (%s): what the agent "
                  "writes fails from here on, each write saying so%s",
                  disk_space.source_shown(system),
                  "it failed" if rec["result"] == "failed" else "the disk has no more room",
                  f"; {', '.join(failed)} failed earlier in this boot for the same reason"
                  if failed else "")
    else:
        disk_space.restart_early_writers(system, failed)
    logsetup.resume_file()  # the log file waited for this (cli.py)
    return rec


def _run_locked(system, config, state, spec, only, lineup, grown=None):
    t0 = time.monotonic()
    warned = logsetup.warnings_mark()
    boot_id = state.boot_id()
    # pid: the process that ran it (under systemd, the boot's one: boot_process)
    record = {"stage": spec.name, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "pid": os.getpid(), "steps": [], "source": None, "instance_id": None}
    status = state.read_status() or {}
    if not boot_id or status.get("boot_id") != boot_id:
        status = {"boot_id": boot_id, "runs": []}
    configured_this_boot = bool(boot_id) and any(
        r.get("configured") for r in status.get("runs", []))

    skip_stage = spec.once and configured_this_boot
    if skip_stage:
        log.info("already configured in this boot by the local stage; nothing to do")
        record["message"] = "already configured in this boot"
        md, code = None, EXIT_OK
    else:
        md, code = _find_metadata(system, config, state, spec, only, lineup, record)
    new_instance = _record_instance(system, state, spec, md, record)

    ctx = Context(system, config, state, md, new_instance, spec)
    ctx.later_boot = md is not None and not new_instance and not any(
        r.get("new_instance") for r in status.get("runs", []))
    names = [] if skip_stage or (md is None and not spec.bare) else spec.step_names(lineup)
    if only:
        names = [n for n in names if n in only]
    flags = Flags(ctx, state, spec, lineup)
    record["steps"] = _run_steps(ctx, lineup, names, grown, flags, code)
    if record.get("sshd_started_before_metadata") is not None:
        from .boot.ssh_wait import start_final_unit
        start_final_unit(system, flags.final_pending)
    failed = any(r["result"] == "failed" for r in record["steps"])
    if md is not None and spec.configures:
        record["configured"] = True
    if md is not None and not failed and not only:
        leave_guard(ctx, state, spec, lineup, flags.final_pending)
    if failed and code == EXIT_OK:
        code = EXIT_STEP_FAILED
    _record(system, state, status, record, code, warned, t0, bool(names))
    if ctx.power_requests:
        from .system import power
        power.act(system, ctx.power_requests)
    return code


def _find_metadata(system, config, state, spec, only, lineup, record):
    """(Metadata or None, exit code) the way ``spec`` finds it."""
    if spec.configures:
        boot_guard.forget(system)  # this run configures: the old proof no longer holds
    else:
        md = state.stored_metadata()
        if md is None:
            log.error("no stored metadata: the config stage has not found a datasource")
            return None, EXIT_NO_DATASOURCE
        return md, EXIT_OK
    # `--only growroot`: nothing asked for needs the metadata, so only what
    # costs no wait is looked at (its #cloud-config may turn growpart off)
    # and finding nothing is no error
    needless = bool(only) and not any(lineup.step(n).needs_metadata for n in only)
    names = config.getlist("main", "datasources")
    asked = {}  # the metadata service's requests and retries, for status
    local_only = spec.metadata == LOCAL or needless
    if local_only:
        names = [n for n in names if not datasources.needs_network(n)]
    md, code = None, EXIT_OK
    held = None
    if not local_only:  # sshd waits for the metadata at most [main] ssh_wait
        from .boot.ssh_wait import SshWait
        held = SshWait(system, config, config.getfloat("main", "deadline")).start()
    try:
        md = datasources.search(config, system, names, state=state,
                                deadline=0 if local_only else None, requests=asked)
    except datasources.NoDatasource as e:
        if needless:
            log.info("no local datasource (%s); %s need no metadata, so the metadata "
                     "service is not asked", e, ", ".join(only))
        elif spec.metadata == LOCAL:
            log.info("no local datasource (%s); the network stage will look", e)
        elif e.stand_aside:
            log.warning("%s", e.stand_aside)
            log.debug("no datasource: %s", e)
            code = EXIT_NO_DATASOURCE
        else:
            # one line that says what the instance lacks, and why
            log.error("no datasource found, so no SSH keys, host name or user-data for "
                      "this instance: %s", e)
            code = EXIT_NO_DATASOURCE
        record["message"] = e.stand_aside or str(e)
    finally:
        if held is not None:
            held.stop()
            if held.released is not None:
                record["sshd_started_before_metadata"] = held.released
    if asked:  # no HTTP asked: nothing to count
        record["metadata_requests"] = asked
    return md, code


def _record_instance(system, state, spec, md, record):
    """Note ``md``'s instance in the record (and, for a configuring stage, in
    the state and the instance data); returns whether it is a new instance."""
    new_instance = False
    if md is not None:
        logsetup.add_secrets(md.secrets())
        record["source"], record["instance_id"] = md.source, md.instance_id
        if spec.configures:
            prev = state.previous_instance_id()
            try:
                new_instance = state.set_instance(md)
            except disk_space.NoSpaceError as e:
                # the record is lost, not the boot: the steps run all the same
                # (and again on the next boot, which finds no record)
                new_instance = prev != md.instance_id
                log.error("cannot record instance %s in the agent's state: %s",
                          md.instance_id, e)
            from .metadata import instance_data
            instance_data.publish(system, md)
            if new_instance:
                log.info("new instance %s (previous: %s): per-instance steps will run",
                         md.instance_id, prev or "none")
            else:
                log.info("same instance %s as before: only per-boot steps run", md.instance_id)
    record["new_instance"] = new_instance
    return new_instance


def _run_steps(ctx, lineup, names, grown, flags, code):
    """Each step's result, in order; the flags go down as soon as what a
    login needs is done (before a background step ends)."""
    results = []
    beside = []  # lineup.beside ones running: joined before a step not named with them
    for name in names:
        for b in [b for b in beside if name not in lineup.beside[b.name]]:
            b.thread.join()
            beside.remove(b)
        done = _done_unloaded(ctx, lineup, name)
        if done:
            results.append(done)
            continue
        try:
            step = lineup.step(name)
        except Exception as e:  # a bug in guestagent: said, and the other steps still run
            results.append(_not_loaded(name, e))
            continue
        if name == "growroot" and grown is not None:
            results.append(grown)  # done before anything else was written
        elif step.background and len(names) > 1:
            # growroot waits on growpart and resize2fs; the other steps need
            # nothing from it, so it runs beside them instead of before them
            results.append(_Background(ctx, step))
        elif name in lineup.beside and len(names) > 1:
            beside.append(_Background(ctx, step, before_ready=True))
            results.append(beside[-1])
        else:
            results.append(_run_step(ctx, step))
    for b in beside:
        b.thread.join()
    background = [r.name for r in results
                  if isinstance(r, _Background) and not r.before_ready]
    background += [n for n in ctx.left_running if n not in background]
    if background:
        # What a login needs is done: the flags the later units' conditions
        # read go down now, and the unit says it is up (sshd starts) while
        # growpart and resize2fs finish.
        flags.leave()
        so_far = EXIT_STEP_FAILED if any(
            isinstance(r, dict) and r["result"] == "failed" for r in results) else code
        readiness.ready(f"{', '.join(background)} still running", code=so_far)
    results = [r.join() if isinstance(r, _Background) else r for r in results]
    done_markers.finish_left_running(ctx, results)
    if not background:
        flags.leave()
    return results


def _record(system, state, status, record, code, warned, t0, ran_steps):
    """This run in the boot's status (what `guestagent status` shows)."""
    record["exit_code"] = code
    warnings = logsetup.warnings_since(warned)
    if warnings:  # what `status --wait` calls a recoverable problem (exit 2)
        record["warnings"] = warnings
    if ran_steps and disk_space.is_full(system):
        log.error("no space left on %s: what failed above for it is not done; give the "
                  "instance a bigger disk (growroot grows the root into it) or free space "
                  "on it", disk_space.mount_point(system, "/"))
    record["duration"] = round(time.monotonic() - t0, 3)
    status["runs"].append(record)
    status["last"] = record
    try:
        state.write_status(status)
    except OSError as e:
        log.warning("cannot record the run's status: %s", e)
    log.info("%s stage finished in %.2f s (exit %d)", record["stage"], record["duration"],
             code)


class _Background:
    def __init__(self, ctx, step, before_ready=False):
        self.name = step.name
        self.before_ready = before_ready  # joined before the stage says it is ready
        self.result = None
        self.thread = threading.Thread(target=self._run, args=(ctx, step),
                                       name=f"step-{step.name}", daemon=True)
        self.thread.start()

    def _run(self, ctx, step):
        self.result = _run_step(ctx, step)

    def join(self):
        self.thread.join()
        return self.result


def _done_unloaded(ctx, lineup, name):
    """The done-before record of a per-instance step done for this instance
    that checks nothing of what it left (steps.CHECKED_WHEN_DONE), made
    without importing the step; None for every other step."""
    iid = ctx.metadata.instance_id if ctx.metadata else None
    if (iid is None or name in steps.CHECKED_WHEN_DONE or lineup.loaded(name)
            or not ctx.state.done(iid, name)):
        return None
    log.debug("%s: begins", name)
    log.debug("%s: already done for instance %s", name, iid)
    return {"name": name, "result": "done-before", "changes": [], "duration": 0.0,
            "frequency": steps.PER_INSTANCE}


def _not_loaded(name, error):
    """The record of a step that could not be loaded: it breaks the step contract
    (steps/__init__.py) or does not import."""
    res = {"name": name, "result": "failed", "changes": [], "duration": 0.0,
           "error": f"cannot load the step: {error or type(error).__name__}"}
    log.error("%s failed: %s", name, res["error"])
    log.debug("%s traceback", name, exc_info=True)
    return res


def _run_step(ctx, step):
    name = step.name
    t0 = time.monotonic()
    res = {"name": name, "result": "ok", "changes": [], "duration": 0.0}
    iid = ctx.metadata.instance_id if ctx.metadata else None
    done = False  # decided for this instance: a reboot shows it as done-before
    log.debug("%s: begins", name)
    try:
        res["frequency"] = step.frequency
        step_run = step.run
        if ctx.metadata is None and step.needs_metadata:
            raise steps.Skip("no metadata")
        if step.frequency == steps.PER_INSTANCE:
            if iid is None:
                raise steps.Skip("no instance id")
            if ctx.state.done(iid, name):
                broken = done_markers.broken_since(ctx, step)
                if not broken:
                    res["result"] = "done-before"
                    log.debug("%s: already done for instance %s", name, iid)
                    return res
                log.warning("%s: done for instance %s on an earlier boot, but %s: "
                            "doing it again", name, iid, broken)
                res["redone"] = broken
                step_run = step.redo
            else:
                done_markers.say_resumed(ctx, iid, name, res)
            if name in done_markers.USER_CODE_STEPS:
                done_markers.started(ctx, iid, name)
        ended = step_run(ctx)
        outcome = ended if isinstance(ended, steps.Outcome) else steps.Outcome(ended or [])
        res["changes"] = outcome.changes
        for c in outcome.changes:
            log.info("%s: %s", name, c)
        if outcome.problems:  # changed part of the system, then failed: both are told
            res["result"], res["error"] = "failed", outcome.error
            log.error("%s failed: %s", name, outcome.error)
            done = not outcome.retry
        else:
            res["result"] = "changed" if outcome.changes else "ok"
            done = True
    except steps.Skip as e:
        res["result"] = "skipped"
        res["reason"] = str(e)
        log.info("%s: skipped: %s", name, e)
        # nothing to do for this instance is an answer too: a reboot shows
        # the step as done-before instead of deciding it again
        done = True
    except Exception as e:  # a failed step never stops the boot or the next step
        res["result"] = "failed"
        res["error"] = str(e) or type(e).__name__
        log.error("%s failed: %s", name, res["error"])
        log.debug("%s traceback", name, exc_info=True)
    if done and res.get("frequency") == steps.PER_INSTANCE and iid is not None:
        try:
            done_markers.mark(ctx, iid, name, res["result"])
        except OSError as e:
            if res["result"] == "skipped":  # the next boot decides it again: no harm
                log.debug("%s: cannot record the skip: %s", name, e)
                res["duration"] = round(time.monotonic() - t0, 3)
                return res
            res["result"] = "failed"
            res["error"] = f"cannot record it as done for this instance: {e}"
            log.error("%s failed: %s", name, res["error"])
    res["duration"] = round(time.monotonic() - t0, 3)
    return res
