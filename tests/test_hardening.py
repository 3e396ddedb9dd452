"""Crash safety, secrets, concurrency and missing commands, on the real agent."""

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time

import pytest

from support import EXAMPLES, REPO
from support.marks import needs_root
from support.netns import Netns

pytestmark = [needs_root, pytest.mark.root]

AGENT = [sys.executable, "-m", "guestagent"]
ENV = dict(os.environ, PYTHONPATH=REPO)
CRITICAL = ["etc/hostname", "etc/hosts", "etc/resolv.conf",
            "home/debian/.ssh/authorized_keys", "etc/sudoers.d/90-guestagent-users"]


def _drive(tmp_path, secrets=None):
    """A copy of the example config drive, with secrets planted where given."""
    drive = tmp_path / "drive"
    shutil.copytree(os.path.join(EXAMPLES, "configdrive"), drive)
    if secrets:
        meta_p = drive / "openstack/latest/meta_data.json"
        meta = json.loads(meta_p.read_text())
        meta["admin_pass"] = secrets["admin_pass"]
        meta["random_seed"] = secrets["random_seed"]
        meta_p.write_text(json.dumps(meta))
        (drive / "openstack/latest/vendor_data.json").write_text(
            json.dumps({"static": {"token": secrets["vendor"]}}))
        (drive / "openstack/latest/user_data").write_text(
            f"#!/bin/sh\n# {secrets['user_data']}\necho user-data ran\n")
    conf = tmp_path / "agent.conf"
    conf.write_text(f"[main]\ndatasources = configdrive\ndefault_user = debian\n"
                    f"[configdrive]\npath = {drive}\n")
    return conf


def _fresh_root(tmp_path, name):
    r = tmp_path / name
    shutil.copytree(os.path.join(EXAMPLES, "root"), r, symlinks=True)
    return r


def _snapshot(root):
    snap = {}
    for rel in CRITICAL + ["etc/motd.d/demo"]:
        p = root / rel
        snap[rel] = p.read_text() if p.exists() else None
    passwd = (root / "etc/passwd").read_text().splitlines()
    snap["passwd:debian"] = [ln for ln in passwd if ln.startswith("debian:")]
    snap["host keys"] = sorted(p.name for p in (root / "etc/ssh").glob("ssh_host_*"))
    state = root / "var/lib/guestagent"
    iid = (state / "instance-id").read_text().strip()
    snap["done"] = sorted(p.name for p in (state / "instances" / iid / "done").iterdir())
    return snap


