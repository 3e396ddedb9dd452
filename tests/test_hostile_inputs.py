"""Hostile inputs, round 2 (issue 20): each class with several inputs.

Every test drives the real agent (or the real module) on a scratch root and
a config drive tree; nothing outside tmp_path may change.
"""

import json
import os
import stat
import subprocess
import sys

import pytest

from support import EXAMPLES, REPO

AGENT = [sys.executable, "-m", "guestagent"]
ENV = dict(os.environ, PYTHONPATH=REPO)
KEY_A = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO5j2lnT1qR7/lpXRlCfui2BILCHMsFxcyVGD4ENC2q6")
KEY_B = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDE0zazn152V6nlkYfCB1Y8sRTbYNUmCQ0LGatgER9wt")
UUID = "83679162-1378-4288-a2d4-70e13ec132aa"


def drive(tmp_path, meta=None, raw_meta=None, user_data=None, extra=None, name="drive"):
    """A config drive tree; ``extra`` maps paths under openstack/ to bytes."""
    top = tmp_path / name
    base = top / "openstack/latest"
    base.mkdir(parents=True)
    if raw_meta is None:
        m = {"uuid": UUID, "hostname": "demo.novalocal",
             "public_keys": {"a": KEY_A + " good@example"}}
        m.update(meta or {})
        raw_meta = json.dumps(m)
    (base / "meta_data.json").write_text(raw_meta)
    if user_data is not None:
        (base / "user_data").write_bytes(user_data)
    for rel, data in (extra or {}).items():
        p = top / "openstack" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return top


def conf(tmp_path, top, extra=""):
    c = tmp_path / "agent.conf"
    c.write_text(f"[main]\ndatasources = configdrive\ndefault_user = debian\n"
                 f"[configdrive]\npath = {top}\n{extra}")
    return c


def agent(root, *args, config=None, timeout=120):
    argv = AGENT + list(args) + ["--root", str(root)]
    if config is not None:
        argv += ["--config", str(config)]
    return subprocess.run(argv, env=ENV, capture_output=True, text=True, timeout=timeout,
                          errors="surrogateescape")


def authorized(root):
    p = root / "home/debian/.ssh/authorized_keys"
    return p.read_text() if p.exists() else ""


# -- console and log forgery ---------------------------------------------------

FORGED = "-----BEGIN SSH HOST KEY FINGERPRINTS-----"
FORGERIES = [
    "i-1\r\n" + FORGED + "\n256 SHA256:forged root@x (ED25519)",
    "i-2\n" + FORGED,
    "i-3\x1b[2K\r" + FORGED,
    "i-4\u2028" + FORGED,
    "i-5\x85" + FORGED,
    "i-6\x0b\x0c" + FORGED,
]


@pytest.mark.parametrize("iid", FORGERIES)
def test_metadata_strings_cannot_print_lines_of_their_own(tmp_path, root, iid):
    top = drive(tmp_path, {"uuid": iid, "name": iid, "hostname": iid,
                           "public_keys": {"a": KEY_A + " good@example",
                                           "b": KEY_B + " c\n" + FORGED}})
    c = conf(tmp_path, top, "[ssh]\nregenerate_host_keys = no\n")
    res = agent(root, "--once", "--verbose", config=c)
    outputs = {"console": res.stdout + res.stderr,
               "log file": (root / "var/log/guestagent.log").read_text(errors="replace")}
    for argv in (["status"], ["query"], ["query", "instance_id"], ["query", "name"]):
        r = agent(root, *argv)
        outputs[" ".join(argv)] = r.stdout + r.stderr
    for where, text in outputs.items():
        assert "Traceback" not in text, (where, text)
        assert "\x1b" not in text, where
        for line in text.splitlines():  # CR, LF, VT, FF, NEL, U+2028 all split
            assert not line.startswith(FORGED), f"{where}: forged line {line!r}"
    # the value itself is still shown, escaped
    assert any(e in outputs["console"] for e in ("\\n", "\\r", "\\x", "\\u")), outputs["console"]


