import os
import stat

import pytest

from guestagent.system import System, UnsafePathError


def test_write_is_atomic_and_sets_mode(tmp_path):
    s = System(str(tmp_path))
    s.write_file("/etc/new/file", "hello\n", mode=0o600)
    p = tmp_path / "etc/new/file"
    assert p.read_text() == "hello\n"
    assert oct(p.stat().st_mode & 0o777) == "0o600"
    assert [x for x in os.listdir(p.parent) if x.startswith(".")] == []


def test_refuses_to_write_through_a_symlinked_file(tmp_path):
    target = tmp_path / "outside"
    target.write_text("keep")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/hostname").symlink_to(target)
    with pytest.raises(UnsafePathError):
        System(str(tmp_path / "")).write_file("/etc/hostname", "evil")
    assert target.read_text() == "keep"


def test_refuses_untrusted_directory_symlink(tmp_path):
    home = tmp_path / "home/u"
    home.mkdir(parents=True)
    os.chown(home, 1000, 1000) if os.geteuid() == 0 else None
    (home / ".ssh").symlink_to(tmp_path / "etc")
    os.lchown(home / ".ssh", 1000, 1000) if os.geteuid() == 0 else None
    with pytest.raises(UnsafePathError):
        System(str(tmp_path)).write_file("/home/u/.ssh/authorized_keys", "x",
                                         trusted_uids=(0, 1000))
    assert not (tmp_path / "etc/authorized_keys").exists()


def test_root_owned_symlinks_resolve_inside_the_root(tmp_path):
    (tmp_path / "usr/lib").mkdir(parents=True)
    (tmp_path / "lib").symlink_to("/usr/lib")  # absolute: must stay inside the root
    System(str(tmp_path)).write_file("/lib/x.conf", "ok")
    assert (tmp_path / "usr/lib/x.conf").read_text() == "ok"


def test_dotdot_is_refused(tmp_path):
    with pytest.raises(UnsafePathError):
        System(str(tmp_path)).write_file("/etc/../../escape", "x")


def test_read_follows_links_inside_the_root_only(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "real").write_text("inside")
    (tmp_path / "etc/os-release").symlink_to("/real")
    assert System(str(tmp_path)).read_text("/etc/os-release") == "inside"


def test_reads_follow_sysfs_style_links_with_dotdot_inside_the_root(tmp_path):
    """/sys/class/dmi/id -> ../../devices/virtual/dmi/id, as on a real system."""
    real = tmp_path / "sys/devices/virtual/dmi/id"
    real.mkdir(parents=True)
    (real / "product_uuid").write_text("ABC\n")
    (tmp_path / "sys/class/dmi").mkdir(parents=True)
    (tmp_path / "sys/class/dmi/id").symlink_to("../../devices/virtual/dmi/id")
    assert System(str(tmp_path)).read_text("/sys/class/dmi/id/product_uuid") == "ABC\n"
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/escape").symlink_to("../../../../../../etc/passwd")
    with pytest.raises(FileNotFoundError):
        System(str(tmp_path)).read_text("/etc/escape")  # clamps at the root


def test_live_reads_see_the_real_sysfs_links():
    assert System("/").read_text("/proc/self/stat")
    if os.path.exists("/sys/class/dmi/id/sys_vendor"):
        assert System("/").read_text("/sys/class/dmi/id/sys_vendor") is not None


def test_inspecting_stays_inside_the_root_and_never_follows_the_last_link(tmp_path):
    s = System(str(tmp_path))
    s.write_file("/etc/ssh/sshd_config.d/b.conf", "")
    s.write_file("/etc/ssh/sshd_config.d/a.conf", "")
    (tmp_path / "etc/resolv.conf").symlink_to("/run/systemd/resolve/stub-resolv.conf")
    (tmp_path / "etc/confdir").symlink_to("/etc/ssh/sshd_config.d")  # absolute: in the root
    assert s.listdir("/etc/ssh/sshd_config.d") == ["a.conf", "b.conf"]
    assert s.listdir("/etc/confdir") == ["a.conf", "b.conf"]
    assert s.listdir("/etc/missing") == [] and s.listdir("/etc/resolv.conf") == []
    assert s.readlink("/etc/resolv.conf") == "/run/systemd/resolve/stub-resolv.conf"
    assert s.readlink("/etc/ssh/sshd_config.d/a.conf") is None
    assert s.readlink("/etc/missing") is None
    assert os.path.islink(tmp_path / "etc/resolv.conf")
    assert stat.S_ISLNK(s.lstat("/etc/resolv.conf").st_mode)
    s.chmod_dir("/etc/ssh", 0o700)
    assert (tmp_path / "etc/ssh").stat().st_mode & 0o777 == 0o700


def test_start_runs_in_a_session_of_its_own_with_no_stdin(tmp_path):
    s = System(str(tmp_path))
    out = tmp_path / "out"
    with open(out, "wb") as f:
        proc = s.start(["sh", "-c", "ps -o sid= -p $$; cat; echo done"], stdout=f)
        proc.wait(timeout=30)
    sid, done = out.read_text().split()
    assert int(sid) == proc.pid != os.getsid(0) and done == "done"
