"""Keys belong to the instance that brought them (issue 26, part 4).

The users step on scratch roots, instance after instance on one disk:
useradd and the real authorized_keys files; fingerprints are checked
against ssh-keygen's own.
"""

import json
import logging
import os
import subprocess

import pytest

from guestagent.metadata import Metadata
from guestagent.state import State
from guestagent.steps import users
from guestagent.steps.users import key_record
from guestagent.system import System

from support.marks import needs_root
from support.step_context import StepContext, config_drive

pytestmark = [needs_root, pytest.mark.root]

CONF = "[main]\ndefault_user = debian\n"
RECORD = "var/lib/guestagent/installed-keys.json"


def _keygen(tmp_path, name, t="ed25519"):
    f = tmp_path / f"k_{name}"
    subprocess.run(["ssh-keygen", "-q", "-N", "", "-t", t, "-C", f"{name}@example", "-f",
                    str(f)], check=True)
    return (tmp_path / f"k_{name}.pub").read_text().strip()


@pytest.fixture
def keys(tmp_path):
    """Five distinct real keys: A and B (two instances' key pairs), the image
    builder's, one a person adds by hand, and one shared by A and B."""
    return {n: _keygen(tmp_path, n) for n in ("a", "b", "baked", "hand", "shared")}


def _ctx(root, iid, keys=(), conf=CONF, cloud_config=None):
    md = Metadata(source="test", instance_id=iid, public_keys=list(keys))
    return StepContext(root, md, conf_text=conf, cloud_config=cloud_config)


def _file(root, user="debian"):
    return root / ("root" if user == "root" else f"home/{user}") / ".ssh/authorized_keys"


def _lines(root, user="debian"):
    return _file(root, user).read_text().splitlines()


def _ssh_keygen_fp(tmp_path, line):
    p = tmp_path / "one.pub"
    p.write_text(line + "\n")
    out = subprocess.run(["ssh-keygen", "-lf", str(p)], capture_output=True, text=True,
                         check=True).stdout.split()
    return out[1]  # "256 SHA256:... comment (ED25519)"


def _with_baked_key(root, line):
    """The image builder put ``line`` in debian's file before any instance booted."""
    users.run(_ctx(root, "builder-never-recorded", []))  # creates the account only
    f = _file(root)
    os.makedirs(f.parent, exist_ok=True)
    f.write_text(line + "\n")
    (root / RECORD).unlink(missing_ok=True)


@pytest.mark.parametrize("t", ["ed25519", "rsa", "ecdsa"])
def test_fingerprint_is_what_ssh_keygen_prints(tmp_path, t):
    line = _keygen(tmp_path, t, t)
    fp = key_record.fingerprint(*line.split()[:2])
    assert fp == f"{line.split()[0]} {_ssh_keygen_fp(tmp_path, line)}"


def test_new_instance_drops_the_old_metadata_key_and_keeps_baked_and_hand_added(
        root, tmp_path, keys, caplog):
    _with_baked_key(root, keys["baked"])
    users.run(_ctx(root, "A", [keys["a"]]))
    assert _lines(root) == [keys["baked"], keys["a"]]
    record = json.loads((root / RECORD).read_text())
    assert record["format"] == 1
    assert [(e["account"], e["blob"], e["instance_id"], e["source"]) for e in record["keys"]] \
        == [("debian", keys["a"].split()[1], "A", "metadata")]
    assert (root / RECORD).stat().st_mode & 0o777 == 0o600
    with open(_file(root), "a") as f:
        f.write("# my own\n" + keys["hand"] + "\n")
    caplog.set_level(logging.INFO)
    changes = users.run(_ctx(root, "B", [keys["b"]])).changes
    assert _lines(root) == [keys["baked"], "# my own", keys["hand"], keys["b"]]
    fp = _ssh_keygen_fp(tmp_path, keys["a"])
    assert any(f"removed SSH key ssh-ed25519 {fp} from debian's authorized_keys" in c
               and "instance A" in c for c in changes)
    assert f"removed SSH key ssh-ed25519 {fp}" in caplog.text
    record = json.loads((root / RECORD).read_text())
    assert [(e["blob"], e["instance_id"]) for e in record["keys"]] == \
        [(keys["b"].split()[1], "B")]
    st = _file(root).stat()
    assert st.st_mode & 0o777 == 0o600 and st.st_uid != 0


def test_a_key_both_instances_list_stays_and_becomes_the_new_ones(root, keys):
    users.run(_ctx(root, "A", [keys["a"], keys["shared"]]))
    users.run(_ctx(root, "B", [keys["b"], keys["shared"]]))
    assert _lines(root) == [keys["shared"], keys["b"]]
    users.run(_ctx(root, "C", []))  # C brings no key: B's two go
    assert _lines(root) == []


