"""An image's life on real boots (issue 26): wait for the boot, seal the
image, boot a copy as a new instance, upgrade in place.

  packer    Packer's round trip.  Instance A (config drive: uuid A, key A,
            the first NIC's MAC A by DHCP, hostname image-a, a user script
            that takes a while): `guestagent status --wait` over SSH exits 0
            only once the script has run; a marker is written; `guestagent
            clean --all --poweroff` seals the disk and powers off.  The same
            disk boots as instance B: uuid B, only key B, another MAC with a
            static address (network_data.json, Nova's document), hostname
            image-b.
  snapshot  One disk, three boots.  Instance A, then (upgrade) the .deb of
            the next release, built by the test, installed over it: nothing
            starts, no state changes; a reboot runs no per-instance step
            again and keeps the instance.  Then the disk is powered off with
            no clean and booted as instance B (a snapshot booted elsewhere):
            key A is gone because the keys belong to the instance that
            brought them, and /etc/machine-id is new because B is a new
            instance on a disk an earlier one used.

On every B: key A is refused and key B logs in, the host keys are new, the
hostname is B's, /etc/machine-id differs from A's, the network files name
only B's MAC, the marker survived and `status --wait` exits 0.
"""

import json
import os
import re
import subprocess
import time
import uuid

import pytest
from checks import (
    check_no_failed_units,
    check_per_instance_not_rerun,
    status,
    write_instance,
)

import harness

pytestmark = [pytest.mark.e2e, pytest.mark.root]

NOVA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                    "fixtures", "nova")
MAC_A = harness.FIRST_MAC
MAC_B = "52:54:00:65:43:21"
STATIC_B = "10.0.2.42"
MARKER = "/var/lib/e2e-provisioned"
# The build instance's user-data: a script that takes a while, so that the
# final stage is still running when the pipeline starts waiting.
SLOW_SCRIPT = "#!/bin/sh\nsleep 15\ndate +%s > /var/lib/e2e-final-ran\n"
NETWORK_DIRS = "/etc/systemd/network /etc/network /etc/netplan /etc/NetworkManager"
WAIT = "sudo -n guestagent status --wait --timeout 900"


def nova_doc(name):
    with open(os.path.join(NOVA, f"{name}.json")) as f:
        return json.load(f)


def network_a():
    """Nova's document for a DHCP NIC with QEMU's first MAC (MAC A): the
    first NIC of tests/fixtures/nova/qemu-two-nics.json alone."""
    doc = nova_doc("qemu-two-nics")
    link = doc["links"][0]
    assert link["ethernet_mac_address"] == MAC_A
    return {"links": [link], "networks": [n for n in doc["networks"] if n["link"] == link["id"]],
            "services": doc["services"]}


def network_b():
    """Nova's static document (10.0.2.42/24, gateway 10.0.2.2) for MAC B:
    tests/fixtures/nova/qemu-static.json with only the MAC changed."""
    doc = nova_doc("qemu-static")
    doc["links"][0]["ethernet_mac_address"] = MAC_B
    return doc


def drive(d, instance_uuid, hostname, key, network, user_data=None):
    tree = write_instance(d / "drive", instance_uuid, hostname, [harness.public_key(key)],
                          user_data=user_data)
    (tree / "openstack/latest/network_data.json").write_text(json.dumps(network, indent=1))
    return harness.config_drive_iso(tree, d / "config-2.iso")


def wait_status(guest, key=None):
    """`guestagent status --wait` over SSH: (exit code, this_boot, seconds)."""
    t0 = time.monotonic()
    res = guest.ssh(f"{WAIT} --json", key=key, check=False, timeout=960)
    took = time.monotonic() - t0
    try:
        this_boot = json.loads(res.stdout).get("this_boot")
    except ValueError:
        this_boot = {"unreadable": res.stdout[-500:], "stderr": res.stderr[-500:]}
    print(f"[e2e] {guest.name}: status --wait exited {res.returncode} after {took:.1f} s: "
          f"{this_boot}", flush=True)
    return res.returncode, this_boot, took


def facts(guest):
    """What tells one instance from another, read over SSH."""
    nets = guest.ssh(f"sudo -n grep -rIil -e {MAC_A} -e {MAC_B} {NETWORK_DIRS} 2>/dev/null; "
                     "true").stdout.split()
    named = {}
    for path in nets:
        text = guest.ssh(f"sudo -n cat {path}").stdout.lower()
        named[path] = sorted(m for m in (MAC_A, MAC_B) if m in text)
    return {
        "host_keys": {harness.fingerprint(t, b) for t, b in guest.keyscan().items()},
        "machine_id": guest.ssh("cat /etc/machine-id").stdout.strip(),
        "hostname": guest.ssh("hostname").stdout.strip(),
        "network_files": named,
        "marker": guest.ssh(f"cat {MARKER} 2>/dev/null; true").stdout.strip(),
    }


