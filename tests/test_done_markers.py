"""A power cut must never leave a done marker ahead of what the step wrote.

The rule (guestagent/state/done_markers.py): the marker reaches the disk only after
everything the step wrote has (one syncfs, then the marker); work a step
left running counts as done only once it has ended and been synced; and on
a later boot, the steps whose loss locks people out (hostkeys, users) check
what they left and are done again where it is missing or damaged.

The ordering is proven through the System seam: a System that notes each
sync, command and marker write in order, while doing them for real.
"""

import json
import os
import re
import subprocess

import pytest

from guestagent import config as config_mod
from guestagent import runner, steps
from guestagent.state import done_markers
from guestagent.steps import hostkeys
from guestagent.steps.hostkeys import soundness
from guestagent.steps.users import sudoers
from guestagent.system import System

from support import EXAMPLES
from support.marks import needs_root

pytestmark = [needs_root, pytest.mark.root]
DEMO_CONF = f"{EXAMPLES}/demo.conf"
IID = "83679162-1378-4288-a2d4-70e13ec132aa"  # examples/configdrive's uuid
DONE = f"var/lib/guestagent/instances/{IID}/done"


class NotingSystem(System):
    """The real System, noting syncs, commands and file writes in order."""

    def __init__(self, root):
        super().__init__(root)
        self.events = []

    def sync_to_disk(self, *args, **kwargs):
        self.events.append(("sync", ""))
        return super().sync_to_disk(*args, **kwargs)

    def run(self, argv, *args, **kwargs):
        self.events.append(("run", os.path.basename(argv[0])))
        return super().run(argv, *args, **kwargs)

    def write_file(self, path, *args, **kwargs):
        self.events.append(("write", path))
        return super().write_file(path, *args, **kwargs)


def _conf(tmp_path, extra=""):
    conf = tmp_path / "a.conf"
    conf.write_text(f"[main]\ndatasources = configdrive\ndefault_user = debian\n"
                    f"[configdrive]\npath = {EXAMPLES}/configdrive\n"
                    f"[ssh]\nhost_key_types = ed25519, rsa\n{extra}")
    return conf


def _markers(events):
    return [i for i, (kind, path) in enumerate(events)
            if kind == "write" and "/done/" in path]


def test_a_host_key_marker_is_written_after_a_sync_that_follows_ssh_keygen(root, tmp_path):
    system = NotingSystem(str(root))
    cfg = config_mod.load(str(_conf(tmp_path)))
    assert runner.run(system, cfg, stage="all", only=["hostkeys"]) == 0
    ev = system.events
    (marker,) = _markers(ev)
    assert ev[marker][1].endswith("/done/hostkeys")
    last_keygen = max(i for i, (kind, what) in enumerate(ev) if what == "ssh-keygen")
    syncs = [i for i, (kind, _) in enumerate(ev) if kind == "sync"]
    assert any(last_keygen < s < marker for s in syncs), ev


def test_a_skipped_step_needs_no_sync(root, tmp_path):
    (root / "etc/ssh/sshd_config").unlink()
    (root / "etc/ssh").rmdir()  # no SSH server: hostkeys skips, writing nothing
    system = NotingSystem(str(root))
    cfg = config_mod.load(str(_conf(tmp_path)))
    assert runner.run(system, cfg, stage="all", only=["hostkeys"]) == 0
    assert (root / DONE / "hostkeys").exists()
    assert ("sync", "") not in system.events


def test_sync_to_disk_passes_over_missing_paths(root):
    # not provable without a disk to pull the plug on (the QEMU boots do that);
    # here: it runs on the root and on paths that are missing, and says nothing
    System(str(root)).sync_to_disk()
    System(str(root)).sync_to_disk(paths=("/", "/no/such/dir", "/etc"))


def _left_running_step(name, argv, log):
    """A per-instance step that starts ``argv`` and returns before it ends."""
    def run(ctx):
        log.append("ran")
        proc = ctx.system.start(argv)
        done_markers.leave_running(ctx, name, proc, "the slow job")
        return ["started the slow job"]
    return steps.Step(name, run, steps.PER_INSTANCE)


@pytest.fixture
def slow_step():
    """(log of its runs, the Lineup with only that step)."""
    def make(argv):
        log = []
        return log, steps.Lineup([_left_running_step("slowjob", argv, log)], [])
    return make


def test_work_left_running_is_marked_done_only_once_it_ended_and_synced(
        root, tmp_path, slow_step):
    out = root / "job-output"
    log, lineup = slow_step(["sh", "-c", f"sleep 1; echo made > {out}"])
    system = NotingSystem(str(root))
    seen_at_sync = []
    plain_sync = system.sync_to_disk

    def sync_and_look(*a, **kw):
        seen_at_sync.append(out.exists())
        return plain_sync(*a, **kw)
    system.sync_to_disk = sync_and_look
    cfg = config_mod.load(DEMO_CONF)
    assert runner.run(system, cfg, stage="all", lineup=lineup) == 0
    assert log == ["ran"]
    assert (root / DONE / "slowjob").exists()
    assert seen_at_sync == [True], "the marker's sync came before the job ended"
    (marker,) = _markers(system.events)
    assert system.events[marker - 1] == ("sync", "")


