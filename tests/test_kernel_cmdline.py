"""Whose kernel command line each reader means (System.kernel_cmdline).

Under ``--root`` the agent reads the tree's own /proc/cmdline (absent in an
image tree), never the host's.  The one reader that means the host's is
growroot's ``/dev/root``: that name stands in the host's own mount table, for
the running kernel's ``root=``.

The host's command line is made to say something in a private mount
namespace (a file bound over /proc/cmdline there), so a reader that reached
for the wrong one would be seen; nothing outside the namespace changes.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

from support import EXAMPLES, REPO, agent_argv
from support.loopdisk import LoopDisk
from support.marks import needs_root

pytestmark = [needs_root, pytest.mark.root,
              pytest.mark.skipif(not shutil.which("unshare"), reason="no unshare")]

HOST_SAYS = ("root=/dev/vda1 guestagent=disabled guestagent.network=off "
             "ds=nocloud-net;s=http://192.0.2.1/ quiet")


def with_host_cmdline(tmp_path, text, argv, timeout=120):
    """Run ``argv`` where the host's /proc/cmdline reads ``text``."""
    fake = tmp_path / "host-cmdline"
    fake.write_text(text + "\n")
    res = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                          'mount --bind "$0" /proc/cmdline && exec "$@"', str(fake)]
                         + [str(a) for a in argv],
                         capture_output=True, text=True, timeout=timeout,
                         env=dict(os.environ, PYTHONPATH=REPO))
    assert res.returncode in (0, 1), res.stderr
    return res


def python(script):
    return [sys.executable, "-c", script]


def test_the_namespace_shows_the_host_its_own_command_line(tmp_path):
    """The premise of the tests below: inside, the host reads what was bound."""
    res = with_host_cmdline(tmp_path, HOST_SAYS, ["cat", "/proc/cmdline"])
    assert res.stdout.strip() == HOST_SAYS


def test_a_root_run_never_reads_the_hosts_command_line(tmp_path, root):
    """guestagent=disabled and guestagent.network=off on the host's line: a
    --root run of a tree without /proc/cmdline neither stands aside nor turns
    its network step off."""
    assert not (root / "proc/cmdline").exists()
    res = with_host_cmdline(tmp_path, HOST_SAYS, agent_argv() + [
        "--once", "--root", root, "--config", f"{EXAMPLES}/demo.conf"])
    assert "standing aside" not in res.stderr, res.stderr
    assert (root / "var/lib/guestagent/instance-id").exists()
    status = json.loads(subprocess.run(
        agent_argv() + ["status", "--json", "--root", str(root)], capture_output=True,
        text=True, env=dict(os.environ, PYTHONPATH=REPO), check=True).stdout)
    network = next(s for s in status["last"]["steps"] if s["name"] == "network")
    assert "command line" not in json.dumps(network), network


READERS = """
import json, sys
from guestagent.checkimage.tree import Image
from guestagent.datasources import evidence
from guestagent.system import System
tree, planted = System(sys.argv[1]), System(sys.argv[2])
print(json.dumps({
    "tree": tree.kernel_cmdline(),
    "planted": planted.kernel_cmdline(),
    "host": System("/").kernel_cmdline(),
    "tree_evidence": evidence.gather(tree),
    "planted_evidence": evidence.gather(planted),
    "image_tree": Image(tree).kernel_cmdline(),
    "image_live": Image(System("/")).kernel_cmdline(),
}))
"""


def test_each_reader_reads_the_roots_own_line(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    planted = tmp_path / "planted"
    (planted / "proc").mkdir(parents=True)
    (planted / "proc/cmdline").write_text("ds=nocloud-net;s=http://192.0.2.9/ ro\n")
    res = with_host_cmdline(tmp_path, HOST_SAYS, python(READERS) + [tree, planted])
    got = json.loads(res.stdout)
    assert got["tree"] == ""
    assert got["planted"] == "ds=nocloud-net;s=http://192.0.2.9/ ro\n"
    assert got["host"].strip() == HOST_SAYS
    assert got["tree_evidence"] == {}
    assert got["planted_evidence"] == {
        "nocloud-net": "ds=nocloud-net with a seed URL on the kernel command line"}
    # check-image judges the running kernel's line only when it checks the running system
    assert got["image_tree"] is None
    assert got["image_live"] == HOST_SAYS


DEV_ROOT = """
import sys
from guestagent.system import mount_table as mounts
from guestagent.steps.growroot import blockdev
from guestagent.system import System
fake = mounts.Mount("/", 0, 99, "btrfs", "/dev/root", set())
dev = blockdev.device_of_mount(System(sys.argv[1]), fake)
print(dev.name if dev else "none")
"""


def test_dev_root_is_the_hosts_root_even_under_a_root(tmp_path):
    """btrfs's anonymous 0:N device sends growroot to the mount source; a source
    of /dev/root is the running kernel's root=, from the host's line, whatever
    the root of the run (this tree has no /proc/cmdline at all)."""
    tree = tmp_path / "tree"
    tree.mkdir()
    with LoopDisk(tmp_path, 64, "gpt", ["size=20MiB", "size=20MiB"]) as disk:
        res = with_host_cmdline(tmp_path, f"ro root={disk.part(2)} quiet",
                                python(DEV_ROOT) + [tree])
        assert res.stdout.strip() == f"{disk.name}p2"