def test_log_escape_covers_every_line_starter():
    from guestagent.log import escape
    for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029\x1b\x00\x7f\x9b\ud800\u202e":
        out = escape("a" + c + "b")
        assert len(out.splitlines()) == 1 and c not in out, repr(c)
    assert escape("plain\ttext é") == "plain\ttext é"


# -- one bad value must not take down the rest -----------------------------------

@pytest.mark.parametrize("meta", [
    {"uuid": "i-\ud800"},
    {"uuid": "\udfff\udfff"},
    {"public_keys": {"a": KEY_A + " good@example", "b": KEY_B + " bad\ud800comment"}},
    {"keys": [{"type": "ssh", "data": KEY_B + " x\udc80"}], "name": "n\ud800"},
    {"hostname": "demo\ud800", "meta": {"k\ud800": "v\udfff"}},
])
def test_lone_surrogates_cost_only_their_own_value(tmp_path, root, meta):
    raw = json.dumps({"uuid": UUID, "hostname": "demo.novalocal",
                      "public_keys": {"a": KEY_A + " good@example"}, **meta})
    # json.dumps escapes a lone surrogate as \\udXXX, which json.loads accepts
    top = drive(tmp_path, raw_meta=raw)
    res = agent(root, "--once", config=conf(tmp_path, top))
    assert "Traceback" not in res.stderr, res.stderr
    assert KEY_A in authorized(root), res.stderr
    assert "\ud800" not in authorized(root)
    q = agent(root, "query", "--json")
    assert q.returncode == 0, q.stderr
    json.loads(q.stdout)


def _nested(depth, leaf="1"):
    return '{"a": ' * depth + leaf + "}" * depth


@pytest.mark.parametrize("where,depth", [
    ("meta", 900), ("meta", 5000), ("meta", 200000), ("network", 900),
    ("network", 100000), ("vendor", 3000), ("list", 50000),
])
def test_deep_nesting_is_cut_and_the_rest_goes_on(tmp_path, root, where, depth):
    base = {"uuid": UUID, "hostname": "demo.novalocal",
            "public_keys": {"a": KEY_A + " good@example"}}
    raw = json.dumps(base)
    extra = {}
    if where == "meta":
        raw = raw[:-1] + ', "meta": ' + _nested(depth) + "}"
    elif where == "list":
        raw = raw[:-1] + ', "meta": {"x": ' + "[" * depth + "]" * depth + "}}"
    elif where == "network":
        extra["latest/network_data.json"] = (
            '{"services": [{"type": "dns", "address": "192.0.2.53"}], "links": '
            + _nested(depth) + "}").encode()
    else:
        extra["latest/vendor_data.json"] = _nested(depth).encode()
    top = drive(tmp_path, raw_meta=raw, extra=extra)
    res = agent(root, "--once", config=conf(tmp_path, top))
    assert "Traceback" not in res.stderr, res.stderr[-2000:]
    assert KEY_A in authorized(root), res.stderr[-2000:]
    assert "nested more than" in res.stderr
    if where == "network":
        assert "192.0.2.53" in (root / "etc/resolv.conf").read_text()
    for argv in (["query", "--json"], ["status"]):
        r = agent(root, *argv)
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr


GARBAGE = [b"", b"null", b"[]", b"\xff\xfe garbage", b'"a string"', b'{"runs": 5}',
           b'{"runs": [1, "x", {"steps": 7}], "last": []}',
           b'{"boot_id": 3, "runs": [{"duration": "x", "exit_code": [],'
           b' "steps": [{"name": 1}, 2, {"changes": 5}]}]}',
           b"[" * 100000 + b"]" * 100000]


