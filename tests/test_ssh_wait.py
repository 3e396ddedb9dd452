"""sshd waits for the metadata at most [main] ssh_wait seconds (issue 29, part 3).

The network stage, run as systemd runs it (a datagram socket named in
$NOTIFY_SOCKET stands in for systemd's), against the project's metadata
server at 169.254.169.254 in a network namespace the test makes:

- a service that never answers: READY=1 (sshd may start) comes at ssh_wait,
  while the search goes on; one line says why there are no keys; host keys
  are made first where the image has none; the run still ends at the
  deadline with exit 3;
- a service that answers only after ssh_wait (flapping): READY=1 at
  ssh_wait, then the keys and the user still go in, and the host keys made
  for sshd are kept as the instance's own;
- a service that answers at once: no early READY, no such line.
The real boots are tests/e2e/test_metadata_faults.py and test_flapping.py.
"""

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from guestagent import config as config_mod
from guestagent.boot import ssh_wait
from guestagent.steps.hostkeys import early
from guestagent.system import System

from support import EXAMPLES, REPO
from support.marks import needs_root
from support.netns import Netns

TREE = os.path.join(EXAMPLES, "configdrive")
KEYGEN = pytest.mark.skipif(not os.path.exists("/usr/bin/ssh-keygen"), reason="no ssh-keygen")


def _conf(tmp_path, deadline, ssh_wait):
    f = tmp_path / "agent.conf"
    # assume_cloud: as on a Nova guest (its DMI says so), the whole deadline
    f.write_text(f"[main]\ndatasources = openstack\ndeadline = {deadline}\nassume_cloud = yes\n"
                 f"ssh_wait = {ssh_wait}\ndefault_user = debian\n"
                 "[ssh]\nhost_key_types = ed25519, ecdsa\n")
    return f


class _Notify:
    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)

    def receive(self, timeout):
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(4096).decode(), time.monotonic()
        except socket.timeout:
            return None, time.monotonic()

    def close(self):
        self.sock.close()


