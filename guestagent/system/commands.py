"""The command half of the `System` seam: every command the agent runs.

Commands always run on the host (``--root`` only moves files), so nothing
here knows about the root directory.  `System` (guestagent/system/__init__.py) is
the one object steps use; this module holds its command methods and the
errors they raise.
"""

import logging
import os
import subprocess
import time

log = logging.getLogger(__name__)

_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class Commands:
    def which(self, name):
        """Find a command on the host's PATH (commands always run on the host).

        systemd, rc.local and sudo all put the sbin directories on PATH; an
        unset PATH gets the same default.
        """
        for d in os.environ.get("PATH", _DEFAULT_PATH).split(":"):
            p = os.path.join(d, name)
            if os.path.isfile(p) and os.access(p, os.X_OK):
                return p
        return None

    def run(self, argv, input=None, timeout=None, check=False, env=None):
        """Run a command, log it, and return CompletedProcess (text output).

        ``input`` is never logged: it carries passwords (chpasswd).  Raises
        CommandMissing when there is no such command, CommandTimedOut when
        it ran past ``timeout`` seconds (it is killed), and CommandFailed
        for a non-zero exit with ``check``.
        """
        t0 = time.monotonic()
        log.debug("running: %s", " ".join(argv))
        try:
            res = subprocess.run(argv, input=input, capture_output=True, text=True,
                                 timeout=timeout, env=env, errors="replace")
        except FileNotFoundError:
            raise CommandMissing(argv[0]) from None
        except subprocess.TimeoutExpired:  # subprocess.run has killed it
            raise CommandTimedOut(argv, timeout) from None
        log.debug("%s exited %d in %.2fs", argv[0], res.returncode, time.monotonic() - t0)
        if res.returncode != 0 and hasattr(self, "root"):
            _say_when_full(self, res)
        if check and res.returncode != 0:
            raise CommandFailed(argv, res)
        return res

    def start(self, argv, stdout=None, stderr=None, cwd=None, env=None):
        """Start a command and return its Popen without waiting for it.

        For commands watched while they run (user scripts) or left to run on
        (the background host key): a session of its own, so the caller can
        signal the whole group and our exit does not take it down; stdin is
        /dev/null.  OSError from starting it reaches the caller, which can
        say why (a script's bad #! line).
        """
        log.debug("starting: %s", " ".join(argv))
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                                cwd=cwd, env=env, start_new_session=True, close_fds=True)

    def reload_service(self, units, what, restart=False):
        """Have the first running one of ``units`` read its changed
        configuration (``what``, in words: "the new DNS settings"):
        ``systemctl try-reload-or-restart``, or ``try-restart`` for a service
        whose reload does not re-read it.  Only on the live system: under
        ``--root`` none of the tree's services runs.

        Returns what it did ("reloaded ssh.service"), or '' when nothing ran
        that needed it.  A service it cannot reload keeps running with its
        old configuration until it next starts: a warning says so, and the
        step goes on (what it wrote is right, and lasts).
        """
        if not self.live:
            return ""
        tool = self.which("systemctl")
        verb, action = ("restart", "try-restart") if restart else (
            "reload", "try-reload-or-restart")
        if tool is None:
            log.warning("cannot %s %s: no systemctl; it reads %s when it next starts", verb,
                        " or ".join(units), what)
            return ""
        for unit in units:
            res = self.run([tool, "is-active", "--quiet", unit], timeout=30)
            if res.returncode == 3:  # inactive, or no such unit here
                continue
            if res.returncode == 0:
                res = self.run([tool, action, unit], timeout=60)
            if res.returncode != 0:
                log.warning("%sing %s failed (exit %d: %s); it reads %s when it next starts",
                            verb, unit, res.returncode, output_tail(res, 200) or "no message",
                            what)
                return ""
            return f"{verb}ed {unit}"
        return ""


def _say_when_full(system, res):
    """A command that failed while the root is full is told why on its last
    line: tools say "cannot lock /etc/passwd; try again later" or nothing
    at all where the cause is a full filesystem."""
    from .disk_space import command_note
    note = command_note(system)
    if note:
        if (res.stderr or "").strip():
            res.stderr = res.stderr.rstrip("\n") + " " + note + "\n"
        else:
            res.stdout = (res.stdout or "").rstrip("\n") + " " + note + "\n"


class CommandMissing(RuntimeError):
    def __init__(self, name):
        super().__init__(f"command not found: {name}")
        self.name = name


class CommandTimedOut(RuntimeError):
    """`System.run` with a ``timeout``: the command was still running when
    it ran out, and was killed; the message names it and the time."""

    def __init__(self, argv, timeout):
        super().__init__(f"{' '.join(argv[:3])} did not finish within {timeout:g} s "
                         "and was killed")
        self.timeout = timeout


class CommandFailed(RuntimeError):
    """`System.run(check=True)`: the command exited non-zero; the message names
    it, its exit code and the last line it printed (``detail``)."""

    def __init__(self, argv, res):
        self.detail = output_tail(res)
        msg = f"{' '.join(argv[:3])} failed (exit {res.returncode})"
        if self.detail:
            msg += ": " + self.detail
        super().__init__(msg)
        self.returncode = res.returncode
        self.result = res


def output_tail(res, limit=300):
    """The last line a command printed (stderr, else stdout), cut to ``limit``,
    for a message about it; '' when it printed nothing."""
    lines = (res.stderr or res.stdout or "").strip().splitlines()
    return lines[-1].strip()[:limit] if lines else ""
