"""#cloud-config snap, once per instance, in the final stage (cc_snap's keys).

    snap:
      assertions:                  (a list, or a mapping whose values are taken
        - |                         in order: signed assertions, acked in one go)
          type: account-key ...
      commands:                    (a list, or a mapping run in the order of its keys)
        - [install, hello]          (a list: argv, "snap" put first when missing,
        - snap install core          a null first item keeps it as it is;
                                     a string: a sh command line)

As cloud-init does: the step waits for snapd's seeding (`snap wait system
seed.loaded`), writes the assertions to the instance's directory
(snapd.assertions) and runs `snap ack` on it, then runs every command,
all of them even when one fails, and fails naming the ones that failed.
Only on an image with snapd (a `snap` command in the image): elsewhere, and
under --root, the step is skipped, saying why.
"""

from . import PER_INSTANCE, Outcome, Skip

FREQUENCY = PER_INSTANCE
SNAP = ("/usr/bin/snap", "/snap/bin/snap")
SEED_TIMEOUT = 600
COMMAND_TIMEOUT = 1800


def pending(ctx):
    cfg = ctx.cloud_config.get("snap") or {}
    return bool(cfg.get("assertions") or cfg.get("commands"))


def run(ctx):
    cfg = ctx.cloud_config.get("snap") or {}
    assertions, commands = cfg.get("assertions") or [], cfg.get("commands") or []
    if not assertions and not commands:
        raise Skip("no snap assertions or commands in #cloud-config")
    system = ctx.system
    asked = f"{len(assertions)} assertion(s) and {len(commands)} command(s) not run"
    if not any(system.exists(p) for p in SNAP):
        raise Skip(f"snapd is not installed in this image (no snap command): {asked}")
    if not system.live:
        raise Skip(f"snap: not the live system (--root): {asked}")
    changes, problems = [], []
    why = _run(system, ["snap", "wait", "system", "seed.loaded"], SEED_TIMEOUT)
    if why:
        problems.append(f"waiting for snapd's seeding: {why}")
    if assertions:
        path = ctx.state.instance_dir(ctx.metadata.instance_id) + "/snapd.assertions"
        system.write_file(path, "\n".join(assertions), mode=0o600, dir_mode=0o700)
        why = _run(system, ["snap", "ack", system.path(path)], COMMAND_TIMEOUT)
        if why:
            problems.append(f"snap ack: {why}")
        else:
            changes.append(f"{len(assertions)} assertion(s) acked (snap ack)")
    for n, command in enumerate(commands, 1):
        argv = ["sh", "-c", command] if isinstance(command, str) else command
        why = _run(system, argv, COMMAND_TIMEOUT)
        if why:
            problems.append(f"snap command {n}: {why}")
        else:
            changes.append(f"snap command {n} done")
    return Outcome(changes, problems)


def _run(system, argv, timeout):
    """'' when ``argv`` exited 0, else why not, in words."""
    from ..system import CommandMissing, CommandTimedOut, output_tail
    try:
        res = system.run(argv, timeout=timeout)
    except CommandTimedOut:
        return f"did not finish within {timeout} s"
    except CommandMissing as e:
        return str(e)
    if res.returncode == 0:
        return ""
    tail = output_tail(res)
    return f"failed (exit {res.returncode})" + (f": {tail}" if tail else "")
