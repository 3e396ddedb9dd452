"""`guestagent clean` and check-image's instance-leftovers (issue 26, parts 2, 3).

A scratch root is configured by the real agent (`--once --root`, config
drive with a key and network_data.json, NICs in the root's /sys) as build
instance A, with the other leftovers a build instance has (machine-id,
leases, rotated logs) and bystanders that must never change.  Then the real
command runs against it, and every path of the tree is compared before and
after: the changes must be exactly the ones asked for.
"""

import json
import os
import re
import stat
import subprocess

import pytest

from guestagent.checkimage import apply_fixes, run_checks
from guestagent.checkimage.tree import Image
from guestagent.system import System

from support.marks import needs_root
from support.network import make_nics, nova_doc
from support.step_context import config_drive

pytestmark = [needs_root, pytest.mark.root]

IMAGE_INTERFACES = ("source /etc/network/interfaces.d/*\n\nauto lo\niface lo inet loopback\n\n"
                    "allow-hotplug eth0\niface eth0 inet dhcp\n")
MACHINE_ID = "0123456789abcdef0123456789abcdef\n"
STATE = "var/lib/guestagent"
LEASES = ["var/lib/dhcp/dhclient.eth0.leases", "var/lib/dhclient/dhclient--eth0.lease",
          "var/lib/NetworkManager/internal-1b2c-eth0.lease", "var/lib/dhcpcd/eth0.lease",
          "var/lib/dhcpcd/duid"]
LOGS = ["var/log/guestagent.log", "var/log/guestagent.log.1", "var/log/guestagent.log.2.gz",
        "var/log/guestagent-user-data.log", "var/log/guestagent-packages.log-20261207"]
# never touched, whatever is asked
BYSTANDERS = {
    "etc/ssh/sshd_config": None,  # from examples/root
    "etc/ssh/ssh_known_hosts": "host ssh-ed25519 AAAA\n",
    "etc/network/interfaces.d/60-image-extra": "iface eth7 inet dhcp\n",
    "etc/systemd/network/80-dhcp.network": "[Match]\nName=en*\n[Network]\nDHCP=yes\n",
    "var/lib/NetworkManager/NetworkManager.state": "[main]\nNetworkingEnabled=true\n",
    "var/lib/dhcp/dhcpd.conf.sample": "# not a lease\n",
    "var/lib/dbus/README": "x\n",
    "var/log/syslog": "boot\n",
    "var/log/guestagent.logger": "not ours\n",
    "etc/guestagent/guestagent.conf": "[users]\nsudo = yes\n",
}


def _keygen(tmp_path, name):
    f = tmp_path / f"k_{name}"
    subprocess.run(["ssh-keygen", "-q", "-N", "", "-t", "ed25519", "-C", f"{name}@example",
                    "-f", str(f)], check=True)
    return (tmp_path / f"k_{name}.pub").read_text().strip()


@pytest.fixture
def keys(tmp_path):
    return {n: _keygen(tmp_path, n) for n in ("a", "b", "baked", "hand")}


def _agent_conf(tmp_path, drive, name):
    conf = tmp_path / f"{name}.conf"
    conf.write_text(f"[main]\ndatasources = configdrive\ndefault_user = debian\n"
                    f"[configdrive]\npath = {drive}\n[network]\nrenderer = ifupdown\n")
    return conf


def _boot(run_agent, root, tmp_path, name, key, mac):
    """What instance ``name`` leaves: the real agent's users, network, hostkeys steps."""
    make_nics(root, {"eth0": mac})
    doc = nova_doc("static-v4-v6")
    doc["links"][0]["ethernet_mac_address"] = mac
    drive = config_drive(tmp_path / f"drive-{name}",
                         {"uuid": f"{name * 8}-0000-4000-8000-000000000001",
                          "public_keys": {"k": key}}, network_data=doc)
    return run_agent("--once", "--root", root, "--config", _agent_conf(tmp_path, drive, name),
                     "--only", "users,network,hostkeys", check=True)