@pytest.mark.parametrize("garbage", GARBAGE, ids=range(len(GARBAGE)))
def test_garbage_state_files_never_crash_status_query_or_a_stage(tmp_path, root, garbage):
    top = drive(tmp_path)
    c = conf(tmp_path, top)
    assert agent(root, "--once", config=c).returncode == 0
    state = root / "var/lib/guestagent"
    (state / "status.json").write_bytes(garbage)
    (state / "instances" / UUID / "metadata.json").write_bytes(garbage)
    for argv in (["status"], ["status", "--json"], ["query"], ["query", "hostname"],
                 ["--once", "--stage", "final"]):
        r = agent(root, *argv, config=c if argv[0] == "--once" else None)
        assert "Traceback" not in r.stderr, (argv, r.stderr)
        assert r.returncode in (0, 1, 3), (argv, r.returncode, r.stderr)
    # and the next full run repairs both
    r = agent(root, "--once", config=c)
    assert r.returncode == 0, r.stderr
    assert json.loads(agent(root, "query", "--json").stdout)["instance_id"] == UUID


@pytest.mark.parametrize("stored", [
    {"instance_id": 5}, {"instance_id": UUID, "public_keys": "ssh-rsa x"},
    {"instance_id": UUID, "files": [{"path": "/x", "content": "!!"}]},
    {"instance_id": UUID, "files": 3}, {"instance_id": UUID, "raw": "x"},
    {"instance_id": UUID, "hostname": {"a": 1}}, {"instance_id": ""},
])
def test_stored_metadata_of_the_wrong_shape_is_ignored(tmp_path, stored):
    from guestagent.metadata import Metadata
    with pytest.raises(ValueError):
        Metadata.from_dict(stored)


@pytest.mark.parametrize("first,second", [
    ("abc\n", "abc"), (" abc", "abc"), ("abc\r\n", "abc"), ("abc\t", "abc "),
    ("\u00a0abc", "abc\n"),
])
def test_instance_id_whitespace_does_not_make_a_new_instance(tmp_path, first, second):
    from guestagent.metadata import Metadata
    from guestagent.state import State
    from guestagent.system import System
    state = State(System(str(tmp_path)))
    assert state.set_instance(Metadata("t", first)) is True
    assert state.previous_instance_id() == "abc"
    assert state.set_instance(Metadata("t", first)) is False  # the next boot, same id
    assert state.set_instance(Metadata("t", second)) is False


def test_instance_id_trailing_newline_keeps_a_hand_edited_hostname(tmp_path, root):
    top = drive(tmp_path, {"uuid": UUID + "\n"})
    c = conf(tmp_path, top)
    assert agent(root, "--once", config=c).returncode == 0
    (root / "etc/hostname").write_text("handmade\n")
    (top / "openstack/latest/meta_data.json").write_text(json.dumps(
        {"uuid": UUID + "\r\n", "hostname": "demo.novalocal"}))
    res = agent(root, "--once", config=c)
    assert "same instance" in res.stderr, res.stderr
    assert (root / "etc/hostname").read_text() == "handmade\n"


def test_oversized_user_data_costs_only_the_user_data(tmp_path, root):
    for i, size in enumerate((2001, 100000)):
        top = drive(tmp_path, user_data=b"#!/bin/sh\n" + b"#" * size, name=f"d{i}")
        r = root.parent / f"r{i}"
        import shutil
        shutil.copytree(os.path.join(EXAMPLES, "root"), r, symlinks=True)
        res = agent(r, "--once", config=conf(tmp_path, top, "[userdata]\nmax_bytes = 2000\n"))
        assert KEY_A in authorized(r), res.stderr
        assert "ignoring the user-data" in res.stderr and "larger than 2000" in res.stderr
        assert (r / "etc/hostname").read_text().strip() == "demo"


# -- reads outside the config drive ----------------------------------------------

def _outside(tmp_path):
    out = tmp_path / "host"
    (out / "latest").mkdir(parents=True)
    (out / "secret").write_bytes(b"#!/bin/sh\necho HOST-SECRET\n")
    (out / "latest/meta_data.json").write_text(json.dumps(
        {"uuid": "host-uuid", "public_keys": {"h": KEY_B + " host@evil"}}))
    (out / "content").mkdir()
    (out / "content/0000").write_bytes(b"HOST-SECRET\n")
    return out


