"""Boot a real Debian bookworm image with the agent's .deb in QEMU and log in.

Scenarios (each a class; its guest boots once for all its checks):
  a + e  config drive ISO, no metadata service; gzip #cloud-config user-data
  b + e  metadata service only; MIME multipart user-data with a shell script
  c      LVM root: the agent grows PV, LV and filesystem
  d      a reboot of the instances from a and b: keys, hostname, host keys stay,
         per-instance steps do not run again; with nothing changed (b) no
         guestagent Python starts at all, with /etc/hosts edited (a) the agent
         runs its per-boot steps only

Every check logs in over SSH as the distro's default user (debian) with the
key the metadata handed out.  A failure shows the guest's console log path
(under /var/tmp/guestagent-e2e-logs/<scenario>/) and its last lines.
"""

import re
import uuid

import pytest
from checks import (  # noqa: F401 (the scenarios share these)
    CLOUD_CONFIG,
    DISK,
    DISK_BYTES,
    FINAL_STEPS,
    SCRIPT,
    all_steps,
    authorized_keys,
    check_host_keys,
    check_local_stage_skipped_without_source,
    check_no_agent_python_this_boot,
    check_no_failed_units,
    check_one_interpreter,
    check_per_instance_not_rerun,
    check_root_grown,
    check_settled,
    check_status_ok,
    check_sudo,
    multipart,
    per_instance_results,
    status,
    write_instance,
)

import harness

pytestmark = [pytest.mark.e2e, pytest.mark.root]


# -- scenario a (+ e, + d): config drive, no metadata service ----------------------
@pytest.fixture(scope="class")
def cd_guest(plain_image, keys, e2e_dir):
    d = e2e_dir / "configdrive"
    u = str(uuid.uuid4())
    user = harness.public_key(keys["user"])
    cc = CLOUD_CONFIG.format(extra_key=harness.public_key(keys["extra"]))
    tree = write_instance(d / "drive", u, "meta-name.novalocal", [user],
                          user_data=harness.gzip_bytes(cc.encode()))
    iso = harness.config_drive_iso(tree, d / "config-2.iso")
    with harness.Guest(plain_image, d / "vm", "configdrive", key=keys["user"],
                       root_key=keys["debug"], config_drive=iso, disk_size=DISK,
                       instance_uuid=u) as g:
        g.wait_ssh()
        g.report_boot()
        g.settle()  # checks of what others own (resolv.conf, units) come after this
        yield g