@pytest.fixture
def used(root, tmp_path, keys, run_agent):
    """A tree build instance A configured and left as it was."""
    (root / "etc/network/interfaces.d").mkdir(parents=True)
    (root / "etc/network/interfaces").write_text(IMAGE_INTERFACES)
    for rel, text in BYSTANDERS.items():
        if text is not None:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)
    subprocess.run(["useradd", "--prefix", str(root), "-m", "-U", "-s", "/bin/bash",
                    "debian"], check=True)
    home = root / "home/debian/.ssh"
    home.mkdir(mode=0o700)
    (home / "authorized_keys").write_text(keys["baked"] + "\n")  # the image builder's
    _boot(run_agent, root, tmp_path, "a", keys["a"], "fa:16:3e:11:22:33")
    with open(home / "authorized_keys", "a") as f:
        f.write(keys["hand"] + "\n")  # someone logged in and added theirs
    (root / "etc/machine-id").write_text(MACHINE_ID)
    os.chmod(root / "etc/machine-id", 0o444)
    (root / "var/lib/dbus").mkdir(parents=True, exist_ok=True)
    (root / "var/lib/dbus/machine-id").write_text(MACHINE_ID)
    for rel in LEASES + LOGS[1:]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("lease or log of instance a\n")
    (root / STATE / "unchanged.sha256").write_text("x  etc/hostname\n")
    return root


def snapshot(root):
    """path -> (kind, content or link target, mode) for every path under root."""
    out = {}
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(p), 0)
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", None, stat.S_IMODE(st.st_mode))
            else:
                with open(p, "rb") as f:
                    out[rel] = ("file", f.read(), stat.S_IMODE(st.st_mode))
    return out


def changed(before, after):
    return {p for p in set(before) | set(after) if before.get(p) != after.get(p)}


def _clean(run_agent, root, *flags):
    return run_agent("clean", "--root", root, *flags)


def _instance_dir(before):
    (inst,) = {p.split("/")[4] for p in before if p.startswith(f"{STATE}/instances/")}
    return f"{STATE}/instances/{inst}"


def _under(paths, top):
    return {p for p in paths if p == top or p.startswith(top + "/")}


def _expected(root, before, flag):
    """The paths ``clean --FLAG`` may change, from the tree itself."""
    inst = _instance_dir(before)
    host_keys = {p for p in before if p.startswith("etc/ssh/ssh_host_")}
    aside = _under(before, f"{STATE}/network-replaced")
    markers = {f"{inst}/done/{s}" for s in {"host-keys": ["hostkeys"], "keys": ["users"],
                                             "network": ["network"]}.get(flag, [])}
    manifest = {f"{STATE}/unchanged.sha256"} if markers else set()
    return {
        "state": {p for p in _under(before, STATE) if p != STATE} - aside
        - {f"{STATE}/installed-keys.json"},
        "logs": set(LOGS),
        "network": {"etc/network/interfaces", "etc/network/interfaces.d/50-guestagent"} | aside,
        "host-keys": host_keys,
        "machine-id": {"etc/machine-id", "var/lib/dbus/machine-id"},
        "dhcp-leases": set(LEASES),
        "keys": {"home/debian/.ssh/authorized_keys", f"{STATE}/installed-keys.json"},
    }[flag] | markers | manifest


PAST = {"remove": "removed", "empty": "emptied", "restore": "restored", "take out": "took out"}
FLAGS = ["state", "logs", "network", "host-keys", "machine-id", "dhcp-leases", "keys"]


def test_the_tree_has_every_leftover_to_begin_with(used):
    before = snapshot(used)
    for flag in FLAGS:
        assert _expected(used, before, flag) - set(before) == set(), flag
    assert "etc/network/interfaces.d/50-guestagent" in before
    assert before[f"{STATE}/network-replaced/etc/network/interfaces"][1] == \
        IMAGE_INTERFACES.encode()


def test_dry_run_lists_everything_and_changes_nothing(used, run_agent):
    before = snapshot(used)
    res = _clean(run_agent, used, "--all", "--dry-run")
    assert res.returncode == 0, res.stderr
    assert snapshot(used) == before
    lines = res.stdout.splitlines()
    assert all(ln.startswith("would ") for ln in lines)
    paths = {ln.split(" (")[0] for ln in lines}
    for rel in LEASES + LOGS + ["etc/network/interfaces.d/50-guestagent"]:
        assert f"would remove /{rel}" in paths
    assert "would empty /etc/machine-id (systemd makes a new id at the next boot)" in lines
    assert any(ln.startswith("would restore /etc/network/interfaces ") for ln in lines)
    assert any(ln.startswith("would take out 1 key(s) from debian's authorized_keys") for ln
               in lines)


