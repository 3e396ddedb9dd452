"""units/guestagent-local-source: the local unit is skipped (no Python starts)
only when its stage could find nothing, on scratch trees: real iso9660 and FAT
images stand in for the block devices, and the agent's own label reader
(datasources/configdrive.py) must agree with the script on every one."""

import os
import shutil
import subprocess

import pytest

from guestagent.datasources import configdrive, nocloud

from support import REPO

SCRIPT = os.path.join(REPO, "units", "guestagent-local-source")
UUID = "3f1c0d3e-8a4b-4c1e-9d2a-6b7e5f4a3c21"

needs_mkfs = pytest.mark.skipif(
    not (shutil.which("genisoimage") and shutil.which("mkfs.vfat")),
    reason="needs genisoimage and dosfstools (tests/apt-packages)")


def local_source(root):
    """(exit code, stdout): 0 = start the local stage, 1 = skip it."""
    res = subprocess.run(["sh", SCRIPT, str(root)], capture_output=True, text=True, timeout=60)
    assert res.stderr == ""
    return res.returncode, res.stdout


def block_device(root, name, image, sectors=None):
    """``image`` as /dev/NAME with its /sys/class/block entry."""
    dev = root / "dev" / name
    dev.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(image, dev)
    sys_dir = root / "sys/class/block" / name
    sys_dir.mkdir(parents=True, exist_ok=True)
    size = sectors if sectors is not None else os.path.getsize(image) // 512
    (sys_dir / "size").write_text(f"{size}\n")
    return dev


def iso(tmp_path, label):
    content = tmp_path / f"iso-{label}"
    (content / "openstack/latest").mkdir(parents=True)
    (content / "openstack/latest/meta_data.json").write_text('{"uuid": "x"}')
    out = tmp_path / f"{label}.iso"
    subprocess.run(["genisoimage", "-quiet", "-V", label, "-r", "-J", "-o", str(out),
                    str(content)], check=True)
    return out


def fat(tmp_path, label, bits):
    out = tmp_path / f"{label}-{bits}.img"
    with open(out, "wb") as f:
        f.truncate((40 if bits == "32" else 4) << 20)
    subprocess.run(["mkfs.vfat", "-F", bits, "-n", label, str(out)], check=True,
                   capture_output=True)
    return out


def test_nothing_to_read_skips_the_stage_and_says_why(root):
    code, out = local_source(root)
    assert code == 1
    assert "no config drive, no NoCloud seed and no stored instance" in out
    assert "the network stage will look" in out


def test_a_missing_root_is_doubt_and_starts_the_stage(tmp_path):
    assert local_source(tmp_path / "absent")[0] == 0


@pytest.mark.parametrize("stored, dmi, start", [
    (UUID, UUID.upper(), True),          # Nova's SMBIOS UUID: upper case there
    (UUID + "\n", UUID + "\n", True),
    (UUID, "00000000-0000-0000-0000-000000000000", False),   # another instance
    ("", UUID, False),
    (UUID, None, False),                 # no DMI (not a Nova guest)
])
def test_the_stored_instance_this_machine_still_is(root, stored, dmi, start):
    state = root / "var/lib/guestagent"
    state.mkdir(parents=True)
    (state / "instance-id").write_text(stored)
    if dmi is not None:
        (root / "sys/class/dmi/id").mkdir(parents=True)
        (root / "sys/class/dmi/id/product_uuid").write_text(dmi)
    assert local_source(root)[0] == (0 if start else 1)


@pytest.mark.parametrize("conf, dropin, start", [
    ("[configdrive]\npath = /srv/drive\n", False, True),
    ("[main]\nx = 1\n\n  [ configdrive ]\n  path: /srv/drive\n", False, True),
    ("[configdrive]\npath = /srv/drive\n", True, True),      # in a drop-in
    ("[configdrive]\npath =\n", False, False),                # empty: look for a device
    ("[configdrive]\n# path = /srv/drive\n", False, False),
    ("[userdata]\npath = /srv/drive\n", False, False),         # another section's key
])
def test_a_configured_config_drive_tree(root, conf, dropin, start):
    d = root / "etc/guestagent"
    if dropin:
        (d / "guestagent.conf.d").mkdir(parents=True)
        (d / "guestagent.conf").write_text("[main]\n")
        (d / "guestagent.conf.d/50-drive.conf").write_text(conf)
    else:
        d.mkdir(parents=True)
        (d / "guestagent.conf").write_text(conf)
    assert local_source(root)[0] == (0 if start else 1)


