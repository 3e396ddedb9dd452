"""Run the user's scripts: written 0700 into a root-only directory, run one
after another as root, output to /var/log/guestagent-user-data.log and the
console, every exit code reported.

Scripts live under /var/lib/guestagent/instances/<id>/scripts/ (not /tmp,
which may be mounted noexec).  Their output goes straight into the log file,
not through a pipe, so a daemon a script starts in the background can keep
writing without holding the agent up or dying of SIGPIPE; the agent copies
what lands in the log to its own stderr (the console) while the script runs.

Under --root the scripts still run (they are the user's), on the host, as
root, with their working directory and $GUESTAGENT_ROOT set to the root.
"""

import errno
import logging
import os
import shlex
import signal
import subprocess
import sys
import time

log = logging.getLogger(__name__)

LOG_FILE = "/var/log/guestagent-user-data.log"
_POLL = 0.1
_KILL_GRACE = 3.0
_CONSOLE_MAX = 1 << 20  # per script; the rest is in the log file


class Outcome:
    """How one script ended: ``code`` is its exit status, None if it never started."""

    def __init__(self, label, code=None, seconds=0.0, problem=""):
        self.label, self.code, self.seconds, self.problem = label, code, seconds, problem

    @property
    def ok(self):
        return self.code == 0 and not self.problem

    def __str__(self):
        took = f"in {self.seconds:.2f} s"
        if self.problem:
            return f"{self.label} {self.problem}"
        if self.code < 0:
            try:
                name = signal.Signals(-self.code).name
            except ValueError:
                name = str(-self.code)
            return f"{self.label} was killed by signal {name} {took}"
        return f"{self.label} exited {self.code} {took}"


def scripts_dir(ctx):
    return ctx.state.instance_dir(ctx.metadata.instance_id) + "/scripts"


def shell_script(commands, what):
    """runcmd/bootcmd as one sh script: strings are lines, argv lists are quoted."""
    lines = ["#!/bin/sh", f"# {what} from #cloud-config, written by guestagent"]
    for c in commands:
        lines.append(c if isinstance(c, str) else " ".join(shlex.quote(a) for a in c))
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")


def run_all(ctx, scripts, step):
    """Write and run each (label, file name, content) in order; return the Outcomes.

    One failure never stops the next script.
    """
    directory = scripts_dir(ctx)
    ctx.system.makedirs(directory, mode=0o700)
    ctx.system.chmod_dir(directory, 0o700)
    timeout = ctx.config.getfloat("userdata", "script_timeout") or None
    logfd = _open_log(ctx.system)
    also = (ctx.cloud_config.get("output") or {}).get("file")
    outcomes = []
    try:
        for label, filename, content in scripts:
            begin = os.fstat(logfd).st_size
            path = f"{directory}/{filename}"
            try:
                ctx.system.write_file(path, content, mode=0o700, dir_mode=0o700)
            except OSError as e:
                outcome = Outcome(label, problem=f"could not be written to {path}: "
                                                 f"{e.strerror or e}")
            else:
                log.info("%s: running %s", step, label)
                outcome = _run_one(ctx, label, path, content, timeout, logfd, step)
            if not outcome.ok and len(scripts) > 1:  # now: the summary waits for the last
                log.warning("%s: %s", step, outcome)
            outcomes.append(outcome)
            if also:
                _copy_output(ctx.system, logfd, begin, also)
    finally:
        os.close(logfd)
    return outcomes


def report(outcomes, what):
    """(changes, problems): the scripts that ran well, and one line naming
    those that did not (none when all did)."""
    changes = [str(o) for o in outcomes if o.ok]
    failed = [str(o) for o in outcomes if not o.ok]
    if failed and len(outcomes) == 1:
        return changes, [f"{failed[0]} (output in {LOG_FILE})"]
    if failed:
        return changes, [f"{len(failed)} of {len(outcomes)} {what} failed (output in "
                         f"{LOG_FILE}): " + "; ".join(failed)]
    return changes, []


def nothing_to_run(ctx, key):
    """Why the #cloud-config list ``key`` (bootcmd, runcmd) has nothing to run,
    or '' when it has."""
    if not ctx.config.getbool("userdata", "enabled"):
        return "user-data is turned off ([userdata] enabled = no)"
    if not ctx.cloud_config.get(key):
        return f"no {key} in #cloud-config"
    return ""