def test_kill_9_at_many_points_then_rerun_equals_a_clean_run(tmp_path):
    conf = _drive(tmp_path)
    clean = _fresh_root(tmp_path, "clean")
    t0 = time.monotonic()
    subprocess.run(AGENT + ["--once", "--root", clean, "--config", conf], env=ENV,
                   check=True, capture_output=True)
    duration = time.monotonic() - t0
    expected = _snapshot(clean)
    seed = {rel: (os.path.join(EXAMPLES, "root", rel)) for rel in CRITICAL}
    final = {rel: expected[rel] for rel in CRITICAL}
    points = 14
    for i in range(points):
        root = _fresh_root(tmp_path, f"kill{i}")
        p = subprocess.Popen(AGENT + ["--once", "--root", root, "--config", conf], env=ENV,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(duration * (i + 0.5) / points)
        p.send_signal(signal.SIGKILL)
        p.wait()
        # at the moment of the kill, every critical file is old or new, never torn
        for rel in CRITICAL:
            path = root / rel
            now = path.read_text() if path.exists() else None
            before = open(seed[rel]).read() if os.path.exists(seed[rel]) else None
            assert now in (before, final[rel]) or (
                rel.endswith("authorized_keys") and now and all(
                    line in final[rel].splitlines() for line in now.splitlines())), \
                f"kill point {i}: {rel} is half-written: {now!r}"
        res = subprocess.run(AGENT + ["--once", "--root", root, "--config", conf], env=ENV,
                             capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        assert _snapshot(root) == expected, f"kill point {i} left a different end state"


def test_secrets_never_reach_logs_output_or_readable_files(tmp_path):
    secrets = {"admin_pass": "Pw-7c1f9e0a-secret", "random_seed": "Seed-55aa0b7e-secret",
               "vendor": "Vendor-3b9e1f2d-secret", "user_data": "UserData-9d8c7b6a-secret"}
    conf = _drive(tmp_path, secrets)
    root = _fresh_root(tmp_path, "root")
    outputs = []
    for argv in (["--once", "--verbose"], ["status", "--json"], ["status"],
                 ["query", "--json"], ["query", "admin_pass"], ["query", "raw"]):
        res = subprocess.run(AGENT + argv + ["--root", root] +
                             (["--config", str(conf)] if argv[0] != "status" else []),
                             env=ENV, capture_output=True, text=True)
        outputs.append(res.stdout + res.stderr)
    text = "\n".join(outputs)
    for name, value in secrets.items():
        assert value not in text, f"{name} leaked to the agent's output"
    holders = []
    for dirpath, _dirnames, filenames in os.walk(root):
        for f in filenames:
            path = os.path.join(dirpath, f)
            if os.path.islink(path):
                continue
            data = open(path, "rb").read()
            if any(v.encode() in data for v in secrets.values()):
                holders.append(path)
                st = os.stat(path)
                assert st.st_uid == 0 and stat.S_IMODE(st.st_mode) & 0o077 == 0, \
                    f"{path} holds a secret but is mode {oct(st.st_mode)}"
    assert holders, "the stored metadata should hold the secrets (root-only)"
    # and the instance data's complete copy (cloud-init's instance-data-sensitive.json),
    # root-only as checked above; the world-readable one has none
    assert all("/var/lib/guestagent/" in h or h.endswith(
        "/run/guestagent/instance-data-sensitive.json") for h in holders), holders
    public = open(os.path.join(root, "run/guestagent/instance-data.json")).read()
    assert "redacted for non-root user" in public
    shadow = (root / "etc/shadow").read_text()
    assert "debian:$6$" in shadow


def test_two_agents_at_once_wait_for_each_other(tmp_path, root):
    conf = tmp_path / "net.conf"
    conf.write_text("[main]\ndatasources = openstack\ndeadline = 30\ndefault_user = debian\n")
    with Netns() as ns:
        ns.start_server(os.path.join(EXAMPLES, "configdrive"), "--mode", "openstack",
                        "--stall-first", "1", "--stall", "2")
        argv = ns.prefix() + AGENT + ["--once", "--root", str(root), "--config", str(conf)]
        a = subprocess.Popen(argv, env=ENV, stderr=subprocess.PIPE, text=True)
        time.sleep(0.5)
        b = subprocess.Popen(argv, env=ENV, stderr=subprocess.PIPE, text=True)
        out_a, out_b = a.communicate(60)[1], b.communicate(60)[1]
    assert a.returncode == 0, out_a
    assert b.returncode == 0, out_b
    assert f"another guestagent run (pid {a.pid}" in out_b or "another guestagent run" in out_b
    keys = (root / "home/debian/.ssh/authorized_keys").read_text().splitlines()
    assert len(keys) == len(set(keys)) == 2
    status = json.loads((root / "var/lib/guestagent/status.json").read_text())
    assert status["last"]["exit_code"] == 0


def test_missing_commands_fail_their_step_in_one_line_and_the_boot_goes_on(tmp_path):
    conf = _drive(tmp_path)
    root = _fresh_root(tmp_path, "root")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("sh", "id", "env", "cat"):  # what the example user-data script needs
        os.symlink(shutil.which(tool), bindir / tool)
    env = dict(ENV, PATH=str(bindir))
    res = subprocess.run(AGENT + ["--once", "--root", root, "--config", conf], env=env,
                         capture_output=True, text=True, timeout=60)
    assert "Traceback" not in res.stderr
    assert res.returncode == 1, res.stderr
    failed = [ln for ln in res.stderr.splitlines() if " failed: " in ln]
    assert any("users failed" in ln and "useradd" in ln for ln in failed), res.stderr
    assert any("hostkeys failed" in ln and "ssh-keygen" in ln for ln in failed), res.stderr
    # the steps that need no missing tool still did their work
    assert (root / "etc/hostname").read_text().strip() == "demo"
    assert "192.0.2.53" in (root / "etc/resolv.conf").read_text()
