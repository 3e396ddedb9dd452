import json
import os

import pytest

from guestagent.metadata import InjectedFile, Metadata
from guestagent.steps import Skip
from guestagent.steps import injected_files as step

from support.step_context import StepContext, agent_conf, config_drive

SECRET = b"content-that-must-never-be-logged-7f3a"


@pytest.mark.parametrize("path", [
    "/etc/motd.d/demo", "/opt/app/config.yaml", "/root/.profile", "/etc/a b.conf",
])
def test_good_paths(path):
    assert step.check_path(path) == path


@pytest.mark.parametrize("path, why", [
    ("etc/passwd", "not absolute"),
    ("../../etc/passwd", "not absolute"),
    ("/etc/../etc/passwd", "'..'"),
    ("/..", "'..'"),
    ("/etc/./passwd", "normal form"),
    ("/etc//passwd", "normal form"),
    ("//etc/passwd", "normal form"),
    ("/etc/motd/", "normal form"),
    ("/", "root directory"),
    ("/etc/pass\0wd", "NUL"),
    ("/etc/motd\nx", "control characters"),
    ("/proc/sys/kernel/hostname", "under /proc"),
    ("/sys/kernel/uevent_helper", "under /sys"),
    ("/dev/sda", "under /dev"),
    ("/dev", "under /dev"),
    (None, "not a string"),
])
def test_bad_paths_are_refused(path, why):
    with pytest.raises(step.BadPath, match=why.replace("(", r"\(")):
        step.check_path(path)


def test_device_like_names_elsewhere_are_fine():
    assert step.check_path("/device/x") == "/device/x"
    assert step.check_path("/system") == "/system"


@pytest.mark.parametrize("value, mode", [("0644", 0o644), ("600", 0o600), ("0o640", 0o640)])
def test_mode(value, mode):
    assert step.file_mode(value) == mode


@pytest.mark.parametrize("value", ["rw-r--r--", "0999", "4755", "-1", ""])
def test_bad_mode(value):
    with pytest.raises(ValueError, match=r"\[files\] mode"):
        step.file_mode(value)


def md(*files):
    return Metadata(source="test", instance_id="i-1",
                    files=[InjectedFile(p, c) for p, c in files])


def test_no_files_is_skipped(root):
    with pytest.raises(Skip, match="no injected files"):
        step.run(StepContext(root, md()))


def test_symlinked_target_and_untrusted_dirs_are_refused(root, tmp_path, caplog):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("original\n")
    os.symlink(str(outside / "victim"), root / "etc/linked")
    (root / "home").mkdir()
    os.symlink(str(outside), root / "home/evil")
    os.lchown(root / "home/evil", 1000, 1000)
    (root / "home/user").mkdir()
    os.chown(root / "home/user", 1000, 1000)
    changes = step.run(StepContext(root, md(
        ("/etc/linked", SECRET), ("/home/evil/victim", SECRET), ("/home/evil/new", SECRET),
        ("/home/user/.bashrc", SECRET), ("/etc/ok", b"fine\n")))).changes
    assert changes == ["wrote /etc/ok (5 bytes, mode 0644)"]
    assert (outside / "victim").read_text() == "original\n"
    assert sorted(os.listdir(outside)) == ["victim"]
    assert not (root / "home/user/.bashrc").exists()
    assert caplog.text.count("refusing injected file") == 4
    assert SECRET.decode() not in caplog.text


def test_a_directory_in_the_way_is_refused(root, caplog):
    (root / "etc/adir").mkdir()
    assert step.run(StepContext(root, md(("/etc/adir", b"x")))).changes == []
    assert "refusing injected file /etc/adir: refusing to write: not a regular file" \
        in caplog.text


def test_write_error_fails_the_step_after_trying_the_rest(root):
    """The failure and the file written beside it are told together; the
    step is tried again on the next boot (not done for the instance)."""
    too_long = "/etc/" + "n" * 300
    out = step.run(StepContext(root, md((too_long, b"x"), ("/etc/later", b"y"))))
    assert out.error.startswith("could not write 1 injected file(s): /etc/nnn") and out.retry
    assert out.changes == ["wrote /etc/later (1 bytes, mode 0644)"]
    assert (root / "etc/later").read_bytes() == b"y"


