"""Power cuts in the first seconds of an instance's life, on real boots.

The harness pulls the plug (SIGKILL to QEMU, the root disk in writeback
cache mode: what the guest flushed survives, its page cache does not) at a
moment read off the serial console, then boots the same disk again as the
same instance, and the instance must converge: the key logs in, sudo works,
ssh.service is active, the RSA and ed25519 host keys are sound and their
fingerprints are the last block any boot printed, the host name, network
file and resolv.conf are there, the root is grown; no file the agent wrote
(every ``writing`` line of every boot) is left empty or unparsable; the
user-data script ran once, or twice only where the cut boot had started it.
Then the guest is powered off cleanly and its disk checked on the host
(disk_check.py): ``e2fsck -fn`` or ``xfs_repair -n`` of the root and, on
LVM, ``vgck``.

Every cut guest boots with ``guestagent.debug`` on the kernel command line:
its console shows each step as it begins and each command and file write
as it starts, so a cut can land inside growpart, resize2fs, pvcreate,
useradd or the authorized_keys write.  A normal boot's console stays as it is.

Three kinds of boots:

- issue 29's first four cuts (``MATRIX``, ``cut-users`` to ``cut-growroot``),
  three of which locked everyone out before the done markers waited for the
  disk (see guestagent/state/done_markers.py and docs/e2e.md);
- the sweep's two cuts that left damage, booted again as regression tests:
  just after XFS grew (``cut-after-xfs-growfs``, seed 12 xfs-cut1) and
  after apt-get update, its lists made NULs (``cut-after-apt-update``,
  seed 11 xfs-cut4);
- CI's sample of the riskiest cuts (``MATRIX``, ``cut-mid-*``): mid-resize2fs,
  between the new partition and pvcreate (LVM spacer layout),
  mid-authorized_keys, mid-useradd;
- the sweep, only with ``tests/e2e/run --power-loss [--cuts N] [--seed S]``:
  N cuts over the ext4, XFS and LVM spacer layouts in turn, each at one of
  the layout's anchors (taken in turn, in an order the seed shuffles) plus a
  delay of 0-2 s drawn from the seed; its instances also carry user-data (a
  package from a repository the test serves, a script that counts its runs).
  One line per cut in /var/tmp/guestagent-e2e-logs/power-loss.txt.

Each cut costs two boots (3-5 minutes under TCG) and a power-off.
"""

import json
import os
import random
import re
import shlex
import uuid
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import disk_check
import disk_damage
import pytest
from checks import (
    DISK,
    all_steps,
    check_host_keys,
    check_no_failed_units,
    check_root_grown,
    check_sudo,
    status,
    write_instance,
)

import harness
from support.aptrepo import make_repo, served_in_netns

pytestmark = [pytest.mark.e2e, pytest.mark.root]

HOSTNAME = "cut-guest"
DNS = ["192.0.2.31", "192.0.2.32"]
DEBUG = "guestagent.debug"  # the console shows steps, commands and writes as they start
# the layouts cut: build-image options of each
LAYOUTS = {"ext4": {}, "xfs": {"fs": "xfs"}, "lvm": {"layout": "lvm-spacer"}}

