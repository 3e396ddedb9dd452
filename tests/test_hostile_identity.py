"""Identity and privilege from untrusted names (issue 20), and tools that
cannot be confined to --root checked before they run."""

import os
import stat

import pytest

from guestagent.metadata import Metadata
from guestagent.runner import _run_step
from guestagent.steps import load

from support.step_context import StepContext

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO5j2lnT1qR7/lpXRlCfui2BILCHMsFxcyVGD4ENC2q6 a@b"


def _group_line(root, name, gid, members=""):
    with open(root / "etc/group", "a") as f:
        f.write(f"{name}:x:{gid}:{members}\n")
    with open(root / "etc/gshadow", "a") as f:
        f.write(f"{name}:!::{members}\n")


def _passwd(root):
    return {ln.split(":")[0]: ln.split(":") for ln in
            (root / "etc/passwd").read_text().splitlines() if ln}


@pytest.mark.parametrize("name,gid,members", [
    ("disk", 6, ""), ("shadow", 42, ""), ("sudo", 27, ""), ("adm", 4, "syslog"),
    ("docker", 1500, "alice"),
])
def test_a_user_named_like_a_privileged_group_does_not_get_it(root, name, gid, members):
    if name != "sudo":  # examples/root has sudo already
        _group_line(root, name, gid, members)
    cc = {"users": [{"name": name, "ssh_authorized_keys": [KEY]},
                    {"name": "alice", "ssh_authorized_keys": [KEY]}]}
    res = _run_step(StepContext(root, cloud_config=cc), load("users"))
    users = _passwd(root)
    assert name not in users or int(users[name][3]) != gid, users.get(name)
    assert res["result"] == "failed" and f"user {name}" in res["error"], res
    assert "primary group" in res["error"]
    assert "alice" in users  # the other account is still made


def test_a_left_over_group_of_the_users_own_is_joined_with_a_warning(root, caplog):
    _group_line(root, "carol", 1234)
    cc = {"users": [{"name": "carol", "ssh_authorized_keys": [KEY]}]}
    res = _run_step(StepContext(root, cloud_config=cc), load("users"))
    assert res["result"] == "changed", res
    assert _passwd(root)["carol"][3] == "1234"
    assert "already exists, with no members" in caplog.text


@pytest.mark.parametrize("value", ["2130706433", "0x7f000001", "127.1", "017700000001",
                                   "1.novalocal", "4294967295.example.org", "0X7F.1",
                                   "10.0.0.1.nip"])
def test_host_names_that_read_as_ipv4_are_refused(root, value, caplog):
    before = (root / "etc/hostname").read_text()
    md = Metadata("t", "i-1", hostname=value)
    res = _run_step(StepContext(root, metadata=md), load("hostname"))
    assert (root / "etc/hostname").read_text() == before, value
    assert res["result"] in ("skipped", "failed"), res
    assert "reads as an IPv4 address" in caplog.text, res


@pytest.mark.parametrize("value,short", [("123abc.example.org", "123abc"),
                                         ("web-1", "web-1"), ("0day.example", "0day")])
def test_names_with_digits_are_still_host_names(root, value, short):
    md = Metadata("t", "i-1", hostname=value)
    _run_step(StepContext(root, metadata=md), load("hostname"))
    assert (root / "etc/hostname").read_text().strip() == short


@pytest.mark.parametrize("wanted", [["/"], ["/home"], ["/", "/srv", "/var"], ["/boot/efi"]])
def test_user_data_growpart_devices_cannot_widen_growroot_under_root(root, tmp_path, caplog,
                                                                    wanted):
    allowed = tmp_path / "mnt"
    allowed.mkdir()
    cc = {"growpart": {"mode": "auto", "devices": wanted + [str(allowed)]}}
    ctx = StepContext(root, cloud_config=cc, conf_text=f"[growroot]\ndevices = {allowed}\n")
    res = _run_step(ctx, load("growroot"))
    said = res.get("reason", "") + res.get("error", "") + " ".join(res["changes"])
    for w in wanted:
        assert f"{w}:" not in said, res
    assert "not named in [growroot] devices" in caplog.text
    assert str(allowed) in said, res


# -- useradd -m and --prefix: the target is checked first ------------------------------

def _outside(tmp_path):
    d = tmp_path / "host-side"
    d.mkdir()
    (d / "keep").write_text("host\n")
    return d


def _state(d):
    return sorted(p.name for p in d.iterdir()), stat.S_IMODE(os.stat(d).st_mode)


@pytest.mark.parametrize("case", ["home", "useradd HOME", "var/mail", "var/log", "etc/passwd"])
def test_useradd_never_follows_an_image_link_out_of_the_root(root, tmp_path, case):
    out = _outside(tmp_path)
    if case == "home":
        os.symlink(str(out), root / "home")
    elif case == "useradd HOME":
        (root / "etc/default").mkdir()
        (root / "etc/default/useradd").write_text("HOME=/srv/homes\n")
        (root / "srv").mkdir()
        os.symlink(str(out), root / "srv/homes")
    elif case == "var/mail":
        (root / "var").mkdir(exist_ok=True)
        os.symlink(str(out), root / "var/mail")
    elif case == "var/log":
        (root / "var").mkdir(exist_ok=True)
        (out / "lastlog").write_bytes(b"\0" * 292)
        os.symlink(str(out), root / "var/log")
    else:
        (out / "passwd").write_text((root / "etc/passwd").read_text())
        (root / "etc/passwd").unlink()
        os.symlink(str(out / "passwd"), root / "etc/passwd")
    before = _state(out)
    contents = {p.name: p.read_bytes() for p in out.iterdir()}
    cc = {"users": [{"name": "eve", "ssh_authorized_keys": [KEY]}]}
    res = _run_step(StepContext(root, cloud_config=cc), load("users"))
    assert _state(out) == before, res
    assert {p.name: p.read_bytes() for p in out.iterdir()} == contents
    assert res["result"] == "failed" and "outside the root" in res["error"], res
