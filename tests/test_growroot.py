"""growroot on real disks: loop-device images, grown and checked.

Every test points growroot only at its own loop devices' mount points
(``[growroot] devices = <mount point>``, under ``--root``, where ``/`` is
refused): this machine's own disks are never touched.
"""

import json
import os
import shutil
import subprocess
import time

import pytest

from guestagent.steps import Skip, growroot
from guestagent.steps.growroot import blockdev, lvm, unfinished_pv
from guestagent.steps.growroot.partition_table import NewPartition, msdos_extended, parse_parted
from guestagent.system import System
from guestagent.system import mount_table as mounts

from support import EXAMPLES, REPO, agent_argv
from support.loopdisk import (
    LoopDisk,
    MiB,
    fs_bytes,
    has_cap_sys_resource,
    read_digest,
    sh,
    write_data,
)
from support.marks import needs_root
from support.step_context import read_cloud_config

GROW_MIB = 200


def write_conf(tmp_path, devices, extra=""):
    conf = tmp_path / "guestagent.conf"
    conf.write_text(f"[main]\ndatasources = configdrive\n"
                    f"[configdrive]\npath = {EXAMPLES}/configdrive\n"
                    f"[growroot]\ndevices = {devices}\n{extra}")
    return conf


def run_growroot(run_agent, root, conf):
    res = run_agent("--once", "--only", "growroot", "--root", root, "--config", conf)
    status = json.loads(run_agent("status", "--json", "--root", root, check=True).stdout)
    steps = [s for s in status["last"]["steps"] if s["name"] == "growroot"]
    assert len(steps) == 1, status
    return res, steps[0]


def fsck_when_released(node, timeout=30.0):
    """e2fsck -f, retried: a device just unmounted stays busy while udev and
    the kernel let go of it, which took over 5 s on a loaded 2-core host."""
    deadline = time.monotonic() + timeout
    while True:
        res = sh("e2fsck", "-fp", node, check=False)
        if res.returncode in (0, 1) or time.monotonic() > deadline:
            assert res.returncode in (0, 1), res.stdout + res.stderr
            return
        time.sleep(0.2)


def assert_fills_disk(disk, n, before_sectors):
    start, size = disk.part_extent(n)
    assert size > before_sectors
    # growpart leaves at most GPT's backup header and alignment slack
    assert disk.sectors() - (start + size) < 2048, (disk.sectors(), start, size)


# -- the matrix: gpt and msdos, ext4, XFS and btrfs ------------------------------

@needs_root
@pytest.mark.root
@pytest.mark.parametrize("table", ["gpt", "dos"])
@pytest.mark.parametrize("fstype", ["ext4", "xfs", "btrfs"])
def test_grows_partition_and_filesystem(tmp_path, root, run_agent, table, fstype):
    with LoopDisk(tmp_path, 330, table, ["size=320MiB"]) as disk:
        part = disk.part(1)
        disk.mkfs(fstype, part)
        mp = disk.mount(part, tmp_path / "mnt point")  # a space: mountinfo's \040
        digest = write_data(mp)
        fs_before = fs_bytes(mp)
        _, part_before = disk.part_extent(1)
        disk.enlarge(GROW_MIB)
        conf = write_conf(tmp_path, mp)

        res, step = run_growroot(run_agent, root, conf)
        assert_fills_disk(disk, 1, part_before)
        assert read_digest(mp) == digest
        assert any(c.startswith("grew partition 1 of " + disk.dev) for c in step["changes"]
                   ) or "grew partition 1" in res.stderr, (step, res.stderr)
        if fstype == "ext4" and not has_cap_sys_resource():
            # This sandbox drops CAP_SYS_RESOURCE, without which the kernel refuses
            # to grow a mounted ext4: the step must fail, saying exactly that, with
            # the partition already grown (a real guest has the capability; the QEMU
            # end-to-end test grows a real ext4 root).
            assert res.returncode == 1, res.stderr
            assert step["result"] == "failed"
            assert "CAP_SYS_RESOURCE" in step["error"] and part in step["error"]
            assert "grew partition 1" in res.stderr
            disk.umount(mp)
            fsck_when_released(part)
            sh("resize2fs", part)
            disk.mount(part, mp)
        else:
            assert res.returncode == 0, res.stderr
            assert step["result"] == "changed", step
            assert any(f"grew the {fstype} filesystem on {mp}" in c for c in step["changes"])
        assert fs_bytes(mp) > fs_before + GROW_MIB * MiB // 2
        assert read_digest(mp) == digest

        # a second run: nothing to do, quietly
        res, step = run_growroot(run_agent, root, conf)
        assert res.returncode == 0, res.stderr
        assert step["result"] == "ok" and step["changes"] == [], step
        assert "growpart" not in res.stderr


