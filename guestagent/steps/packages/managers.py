"""The image's package manager, found by what is installed, driven without prompts.

Looked for in this order: apt-get, dnf, yum, zypper, apk (the first one the
root has wins).  Every command runs non-interactively (apt: DEBIAN_FRONTEND=
noninteractive and --force-confold, so a changed config file keeps the
image's version; dnf/yum -y; zypper --non-interactive; apk never asks), and
is retried while another process holds the package database's lock (an
unattended upgrade at first boot is common).  Under --root the commands run
chrooted into the root, with the root's own tools and configuration.

Output goes to /var/log/guestagent-packages.log (0600); a failure is named
with the manager's own last error line.
"""

import logging
import os
import re
import time

log = logging.getLogger(__name__)

LOG_FILE = "/var/log/guestagent-packages.log"
LISTS = "/var/lib/apt/lists"
_DAMAGED_LISTS = "The package lists or status file could not be parsed or opened"
LOCK_WAIT = 300.0   # seconds to wait for another package manager to finish
LOCK_POLL = 5.0
_LOCKED = re.compile(
    r"Could not get lock|Unable to acquire the dpkg frontend lock|Unable to lock the "
    r"administration directory|is another process using it|Waiting for process with pid"
    r"|System management is locked|Unable to lock database"
    r"|Failed to obtain (the )?(transaction )?lock"
    r"|Another app is currently holding the yum lock", re.I)
_PATHS = ("/usr/bin", "/usr/sbin", "/bin", "/sbin")


class PackageError(RuntimeError):
    """A package command failed; the message carries the manager's own words."""


class Manager:
    """One package manager: how to refresh, upgrade and install with it."""

    name = ""
    version_format = "{name}={version}"
    env = {}

    def __init__(self, system, binary):
        self.system = system
        self.binary = binary  # its path inside the root

    def update(self):
        return self._run(self.update_argv(), "refresh the package lists")

    def upgrade(self):
        return self._run(self.upgrade_argv(), "upgrade the installed packages")

    def install(self, specs):
        return self._run(self.install_argv(specs), "install " + ", ".join(specs))

    def spec(self, name, version):
        return name if version is None else self.version_format.format(name=name,
                                                                          version=version)

    # -- running -------------------------------------------------------------
    def _run(self, argv, what):
        system = self.system
        if not system.live:
            argv = ["chroot", system.root] + argv
        env = dict(os.environ, LC_ALL="C.UTF-8", **self.env)
        env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            log.info("packages: %s: %s", self.name, what)
            t0 = time.monotonic()
            res = system.run(argv, env=env)
            output = (res.stdout or "") + (res.stderr or "")
            _keep_output(system, argv, res.returncode, output)
            if res.returncode == 0:
                log.debug("%s done in %.1f s", self.name, time.monotonic() - t0)
                return output
            if _LOCKED.search(output) and time.monotonic() < deadline:
                log.warning("packages: another process holds the %s lock; retrying in "
                            "%.0f s", self.name, LOCK_POLL)
                time.sleep(LOCK_POLL)
                continue
            raise PackageError(f"{self.name} could not {what} (exit {res.returncode}): "
                               f"{last_error(output)} (output in {LOG_FILE})")


