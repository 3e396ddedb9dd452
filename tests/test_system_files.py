"""The System methods that took over the steps' raw os/open calls."""

import errno
import os
import stat

import pytest

from guestagent.system import System, UnsafePathError


def test_open_rw_creates_without_truncating_and_reads_back(tmp_path):
    (tmp_path / "var/lib/ga").mkdir(parents=True)
    (tmp_path / "var/lib/ga/lock").write_text("1234")
    fd = System(str(tmp_path)).open_rw("/var/lib/ga/lock")
    try:
        assert os.pread(fd, 32, 0) == b"1234"  # kept: the holder's pid is read first
        os.pwrite(fd, b"9", 0)  # not O_APPEND: a write lands where it is asked to
    finally:
        os.close(fd)
    assert (tmp_path / "var/lib/ga/lock").read_text() == "9234"
    fd = System(str(tmp_path)).open_rw("/var/lib/ga/new")
    os.close(fd)
    assert stat.S_IMODE((tmp_path / "var/lib/ga/new").stat().st_mode) == 0o600


def test_open_rw_and_open_append_refuse_links_and_fifos(tmp_path):
    (tmp_path / "outside").write_text("keep")
    (tmp_path / "var").mkdir()
    (tmp_path / "var/lock").symlink_to(tmp_path / "outside")
    os.mkfifo(tmp_path / "var/fifo")
    s = System(str(tmp_path))
    with pytest.raises(UnsafePathError, match="symlink"):
        s.open_rw("/var/lock")
    with pytest.raises(UnsafePathError, match="not a regular file"):
        s.open_rw("/var/fifo")  # O_RDWR opens a FIFO at once: refused after the open
    with pytest.raises(UnsafePathError, match="not a regular file"):
        s.open_append("/var/fifo", readable=True)
    assert (tmp_path / "outside").read_text() == "keep"


def test_open_append_readable_appends_and_reads(tmp_path):
    (tmp_path / "log").write_text("old\n")
    s = System(str(tmp_path))
    fd = s.open_append("/log", readable=True)
    try:
        os.write(fd, b"new\n")
        assert os.pread(fd, 100, 0) == b"old\nnew\n"
    finally:
        os.close(fd)
    fd = s.open_append("/log")
    try:
        with pytest.raises(OSError) as e:
            os.pread(fd, 10, 0)
        assert e.value.errno == errno.EBADF  # write-only unless asked
    finally:
        os.close(fd)


def test_set_mode_changes_the_file_and_never_a_link(tmp_path):
    (tmp_path / "etc/ssh").mkdir(parents=True)
    key = tmp_path / "etc/ssh/key"
    key.write_text("k")
    key.chmod(0o600)
    s = System(str(tmp_path))
    s.set_mode("/etc/ssh/key", 0o640, uid=os.getuid(), gid=os.getgid())
    assert stat.S_IMODE(key.stat().st_mode) == 0o640
    (tmp_path / "target").write_text("t")
    (tmp_path / "target").chmod(0o600)
    (tmp_path / "etc/ssh/link").symlink_to(tmp_path / "target")
    with pytest.raises(UnsafePathError, match="symlink"):
        s.set_mode("/etc/ssh/link", 0o644)
    assert stat.S_IMODE((tmp_path / "target").stat().st_mode) == 0o600
    with pytest.raises(FileNotFoundError):
        s.set_mode("/etc/ssh/missing", 0o644)


def test_is_file_resolves_inside_the_root(tmp_path):
    (tmp_path / "usr/bin").mkdir(parents=True)
    tool = tmp_path / "usr/bin/tool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o644)
    (tmp_path / "bin").symlink_to("/usr/bin")  # absolute: inside the root, not the host's
    s = System(str(tmp_path))
    assert s.is_file("/bin/tool") and not s.is_file("/bin/tool", executable=True)
    tool.chmod(0o755)
    assert s.is_file("/bin/tool", executable=True)
    assert not s.is_file("/usr/bin") and not s.is_file("/usr/bin/none")
    assert not s.is_file("/bin/sh")  # the host has /bin/sh; the root does not


def test_read_attribute_is_empty_where_nothing_can_be_read(tmp_path):
    d = tmp_path / "sys/class/net/eth0"
    d.mkdir(parents=True)
    (d / "address").write_text("52:54:00:12:34:56\n")
    s = System(str(tmp_path))
    assert s.read_attribute("/sys/class/net/eth0/address") == "52:54:00:12:34:56\n"
    assert s.read_attribute("/sys/class/net/eth0/mtu") == ""
    assert s.read_attribute("/sys/class/net/eth0") == ""  # a directory: refused, not read


def test_live_read_attribute_reads_sysfs():
    assert System("/").read_attribute("/sys/class/net/lo/address").strip() == \
        "00:00:00:00:00:00"


def test_statvfs_is_of_the_path_inside_the_root(tmp_path):
    (tmp_path / "srv").mkdir()
    st = System(str(tmp_path)).statvfs("/srv")
    assert st.f_frsize > 0 and st.f_blocks == os.statvfs(tmp_path).f_blocks


def test_mounts_parse_the_roots_mountinfo(tmp_path):
    (tmp_path / "proc/self").mkdir(parents=True)
    (tmp_path / "proc/self/mountinfo").write_text(
        "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n"
        "40 22 8:16 / /mnt/my\\040disk rw shared:2 - xfs /dev/vdb rw\n")
    mounts = System(str(tmp_path)).mounts()
    assert [(m.mountpoint, m.fstype, m.source) for m in mounts] == [
        ("/", "ext4", "/dev/vda1"), ("/mnt/my disk", "xfs", "/dev/vdb")]
    assert System(str(tmp_path / "none")).mounts() == []


def test_live_mounts_have_the_root():
    assert "/" in {m.mountpoint for m in System("/").mounts()}


def test_command_path_refuses_a_link_commands_would_follow_out(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/ssh").symlink_to(tmp_path.parent)
    s = System(str(tmp_path))
    assert s.command_path("/etc") == str(tmp_path / "etc")
    with pytest.raises(UnsafePathError, match="outside the root"):
        s.command_path("/etc/ssh")
    (tmp_path / "home").symlink_to("/srv/home")  # the host tool would resolve it on the host
    with pytest.raises(UnsafePathError, match="refusing to run useradd.*outside the root"):
        s.check_tool_path("/home/u", "useradd")
    s.check_tool_path("/etc/passwd", "useradd")  # inside: no complaint