def timed(record, what, fn, *args, **kw):
    t0 = time.monotonic()
    result = fn(*args, **kw)
    record[what] = round(time.monotonic() - t0, 1)
    return result


def report(name, durations):
    line = f"{name}: " + ", ".join(f"{k} {v:.0f} s" for k, v in durations.items())
    harness.TIMINGS.append(line)
    print(f"[e2e] {line}", flush=True)


# -- packer: boot, wait, provision, clean --all --poweroff, boot as B ------------------
@pytest.fixture(scope="class")
def packer(plain_image, keys, e2e_dir):
    d = e2e_dir / "packer"
    key_a, key_b = keys["user"], keys["extra"]
    uuid_a, uuid_b = str(uuid.uuid4()), str(uuid.uuid4())
    iso_a = drive(d / "a", uuid_a, "image-a.novalocal", key_a, network_a(),
                  user_data=SLOW_SCRIPT.encode())
    iso_b = drive(d / "b", uuid_b, "image-b.novalocal", key_b, network_b())
    took = {}
    out = {"uuid_a": uuid_a, "uuid_b": uuid_b, "took": took}
    with harness.Guest(plain_image, d / "vm", "packer", key=key_a, root_key=keys["debug"],
                       config_drive=iso_a, instance_uuid=uuid_a, mac=MAC_A) as g:
        timed(took, "A to SSH", g.wait_ssh)
        g.report_boot()
        # at once, as a Packer provisioner does: the user script is still running
        out["wait_a"] = wait_status(g)
        out["final_ran_a"] = g.ssh("cat /var/lib/e2e-final-ran 2>/dev/null; true").stdout.strip()
        out["a"] = facts(g)
        g.ssh(f"echo provisioned-on-a | sudo -n tee {MARKER} >/dev/null")
        out["dry_run"] = g.ssh("sudo -n guestagent clean --all --dry-run").stdout
        try:
            g.ssh("sudo -n guestagent clean --all --poweroff", check=False, timeout=120)
        except subprocess.TimeoutExpired:
            pass  # the connection may hang while the guest goes down
        timed(took, "clean to power-off", g.wait_poweroff)
        out["console_a"] = g.console_text()
        timed(took, "B to SSH and settled", g.boot_as, instance_uuid=uuid_b,
              config_drive=iso_b, mac=MAC_B, ssh_to=STATIC_B, key=key_b)
        g.report_boot()
        out["wait_b"] = wait_status(g)
        out["b"] = facts(g)
        out["key_a_on_b"] = g.ssh("true", key=key_a, check=False).returncode
        out["status_b"] = status(g)
        out["guest"] = g
        report("packer round trip", took)
        yield out


class TestPackerRoundTrip:
    def test_status_wait_on_the_build_instance(self, packer):
        code, this_boot, took = packer["wait_a"]
        assert code == 0, this_boot
        assert this_boot["state"] == "done"
        # it returned only after the final stage's script had run
        assert packer["final_ran_a"], "status --wait returned before the user script ran"

    def test_clean_listed_and_powered_off(self, packer):
        assert packer["dry_run"].strip(), "clean --all --dry-run listed nothing"
        assert "/var/lib/guestagent" in packer["dry_run"]

    def test_key_a_refused_and_key_b_logs_in(self, packer):
        assert packer["key_a_on_b"] != 0, "the build instance's key still logs in"
        assert packer["guest"].ssh("id -un").stdout.strip() == "debian"  # key B

    def test_new_host_keys_hostname_and_machine_id(self, packer):
        a, b = packer["a"], packer["b"]
        assert a["host_keys"] and b["host_keys"] and not (a["host_keys"] & b["host_keys"])
        assert (a["hostname"], b["hostname"]) == ("image-a", "image-b")
        assert a["machine_id"] and b["machine_id"] and a["machine_id"] != b["machine_id"]

    def test_network_files_name_only_b_mac(self, packer):
        assert any(v == [MAC_A] for v in packer["a"]["network_files"].values()), packer["a"]
        named = packer["b"]["network_files"]
        assert named and all(v == [MAC_B] for v in named.values()), named
        # and the NIC is up at the document's address: SSH reached it there
        addrs = packer["guest"].ssh("ip -4 -o addr show").stdout
        assert f"{STATIC_B}/24" in addrs and "10.0.2.15" not in addrs, addrs

    def test_marker_survived_and_b_is_done(self, packer):
        assert packer["b"]["marker"] == "provisioned-on-a"
        code, this_boot, _ = packer["wait_b"]
        assert code == 0 and this_boot["state"] == "done", this_boot
        st = packer["status_b"]
        assert {r.get("instance_id") for r in st["runs"] if r.get("instance_id")} == \
            {packer["uuid_b"]}
        assert any(r.get("new_instance") for r in st["runs"])
        check_no_failed_units(packer["guest"])