@pytest.mark.parametrize("flag", FLAGS)
def test_each_flag_changes_exactly_its_own_things(used, run_agent, flag):
    before = snapshot(used)
    res = _clean(run_agent, used, f"--{flag}")
    assert res.returncode == 0, res.stderr
    after = snapshot(used)
    logged = set() if flag == "logs" else {"var/log/guestagent.log"}
    assert changed(before, after) == _expected(used, before, flag) | logged
    for rel in BYSTANDERS:
        assert after[rel] == before[rel]
    # every change is said on stdout and in the log (unless the log went)
    assert res.stdout.strip()
    if flag != "logs":
        log = (used / "var/log/guestagent.log").read_text()
        for line in res.stdout.splitlines():
            assert line in log


def test_all_leaves_a_sealed_image(used, keys, run_agent):
    before = snapshot(used)
    res = _clean(run_agent, used, "--all")
    assert res.returncode == 0, res.stderr
    after = snapshot(used)
    expected = set().union(*(_expected(used, before, f) for f in FLAGS))
    assert changed(before, after) == expected
    assert os.listdir(used / STATE) == []
    assert (used / "etc/network/interfaces").read_text() == IMAGE_INTERFACES
    assert not (used / "etc/network/interfaces.d/50-guestagent").exists()
    mid = used / "etc/machine-id"
    assert mid.read_bytes() == b"" and stat.S_IMODE(mid.stat().st_mode) == 0o444
    assert not (used / "var/lib/dbus/machine-id").exists()
    assert not list((used / "etc/ssh").glob("ssh_host_*"))
    assert (used / "home/debian/.ssh/authorized_keys").read_text() == \
        keys["baked"] + "\n" + keys["hand"] + "\n"
    # and a second clean finds nothing
    res = _clean(run_agent, used, "--all")
    assert (res.returncode, res.stdout) == (0, "nothing to remove\n")


def test_the_next_boot_is_a_first_boot_with_new_host_keys(used, keys, tmp_path, run_agent):
    old_host_keys = {p.name: p.read_bytes() for p in (used / "etc/ssh").glob("ssh_host_*")}
    assert _clean(run_agent, used, "--all").returncode == 0
    res = _boot(run_agent, used, tmp_path, "b", keys["b"], "fa:16:3e:44:55:66")
    assert "new instance" in res.stderr
    new_host_keys = {p.name: p.read_bytes() for p in (used / "etc/ssh").glob("ssh_host_*")}
    assert new_host_keys and set(new_host_keys) == set(old_host_keys)
    assert all(new_host_keys[n] != old_host_keys[n] for n in new_host_keys)
    assert (used / "home/debian/.ssh/authorized_keys").read_text().splitlines() == \
        [keys["baked"], keys["hand"], keys["b"]]
    ours = (used / "etc/network/interfaces.d/50-guestagent").read_text()
    assert "fa:16:3e:44:55:66" in ours or "iface eth0 inet static" in ours


def test_host_keys_alone_are_made_again_on_the_same_instance(used, keys, tmp_path, run_agent):
    assert _clean(run_agent, used, "--host-keys").returncode == 0
    assert not list((used / "etc/ssh").glob("ssh_host_*"))
    res = _boot(run_agent, used, tmp_path, "a", keys["a"], "fa:16:3e:11:22:33")
    assert "new instance" not in res.stderr
    assert list((used / "etc/ssh").glob("ssh_host_*_key"))


def test_host_keys_stay_when_nothing_would_make_new_ones(used, run_agent):
    (used / "etc/guestagent/guestagent.conf").write_text("[ssh]\nregenerate_host_keys = no\n")
    before = snapshot(used)
    res = _clean(run_agent, used, "--host-keys")
    assert res.returncode == 1
    assert "regenerate_host_keys = no" in res.stderr
    assert {p for p in changed(before, snapshot(used)) if p.startswith("etc/ssh")} == set()


def test_poweroff_is_refused_under_root_and_nothing_changes(used, run_agent):
    before = snapshot(used)
    res = _clean(run_agent, used, "--all", "--poweroff")
    assert res.returncode == 2 and "refusing --poweroff with --root" in res.stderr
    assert snapshot(used) == before


def test_no_flag_is_a_usage_error(used, run_agent):
    res = _clean(run_agent, used)
    assert res.returncode == 2 and "--all" in res.stderr


def test_links_are_removed_never_followed(used, tmp_path, run_agent):
    outside = tmp_path / "outside"
    outside.write_text("host file\n")
    os.remove(used / LOGS[1])
    os.symlink(str(outside), used / LOGS[1])
    os.symlink(str(tmp_path), used / STATE / "planted")
    res = _clean(run_agent, used, "--logs", "--state")
    assert res.returncode == 0, res.stderr
    assert outside.read_text() == "host file\n" and not os.path.lexists(used / LOGS[1])
    assert not os.path.lexists(used / STATE / "planted") and outside.exists()


