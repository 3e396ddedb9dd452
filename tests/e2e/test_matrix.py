"""The same first boot on the images users run besides test_boot.py's Debian 12
(systemd, ext4 on virtio): other Debian releases (so other Pythons), SysV init,
XFS and btrfs roots, NVMe and SCSI disks.

Each scenario boots once for all its checks, then reboots once:

  bullseye-metadata   Debian 11 (Python 3.9, the floor), metadata service
  trixie-configdrive  Debian 13 (Python 3.13), config drive
  sysv-configdrive    Debian 12 with sysvinit-core (no systemd at all): the
  sysv-metadata       package's SysV script starts the agent; config drive,
                      then metadata service
  xfs-nvme            Debian 12, XFS root on an NVMe disk (/dev/nvme0n1p1), grown;
                      metadata service
  btrfs-scsi          Debian 12, btrfs root on a virtio-SCSI disk (/dev/sda1),
                      grown; config drive as a SCSI CD-ROM (/dev/sr0)

Config-drive scenarios carry test_boot.py's gzip #cloud-config (hostname, a
second user with sudo, write_files, runcmd, resolv_conf); metadata-service
scenarios a MIME multipart shell script and DNS from network_data.json.

Which scenarios a plain run boots is in MATRIX ("ci"); ``tests/e2e/run
--matrix`` boots them all.  Logs: /var/tmp/guestagent-e2e-logs/<scenario>/.
"""

import re
import uuid

import pytest
from checks import (
    CLOUD_CONFIG,
    DISK,
    SCRIPT,
    authorized_keys,
    check_host_keys,
    check_local_stage_skipped_without_source,
    check_no_failed_units,
    check_reboot,
    check_root_grown,
    check_settled,
    check_status_ok,
    check_sudo,
    multipart,
    status,
    write_instance,
)

import harness

pytestmark = [pytest.mark.e2e, pytest.mark.root]

# name: the image variant (build-image's options), where the metadata comes
# from, and whether a plain run (CI) boots it or only --matrix does.
MATRIX = {
    "bullseye-metadata": dict(image=dict(suite="bullseye"), source="metadata", ci=True),
    "trixie-configdrive": dict(image=dict(suite="trixie"), source="configdrive", ci=True),
    "sysv-configdrive": dict(image=dict(init="sysvinit"), source="configdrive", ci=False),
    "sysv-metadata": dict(image=dict(init="sysvinit"), source="metadata", ci=False),
    "xfs-nvme": dict(image=dict(fs="xfs", bus="nvme"), source="metadata", ci=False),
    "btrfs-scsi": dict(image=dict(fs="btrfs", bus="scsi"), source="configdrive", ci=False),
}

DNS = "192.0.2.57"


@pytest.fixture(scope="class", params=sorted(MATRIX))
def guest(request, variant_image, keys, e2e_dir):
    name = request.param
    spec = MATRIX[name]
    image = variant_image(**spec["image"])
    d = e2e_dir / name
    u = str(uuid.uuid4())
    host = f"{name}.novalocal"
    user = harness.public_key(keys["user"])
    kw = dict(key=keys["user"], root_key=keys["debug"], disk_size=DISK, instance_uuid=u)
    if spec["source"] == "configdrive":
        cc = CLOUD_CONFIG.format(extra_key=harness.public_key(keys["extra"]))
        tree = write_instance(d / "drive", u, host, [user],
                              user_data=harness.gzip_bytes(cc.encode()))
        kw["config_drive"] = harness.config_drive_iso(tree, d / "config-2.iso")
        # #cloud-config's hostname wins over the metadata's name
        expect = dict(hostname="cd-guest", dns=["192.0.2.10", "192.0.2.11"])
    else:
        kw["metadata_tree"] = write_instance(d / "tree", u, host, [user],
                                             user_data=multipart(SCRIPT), dns=[DNS])
        expect = dict(hostname=name, dns=[DNS])
    with harness.Guest(image, d / "vm", name, **kw) as g:
        g.scenario = name
        g.source = spec["source"]
        g.expect = expect
        g.wait_ssh()
        g.report_boot()
        g.settle()
        yield g


def check_hostname(guest):
    want = guest.expect["hostname"]
    assert guest.ssh("hostname").stdout.strip() == want
    assert guest.ssh("cat /etc/hostname").stdout.strip().split(".")[0] == want
    hosts = guest.ssh("cat /etc/hosts").stdout
    assert re.search(rf"^\S+\s+.*\b{re.escape(want)}\b", hosts, re.M), hosts


def check_dns(guest):
    text = guest.ssh("cat /etc/resolv.conf").stdout
    for ns in guest.expect["dns"]:
        assert re.search(rf"^nameserver\s+{re.escape(ns)}$", text, re.M), text


def check_user_data(guest, keys, runcmd="runcmd-one\nruncmd-two\n"):
    """``runcmd``: what runcmd's file should hold (after a reboot: what the
    test left there, since runcmd must not run again)."""
    if guest.source == "configdrive":
        res = guest.ssh("id -un; sudo -n id -u", key=keys["extra"], user="extra")
        assert res.stdout.split() == ["extra", "0"]
        res = guest.ssh("sudo -n stat -c %a /etc/e2e/written.conf; "
                        "sudo -n cat /etc/e2e/written.conf")
        assert res.stdout == "640\nwritten by cloud-config\n"
        assert guest.ssh("cat /var/tmp/e2e-runcmd").stdout == runcmd
    else:
        res = guest.ssh("sudo -n cat /var/lib/e2e-script-count /var/lib/e2e-script-uid")
        assert res.stdout.split() == ["1", "0"], "the script did not run once as root"


