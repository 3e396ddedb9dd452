"""Command line: `guestagent --once`, `query`, `status [--wait]`, `check-image`, `clean`."""

import os
import sys

from . import __version__
from .system.root_paths import UnsafePathError

EXIT_CODES = """\
exit codes:
  0  every step ok (or nothing to do)
  1  a step failed (the others still ran; see `guestagent status`)
  2  usage or configuration error
  3  no datasource found before the deadline (steps that need no metadata still ran)
  4  one of the agent's own files under the root (state, lock, status, log, /run
     flags) is unsafe to use, e.g. a symlink: the message names it; --once, status
     and query refuse it before reading or writing anything
"""

MAIN_DESC = """\
First-boot agent for Linux cloud images: reads the instance's metadata (config
drive, NoCloud seed, Hetzner Cloud, OpenStack metadata service, EC2-compatible
service), grows the root filesystem, installs SSH keys, sets the hostname and
resolv.conf, and runs the user-data scripts.

commands:
  guestagent --once [options]
      one full run in the foreground (the boot units call this)
  guestagent query [KEY] [--json]
      the metadata stored by the last run, secrets redacted
  guestagent status [--json] [--wait [--timeout S]]
      this boot's runs, step by step; --wait first blocks until this boot's
      agent work is over (exit codes as `cloud-init status --wait`)
  guestagent check-image [--root DIR] [--json] [--fix]
      check an image against the OpenStack image requirements
  guestagent clean [--root DIR] [--dry-run] [--poweroff] (--all | --state --logs
                   --network --host-keys --machine-id --dhcp-leases --keys)
      seal an image: remove what this instance left (the next boot is a
      first boot); exit 0 done, 1 something stayed, 2 usage error
  guestagent check-userdata FILE [--json] [--instance-data FILE]
      say, part by part and key by key, what the agent will do with a
      user-data file (exit 0: all of it, 1: not all, 2: unreadable)

Plain `guestagent` with no command prints this help and exits 0: it never
changes anything or waits for anything unless asked with --once.
"""


def _common(p):
    p.add_argument("--root", metavar="DIR", default="/",
                   help="work on the tree under DIR instead of /: no live hostname, "
                        "users or devices are touched (user-data scripts, runcmd and "
                        "bootcmd still run, on this host, as root, in DIR)")
    p.add_argument("--config", metavar="FILE",
                   help="config file (default: ROOT/etc/guestagent/guestagent.conf "
                        "and its .conf.d/*.conf drop-ins)")


def main_parser():
    import argparse

    from .stages import STAGES
    from .steps import ALL_STEPS
    p = argparse.ArgumentParser(prog="guestagent", description=MAIN_DESC, epilog=EXIT_CODES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"guestagent {__version__}")
    p.add_argument("--once", action="store_true", help="run the steps once, then exit")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="log every detail (commands run, requests made)")
    p.add_argument("--only", metavar="STEP[,STEP...]",
                   help="run just these steps: " + ", ".join(ALL_STEPS))
    p.add_argument("--stage", choices=STAGES, default="all",
                   help="boot stage to run (the units use "
                        + ", ".join(n for n, s in STAGES.items() if s.unit)
                        + "); default: all of them")
    p.add_argument("--boot", action="store_true",
                   help="the boot's one process (guestagent-main.service): start early, "
                        "run each stage when its unit signals (not for use by hand; "
                        "--once is)")
    _common(p)
    return p


def _subcommand_parser(name, description, json_help="print JSON", **more):
    """``guestagent NAME``'s parser, with its --json; the caller adds the rest."""
    import argparse

    p = argparse.ArgumentParser(prog=f"guestagent {name}", description=description, **more)
    p.add_argument("--json", action="store_true", help=json_help)
    return p


def _query_parser():
    p = _subcommand_parser("query", "Show the metadata stored by the last run (secrets "
                                    "redacted), with cloud-init's instance data names (v1, "
                                    "ds, sys_info). KEY is a field name or a /-separated "
                                    "path, e.g. public_keys or raw/meta_data.json/meta, or a "
                                    ".-separated one as cloud-init's, e.g. v1.instance_id.")
    p.add_argument("key", nargs="?", metavar="KEY")
    _common(p)
    return p


STATUS_EPILOG = """\
--wait blocks until this boot's agent work is over: every stage this boot
owes has run (the final stage too, when user scripts or runcmd wait for it)
and no agent run is going.  It returns at once when the agent will not run
this boot: the reboot guard found nothing changed, /etc/guestagent/disabled
or guestagent=disabled is set, or cloud-init owns the boot.  It needs no
systemd (SysV and rc.local boots too).  As in image pipelines that wait with
`cloud-init status --wait`, its exit codes are cloud-init's:
  0  done (or the agent will not run this boot)
  1  a step failed, a stage exited non-zero, or the state is not readable
  2  done, with warnings (a recoverable problem: see each run's warnings)
  3  --timeout ran out before the work was over
Without --wait: 0 the last run went well, 1 it did not, 3 no run recorded.
"""


