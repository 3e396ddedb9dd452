"""`guestagent clean [--root DIR] [--dry-run] [--poweroff] (--all | --state ...)`."""

import sys

from . import CATEGORIES, carry_out, find

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def chosen(args):
    return [c for c in CATEGORIES if args.all or getattr(args, c.replace("-", "_"))]


def main(args):
    from ..system import System
    return run(System(args.root), args)


def run(system, args):
    """The command on ``system`` (the running one unless --root)."""
    from .. import log as logsetup
    from ..config import ConfigError, load
    from ..state import STATE_DIR

    categories = chosen(args)
    if not categories:
        print("guestagent clean: say what to remove: --all, or one or more of "
              + ", ".join(f"--{c}" for c in CATEGORIES), file=sys.stderr)
        return EXIT_USAGE
    if args.poweroff and not system.live:
        print(f"guestagent clean: refusing --poweroff with --root {args.root}: that would "
              "power off this machine, not the image", file=sys.stderr)
        return EXIT_USAGE
    try:
        config = load(args.config, root=system.root)
    except ConfigError as e:
        print(f"guestagent: config error: {e}", file=sys.stderr)
        return EXIT_USAGE
    logsetup.setup(quiet=True)  # the list goes to stdout; warnings to stderr
    if args.dry_run:
        actions = find(system, config, categories)
        for a in actions:
            print(a.describe(done=False))
        if not actions:
            print("nothing to remove")
        if args.poweroff:
            print("would power off")
        return EXIT_FAILED if any(a.refusal for a in actions) else EXIT_OK
    if "logs" not in categories:
        logsetup.add_file(system, config.get("main", "log_file"))
    try:
        done, failed = _locked(system, STATE_DIR, lambda: carry_out(
            find(system, config, categories)))
    except RuntimeError as e:  # a run that never ends
        print(f"guestagent clean: {e}", file=sys.stderr)
        return EXIT_FAILED
    for line in done:
        print(line)
    if not done and not failed:
        print("nothing to remove")
    sys.stdout.flush()
    if failed:
        if args.poweroff:
            print("guestagent clean: not powering off: not everything could be removed",
                  file=sys.stderr)
        return EXIT_FAILED
    if args.poweroff:
        from ..system.power import Request, act
        print("powering off")
        sys.stdout.flush()
        act(system, [Request("poweroff", reason="guestagent clean --poweroff")])
    return EXIT_OK


def _locked(system, state_dir, work):
    """``work()`` while holding the agent's run lock, so a boot's run still
    going ends first; the lock file is only read, never made or written."""
    import fcntl
    import os
    import time

    from ..state.run_lock import LOCK_WAIT
    host = system.resolve(state_dir + "/lock")
    try:
        fd = os.open(host, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC) if host else None
    except OSError:  # the agent never ran here: nobody to wait for
        fd = None
    if fd is None:
        return work()
    try:
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"an agent run still holds {state_dir}/lock after "
                                       f"{LOCK_WAIT} s; nothing removed") from None
                time.sleep(0.1)
        return work()
    finally:
        os.close(fd)