class TestConfigDrive:
    def test_metadata_came_from_the_config_drive(self, cd_guest):
        st = status(cd_guest)
        sources = {r.get("source") for r in st["runs"] if r.get("source")}
        assert sources and all(s.startswith("configdrive") for s in sources), sources

    def test_hostname_from_cloud_config(self, cd_guest):
        assert cd_guest.ssh("hostname").stdout.strip() == "cd-guest"
        assert cd_guest.ssh("cat /etc/hostname").stdout.strip().split(".")[0] == "cd-guest"
        assert "cd-guest" in cd_guest.ssh("cat /etc/hosts").stdout

    def test_resolv_conf_from_cloud_config(self, cd_guest):
        text = cd_guest.ssh("cat /etc/resolv.conf").stdout
        assert re.search(r"^nameserver\s+192\.0\.2\.10$", text, re.M), text
        assert re.search(r"^nameserver\s+192\.0\.2\.11$", text, re.M), text
        assert re.search(r"^search\s+.*e2e\.example", text, re.M), text

    def test_extra_user_logs_in_with_its_key_and_sudo(self, cd_guest, keys):
        res = cd_guest.ssh("id -un; sudo -n id -u", key=keys["extra"], user="extra")
        assert res.stdout.split() == ["extra", "0"]

    def test_write_files_with_mode(self, cd_guest):
        res = cd_guest.ssh("sudo -n stat -c %a /etc/e2e/written.conf; "
                           "sudo -n cat /etc/e2e/written.conf")
        mode, content = res.stdout.split("\n", 1)
        assert mode == "640"
        assert content == "written by cloud-config\n"

    def test_runcmd_ran_in_order(self, cd_guest):
        assert cd_guest.ssh("cat /var/tmp/e2e-runcmd").stdout == "runcmd-one\nruncmd-two\n"

    def test_root_grown_to_disk(self, cd_guest):
        check_root_grown(cd_guest)

    def test_passwordless_sudo(self, cd_guest):
        check_sudo(cd_guest)

    def test_host_key_fingerprints_on_console(self, cd_guest):
        check_host_keys(cd_guest)

    def test_status_all_ok(self, cd_guest):
        check_status_ok(cd_guest, final=True)

    def test_no_failed_units(self, cd_guest):
        check_no_failed_units(cd_guest)

    def test_one_interpreter_for_every_stage(self, cd_guest):
        check_one_interpreter(cd_guest)

    def test_reboot_keeps_the_instance(self, cd_guest):
        """(d) Same instance after a reboot: nothing per-instance runs again."""
        keys_before = authorized_keys(cd_guest)
        first = status(cd_guest)
        host_keys_before = cd_guest.host_public_keys()
        cd_guest.ssh("echo tampered | sudo -n tee /var/tmp/e2e-runcmd >/dev/null")
        cd_guest.ssh("echo '192.0.2.99 edited-by-hand' | sudo -n tee -a /etc/hosts >/dev/null")
        cd_guest.reboot()
        cd_guest.report_boot()
        assert cd_guest.ssh("hostname").stdout.strip() == "cd-guest"
        assert authorized_keys(cd_guest) == keys_before
        assert cd_guest.host_public_keys() == host_keys_before, "host keys changed on a reboot"
        check_host_keys(cd_guest)
        # /etc/hosts was edited (above), so the guard let the agent run: its
        # per-boot steps only, and the hand-made line stays
        st = check_status_ok(cd_guest, final=False)
        assert st.get("boot_id") == cd_guest.boot_id(), "the agent did not run this boot"
        assert not any(r.get("new_instance") for r in st["runs"]), st["runs"]
        check_per_instance_not_rerun(first, st)
        assert "192.0.2.99 edited-by-hand" in cd_guest.ssh("cat /etc/hosts").stdout
        assert cd_guest.ssh("cat /var/tmp/e2e-runcmd").stdout == "tampered\n", \
            "runcmd ran again on a reboot"
        check_no_failed_units(cd_guest)


# -- scenario b (+ e, + d): metadata service only -------------------------------
@pytest.fixture(scope="class")
def md_guest(plain_image, keys, e2e_dir):
    d = e2e_dir / "metadata"
    u = str(uuid.uuid4())
    tree = write_instance(d / "tree", u, "md-guest.novalocal", [harness.public_key(keys["user"])],
                          user_data=multipart(SCRIPT), dns=["192.0.2.53"])
    with harness.Guest(plain_image, d / "vm", "metadata", key=keys["user"],
                       root_key=keys["debug"], metadata_tree=tree, disk_size=DISK,
                       instance_uuid=u) as g:
        g.wait_ssh()
        g.report_boot()
        g.settle()  # checks of what others own (resolv.conf, units) come after this
        yield g


