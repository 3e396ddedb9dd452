"""The hostkeys step: fresh host keys per instance, fingerprints on the console."""

import json
import os
import re
import subprocess

import pytest

from guestagent.metadata import Metadata
from guestagent.steps import Skip, hostkeys

from support.marks import needs_root
from support.step_context import StepContext, config_drive

pytestmark = [needs_root, pytest.mark.root]
FP_LINE = re.compile(r"^\d+ SHA256:[A-Za-z0-9+/]{43} root@\S+ \((RSA|ECDSA|ED25519|DSA)\)$")


def _ctx(root, conf="", hostname="vm1.novalocal"):
    md = Metadata(source="test", instance_id="i-1", hostname=hostname)
    return StepContext(root, md, conf_text=conf)


def _block(stdout):
    m = re.search(f"{hostkeys.BEGIN}\n(.*?)\n{hostkeys.END}\n", stdout, re.S)
    assert m, stdout
    return m.group(1).splitlines()


def _fingerprint(path):
    return subprocess.run(["ssh-keygen", "-lf", str(path)], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_types_from_config_then_sshd_config_then_default(root):
    assert hostkeys.key_types(_ctx(root)) == ["ed25519", "ecdsa"]  # examples' sshd_config
    d = root / "etc/ssh/sshd_config.d"
    d.mkdir()
    # sshd_config's own spellings: 'Keyword=value', quotes, a comment after the value
    (d / "10-rsa.conf").write_text("HostKey=/etc/ssh/ssh_host_rsa_key # the old type\n"
                                   "HostKey /srv/elsewhere_key\n"
                                   '#HostKey "/etc/ssh/ssh_host_dsa_key"\n'
                                   'hostkey "/etc/ssh/ssh_host_ecdsa_key"\n')
    (d / "ignored.txt").write_text("HostKey /etc/ssh/ssh_host_dsa_key\n")
    assert hostkeys.key_types(_ctx(root)) == ["ed25519", "ecdsa", "rsa"]
    conf = "[ssh]\nhost_key_types = ED25519, bogus, ed25519\n"
    assert hostkeys.key_types(_ctx(root, conf)) == ["ed25519"]
    (root / "etc/ssh/sshd_config").write_text("Port 22\n")
    (d / "10-rsa.conf").unlink()
    assert hostkeys.key_types(_ctx(root)) == ["rsa", "ecdsa", "ed25519"]


def test_old_keys_go_new_ones_come_and_fingerprints_are_printed(root, capsys):
    ssh = root / "etc/ssh"
    for name in ("ssh_host_rsa_key", "ssh_host_rsa_key.pub", "ssh_host_dsa_key",
                 "ssh_host_ed25519_key", "ssh_host_ed25519_key.pub"):
        (ssh / name).write_text("image's shared key\n")
    changes = hostkeys.run(_ctx(root, "[ssh]\nhost_key_types = rsa, ecdsa, ed25519\n")).changes
    out = capsys.readouterr().out
    names = sorted(os.listdir(ssh))
    assert names == sorted(["sshd_config"] + [f"ssh_host_{t}_key{s}" for t in
                                              ("rsa", "ecdsa", "ed25519") for s in ("", ".pub")])
    for t in ("rsa", "ecdsa", "ed25519"):
        priv = ssh / f"ssh_host_{t}_key"
        assert "image's shared key" not in priv.read_text()
        assert priv.stat().st_mode & 0o777 == 0o600 and priv.stat().st_uid == 0
    lines = _block(out)
    assert lines == [_fingerprint(ssh / f"ssh_host_{t}_key.pub")
                     for t in ("rsa", "ecdsa", "ed25519")]
    assert all(FP_LINE.match(ln) for ln in lines), lines
    assert all("root@vm1 " in ln for ln in lines)
    assert changes[0] == "removed the image's 5 host key files"
    assert re.match(r"generated new host keys \(rsa, ecdsa, ed25519\) in \d+\.\d\d s",
                    changes[1])


def test_keys_are_group_ssh_keys_where_that_group_exists(root):
    with open(root / "etc/group", "a") as f:
        f.write("ssh_keys:x:998:\n")
    hostkeys.run(_ctx(root, "[ssh]\nhost_key_types = ed25519\n"))
    st = (root / "etc/ssh/ssh_host_ed25519_key").stat()
    assert (st.st_gid, st.st_mode & 0o777) == (998, 0o640)


def test_disabled_keeps_the_keys_and_still_prints_fingerprints(root, capsys):
    subprocess.run(["ssh-keygen", "-q", "-N", "", "-t", "ed25519", "-f",
                    str(root / "etc/ssh/ssh_host_ed25519_key")], check=True)
    before = (root / "etc/ssh/ssh_host_ed25519_key").read_bytes()
    with pytest.raises(Skip, match="regenerate_host_keys = no"):
        hostkeys.run(_ctx(root, "[ssh]\nregenerate_host_keys = no\n"))
    assert (root / "etc/ssh/ssh_host_ed25519_key").read_bytes() == before
    assert _block(capsys.readouterr().out) == [
        _fingerprint(root / "etc/ssh/ssh_host_ed25519_key.pub")]


def test_no_ssh_server_in_the_image_is_a_skip(root):
    for f in (root / "etc/ssh").iterdir():
        f.unlink()
    (root / "etc/ssh").rmdir()
    with pytest.raises(Skip, match="no /etc/ssh"):
        hostkeys.run(_ctx(root))


def test_a_tree_whose_etc_ssh_links_out_is_refused(root, tmp_path):
    outside = tmp_path / "outside-ssh"
    outside.mkdir()
    (outside / "ssh_host_ed25519_key").write_text("not ours\n")
    (root / "etc/ssh/sshd_config").unlink()
    (root / "etc/ssh").rmdir()
    os.symlink(str(outside), root / "etc/ssh")
    # the same path inside the root exists too: the System seam alone would follow
    # the link there, but ssh-keygen, given a host path, would land outside
    (root / str(outside).lstrip("/")).mkdir(parents=True)
    with pytest.raises(OSError, match="outside the root"):
        hostkeys.run(_ctx(root))
    assert os.listdir(outside) == ["ssh_host_ed25519_key"]
    assert (outside / "ssh_host_ed25519_key").read_text() == "not ours\n"


def test_per_instance_with_the_real_agent(root, tmp_path, run_agent):
    meta = {"uuid": "11111111-0000-0000-0000-000000000001", "hostname": "box.novalocal"}
    drive = config_drive(tmp_path / "drive", meta)
    conf = tmp_path / "a.conf"
    conf.write_text(f"[main]\ndatasources = configdrive\ndefault_user = debian\n"
                    f"[configdrive]\npath = {drive}\n[ssh]\nhost_key_types = ed25519, rsa\n")
    key = root / "etc/ssh/ssh_host_ed25519_key"

    res = run_agent("--once", "--root", root, "--config", conf, "--only", "hostkeys")
    assert res.returncode == 0, res.stderr
    first = key.read_bytes()
    lines = _block(res.stdout)
    assert lines == [_fingerprint(f"{key}.pub"),
                     _fingerprint(root / "etc/ssh/ssh_host_rsa_key.pub")]
    assert "hostkeys: generated new host keys (ed25519, rsa)" in res.stderr

    # a reboot of the same instance keeps the keys and prints no new block
    res = run_agent("--once", "--root", root, "--config", conf, "--only", "hostkeys")
    assert res.returncode == 0, res.stderr
    assert key.read_bytes() == first
    assert hostkeys.BEGIN not in res.stdout
    status = json.loads(run_agent("status", "--json", "--root", root).stdout)
    assert status["last"]["steps"][0]["result"] == "done-before"

    # the image cloned into a new instance gets keys of its own
    meta["uuid"] = "11111111-0000-0000-0000-000000000002"
    config_drive(tmp_path / "drive", meta)
    res = run_agent("--once", "--root", root, "--config", conf, "--only", "hostkeys")
    assert res.returncode == 0, res.stderr
    assert key.read_bytes() != first
    assert _block(res.stdout) == [_fingerprint(f"{key}.pub"),
                                  _fingerprint(root / "etc/ssh/ssh_host_rsa_key.pub")]


def test_rsa_made_in_the_background_then_the_whole_block_is_printed(root, tmp_path):
    """The detached maker: key files in place, one complete block, 0600 key."""
    import shutil
    import subprocess

    from guestagent.system import System
    ssh = root / "etc/ssh"
    keygen = shutil.which("ssh-keygen")
    for t in ("ecdsa", "ed25519"):
        subprocess.run([keygen, "-q", "-N", "", "-t", t, "-f", str(ssh / f"ssh_host_{t}_key")],
                       check=True)
    out = tmp_path / "console"
    with open(out, "w") as f:
        p = hostkeys.generate_later(System(str(root)), keygen, ["rsa"], "root@bg",
                                    ["ecdsa", "ed25519", "rsa"], stdout=f)
        assert p.wait(120) == 0
    text = out.read_text()
    blocks = text.split(hostkeys.BEGIN)
    assert len(blocks) == 2 and hostkeys.END in blocks[1]
    lines = [ln for ln in blocks[1].split(hostkeys.END)[0].splitlines() if ln.strip()]
    assert lines == [_fingerprint(ssh / f"ssh_host_{t}_key.pub")
                     for t in ("ecdsa", "ed25519", "rsa")]
    assert (ssh / "ssh_host_rsa_key").stat().st_mode & 0o777 == 0o600
    assert not list(ssh.glob(".ssh_host_*"))


def test_background_rsa_only_on_a_live_system(root):
    ctx = _ctx(root)
    assert hostkeys._background_types(ctx, ["rsa", "ecdsa", "ed25519"]) == []
