"""Power cuts in the first seconds of an instance's life, on real boots.

The harness pulls the plug (SIGKILL to QEMU, the root disk in writeback
cache mode: what the guest flushed survives, its page cache does not) at a
moment read off the serial console, then boots the same disk again as the
same instance, and the instance must converge: the key logs in, sudo works,
ssh.service is active, the RSA and ed25519 host keys are sound and their
fingerprints are the last block any boot printed, the host name is set and
the root is grown.

Two kinds of boots:

- the regression cuts (``MATRIX``): the four cuts of issue 29, three of which
  locked everyone out before the done markers waited for the disk (see
  guestagent/state/done_markers.py and docs/e2e.md);
- the sweep, only with ``tests/e2e/run --power-loss [--cuts N] [--seed S]``:
  N cuts, each at an anchor line of the agent's console output (taken in
  turn, in an order the seed shuffles) plus a delay of 0-2 s drawn from the
  seed; one line per cut in /var/tmp/guestagent-e2e-logs/power-loss.txt.

Each cut costs two boots (3-5 minutes under TCG).
"""

import os
import random
import re
import uuid

import pytest
from checks import (
    DISK,
    check_host_keys,
    check_no_failed_units,
    check_root_grown,
    check_status_ok,
    check_sudo,
    write_instance,
)

import harness

pytestmark = [pytest.mark.e2e, pytest.mark.root]

HOSTNAME = "cut-guest"
# name -> the console line (regex) and the seconds after it that QEMU is killed
MATRIX = {
    "cut-users": dict(image={}, ci=False, line=r"guestagent: users: created user", delay=0.05),
    "cut-hostname": dict(image={}, ci=False, line=r"guestagent: hostname: set the host name",
                         delay=0.8),
    "cut-hostkeys": dict(image={}, ci=True,
                         line=r"guestagent: hostkeys: removed the image's \d+ host key files",
                         delay=1.0),
    "cut-growroot": dict(image={}, ci=True, line=r"guestagent: growroot: grew partition",
                         delay=0.0),
}

# The sweep's anchors: lines a first boot of the default scenario prints, in
# the order it prints them; a cut lands 0-2 s after one (in the step after
# it, or in the middle of the next tool it runs).
ANCHORS = [
    r"Starting.*guestagent-local",      # random_seed, growroot's growpart/resize2fs start
    r"guestagent: new instance",        # metadata stored; growroot, network, hostname next
    r"guestagent: hostname: set the host name",   # users: useradd next
    r"guestagent: users: created user",           # authorized_keys, sudoers
    r"guestagent: users: added \d+ key",          # hostkeys: ssh-keygen next
    r"guestagent: hostkeys: removed the image",   # resolv_conf, the rest; RSA in the background
    r"guestagent: growroot: grew partition",      # resize2fs done; the RSA key still running
    r"-----BEGIN SSH HOST KEY FINGERPRINTS",      # the RSA key made; its marker next
]


def _instance(e2e_dir, keys, name):
    d = e2e_dir / name
    u = str(uuid.uuid4())
    tree = write_instance(d / "drive", u, f"{HOSTNAME}.novalocal",
                          [harness.public_key(keys["user"])])
    return d, u, harness.config_drive_iso(tree, d / "config-2.iso")


def cut_and_boot_again(image, keys, e2e_dir, name, line, delay):
    """A Guest whose first boot lost power ``delay`` s after ``line``, booted
    again as the same instance and logged into (the caller closes it)."""
    d, u, iso = _instance(e2e_dir, keys, name)
    g = harness.Guest(image, d / "vm", name, key=keys["user"], root_key=keys["debug"],
                      config_drive=iso, disk_size=DISK, instance_uuid=u,
                      disk_cache="writeback")
    try:
        g.start()
        g.power_cut_when(line, delay)
        g.power_on()
        g.wait_ssh()
        g.report_boot()
        g.settle()
    except BaseException:
        g.close()
        raise
    return g