@needs_root
@pytest.mark.root
def test_partition_grown_then_filesystem_failed_shows_both(tmp_path, root):
    """A partition grown before its filesystem's grow failed is a change the
    operator must see beside the failure: the kernel refuses to grow a
    mounted ext4 for a process without CAP_SYS_RESOURCE (a container), so
    the agent runs without it (setpriv drops it, as some sandboxes do) and
    the real resize2fs fails after the real growpart worked."""
    with LoopDisk(tmp_path, 130, "gpt", ["size=100MiB"]) as disk:
        part = disk.part(1)
        disk.mkfs("ext4", part)
        mp = disk.mount(part, tmp_path / "mnt")
        _, part_before = disk.part_extent(1)
        disk.enlarge(64)
        conf = write_conf(tmp_path, mp)
        res = subprocess.run(["setpriv", "--bounding-set=-sys_resource",
                              "--inh-caps=-sys_resource", "--"] + agent_argv()
                             + ["--once", "--only", "growroot", "--root", str(root),
                                "--config", str(conf)],
                             capture_output=True, text=True, timeout=300,
                             env=dict(os.environ, PYTHONPATH=REPO))
        assert res.returncode == 1, res.stderr
        assert_fills_disk(disk, 1, part_before)
        status = subprocess.run(agent_argv() + ["status", "--json", "--root", str(root)],
                                capture_output=True, text=True, timeout=60,
                                env=dict(os.environ, PYTHONPATH=REPO))
        [step] = [s for s in json.loads(status.stdout)["last"]["steps"]
                  if s["name"] == "growroot"]
        assert step["result"] == "failed"
        assert step["error"].startswith(f"{mp}: resize2fs {part} failed (exit 1): ")
        assert "CAP_SYS_RESOURCE" in step["error"]
        [grown] = step["changes"]
        assert grown.startswith(f"grew partition 1 of {disk.dev} from 100.0 MiB to "), step
        shown = subprocess.run(agent_argv() + ["status", "--root", str(root)],
                               capture_output=True, text=True, timeout=60,
                               env=dict(os.environ, PYTHONPATH=REPO)).stdout
        assert f"changed: {grown}" in shown, shown


# -- cases where there is nothing (or only something) to grow ----------------------

@needs_root
@pytest.mark.root
def test_partition_that_is_not_the_last_is_left_alone(tmp_path, root, run_agent):
    with LoopDisk(tmp_path, 250, "gpt", ["size=120MiB", "size=120MiB"]) as disk:
        disk.mkfs("btrfs", disk.part(1))
        mp = disk.mount(disk.part(1), tmp_path / "mnt")
        fs_before = fs_bytes(mp)
        extent = disk.part_extent(1)
        disk.enlarge(GROW_MIB)
        res, step = run_growroot(run_agent, root, write_conf(tmp_path, mp))
        assert res.returncode == 0, res.stderr
        assert step["result"] == "ok" and step["changes"] == []
        assert disk.part_extent(1) == extent and fs_bytes(mp) == fs_before
        # growpart itself, asked anyway, answers NOCHANGE: a quiet no-op
        assert growroot._growpart(System("/"), disk.dev, 1) == []
        assert disk.part_extent(1) == extent


@needs_root
@pytest.mark.root
def test_filesystem_on_a_whole_disk_grows_without_partitioning(tmp_path, root, run_agent):
    with LoopDisk(tmp_path, 320, table=None) as disk:
        disk.mkfs("xfs", disk.dev)
        mp = disk.mount(disk.dev, tmp_path / "mnt")
        digest = write_data(mp)
        fs_before = fs_bytes(mp)
        disk.enlarge(GROW_MIB)
        conf = write_conf(tmp_path, mp)
        res, step = run_growroot(run_agent, root, conf)
        assert res.returncode == 0, res.stderr
        assert [c for c in step["changes"] if "partition" in c] == []
        assert fs_bytes(mp) > fs_before + GROW_MIB * MiB // 2
        assert read_digest(mp) == digest
        assert sh("sfdisk", "-d", disk.dev, check=False).returncode != 0  # still no table
        res, step = run_growroot(run_agent, root, conf)
        assert res.returncode == 0 and step["changes"] == [] and step["result"] == "ok"


@needs_root
@pytest.mark.root
def test_grown_xfs_is_on_the_disk_in_place_when_power_is_cut_after(tmp_path, root, run_agent):
    """Issue 29, seed 12 xfs-cut1: a grown XFS must not live only in its log,
    or a power cut makes the next mount replay the grow (wrongly, on Linux
    before 6.13).  The agent grows the XFS, the filesystem is then shut down
    the way a power cut leaves it (``xfs_io shutdown``: nothing more of the
    log or the cache reaches the disk) and the primary superblock on the
    disk, read without replaying anything, already has the grown size."""
    with LoopDisk(tmp_path, 330, "gpt", ["size=320MiB"]) as disk:
        part = disk.part(1)
        disk.mkfs("xfs", part)
        mp = disk.mount(part, tmp_path / "mnt")
        write_data(mp)

        def on_disk():  # the primary superblock as on the disk, no log replayed
            out = sh("xfs_db", "-r", "-c", "sb 0", "-c", "p dblocks agcount", part).stdout
            return {k.strip(): int(v) for k, v in (ln.split("=") for ln in out.splitlines())}
        sh("sync")
        before = on_disk()
        disk.enlarge(GROW_MIB)
        res, step = run_growroot(run_agent, root, write_conf(tmp_path, mp))
        assert res.returncode == 0 and step["result"] == "changed", (res.stderr, step)
        sh("xfs_io", "-x", "-c", "shutdown", str(mp))  # a power cut: no flush
        grown = os.statvfs(mp)
        disk.umount(mp)
        after = on_disk()
        assert after["dblocks"] > before["dblocks"] and after["agcount"] > before["agcount"], \
            (before, after)
        assert after["dblocks"] * 4096 >= grown.f_blocks * grown.f_frsize, (after, grown)


