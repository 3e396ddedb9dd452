"""LVM root whose PV cannot grow in place: the guide's new-partition path, booted.

The image (build-image layout ``lvm-spacer``): a GPT disk of 1.5 GiB, the VG's
only PV on partition 1, an 8 MiB partition 2 right after it.  Booted on a 3 GiB
disk, the backup GPT header still sits at the old end.  The agent must move it,
make partition 3 in the new space, pvcreate + vgextend, lvextend, and grow the
filesystem, with no failed unit; a second boot changes nothing.

The same boot is test_dns_lasts.py's config-drive + network_data.json case
(one TCG boot less): the image is networked by ifupdown's dhclient
(``--net ifupdown``), and the config drive's DNS servers must hold once the
boot has settled, after ``dhclient -r; dhclient``, and after the reboot, in
which the reboot guard starts no agent and only dhclient's hook can keep them.
"""

import uuid

import pytest
from checks import (
    DISK,
    DISK_BYTES,
    all_steps,
    check_dhclient_owns_the_network,
    check_no_failed_units,
    check_reboot,
    check_resolv_conf,
    check_resolv_conf_step_lasts,
    check_root_grown,
    check_settled,
    check_status_ok,
    renew_dhcp_lease,
    status,
    write_instance,
)

import harness

pytestmark = [pytest.mark.e2e, pytest.mark.root]

# one scenario, so that whether CI boots it is said as for the others (scenarios.py)
MATRIX = {"lvm-spacer": dict(image=dict(layout="lvm-spacer", net="ifupdown"), ci=True)}
DNS = ["192.0.2.21", "192.0.2.22"]


@pytest.fixture(scope="class", params=sorted(MATRIX))
def spacer_guest(request, variant_image, keys, e2e_dir):
    name = request.param
    image = variant_image(**MATRIX[name]["image"])
    d = e2e_dir / name
    u = str(uuid.uuid4())
    tree = write_instance(d / "drive", u, "spacer-guest.novalocal",
                          [harness.public_key(keys["user"])], dns=DNS)
    iso = harness.config_drive_iso(tree, d / "config-2.iso")
    with harness.Guest(image, d / "vm", name, key=keys["user"],
                       root_key=keys["debug"], config_drive=iso, disk_size=DISK,
                       instance_uuid=u) as g:
        g.wait_ssh()
        g.report_boot()
        yield g


def growroot(st):
    found = [s for s in all_steps(st) if s["name"] == "growroot"]
    assert found, f"growroot did not run: {st}"
    return found


def sizes(guest):
    def one(cmd):
        return int(guest.ssh(f"sudo -n {cmd} --noheadings --units b --nosuffix").stdout.split()[0])
    return {"lv": one("lvs -o lv_size vg0/root"), "free": one("vgs -o vg_free vg0")}


class TestLvmSpacer:
    def test_boot_settles_running(self, spacer_guest):
        check_settled(spacer_guest)

    def test_new_pv_made_vg_extended_lv_and_fs_grown(self, spacer_guest):
        assert spacer_guest.ssh("findmnt -no SOURCE /").stdout.strip() == "/dev/mapper/vg0-root"
        pvs = spacer_guest.ssh("sudo -n pvs --noheadings -o pv_name,vg_name").stdout.split()
        assert pvs == ["/dev/vda1", "vg0", "/dev/vda3", "vg0"], pvs
        got = sizes(spacer_guest)
        assert got["lv"] > 0.95 * DISK_BYTES and got["free"] < 8 * 1024 ** 2, got
        check_root_grown(spacer_guest)
        # the backup GPT header moved to the disk's end (3 GiB = 6291456 sectors)
        dump = spacer_guest.ssh("sudo -n sfdisk -d /dev/vda").stdout
        assert "last-lba: 6291422" in dump, dump
        changes = [c for s in growroot(status(spacer_guest)) for c in s.get("changes", [])]
        assert any(c.startswith("made partition 3 on /dev/vda") for c in changes), changes

    def test_status_ok_and_no_failed_unit(self, spacer_guest):
        check_status_ok(spacer_guest, final=False)
        check_no_failed_units(spacer_guest)

    def test_dns_after_the_boot_settled(self, spacer_guest):
        check_dhclient_owns_the_network(spacer_guest)
        check_resolv_conf(spacer_guest, DNS, when="after the boot settled")
        check_resolv_conf_step_lasts(status(spacer_guest))

    def test_dns_after_a_lease_renewal(self, spacer_guest):
        renew_dhcp_lease(spacer_guest)
        check_resolv_conf(spacer_guest, DNS, when="after dhclient -r; dhclient")
        check_no_failed_units(spacer_guest)

    def test_second_boot_changes_nothing(self, spacer_guest):
        before = sizes(spacer_guest)
        table = spacer_guest.ssh("sudo -n sfdisk -d /dev/vda").stdout
        first = status(spacer_guest)
        spacer_guest.reboot()
        spacer_guest.report_boot()
        check_settled(spacer_guest)
        check_reboot(spacer_guest, first)  # nothing changed: the guard starts no agent
        assert sizes(spacer_guest) == before
        assert spacer_guest.ssh("sudo -n sfdisk -d /dev/vda").stdout == table
        check_root_grown(spacer_guest)
        check_dhclient_owns_the_network(spacer_guest)
        check_resolv_conf(spacer_guest, DNS, when="after a reboot the agent sat out")
        check_no_failed_units(spacer_guest)
