"""The agent's own files (state, lock, status, stored metadata, #cloud-config
cache, done markers, log, /run flags, the reboot guard's list) made unsafe in
a scratch root: every command that uses them refuses with one line naming
the path and why, exit 4, no traceback, and nothing outside the root (or
inside it) is written (issue 25, part 2)."""

import os
import subprocess

import pytest

from support import EXAMPLES, REPO, agent_argv

DEMO_CONF = f"{EXAMPLES}/demo.conf"
IID = "83679162-1378-4288-a2d4-70e13ec132aa"  # examples/configdrive's instance
STATE = "var/lib/guestagent"
INSTANCE = f"{STATE}/instances/{IID}"

# (path inside the root, how it is made unsafe)
#   file-link: a symlink to a file outside the root
#   dir-link:  a relative symlink whose '..' lead out of the root
#   fifo:      a FIFO where a regular file belongs (a reader or writer would block)
CASES = [
    (STATE, "dir-link"),
    (f"{STATE}/lock", "file-link"),
    (f"{STATE}/status.json", "file-link"),
    (f"{STATE}/status.json", "fifo"),
    (f"{STATE}/instance-id", "file-link"),
    (f"{STATE}/unchanged.sha256", "file-link"),
    (f"{STATE}/unchanged.sha256.pending", "file-link"),
    (f"{STATE}/instances", "dir-link"),
    (INSTANCE, "dir-link"),
    (f"{INSTANCE}/metadata.json", "file-link"),
    (f"{INSTANCE}/cloud-config.json", "file-link"),
    (f"{INSTANCE}/done", "dir-link"),
    (f"{INSTANCE}/done/users", "file-link"),
    ("run/guestagent", "dir-link"),
    ("run/guestagent/local-configured", "file-link"),
    ("run/guestagent/final-pending", "file-link"),
    ("run/guestagent/unchanged", "file-link"),
]


def _run(*args):
    return subprocess.run(agent_argv() + [str(a) for a in args], capture_output=True,
                          text=True, timeout=120, env=dict(os.environ, PYTHONPATH=REPO))


def _snapshot(top):
    """Every file and link under ``top``: what it is, holds and when it changed."""
    seen = {}
    for dirpath, dirs, files in os.walk(top):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            body = os.readlink(p) if os.path.islink(p) else (
                open(p, "rb").read() if os.path.isfile(p) else None)
            seen[p] = (st.st_mode, st.st_mtime_ns, st.st_size, body)
    return seen


def _plant(root, outside, path, how):
    where = root / path
    where.parent.mkdir(parents=True, exist_ok=True)
    if path.startswith(INSTANCE) or path == INSTANCE:
        # the instance the last run recorded, so its directory is one of ours
        (root / STATE / "instance-id").write_text(IID + "\n")
    if how == "file-link":
        os.symlink(outside / "f", where)
    elif how == "dir-link":
        os.symlink(os.path.relpath(outside, where.parent), where)
        assert os.path.realpath(where) == str(outside)  # it does lead out
    else:
        os.mkfifo(where)


@pytest.mark.parametrize("path,how", CASES, ids=[f"{p}:{h}" for p, h in CASES])
def test_an_unsafe_own_path_is_refused_in_one_line_by_every_command(tmp_path, root,
                                                                    path, how):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f").write_text("not the agent's\n")
    _plant(root, outside, path, how)
    before = _snapshot(tmp_path)
    for command in (["--once"], ["--once", "--stage", "local"], ["status"],
                    ["status", "--json"], ["query"]):
        res = _run(*command, "--root", root, "--config", DEMO_CONF)
        assert res.returncode == 4, (command, res.returncode, res.stderr)
        assert "Traceback" not in res.stderr, (command, res.stderr)
        lines = res.stderr.splitlines()
        assert len(lines) == 1, (command, res.stderr)
        assert lines[0].startswith(f"guestagent: refusing /{path} under {root}: "), lines
        assert ("symlink" if how.endswith("link") else "not a regular file") in lines[0]
        assert res.stdout == "", (command, res.stdout)
        # refused before anything was read or written, inside the root or out
        assert _snapshot(tmp_path) == before, command


def test_a_new_instance_s_unsafe_directory_is_refused_the_same_way(tmp_path, root):
    """The check before the run cannot know an instance id the run has not
    found yet: meeting the refusal later ends the run the same way."""
    outside = tmp_path / "outside"
    outside.mkdir()
    where = root / INSTANCE
    where.parent.mkdir(parents=True)
    os.symlink(os.path.relpath(outside, where.parent), where)
    res = _run("--once", "--root", root, "--config", DEMO_CONF)
    assert res.returncode == 4, res.stderr
    assert "Traceback" not in res.stderr, res.stderr
    assert res.stderr.splitlines()[-1].startswith(
        f"guestagent: refusing /{INSTANCE} under {root}: a symlink with '..'"), res.stderr
    assert os.listdir(outside) == []
    assert not (root / "home/debian").exists()  # no step ran


def test_links_root_owns_inside_the_root_are_still_followed(tmp_path, root):
    """What the writers accept, the check accepts: an image whose
    /var/lib/guestagent is root's absolute link (to a data volume, say) runs,
    and status and query read through it."""
    (root / "data/guestagent").mkdir(parents=True)
    (root / "var/lib").mkdir(parents=True)
    os.symlink("/data/guestagent", root / STATE)
    res = _run("--once", "--root", root, "--config", DEMO_CONF)
    assert res.returncode == 0, res.stderr
    assert (root / "data/guestagent/status.json").is_file()
    assert (root / "data/guestagent/lock").is_file()
    for command in (["status"], ["query", "instance_id"]):
        res = _run(*command, "--root", root, "--config", DEMO_CONF)
        assert res.returncode == 0, (command, res.stderr)
    assert res.stdout.strip() == IID


@pytest.mark.parametrize("how", ["file-link", "fifo"])
def test_an_unsafe_log_file_is_refused_in_one_line_and_the_boot_goes_on(tmp_path, root, how):
    """The log file is only a copy of what the console and the journal carry:
    a link or FIFO planted at its name is not written through, one line says
    so, and the instance still gets its keys (a planted log must not keep
    the owner out)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f").write_text("not the agent's\n")
    _plant(root, outside, "var/log/guestagent.log", how)
    res = _run("--once", "--root", root, "--config", DEMO_CONF)
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    said = [ln for ln in res.stderr.splitlines() if "log file" in ln]
    assert len(said) == 1, res.stderr
    assert "not writing the log file /var/log/guestagent.log" in said[0]
    assert (outside / "f").read_text() == "not the agent's\n"
    assert os.listdir(outside) == ["f"]
    assert (root / "home/debian/.ssh/authorized_keys").read_text().strip()
    assert (root / STATE / "status.json").is_file()
    for command in (["status"], ["query", "instance_id"]):
        res = _run(*command, "--root", root, "--config", DEMO_CONF)
        assert res.returncode == 0, (command, res.stderr)