def test_a_grown_xfs_that_cannot_be_settled_is_a_warning_and_the_grow_stands(
        tmp_path, monkeypatch, caplog):
    """xfs_io missing, or failing: the step goes on, and the log says what is
    left at risk (the freeze itself is tested on a loop disk above)."""
    caplog.set_level("WARNING")
    gone = tmp_path / "not-mounted"
    growroot._settle(System("/"), "xfs", str(gone))  # xfs_io refuses a path that is not there
    assert f"could not write the grown xfs filesystem on {gone} in place" in caplog.text
    caplog.clear()
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    growroot._settle(System("/"), "xfs", str(gone))
    assert "xfs_io is not installed, so the grown xfs filesystem" in caplog.text
    caplog.clear()
    growroot._settle(System("/"), "ext4", str(gone))  # nothing to settle: nothing said
    assert caplog.text == ""


@needs_root
@pytest.mark.root
def test_read_only_tmpfs_and_unmounted_are_skipped_with_a_reason(tmp_path, root, run_agent):
    with LoopDisk(tmp_path, 130, "dos", ["size=120MiB"]) as disk:
        disk.mkfs("btrfs", disk.part(1))
        ro = disk.mount(disk.part(1), tmp_path / "ro", options="ro")
        tmpfs = tmp_path / "tmpfs"
        tmpfs.mkdir()
        sh("mount", "-t", "tmpfs", "-o", "size=1m", "none", tmpfs)
        disk.mounts.append(str(tmpfs))  # unmounted in teardown with the rest
        disk.enlarge(GROW_MIB)
        conf = write_conf(tmp_path, f"{ro}, {tmpfs}, {tmp_path}/nowhere")
        res, step = run_growroot(run_agent, root, conf)
        assert res.returncode == 0, res.stderr
        assert step["result"] == "skipped"
        assert f"{ro}: mounted read-only" in step["reason"]
        assert f"{tmpfs}: tmpfs filesystem, nothing to grow" in step["reason"]
        assert f"{tmp_path}/nowhere: not a mount point" in step["reason"]
        assert disk.part_extent(1)[1] == 120 * MiB // 512


def test_under_root_slash_is_never_grown(tmp_path, root, run_agent):
    # the default devices = / under --root: this machine's own root, refused
    conf = tmp_path / "guestagent.conf"
    conf.write_text(f"[main]\ndatasources = configdrive\n[configdrive]\n"
                    f"path = {EXAMPLES}/configdrive\n")
    res, step = run_growroot(run_agent, root, conf)
    assert res.returncode == 0, res.stderr
    assert step["result"] == "skipped" and "never /" in step["reason"]
    assert "growpart" not in res.stderr and "resize" not in res.stderr


def test_disabled_file_and_config_switch(tmp_path, root, run_agent):
    conf = write_conf(tmp_path, "/mnt/whatever")
    (root / "etc/growroot-disabled").write_text("")
    _, step = run_growroot(run_agent, root, conf)
    assert step["result"] == "skipped" and "/etc/growroot-disabled" in step["reason"]
    (root / "etc/growroot-disabled").unlink()
    conf = write_conf(tmp_path, "/mnt/whatever", "enabled = no\n")
    _, step = run_growroot(run_agent, root, conf)
    assert step["result"] == "skipped" and "enabled = no" in step["reason"]


@pytest.mark.parametrize("cc, why", [
    ({"growpart": {"mode": "off"}}, "growpart: {mode: off}"),
    ({"growpart": {"mode": False}}, "growpart: {mode: off}"),
    ({"resize_rootfs": False}, "resize_rootfs: false"),
])
def test_cloud_config_turns_it_off(cc, why):
    with pytest.raises(Skip, match=why.replace("{", r"\{").replace("}", r"\}")):
        growroot._apply_cloud_config(cc, ["/"])


@pytest.mark.parametrize("text, devices", [
    ("{}", ["/"]),
    ("growpart: {mode: auto, devices: [/, /srv]}", ["/", "/srv"]),
    ("growpart: {devices: /srv}", ["/srv"]),  # one string is read as a list of one
    # wrong shapes: dropped as the user-data is read, or warned about here; the
    # config file's list stands
    ("growpart: 'off'", ["/"]),
    ("growpart: {devices: [srv]}", ["/"]),
    ("growpart: {devices: []}", ["/"]),
    ("resize_rootfs: noblock", ["/"]),
])
def test_cloud_config_devices_and_bad_shapes(text, devices):
    cc, _ = read_cloud_config(text)
    assert growroot._apply_cloud_config(cc, ["/"]) == devices


