"""mounts, mount_default_fields, swap and Nova's ephemeral disk (cloud-init's cc_mounts).

Under --root the step writes fstab and makes the swap file for real
(fallocate, mkswap) but mounts nothing; the boot test mounts and swaps on.
"""

import os
import shutil

import pytest

from guestagent.steps import Skip
from guestagent.steps import mounts as step
from guestagent.userdata import decode

from support.step_context import StepContext

GiB = 1024 ** 3
IMAGE_FSTAB = "/dev/vda1 / ext4 errors=remount-ro 0 1\n"


@pytest.fixture
def mroot(root):
    (root / "etc/fstab").write_text(IMAGE_FSTAB)
    return root


def ephemeral(root):
    """udev's link for a filesystem labelled ephemeral0, as the root shows it."""
    d = root / "dev/disk/by-label"
    d.mkdir(parents=True)
    os.symlink("../../vdb", d / "ephemeral0")


def run(root, text=None, cloud_config=None):
    if text is not None:
        ud = decode(text.encode(), 1 << 20)
        assert ud.warnings == []
        cloud_config = ud.cloud_config
    return step.run(StepContext(root, cloud_config=cloud_config or {}))


def fstab(root):
    return (root / "etc/fstab").read_text()


def test_ephemeral0_goes_to_mnt_by_default_with_nofail(mroot):
    ephemeral(mroot)
    run(mroot)
    assert fstab(mroot) == IMAGE_FSTAB + \
        "LABEL=ephemeral0\t/mnt\tauto\tdefaults,nofail,comment=guestagent\t0\t2\n"
    assert (mroot / "mnt").is_dir()


def test_no_ephemeral_disk_and_nothing_asked_is_a_skip(mroot):
    with pytest.raises(Skip):
        run(mroot)
    assert fstab(mroot) == IMAGE_FSTAB


def test_cloud_init_documented_example(mroot):
    ephemeral(mroot)
    (mroot / "dev/sdc").touch()
    run(mroot, """#cloud-config
mounts:
 - [ ephemeral0, /mnt, auto, "defaults,noexec" ]
 - [ sdc, /opt/data ]
 - [ xvdh, /opt/data, "auto", "defaults,nofail", "0", "0" ]
mount_default_fields: [None, None, "auto", "defaults,nofail", "0", "2"]
""")
    lines = fstab(mroot).splitlines()
    assert lines[0] == IMAGE_FSTAB.strip()
    assert lines[1:] == [
        "LABEL=ephemeral0\t/mnt\tauto\tdefaults,noexec,comment=guestagent\t0\t2",
        "/dev/sdc\t/opt/data\tauto\tdefaults,nofail,comment=guestagent\t0\t2",
        "/dev/xvdh\t/opt/data\tauto\tdefaults,nofail,comment=guestagent\t0\t0",
    ]


def test_ephemeral_elsewhere_or_removed(mroot):
    ephemeral(mroot)
    run(mroot, "#cloud-config\nmounts:\n  - [ephemeral0, /data]\n")
    assert "LABEL=ephemeral0\t/data\tauto" in fstab(mroot) and "/mnt" not in fstab(mroot)
    run(mroot, "#cloud-config\nmounts:\n  - [ephemeral0]\n")
    assert fstab(mroot) == IMAGE_FSTAB  # our old line replaced, the image's kept


@pytest.mark.skipif(not (shutil.which("fallocate") and shutil.which("mkswap")),
                    reason="needs util-linux")
def test_swap_file_is_made_for_real(mroot):
    changes = run(mroot, "#cloud-config\nswap:\n  filename: /swapfile\n  size: 2M\n"
                         "  maxsize: 2G\n")
    p = mroot / "swapfile"
    assert p.stat().st_size == 2 * 1024 * 1024 and (p.stat().st_mode & 0o777) == 0o600
    with open(p, "rb") as f:
        f.seek(4096 - 10)
        assert f.read(10) == b"SWAPSPACE2"  # what mkswap writes
    assert "made swap file /swapfile (2 MiB)" in changes
    assert "/swapfile\tnone\tswap\tsw,comment=guestagent\t0\t0" in fstab(mroot)


def test_swap_size_zero_or_missing_makes_none(mroot):
    with pytest.raises(Skip):
        run(mroot, "#cloud-config\nswap:\n  filename: /swapfile\n  size: 0\n")
    assert not (mroot / "swapfile").exists()


@pytest.mark.parametrize("memory, maxsize, free, expected", [
    (1 * GiB, None, 100 * GiB, 1 * GiB),          # < 4G: as much as the memory
    (8 * GiB, None, 100 * GiB, 4 * GiB),          # < 16G: 4G
    (64 * GiB, None, 400 * GiB, 8 * GiB),         # sqrt(64) G
    (8 * GiB, None, 8 * GiB, 2 * GiB),            # a quarter of the free space
    (8 * GiB, 1 * GiB, 100 * GiB, 1 * GiB),       # maxsize
    (2 * GiB, 10 * GiB, 1 * GiB, int(0.9 * GiB)),  # never more than 90% of the free space
])
def test_auto_size_follows_cloud_init(memory, maxsize, free, expected):
    assert step.auto_swap_size(memory, maxsize, free) == expected


def test_schema_warnings():
    ud = decode(b"#cloud-config\nmounts: [[a, 'b c'], 5, [x, /y]]\nswap: {size: lots}\n",
                1 << 20)
    assert ud.cloud_config["mounts"] == [["x", "/y"]]
    text = " ".join(ud.warnings)
    assert "mounts entry 1" in text and "mounts entry 2" in text and "swap: size" in text


def test_disks_are_mounted_before_the_users_step_makes_homes():
    """cloud-init runs disk_setup and mounts before users_groups: a `mounts`
    entry for /home must hold the home directories, not hide them."""
    from guestagent import steps
    order = steps.CONFIG_STEPS
    assert order.index("disk_setup") < order.index("mounts") < order.index("users")