def _start_agent(ns, root, conf, notify):
    env = dict(os.environ, PYTHONPATH=REPO, NOTIFY_SOCKET=notify.path)
    return ns.popen([sys.executable, "-m", "guestagent", "--once", "--stage", "network",
                     "--root", str(root), "--config", str(conf)], env=env,
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _status(root):
    return json.loads((root / "var/lib/guestagent/status.json").read_text())["last"]


@needs_root
@pytest.mark.root
@KEYGEN
def test_a_silent_service_lets_sshd_start_at_ssh_wait_with_new_host_keys(tmp_path, root):
    assert not list((root / "etc/ssh").glob("ssh_host_*"))  # a sealed image: no host key
    notify = _Notify(tmp_path / "notify")
    try:
        with Netns() as ns:
            ns.start_server(TREE, "--mode", "openstack", "--stall-first", "1000000",
                            "--stall", "60")
            t0 = time.monotonic()
            agent = _start_agent(ns, root, _conf(tmp_path, 8, 1.5), notify)
            message, at = notify.receive(timeout=20)
            still_running = agent.poll() is None
            keys_at_ready = sorted(p.name for p in (root / "etc/ssh").glob("ssh_host_*"))
            out, err = agent.communicate(timeout=60)
            took = time.monotonic() - t0
    finally:
        notify.close()
    assert message == "READY=1\nSTATUS=no metadata yet; sshd may start", message
    assert 1.0 <= at - t0 < 6, f"READY=1 {at - t0:.1f} s after the start"
    assert still_running, "READY=1 came only when the run ended"
    # sshd finds a whole set of host keys when it starts
    assert keys_at_ready == ["ssh_host_ecdsa_key", "ssh_host_ecdsa_key.pub",
                             "ssh_host_ed25519_key", "ssh_host_ed25519_key.pub"], keys_at_ready
    record = json.loads((root / "run/guestagent/host-keys-before-metadata").read_text())
    assert set(record) == {"ed25519", "ecdsa"}
    assert "-----BEGIN SSH HOST KEY FINGERPRINTS-----" in out
    # one line says why there are no keys, another at the deadline
    early = [ln for ln in err.splitlines() if "no metadata after" in ln]
    assert len(early) == 1, err
    assert "no SSH keys" in early[0] and "sshd starts now with new host keys" in early[0]
    assert "until the 8 s deadline" in early[0], early
    assert agent.returncode == 3, err
    assert took < 8 + 4, f"the run took {took:.1f} s with an 8 s deadline"
    assert sum("no datasource found, so no SSH keys" in ln for ln in err.splitlines()) == 1
    last = _status(root)
    assert last["exit_code"] == 3
    assert 1.0 <= last["sshd_started_before_metadata"] < 6, last


@needs_root
@pytest.mark.root
@KEYGEN
def test_metadata_after_ssh_wait_still_puts_the_keys_in(tmp_path, root):
    notify = _Notify(tmp_path / "notify")
    try:
        with Netns() as ns:
            ns.start_server(TREE, "--mode", "openstack", "--flap-for", "4")
            t0 = time.monotonic()
            agent = _start_agent(ns, root, _conf(tmp_path, 30, 1), notify)
            message, at = notify.receive(timeout=20)
            out, err = agent.communicate(timeout=60)
    finally:
        notify.close()
    assert message and message.startswith("READY=1\nSTATUS=no metadata yet"), message
    assert at - t0 < 4, f"READY=1 {at - t0:.1f} s after the start"
    assert agent.returncode == 0, err
    assert "found instance" in err
    md = json.loads(open(os.path.join(TREE, "openstack/latest/meta_data.json")).read())
    key = next(iter(md["public_keys"].values())).strip()
    assert key in (root / "home/debian/.ssh/authorized_keys").read_text()
    last = _status(root)
    assert last["sshd_started_before_metadata"] is not None
    steps = {s["name"]: s for s in last["steps"]}
    # the keys sshd started with were made on this machine in this boot: kept
    assert steps["hostkeys"]["result"] == "changed", steps["hostkeys"]
    assert steps["hostkeys"]["changes"][0].startswith("kept the host keys made in this boot")
    record = json.loads((root / "run/guestagent/host-keys-before-metadata").read_text())
    for t, pub in record.items():
        assert (root / f"etc/ssh/ssh_host_{t}_key.pub").read_text() == pub
    assert out.count("-----BEGIN SSH HOST KEY FINGERPRINTS-----") == 2  # at sshd's start, then


@needs_root
@pytest.mark.root
def test_a_service_that_answers_holds_sshd_until_the_keys_are_in(tmp_path, root):
    notify = _Notify(tmp_path / "notify")
    try:
        with Netns() as ns:
            ns.start_server(TREE, "--mode", "openstack")
            agent = _start_agent(ns, root, _conf(tmp_path, 30, 5), notify)
            out, err = agent.communicate(timeout=60)
            message, _ = notify.receive(timeout=0.1)
    finally:
        notify.close()
    assert agent.returncode == 0, err
    assert "no metadata after" not in err
    assert "sshd_started_before_metadata" not in _status(root)
    # READY=1 came (growroot in the background) only with the keys in place
    assert message is None or "no metadata" not in message, message


IMAGE_PUB = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB6vNEgBFWzkDT5oWyVgfbpLXN2ZU1vmfRG1DLGZqQXf x\n"


def _image_key(root):
    (root / "etc/ssh/ssh_host_ed25519_key").write_text(
        "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n")
    (root / "etc/ssh/ssh_host_ed25519_key.pub").write_text(IMAGE_PUB)


def test_an_instance_the_disk_knows_keeps_its_keys_for_sshd(root):
    """An instance is recorded and nothing (no DMI UUID here) says this is
    another one: sshd starts with the keys there; one sound key is enough."""
    _image_key(root)
    (root / "var/lib/guestagent").mkdir(parents=True, exist_ok=True)
    (root / "var/lib/guestagent/instance-id").write_text("i-0123\n")
    system = System(str(root))
    assert ssh_wait.new_instance(system) is False
    cfg = config_mod.load(f"{EXAMPLES}/demo.conf")
    assert early.make_for_early_sshd(system, cfg, False) == []
    assert (root / "etc/ssh/ssh_host_ed25519_key.pub").read_text() == IMAGE_PUB
    assert not (root / "run/guestagent/host-keys-before-metadata").exists()


@KEYGEN
def test_a_new_instance_gets_its_own_keys_before_sshd_starts(root):
    """No instance recorded on the disk: the metadata will ask for new keys,
    so they are made before sshd starts (the image's go), never swapped
    under a running sshd later."""
    _image_key(root)
    system = System(str(root))
    assert ssh_wait.new_instance(system) is True
    cfg = config_mod.load(f"{EXAMPLES}/demo.conf")
    made = early.make_for_early_sshd(system, cfg, True)
    assert "ed25519" in made
    assert (root / "etc/ssh/ssh_host_ed25519_key.pub").read_text() != IMAGE_PUB
    assert early.made_before_metadata(system, made) == made


@KEYGEN
def test_early_keys_changed_since_are_not_kept(root):
    """The record names keys that are no longer there (replaced by hand): the
    step makes a new set as on any new instance."""
    system = System(str(root))
    cfg = config_mod.load(f"{EXAMPLES}/demo.conf")
    made = early.make_for_early_sshd(system, cfg, False)
    assert made
    assert early.made_before_metadata(system, made) == made
    (root / f"etc/ssh/ssh_host_{made[0]}_key.pub").write_text("ssh-ed25519 AAAA changed\n")
    assert early.made_before_metadata(system, made) == []