# name -> the console line (regex) and the seconds after it that QEMU is killed
MATRIX = {
    "cut-users": dict(image={}, ci=False, line=r"guestagent: users: created user", delay=0.05),
    "cut-hostname": dict(image={}, ci=False, line=r"guestagent: hostname: set the host name",
                         delay=0.8),
    # in CI until the sample below: mid-resize2fs lands at the same moment
    # of the boot (growroot beside hostkeys, the RSA key being made), and
    # mid-useradd and mid-authorized_keys just before hostkeys
    "cut-hostkeys": dict(image={}, ci=False,
                         line=r"guestagent: hostkeys: removed the image's \d+ host key files",
                         delay=1.0),
    "cut-growroot": dict(image={}, ci=False, line=r"guestagent: growroot: grew partition",
                         delay=0.0),
    # CI's sample (issue 29): the riskiest moments, inside the tools
    "cut-mid-resize2fs": dict(image={}, ci=True, line=r"guestagent: running: resize2fs ",
                              delay=0.3),
    "cut-mid-newpart-pvcreate": dict(image=LAYOUTS["lvm"], ci=True,
                                     line=r"guestagent: running: parted -s \S+ set \d+ lvm on",
                                     delay=0.0),
    "cut-mid-authorized-keys": dict(
        image={}, ci=True, line=r"guestagent: writing /home/debian/\.ssh/authorized_keys",
        delay=0.0),
    "cut-mid-useradd": dict(image={}, ci=True, line=r"guestagent: running: useradd ",
                            delay=0.1),
    # the sweep's seed 12 xfs-cut1 (docs/e2e.md): a cut while the growfs was
    # only in XFS's log left the next boot's replay with "imap claims in-use
    # inode ... is free"; growroot now settles a grown XFS in place at once
    # (the sweep's own moment and user-data; the damage did not come back
    # on every repeat, so tests/test_growroot.py's in-place check is the one
    # that tells the fix from its absence)
    "cut-after-xfs-growfs": dict(image=LAYOUTS["xfs"], ci=False,
                                 line=r"guestagent: running: xfs_growfs /", delay=1.12,
                                 user_data=True),
    # the sweep's seed 11 xfs-cut4: a cut after apt-get update left the
    # package lists full of NULs and apt refused every install after it;
    # repeated, the page cache's luck differs, so the damage is made certain
    # (disk_damage.py) between the cut and the next boot
    "cut-after-apt-update": dict(image={}, ci=False, line=r"guestagent: apt-get exited 0",
                                 delay=0.0, user_data=True,
                                 damage=["/var/lib/apt/lists/*_*"],
                                 # what the step that meets the damage says of it
                                 said=r"guestagent: packages: apt could not read its "
                                      r"package lists.*removed \d+ list file"),
}

# The sweep's anchors: console lines of a first boot with guestagent.debug,
# in about the order it prints them; a cut lands 0-2 s after one (inside
# the tool or write it names, or in what follows it).
ANCHORS = [
    r"guestagent: new instance",                            # metadata stored
    r"guestagent: network: begins",
    r"guestagent: writing /etc/systemd/network/",           # the network files
    r"guestagent: hostname: begins",
    r"guestagent: running: useradd ",
    r"guestagent: writing /home/debian/\.ssh/authorized_keys",
    r"guestagent: writing /etc/sudoers\.d/90-guestagent-users",
    r"guestagent: running: \S*ssh-keygen -q ",              # host-key generation
    r"guestagent: writing /etc/resolv\.conf",
    r"guestagent: running: apt-get .*install",              # the package install
    r"guestagent: starting: \S*/scripts/",                  # the user-data script
    r"-----BEGIN SSH HOST KEY FINGERPRINTS",
]
# growroot's tools, per layout
GROW_ANCHORS = {
    "ext4": [r"guestagent: running: growpart /dev/vda 1",
             r"guestagent: running: resize2fs "],
    "xfs": [r"guestagent: running: growpart /dev/vda 1",
            r"guestagent: running: xfs_growfs "],
    "lvm": [r"guestagent: running: sfdisk .*--relocate",            # the backup GPT header
            r"guestagent: running: parted -s \S+ unit s mkpart",
            r"guestagent: running: parted -s \S+ set \d+ lvm on",
            r"guestagent: running: pvcreate ",
            r"guestagent: running: vgextend ",
            r"guestagent: running: lvextend ",
            r"guestagent: running: resize2fs "],
}

# the sweep's user-data: a package from the test's repository (served at
# 10.0.2.2 inside the guest's namespace) and a script that counts its runs
PACKAGE = "ga-e2e-cut"
REPO_PORT = 8080
RUNS = "/var/lib/e2e-script-runs"
CLOUD_CONFIG = f"""\
#cloud-config
apt:
  sources:
    ga-e2e:
      source: "deb [trusted=yes] http://10.0.2.2:{REPO_PORT}/ ./"
package_update: true
packages:
  - {PACKAGE}
"""
SCRIPT = f"""\
#!/bin/sh
# one line per run, with the boot it ran in; on the disk before the script ends
cat /proc/sys/kernel/random/boot_id >> {RUNS}
sync
sleep 2
"""


def user_data():
    msg = MIMEMultipart()
    msg.attach(MIMEText(CLOUD_CONFIG, "cloud-config"))
    msg.attach(MIMEText(SCRIPT, "x-shellscript"))
    return msg.as_bytes()


