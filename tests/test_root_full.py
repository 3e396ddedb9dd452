"""A root filesystem that is full at first boot (issue 29, part 2), on real
loop-device filesystems under ``--root``.

The scratch root is itself the mount point of a loop device's partition,
filled to the last block the agent may use, and named in ``[growroot]
devices`` (under ``--root`` growroot grows only what is named, never the
host's /).  On a disk that can grow, the root is grown before anything is
written; on one that cannot, every write that fails says which and why, the
old files stay whole, and the run ends.
"""

import json
import os
import shutil
import subprocess

import pytest

from support import EXAMPLES, REPO, agent_argv
from support.loopdisk import LoopDisk, MiB, fs_bytes, has_cap_sys_resource, sh
from support.marks import needs_root

pytestmark = [needs_root, pytest.mark.root]

KEY = "AAAAC3NzaC1lZDI1NTE5AAAAIO5j2lnT1qR7/lpXRlCfui2BILCHMsFxcyVGD4ENC2q6"
EXISTING = ("etc/hostname", "etc/passwd", "etc/shadow", "etc/group", "etc/resolv.conf",
            "etc/hosts", "etc/ssh/ssh_host_ed25519_key", "etc/ssh/ssh_host_ed25519_key.pub")


def conf(tmp_path, root):
    path = tmp_path / "guestagent.conf"
    path.write_text(f"[main]\ndatasources = configdrive\ndefault_user = debian\n"
                    f"[configdrive]\npath = {EXAMPLES}/configdrive\n"
                    f"[growroot]\ndevices = {root}\n")
    return path


def fill(mountpoint):
    """Fill the filesystem to its last block for this process (fallocate,
    then writes for what fallocate's rounding leaves)."""
    st = os.statvfs(mountpoint)
    size = st.f_bavail * st.f_frsize - (1 << 20)  # XFS wants room for the extents' records
    if size > 0:
        sh("fallocate", "-l", str(size), f"{mountpoint}/filler")
    fd = os.open(f"{mountpoint}/filler-tail", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for chunk in (1 << 16, 4096, 512, 1):
            while True:
                try:
                    if os.write(fd, b"\0" * chunk) < chunk:
                        break
                    os.fsync(fd)
                except OSError:
                    break
    finally:
        os.close(fd)
    st = os.statvfs(mountpoint)
    assert st.f_bavail * st.f_frsize < 64 << 10, st  # XFS keeps a few blocks back


def full_root(disk, tmp_path, fstype):
    """A partition of ``disk`` made into a root like examples/root, then
    filled; returns its mount point (the --root directory)."""
    disk.mkfs(fstype, disk.part(1))
    root = disk.mount(disk.part(1), tmp_path / "root")
    shutil.copytree(os.path.join(EXAMPLES, "root"), root, symlinks=True, dirs_exist_ok=True)
    os.makedirs(f"{root}/var/log")
    # the image's own host key, as an image with openssh-server has
    sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "image",
       "-f", f"{root}/etc/ssh/ssh_host_ed25519_key")
    fill(root)
    return root


def snapshot(root):
    return {p: open(os.path.join(root, p), "rb").read() for p in EXISTING}


def leftovers(root):
    """Temp files a write left behind (write_file's .NAME.guestagent-new)."""
    found = []
    for d, _, names in os.walk(root):
        found += [os.path.join(d, n) for n in names if n.endswith(".guestagent-new")]
    return found


def status_of(run_agent, root):
    res = run_agent("status", "--json", "--root", root)
    return json.loads(res.stdout) if res.returncode == 0 else None


def test_full_root_grows_before_anything_is_written(tmp_path, run_agent):
    """XFS (ext4's online grow needs CAP_SYS_RESOURCE, which this sandbox may
    lack: the next test covers ext4): the partition and the filesystem grow
    first, then every write succeeds, the key goes in and status is kept."""
    with LoopDisk(tmp_path, 330, "gpt", ["size=300MiB"]) as disk:
        root = full_root(disk, tmp_path, "xfs")
        before = fs_bytes(root)
        disk.enlarge(200)
        res = run_agent("--once", "--root", root, "--config", conf(tmp_path, root),
                        timeout=300)
        err = res.stderr
        assert "Traceback" not in err and "Logging error" not in err, err
        assert "no space left" not in err, err
        lines = err.splitlines()
        first = next(i for i, ln in enumerate(lines) if "growing it before anything" in ln)
        found = next(i for i, ln in enumerate(lines) if "found instance" in ln)
        assert first < found, err
        assert fs_bytes(root) > before + 150 * MiB
        keys = open(f"{root}/home/debian/.ssh/authorized_keys").read()
        assert KEY in keys
        status = status_of(run_agent, root)
        grow = next(s for s in status["last"]["steps"] if s["name"] == "growroot")
        assert grow["before_anything_else"] is True and grow["result"] == "changed", grow
        assert any("grew partition 1" in c for c in grow["changes"]), grow
        assert any("grew the xfs filesystem" in c for c in grow["changes"]), grow
        assert [s["name"] for s in status["last"]["steps"]].count("growroot") == 1
        # the log file waited for growroot, then has the whole run after it
        log = open(f"{root}/var/log/guestagent.log").read()
        assert "found instance" in log, log[-2000:]
        assert not leftovers(root)