# -- finding the device --------------------------------------------------------------

MOUNTINFO = (
    "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard\n"
    "43 27 259:0 / /tmp/a\\040b rw,relatime shared:5 master:1 - xfs /dev/loop0p1 rw\n"
    "44 27 0:39 / /srv ro,relatime - btrfs /dev/root rw,subvol=/\n"
    "garbage line\n"
    "45 27 0:40 / /srv rw - tmpfs tmpfs rw\n"
)


def test_parse_mountinfo():
    found = mounts.parse_mountinfo(MOUNTINFO)
    assert [m.mountpoint for m in found] == ["/", "/tmp/a b", "/srv", "/srv"]
    a = found[1]
    assert (a.major, a.minor, a.fstype, a.source) == (259, 0, "xfs", "/dev/loop0p1")
    assert found[2].read_only and not a.read_only


def test_find_mount_takes_the_last_mount_on_a_path(tmp_path):
    f = tmp_path / "mountinfo"
    f.write_text(MOUNTINFO)
    assert mounts.find_mount("/srv/", str(f)).fstype == "tmpfs"
    assert mounts.find_mount("/tmp/a b", str(f)).fstype == "xfs"
    assert mounts.find_mount("/nowhere", str(f)) is None


def test_root_from_cmdline():
    assert blockdev.root_from_cmdline("BOOT_IMAGE=/vmlinuz root=UUID=abc ro quiet") == \
        "UUID=abc"
    assert blockdev.root_from_cmdline("root=/dev/sda1 root=PARTUUID=x-01") == "PARTUUID=x-01"
    assert blockdev.root_from_cmdline("quiet") == ""


@needs_root
@pytest.mark.root
def test_device_resolution_on_a_real_loop_disk(tmp_path):
    system = System("/")
    with LoopDisk(tmp_path, 242, "gpt", ["size=120MiB", "size=120MiB"]) as disk:
        disk.mkfs("btrfs", disk.part(2))
        sh("btrfstune", "-f", "-L", "garoot", disk.part(2), check=False)
        mp = disk.mount(disk.part(2), tmp_path / "m")
        mount = mounts.find_mount(mp)
        assert mount.major == 0  # btrfs: an anonymous device, found through the source
        dev = blockdev.device_of_mount(system, mount)
        assert dev.name == f"{disk.name}p2" and dev.partition_number == 2
        assert dev.disk.name == disk.name and dev.disk.partition_number is None
        assert dev.space_after() <= MiB  # only GPT slack after it: no growth possible
        first = blockdev.device_of_path(disk.part(1))
        assert first.space_after() == 0  # partition 2 follows at once
        uuid = sh("blkid", "-s", "UUID", "-o", "value", disk.part(2)).stdout.strip()
        assert blockdev.resolve_spec(system, f"UUID={uuid}") == disk.part(2)
        # /dev/root (the kernel mounted /) resolves through root= on the command line
        fake = mounts.Mount(mp, 0, 99, "btrfs", "/dev/root", set())
        assert blockdev.device_of_mount(system, fake, cmdline=f"ro root=UUID={uuid}"
                                        ).name == dev.name
        assert blockdev.resolve_spec(system, "LABEL=no-such-label-anywhere") is None


# -- LVM: the decision, on output captured from the real tools ---------------------------

# parted -m -s DISK unit s print free: a 250 MiB gpt disk grown from 120 MiB,
# PV on partition 2 (the last): free space right after it
PARTED_GPT_PV_LAST = """BYT;
/dev/vda:512000s:virtblk:512:512:gpt:Virtio Block Device:;
1:34s:2047s:2014s:free;
1:2048s:206847s:204800s:ext4::boot;
2:206848s:245759s:38912s:::lvm;
1:245760s:511966s:266207s:free;
"""
# msdos, PV on partition 1, a swap partition 2 after it, free space at the end
PARTED_DOS_PV_NOT_LAST = """BYT;
/dev/sda:614400s:scsi:512:512:msdos:QEMU HARDDISK:;
1:63s:2047s:1985s:free;
1:2048s:206847s:204800s:::lvm;
2:206848s:239615s:32768s:linux-swap(v1)::;
1:239616s:614399s:374784s:free;
"""
PVS_JSON = """  {
      "report": [
          {
              "pv": [
                  {"pv_name":"%s", "vg_name":"vg0", "pv_size":"%d", "dev_size":"%d"}
              ]
          }
      ]
  }
"""


def test_plan_grows_the_last_partition_pv():
    layout = parse_parted(PARTED_GPT_PV_LAST)
    assert (layout.table, layout.sectors, layout.sector_size) == ("gpt", 512000, 512)
    pvs = lvm.parse_report(PVS_JSON % ("/dev/vda2", 19922944, 19922944), "pv")
    actions, _ = lvm.plan(pvs, {"/dev/vda2": ("/dev/vda", 2)}, {"/dev/vda": layout})
    assert actions == [lvm.Action("growpart", pv="/dev/vda2", disk="/dev/vda", number=2)]


