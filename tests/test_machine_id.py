"""A new instance on a used disk gets a new machine-id (issue 26, part 6.2).

The agent runs for real (`guestagent --once --root TREE --only machine_id`)
against a config-drive directory whose instance id each test sets, instance
after instance on one scratch tree; the tree's /etc/machine-id is what is
looked at.
"""

import json
import os
import re
import shutil
import subprocess

import pytest

from support import EXAMPLES, REPO, agent_argv
from support.marks import needs_root

OLD = "0123456789abcdef0123456789abcdef"


class Disk:
    """A scratch root with a machine-id and the config drive that boots it."""

    def __init__(self, tmp_path, root):
        self.root = root
        self.drive = tmp_path / "configdrive"
        shutil.copytree(os.path.join(EXAMPLES, "configdrive"), self.drive)
        self.conf = tmp_path / "guestagent.conf"
        self.mid = root / "etc/machine-id"
        self.mid.write_text(OLD + "\n")
        os.chmod(self.mid, 0o444)
        self.switch = None

    def boot(self, iid, prefix=()):
        meta = self.drive / "openstack/latest/meta_data.json"
        md = json.loads(meta.read_text())
        md["uuid"] = iid
        meta.write_text(json.dumps(md))
        lines = ["[main]", "datasources = configdrive"]
        if self.switch is not None:
            lines.append(f"new_machine_id = {self.switch}")
        lines += ["[configdrive]", f"path = {self.drive}"]
        self.conf.write_text("\n".join(lines) + "\n")
        res = subprocess.run(list(prefix) + agent_argv() + [
            "--once", "--only", "machine_id", "--root", str(self.root), "--config",
            str(self.conf)], capture_output=True, text=True, timeout=120,
            env=dict(os.environ, PYTHONPATH=REPO))
        assert res.returncode == 0, res.stderr
        return res.stderr

    def machine_id(self):
        return self.mid.read_text()


@pytest.fixture
def disk(tmp_path, root):
    return Disk(tmp_path, root)


def _valid(text):
    """machine-id(5): 32 lowercase hex digits and a newline; systemd-id128
    new's v4 marks (version nibble 4, variant 10xx)."""
    assert re.fullmatch(r"[0-9a-f]{32}\n", text), text
    assert text[12] == "4" and text[16] in "89ab", text


def test_first_instance_keeps_the_id_systemd_made(disk):
    err = disk.boot("iid-a")
    assert disk.machine_id() == OLD + "\n"
    assert "the first instance on this disk" in err


def test_same_instance_again_keeps_the_id(disk):
    disk.boot("iid-a")
    disk.boot("iid-a")
    assert disk.machine_id() == OLD + "\n"


def test_new_instance_after_an_earlier_one_gets_a_new_id(disk):
    disk.boot("iid-a")
    err = disk.boot("iid-b")
    new = disk.machine_id()
    assert new != OLD + "\n"
    _valid(new)
    st = os.stat(disk.mid)
    assert (st.st_mode & 0o777, st.st_uid, st.st_gid) == (0o444, 0, 0)
    assert (f"new instance on a used disk: gave this system a new machine-id (was {OLD[:8]}..., "
            "the earlier instance's)") in err
    assert OLD not in err  # machine-id(5): not shown whole
    # a reboot of B keeps B's id; a third instance gets one of its own
    disk.boot("iid-b")
    assert disk.machine_id() == new
    disk.boot("iid-c")
    _valid(disk.machine_id())
    assert disk.machine_id() not in (new, OLD + "\n")


def test_dbus_copy_of_its_own_gets_the_same_id(disk):
    dbus = disk.root / "var/lib/dbus/machine-id"
    dbus.parent.mkdir(parents=True)
    dbus.write_text(OLD + "\n")
    os.chmod(dbus, 0o640)
    disk.boot("iid-a")
    assert dbus.read_text() == OLD + "\n"
    disk.boot("iid-b")
    assert dbus.read_text() == disk.machine_id() != OLD + "\n"
    assert os.stat(dbus).st_mode & 0o777 == 0o640


def test_dbus_symlink_stays_a_link(disk):
    dbus = disk.root / "var/lib/dbus/machine-id"
    dbus.parent.mkdir(parents=True)
    os.symlink("/etc/machine-id", dbus)
    disk.boot("iid-a")
    disk.boot("iid-b")
    assert os.readlink(dbus) == "/etc/machine-id"
    _valid(disk.machine_id())
    assert disk.machine_id() != OLD + "\n"


def test_switched_off_keeps_the_id(disk):
    disk.switch = "no"
    disk.boot("iid-a")
    err = disk.boot("iid-b")
    assert disk.machine_id() == OLD + "\n"
    assert "[main] new_machine_id = no" in err


@pytest.mark.parametrize("content", ["", "uninitialized\n"])
def test_empty_or_uninitialized_file_is_left_for_systemd(disk, content):
    disk.mid.write_text(content)
    disk.boot("iid-a")
    disk.boot("iid-b")
    assert disk.machine_id() == content


def test_symlinked_machine_id_is_not_followed(disk, tmp_path):
    outside = tmp_path / "outside-id"
    outside.write_text(OLD + "\n")
    disk.mid.unlink()
    os.symlink(str(outside), disk.mid)
    disk.boot("iid-a")
    err = disk.boot("iid-b")
    assert outside.read_text() == OLD + "\n"
    assert "is a symlink" in err


@needs_root
def test_a_bind_mounted_machine_id_is_not_written(disk, tmp_path):
    """systemd's transient /run/machine-id mounted over /etc/machine-id (a
    read-only /etc): nothing is written, through the mount or beside it."""
    run_copy = tmp_path / "run-machine-id"
    run_copy.write_text(OLD + "\n")
    disk.boot("iid-a")
    # the mount lives in a namespace of the agent's own; the host sees none
    prefix = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
              'mount --bind "$0" "$1" && shift && exec "$@"', str(run_copy), str(disk.mid)]
    err = disk.boot("iid-b", prefix=prefix)
    assert "is a mount point" in err
    assert run_copy.read_text() == OLD + "\n" == disk.machine_id()
