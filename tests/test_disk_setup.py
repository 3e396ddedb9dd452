"""disk_setup / fs_setup, simple cases, on real loop-device disks."""

import subprocess

import pytest

from guestagent.steps import Skip
from guestagent.steps import disk_setup as step
from guestagent.userdata import decode

from support.loopdisk import LoopDisk
from support.marks import needs_root
from support.step_context import StepContext


def blkid(dev, what):
    return subprocess.run(["blkid", "-p", "-o", "value", "-s", what, dev],
                          capture_output=True, text=True).stdout.strip()


@needs_root
@pytest.mark.root
def test_one_gpt_partition_and_ext4_then_nothing_overwritten(tmp_path, root):
    with LoopDisk(tmp_path, 64, table=None) as disk:
        cc = {"disk_setup": {disk.dev: {"table_type": "gpt", "layout": True,
                                        "overwrite": False}},
              "fs_setup": [{"label": "data", "filesystem": "ext4", "device": disk.dev,
                            "partition": "auto"}]}
        changes = step.run(StepContext(root, cloud_config=cc, live=True)).changes
        disk.made_nodes.append(disk.part(1))
        assert changes == [f"{disk.dev}: gpt partition table, one partition",
                           f"made ext4 on {disk.part(1)} labelled data"]
        assert blkid(disk.dev, "PTTYPE") == "gpt"
        assert blkid(disk.part(1), "LABEL") == "data"
        uuid = blkid(disk.part(1), "UUID")
        with pytest.raises(Skip, match="there already"):
            step.run(StepContext(root, cloud_config=cc, live=True))
        assert blkid(disk.part(1), "UUID") == uuid  # not reformatted


@needs_root
@pytest.mark.root
def test_a_used_disk_is_never_repartitioned(tmp_path, root):
    with LoopDisk(tmp_path, 64, table=None) as disk:
        disk.mkfs("ext4", disk.dev)
        uuid = blkid(disk.dev, "UUID")
        with pytest.raises(Skip):
            step.run(StepContext(root, live=True, cloud_config={
                "disk_setup": {disk.dev: {"table_type": "mbr", "layout": True}},
                "fs_setup": [{"filesystem": "xfs", "device": disk.dev,
                              "partition": "none"}]}))
        assert blkid(disk.dev, "UUID") == uuid and blkid(disk.dev, "PTTYPE") == ""


def test_what_is_not_simple_is_named(root):
    ctx = StepContext(root, live=True, cloud_config={
        "disk_setup": {"/dev/vdz": {"table_type": "mbr", "layout": [33, [66, 82]]}},
        "fs_setup": [{"filesystem": "zfs", "device": "/dev/vdz"}]})
    out = step.run(ctx)
    assert "only a single partition" in out.error and "'zfs' is not one of" in out.error
    assert out.changes == []


def test_under_root_nothing_is_touched(root):
    with pytest.raises(Skip, match="only on a live system"):
        step.run(StepContext(root, cloud_config={"fs_setup": [
            {"filesystem": "ext4", "device": "/dev/sda"}]}))


def test_documented_shapes_parse():
    ud = decode(b"""#cloud-config
disk_setup:
  /dev/sdb:
    table_type: gpt
    layout: true
    overwrite: false
fs_setup:
  - label: data
    device: /dev/sdb
    partition: auto
    filesystem: ext4
  - {label: nodevice}
""", 1 << 20)
    assert ud.cloud_config["disk_setup"] == {"/dev/sdb": {"table_type": "gpt", "layout": True,
                                                          "overwrite": False}}
    assert len(ud.cloud_config["fs_setup"]) == 1
    assert any("fs_setup entry 2 needs a device" in w for w in ud.warnings)
