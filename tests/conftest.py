"""Fixtures for the whole suite (shared helpers live in tests/support/)."""

import os
import shutil
import subprocess

import pytest

from support import EXAMPLES, REPO, agent_argv


@pytest.fixture
def root(tmp_path):
    """A scratch root seeded like a small Debian system (examples/root)."""
    r = tmp_path / "root"
    shutil.copytree(os.path.join(EXAMPLES, "root"), r, symlinks=True)
    return r


@pytest.fixture
def run_agent():
    def run(*args, netns=None, timeout=120, check=False):
        argv = agent_argv() + [str(a) for a in args]
        if netns is not None:
            argv = netns.prefix() + argv
        res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                             env=dict(os.environ, PYTHONPATH=REPO))
        if check and res.returncode != 0:
            raise AssertionError(f"agent exited {res.returncode}:\n{res.stderr}")
        return res
    return run


# -- guard: the suite must never change this machine's own system ----------

_HOST_FILES = ["/etc/passwd", "/etc/shadow", "/etc/group", "/etc/hostname", "/etc/hosts",
               "/etc/resolv.conf", "/etc/sudoers", "/etc/fstab",
               "/etc/ssh/ssh_host_ed25519_key.pub", "/etc/ssh/ssh_host_rsa_key.pub",
               "/etc/ssh/sshd_config", "/usr/lib/systemd/system/ssh.service"]
# (not /usr/bin or the unit dirs as a whole: the packaging tests may apt-get
# their build tools in the middle of a run)
_HOST_DIRS = ["/etc/sudoers.d", "/etc/udev/rules.d", "/etc/lvm/backup", "/etc/lvm/archive",
              "/etc/guestagent", "/var/lib/guestagent", "/home", "/root/.ssh"]
_UNIT_DIRS = ["/usr/lib/systemd/system", "/etc/systemd/system"]
# The agent's own paths, fingerprinted all the way down: a leak into a state
# directory that already exists must fail too, not only one that creates it.
_AGENT_PATHS = ["/var/lib/guestagent", "/var/log/guestagent.log", "/run/guestagent",
                "/etc/guestagent"]


def _tree_fingerprint(top):
    """Every entry under top with its type, mode, size and content hash."""
    import hashlib
    entries = []
    if not os.path.lexists(top):
        return "absent"
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        for name in [""] + sorted(dirnames + filenames):
            path = os.path.join(dirpath, name) if name else dirpath
            if not name and dirpath != top:
                continue
            try:
                st = os.lstat(path)
            except OSError as e:
                entries.append((path, type(e).__name__))
                continue
            digest = ""
            if os.path.islink(path):
                digest = os.readlink(path)
            elif os.path.isfile(path):
                try:
                    with open(path, "rb") as fh:
                        digest = hashlib.sha256(fh.read()).hexdigest()
                except OSError as e:
                    digest = type(e).__name__
            entries.append((path, st.st_mode, st.st_size if not os.path.isdir(path) else 0,
                            digest))
    return entries


def _host_snapshot():
    import hashlib
    import socket
    snap = {"hostname": socket.gethostname()}
    for f in _HOST_FILES:
        try:
            with open(f, "rb") as fh:
                snap[f] = hashlib.sha256(fh.read()).hexdigest()
        except OSError as e:
            snap[f] = type(e).__name__
    for d in _HOST_DIRS:
        try:
            snap[d] = sorted(os.listdir(d))
        except OSError as e:
            snap[d] = type(e).__name__
    for d in _UNIT_DIRS:
        try:
            snap[d] = sorted(n for n in os.listdir(d) if n.startswith("guestagent"))
        except OSError as e:
            snap[d] = type(e).__name__
    for p in _AGENT_PATHS:
        snap["agent " + p] = _tree_fingerprint(p)
    return snap


@pytest.fixture(scope="session", autouse=True)
def host_untouched():
    """Fail the run if any test changed this machine's users, names or units."""
    before = _host_snapshot()
    yield
    after = _host_snapshot()
    changed = [k for k in before if before[k] != after[k]]
    assert not changed, f"the test run changed this machine's own files: {changed}"
