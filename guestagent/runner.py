"""Run the steps: find metadata, record the instance, run each step once.

Stages (one systemd unit each, see units/):
  local    config drive (or a reboot confirmed by DMI UUID): no network at all
  network  the metadata service, unless the local stage already configured this boot
  final    user scripts, late, from the metadata stored earlier in this boot
  all      the three in one process (`guestagent --once`)
"""

import importlib
import logging
import threading
import time
from collections import namedtuple

from . import boot_guard, datasources, disk_space, done_markers, readiness, steps
from . import log as logsetup
from .context import Context
from .off_switches import disabled_reason
from .run_lock import RunLock
from .state import State

log = logging.getLogger(__name__)

EXIT_OK, EXIT_STEP_FAILED, EXIT_USAGE, EXIT_NO_DATASOURCE = 0, 1, 2, 3

# What each stage does, in one place:
#   metadata  "local": the datasources that need no network (with the DMI
#             check for a reboot); "any": every configured datasource;
#             "stored": what the config stage stored in this boot
#   steps     "config", "final" or "all": steps.CONFIG_STEPS, FINAL_STEPS, ALL_STEPS
#   deadline  how long the datasource search may wait (None: [main] deadline)
#   bare      the steps run even with no metadata (those that need none)
#   once      nothing to do when an earlier stage configured this boot
Stage = namedtuple("Stage", "metadata steps deadline bare once")
STAGES = {
    "local": Stage("local", "config", 0, bare=False, once=False),
    "network": Stage("any", "config", None, bare=True, once=True),
    "final": Stage("stored", "final", None, bare=False, once=False),
    "all": Stage("any", "all", None, bare=True, once=False),
}
LOCAL_DONE, FINAL_PENDING = boot_guard.LOCAL_DONE, boot_guard.FINAL_PENDING


def run(system, config, stage="all", only=None):
    """One run of ``stage``; returns the exit code."""
    why = disabled_reason(system)
    if why:
        log.info("standing aside: %s", why)
        return EXIT_OK
    state = State(system)
    newer = state.newer_format()
    if newer:
        log.error("%s", newer)
        return EXIT_USAGE
    grown = None
    if STAGES[stage].steps in ("config", "all") and (not only or "growroot" in only):
        # a root that shipped full grows before anything is written to it
        grown = disk_space.grow_first(
            system, lambda: _run_step(Context(system, config, None, None, False, stage),
                                      "growroot"))
    try:
        state.ensure()
    except disk_space.NoSpaceError as e:
        # a full root that could not grow: the steps still run (the key may
        # still fit where the agent's own records do not)
        log.error("cannot keep the agent's state: %s", e)
    with RunLock(system):
        return _run_locked(system, config, state, stage, only, grown)


def _run_locked(system, config, state, stage, only, grown=None):
    t0 = time.monotonic()
    warned = logsetup.warnings_mark()
    boot_id = state.boot_id()
    record = {"stage": stage, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "steps": [], "source": None, "instance_id": None}
    status = state.read_status() or {}
    if not boot_id or status.get("boot_id") != boot_id:
        status = {"boot_id": boot_id, "runs": []}
    configured_this_boot = bool(boot_id) and any(
        r.get("configured") for r in status.get("runs", []))

    spec = STAGES[stage]
    code = EXIT_OK
    md = None
    new_instance = False
    skip_stage = spec.once and configured_this_boot
    if spec.metadata != "stored" and not skip_stage:
        boot_guard.forget(system)  # this run configures: the old proof no longer holds
    if skip_stage:
        log.info("already configured in this boot by the local stage; nothing to do")
        record["message"] = "already configured in this boot"
    elif spec.metadata == "stored":
        md = state.stored_metadata()
        if md is None:
            log.error("no stored metadata: the config stage has not found a datasource")
            code = EXIT_NO_DATASOURCE
    else:
        # `--only growroot`: nothing asked for needs the metadata, so only what
        # costs no wait is looked at (its #cloud-config may turn growpart off)
        # and finding nothing is no error
        needless = bool(only) and not any(_needs_metadata(n) for n in only)
        names = config.getlist("main", "datasources")
        # the metadata service's requests and retries, for status
        asked = record.setdefault("metadata_requests", {})
        local_only = spec.metadata == "local" or needless
        if local_only:
            names = [n for n in names if not datasources.needs_network(n)]
        try:
            md = datasources.search(config, system, names, state=state,
                                    deadline=0 if local_only else spec.deadline,
                                    requests=asked)
        except datasources.NoDatasource as e:
            if needless:
                log.info("no local datasource (%s); %s need no metadata, so the metadata "
                         "service is not asked", e, ", ".join(only))
            elif spec.metadata == "local":
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
    if not record.get("metadata_requests", True):
        del record["metadata_requests"]  # no HTTP asked: nothing to count
    if md is not None:
        logsetup.add_secrets(md.secrets())
        record["source"], record["instance_id"] = md.source, md.instance_id
        if spec.metadata != "stored":
            prev = state.previous_instance_id()
            try:
                new_instance = state.set_instance(md)
            except disk_space.NoSpaceError as e:
                # the record is lost, not the boot: the steps run all the same
                # (and again on the next boot, which finds no record)
                new_instance = prev != md.instance_id
                log.error("cannot record instance %s in the agent's state: %s",
                          md.instance_id, e)
            from . import instance_data
            instance_data.publish(system, md)
            if new_instance:
                log.info("new instance %s (previous: %s): per-instance steps will run",
                         md.instance_id, prev or "none")
            else:
                log.info("same instance %s as before: only per-boot steps run", md.instance_id)
    record["new_instance"] = new_instance

    if skip_stage or (md is None and not spec.bare):
        names = []
    else:
        names = {"config": steps.CONFIG_STEPS, "final": steps.FINAL_STEPS,
                 "all": steps.ALL_STEPS}[spec.steps]
    if only:
        names = [n for n in names if n in only]
    ctx = Context(system, config, state, md, new_instance, stage)
    for name in names:
        if name == "growroot" and grown is not None:
            record["steps"].append(grown)  # done before anything else was written
        elif name in steps.BACKGROUND_STEPS and len(names) > 1:
            # growroot waits on growpart and resize2fs; the other steps need
            # nothing from it, so it runs beside them instead of before them
            record["steps"].append(_Background(ctx, name))
        else:
            record["steps"].append(_run_step(ctx, name))
    background = [r.name for r in record["steps"] if isinstance(r, _Background)]
    background += [n for n in ctx.left_running if n not in background]
    if background:
        # What a login needs is done: the flags the later units' conditions
        # read go down now, and the unit says it is up (sshd starts) while
        # growpart and resize2fs finish.
        final_pending = _flag_configured(ctx, state, spec)
        readiness.ready(f"{', '.join(background)} still running")
    record["steps"] = [r.join() if isinstance(r, _Background) else r for r in record["steps"]]
    done_markers.finish_left_running(ctx, record["steps"])
    failed = any(r["result"] == "failed" for r in record["steps"])
    if not background:
        final_pending = _flag_configured(ctx, state, spec)
    if md is not None and spec.metadata != "stored":
        record["configured"] = True
    if md is not None and spec.steps == "config" and not failed and not only:
        boot_guard.write(ctx, steps.ALL_STEPS, final_pending)
    if md is not None and spec.steps == "final" and not failed and not only and all(
            state.done(md.instance_id, n) for n in boot_guard.per_instance(steps.FINAL_STEPS)):
        boot_guard.publish(system)
    if failed and code == EXIT_OK:
        code = EXIT_STEP_FAILED
    record["exit_code"] = code
    warnings = logsetup.warnings_since(warned)
    if warnings:  # what `status --wait` calls a recoverable problem (exit 2)
        record["warnings"] = warnings
    if names and disk_space.is_full(system):
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
    log.info("%s stage finished in %.2f s (exit %d)", stage, record["duration"], code)
    if ctx.power_requests:
        from . import power
        power.act(system, ctx.power_requests)
    return code