# -- snapshot: A, upgrade + reboot, power off without clean, boot as B -------------------
@pytest.fixture(scope="module")
def next_deb(e2e_dir):
    path, version = harness.build_next_deb(e2e_dir / "next-deb")
    print(f"[e2e] next release: {path}")
    return path, version


STATE_DIGEST = ("sudo -n sh -c 'cd /var/lib/guestagent && find . -type f ! -name lock "
                "-exec sha256sum {} + | sort -k 2'")
UNITS = ("guestagent-local.service", "guestagent.service", "guestagent-final.service")


def unit_facts(guest):
    out = {}
    for unit in UNITS:
        res = guest.ssh(f"sudo -n systemctl is-enabled {unit}; sudo -n systemctl show -P "
                        f"ExecMainStartTimestampMonotonic {unit}", check=False)
        out[unit] = res.stdout.split()
    return out


@pytest.fixture(scope="module")  # one disk for both classes below
def snapshot(plain_image, keys, e2e_dir, next_deb):
    d = e2e_dir / "snapshot"
    key_a, key_b = keys["user"], keys["extra"]
    uuid_a, uuid_b = str(uuid.uuid4()), str(uuid.uuid4())
    iso_a = drive(d / "a", uuid_a, "snap-a.novalocal", key_a, network_a())
    iso_b = drive(d / "b", uuid_b, "snap-b.novalocal", key_b, network_b())
    took = {}
    out = {"uuid_a": uuid_a, "took": took, "next_version": next_deb[1]}
    with harness.Guest(plain_image, d / "vm", "snapshot", key=key_a, root_key=keys["debug"],
                       config_drive=iso_a, instance_uuid=uuid_a, mac=MAC_A) as g:
        timed(took, "A to SSH", g.wait_ssh)
        g.report_boot()
        out["wait_a"] = wait_status(g)
        out["a"] = facts(g)
        out["status_a"] = status(g)
        g.ssh(f"echo written-on-a | sudo -n tee {MARKER} >/dev/null")

        # (upgrade) the next release over the configured instance
        g.copy_in(next_deb[0], "/tmp/next.deb")
        out["state_before"] = g.ssh(STATE_DIGEST).stdout
        out["units_before"] = unit_facts(g)
        out["keys_before"] = g.ssh("cat ~/.ssh/authorized_keys").stdout
        out["dpkg"] = timed(took, "dpkg -i next", g.ssh,
                            "sudo -n env DEBIAN_FRONTEND=noninteractive dpkg -i /tmp/next.deb")
        out["state_installed"] = g.ssh(STATE_DIGEST).stdout
        out["units_installed"] = unit_facts(g)
        # [e]: not this very shell's command line
        out["agent_ran_on_install"] = g.ssh("pgrep -af 'guestagent --onc[e]'; true").stdout.strip()
        timed(took, "reboot after the upgrade", g.reboot)
        g.report_boot()
        out["wait_upgraded"] = wait_status(g)
        out["version_upgraded"] = g.ssh("guestagent --version").stdout.strip()
        out["status_upgraded"] = status(g)
        out["units_upgraded"] = unit_facts(g)
        out["keys_upgraded"] = g.ssh("cat ~/.ssh/authorized_keys").stdout
        out["host_keys_upgraded"] = {harness.fingerprint(t, b)
                                     for t, b in g.keyscan().items()}
        out["instance_id_upgraded"] = g.ssh(
            "sudo -n cat /var/lib/guestagent/instance-id").stdout.strip()

        # (snapshot) powered off, no clean, booted as another instance
        timed(took, "power-off", g.power_off)
        timed(took, "B to SSH and settled", g.boot_as, instance_uuid=uuid_b,
              config_drive=iso_b, mac=MAC_B, ssh_to=STATIC_B, key=key_b)
        g.report_boot()
        out["wait_b"] = wait_status(g)
        out["b"] = facts(g)
        out["key_a_on_b"] = g.ssh("true", key=key_a, check=False).returncode
        out["keys_b"] = g.ssh("cat ~/.ssh/authorized_keys").stdout
        out["console_b"] = g.console_text()
        out["status_b"] = status(g)
        out["order_b"] = [int(g.ssh(f"sudo -n systemctl show -P {prop} {unit}").stdout.strip() or 0)
                          for prop, unit in (
                              # up (READY=1) once the config steps are done; the
                              # RSA host key may still be made after that
                              ("ActiveEnterTimestampMonotonic", "guestagent-local.service"),
                              ("ExecMainStartTimestampMonotonic", "systemd-networkd.service"))]
        out["guest"] = g
        report("snapshot + upgrade", took)
        yield out


