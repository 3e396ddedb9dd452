"""write_files: modes, encodings, append, owners from the root's own accounts."""

import base64
import gzip
import os
import stat

import pytest

from guestagent.steps import Skip
from guestagent.steps import write_files as step

from support.step_context import StepContext
from support.userdata_helpers import Drive


def run_step(root, *entries):
    return step.run(StepContext(root, cloud_config={"write_files": list(entries)}))


def mode(p):
    return stat.S_IMODE(p.stat().st_mode)


def test_plain_text_default_mode_and_owner(root):
    [change] = run_step(root, {"path": "/etc/app/conf.ini", "content": "a = 1\n"}).changes
    p = root / "etc/app/conf.ini"
    assert p.read_text() == "a = 1\n"
    assert mode(p) == 0o644 and (p.stat().st_uid, p.stat().st_gid) == (0, 0)
    assert change == "wrote /etc/app/conf.ini (6 bytes, 0644, root:root)"


@pytest.mark.parametrize("permissions, expected", [("0600", 0o600), ("0o750", 0o750),
                                                   ("755", 0o755), (0o640, 0o640)])
def test_permissions(root, permissions, expected):
    run_step(root, {"path": "/etc/p", "content": "x", "permissions": permissions})
    assert mode(root / "etc/p") == expected


@pytest.mark.parametrize("encoding", ["b64", "base64", "gzip", "gz", "gz+b64", "gzip+base64",
                                      "text"])
def test_encodings(root, encoding):
    data = b"\x00binary\xffpayload\n" if encoding != "text" else b"plain\n"
    content = data
    if "gz" in encoding:
        content = gzip.compress(content)
    if "b64" in encoding or "base64" in encoding:
        content = base64.b64encode(content).decode()
    run_step(root, {"path": "/etc/enc", "content": content, "encoding": encoding})
    assert (root / "etc/enc").read_bytes() == data


def test_encodings_through_the_real_yaml(tmp_path, run_agent, root):
    d = Drive(tmp_path, run_agent, root)
    payload = gzip.compress(b"zipped content\n")
    d.user_data(f"""#cloud-config
write_files:
  - path: /etc/b64
    encoding: b64
    content: {base64.b64encode(b"hello b64").decode()}
  - path: /etc/gzb64
    encoding: gz+b64
    content: {base64.b64encode(payload).decode()}
  - path: /etc/binary-gz
    encoding: gzip
    content: !!binary |
      {base64.b64encode(payload).decode()}
  - path: /etc/multi
    permissions: '0600'
    owner: debian:sudo
    content: |
      line 1
      line 2
""")
    res = d.run()
    assert res.returncode == 0, res.stderr
    assert (root / "etc/b64").read_bytes() == b"hello b64"
    assert (root / "etc/gzb64").read_bytes() == b"zipped content\n"
    assert (root / "etc/binary-gz").read_bytes() == b"zipped content\n"
    multi = root / "etc/multi"
    assert multi.read_text() == "line 1\nline 2\n" and mode(multi) == 0o600
    # owners resolve in the root's /etc/passwd and /etc/group (debian was just created)
    passwd = {ln.split(":")[0]: ln.split(":") for ln in (root / "etc/passwd").read_text()
              .splitlines()}
    groups = {ln.split(":")[0]: ln.split(":") for ln in (root / "etc/group").read_text()
              .splitlines()}
    assert multi.stat().st_uid == int(passwd["debian"][2])
    assert multi.stat().st_gid == int(groups["sudo"][2])
    assert len(d.step("write_files")["changes"]) == 4
    # once per instance
    multi.write_text("changed by the admin\n")
    d.run()
    assert multi.read_text() == "changed by the admin\n"
    assert d.step("write_files")["result"] == "done-before"


def test_owner_comes_from_the_roots_accounts_not_the_hosts(root):
    with open(root / "etc/passwd", "a") as f:
        f.write("app:x:4321:4322:App:/srv/app:/usr/sbin/nologin\n")
    with open(root / "etc/group", "a") as f:
        f.write("appgrp:x:4399:\n")
    run_step(root, {"path": "/etc/a1", "content": "x", "owner": "app"},
             {"path": "/etc/a2", "content": "x", "owner": "app:appgrp"})
    assert ((root / "etc/a1").stat().st_uid, (root / "etc/a1").stat().st_gid) == (4321, 4322)
    assert ((root / "etc/a2").stat().st_uid, (root / "etc/a2").stat().st_gid) == (4321, 4399)