def _link_cases(tmp_path, case):
    out = _outside(tmp_path)
    files = [{"path": "/etc/motd.d/x", "content_path": "/content/0000"}]
    top = drive(tmp_path, {"files": files}, user_data=b"#!/bin/sh\necho fine\n")
    os_dir = top / "openstack"
    if case == "user_data absolute":
        (os_dir / "latest/user_data").unlink()
        os.symlink(str(out / "secret"), os_dir / "latest/user_data")
    elif case == "user_data relative up":
        (os_dir / "latest/user_data").unlink()
        rel = os.path.relpath(out / "secret", os_dir / "latest")
        os.symlink(rel, os_dir / "latest/user_data")
    elif case == "content dir":
        os.symlink(str(out / "content"), os_dir / "content")
    elif case == "content dir relative":
        os.symlink(os.path.relpath(out / "content", os_dir), os_dir / "content")
    elif case == "content file deep":
        (os_dir / "content").mkdir()
        (os_dir / "content/sub").mkdir()
        os.symlink("../../../../host/content/0000", os_dir / "content/sub/l")
        os.symlink("sub/l", os_dir / "content/0000")
    elif case == "latest dir":
        import shutil
        shutil.rmtree(os_dir / "latest")
        os.symlink(str(out / "latest"), os_dir / "latest")
    elif case == "meta_data.json":
        (os_dir / "latest/meta_data.json").unlink()
        os.symlink(str(out / "latest/meta_data.json"), os_dir / "latest/meta_data.json")
    return top


@pytest.mark.parametrize("case", ["user_data absolute", "user_data relative up",
                                  "content dir", "content dir relative", "content file deep",
                                  "latest dir", "meta_data.json"])
def test_nothing_is_read_through_a_symlink_off_the_drive(tmp_path, root, case):
    top = _link_cases(tmp_path, case)
    res = agent(root, "--once", config=conf(tmp_path, top))
    assert "Traceback" not in res.stderr, res.stderr
    everything = res.stdout + res.stderr
    assert "HOST-SECRET" not in everything
    assert not (root / "etc/motd.d/x").exists() or \
        b"HOST-SECRET" not in (root / "etc/motd.d/x").read_bytes()
    assert KEY_B not in authorized(root)
    assert "host-uuid" not in agent(root, "query", "instance_id").stdout
    if case in ("latest dir", "meta_data.json"):
        assert res.returncode == 3  # the drive has no usable metadata of its own
    else:
        assert KEY_A in authorized(root), res.stderr
        assert "leads off the config drive" in res.stderr


def test_symlinks_that_stay_on_the_drive_still_work(tmp_path):
    from guestagent.datasources import configdrive
    top = tmp_path / "d"
    dated = top / "openstack/2018-08-27"
    dated.mkdir(parents=True)
    (dated / "meta_data.json").write_text(json.dumps(
        {"uuid": "u", "files": [{"path": "/etc/x", "content_path": "/content/0000"}]}))
    (top / "openstack/content").mkdir()
    (top / "openstack/content/real").write_bytes(b"ok")
    os.symlink("real", top / "openstack/content/0000")
    os.symlink("2018-08-27", top / "openstack/latest")
    md = configdrive.read_tree(str(top), 1 << 20)
    assert [(f.path, f.content) for f in md.files] == [("/etc/x", b"ok")]


@pytest.mark.parametrize("where", ["latest/user_data", "latest/meta_data.json",
                                   "latest/network_data.json", "content/0000"])
def test_fifos_on_the_drive_are_refused_not_waited_on(tmp_path, where):
    from guestagent.datasources import configdrive
    top = drive(tmp_path, {"files": [{"path": "/etc/x", "content_path": "/content/0000"}]})
    p = top / "openstack" / where
    if p.exists():
        p.unlink()
    p.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(p)
    code = ("import sys; from guestagent.datasources import configdrive as c\n"
            "try:\n    md = c.read_tree(sys.argv[1], 1 << 20)\n"
            "    print(md.instance_id, len(md.files), len(md.user_data))\n"
            "except ValueError as e:\n    print('refused:', e)\n")
    res = subprocess.run([sys.executable, "-c", code, str(top)], env=ENV, capture_output=True,
                         text=True, timeout=20)
    assert res.returncode == 0, res.stderr
    assert "not a regular file" in res.stdout + res.stderr
    assert configdrive  # imported for the subprocess's sake only