def test_full_ext4_root_grows_its_partition_first(tmp_path):
    """ext4: growpart runs before any write, with its temp files off the full
    root; resize2fs then grows the filesystem (or, without CAP_SYS_RESOURCE,
    says why it cannot) and the run goes on either way."""
    with LoopDisk(tmp_path, 330, "gpt", ["size=300MiB"]) as disk:
        root = full_root(disk, tmp_path, "ext4")
        part_before = disk.part_extent(1)[1]
        disk.enlarge(200)
        # the image's /tmp is on the full root, as on Debian: growpart's
        # mktemp must not land there
        res = subprocess.run(
            agent_argv() + ["--once", "--root", root, "--config", str(conf(tmp_path, root))],
            capture_output=True, text=True, timeout=300,
            env=dict(os.environ, PYTHONPATH=REPO, TMPDIR=root))
        err = res.stderr
        assert "Traceback" not in err and "Logging error" not in err, err
        assert disk.part_extent(1)[1] > part_before, err
        assert "grew partition 1" in err, err
        assert "failed to make temp dir" not in err, err
        if has_cap_sys_resource():
            assert "no space left" not in err, err
            assert KEY in open(f"{root}/home/debian/.ssh/authorized_keys").read()
        else:
            assert "CAP_SYS_RESOURCE" in err, err
            assert "still full after growroot" in err, err


def test_full_root_that_cannot_grow(tmp_path, run_agent):
    """No room to grow: every failed write names the file and "no space left
    on /", no file is truncated or half-replaced, no temp file stays, the run
    ends (exit 1) with one line saying what to do, and a second run does the
    same rather than anything worse."""
    with LoopDisk(tmp_path, 130, "dos", ["size=120MiB"]) as disk:
        root = full_root(disk, tmp_path, "ext4")
        before = snapshot(root)
        config = conf(tmp_path, root)
        for _ in range(2):
            res = run_agent("--once", "--root", root, "--config", config, timeout=120)
            err = res.stderr
            assert res.returncode == 1, err
            assert "Traceback" not in err and "Logging error" not in err, err
            assert "cannot write /etc/hostname: no space left on /" in err, err
            assert "cannot write /etc/resolv.conf: no space left on /" in err, err
            assert "cannot create the directory /var/lib/guestagent: no space left on /" in err
            assert "stopped writing the log file: cannot write /var/log/guestagent.log: " \
                   "no space left on /" in err, err
            users = next(ln for ln in err.splitlines() if "users failed" in ln)
            assert "no space left on /" in users, users
            assert err.count("still full after growroot") == 1, err
            # sshd keeps the image's host key rather than none at all
            assert "hostkeys failed: no space left on /: the image's host keys are kept" in err
            assert "no space left on /: what failed above for it is not done" in err, err
            assert "[Errno 28]" not in err, err
            assert snapshot(root) == before
            assert not leftovers(root)
            log = f"{root}/var/log/guestagent.log"
            assert not os.path.exists(log) or os.path.getsize(log) == 0


def test_the_key_goes_in_when_the_state_has_no_room(tmp_path, run_agent, root):
    """Only the agent's own state is on a full filesystem (a full tmpfs at
    /var/lib/guestagent, the log on another): the key, the hostname and the
    rest go in all the same; each state write says it found no space on
    /var/lib/guestagent; the status could not be kept, and the exit says
    something failed."""
    mounts = []
    try:
        for d, size in (("var/lib/guestagent", "64k"), ("var/log", "64k")):
            path = root / d
            path.mkdir(parents=True)
            sh("mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "none", path)
            mounts.append(path)
            fill(path)
        res = run_agent("--once", "--root", root, "--config", conf(tmp_path, "/nowhere"))
        err = res.stderr
        assert res.returncode == 1, err
        assert "Traceback" not in err and "Logging error" not in err, err
        assert KEY in (root / "home/debian/.ssh/authorized_keys").read_text()
        assert (root / "etc/hostname").read_text().strip() == "demo"
        assert "cannot record instance 83679162-1378-4288-a2d4-70e13ec132aa in the agent's " \
               "state: cannot write /var/lib/guestagent/" in err, err
        assert "no space left on /var/lib/guestagent" in err, err
        assert "cannot record the run's status" in err, err
        assert "no space left on /var/log" in err, err
        assert "still full" not in err and "no space left on /:" not in err, err
    finally:
        for path in reversed(mounts):
            sh("umount", path, check=False)


def test_append_cut_short_by_a_full_filesystem_is_taken_back(tmp_path):
    """append_file (write_files' append: true) on a filesystem that fills up
    half-way: the file keeps its old bytes and length, never half a line, and
    the error names the file and the full mount point."""
    from guestagent.system import System
    from guestagent.system.disk_space import NoSpaceError

    top = tmp_path / "tree"
    (top / "etc").mkdir(parents=True)
    sh("mount", "-t", "tmpfs", "-o", "size=64k", "none", top / "etc")
    try:
        old = b"first line\n"
        (top / "etc/appended.conf").write_bytes(old)
        system = System(str(top))
        with pytest.raises(NoSpaceError) as caught:
            system.append_file("/etc/appended.conf", b"x" * (256 << 10))
        assert str(caught.value) == "cannot append to /etc/appended.conf: no space left on /etc"
        assert (top / "etc/appended.conf").read_bytes() == old
        with pytest.raises(NoSpaceError) as caught:
            system.write_file("/etc/appended.conf", b"y" * (256 << 10))
        assert str(caught.value) == "cannot write /etc/appended.conf: no space left on /etc"
        assert (top / "etc/appended.conf").read_bytes() == old
        assert os.listdir(top / "etc") == ["appended.conf"]
    finally:
        sh("umount", top / "etc", check=False)


def test_a_grow_of_a_few_blocks_does_not_read_as_no_change():
    """A root that could not grow but for the few blocks between its end and
    the partition's (the cannot-grow boot: "from 1.4 GiB to 1.4 GiB")."""
    from guestagent.steps.growroot import _grown
    assert _grown(1500 * MiB, 1503 * MiB) == "by 3.0 MiB (to 1.5 GiB)"
    assert _grown(1500 * MiB, 3000 * MiB) == "from 1.5 GiB to 2.9 GiB"
