"""Command line: `guestagent --once`, `query`, `status [--wait]`, `check-image`, `clean`,
`check-userdata`: each command run as its words (arguments.py) say."""

import os
import sys

from . import __version__
from .system.root_paths import UnsafePathError


def _check_root(args):
    if not os.path.isdir(args.root):
        print(f"guestagent: --root {args.root}: not a directory", file=sys.stderr)
        return False
    return True


_exit_fast = False
EXIT_UNSAFE = 4  # one of the agent's own files is unsafe to use (own_files.py)
EXIT_BROKEN_PIPE = 141  # what a shell shows for a tool that SIGPIPE ended


def _on_own_files(command, args):
    """Run a command that reads or writes the agent's own files (--once,
    status, query; whatever is added to them inherits this): after the
    config reads and own_files.check finds each of them safe to use."""
    from .config import ConfigError, load
    from .system import System

    system = System(args.root)
    try:
        config = load(args.config, root=system.root)
    except ConfigError as e:
        print(f"guestagent: config error: {e}", file=sys.stderr)
        return 2
    from .boot import own_files
    own_files.check(system, config)
    return command(args, system, config)


def _refuse(e, root):
    """One line for an unsafe path of the agent's own: what, where, why."""
    path = "/" + e.filename.lstrip("/") if isinstance(e.filename, str) else "a path"
    where = f" under {os.path.abspath(root)}" if root and os.path.abspath(root) != "/" else ""
    from .boot.own_files import why
    print(f"guestagent: refusing {escape(path)}{escape(where)}: {escape(why(e))}",
          file=sys.stderr)


def _config_ok(args):
    """Whether the config reads; if not, says what is wrong with it (exit 2)."""
    from .config import ConfigError, load
    try:
        load(args.config, root=args.root)
    except ConfigError as e:
        print(f"guestagent: config error: {e}", file=sys.stderr)
        return False
    return True


def main(argv=None):
    global _exit_fast
    _exit_fast = argv is None  # the real command, not a caller in Python
    argv = sys.argv[1:] if argv is None else argv
    args = None
    try:
        from . import arguments
        commands = {"query": _query, "status": _status, "check-image": _check_image,
                    "check-userdata": _check_userdata, "clean": _clean}
        if argv and argv[0] in commands:
            command = commands[argv[0]]
            args = arguments.SUBCOMMANDS[argv[0]]().parse_args(argv[1:])
            if not hasattr(args, "root"):
                code = command(args)
            elif not _check_root(args):
                code = 2
            elif command in (_query, _status):
                code = _on_own_files(command, args)
            else:
                code = command(args)
        else:
            args = arguments.unit_args(argv)
            if args is None:
                parser = arguments.main_parser()
                args = parser.parse_args(argv)
            if getattr(args, "boot", False) and not args.once:
                if not _check_root(args):
                    return 2
                from .boot_process import run_boot
                code = run_boot(args)  # returns only when called from Python
            elif not args.once:
                parser.print_help()
                code = 0
            elif not _check_root(args):
                code = 2
            else:
                code = _on_own_files(_run_once, args)
        sys.stdout.flush()  # here, so a closed pipe is seen while it can be handled
        return code
    except UnsafePathError as e:
        # met after the check (a new instance's directory, a link planted
        # since): the same one line, never a traceback
        _refuse(e, getattr(args, "root", "/"))
        return EXIT_UNSAFE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away (`guestagent status | head -1`): end quietly, as
        # other tools do, and keep the interpreter from complaining at exit
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


def _check_image(args):
    # the image's own config is one of the things checked, not a reason to
    # stop; a file named on the command line must be readable
    if args.config and not _config_ok(args):
        return 2
    from .checkimage import main as check_main
    return check_main(args)


def _clean(args):
    from .clean.command import main as clean_main
    return clean_main(args)


def _check_userdata(args):
    from .config import ConfigError, load
    from .steps import when_they_run
    from .userdata.report import EXIT_UNREADABLE, main
    try:
        max_bytes = load(args.config).getint("userdata", "max_bytes")
    except ConfigError as e:
        print(f"guestagent: config error: {e}", file=sys.stderr)
        return EXIT_UNREADABLE
    from .metadata.instance_data import for_check
    from .system import System
    try:
        jinja = for_check(System("/"), args.instance_data)
    except (OSError, ValueError) as e:
        print(f"guestagent: --instance-data {args.instance_data}: {e}", file=sys.stderr)
        return EXIT_UNREADABLE
    path = "/dev/stdin" if args.file == "-" else args.file
    return main(path, args.json, max_bytes, when_they_run(), jinja)


def _run_once(args, system, config):
    from . import log as logsetup
    from .runner import EXIT_USAGE, run
    from .steps import ALL_STEPS

    logsetup.setup(verbose=args.verbose, debug_console=logsetup.debug_asked(system))
    only = None
    if args.only:
        only = [s.strip() for s in args.only.split(",") if s.strip()]
        unknown = [s for s in only if s not in ALL_STEPS]
        if unknown:
            print(f"guestagent: unknown step(s) for --only: {', '.join(unknown)} "
                  f"(known: {', '.join(ALL_STEPS)})", file=sys.stderr)
            return EXIT_USAGE
    from .system.disk_space import is_low
    # a root that shipped full grows before anything is written to it, the
    # log file included (the runner opens it once growroot has run)
    logsetup.add_file(system, config.get("main", "log_file"), later=is_low(system))
    import logging
    logging.getLogger("guestagent").debug("guestagent %s, root %s, config %s",
                                          __version__, system.root, ", ".join(config.files))
    code = run(system, config, stage=args.stage, only=only)
    # A Type=notify unit whose process ends without READY=1 fails: say it on
    # every way out (a stage with a background step said it earlier).
    from .boot import readiness
    readiness.ready()
    if _exit_fast:
        # Everything is on disk (each write was fsynced); tearing down the
        # interpreter and the HTTP library would add ~20 ms to the boot.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _status(args, system, config):
    from .status.report import status_command
    return status_command(args, system, config)


def _query(args, system, config):
    from .status.query import query_command
    return query_command(args, system)


def escape(text):
    from .log import escape as log_escape
    return log_escape(text)