# -- writes and ownership changes outside --root ------------------------------------

def _host_dir(tmp_path, name):
    """A directory outside the root that a link in the image points at (absolute)."""
    d = tmp_path / name
    d.mkdir()
    (d / "keep").write_text("host file\n")
    os.chmod(d, 0o755)
    return d


def _host_state(d):
    return sorted(os.listdir(d)), stat.S_IMODE(os.stat(d).st_mode), (d / "keep").read_text(), \
        os.stat(d / "keep").st_uid


@pytest.mark.parametrize("link", ["var/log", "var/lib/guestagent", "var/lib", "var"])
def test_agent_state_and_log_stay_inside_the_root(tmp_path, root, link):
    host = _host_dir(tmp_path, "host-" + link.replace("/", "-"))
    target = root / link
    if target.exists():
        import shutil
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(str(host), target)  # absolute: on a live boot it is the image's own
    before = _host_state(host)
    top = drive(tmp_path)
    res = agent(root, "--once", config=conf(tmp_path, top))
    assert "Traceback" not in res.stderr, res.stderr
    assert _host_state(host) == before, res.stderr
    inside = root / str(host).lstrip("/")
    assert inside.is_dir(), res.stderr  # the link was followed as if chrooted
    if link in ("var/log", "var"):
        # useradd --prefix would follow the link to the host's login records or mail
        assert "refusing to run useradd" in res.stderr and "outside the root" in res.stderr
    else:
        assert KEY_A in authorized(root), res.stderr


@pytest.mark.parametrize("entry", [
    {"path": "/var/run/demo/append.txt", "content": "x\n", "append": True,
     "owner": "debian"},
    {"path": "/var/run/demo/plain.txt", "content": "x\n", "owner": "debian:debian"},
    {"path": "/var/run/demo/append.txt", "content": "x\n", "append": True,
     "permissions": "0600"},
    {"path": "/srv/link/f", "content": "x\n", "append": True, "owner": "1000"},
])
def test_write_files_through_image_links_stay_inside_the_root(tmp_path, root, entry):
    host = _host_dir(tmp_path, "hostrun")
    (host / "demo").mkdir()
    for name in ("append.txt", "plain.txt"):
        (host / "demo" / name).write_text("host\n")
    (host / "f").write_text("host\n")
    (root / "var").mkdir(exist_ok=True)
    os.symlink(str(host), root / "var/run")
    (root / "srv").mkdir()
    os.symlink(str(host), root / "srv/link")
    snap = {p: (p.read_text(), os.stat(p).st_uid, stat.S_IMODE(os.stat(p).st_mode))
            for p in host.rglob("*") if p.is_file()}
    import yaml
    ud = "#cloud-config\n" + yaml.safe_dump({"write_files": [entry]})
    top = drive(tmp_path, user_data=ud.encode())
    res = agent(root, "--once", config=conf(tmp_path, top))
    assert "Traceback" not in res.stderr, res.stderr
    after = {p: (p.read_text(), os.stat(p).st_uid, stat.S_IMODE(os.stat(p).st_mode))
             for p in host.rglob("*") if p.is_file()}
    assert after == snap, res.stderr
    inside = root / str(host).lstrip("/") / entry["path"].rsplit("/", 2)[-2:][-1]
    assert inside.exists() or list((root / str(host).lstrip("/")).rglob("*")), res.stderr


# -- write_files: one bad entry --------------------------------------------------------

