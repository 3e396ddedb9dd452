"""What the command line accepts: the help, the parser of `guestagent` and of
each subcommand, and the units' own command lines read without argparse.

cli.py runs what these words ask for; argparse is imported only when a
parser is made, so a boot unit's `--once --stage STAGE` or `--boot` never
loads it.
"""

from . import __version__

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


class UnitArgs:
    """What argparse would make of the units' own command line."""
    once, verbose, only, root, config, boot = True, False, None, "/", None, False

    def __init__(self, stage, boot=False):
        self.stage = stage
        if boot:
            self.once, self.boot = False, True


def unit_args(argv):
    """The units run exactly `--once --stage STAGE` (a stage unit with no
    boot process to signal) or `--boot`: read that without argparse (and
    gettext), which cost a boot tens of ms under emulation."""
    if len(argv) == 3 and argv[:2] == ["--once", "--stage"]:
        from .stages import STAGES
        if argv[2] in STAGES and STAGES[argv[2]].unit:
            return UnitArgs(argv[2])
    if argv == ["--boot"]:
        return UnitArgs("all", boot=True)
    return None


# the parser of each `guestagent NAME` (cli.py maps NAME to what it runs)
SUBCOMMANDS = {"query": _query_parser, "status": _status_parser,
               "check-image": _check_image_parser, "check-userdata": _check_userdata_parser,
               "clean": _clean_parser}
