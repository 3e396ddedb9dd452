"""Hostile metadata documents: never a traceback, never a secret in query output."""

import json
import os
import shutil
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guestagent.datasources import configdrive
from guestagent.datasources.openstack_documents import from_openstack_documents
from guestagent.system import block_labels

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12)

FIELDS = ["uuid", "hostname", "public_keys", "keys", "admin_pass", "random_seed", "files",
          "availability_zone", "name", "meta"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(FIELDS), json_values), json_values, json_values)
def test_any_json_types_normalise_or_fail_cleanly(meta, network, vendor):
    meta.setdefault("uuid", "0b5a2e2c-0000-4000-8000-000000000000")
    try:
        md = from_openstack_documents("t", meta, network, vendor)
    except ValueError:
        return  # a clear "this document is unusable" is fine
    assert isinstance(md.hostname, str)
    assert all(isinstance(k, str) and "\n" not in k for k in md.public_keys)
    assert all(isinstance(s, str) for s in md.dns_nameservers)
    json.dumps(md.public_dict())
    json.dumps(md.to_dict())


def _drive(tmp_path, meta_bytes, extra=None):
    base = tmp_path / "drive/openstack/latest"
    base.mkdir(parents=True)
    (base / "meta_data.json").write_bytes(meta_bytes)
    for name, data in (extra or {}).items():
        p = tmp_path / "drive/openstack" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return str(tmp_path / "drive")


def test_invalid_json_is_a_clear_error(tmp_path):
    drive = _drive(tmp_path, b'{"uuid": "x", ')
    try:
        configdrive.read_tree(drive, 1 << 20)
    except ValueError as e:
        assert "meta_data.json" in str(e) and "not valid JSON" in str(e)
    else:
        raise AssertionError("invalid JSON accepted")


def test_injected_content_paths_cannot_escape_the_drive(tmp_path, caplog):
    secret = tmp_path / "secret"
    secret.write_text("host secret")
    meta = {"uuid": "u-1", "files": [
        {"path": "/etc/a", "content_path": "/content/../../../secret"},
        {"path": "/etc/b", "content_path": str(secret)},
        {"path": "/etc/c", "content_path": "/content/0001"},
        {"path": "/etc/d", "content_path": "/content/0002"},
        {"path": "/etc/e", "content_path": 7},
    ]}
    drive = _drive(tmp_path, json.dumps(meta).encode(), {"content/0001": b"fine"})
    os.symlink(str(secret), tmp_path / "drive/openstack/content/0002")
    md = configdrive.read_tree(drive, 1 << 20)
    assert [(f.path, f.content) for f in md.files] == [("/etc/c", b"fine")]
    assert "not under openstack/content" in caplog.text
    assert "missing or not a plain file" in caplog.text


def test_oversized_user_data_is_refused_alone(tmp_path, caplog):
    drive = _drive(tmp_path, b'{"uuid": "u-1", "hostname": "h"}',
                   {"latest/user_data": b"x" * 2048})
    md = configdrive.read_tree(drive, 1024)
    assert md.user_data == b"" and md.hostname == "h"
    assert "user_data: larger than 1024 bytes" in caplog.text


@pytest.mark.skipif(not (shutil.which("genisoimage") and shutil.which("mkfs.vfat")),
                    reason="needs genisoimage and dosfstools (tests/apt-packages)")
def test_config_drive_label_sniffing_on_real_images(tmp_path):
    """Labels read straight off real iso9660 and FAT images, as without udev."""
    tree = tmp_path / "tree/openstack/latest"
    tree.mkdir(parents=True)
    (tree / "meta_data.json").write_text('{"uuid": "u"}')
    iso = tmp_path / "cd.iso"
    subprocess.run(["genisoimage", "-quiet", "-V", "config-2", "-r", "-J", "-o", str(iso),
                    str(tmp_path / "tree")], check=True)
    assert block_labels.read_label(str(iso)) == "config-2"
    for fat_bits in ("16", "32"):
        img = tmp_path / f"fat{fat_bits}.img"
        subprocess.run(["truncate", "-s", "64M", str(img)], check=True)
        subprocess.run(["mkfs.vfat", "-F", fat_bits, "-n", "CONFIG-2", str(img)], check=True,
                       capture_output=True)
        assert block_labels.read_label(str(img)) == "CONFIG-2"
    plain = tmp_path / "zero.img"
    plain.write_bytes(bytes(40 * 2048))
    assert block_labels.read_label(str(plain)) is None


def test_find_device_by_sysfs_without_udev(tmp_path):
    """With no /dev/disk/by-label, small block devices are sniffed."""
    sysb, dev = tmp_path / "sys", tmp_path / "dev"
    for name, sectors, label in (("vda", 20971520, None), ("vdb", 131072, "config-2"),
                                 ("sr0", 0, None)):
        (sysb / name).mkdir(parents=True)
        (sysb / name / "size").write_text(f"{sectors}\n")
        dev.mkdir(exist_ok=True)
        data = bytearray(40 * 2048)
        if label:
            data[16 * 2048 + 1:16 * 2048 + 6] = b"CD001"
            data[16 * 2048 + 40:16 * 2048 + 72] = label.encode().ljust(32)
        (dev / name).write_bytes(bytes(data))
    assert configdrive.find_device(str(sysb), str(dev)) == str(dev / "vdb")
    (dev / "vdb").write_bytes(bytes(40 * 2048))
    assert configdrive.find_device(str(sysb), str(dev)) is None


def test_ids_and_content_paths_with_a_trailing_newline_are_not_plain():
    from guestagent.state import safe_id
    assert safe_id("abc") == "abc"
    assert safe_id("abc\n") != "abc\n" and "\n" not in safe_id("abc\n")
    assert configdrive._CONTENT_PATH.fullmatch("content/0000\n") is None


def test_user_names_and_shells_with_a_trailing_newline_are_refused():
    from guestagent import accounts
    assert accounts.valid_name("debian") and not accounts.valid_name("debian\n")
    assert accounts.valid_shell("/bin/sh") and not accounts.valid_shell("/bin/sh\n")
