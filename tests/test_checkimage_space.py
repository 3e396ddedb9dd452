"""check-image's root-space check, on real filesystems: a tmpfs of a given
size mounted over the image tree in a mount namespace the test makes (the
host's mounts are never touched), filled to leave a given free space."""

import json
import os
import subprocess
import sys

import pytest
from test_checkimage import debian_tree

from guestagent.checkimage import run_checks
from guestagent.checkimage.tree import Image
from guestagent.system import System

from support import REPO
from support.marks import needs_root


def _check_on_tmpfs(tmp_path, size_mib, leave_mib, inodes=None):
    """check-image's root-space finding for the tree on a tmpfs of
    ``size_mib`` filled to ``leave_mib`` MiB free; ``inodes``: the tmpfs's
    inode count, all used up after the copy."""
    src = tmp_path / "src"
    debian_tree(str(src))
    mnt = tmp_path / "image"
    mnt.mkdir()
    opts = f"size={size_mib}m" + (f",nr_inodes={inodes}" if inodes else "")
    fill = ""
    if leave_mib is not None:
        # fill the filesystem up to `leave_mib` MiB free
        fill = (f'free=$(($(stat -f -c "%a * %S" {mnt}))); '
                f'fallocate -l $((free - {leave_mib} * 1048576)) {mnt}/filler; ')
    if inodes:
        fill += (f"i=0; while true 2>/dev/null >{mnt}/inode$i; do i=$((i + 1)); done; ")
    script = (f"mount -t tmpfs -o {opts} tmpfs {mnt} && cp -a {src}/. {mnt}/ && {fill}"
              f"{sys.executable} -m guestagent check-image --root {mnt} --json")
    res = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                         capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, PYTHONPATH=REPO))
    assert res.stdout, res.stderr
    found = {d["id"]: d for d in json.loads(res.stdout)}
    return res, found["root-space"]


@needs_root
@pytest.mark.root
def test_a_root_with_room_passes(tmp_path):
    res, got = _check_on_tmpfs(tmp_path, 200, None)
    assert got["status"] == "pass", got
    assert "MiB free" in got["detail"]


@needs_root
@pytest.mark.root
def test_a_nearly_full_root_fails_naming_what_breaks(tmp_path):
    res, got = _check_on_tmpfs(tmp_path, 64, 4)
    assert got["status"] == "fail", got
    assert "/ has only 4 MiB free" in got["detail"], got
    assert "systemd-random-seed" in got["detail"] and "SSH key" in got["detail"]
    assert "leave at least 64 MiB free" in got["fix"]
    assert res.returncode == 1  # a failure fails check-image


@needs_root
@pytest.mark.root
def test_a_tight_root_warns(tmp_path):
    res, got = _check_on_tmpfs(tmp_path, 100, 40)
    assert got["status"] == "warn", got
    assert "/ has only 40 MiB free" in got["detail"], got


@needs_root
@pytest.mark.root
def test_no_free_inode_fails(tmp_path):
    res, got = _check_on_tmpfs(tmp_path, 200, None, inodes=2000)
    assert got["status"] == "fail" and "no free inode" in got["detail"], got


def test_a_tree_that_is_not_a_mounted_filesystem_is_not_measured(tmp_path):
    tree = str(tmp_path / "image")
    debian_tree(tree)
    got = {f.id: f for f in run_checks(Image(System(tree)))}["root-space"]
    assert got.status == "pass" and "not measured" in got.detail, got.detail
