import os
import stat
import time

import pytest

from guestagent.system import CommandTimedOut, System, UnsafePathError


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


# -- the command half: timeouts and reloading a service ----------------------------------

def test_a_command_past_its_timeout_is_killed_and_named(tmp_path):
    """System.run translates subprocess's TimeoutExpired into CommandTimedOut,
    whose message names the command and the time (callers catch one error of
    the seam, not subprocess's), and the command is gone."""
    pidfile = tmp_path / "pid"
    t0 = time.monotonic()
    with pytest.raises(CommandTimedOut) as caught:
        System(str(tmp_path)).run(["sh", "-c", f"echo $$ > {pidfile}; exec sleep 30"],
                                  timeout=0.5)
    assert time.monotonic() - t0 < 10
    assert str(caught.value) == f"sh -c echo $$ > {pidfile}; exec sleep 30 did not finish " \
                                "within 0.5 s and was killed"
    with pytest.raises(ProcessLookupError):
        os.kill(int(pidfile.read_text()), 0)


def _systemctl(tmp_path, monkeypatch, script):
    """A systemctl stand-in first on PATH that records its arguments (the
    host's own must not be driven by a test)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    (bin_dir / "systemctl").write_text(f'#!/bin/sh\necho "$@" >> {calls}\n{script}\n')
    (bin_dir / "systemctl").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return calls


def _live(tmp_path):
    system = System(str(tmp_path))
    system.live = True  # commands only: no file of this machine is read or written
    return system


# ssh.service is not here (is-active: 3), sshd.service runs
_SSHD_ONLY = 'case "$1 $3" in "is-active ssh.service") exit 3;; esac\nexit 0'


def test_reload_service_reloads_the_first_unit_that_runs(tmp_path, monkeypatch):
    calls = _systemctl(tmp_path, monkeypatch, _SSHD_ONLY)
    units = ("ssh.service", "sshd.service")
    assert _live(tmp_path).reload_service(units, "the new setting") == "reloaded sshd.service"
    assert calls.read_text().splitlines() == ["is-active --quiet ssh.service",
                                              "is-active --quiet sshd.service",
                                              "try-reload-or-restart sshd.service"]
    calls.unlink()
    assert _live(tmp_path).reload_service(units, "the new servers", restart=True) == \
        "restarted sshd.service"
    assert calls.read_text().splitlines()[-1] == "try-restart sshd.service"


def test_reload_service_leaves_a_service_that_does_not_run_alone(tmp_path, monkeypatch):
    calls = _systemctl(tmp_path, monkeypatch, "exit 3")
    assert _live(tmp_path).reload_service(("chrony.service", "chronyd.service"), "x") == ""
    assert calls.read_text().splitlines() == ["is-active --quiet chrony.service",
                                              "is-active --quiet chronyd.service"]


def test_reload_service_failing_is_a_warning_naming_what_waits(tmp_path, monkeypatch,
                                                               caplog):
    _systemctl(tmp_path, monkeypatch, '[ "$1" = is-active ] && exit 0\n'
                                      "echo 'Job for x failed' >&2; exit 1")
    assert _live(tmp_path).reload_service(("systemd-resolved",),
                                          "the new DNS settings") == ""
    assert "reloading systemd-resolved failed (exit 1: Job for x failed); it reads the new " \
           "DNS settings when it next starts" in caplog.text


def test_reload_service_without_systemctl_says_so(tmp_path, monkeypatch, caplog):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert _live(tmp_path).reload_service(("ssh.service",), "the new setting") == ""
    assert "cannot reload ssh.service: no systemctl; it reads the new setting when it next " \
           "starts" in caplog.text


def test_reload_service_under_root_runs_nothing(tmp_path, monkeypatch):
    calls = _systemctl(tmp_path, monkeypatch, "exit 0")
    assert System(str(tmp_path)).reload_service(("ssh.service",), "x") == ""
    assert not calls.exists()