class TestMatrix:
    def test_the_image_is_the_variant(self, guest):
        """Release (its Python), PID 1, root device and filesystem are what the
        scenario claims: a mislabelled image would prove nothing."""
        img = guest.image
        py = guest.ssh("python3 -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])'")
        assert py.stdout.strip() == harness.SUITE_PYTHON[img.suite]
        release = guest.ssh(". /etc/os-release; echo $VERSION_CODENAME").stdout.strip()
        assert release == img.suite
        pid1 = guest.ssh("cat /proc/1/comm").stdout.strip()
        assert pid1 == ("systemd" if img.systemd else "init"), pid1
        src, fstype = guest.ssh("findmnt -no SOURCE,FSTYPE /").stdout.split()
        assert (src, fstype) == (img.root_device, img.fs)

    def test_boot_settled_with_nothing_failed(self, guest):
        check_settled(guest)

    def test_metadata_came_from_the_expected_source(self, guest):
        st = status(guest)
        sources = {r.get("source") for r in st["runs"] if r.get("source")}
        want = "configdrive" if guest.source == "configdrive" else "openstack"
        assert sources and all(want in s for s in sources), sources
        if guest.source == "metadata":
            gets = [r for r in guest.metadata_requests() if r.startswith("GET /openstack")]
            assert 0 < len(gets) <= 5, f"metadata requests on a first boot: {gets}"
            if guest.image.systemd:
                check_local_stage_skipped_without_source(guest)

    def test_the_init_system_started_the_agent(self, guest):
        """systemd: the package's three units are enabled and the SysV script
        stood aside.  sysvinit (no systemd at all): the package's SysV script
        started the agent, before sshd, and the user scripts after it."""
        started_by_script = "Starting guestagent: first-boot setup" in guest.console_text()
        st = status(guest)
        stages = {r.get("stage") for r in st["runs"]}
        if guest.image.systemd:
            res = guest.ssh("sudo -n systemctl is-enabled guestagent-local.service "
                            "guestagent.service guestagent-final.service", check=False)
            assert res.stdout.split() == ["enabled"] * 3, res.stdout
            assert not started_by_script, "the SysV script ran under systemd"
            return
        assert guest.ssh("test ! -e /run/systemd/system && echo no-systemd").stdout.strip() \
            == "no-systemd"
        links = guest.ssh("ls /etc/rc2.d").stdout.split()
        agent = [ln for ln in links if ln.startswith("S") and ln.endswith("guestagent")]
        ssh = [ln for ln in links if ln.startswith("S") and ln.endswith("ssh")]
        assert agent and ssh and agent[0] < ssh[0], f"rc2.d: {links}"
        assert started_by_script, "the console shows no start by /etc/init.d/guestagent"
        assert stages >= {"network", "final"}, st["runs"]

    def test_hostname_and_etc_hosts(self, guest):
        check_hostname(guest)

    def test_dns_after_the_boot_settled(self, guest):
        check_dns(guest)

    def test_dns_after_the_dhcp_client_acted_again(self, guest):
        """Where a DHCP client owns /etc/resolv.conf (SysV: ifupdown's
        dhclient, through dhclient-script), it releases and takes the lease
        anew: the metadata's nameservers are still there.  The systemd images
        run systemd-networkd without systemd-resolved, which never writes the
        file: it must be a plain file nobody else manages."""
        if guest.image.systemd:
            res = guest.ssh("test -f /etc/resolv.conf && ! test -L /etc/resolv.conf "
                            "&& ! test -e /run/systemd/resolve && echo plain", check=False)
            assert res.stdout.strip() == "plain", "/etc/resolv.conf has another owner here"
        else:
            guest.ssh("sudo -n sh -c 'dhclient -r eth0; dhclient -1 eth0' >/dev/null 2>&1",
                      check=False, timeout=120)
            guest.wait_ssh(timeout=120, boot=False)
            guest.settle()
        check_dns(guest)

    def test_user_data(self, guest, keys):
        check_user_data(guest, keys)

    def test_root_grown_to_disk(self, guest):
        check_root_grown(guest)

    def test_passwordless_sudo(self, guest):
        check_sudo(guest)

    def test_host_key_fingerprints_on_console(self, guest):
        check_host_keys(guest)

    def test_status_all_ok(self, guest):
        check_status_ok(guest, final=True)

    def test_no_failed_units(self, guest):
        check_no_failed_units(guest)

    def test_reboot_changes_nothing(self, guest, keys):
        keys_before = authorized_keys(guest)
        host_keys_before = guest.host_public_keys()
        first = status(guest)
        asked_before = len(guest.metadata_requests())
        fs_before = int(guest.ssh("findmnt -bno SIZE /").stdout)
        if guest.source == "configdrive":
            guest.ssh("echo tampered | sudo -n tee /var/tmp/e2e-runcmd >/dev/null")
        guest.reboot()
        guest.report_boot()
        check_settled(guest)
        check_hostname(guest)
        check_dns(guest)
        assert authorized_keys(guest) == keys_before
        assert guest.host_public_keys() == host_keys_before, "host keys changed on a reboot"
        check_host_keys(guest)
        # the DMI system UUID (Nova's instance UUID) confirms the instance locally
        asked_again = guest.metadata_requests()[asked_before:]
        assert not asked_again, f"a reboot asked the metadata service again: {asked_again}"
        check_reboot(guest, first)
        check_user_data(guest, keys, runcmd="tampered\n")  # scripts and runcmd ran once
        assert int(guest.ssh("findmnt -bno SIZE /").stdout) == fs_before
        check_no_failed_units(guest)