class TestMetadataService:
    def test_metadata_came_from_the_service(self, md_guest):
        st = status(md_guest)
        sources = {r.get("source") for r in st["runs"] if r.get("source")}
        assert sources and all("openstack" in s for s in sources), sources
        gets = [r for r in md_guest.metadata_requests() if r.startswith("GET /openstack")]
        assert 0 < len(gets) <= 5, f"metadata requests on a first boot: {gets}"

    def test_no_python_for_the_local_stage(self, md_guest):
        check_local_stage_skipped_without_source(md_guest)

    def test_hostname_from_metadata(self, md_guest):
        assert md_guest.ssh("hostname").stdout.strip() == "md-guest"
        assert "md-guest" in md_guest.ssh("cat /etc/hosts").stdout

    def test_resolv_conf_from_network_data(self, md_guest):
        text = md_guest.ssh("cat /etc/resolv.conf").stdout
        assert re.search(r"^nameserver\s+192\.0\.2\.53$", text, re.M), text

    def test_multipart_script_ran_once_as_root(self, md_guest):
        res = md_guest.ssh("sudo -n cat /var/lib/e2e-script-count /var/lib/e2e-script-uid")
        assert res.stdout.split() == ["1", "0"]

    def test_root_grown_to_disk(self, md_guest):
        check_root_grown(md_guest)

    def test_passwordless_sudo(self, md_guest):
        check_sudo(md_guest)

    def test_host_key_fingerprints_on_console(self, md_guest):
        check_host_keys(md_guest)

    def test_status_all_ok(self, md_guest):
        check_status_ok(md_guest, final=True)

    def test_no_failed_units(self, md_guest):
        check_no_failed_units(md_guest)

    def test_one_interpreter_for_every_stage(self, md_guest):
        check_one_interpreter(md_guest)

    def test_reboot_runs_the_script_once(self, md_guest):
        """(d) After a reboot of the same instance the script's counter is still 1."""
        host_keys_before = md_guest.host_public_keys()
        first = status(md_guest)
        asked_before = len(md_guest.metadata_requests())
        md_guest.reboot()
        md_guest.report_boot()
        assert md_guest.ssh("hostname").stdout.strip() == "md-guest"
        # the DMI system UUID (Nova's instance UUID) confirms the instance locally
        asked_again = md_guest.metadata_requests()[asked_before:]
        assert not asked_again, f"a reboot asked the metadata service again: {asked_again}"
        assert md_guest.ssh("sudo -n cat /var/lib/e2e-script-count").stdout.strip() == "1"
        assert md_guest.host_public_keys() == host_keys_before, "host keys changed on a reboot"
        check_host_keys(md_guest)
        assert first.get("runs"), first
        # the same instance (DMI system UUID), nothing changed: no agent process at all
        check_no_agent_python_this_boot(md_guest)
        check_no_failed_units(md_guest)


# -- scenario c: LVM root --------------------------------------------------------
@pytest.fixture(scope="class")
def lvm_guest(lvm_image, keys, e2e_dir):
    d = e2e_dir / "lvm"
    u = str(uuid.uuid4())
    tree = write_instance(d / "drive", u, "lvm-guest.novalocal",
                          [harness.public_key(keys["user"])], dns=["192.0.2.54"])
    iso = harness.config_drive_iso(tree, d / "config-2.iso")
    with harness.Guest(lvm_image, d / "vm", "lvm", key=keys["user"], root_key=keys["debug"],
                       config_drive=iso, disk_size=DISK, instance_uuid=u) as g:
        g.wait_ssh()
        g.report_boot()
        g.settle()  # checks of what others own (resolv.conf, units) come after this
        yield g


class TestLvmRoot:
    def test_root_is_on_lvm(self, lvm_guest):
        src = lvm_guest.ssh("findmnt -no SOURCE /").stdout.strip()
        assert src == "/dev/mapper/vg0-root", src

    def test_pv_lv_and_filesystem_grown(self, lvm_guest):
        pv = int(lvm_guest.ssh("sudo -n pvs --noheadings --units b --nosuffix -o pv_size")
                 .stdout.split()[0])
        lv = int(lvm_guest.ssh("sudo -n lvs --noheadings --units b --nosuffix -o lv_size "
                               "vg0/root").stdout.split()[0])
        free = int(lvm_guest.ssh("sudo -n vgs --noheadings --units b --nosuffix -o vg_free vg0")
                   .stdout.split()[0])
        assert pv > 0.95 * DISK_BYTES, f"PV is {pv} bytes on a {DISK_BYTES}-byte disk"
        assert lv > 0.95 * DISK_BYTES and free < 8 * 1024 ** 2, \
            f"LV is {lv} bytes with {free} bytes free in the VG"
        check_root_grown(lvm_guest)

    def test_hostname_resolv_conf_and_sudo(self, lvm_guest):
        assert lvm_guest.ssh("hostname").stdout.strip() == "lvm-guest"
        text = lvm_guest.ssh("cat /etc/resolv.conf").stdout
        assert re.search(r"^nameserver\s+192\.0\.2\.54$", text, re.M), text
        check_sudo(lvm_guest)

    def test_host_key_fingerprints_on_console(self, lvm_guest):
        check_host_keys(lvm_guest)

    def test_status_all_ok(self, lvm_guest):
        check_status_ok(lvm_guest, final=False)

    def test_no_failed_units(self, lvm_guest):
        check_no_failed_units(lvm_guest)