class Apt(Manager):
    name = "apt-get"
    env = {"DEBIAN_FRONTEND": "noninteractive", "APT_LISTCHANGES_FRONTEND": "none",
           "NEEDRESTART_MODE": "a"}

    def _base(self):
        return ["apt-get", "--assume-yes", "--quiet",
                "--option=Dpkg::Options::=--force-confold",
                "--option=Dpkg::Options::=--force-confdef",
                # apt itself waits for dpkg's lock this long (apt >= 1.9.11)
                f"--option=DPkg::Lock::Timeout={int(LOCK_WAIT)}"]

    def update_argv(self):
        return self._base() + ["update"]

    def upgrade_argv(self):
        return self._base() + ["dist-upgrade"]

    def install_argv(self, specs):
        return self._base() + ["install", "--"] + list(specs)

    def update(self):
        """apt-get update; package lists a cut boot left damaged (apt writes
        them without fsync: after a power cut they can hold NULs) make apt
        refuse to read any list, so they are removed once and fetched again."""
        try:
            return super().update()
        except PackageError as e:
            if _DAMAGED_LISTS not in str(e) or not self._drop_lists():
                raise
            return super().update()

    def _drop_lists(self):
        gone = 0
        for name in self.system.listdir(LISTS):
            if name != "lock" and self.system.is_file(f"{LISTS}/{name}"):
                gone += bool(self.system.remove(f"{LISTS}/{name}"))
        if gone:
            log.warning("packages: apt could not read its package lists (a boot cut off "
                        "while they were written leaves them damaged): removed %d list "
                        "file(s) from %s, fetching them again", gone, LISTS)
        return gone

    def finish_interrupted(self):
        """A dpkg run cut off (the power went in the middle of an install)
        leaves its journal in /var/lib/dpkg/updates, and apt then refuses
        every install ("dpkg was interrupted, you must manually run 'dpkg
        --configure -a'"): finish it first.  Returns whether there was any."""
        journal = [n for n in self.system.listdir("/var/lib/dpkg/updates") if n.isdigit()]
        if not journal:
            return False
        self._run(["dpkg", "--force-confold", "--force-confdef", "--configure", "-a"],
                  "finish the package changes a run cut off on an earlier boot left half "
                  "done (dpkg --configure -a)")
        return True


class Dnf(Manager):
    name = "dnf"
    version_format = "{name}-{version}"

    def update_argv(self):
        return [self.name, "-y", "makecache"]

    def upgrade_argv(self):
        return [self.name, "-y", "upgrade"]

    def install_argv(self, specs):
        return [self.name, "-y", "install", "--"] + list(specs)


class Yum(Dnf):
    name = "yum"


class Zypper(Manager):
    name = "zypper"

    def update_argv(self):
        return ["zypper", "--non-interactive", "refresh"]

    def upgrade_argv(self):
        return ["zypper", "--non-interactive", "update"]

    def install_argv(self, specs):
        return ["zypper", "--non-interactive", "install", "--auto-agree-with-licenses",
                "--"] + list(specs)


class Apk(Manager):
    name = "apk"

    def update_argv(self):
        return ["apk", "update"]

    def upgrade_argv(self):
        return ["apk", "upgrade"]

    def install_argv(self, specs):
        return ["apk", "add", "--"] + list(specs)


MANAGERS = (("apt-get", Apt), ("dnf", Dnf), ("yum", Yum), ("zypper", Zypper), ("apk", Apk))


def find(system):
    """The root's package manager, or None."""
    for name, cls in MANAGERS:
        for d in _PATHS:
            path = f"{d}/{name}"
            if system.is_file(path, executable=True):
                return cls(system, path)
    return None


def find_snap(system):
    """snap, where snapd is installed in the root."""
    for d in _PATHS:
        if system.is_file(f"{d}/snap"):
            return Snap(system, f"{d}/snap")
    return None


class Snap(Manager):
    name = "snap"

    def install(self, pairs):
        """(name, version) pairs: a version is an option (--edge) or a channel."""
        out = ""
        for name, version in pairs:  # snap installs one name per call
            argv = ["snap", "install", name]
            if version:
                argv.append(version if version.startswith("--") else f"--channel={version}")
            out += self._run(argv, f"install the snap {name}")
        return out


def last_error(output):
    """The manager's own words for what went wrong: its last error line."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if ln.startswith(("E:", "Error:", "ERROR:", "error:", "Problem:", "No match")):
            return ln[:300]
    return lines[-1][:300] if lines else "no output"


def fetch_failures(output):
    """apt-get update's warnings about sources it could not reach (it still exits 0)."""
    return [ln.strip()[:200] for ln in output.splitlines()
            if ln.startswith(("W: Failed to fetch", "Err:"))]


def _keep_output(system, argv, code, output):
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    text = f"--- {stamp} {' '.join(argv)} (exit {code})\n{output}"
    if not text.endswith("\n"):
        text += "\n"
    try:
        system.append_file(LOG_FILE, text, mode=0o600)
    except OSError as e:
        log.warning("cannot write %s: %s", LOG_FILE, e)
