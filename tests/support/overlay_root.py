"""Run the agent against a writable copy of this machine's own Debian system.

An overlay of / (lower) and a scratch upper directory, mounted in a private
mount namespace (`unshare -m`) and a network namespace with nothing in it
(`unshare -n`), so apt-get really runs, chrooted into a complete Debian
tree, while every write lands in the upper directory and this machine's
own system is never touched.  Debian's own mirrors are unreachable there,
as in the boot tests.
"""

import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def available():
    return (os.geteuid() == 0 and shutil.which("unshare") is not None
            and shutil.which("apt-get") is not None and _has_overlay())


def _has_overlay():
    try:
        with open("/proc/filesystems") as f:
            return any(line.split()[-1] == "overlay" for line in f if line.strip())
    except OSError:
        return False


class OverlayRoot:
    """``upper`` holds what the run changed; ``merged`` is the root it saw."""

    def __init__(self, workdir):
        self.dir = str(workdir)
        self.upper = os.path.join(self.dir, "upper")
        self.work = os.path.join(self.dir, "work")
        self.merged = os.path.join(self.dir, "merged")
        for d in (self.upper, self.work, self.merged):
            os.makedirs(d, exist_ok=True)
        self.binds = []   # (host dir, path inside the root)

    def bind(self, host_dir, inside):
        """Show ``host_dir`` at ``inside`` in the merged root (read-write)."""
        os.makedirs(os.path.join(self.upper, inside.lstrip("/")), exist_ok=True)
        self.binds.append((str(host_dir), inside))

    def run(self, shell, timeout=600, env=None):
        """Run ``shell`` (sh -c) inside the namespaces with $ROOT mounted."""
        m = self.merged
        setup = [f"mount -t overlay overlay -o lowerdir=/,upperdir={self.upper},"
                 f"workdir={self.work} {m}",
                 f"mount --rbind /dev {m}/dev", f"mount --bind /proc {m}/proc",
                 f"mount -t tmpfs tmpfs {m}/run", f"mount -t tmpfs tmpfs {m}/tmp",
                 "ip link set lo up"]
        setup += [f"mount --bind {h} {m}{i}" for h, i in self.binds]
        script = "set -e\n" + "\n".join(setup) + f"\nexport ROOT={m}\n" + shell
        return subprocess.run(["unshare", "-m", "-n", "--propagation", "private", "sh", "-c",
                               script], capture_output=True, text=True, timeout=timeout,
                              env=dict(os.environ, **(env or {})))

    def agent(self, *args):
        """The command line of the agent, for use inside ``run``."""
        return " ".join([sys.executable, "-m", "guestagent"]
                        + [_q(str(a)) for a in args])

    def changed(self, path):
        """The file as the run left it (in the upper directory), or None."""
        p = os.path.join(self.upper, path.lstrip("/"))
        return p if os.path.lexists(p) else None


def _q(s):
    import shlex
    return shlex.quote(s)


PYTHONPATH = REPO