@pytest.mark.parametrize("bad", [
    {"path": "/etc/bad", "content": "x", "owner": "99999999999"},
    {"path": "/etc/bad", "content": "x", "owner": "debian:4294967296"},
    {"path": "/etc/bad", "content": "x", "owner": 12},
    {"path": "/etc/bad", "content": 10 ** 9},
    {"path": "/etc/bad", "content": "x", "permissions": "rwx"},
    {"path": "/etc/bad", "content": "x", "encoding": ["b64"]},
    "just a string",
    {"content": "no path"},
])
def test_one_bad_write_files_entry_is_refused_alone(tmp_path, root, bad):
    from guestagent.runner import _run_step
    from guestagent.steps import load

    from support.step_context import StepContext
    entries = [{"path": "/etc/app.log", "content": "line\n", "append": True},
               bad,
               {"path": "/etc/good", "content": "good\n"}]
    ctx = StepContext(root, cloud_config={"write_files": entries})
    res = _run_step(ctx, load("write_files"))
    assert res["result"] == "failed" and "1 of 3" in res["error"], res
    assert (root / "etc/good").read_text() == "good\n"
    assert (root / "etc/app.log").read_text() == "line\n"
    assert not (root / "etc/bad").exists()
    # the next boot of the same instance appends nothing again
    res = _run_step(StepContext(root, cloud_config={"write_files": entries}), load("write_files"))
    assert res["result"] == "done-before"
    assert (root / "etc/app.log").read_text() == "line\n"


@pytest.mark.parametrize("kind", ["fifo", "socket-like dir"])
def test_write_files_append_to_a_fifo_is_refused_not_blocked(tmp_path, root, kind):
    target = root / "etc/pipe"
    if kind == "fifo":
        os.mkfifo(target)
    else:
        target.mkdir()
    import yaml
    ud = "#cloud-config\n" + yaml.safe_dump({"write_files": [
        {"path": "/etc/pipe", "content": "x", "append": True},
        {"path": "/etc/after", "content": "ok"}]})
    top = drive(tmp_path, user_data=ud.encode())
    res = agent(root, "--once", config=conf(tmp_path, top), timeout=60)
    assert (root / "etc/after").read_text() == "ok", res.stderr
    assert "/etc/pipe" in res.stderr


# A FIFO at the agent's own log or status.json is refused before the run
# (exit 4, tests/test_own_files.py); the scripts' log is the scripts step's.
@pytest.mark.parametrize("where", ["var/log/guestagent-user-data.log"])
def test_a_fifo_where_the_agent_keeps_its_files_never_blocks_it(tmp_path, root, where):
    (root / where).parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(root / where)
    # more output than a pipe holds: a FIFO nobody reads would block the writer
    top = drive(tmp_path, user_data=b"#!/bin/sh\nhead -c 300000 /dev/zero | tr '\\0' x\n")
    res = agent(root, "--once", config=conf(tmp_path, top), timeout=60)
    assert "Traceback" not in res.stderr, res.stderr
    assert KEY_A in authorized(root), res.stderr
    assert "not a regular file" in res.stderr, res.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)")
@pytest.mark.root
@pytest.mark.parametrize("mode,path", [
    ("ec2", "2009-04-04/user-data"),
    ("openstack", "openstack/latest/user_data"),
    ("openstack", "openstack/latest/network_data.json"),
    ("openstack", "openstack/latest/vendor_data.json"),
])
def test_an_oversized_optional_document_from_the_service_costs_only_itself(
        tmp_path, root, mode, path):
    from support.netns import Netns
    conf = tmp_path / "net.conf"
    conf.write_text(f"[main]\ndatasources = {'ec2' if mode == 'ec2' else 'openstack'}\n"
                    f"deadline = 20\nmax_response_bytes = 1048576\ndefault_user = debian\n")
    with Netns() as ns:
        ns.start_server(os.path.join(EXAMPLES, "configdrive"), "--mode", mode,
                        "--huge", path)
        res = subprocess.run(ns.prefix() + AGENT + ["--once", "--root", str(root),
                                                    "--config", str(conf)],
                             env=ENV, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in res.stderr, res.stderr
    assert "1048576-byte limit" in res.stderr, res.stderr
    assert "ssh-ed25519" in authorized(root), res.stderr