def test_a_baked_key_the_metadata_also_lists_is_never_claimed(root, keys):
    _with_baked_key(root, keys["baked"])
    users.run(_ctx(root, "A", [keys["baked"], keys["a"]]))
    assert _lines(root) == [keys["baked"], keys["a"]]
    users.run(_ctx(root, "B", [keys["b"]]))
    assert _lines(root) == [keys["baked"], keys["b"]]


def test_the_same_instance_keeps_every_key(root, keys):
    users.run(_ctx(root, "A", [keys["a"], keys["shared"]]))
    # the step run again for the same instance (--only users) with fewer keys
    users.run(_ctx(root, "A", [keys["shared"]]))
    assert _lines(root) == [keys["a"], keys["shared"]]


def test_append_only_switch_keeps_the_earlier_instances_key(root, keys, caplog):
    conf = CONF + "[users]\nremove_previous_instance_keys = no\n"
    users.run(_ctx(root, "A", [keys["a"]], conf=conf))
    caplog.set_level(logging.INFO)
    users.run(_ctx(root, "B", [keys["b"]], conf=conf))
    assert _lines(root) == [keys["a"], keys["b"]]
    assert "remove_previous_instance_keys = no" in caplog.text
    # still recorded: turning the switch back on takes A's key out on the next instance
    users.run(_ctx(root, "C", [keys["b"]]))
    assert _lines(root) == [keys["b"]]


def test_no_record_from_an_older_agent_removes_nothing_and_says_so(root, keys, caplog):
    users.run(_ctx(root, "A", [keys["a"]]))
    State(System(str(root))).set_instance(Metadata(source="test", instance_id="A"))
    (root / RECORD).unlink()  # what an agent before the record left behind
    caplog.set_level(logging.INFO)
    users.run(_ctx(root, "B", [keys["b"]]))
    assert _lines(root) == [keys["a"], keys["b"]]
    assert "no record of the SSH keys earlier instances installed" in caplog.text
    assert "no key is removed" in caplog.text
    assert [e["instance_id"] for e in json.loads((root / RECORD).read_text())["keys"]] == ["B"]


def test_a_damaged_record_removes_nothing(root, keys, caplog):
    users.run(_ctx(root, "A", [keys["a"]]))
    (root / RECORD).write_text('{"format": 99, "keys": []}')
    users.run(_ctx(root, "B", [keys["b"]]))
    assert _lines(root) == [keys["a"], keys["b"]]
    assert "format 99" in caplog.text


def test_cloud_config_keys_and_roots_disable_root_copy_are_the_instances_too(root, keys):
    cc = {"ssh_authorized_keys": [keys["shared"]], "disable_root": True}
    users.run(_ctx(root, "A", [keys["a"]], cloud_config=cc))
    assert any(keys["a"].split()[1] in ln for ln in _lines(root, "root"))
    sources = {e["source"] for e in json.loads((root / RECORD).read_text())["keys"]}
    assert sources == {"metadata", "#cloud-config ssh_authorized_keys"}
    users.run(_ctx(root, "B", [keys["b"]]))
    assert _lines(root) == [keys["b"]]
    assert not any(keys["a"].split()[1] in ln or keys["shared"].split()[1] in ln
                   for ln in _lines(root, "root"))


def test_keys_of_an_account_the_new_instance_does_not_set_up_are_removed(root, keys):
    cc = {"users": ["default", {"name": "alice", "ssh_authorized_keys": [keys["a"]]}]}
    users.run(_ctx(root, "A", [], cloud_config=cc))
    assert _lines(root, "alice") == [keys["a"]]
    users.run(_ctx(root, "B", [keys["b"]]))
    assert _lines(root, "alice") == []


def test_real_agent_on_a_disk_an_earlier_instance_used(root, tmp_path, keys, run_agent):
    conf = tmp_path / "a.conf"
    for iid, key in (("A", keys["a"]), ("B", keys["b"])):
        drive = config_drive(tmp_path / f"drive-{iid}",
                             {"uuid": f"{iid * 8}-1111-2222-3333-444444444444",
                              "public_keys": {"k": key}})
        conf.write_text(f"[main]\ndatasources = configdrive\ndefault_user = debian\n"
                        f"[configdrive]\npath = {drive}\n")
        res = run_agent("--once", "--root", root, "--config", conf, "--only", "users",
                        check=True)
        if iid == "A":
            with open(_file(root), "a") as f:
                f.write(keys["hand"] + "\n")
    assert _lines(root) == [keys["hand"], keys["b"]]
    fp = _ssh_keygen_fp(tmp_path, keys["a"])
    assert f"guestagent: removed SSH key ssh-ed25519 {fp} from debian's authorized_keys " \
           f"(installed for instance AAAAAAAA-1111" in res.stderr