def _instance(e2e_dir, keys, name, with_user_data):
    """A config drive whose network_data.json names the guest's NIC (so the
    network step writes its files) and two DNS servers (resolv.conf)."""
    d = e2e_dir / name
    u = str(uuid.uuid4())
    tree = write_instance(d / "drive", u, f"{HOSTNAME}.novalocal",
                          [harness.public_key(keys["user"])],
                          user_data=user_data() if with_user_data else None, dns=DNS)
    net = tree / "openstack" / "latest" / "network_data.json"
    doc = json.loads(net.read_text())
    doc["links"] = [{"id": "tap0", "type": "phy", "ethernet_mac_address": harness.FIRST_MAC,
                     "mtu": 1500}]
    doc["networks"] = [{"id": "network0", "type": "ipv4_dhcp", "link": "tap0",
                        "network_id": "e2e"}]
    net.write_text(json.dumps(doc, indent=1))
    return d, u, harness.config_drive_iso(tree, d / "config-2.iso")


def cut_and_boot_again(image, keys, e2e_dir, name, line, delay, repo=None, damage=()):
    """A Guest whose first boot lost power ``delay`` s after ``line``, booted
    again as the same instance and logged into (the caller closes it).
    ``repo``: the sweep's apt repository; the instance then has user-data.
    ``damage``: files (globs) the cut is made to leave full of NULs."""
    d, u, iso = _instance(e2e_dir, keys, name, repo is not None)
    on_netns = None
    if repo is not None:
        on_netns = served_in_netns(repo, REPO_PORT, open(d / "repo-requests.log", "w"))
    g = harness.Guest(image, d / "vm", name, key=keys["user"], root_key=keys["debug"],
                      config_drive=iso, disk_size=DISK, instance_uuid=u,
                      disk_cache="writeback", extra_append=DEBUG, on_netns=on_netns)
    g.has_user_data = repo is not None
    try:
        g.start()
        g.cut_line = g.power_cut_when(line, delay)
        g.damaged = disk_damage.nul_fill(g.overlay, damage, e2e_dir) if damage else []
        if damage:
            print(f"[e2e] {name}: NUL-filled after the cut: {g.damaged}")
            assert g.damaged, f"nothing matched {damage} after the cut"
        g.power_on()
        g.wait_ssh()
        g.report_boot()
        g.settle()
    except BaseException:
        g.close()
        raise
    return g


def in_flight(text):
    """Where the cut boot was when its console stopped: the last step that
    began, and the commands it had started with no exit line after them
    (the cut landed inside those, give or take the console's lag), or the
    last file write it began."""
    step, running, write = None, {}, None
    for line in text.replace("\r", "").splitlines():
        m = re.search(r"guestagent: (\w+): begins", line)
        if m:
            step = m.group(1)
        m = re.search(r"guestagent: running: (\S+)(.*)", line)
        if m:
            running.setdefault(os.path.basename(m.group(1)), []).append(
                (os.path.basename(m.group(1)) + m.group(2))[:60])
            write = None
        # a process left to run on (a user script, the RSA key) logs no exit
        m = re.search(r"guestagent: starting: (\S+)", line)
        if m and m.group(1) != "sh":
            write = f"after starting {os.path.basename(m.group(1))}"
        m = re.search(r"guestagent: (\S+) exited -?\d+ in", line)
        if m and running.get(os.path.basename(m.group(1))):
            running[os.path.basename(m.group(1))].pop(0)
        m = re.search(r"guestagent: writing (\S+)", line)
        if m:
            write = f"writing {m.group(1)}"
    inside = [c for cmds in running.values() for c in cmds]
    return step, ", ".join(inside + ([write] if write else [])) or None


def cut_console(g):
    """The console of the boot the power cut ended."""
    with open(g.earlier_consoles[0], "rb") as f:
        return f.read().decode("utf-8", "replace")


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
    st = status(g)
    failed = [s for s in all_steps(st) if s.get("result") == "failed"]
    assert not failed, f"failed steps: {failed}"
    bad = [(r.get("stage"), r.get("exit_code")) for r in st["runs"] if r.get("exit_code") != 0]
    assert not bad, f"runs with a non-zero exit: {bad}"
    check_no_failed_units(g)
    return st