def check_converged(g):
    """What the owner needs after the boot that followed a cut."""
    check_sudo(g)
    active = g.ssh("sudo -n systemctl is-active ssh.service", check=False).stdout.strip()
    assert active == "active", f"ssh.service is {active!r}"
    for t in ("rsa", "ed25519"):
        res = g.ssh(f"sudo -n ssh-keygen -l -f /etc/ssh/ssh_host_{t}_key", check=False)
        assert res.returncode == 0, f"the {t} host key is not sound: {res.stderr.strip()}"
    # sshd may have started before the RSA key was made (it serves it from
    # its next start): the key files and the console's block are what counts
    offered = check_host_keys(g, every_boot=True)
    assert "ssh-ed25519" in offered, f"sshd offers {sorted(offered)}"
    assert g.ssh("hostname").stdout.strip() == HOSTNAME
    check_root_grown(g)
    check_status_ok(g, final=False)
    check_no_failed_units(g)


@pytest.fixture(scope="class", params=sorted(MATRIX))
def cut_guest(request, plain_image, keys, e2e_dir):
    spec = MATRIX[request.param]
    g = cut_and_boot_again(plain_image, keys, e2e_dir, request.param, spec["line"],
                           spec["delay"])
    try:  # not `with g`: entering a Guest starts it afresh
        yield g
    finally:
        g.close()


class TestPowerCut:
    def test_the_instance_converges(self, cut_guest):
        check_converged(cut_guest)

    def test_only_the_checked_steps_are_redone(self, cut_guest):
        """A done step found damaged after the cut says so on the console;
        only hostkeys and users check what they left."""
        text = cut_guest.console_text(every_boot=True)
        redone = re.findall(r"guestagent: (\w+): done for instance \S+ on an earlier boot, "
                            r"but (.*): doing it again", text)
        print(f"[e2e] {cut_guest.name}: steps redone after the cut: {redone or 'none'}")
        assert {name for name, _ in redone} <= {"hostkeys", "users"}, redone


# -- the sweep (tests/e2e/run --power-loss) ------------------------------------------
def sweep_cuts(n, seed):
    """[(anchor, delay)] for ``n`` cuts from ``seed``: the anchors in turn,
    in an order the seed shuffles, each with a delay of 0-2 s."""
    rng = random.Random(seed)
    order = list(ANCHORS)
    rng.shuffle(order)
    return [(order[i % len(order)], round(rng.uniform(0.0, 2.0), 2)) for i in range(n)]


def pytest_generate_tests(metafunc):
    if "sweep_cut" in metafunc.fixturenames:
        opt = metafunc.config.getoption
        if not opt("--power-loss"):
            metafunc.parametrize("sweep_cut", [pytest.param(None, marks=pytest.mark.skip(
                reason="the power-cut sweep runs with tests/e2e/run --power-loss"))])
            return
        cuts = sweep_cuts(opt("--cuts"), opt("--seed"))
        metafunc.parametrize("sweep_cut", cuts, ids=[f"cut{i}" for i in range(len(cuts))])


def test_sweep(sweep_cut, request, plain_image, keys, e2e_dir):
    anchor, delay = sweep_cut
    seed = request.config.getoption("--seed")
    name = f"sweep-{seed}-{request.node.callspec.id}"
    outcome = "converged"
    try:
        g = cut_and_boot_again(plain_image, keys, e2e_dir, name, anchor, delay)
        try:
            check_converged(g)
        finally:
            g.close()
    except BaseException as e:
        outcome = "FAILED: " + (str(e).strip().splitlines() or ["?"])[0][:200]
        raise
    finally:
        os.makedirs(harness.LOG_ROOT, exist_ok=True)
        with open(os.path.join(harness.LOG_ROOT, "power-loss.txt"), "a") as f:
            f.write(f"seed {seed} {request.node.callspec.id}: {delay:.2f} s after "
                    f"/{anchor}/: {outcome}\n")
