"""guestagent/system/block_labels.py: labels read off real filesystem images made by
the real mkfs tools, and checked against what blkid reads from the same file."""

import os
import shutil
import subprocess

import pytest

from guestagent.system import block_labels

MAKERS = {
    "ext4": (["mkfs.ext4", "-q", "-F", "-L"], 16),
    "ext2": (["mkfs.ext2", "-q", "-F", "-L"], 16),
    "xfs": (["mkfs.xfs", "-q", "-f", "-L"], 300),
    "btrfs": (["mkfs.btrfs", "-q", "-f", "-L"], 128),
    "swap": (["mkswap", "-L"], 16),
    "vfat": (["mkfs.vfat", "-n"], 16),
}


def image(tmp_path, fs, label):
    argv, mib = MAKERS[fs]
    if not shutil.which(argv[0]):
        pytest.skip(f"{argv[0]} is not installed (tests/apt-packages)")
    path = tmp_path / f"{fs}-{label or 'none'}.img"
    with open(path, "wb") as f:
        f.truncate(mib << 20)
    if label:
        cmd = argv + [label, str(path)]
    else:
        cmd = [a for a in argv if a not in ("-L", "-n")] + [str(path)]
    subprocess.run(cmd, check=True, capture_output=True)
    return path


def blkid_label(path):
    res = subprocess.run(["blkid", "-p", "-o", "value", "-s", "LABEL", str(path)],
                         capture_output=True, text=True)
    return res.stdout.strip()


@pytest.mark.parametrize("fs", sorted(MAKERS))
@pytest.mark.parametrize("label", ["ephemeral0", "EPH"])
def test_the_label_blkid_reads(tmp_path, fs, label):
    if fs == "xfs" and len(label) > 12:
        pytest.skip("XFS labels are 12 bytes")
    path = image(tmp_path, fs, label)
    got = block_labels.read_label(str(path))
    assert got == label
    if shutil.which("blkid"):
        assert got == blkid_label(path)


@pytest.mark.parametrize("fs", ["ext4", "xfs", "swap"])
def test_a_filesystem_without_a_label_reads_as_empty(tmp_path, fs):
    assert block_labels.read_label(str(image(tmp_path, fs, None))) == ""


def test_no_filesystem_or_no_device_is_none(tmp_path):
    zeros = tmp_path / "zeros"
    zeros.write_bytes(bytes(1 << 20))
    assert block_labels.read_label(str(zeros)) is None
    assert block_labels.read_label(str(tmp_path / "absent")) is None
    short = tmp_path / "short"
    short.write_bytes(b"\x55\xaa" * 10)
    assert block_labels.read_label(str(short)) is None


def tree(tmp_path, devices):
    """A /sys/class/block and /dev pair: name -> (image file or None, sectors)."""
    sysb, dev = tmp_path / "sys", tmp_path / "dev"
    dev.mkdir()
    for name, (path, sectors) in devices.items():
        (sysb / name).mkdir(parents=True)
        (sysb / name / "size").write_text(f"{sectors}\n")
        if path is not None:
            shutil.copy(path, dev / name)
    return str(sysb), str(dev)


def test_find_the_disk_by_label(tmp_path):
    eph = image(tmp_path, "ext4", "ephemeral0")
    root_fs = image(tmp_path, "ext4", "cloudimg-rootfs")
    sysb, dev = tree(tmp_path, {
        "vda": (None, 6291456), "vda1": (root_fs, 6289408),
        "vdb": (eph, 2097152), "sr0": (None, 0), "loop0": (eph, 32768)})
    assert block_labels.find(("ephemeral0",), sysb, dev) == os.path.join(dev, "vdb")
    assert block_labels.find(("ephemeral1",), sysb, dev) is None
    # a size cap passes over the disk; a skipped prefix is never opened
    assert block_labels.find(("ephemeral0",), sysb, dev, max_sectors=1024) is None
    assert block_labels.find(("ephemeral0",), sysb, dev, skipped=("vd", "loop")) is None


def test_find_in_a_tree_that_is_not_there(tmp_path):
    assert block_labels.find(("x",), str(tmp_path / "nosys"), str(tmp_path / "nodev")) is None