def test_a_network_file_changed_since_stays_aside(used, run_agent):
    (used / "etc/network/interfaces").write_text("# edited by hand after the agent\n")
    res = _clean(run_agent, used, "--network")
    assert res.returncode == 1 and "changed since the agent replaced it" in res.stderr
    assert (used / STATE / "network-replaced/etc/network/interfaces").read_text() == \
        IMAGE_INTERFACES
    assert (used / "etc/network/interfaces").read_text() == "# edited by hand after the agent\n"


def test_check_image_reports_each_leftover_and_fix_is_clean_all(used, run_agent):
    image = Image(System(str(used)))
    (finding,) = [f for f in run_checks(image) if f.id == "instance-leftovers"]
    assert finding.status == "fail"
    for words in ("agent state", "agent logs", "agent network files", "SSH host keys",
                  "machine-id: /etc/machine-id", "DHCP leases", "SSH keys the agent installed"):
        assert words in finding.detail
    assert f"guestagent clean --all --root {used}" in finding.fix
    dry = _clean(run_agent, used, "--all", "--dry-run").stdout.splitlines()
    lines = apply_fixes(image, [finding])
    assert [ln.replace("instance-leftovers: ", "", 1) for ln in lines] == \
        [re.sub(r"^would (remove|empty|restore|take out)",
                lambda m: PAST[m.group(1)], d) for d in dry]
    (finding,) = [f for f in run_checks(Image(System(str(used))))
                  if f.id == "instance-leftovers"]
    assert finding.status == "pass"


def test_check_image_warns_only_for_what_the_agent_redoes(used, run_agent):
    _clean(run_agent, used, "--machine-id", "--keys")
    (finding,) = [f for f in run_checks(Image(System(str(used))))
                  if f.id == "instance-leftovers"]
    assert finding.status == "warn"
    assert "SSH host keys" in finding.detail and "machine-id" not in finding.detail


def test_check_image_cli_fix(used, run_agent):
    res = run_agent("check-image", "--root", used, "--fix", "--json")
    got = {f["id"]: f for f in json.loads(res.stdout)}
    assert got["instance-leftovers"]["status"] == "pass"
    assert any("removed /etc/ssh/ssh_host_" in c for c in got["instance-leftovers"]["changes"])
    assert (used / "etc/machine-id").read_bytes() == b""


# -- the running system, and --poweroff ------------------------------------------------
# `clean` without --root, in a mount namespace of the test's own: /etc (a copy of
# the host's with the used tree's on top), /var, /home and /run are the used
# tree's, bind-mounted; every mount is checked by a marker before the command
# runs, so it never sees this machine's files.  The systemctl and shutdown it
# finds first on PATH record their arguments: the host is never powered off.

LIVE = ("set -e; mount --bind \"$1\" /etc; mount --bind \"$2\"/var /var; "
        "mount --bind \"$2\"/home /home; mount --bind \"$2\"/run /run; "
        "for d in /etc /var /home /run; do test -e $d/.ga-test-marker; done; "
        "shift 2; exec \"$@\"")


def _live_clean(used, tmp_path, *flags, systemd=True):
    import sys

    from support import REPO
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    calls = tmp_path / "calls"
    for name in ("systemctl", "shutdown"):
        (bin_dir / name).write_text(f"#!/bin/sh\necho {name} \"$@\" >> {calls}\n")
        (bin_dir / name).chmod(0o755)
    etc = tmp_path / "live-etc"
    if not etc.exists():
        subprocess.run(["cp", "-a", "/etc", str(etc)], check=True)
        for stale in etc.glob("ssh/ssh_host_*"):
            stale.unlink()  # the host's own, not the used tree's
        subprocess.run(["cp", "-a", "--remove-destination", f"{used}/etc/.", str(etc)],
                       check=True)
    (used / "run").mkdir(exist_ok=True)
    if systemd:
        (used / "run/systemd/system").mkdir(parents=True, exist_ok=True)
    for d in (etc, used / "var", used / "home", used / "run"):
        (d / ".ga-test-marker").write_text("")
    res = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", LIVE,
                          "sh", str(etc), str(used), sys.executable, "-m", "guestagent",
                          "clean", *flags],
                         capture_output=True, text=True, timeout=180,
                         env=dict(os.environ, PYTHONPATH=REPO,
                                  PATH=f"{bin_dir}:{os.environ['PATH']}"))
    return res, etc, (calls.read_text() if calls.exists() else "")