def test_work_left_running_that_fails_leaves_no_marker_and_the_step_runs_again(
        root, tmp_path, slow_step, run_agent):
    log, lineup = slow_step(["sh", "-c", "exit 3"])
    cfg = config_mod.load(DEMO_CONF)
    assert runner.run(System(str(root)), cfg, stage="all",
                      lineup=lineup) == runner.EXIT_STEP_FAILED
    assert not (root / DONE / "slowjob").exists()
    status = json.loads((root / "var/lib/guestagent/status.json").read_text())
    (rec,) = status["last"]["steps"]
    assert rec["result"] == "failed" and "the slow job failed (exit 3)" in rec["error"]
    assert runner.run(System(str(root)), cfg, stage="all",
                      lineup=lineup) == runner.EXIT_STEP_FAILED
    assert log == ["ran", "ran"]


def test_the_background_rsa_key_counts_only_once_it_is_made(root, tmp_path, monkeypatch):
    """hostkeys leaves the RSA key to a detached job (live systems only:
    allowed here by hand); its marker waits for the key to be on the disk."""
    monkeypatch.setattr(hostkeys, "_background_types", lambda ctx, types: ["rsa"])
    rsa = root / "etc/ssh/ssh_host_rsa_key"
    system = NotingSystem(str(root))
    rsa_at_marker = []
    plain_write = system.write_file

    def write_and_look(path, *a, **kw):
        if path.endswith("/done/hostkeys"):
            rsa_at_marker.append(rsa.exists() and rsa.stat().st_size > 0)
        return plain_write(path, *a, **kw)
    system.write_file = write_and_look
    cfg = config_mod.load(str(_conf(tmp_path)))
    assert runner.run(system, cfg, stage="all", only=["hostkeys"]) == 0
    assert rsa_at_marker == [True]
    assert soundness.public_key_problem((root / "etc/ssh/ssh_host_rsa_key.pub")
                                        .read_bytes()) == ""


# -- a later boot checks what a done step left -------------------------------------

def _block(stdout):
    m = re.search(f"{hostkeys.BEGIN}\n(.*?)\n{hostkeys.END}\n", stdout, re.S)
    return m.group(1).splitlines() if m else None


@pytest.mark.parametrize("damage", ["truncate", "delete", "zeros", "half"])
def test_a_host_key_lost_after_a_done_run_is_made_again(root, tmp_path, run_agent, damage):
    conf = _conf(tmp_path)
    args = ("--once", "--root", root, "--config", conf, "--only", "hostkeys")
    assert run_agent(*args).returncode == 0
    ssh = root / "etc/ssh"
    rsa = (ssh / "ssh_host_rsa_key").read_bytes()
    key = ssh / "ssh_host_ed25519_key"
    if damage == "truncate":  # what a power cut leaves of a file in the page cache
        key.write_bytes(b"")
    elif damage == "delete":
        key.unlink()
    elif damage == "zeros":
        key.write_bytes(b"\0" * len(key.read_bytes()))
    else:
        (ssh / "ssh_host_ed25519_key.pub").write_bytes(
            (ssh / "ssh_host_ed25519_key.pub").read_bytes()[:30])

    res = run_agent(*args)
    assert res.returncode == 0, res.stderr
    assert re.search(r"hostkeys: done for instance \S+ on an earlier boot, but "
                     r"/etc/ssh/ssh_host_ed25519_key .*: doing it again", res.stderr), res.stderr
    assert "hostkeys: made the ed25519 host key again" in res.stderr
    # the sound key stays; the block lists both
    assert (ssh / "ssh_host_rsa_key").read_bytes() == rsa
    check = subprocess.run(["ssh-keygen", "-y", "-f", str(key)], capture_output=True, text=True)
    assert check.returncode == 0 and check.stdout.startswith("ssh-ed25519 ")
    assert check.stdout.split()[1] == (ssh / "ssh_host_ed25519_key.pub").read_text().split()[1]
    assert len(_block(res.stdout)) == 2
    status = json.loads(run_agent("status", "--json", "--root", root).stdout)
    (rec,) = status["last"]["steps"]
    assert rec["result"] == "changed" and "ed25519" in rec["redone"]

    # and once repaired, the next boot leaves it alone
    res = run_agent(*args)
    assert "doing it again" not in res.stderr and _block(res.stdout) is None