def test_unknown_owner_is_a_warning_and_root(root, caplog):
    # "daemon" is on the host but not in the scratch root's /etc/passwd
    [change] = run_step(root, {"path": "/etc/o", "content": "x",
                               "owner": "nosuchuser:nogrp"}).changes
    p = root / "etc/o"
    assert (p.stat().st_uid, p.stat().st_gid) == (0, 0)
    assert "root:root" in change
    assert "'nosuchuser'" in caplog.text and "not a user" in caplog.text
    assert "'nogrp'" in caplog.text


def test_append(root):
    p = root / "etc/appended"
    p.write_text("first\n")
    os.chmod(p, 0o640)
    [change] = run_step(root, {"path": "/etc/appended", "content": "second\n",
                               "append": True}).changes
    assert p.read_text() == "first\nsecond\n"
    assert mode(p) == 0o640  # appending does not loosen the file's mode
    assert change == "appended 7 bytes to /etc/appended (0640, root:root)"
    run_step(root, {"path": "/etc/new-appended", "content": "x\n", "append": True,
                    "permissions": "0600"})
    assert (root / "etc/new-appended").read_text() == "x\n"
    assert mode(root / "etc/new-appended") == 0o600


def test_deferred_files_are_written_after_the_others(root):
    changes = run_step(root, {"path": "/etc/late", "content": "deferred", "defer": True},
                       {"path": "/etc/early", "content": "now"}).changes
    assert [c.split()[1] for c in changes] == ["/etc/early", "/etc/late"]
    assert (root / "etc/late").read_text() == "deferred"


@pytest.mark.parametrize("path, why", [
    ("etc/relative", "not an absolute path"),
    ("/etc/../../escape", "'..' in the path"),
    ("/etc/dir/", "names a directory"),
])
def test_bad_paths_are_refused_and_the_rest_written(root, path, why):
    out = run_step(root, {"path": path, "content": "x"}, {"path": "/etc/good", "content": "ok"})
    assert why in out.error and "1 of 2 files not written" in out.error
    assert [c.split()[:2] for c in out.changes] == [["wrote", "/etc/good"]]
    assert (root / "etc/good").read_text() == "ok"
    assert not (root.parent / "escape").exists()


def test_path_is_normalised(root):
    run_step(root, {"path": "//etc/./norm//file", "content": "n"})
    assert (root / "etc/norm/file").read_text() == "n"


def test_symlinks_are_refused(root, tmp_path):
    outside = tmp_path / "outside"
    outside.write_text("precious\n")
    (root / "etc/link").symlink_to(outside)
    (root / "home").mkdir(exist_ok=True)
    out = run_step(root, {"path": "/etc/link", "content": "overwritten"},
                   {"path": "/etc/link", "content": "appended", "append": True})
    assert "2 of 2 files not written" in out.error and out.changes == []
    assert outside.read_text() == "precious\n"
    assert (root / "etc/link").is_symlink()


def test_bad_content_is_refused(root):
    out = run_step(root, {"path": "/etc/g", "content": "not gzip", "encoding": "gzip"},
                   {"path": "/etc/b", "content": "!!!", "encoding": "b64"})
    assert "not gzip data" in out.error


def test_gzip_bomb_in_content_is_refused(root):
    bomb = gzip.compress(b"\0" * (32 << 20))
    ctx = StepContext(root, cloud_config={"write_files": [
        {"path": "/etc/bomb", "content": bomb, "encoding": "gzip"}]},
        conf_text="[userdata]\nmax_bytes = 1048576\n")
    out = step.run(ctx)
    assert "max_bytes" in out.error and not (root / "etc/bomb").exists()


def test_nothing_to_write_is_a_skip(root):
    with pytest.raises(Skip):
        step.run(StepContext(root, cloud_config={}))
