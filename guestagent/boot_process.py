"""The boot's one process: `guestagent --boot` (units/guestagent-main.service).

systemd starts it early, beside udev and the file system checks, before
the config drive's device or the network exists: the interpreter and the
imports every stage needs cost their seconds there, not on sshd's path.  It
then says READY=1 and waits.  Each stage unit, once its ordering is met, is
a sh script that signals it (boot/signals.py, units/guestagent-stage);
the stage runs here, in this process, and the unit ends when what a login
needs is done.  While it waits, the process imports what a stage may need
next (PREFETCH), one module at a time, looking for a signal between two.

It exits once no stage is owed any more, by the stage table (stages.py)
and the flags the units' conditions read: a stage with nothing to do once
the boot is configured (the network stage) is owed until LOCAL_DONE is
there, the stage that runs on the stored metadata (final) only while
FINAL_PENDING says user scripts or runcmd wait.  A stage whose unit did not
start (its conditions skipped it) is passed over when a later one signals.

Its exit code is the first non-zero code that no stage unit reported (a
step that failed after its stage's unit ended: growroot), so a failure
shows on guestagent-main.service if nowhere else.

Under SysV init, rc.local or by hand, `guestagent --once` runs the stages in
the foreground instead; this process is systemd's way only.
"""

import logging
import os
import select
import sys

# What a stage may import that the core (imported before READY=1) does not,
# in this order: the config drive's and NoCloud's readers and the
# #cloud-config parser; then every config step (loaded and checked through
# the lineup); the metadata service's readers and the HTTP library last (a
# config-drive boot never needs them, a metadata boot only once the network
# is up, and the process waits for that stage's unit meanwhile).
PREFETCH_FIRST = ("guestagent.datasources.configdrive", "guestagent.datasources.nocloud",
                  "guestagent.metadata.instance_data", "guestagent.userdata", "yaml")
PREFETCH_LAST = ("guestagent.datasources.openstack", "guestagent.datasources.ec2",
                 "guestagent.datasources.http", "requests")

EXIT_UNSAFE = 4  # cli.EXIT_UNSAFE: one of the agent's own files is unsafe (boot/own_files.py)

log = logging.getLogger(__name__)


def main(root="/", config_path=None, lineup=None):
    """Run the boot's stages as their units signal; returns the exit code.
    ``lineup``: the steps (a `steps.Lineup`, shared by the stages: a step is
    loaded once per boot; tests hand in their own)."""
    from . import log as logsetup
    from .boot.signals import Channel
    from .system import System

    system = System(root)
    logsetup.setup(debug_console=logsetup.debug_asked(system))
    channel = Channel(system)
    # The core every stage uses, before READY=1: the units wait for it
    from . import datasources, runner, steps  # noqa: F401  (runner: the rest)
    from .boot import readiness
    from .stages import STAGES
    order = [name for name, s in STAGES.items() if s.unit]
    lineup = lineup or steps.Lineup()
    readiness.process_ready("waiting for the first stage's unit")
    prefetch = list(PREFETCH_FIRST) + [f"step:{n}" for n in lineup.config] + list(
        PREFETCH_LAST)
    done, unreported, file_logged = [], 0, False
    try:
        while _owed(system, done, STAGES):
            _prefetch_until_signalled(channel, prefetch, lineup)
            stage = channel.next_request()
            if stage in done or stage in channel.answered:
                log.debug("the %s unit signalled again: that stage is over", stage)
                continue
            for earlier in order[:order.index(stage)]:
                if earlier not in done:  # its unit's conditions skipped it
                    channel.pass_over(earlier)
                    done.append(earlier)
            readiness.notify(f"STATUS=running the {stage} stage")
            datasources.count_from_now()  # the deadline counts from the unit's signal
            code, reported = _run_stage(system, config_path, stage, channel, not file_logged,
                                        lineup)
            file_logged = True
            done.append(stage)
            if code and code != reported and not unreported:
                unreported = code
            readiness.notify(f"STATUS={stage} stage done (exit {code})")
    finally:
        channel.close()
    return unreported


def _owed(system, done, stages):
    """Is a stage's unit still to signal?  What its unit's conditions say
    (tests/test_units.py holds the table and the units to the same rules)."""
    from .boot.guard import FINAL_PENDING, LOCAL_DONE
    for name, s in stages.items():
        if not s.unit or name in done:
            continue
        if s.once and system.exists(LOCAL_DONE):
            continue  # ConditionPathExists=!LOCAL_DONE: configured already
        if not s.configures and not system.exists(FINAL_PENDING):
            continue  # ConditionPathExists=FINAL_PENDING: nothing left for it
        return True
    return False


def _prefetch_until_signalled(channel, prefetch, lineup):
    """Import the next modules of ``prefetch`` until a unit signals (a step
    is loaded through ``lineup``, which keeps it for the stage)."""
    from . import named_module
    while prefetch:
        ready, _, _ = select.select([channel.request_fd], [], [], 0)
        if ready:
            return
        name = prefetch.pop(0)
        try:
            if name.startswith("step:"):
                lineup.step(name[len("step:"):])
            else:
                named_module(name)
        except Exception as e:  # the stage that needs it says so, not this
            log.debug("prefetch of %s: %s", name, e)


def _run_stage(system, config_path, stage, channel, first, lineup):
    """One stage, as `guestagent --once --stage STAGE` runs it; returns
    (its exit code, the code its unit was given)."""
    from .boot import readiness
    from .config import ConfigError, load
    from .runner import EXIT_STEP_FAILED, EXIT_USAGE, run
    from .system import UnsafePathError

    reported = {}

    def answer(code):
        if channel.answer(stage, code):
            reported["code"] = code

    readiness.handled_by(answer)
    try:
        config = load(config_path, root=system.root)
    except ConfigError as e:
        log.error("config error: %s", e)
        answer(EXIT_USAGE)
        return EXIT_USAGE, reported.get("code")
    try:
        from .boot import own_files
        own_files.check(system, config)
        if first:
            from . import log as logsetup
            from .system.disk_space import is_low
            logsetup.add_file(system, config.get("main", "log_file"), later=is_low(system))
        code = run(system, config, stage=stage, lineup=lineup)
    except UnsafePathError as e:  # as `--once` refuses it (cli._refuse)
        from .boot.own_files import why
        path = "/" + e.filename.lstrip("/") if isinstance(e.filename, str) else "a path"
        log.error("refusing %s: %s", path, why(e))
        code = EXIT_UNSAFE
    except Exception as e:  # this process must answer every unit, whatever happens
        log.error("the %s stage failed: %s", stage, e)
        log.debug("traceback", exc_info=True)
        code = EXIT_STEP_FAILED
    answer(code)
    return code, reported.get("code")


def run_boot(args):
    """`guestagent --boot`: the process's whole life; exits fast, as --once does."""
    code = main(args.root, args.config)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