class TestUpgradeInPlace:
    def test_install_starts_nothing_and_changes_no_state(self, snapshot):
        assert snapshot["wait_a"][0] == 0, snapshot["wait_a"]
        assert snapshot["state_installed"] == snapshot["state_before"]
        assert "/instance-id" in snapshot["state_before"]
        assert snapshot["units_installed"] == snapshot["units_before"], \
            "installing the next release started, stopped or disabled a unit"
        assert all(f[0] == "enabled" for f in snapshot["units_before"].values())
        assert snapshot["agent_ran_on_install"] == ""

    def test_reboot_after_the_upgrade_reruns_no_step(self, snapshot):
        assert snapshot["version_upgraded"] == f"guestagent {snapshot['next_version']}"
        code, this_boot, _ = snapshot["wait_upgraded"]
        assert code == 0, this_boot
        st = snapshot["status_upgraded"]
        # the reboot guard saw the new package, so the agent looked: same
        # instance, per-boot steps only
        assert st["runs"], st
        assert {r.get("instance_id") for r in st["runs"] if r.get("instance_id")} == \
            {snapshot["uuid_a"]}
        assert not any(r.get("new_instance") for r in st["runs"]), st["runs"]
        check_per_instance_not_rerun(snapshot["status_a"], st)
        assert snapshot["instance_id_upgraded"] == snapshot["uuid_a"]
        assert snapshot["keys_upgraded"] == snapshot["keys_before"]
        assert snapshot["host_keys_upgraded"] == snapshot["a"]["host_keys"]
        assert all(f[0] == "enabled" for f in snapshot["units_upgraded"].values()), \
            snapshot["units_upgraded"]


class TestSnapshotWithoutClean:
    def test_key_a_gone_and_key_b_logs_in(self, snapshot, keys):
        assert snapshot["key_a_on_b"] != 0, "the earlier instance's key still logs in"
        assert harness.public_key(keys["user"]).split()[1] not in snapshot["keys_b"]
        assert harness.public_key(keys["extra"]).split()[1] in snapshot["keys_b"]
        assert snapshot["guest"].ssh("id -un").stdout.strip() == "debian"

    def test_new_host_keys_and_hostname(self, snapshot):
        a, b = snapshot["a"], snapshot["b"]
        assert a["host_keys"] and b["host_keys"] and not (a["host_keys"] & b["host_keys"])
        assert (a["hostname"], b["hostname"]) == ("snap-a", "snap-b")

    def test_new_machine_id_before_the_network(self, snapshot):
        """No clean, so the disk still held A's id: B's local stage gave it a
        new one, before network-pre.target (so systemd-networkd's DHCP
        client id is B's own)."""
        a, b = snapshot["a"]["machine_id"], snapshot["b"]["machine_id"]
        assert re.fullmatch(r"[0-9a-f]{32}", a) and re.fullmatch(r"[0-9a-f]{32}", b), (a, b)
        assert a != b
        local = [r for r in snapshot["status_b"]["runs"] if r.get("stage") == "local"]
        steps = {s["name"]: s for r in local for s in r.get("steps", [])}
        assert steps["machine_id"]["result"] == "changed", steps.get("machine_id")
        assert f"was {a[:8]}..., the earlier instance's" in steps["machine_id"]["changes"][0]
        # where the image runs systemd-networkd, it started after the local
        # stage was up, which the config steps (machine_id among them) precede
        local_done, networkd_start = snapshot["order_b"]
        assert local_done > 0, snapshot["order_b"]
        assert networkd_start == 0 or networkd_start > local_done, snapshot["order_b"]

    def test_network_files_name_only_b_mac(self, snapshot):
        named = snapshot["b"]["network_files"]
        assert named and all(v == [MAC_B] for v in named.values()), named

    def test_marker_survived_and_b_is_done(self, snapshot):
        assert snapshot["b"]["marker"] == "written-on-a"
        code, this_boot, _ = snapshot["wait_b"]
        assert code == 0 and this_boot["state"] == "done", this_boot
        check_no_failed_units(snapshot["guest"])