def run_commands(ctx, key):
    """bootcmd / runcmd: the #cloud-config list ``key`` as one sh script
    (the step has asked `nothing_to_run` first).

    Returns `report`'s (changes, problems).
    """
    commands = ctx.cloud_config[key]
    script = shell_script(commands, key)
    label = f"{key} ({len(commands)} command{'s' if len(commands) != 1 else ''})"
    return report(run_all(ctx, [(label, key, script)], key), key)


def _open_log(system):
    # readable: each script's output is read back (pread) for its report;
    # a FIFO or link planted at the log's name is refused, never waited on
    fd = system.open_append(LOG_FILE, mode=0o600, readable=True)
    os.fchmod(fd, 0o600)  # script output may hold anything the user printed
    return fd


def _env(ctx):
    env = dict(os.environ)
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    env.setdefault("HOME", "/root")
    env["GUESTAGENT_ROOT"] = ctx.system.root
    env["INSTANCE_ID"] = ctx.metadata.instance_id.replace("\0", "")  # as cloud-init sets it
    return env


def _run_one(ctx, label, path, content, timeout, logfd, step):
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    os.write(logfd, f"=== {stamp} {step}: {label} starting\n".encode())
    start = os.fstat(logfd).st_size
    t0 = time.monotonic()
    try:
        proc = ctx.system.start([ctx.system.path(path)], stdout=logfd, stderr=logfd,
                                cwd=ctx.system.root, env=_env(ctx))
    except (OSError, ValueError, subprocess.SubprocessError) as e:
        outcome = Outcome(label, problem=f"could not be started: {_why_not(e, content)}")
        os.write(logfd, f"=== {outcome}\n".encode())
        return outcome
    copied, problem = start, ""
    deadline = t0 + timeout if timeout else None
    while True:
        try:
            proc.wait(timeout=_POLL)
            break
        except subprocess.TimeoutExpired:
            pass
        copied = _to_console(logfd, copied, start)
        if deadline and time.monotonic() > deadline:
            problem = f"timed out after {timeout:g} s and was killed"
            _kill_group(proc)
            break
    seconds = time.monotonic() - t0
    _to_console(logfd, copied, start)
    outcome = Outcome(label, proc.returncode, seconds, problem)
    os.write(logfd, f"=== {outcome}\n".encode())
    return outcome


def _copy_output(system, logfd, begin, path):
    """#cloud-config output: what this script wrote, appended to the user's file too."""
    end = os.fstat(logfd).st_size
    try:
        while begin < end:
            data = os.pread(logfd, min(end - begin, 1 << 20), begin)
            if not data:
                break
            system.append_file(path, data, mode=0o600)
            begin += len(data)
    except OSError as e:
        log.warning("cannot copy the output to %s (#cloud-config output): %s", path,
                    e.strerror or e)


def _kill_group(proc):
    """TERM, then KILL, the script and everything it started in its session."""
    for sig, wait in ((signal.SIGTERM, _KILL_GRACE), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            if sig == signal.SIGTERM:
                # the leader is gone; its children may not be
                os.killpg(proc.pid, signal.SIGKILL)
            break
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            break


def _to_console(logfd, copied, start):
    """Copy what the script wrote to the log since ``copied`` onto our stderr."""
    limit = start + _CONSOLE_MAX
    upto = min(os.fstat(logfd).st_size, limit)
    if upto <= copied:
        return copied
    data = os.pread(logfd, upto - copied, copied)
    try:
        out = sys.stderr.buffer
        out.write(data)
        if upto == limit:
            out.write(f"\n[more output in {LOG_FILE}]\n".encode())
        out.flush()
    except (AttributeError, OSError, ValueError):
        pass  # no usable console: the log file has it all
    return copied + len(data)


def _why_not(e, content):
    first = content.split(b"\n", 1)[0]
    interp = first[2:].decode("utf-8", "replace").strip().split(" ")[0] if first else ""
    if first.endswith(b"\r"):
        return ("its #! line ends in a carriage return (Windows line endings); "
                "save it with Unix line endings")
    if not isinstance(e, OSError):
        return str(e)
    if e.errno == errno.ENOENT:
        return f"interpreter {interp!r} not found"
    if e.errno == errno.EACCES:
        return "permission denied (is /var/lib mounted noexec?)"
    if e.errno == errno.ENOEXEC:
        return "not an executable format (bad #! line?)"
    return e.strerror or str(e)