# -- the real agent on a scratch root --------------------------------------------------

def agent(run_agent, root, conf):
    return run_agent("--once", "--root", root, "--config", conf, "--only", "injected_files")


def test_agent_writes_files_root_owned_with_the_configured_mode(tmp_path, root, run_agent):
    drive = config_drive(tmp_path / "d", {}, files={
        "/etc/motd.d/demo": b"hello\n", "/opt/app/deep/conf.ini": SECRET})
    conf = agent_conf(tmp_path / "a.conf", drive, "\n[files]\nmode = 0600\n")
    res = agent(run_agent, root, conf)
    assert res.returncode == 0, res.stderr
    assert (root / "etc/motd.d/demo").read_bytes() == b"hello\n"
    st = (root / "opt/app/deep/conf.ini").stat()
    assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (0o600, 0, 0)
    for d in ("opt", "opt/app", "opt/app/deep", "etc/motd.d"):
        assert (root / d).stat().st_mode & 0o777 == 0o755, d
    assert "wrote /opt/app/deep/conf.ini (38 bytes, mode 0600)" in res.stderr
    log = (root / "var/log/guestagent.log").read_text()
    assert SECRET.decode() not in res.stderr + log
    assert "/opt/app/deep/conf.ini" in log


def test_agent_is_per_instance_and_keeps_later_edits(tmp_path, root, run_agent):
    drive = config_drive(tmp_path / "d", {}, files={"/etc/motd.d/demo": b"hello\n"})
    conf = agent_conf(tmp_path / "a.conf", drive)
    agent(run_agent, root, conf)
    (root / "etc/motd.d/demo").write_text("edited by the admin\n")
    agent(run_agent, root, conf)
    assert (root / "etc/motd.d/demo").read_text() == "edited by the admin\n"
    status = json.loads(run_agent("status", "--json", "--root", root).stdout)
    assert status["last"]["steps"][0]["result"] == "done-before"


def test_agent_refuses_traversal_and_never_writes_outside_the_root(tmp_path, root, run_agent):
    escape = tmp_path / "escaped"
    paths = {
        "../escaped": b"1", "/../escaped": b"2", "/etc/../../escaped": b"3",
        "relative/file": b"4", f"/{'../' * 8}{escape}": b"5", "/proc/self/attr/current": b"6",
        "/etc/./sneaky": b"7", "/etc/hostname\n/etc/shadow": b"8", "/etc/ok": b"ok",
    }
    drive = config_drive(tmp_path / "d", {}, files=paths)
    conf = agent_conf(tmp_path / "a.conf", drive)
    before = sorted(os.listdir(tmp_path))
    hostname = (root / "etc/hostname").read_bytes()
    res = agent(run_agent, root, conf)
    assert res.returncode == 0, res.stderr
    assert sorted(os.listdir(tmp_path)) == before
    assert not escape.exists() and not (root / "relative").exists()
    assert not (root / "proc").exists() and not (root / "etc/sneaky").exists()
    assert (root / "etc/hostname").read_bytes() == hostname
    assert (root / "etc/ok").read_bytes() == b"ok"
    assert res.stderr.count("refusing injected file") == 8, res.stderr
    assert "\n/etc/shadow" not in res.stderr  # the newline is shown escaped


def test_agent_bad_mode_fails_the_step_clearly(tmp_path, root, run_agent):
    drive = config_drive(tmp_path / "d", {}, files={"/etc/x": b"x"})
    conf = agent_conf(tmp_path / "a.conf", drive, "\n[files]\nmode = rw-r--r--\n")
    res = agent(run_agent, root, conf)
    assert res.returncode == 1
    assert "injected_files failed: [files] mode = 'rw-r--r--': expected an octal mode" \
        in res.stderr
    assert not (root / "etc/x").exists()