def check_network_and_dns(g):
    """The network file the agent wrote for the NIC, and resolv.conf."""
    text = g.ssh("cat /etc/systemd/network/10-guestagent-*.network").stdout
    assert harness.FIRST_MAC in text.lower() and "DHCP" in text, \
        f"the agent's network file does not configure the NIC: {text!r}"
    resolv = g.ssh("cat /etc/resolv.conf").stdout
    assert all(f"nameserver {a}" in resolv for a in DNS), resolv


def check_written_files(g):
    """Every file any boot's console said the agent was writing: if it is
    there, it is not empty (the markers are empty on purpose) and a
    JSON file parses.  Gone is allowed (the cut boot's host keys, a check
    file): what must be there is checked by name elsewhere."""
    paths = sorted(set(re.findall(r"guestagent: writing (/\S+)",
                                  g.console_text(every_boot=True))))
    assert paths, "no 'writing' line on the console: did the guest boot with guestagent.debug?"
    script = 'for p in "$@"; do if [ -e "$p" ]; then stat -c %s:%n "$p"; fi; done'
    out = g.ssh(f"sudo -n sh -c {shlex.quote(script)} sh "
                + " ".join(shlex.quote(p) for p in paths)).stdout
    sizes = {ln.split(":", 1)[1]: int(ln.split(":", 1)[0]) for ln in out.splitlines() if ln}
    # the done and started markers are empty on purpose
    empty = [p for p, n in sizes.items()
             if n == 0 and not re.search(r"/instances/[^/]+/(done|started)/", p)]
    assert not empty, f"files the agent wrote are empty after the cut: {empty}"
    bad = []
    for p in (p for p in sizes if p.endswith(".json")):
        try:
            json.loads(g.ssh(f"sudo -n cat {p}").stdout)
        except ValueError as e:
            bad.append(f"{p}: {e}")
    assert not bad, f"JSON files the agent wrote do not parse: {bad}"
    # the sudoers rule parses; the default user's entries are whole
    g.ssh("sudo -n visudo -c -q -f /etc/sudoers.d/90-guestagent-users")
    for db in ("passwd", "group", "shadow"):
        g.ssh(f"sudo -n getent {db} debian >/dev/null")
    return len(sizes)


def check_script_runs(g):
    """The per-instance script ran once, or twice where the cut boot had
    started it (and then in two boots)."""
    if not g.has_user_data:
        return ""
    boots = g.ssh(f"sudo -n cat {RUNS}").stdout.split()
    started = re.search(r"guestagent: starting: \S*/scripts/", cut_console(g))
    assert len(boots) == 1 or (len(boots) == 2 and started and boots[0] != boots[1]), \
        f"the script ran in boots {boots} (the cut boot started it: {bool(started)})"
    if len(boots) == 2:  # and the status of the boot that ran it again says why
        scripts = [s for s in all_steps(status(g)) if s.get("name") == "scripts"]
        assert scripts and "runs a second time" in scripts[-1].get("resumed", ""), scripts
    pkg = g.ssh(f"dpkg-query -W -f '${{Status}}' {PACKAGE}", check=False).stdout
    assert pkg == "install ok installed", f"{PACKAGE}: {pkg!r}"
    audit = g.ssh("sudo -n dpkg --audit", check=False).stdout.strip()
    assert not audit, f"dpkg --audit: {audit}"
    return f"script ran {len(boots)}x"


def check_disk_offline(g, scratch):
    """Power the guest off cleanly, then check its root disk on the host."""
    g.power_off()
    findings, said = disk_check.check_root_disk(
        g.overlay, g.image.fs, g.image.layout.startswith("lvm"), scratch)
    assert not findings, "the disk after the converged boot:\n" + "\n".join(findings)
    return said


def check_redone(g):
    """A done step found damaged after the cut says so on the console;
    only hostkeys and users check what they left."""
    text = g.console_text(every_boot=True)
    redone = re.findall(r"guestagent: (\w+): done for instance \S+ on an earlier boot, "
                        r"but (.*): doing it again", text)
    print(f"[e2e] {g.name}: steps redone after the cut: {redone or 'none'}")
    assert {name for name, _ in redone} <= {"hostkeys", "users"}, redone
    return redone