def _needs_metadata(name):
    return getattr(importlib.import_module(f"guestagent.steps.{name}"), "NEEDS_METADATA", True)


def _flag_configured(ctx, state, spec):
    """The flags in /run that the later units' conditions read; returns the
    final steps with work left (or None: this stage does not decide that)."""
    md = ctx.metadata
    if md is None:
        return None
    if spec.metadata == "local":
        # guestagent.service has ConditionPathExists=!LOCAL_DONE: on a config
        # drive or DMI-confirmed boot its Python never starts (/run is
        # emptied every boot)
        try:
            ctx.system.write_file(LOCAL_DONE, md.instance_id + "\n", mode=0o644)
        except OSError as e:
            log.warning("cannot write %s: %s", LOCAL_DONE, e)
    if spec.steps == "config":
        return _flag_final(ctx, state)
    return None


def _flag_final(ctx, state):
    """Leave FINAL_PENDING when a final step has work left for this instance;
    returns the steps with work left.

    guestagent-final.service has ConditionPathExists= on it: a reboot, or a
    first boot without scripts or runcmd, starts no Python for that stage.
    """
    iid = ctx.metadata.instance_id
    pending = []
    for name in steps.FINAL_STEPS:
        if state.done(iid, name):
            continue
        try:
            mod = importlib.import_module(f"guestagent.steps.{name}")
            if getattr(mod, "pending", lambda c: True)(ctx):
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


class _Background:
    def __init__(self, ctx, name):
        self.name = name
        self.result = None
        self.thread = threading.Thread(target=self._run, args=(ctx, name),
                                       name=f"step-{name}", daemon=True)
        self.thread.start()

    def _run(self, ctx, name):
        self.result = _run_step(ctx, name)

    def join(self):
        self.thread.join()
        return self.result


def _run_step(ctx, name):
    t0 = time.monotonic()
    res = {"name": name, "result": "ok", "changes": [], "duration": 0.0}
    iid = ctx.metadata.instance_id if ctx.metadata else None
    done = False  # decided for this instance: a reboot shows it as done-before
    try:
        mod = importlib.import_module(f"guestagent.steps.{name}")
        res["frequency"] = mod.FREQUENCY
        step_run = mod.run
        if ctx.metadata is None and getattr(mod, "NEEDS_METADATA", True):
            raise steps.Skip("no metadata")
        if mod.FREQUENCY == steps.PER_INSTANCE:
            if iid is None:
                raise steps.Skip("no instance id")
            if ctx.state.done(iid, name):
                broken = done_markers.broken_since(ctx, mod, name)
                if not broken:
                    res["result"] = "done-before"
                    log.debug("%s: already done for instance %s", name, iid)
                    return res
                log.warning("%s: done for instance %s on an earlier boot, but %s: "
                            "doing it again", name, iid, broken)
                res["redone"] = broken
                step_run = done_markers.redo(mod)
        changes = step_run(ctx) or []
        res["changes"] = list(changes)
        res["result"] = "changed" if changes else "ok"
        for c in changes:
            log.info("%s: %s", name, c)
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
        # it ran (scripts, appended files): a reboot must not run it again
        done = isinstance(e, steps.FailedButDone)
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