@pytest.mark.parametrize("seed, start", [
    ("var/lib/cloud/seed/nocloud/meta-data", True),
    ("var/lib/cloud/seed/nocloud-net/meta-data", True),
    ("var/lib/cloud/seed/nocloud/user-data", False),   # no meta-data: not a seed
    ("var/lib/cloud/seed/azure/meta-data", False),
])
def test_a_nocloud_seed_directory_in_the_image(root, seed, start):
    (root / seed).parent.mkdir(parents=True)
    (root / seed).write_text("instance-id: iid-1\n")
    assert local_source(root)[0] == (0 if start else 1)


@pytest.mark.parametrize("label", ["config-2", "CONFIG-2", "cidata", "CIDATA"])
def test_a_udev_label_link(root, label):
    links = root / "dev/disk/by-label"
    links.mkdir(parents=True)
    (links / label).symlink_to("../../sr0")
    (root / "dev/sr0").write_bytes(b"")   # udev's node; its label is not read again
    assert local_source(root)[0] == 0


@needs_mkfs
@pytest.mark.parametrize("kind, label, name, sectors, start", [
    ("iso", "config-2", "sr0", None, True),
    ("iso", "CONFIG-2", "vdb", None, True),
    ("iso", "config-3", "sr0", None, False),
    ("iso", "config-2", "sr0", 4194305, False),   # over 2 GiB: not a config drive
    ("iso", "config-2", "sr0", 0, False),         # an empty tray
    ("iso", "config-2", "loop0", None, False),    # loop, dm, md...: never probed
    ("iso", "config-2", "fd0", None, False),      # a floppy without media stalls a read
    ("fat12", "CONFIG-2", "vdb", None, True),
    ("fat32", "config-2", "sdb", None, True),
    ("fat32", "cidata", "sdb", None, True),       # NoCloud (cloud-localds --filesystem vfat)
    ("iso", "cidata", "sr0", None, True),         # NoCloud (cloud-localds, libvirt, Proxmox)
    ("iso", "CIDATA", "vdb", None, True),
    ("fat12", "CIDATA", "vdb", None, True),
    ("iso", "cidata2", "sr0", None, False),
    ("iso", "cidata", "sr0", 4194305, False),
])
def test_a_label_read_off_the_device_agrees_with_the_agent(tmp_path, root, kind, label, name,
                                                          sectors, start):
    image = iso(tmp_path, label) if kind == "iso" else fat(tmp_path, label, kind[3:])
    dev = block_device(root, name, image, sectors)
    # a disk that is no config drive beside it, as in every guest
    block_device(root, "vda", fat(tmp_path, "rootfs", "12"))
    assert local_source(root)[0] == (0 if start else 1)
    finder = nocloud if label.lower().startswith("cidata") else configdrive
    agent = finder.find_device(str(root / "sys/class/block"), str(root / "dev"))
    assert (agent == str(dev)) == start


@needs_mkfs
def test_unreadable_or_odd_devices_are_passed_over(tmp_path, root):
    block_device(root, "vdc", fat(tmp_path, "data", "12"), sectors="garbage")
    (root / "sys/class/block/sr1").mkdir(parents=True)   # no size file, no /dev node
    zeros = tmp_path / "zeros"
    zeros.write_bytes(bytes(64 << 10))
    block_device(root, "vdd", zeros)
    assert local_source(root)[0] == 1
    block_device(root, "sr0", iso(tmp_path, "config-2"))
    assert local_source(root)[0] == 0