def test_running_system_all_and_poweroff(used, tmp_path):
    res, etc, calls = _live_clean(used, tmp_path, "--all", "--poweroff")
    assert res.returncode == 0, res.stderr
    assert calls == "systemctl --no-block poweroff\n"
    assert res.stdout.splitlines()[-1] == "powering off"
    # the cleaning came first, on the running system's paths
    assert not list((etc / "ssh").glob("ssh_host_*"))
    assert (etc / "machine-id").read_bytes() == b""
    assert (etc / "network/interfaces").read_text() == IMAGE_INTERFACES
    assert os.listdir(used / STATE) == []
    assert not (used / "var/log/guestagent.log").exists()


def test_running_system_without_systemd_powers_off_with_shutdown(used, tmp_path):
    res, _, calls = _live_clean(used, tmp_path, "--host-keys", "--poweroff", systemd=False)
    assert res.returncode == 0, res.stderr
    assert calls == "shutdown -P now\n"


def test_running_system_dry_run_never_powers_off(used, tmp_path):
    before = snapshot(used)
    res, _, calls = _live_clean(used, tmp_path, "--all", "--dry-run", "--poweroff")
    assert res.returncode == 0 and calls == ""
    assert res.stdout.splitlines()[-1] == "would power off"
    assert {p for p in changed(before, snapshot(used)) if ".ga-test-marker" not in p
            and not p.startswith("run")} == set()


def test_no_poweroff_when_something_stayed(used, tmp_path):
    (used / "etc/network/interfaces").write_text("# edited by hand after the agent\n")
    res, _, calls = _live_clean(used, tmp_path, "--all", "--poweroff")
    assert res.returncode == 1 and calls == ""
    assert "not powering off" in res.stderr


def test_host_keys_wait_for_the_key_still_being_made_in_the_background(used, tmp_path,
                                                                         run_agent):
    """The hostkeys step may leave RSA to a detached maker (rsa_in_background);
    a key it finished after the seal would ship in the image."""
    from guestagent.steps import hostkeys
    slow = tmp_path / "slow-keygen"
    slow.write_text("#!/bin/sh\nsleep 3\nexec ssh-keygen \"$@\"\n")
    slow.chmod(0o755)
    maker = hostkeys.generate_later(System(str(used)), str(slow), ["rsa"], "root@a", ["rsa"],
                                    stdout=subprocess.DEVNULL)
    try:
        for _ in range(50):  # the maker has written its pid
            if (used / "etc/ssh" / hostkeys.MAKING).exists():
                break
            import time
            time.sleep(0.1)
        res = _clean(run_agent, used, "--host-keys")
        assert res.returncode == 0, res.stderr
        assert maker.poll() is not None  # clean returned only once the maker was done
    finally:
        maker.wait(timeout=60)
    assert sorted(p.name for p in (used / "etc/ssh").iterdir()) == ["ssh_known_hosts",
                                                                     "sshd_config"]


def test_a_key_makers_leftovers_from_a_power_cut_go(used, run_agent):
    from guestagent.steps import hostkeys
    (used / "etc/ssh" / hostkeys.MAKING).write_text("999999999\n")  # no such process
    (used / "etc/ssh/.ssh_host_rsa_key.guestagent-new").write_text("half a key")
    res = _clean(run_agent, used, "--host-keys")
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in (used / "etc/ssh").iterdir()) == ["ssh_known_hosts",
                                                                     "sshd_config"]


def test_a_state_directory_that_is_a_link_is_not_emptied(used, run_agent):
    """An image whose /var/lib/guestagent links to /etc must not lose its /etc."""
    os.rename(used / STATE, used / "var/lib/guestagent-real")
    os.symlink("/etc", used / STATE)
    before = snapshot(used)
    res = _clean(run_agent, used, "--state")
    assert res.returncode == 1 and "a symlink; not emptying" in res.stderr
    assert {p for p in changed(before, snapshot(used)) if not p.startswith("var/log")} == set()


def test_check_image_fix_says_what_must_stay_in_one_line(used, run_agent):
    (used / "etc/guestagent/guestagent.conf").write_text("[ssh]\nregenerate_host_keys = no\n")
    image = Image(System(str(used)))
    (finding,) = [f for f in run_checks(image) if f.id == "instance-leftovers"]
    lines = apply_fixes(image, [finding])
    assert "instance-leftovers: keeping /etc/ssh/ssh_host_*key*: [ssh] regenerate_host_keys " \
           "= no: nothing would make new ones" in lines