def test_plan_makes_a_new_partition_when_the_pv_is_boxed_in():
    layout = parse_parted(PARTED_DOS_PV_NOT_LAST)
    pvs = lvm.parse_report(PVS_JSON % ("/dev/sda1", 104857600, 104857600), "pv")
    actions, _ = lvm.plan(pvs, {"/dev/sda1": ("/dev/sda", 1)}, {"/dev/sda": layout})
    assert actions == [lvm.Action("mkpart", disk="/dev/sda",
                                  new=NewPartition(239616, 614399, "primary"))]


def test_plan_resizes_a_whole_disk_pv_or_a_pv_whose_partition_grew():
    pvs = lvm.parse_report(PVS_JSON % ("/dev/vdb", 100 * MiB, 300 * MiB), "pv")
    assert lvm.plan(pvs, {"/dev/vdb": None}, {})[0] == [lvm.Action("pvresize", pv="/dev/vdb")]
    layout = parse_parted(PARTED_DOS_PV_NOT_LAST)
    pvs = lvm.parse_report(PVS_JSON % ("/dev/sda1", 50 * MiB, 100 * MiB), "pv")
    assert lvm.plan(pvs, {"/dev/sda1": ("/dev/sda", 1)}, {"/dev/sda": layout})[0] == [
        lvm.Action("pvresize", pv="/dev/sda1")]


def test_plan_does_nothing_without_room_and_says_why():
    full = PARTED_DOS_PV_NOT_LAST.replace("239616s:614399s:374784s:free",
                                          "239616s:241663s:2048s:free")
    pvs = lvm.parse_report(PVS_JSON % ("/dev/sda1", 104857600, 104857600), "pv")
    actions, notes = lvm.plan(pvs, {"/dev/sda1": ("/dev/sda", 1)},
                              {"/dev/sda": parse_parted(full)})
    assert actions == [] and notes == []  # nothing worth taking: the quiet later boot
    four = PARTED_DOS_PV_NOT_LAST.replace(
        "1:239616s:614399s:374784s:free;",
        "3:239616s:241663s:2048s:::;\n4:241664s:243711s:2048s:::;\n"
        "1:243712s:614399s:370688s:free;")
    actions, notes = lvm.plan(pvs, {"/dev/sda1": ("/dev/sda", 1)},
                              {"/dev/sda": parse_parted(four)})
    assert actions == [] and len(notes) == 1
    assert notes[0].startswith("/dev/sda has 181.0 MiB unallocated, but no partition can be "
                               "added: all four primary msdos slots are taken")


# msdos: partitions 1-3 primary, 4 extended to the old end holding logical 5 and
# free space, then the disk's new space (parted -m, sfdisk-made, grown by 100 MiB)
PARTED_DOS_EXTENDED = """BYT;
/tmp/t.img:409600s:file:512:512:msdos::;
1:63s:2047s:1985s:free;
1:2048s:83967s:81920s:::;
2:83968s:104447s:20480s:::swap;
3:104448s:124927s:20480s:::;
4:124928s:204799s:79872s:::;
5:126976s:147455s:20480s:::;
1:147456s:204799s:57344s:free;
1:204800s:409599s:204800s:free;
"""


def test_plan_on_msdos_takes_a_logical_partition_or_the_fourth_primary():
    layout = parse_parted(PARTED_DOS_EXTENDED)
    assert layout.extended == 4
    pvs = lvm.parse_report(PVS_JSON % ("/dev/sda1", 40 * MiB, 40 * MiB), "pv")
    actions, notes = lvm.plan(pvs, {"/dev/sda1": ("/dev/sda", 1)}, {"/dev/sda": layout})
    # the extended partition grows to the end; the logical one takes its free
    # tail and the new space, one sector left for its EBR
    assert actions == [lvm.Action("mkpart", disk="/dev/sda", new=NewPartition(
        149504, 409599, "logical", extended=4, extended_end=409599))]
    # three primaries, no extended: the fourth primary
    three = "\n".join(ln for ln in PARTED_DOS_EXTENDED.splitlines()
                      if not ln.startswith(("4:", "5:", "1:147456s", "1:204800s")))
    three += "\n1:124928s:409599s:284672s:free;\n"
    actions, _ = lvm.plan(pvs, {"/dev/sda1": ("/dev/sda", 1)},
                          {"/dev/sda": parse_parted(three)})
    assert actions == [lvm.Action("mkpart", disk="/dev/sda",
                                  new=NewPartition(124928, 409599, "primary"))]
    # the extended partition already reaches the disk's end: a logical inside it
    inside = PARTED_DOS_EXTENDED.replace("4:124928s:204799s", "4:124928s:409599s").replace(
        "1:147456s:204799s:57344s:free;\n1:204800s:409599s:204800s:free;",
        "1:147456s:409599s:262144s:free;")
    actions, _ = lvm.plan(pvs, {"/dev/sda1": ("/dev/sda", 1)},
                          {"/dev/sda": parse_parted(inside)})
    assert actions == [lvm.Action("mkpart", disk="/dev/sda",
                                  new=NewPartition(149504, 409599, "logical"))]
    # an empty extended partition is known only to sfdisk
    assert msdos_extended('{"partitiontable": {"label": "dos", "partitions": ['
                              '{"node": "/dev/sda1", "type": "83"},'
                              '{"node": "/dev/sda2", "type": "5"}]}}') == 2
    assert msdos_extended('{"partitiontable": {"partitions": []}}') is None