def _status_parser():
    import argparse

    p = _subcommand_parser("status", "Show the runs of the last boot, step by step.",
                           epilog=STATUS_EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--wait", action="store_true",
                   help="block until this boot's agent work is over (or the agent will "
                        "not run this boot), then report; exit codes as `cloud-init status "
                        "--wait` (below)")
    p.add_argument("--timeout", type=float, metavar="S",
                   help="with --wait: give up after S seconds (exit 3)")
    _common(p)
    return p


def _check_image_parser():
    p = _subcommand_parser("check-image", "Check an image (or the running system) against "
                                          "the OpenStack image requirements.",
                           json_help="print a JSON list")
    p.add_argument("--fix", action="store_true", help="apply the safe fixes, report each")
    _common(p)
    return p


def _clean_parser():
    import argparse

    from .clean import FLAGS, HELP
    p = argparse.ArgumentParser(
        prog="guestagent clean",
        description="Seal an image, as `cloud-init clean` and virt-sysprep do, for what is "
                    "the agent's business: remove what this instance left, so the next boot "
                    "is a new instance's first. Every removal is listed on stdout and logged; "
                    "nothing else is touched.",
        epilog="exit codes: 0 done (or nothing to remove), 1 something could not be removed "
               "or must stay (stderr says why; --poweroff then does not power off), 2 usage "
               "or config error")
    for c in FLAGS:
        p.add_argument(f"--{c}", action="store_true", help=HELP[c])
    p.add_argument("--all", action="store_true", help="all of the above")
    p.add_argument("--dry-run", action="store_true",
                   help="list what would be removed; change nothing")
    p.add_argument("--poweroff", action="store_true",
                   help="power off when done (refused with --root: the host is not the image)")
    p.add_argument("--root", metavar="DIR", default="/",
                   help="clean the image tree mounted at DIR instead of the running system")
    p.add_argument("--config", metavar="FILE",
                   help="config file, for [main] log_file and [ssh] (default: "
                        "ROOT/etc/guestagent/guestagent.conf and its drop-ins)")
    return p


def _check_userdata_parser():
    p = _subcommand_parser(
        "check-userdata",
        "Decode a user-data file the way the agent will (gzip, MIME multipart, "
        "scripts, #cloud-config) and say, part by part and key by key, what it "
        "will do, and what it will ignore or cannot accept, and why. Nothing is "
        "run or changed.",
        epilog="exit codes: 0 everything will be acted on (or is ignored by design), "
               "1 something asked for will not happen or is invalid, 2 the file cannot be "
               "read")
    p.add_argument("file", metavar="FILE", help="the user-data file ('-' for stdin)")
    p.add_argument("--config", metavar="FILE",
                   help="config file for [userdata] max_bytes (default: "
                        "/etc/guestagent/guestagent.conf where it exists)")
    p.add_argument("--instance-data", metavar="FILE",
                   help="instance data for `## template: jinja` parts (default: this "
                        "instance's /run/guestagent/instance-data-sensitive.json or "
                        "instance-data.json where readable, else an example)")
    return p


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
        commands = {"query": (_query_parser, _query), "status": (_status_parser, _status),
                    "check-image": (_check_image_parser, _check_image),
                    "check-userdata": (_check_userdata_parser, _check_userdata),
                    "clean": (_clean_parser, _clean)}
        if argv and argv[0] in commands:
            make_parser, command = commands[argv[0]]
            args = make_parser().parse_args(argv[1:])
            if not hasattr(args, "root"):
                code = command(args)
            elif not _check_root(args):
                code = 2
            elif command in (_query, _status):
                code = _on_own_files(command, args)
            else:
                code = command(args)
        else:
            args = _unit_args(argv)
            if args is None:
                parser = main_parser()
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


class _UnitArgs:
    """What argparse would make of the units' own command line."""
    once, verbose, only, root, config, boot = True, False, None, "/", None, False

    def __init__(self, stage, boot=False):
        self.stage = stage
        if boot:
            self.once, self.boot = False, True


def _unit_args(argv):
    """The units run exactly `--once --stage STAGE` (a stage unit with no
    boot process to signal) or `--boot`: read that without argparse (and
    gettext), which cost a boot tens of ms under emulation."""
    if len(argv) == 3 and argv[:2] == ["--once", "--stage"]:
        from .stages import STAGES
        if argv[2] in STAGES and STAGES[argv[2]].unit:
            return _UnitArgs(argv[2])
    if argv == ["--boot"]:
        return _UnitArgs("all", boot=True)
    return None


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