def test_sound_host_keys_are_left_alone(root, tmp_path, run_agent):
    conf = _conf(tmp_path)
    args = ("--once", "--root", root, "--config", conf, "--only", "hostkeys")
    run_agent(*args, check=True)
    before = {p.name: p.read_bytes() for p in (root / "etc/ssh").glob("ssh_host_*")}
    res = run_agent(*args, check=True)
    assert "doing it again" not in res.stderr
    assert {p.name: p.read_bytes() for p in (root / "etc/ssh").glob("ssh_host_*")} == before


def test_kept_host_keys_are_not_checked_when_regeneration_is_off(root, tmp_path, run_agent):
    conf = _conf(tmp_path, "regenerate_host_keys = no\n")
    args = ("--once", "--root", root, "--config", conf, "--only", "hostkeys")
    run_agent(*args, check=True)
    res = run_agent(*args, check=True)
    assert "doing it again" not in res.stderr
    assert not list((root / "etc/ssh").glob("ssh_host_*"))


def test_lost_authorized_keys_after_a_done_run_are_installed_again(root, tmp_path, run_agent):
    args = ("--once", "--root", root, "--config", DEMO_CONF, "--only", "users")
    run_agent(*args, check=True)
    keys = root / "home/debian/.ssh/authorized_keys"
    first = keys.read_text()
    assert "demo@example" in first
    keys.write_bytes(b"")
    res = run_agent(*args, check=True)
    assert re.search(r"users: done for instance \S+ on an earlier boot, but "
                     r"/home/debian/.ssh/authorized_keys is empty or damaged: doing it again",
                     res.stderr), res.stderr
    assert keys.read_text() == first
    keys.unlink()
    res = run_agent(*args, check=True)
    assert "authorized_keys is missing: doing it again" in res.stderr
    assert keys.read_text() == first
    res = run_agent(*args, check=True)
    assert "doing it again" not in res.stderr


def test_a_damaged_sudoers_file_after_a_done_run_is_set_aside_and_written_again(
        root, tmp_path, run_agent):
    args = ("--once", "--root", root, "--config", DEMO_CONF, "--only", "users")
    run_agent(*args, check=True)
    rules = root / sudoers.SUDOERS_FILE.lstrip("/")
    first = rules.read_text()
    assert "debian ALL=(ALL) NOPASSWD:ALL" in first
    rules.write_bytes(first.encode()[:20] + b"\0" * 40)
    res = run_agent(*args, check=True)
    assert "90-guestagent-users is damaged (it holds NUL bytes): doing it again" in res.stderr
    assert rules.read_text() == first
    aside = root / "etc/sudoers.d/.90-guestagent-users.damaged"
    assert aside.read_bytes().endswith(b"\0" * 40)
    res = run_agent(*args, check=True)
    assert "doing it again" not in res.stderr


def test_status_says_which_steps_a_cut_boot_left_and_that_a_started_script_runs_again(
        root, tmp_path, run_agent):
    """A later boot of the instance runs the per-instance steps with no
    marker and says why in their status: 'not done on an earlier boot', or
    for the user's scripts, whose start is on the disk before they run,
    that what ran then runs a second time (issue 29)."""
    drive = tmp_path / "configdrive"
    import shutil
    shutil.copytree(f"{EXAMPLES}/configdrive", drive)
    (drive / "openstack/latest/user_data").write_text(
        '#!/bin/sh\necho run >> "$GUESTAGENT_ROOT/var/tmp/script-runs"\n')
    conf = tmp_path / "s.conf"
    conf.write_text(f"[main]\ndatasources = configdrive\ndefault_user = debian\n"
                    f"[configdrive]\npath = {drive}\n")
    (root / "var/tmp").mkdir(parents=True, exist_ok=True)
    args = ("--once", "--root", root, "--config", conf)

    def run_and_status():
        res = run_agent(*args)
        st = json.loads(run_agent("status", "--json", "--root", root).stdout)
        text = run_agent("status", "--root", root).stdout
        return res, {s["name"]: s for s in st["last"]["steps"]}, text

    res, first, _ = run_and_status()
    assert (root / "var/tmp/script-runs").read_text() == "run\n", res.stderr
    assert not any("resumed" in s for s in first.values()), first
    assert (root / f"var/lib/guestagent/instances/{IID}/started/scripts").exists()
    # the power went after the script started and before its marker, and
    # before write_files' marker reached the disk
    (root / DONE / "scripts").unlink()
    (root / DONE / "write_files").unlink()
    res, again, text = run_and_status()
    assert (root / "var/tmp/script-runs").read_text() == "run\nrun\n"
    assert "runs a second time" in again["scripts"]["resumed"], again["scripts"]
    assert again["write_files"]["resumed"].startswith("not done on an earlier boot"), again
    assert again["users"]["result"] == "done-before" and "resumed" not in again["users"]
    assert "scripts: started on an earlier boot of this instance" in res.stderr
    assert "resumed: started on an earlier boot" in text, text
    _, third, _ = run_and_status()
    assert not any("resumed" in s for s in third.values()), third
    assert (root / "var/tmp/script-runs").read_text() == "run\nrun\n"