@needs_root
@pytest.mark.root
@pytest.mark.parametrize("table", ["gpt", "dos"])
def test_plan_on_parted_output_of_real_images(tmp_path, table):
    img = tmp_path / "d.img"
    sh("truncate", "-s", "150M", img)
    sh("sfdisk", "-q", img, input=f"label: {table}\nsize=60MiB\nsize=30MiB\n")
    sh("truncate", "-s", "+100M", img)
    layout = parse_parted(sh("parted", "-m", "-s", img, "unit", "s", "print", "free"
                                 ).stdout)
    pvs = [{"pv_name": "/dev/x1", "pv_size": str(60 * MiB), "dev_size": str(60 * MiB)}]
    actions, _ = lvm.plan(pvs, {"/dev/x1": (str(img), 1)}, {str(img): layout})
    assert len(actions) == 1 and actions[0].kind == "mkpart"
    assert actions[0].new.start == 91 * 2048  # 1 MiB + 60 + 30 MiB, aligned
    assert actions[0].new.end * 512 > 240 * MiB
    pvs = [{"pv_name": "/dev/x2", "pv_size": str(30 * MiB), "dev_size": str(30 * MiB)}]
    actions, _ = lvm.plan(pvs, {"/dev/x2": (str(img), 2)}, {str(img): layout})
    assert [a.kind for a in actions] == ["growpart"]


# -- LVM: the volume-group half, for real on loop devices ------------------------------
# The kernel here has no device-mapper, so no LV can be activated: finding the
# root LV by major:minor and growing a filesystem on an LV are exercised by the
# QEMU end-to-end test. Making, resizing and extending PVs, VGs and (inactive)
# LVs is metadata only, and runs here.

@pytest.fixture
def lvm_env(tmp_path, monkeypatch):
    """LVM confined to the test's loop devices, with no backups written to /etc/lvm."""
    conf_dir = tmp_path / "lvm"
    conf_dir.mkdir()
    (conf_dir / "lvm.conf").write_text(
        'devices { filter = [ "a|^/dev/loop|", "r|.*|" ] obtain_device_list_from_udev = 0\n'
        '  use_devicesfile = 0 }\n'
        "backup { backup = 0 archive = 0 }\n"
        "activation { udev_sync = 0 udev_rules = 0 }\n"
        # metadata only: this kernel has no device-mapper to activate LVs with
        "global { activation = 0 }\n")
    monkeypatch.setenv("LVM_SYSTEM_DIR", str(conf_dir))
    monkeypatch.setenv("LVM_SUPPRESS_FD_WARNINGS", "1")
    made = []
    yield made
    for vg in made:
        subprocess.run(["vgremove", "-f", vg], capture_output=True)


def _vg_name(tmp_path):
    return f"gatest{os.getpid()}{tmp_path.name[-12:]}".replace("-", "_")


@needs_root
@pytest.mark.root
def test_vg_grows_through_growpart_and_pvresize(tmp_path, lvm_env):
    system = System("/")
    vg = _vg_name(tmp_path)
    with LoopDisk(tmp_path, 100, "gpt", ["size=60MiB", "size=30MiB"]) as disk:
        sh("pvcreate", "-q", disk.part(2))
        sh("vgcreate", "-q", vg, disk.part(2))
        lvm_env.append(vg)
        sh("lvcreate", "-q", "-an", "-Zn", "-y", "-l", "100%FREE", "-n", "root", vg)
        assert lvm.vg_free_extents(system, vg) == 0
        disk.enlarge(100)
        changes = []
        lvm.grow_vg(system, vg, lambda d, n: growroot._growpart(system, d, n), changes)
        assert changes[0].startswith(f"grew partition 2 of {disk.dev}")
        assert changes[1].startswith(f"resized physical volume {disk.part(2)}")
        assert lvm.vg_free_extents(system, vg) > 20
        # lvextend on the (inactive, metadata-only) LV: all the new extents
        assert lvm.extend_lv(system, vg, "root") == [
            f"extended logical volume {vg}/root from 28.0 MiB to 136.0 MiB"]  # 139 MiB PV
        assert lvm.vg_free_extents(system, vg) == 0
        again = []
        lvm.grow_vg(system, vg, lambda d, n: growroot._growpart(system, d, n), again)
        assert again == [] and lvm.extend_lv(system, vg, "root") == []


