import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
EXAMPLES = os.path.join(REPO, "examples")
sys.path.insert(0, HERE)


def agent_argv():
    """The installed command, run the way the units run it."""
    return [sys.executable, "-m", "guestagent"]


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


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, mounts)")