def check_after_cut(g, scratch):
    """Every check, in order; returns a summary for the record."""
    step, tool = in_flight(cut_console(g))
    print(f"[e2e] {g.name}: the cut landed in step {step}, inside {tool or 'no command'}")
    check_converged(g)
    check_network_and_dns(g)
    files = check_written_files(g)
    runs = check_script_runs(g)
    check_redone(g)
    disk = check_disk_offline(g, scratch)
    return (f"in {step or '?'} ({tool or 'between commands'}); {files} written files sound; "
            + (f"{runs}; " if runs else "") + disk)


def image_for(variant_image, plain_image, spec):
    return variant_image(**spec) if spec else plain_image


@pytest.fixture(scope="class", params=sorted(MATRIX))
def cut_guest(request, plain_image, variant_image, keys, e2e_dir):
    spec = MATRIX[request.param]
    repo = request.getfixturevalue("sweep_repo") if spec.get("user_data") else None
    g = cut_and_boot_again(image_for(variant_image, plain_image, spec["image"]), keys,
                           e2e_dir, request.param, spec["line"], spec["delay"], repo=repo,
                           damage=spec.get("damage", ()))
    g.said_after_damage = spec.get("said")
    try:  # not `with g`: entering a Guest starts it afresh
        yield g
    finally:
        g.close()


class TestPowerCut:
    def test_the_instance_converges(self, cut_guest, e2e_dir):
        if cut_guest.damaged:  # the step that meets the damage says what it did
            assert re.search(cut_guest.said_after_damage, cut_guest.console_text()), \
                f"the boot after the cut does not say {cut_guest.said_after_damage!r}"
        print(f"[e2e] {cut_guest.name}: " + check_after_cut(cut_guest, e2e_dir))


# -- the sweep (tests/e2e/run --power-loss) ------------------------------------------
def sweep_cuts(n, seed):
    """[(layout, anchor, delay)] for ``n`` cuts from ``seed``: the layouts in
    turn (ext4, xfs, lvm), and for each its anchors (the common ones and its
    growroot tools') in turn, in an order the seed shuffles, each with a
    delay of 0-2 s."""
    rng = random.Random(seed)
    orders = {}
    for layout in LAYOUTS:
        orders[layout] = ANCHORS + GROW_ANCHORS[layout]
        rng.shuffle(orders[layout])
    cuts = []
    for i in range(n):
        layout = list(LAYOUTS)[i % len(LAYOUTS)]
        order = orders[layout]
        cuts.append((layout, order[(i // len(LAYOUTS)) % len(order)],
                     round(rng.uniform(0.0, 2.0), 2)))
    return cuts


def pytest_generate_tests(metafunc):
    if "sweep_cut" in metafunc.fixturenames:
        opt = metafunc.config.getoption
        if not opt("--power-loss"):
            metafunc.parametrize("sweep_cut", [pytest.param(None, marks=pytest.mark.skip(
                reason="the power-cut sweep runs with tests/e2e/run --power-loss"))])
            return
        cuts = sweep_cuts(opt("--cuts"), opt("--seed"))
        metafunc.parametrize("sweep_cut", cuts,
                             ids=[f"{c[0]}-cut{i}" for i, c in enumerate(cuts)])


@pytest.fixture(scope="session")
def sweep_repo(e2e_dir):
    """The apt repository the sweep's user-data installs its package from."""
    return make_repo(e2e_dir / "sweep-repo", PACKAGE, "1.0", f'echo "hello from {PACKAGE}"')


def test_sweep(sweep_cut, request, plain_image, variant_image, keys, e2e_dir, sweep_repo):
    layout, anchor, delay = sweep_cut
    seed = request.config.getoption("--seed")
    name = f"sweep-{seed}-{request.node.callspec.id}"
    outcome = "converged"
    try:
        image = image_for(variant_image, plain_image, LAYOUTS[layout])
        g = cut_and_boot_again(image, keys, e2e_dir, name, anchor, delay, repo=sweep_repo)
        try:
            outcome = f"converged (SSH {g.time_to_ssh:.1f} s): " + check_after_cut(g, e2e_dir)
        finally:
            g.close()
    except BaseException as e:
        outcome = "FAILED: " + (str(e).strip().splitlines() or ["?"])[0][:300]
        raise
    finally:
        os.makedirs(harness.LOG_ROOT, exist_ok=True)
        with open(os.path.join(harness.LOG_ROOT, "power-loss.txt"), "a") as f:
            f.write(f"seed {seed} {request.node.callspec.id}: {delay:.2f} s after "
                    f"/{anchor}/: {outcome}\n")