@needs_root
@pytest.mark.root
@pytest.mark.parametrize("table,layout,new", [
    # gpt: the backup header sits at the old end until it is moved
    ("gpt", ["size=60MiB", "size=30MiB"], 3),
    ("dos", ["size=60MiB", "size=30MiB"], 3),
    ("dos", ["size=40MiB", "size=20MiB", "size=20MiB"], 4),  # the 4th primary
    # all primaries taken, extended at the end: it grows, a logical goes in
    ("dos", ["size=40MiB", "size=10MiB", "size=10MiB", "type=5", "size=10MiB"], 6),
], ids=["gpt", "dos-3rd-primary", "dos-4th-primary", "dos-logical"])
def test_vg_grows_through_a_new_partition(tmp_path, lvm_env, table, layout, new):
    # commands run on this machine, files under a root of the test's own
    # (the record of the partition being made goes there)
    (tmp_path / "root").mkdir()
    system = System(str(tmp_path / "root"))
    vg = _vg_name(tmp_path)
    with LoopDisk(tmp_path, 100, table, layout) as disk:
        sh("pvcreate", "-q", disk.part(1))  # boxed in by partition 2
        sh("vgcreate", "-q", vg, disk.part(1))
        lvm_env.append(vg)
        before = lvm.vg_free_extents(system, vg)
        disk.enlarge(100)
        changes = []
        node = disk.part(new)
        try:
            notes = lvm.grow_vg(system, vg, lambda d, n: growroot._growpart(system, d, n),
                                changes)
        finally:
            if os.path.exists(f"/sys/block/{disk.name}/{disk.name}p{new}"):
                disk.wait_partition(new)  # so teardown removes a node we had to make
        assert notes == []
        assert len(changes) == 1, changes
        assert changes[0].startswith(f"made partition {new} on {disk.dev}")
        assert changes[0].endswith(f"a physical volume of volume group {vg}")
        pvs = [r["pv_name"] for r in lvm.vg_pvs(system, vg)]
        assert sorted(pvs) == [disk.part(1), node]
        assert lvm.vg_free_extents(system, vg) > before + 20
        table_now = sh("parted", "-m", "-s", disk.dev, "unit", "s", "print").stdout
        assert table_now.splitlines()[-1].startswith(f"{new}:") and ":lvm;" in table_now
        end = int(table_now.splitlines()[-1].split(":")[2].rstrip("s"))
        assert end >= disk.sectors() - 2048 - 34  # the new space is all taken
        if table == "gpt":
            dump = sh("sfdisk", "-d", disk.dev).stdout
            assert f"last-lba: {disk.sectors() - 34}" in dump
        assert not system.exists(unfinished_pv.RECORD)  # written down, then done
        again = []
        assert lvm.grow_vg(system, vg, lambda d, n: growroot._growpart(system, d, n),
                           again) == []
        assert again == []


@needs_root
@pytest.mark.root
@pytest.mark.parametrize("cut_after", ["mkpart", "set-flag", "pvcreate"])
def test_a_new_pv_a_power_cut_stopped_is_finished(tmp_path, lvm_env, cut_after):
    """Issue 29's sweep: the power went between the new partition and
    vgextend.  The disk's free space is gone into partition 3, which is no
    PV (or a PV in no group); the next boot finds the record written before
    parted ran and completes the PV, so the VG still grows."""
    (tmp_path / "root").mkdir()
    system = System(str(tmp_path / "root"))
    vg = _vg_name(tmp_path)
    with LoopDisk(tmp_path, 100, "gpt", ["size=60MiB", "size=30MiB"]) as disk:
        sh("pvcreate", "-q", disk.part(1))
        sh("vgcreate", "-q", vg, disk.part(1))
        lvm_env.append(vg)
        before = lvm.vg_free_extents(system, vg)
        disk.enlarge(100)
        # what the cut boot did: the record, the GPT backup header moved, the
        # partition made (flagged, a PV) up to the cut
        layout = lvm.read_layout(system, disk.dev)
        where, _ = lvm.new_partition(disk.dev, layout, lvm.MIN_NEW_PARTITION)
        unfinished_pv.begin(system, disk.dev, where.start, vg)
        sh("sfdisk", "--no-reread", "--no-tell-kernel", "--relocate", "gpt-bak-std", disk.dev)
        sh("parted", "-s", disk.dev, "unit", "s", "mkpart", "primary", f"{where.start}s",
           f"{where.end}s")
        disk.wait_partition(3)
        if cut_after in ("set-flag", "pvcreate"):
            sh("parted", "-s", disk.dev, "set", "3", "lvm", "on")
        if cut_after == "pvcreate":
            sh("pvcreate", "-q", disk.part(3))
        # without the record the plan finds no room left: the root could never grow
        assert lvm.plan(lvm.vg_pvs(system, vg), lvm.locate_pvs(lvm.vg_pvs(system, vg)),
                        {disk.dev: lvm.read_layout(system, disk.dev)})[0] == []
        changes = []
        lvm.grow_vg(system, vg, lambda d, n: growroot._growpart(system, d, n), changes)
        assert changes and changes[0].startswith(f"finished partition 3 on {disk.dev}"), changes
        assert f"it is a physical volume of {vg} now" in changes[0]
        assert sorted(r["pv_name"] for r in lvm.vg_pvs(system, vg)) == [disk.part(1),
                                                                          disk.part(3)]
        assert lvm.vg_free_extents(system, vg) > before + 20
        assert ":lvm;" in sh("parted", "-m", "-s", disk.dev, "print").stdout.splitlines()[-1]
        assert not system.exists(unfinished_pv.RECORD)
        again = []
        assert lvm.grow_vg(system, vg, lambda d, n: growroot._growpart(system, d, n),
                           again) == [] and again == []


