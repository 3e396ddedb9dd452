"""`guestagent status`: the recorded runs as an operator reads them, and
`--wait` for this boot's work (guestagent/status/wait.py) before showing them.
Every field is escaped: the file is the agent's own, but what it quotes
(instance ids, errors naming metadata values) came from outside."""

import json
import os
import sys

from ..log import escape


def status_command(args, system, config):
    """`guestagent status [--wait [--timeout S]] [--json]`: the exit code."""
    from ..state import State
    if args.timeout is not None and (not args.wait or args.timeout < 0):
        print("guestagent: --timeout takes --wait and a number of seconds >= 0",
              file=sys.stderr)
        return 2
    if args.wait:
        return _status_wait(args, system)
    newer = State(system).newer_format()
    if newer:
        print(f"guestagent: {newer}", file=sys.stderr)
    status = State(system).read_status()
    if not status:
        print("guestagent: no runs recorded yet", file=sys.stderr)
        return 3
    if args.json:
        print(json.dumps(status, indent=2, sort_keys=True))
        return 0
    _print_runs(system, status)
    last = status.get("last") or {}
    return 0 if last.get("exit_code", 0) == 0 else 1


def _status_wait(args, system):
    import time

    from ..state import STATE_DIR
    if system.live and os.geteuid() != 0 and system.exists(STATE_DIR) and not os.access(
            system.path(STATE_DIR), os.R_OK | os.X_OK):
        print(f"guestagent: status --wait needs root ({STATE_DIR} is root-only)",
              file=sys.stderr)
        return 1
    try:
        import psutil  # noqa: F401  (boot_wait finds the running agents with it)
    except ImportError:
        print("guestagent: status --wait needs psutil (Debian: python3-psutil, RHEL: "
              "python3-psutil), which is not installed", file=sys.stderr)
        return 1
    from .wait import TIMED_OUT, wait
    t0 = time.monotonic()
    outcome, status = wait(system, args.timeout)
    if args.json:
        doc = dict(status or {"runs": []})
        doc["this_boot"] = dict(outcome.as_dict(), waited=round(time.monotonic() - t0, 3))
        print(json.dumps(doc, indent=2, sort_keys=True))
        return outcome.exit_code
    if outcome.exit_code == TIMED_OUT:
        print(f"guestagent: not done after {args.timeout:g} s: {outcome.detail}",
              file=sys.stderr)
    elif outcome.state == "error":
        print(f"guestagent: {outcome.detail}", file=sys.stderr)
    elif outcome.state == "disabled":
        print(f"this boot: {outcome.detail}")
    if status and outcome.state != "disabled":
        _print_runs(system, status)
    return outcome.exit_code


def _print_runs(system, status):
    from ..boot.guard import skipped_this_boot
    from ..state import State
    if skipped_this_boot(system) and status.get("boot_id") != State(system).boot_id():
        print("this boot: the agent did not start (same instance, disks, host name, DNS "
              "and config as when it last ran); its last runs:")
    # every field is shown through _field: the file is ours, but what it
    # quotes (instance ids, errors naming metadata values) came from outside
    for run in status.get("runs", []):
        print(f"{_field(run, 'started', '?')}  stage {_field(run, 'stage')}: exit "
              f"{_field(run, 'exit_code')} in {_seconds(run.get('duration'))} s")
        if run.get("instance_id"):
            new = " (new instance)" if run.get("new_instance") is True else ""
            print(f"  instance {_field(run, 'instance_id')}{new} from {_field(run, 'source')}")
        if run.get("message"):
            print(f"  {_field(run, 'message')}")
        if run.get("sshd_started_before_metadata") is not None:
            print(f"  sshd started {_field(run, 'sshd_started_before_metadata')} s into the "
                  f"run, before any metadata ([main] ssh_wait)")
        asked = run.get("metadata_requests")
        if isinstance(asked, dict) and asked.get("requests"):
            retried = asked.get("retried") if isinstance(asked.get("retried"), dict) else {}
            why = ", ".join(f"{escape(str(k))} x{escape(str(v))}" for k, v in retried.items())
            print(f"  metadata requests: {_field(asked, 'requests')}, retried "
                  f"{_field(asked, 'retries', 0)}" + (f" ({why})" if why else ""))
        steps = run.get("steps")
        for s in steps if isinstance(steps, list) else []:
            if not isinstance(s, dict):
                continue
            changes = s.get("changes")
            extra = s.get("error") or s.get("reason") or (
                "; ".join(str(c) for c in changes) if isinstance(changes, list) else "")
            print(f"  {_field(s, 'name', '?'):<16} {_field(s, 'result', '?'):<12} "
                  f"{_seconds(s.get('duration')):>6} s  {escape(str(extra))}")
            if s.get("error") and isinstance(changes, list) and changes:
                # a step that failed part way: what it did change is read first
                print(f"{'':42}changed: " + escape("; ".join(str(c) for c in changes)))
            # why a per-instance step ran on a later boot (a power cut)
            for why in ("redone", "resumed"):
                if s.get(why):
                    print(f"  {'':<16} {why}: {_field(s, why)}")
        warnings = run.get("warnings")
        for w in warnings if isinstance(warnings, list) else []:
            print(f"  warning: {escape(str(w))}")


def _field(record, key, default=""):
    value = record.get(key, default)
    return escape(value if isinstance(value, str) else json.dumps(value))


def _seconds(value):
    return f"{value:.2f}" if isinstance(value, (int, float)) and not isinstance(
        value, bool) else "?"