@needs_root
@pytest.mark.root
def test_a_disk_where_no_partition_can_be_added_says_so(tmp_path, lvm_env):
    system = System("/")
    vg = _vg_name(tmp_path)
    with LoopDisk(tmp_path, 100, "dos",
                  ["size=40MiB", "size=10MiB", "size=10MiB", "size=10MiB"]) as disk:
        sh("pvcreate", "-q", disk.part(1))
        sh("vgcreate", "-q", vg, disk.part(1))
        lvm_env.append(vg)
        disk.enlarge(100)
        image = open(disk.image, "rb").read(1024 * 1024)
        changes = []
        notes = lvm.grow_vg(system, vg, lambda d, n: growroot._growpart(system, d, n),
                            changes)
        assert changes == []
        assert len(notes) == 1 and notes[0].startswith(f"{disk.dev} has 1")
        assert "all four primary msdos slots are taken" in notes[0]
        assert open(disk.image, "rb").read(1024 * 1024) == image  # the table is untouched


# -- #cloud-config switches, through a real config drive tree ------------------------

def configdrive_with(tmp_path, user_data):
    cd = tmp_path / "configdrive"
    shutil.copytree(f"{EXAMPLES}/configdrive", cd)
    (cd / "openstack/latest/user_data").write_text(user_data)
    return cd


@needs_root
@pytest.mark.root
def test_cloud_config_names_the_devices_or_turns_growth_off(tmp_path, root, run_agent):
    with LoopDisk(tmp_path, 330, "gpt", ["size=320MiB"]) as disk:
        disk.mkfs("xfs", disk.part(1))
        mp = disk.mount(disk.part(1), tmp_path / "data")
        _, size = disk.part_extent(1)
        disk.enlarge(GROW_MIB)
        off = configdrive_with(tmp_path / "off", "#cloud-config\ngrowpart:\n  mode: off\n")
        conf = write_conf(tmp_path, mp)
        conf.write_text(conf.read_text().replace(f"{EXAMPLES}/configdrive", str(off)))
        res, step = run_growroot(run_agent, root, conf)
        assert res.returncode == 0, res.stderr
        assert step["result"] == "skipped" and "mode: off" in step["reason"]
        assert disk.part_extent(1)[1] == size
        # under --root, #cloud-config may only narrow [growroot] devices: with
        # devices = / (never grown under --root) it cannot reach the disk ...
        on = configdrive_with(tmp_path / "on", f"#cloud-config\ngrowpart:\n  mode: auto\n"
                                               f"  devices: [{json.dumps(mp)}]\n")
        conf = write_conf(tmp_path, "/")
        conf.write_text(conf.read_text().replace(f"{EXAMPLES}/configdrive", str(on)))
        res, step = run_growroot(run_agent, root, conf)
        assert res.returncode == 0, res.stderr
        assert step["result"] == "skipped", step
        assert "not named in [growroot] devices" in res.stderr
        assert disk.part_extent(1)[1] == size
        # ... and with the disk named there, the same user-data grows it
        conf = write_conf(tmp_path, mp)
        conf.write_text(conf.read_text().replace(f"{EXAMPLES}/configdrive", str(on)))
        res, step = run_growroot(run_agent, root, conf)
        assert res.returncode == 0, res.stderr
        assert step["result"] == "changed", step
        assert_fills_disk(disk, 1, size)


@needs_root
@pytest.mark.root
def test_under_root_a_disk_holding_this_machines_root_is_refused(tmp_path):
    # a bind mount of a directory on this machine's own root filesystem: its
    # device is the host's root disk. Only the read-only guard runs here.
    if os.stat(tmp_path).st_dev != os.stat("/").st_dev:
        pytest.skip("the test's scratch directory is not on this machine's / filesystem")
    src, mp = tmp_path / "src", tmp_path / "bind"
    src.mkdir()
    mp.mkdir()
    sh("mount", "--bind", src, mp)
    try:
        mount = mounts.find_mount(str(mp))
        host = blockdev.device_of_mount(System("/"), mounts.find_mount("/"))
        if host is None:
            pytest.skip("this machine's / is on no block device (overlay, tmpfs)")
        dev = blockdev.device_of_mount(System("/"), mount)
        assert dev is not None and dev.devno == host.devno
        with pytest.raises(Skip, match="shares a disk with this machine's own root"):
            growroot._refuse_host_root_disk(System(str(tmp_path)), dev)
    finally:
        sh("umount", mp, check=False)
