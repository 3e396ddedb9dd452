"""The users step: accounts, sudo and SSH keys, on real scratch roots.

useradd --prefix, visudo and ssh-keygen run for real; nothing on this
machine outside the scratch root is touched.
"""

import base64
import json
import logging
import os
import shutil
import struct
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guestagent.accounts import plan as account_plan
from guestagent.metadata import Metadata
from guestagent.steps import Skip, users
from guestagent.steps.users import authorized_keys as ak

from support.marks import needs_root
from support.step_context import StepContext
from support.userdata_helpers import Drive

pytestmark = [needs_root, pytest.mark.root]

ED1 = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO5j2lnT1qR7/lpXRlCfui2BILCHMsFxcyVGD4ENC2q6 "
       "demo@example")
ED2 = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDE0zazn152V6nlkYfCB1Y8sRTbYNUmCQ0LGatgER9wt "
       "second@example")
ED3_BLOB = base64.b64encode(struct.pack(">I", 11) + b"ssh-ed25519" + struct.pack(">I", 32)
                            + b"\x07" * 32).decode()
ED3 = f"ssh-ed25519 {ED3_BLOB} third@example"
CONF = "[main]\ndefault_user = debian\n"


def _ctx(root, keys=(), cloud_config=None, conf=CONF, iid="i-1"):
    md = Metadata(source="test", instance_id=iid, public_keys=list(keys))
    return StepContext(root, md, cloud_config=cloud_config, conf_text=conf)


def _passwd(root):
    return {ln.split(":")[0]: ln.split(":") for ln in
            (root / "etc/passwd").read_text().splitlines()}


def _shadow(root):
    return {ln.split(":")[0]: ln.split(":") for ln in
            (root / "etc/shadow").read_text().splitlines()}


def _keys_file(root, user="debian"):
    return root / "home" / user / ".ssh/authorized_keys"


def _useradd(root, name):
    subprocess.run(["useradd", "--prefix", str(root), "-k", str(root / "etc/skel"), "-m",
                    "-U", "-s", "/bin/bash", name], check=True)
    return int(_passwd(root)[name][2])


# -- the key line checker -------------------------------------------------------

def _keygen(tmp_path, t):
    f = tmp_path / f"k_{t}"
    subprocess.run(["ssh-keygen", "-q", "-N", "", "-t", t, "-C", f"me@{t}", "-f", str(f)],
                   check=True)
    return (tmp_path / f"k_{t}.pub").read_text().strip()


@pytest.mark.parametrize("t", ["rsa", "ecdsa", "ed25519"])
def test_real_keys_of_each_type_parse(tmp_path, t):
    line = _keygen(tmp_path, t)
    k = ak.parse(line)
    assert k.line == line and k.comment == f"me@{t}" and not k.options


@pytest.mark.parametrize("line", [
    'command="echo hi, there",no-pty ' + ED1,
    'from="10.0.0.0/8",restrict ' + ED1,
    'environment="A=\\"quoted\\" b" ' + ED1,
    ED1.rsplit(" ", 1)[0],  # no comment
])
def test_lines_with_clean_options_or_no_comment_are_accepted(line):
    assert ak.parse(line).blob == ED1.split()[1]


@pytest.mark.parametrize("line,why", [
    ("junk", "not an option sshd knows"),
    ("ssh-ed25519", "no key data"),
    ("ssh-ed25519 !!!notbase64", "not valid base64"),
    ("ssh-rsa " + ED1.split()[1], "not a ssh-rsa key"),
    ("ssh-foo AAAA", "not an option sshd knows"),
    (ED1 + "\nssh-rsa AAAA", "control character"),
    (ED1 + "\r", "control character"),
    (ED1.replace("demo", "de\0mo"), "control character"),
    ('command="unterminated ' + ED1, "unterminated quote"),
    ('command=unquoted ' + ED1, "double-quoted"),
    ("nosuchoption " + ED1, "not an option sshd knows"),
    ('no-pty,,restrict ' + ED1, "empty option"),
    ("", "empty"),
    # options followed only by whitespace str.strip(" \t") keeps (hypothesis found these)
    ("no-pty \xa0", "options but no key"),
    ('command="x" \u3000', "options but no key"),
])
def test_bad_lines_are_refused_with_a_reason(line, why):
    with pytest.raises(ak.BadKey, match=why):
        ak.parse(line)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40), st.text(max_size=60))
def test_any_text_around_a_key_is_one_clean_line_or_refused(options, comment):
    for line in (ED1 + " " + comment, options + " " + ED1, options):
        try:
            k = ak.parse(line)
        except ak.BadKey:
            continue
        assert len(k.line.splitlines()) == 1 and "\0" not in k.line
        assert ak.parse(k.line) == k  # what we write reads back the same


def test_merge_keeps_everything_and_adds_each_key_once():
    existing = "# my keys\n" + ED1.replace("demo@example", "renamed") + "\nnot a key\n"
    text, added = ak.merge(existing, [ak.parse(ED1), ak.parse(ED2), ak.parse(ED2)])
    assert text.startswith(existing)
    assert [k.comment for k in added] == ["second@example"]
    assert text.count(ED2.split()[1]) == 1 and text.count(ED1.split()[1]) == 1
    assert ak.merge(text, [ak.parse(ED1), ak.parse(ED2)]) == (text, [])


# -- the step on a scratch root -------------------------------------------------------

def test_creates_the_user_with_sudo_and_keys_once_then_changes_nothing(root):
    changes = users.run(_ctx(root, [ED1, ED2, ED1])).changes
    pw = _passwd(root)["debian"]
    assert pw[5] == "/home/debian" and pw[6] == "/bin/bash"
    uid, gid = int(pw[2]), int(pw[3])
    assert _shadow(root)["debian"][1].startswith("!")  # locked
    sudo = root / "etc/sudoers.d/90-guestagent-users"
    assert "debian ALL=(ALL) NOPASSWD:ALL\n" in sudo.read_text()
    assert sudo.stat().st_mode & 0o777 == 0o440
    assert subprocess.run(["visudo", "-cf", str(sudo)], capture_output=True).returncode == 0
    assert not list((root / "etc/sudoers.d").glob(".*"))
    f = _keys_file(root)
    assert f.read_text() == ED1 + "\n" + ED2 + "\n"
    for p, mode in ((f, 0o600), (f.parent, 0o700)):
        st = p.stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (uid, gid, mode)
    assert any("added 2 keys" in c for c in changes)
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in
              (f, sudo, root / "etc/passwd", root / "etc/shadow", root / "etc/group")}
    assert users.run(_ctx(root, [ED1, ED2])).changes == []
    assert before == {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in before}


def test_existing_keys_are_kept_and_modes_repaired(root):
    uid = _useradd(root, "debian")
    f = _keys_file(root)
    f.parent.mkdir(mode=0o755)
    os.chown(f.parent, uid, uid)
    f.write_text("# hand-made\n" + ED2.replace("second@example", "mine") + "\nfrom-a-tool")
    os.chmod(f, 0o644)
    changes = users.run(_ctx(root, [ED1, ED2])).changes
    assert f.read_text() == ("# hand-made\n" + ED2.replace("second@example", "mine")
                             + "\nfrom-a-tool\n" + ED1 + "\n")
    assert f.stat().st_mode & 0o777 == 0o600 and f.stat().st_uid == uid
    assert f.parent.stat().st_mode & 0o777 == 0o700
    assert any("mode 0700" in c for c in changes)
    assert any("added 1 key " in c for c in changes)


def test_extra_groups_only_those_that_exist(root, caplog):
    conf = CONF + "[users]\ngroups = sudo, nosuchgroup, bad;group\n"
    users.run(_ctx(root, [ED1], conf=conf))
    group = (root / "etc/group").read_text()
    assert "sudo:x:27:debian" in group
    assert "nosuchgroup" not in group
    assert "group nosuchgroup does not exist" in caplog.text
    assert "'bad;group'" in caplog.text


def test_no_sudo_when_configured_off(root):
    users.run(_ctx(root, [ED1], conf=CONF + "[users]\nsudo = no\n"))
    assert "debian" in _passwd(root)
    assert not (root / "etc/sudoers.d/90-guestagent-users").exists()


def test_symlinked_authorized_keys_is_refused_and_its_target_untouched(root, tmp_path, caplog):
    uid = _useradd(root, "debian")
    target = tmp_path / "precious"
    target.write_text("do not touch\n")
    ssh = root / "home/debian/.ssh"
    ssh.mkdir(mode=0o700)
    os.chown(ssh, uid, uid)
    os.symlink(target, ssh / "authorized_keys")
    os.lchown(ssh / "authorized_keys", uid, uid)
    users.run(_ctx(root, [ED1]))
    assert target.read_text() == "do not touch\n"
    assert os.path.islink(ssh / "authorized_keys")
    assert "not writing the SSH keys" in caplog.text and "symlink" in caplog.text
    assert (root / "etc/sudoers.d/90-guestagent-users").exists()  # the rest still done


def test_symlinked_ssh_dir_is_refused(root, tmp_path, caplog):
    uid = _useradd(root, "debian")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, root / "home/debian/.ssh")
    os.lchown(root / "home/debian/.ssh", uid, uid)
    users.run(_ctx(root, [ED1]))
    assert os.listdir(elsewhere) == []
    assert "not writing the SSH keys" in caplog.text


def test_an_account_without_a_usable_home_gets_no_keys(root, caplog):
    with open(root / "etc/passwd", "a") as f:
        f.write("debian:x:1000:1000::relative/home:/bin/sh\n")
    users.run(_ctx(root, [ED1], conf=CONF + "[users]\nsudo = no\n"))
    assert "not an absolute path" in caplog.text
    assert not (root / "relative").exists() and not (root / ".ssh").exists()


def test_hostile_keys_change_nothing_they_should_not(root, caplog):
    hostile = [
        "junk",
        ED2 + "\n" + 'command="/bin/sh" ' + ED3,  # a second line smuggled in one value
        'command="rm -rf /" ' + ED3.replace(ED3_BLOB, ED3_BLOB[:-4] + "====x"),
        'nosuchopt="x" ' + ED1,
        ED1.replace("demo", "\x1b[2Jdemo"),
        'command="echo ok",no-pty ' + ED3,  # clean options: accepted as they are
    ]
    cc = {"ssh_authorized_keys": hostile[:2]}
    users.run(_ctx(root, hostile[2:], cloud_config=cc))
    lines = _keys_file(root).read_text().splitlines()
    assert lines == ['command="echo ok",no-pty ' + ED3]
    assert "spans several lines" in caplog.text
    assert caplog.text.count("not a public key") == 4


def test_sudo_rules_that_could_inject_a_line_are_refused(root, caplog):
    cc = {"users": ["default", {"name": "alice", "sudo": [
        "ALL=(ALL) NOPASSWD:ALL\nalice ALL=(ALL) ALL",
        "ALL=(ALL) NOPASSWD:ALL \\",
        "ALL=(ALL) NOPASSWD:/usr/bin/id",
    ]}]}
    users.run(_ctx(root, [ED1], cloud_config=cc))
    text = (root / "etc/sudoers.d/90-guestagent-users").read_text()
    assert text.splitlines()[1:] == ["debian ALL=(ALL) NOPASSWD:ALL",
                                     "alice ALL=(ALL) NOPASSWD:/usr/bin/id"]
    assert caplog.text.count("refusing sudo rule") == 2


def test_a_rule_visudo_rejects_never_lands(root):
    users.run(_ctx(root, [ED1]))
    sudo = root / "etc/sudoers.d/90-guestagent-users"
    before = sudo.read_bytes()
    cc = {"users": ["default", {"name": "bob", "sudo": "ALL=(ALL NOPASSWD: ((broken"}]}
    out = users.run(_ctx(root, [ED1], cloud_config=cc, iid="i-2"))
    assert "visudo rejects" in out.error and out.retry
    assert sudo.read_bytes() == before
    assert sorted(os.listdir(root / "etc/sudoers.d")) == ["90-guestagent-users"]
    assert "bob" in _passwd(root)  # the account itself is still made, and said so
    assert any(c.startswith("created user bob (uid ") for c in out.changes), out.changes


@pytest.mark.parametrize("name", ["bob;touch /tmp/pwned", "$(id)", "Root", "-rf", "a" * 33,
                                  "../../etc", "bob\nroot"])
def test_bad_cloud_config_names_reach_no_command(root, caplog, name):
    caplog.set_level(logging.DEBUG)
    cc = {"users": ["default", {"name": name, "sudo": "ALL=(ALL) NOPASSWD:ALL",
                                "ssh_authorized_keys": [ED2]}]}
    users.run(_ctx(root, [ED1], cloud_config=cc))
    assert set(_passwd(root)) == {"root", "nobody", "debian"}
    assert "not a valid account name" in caplog.text
    commands = [r.getMessage() for r in caplog.records if r.getMessage().startswith("running:")]
    assert any("useradd" in c for c in commands)  # debian's
    assert not any(name in c for c in commands)
    assert (root / "etc/sudoers.d/90-guestagent-users").read_text().count("\n") == 2
    assert not os.path.exists("/tmp/pwned")


def test_bad_default_user_name_fails_the_step_before_any_command(root):
    out = users.run(_ctx(root, [ED1], conf="[main]\ndefault_user = deb;ian\n"))
    assert "not a valid account name" in out.error and out.changes == []
    assert set(_passwd(root)) == {"root", "nobody"}


def test_a_tree_whose_etc_links_out_never_reaches_useradd(root, tmp_path):
    outside = tmp_path / "outside-etc"
    shutil.copytree(root / "etc", outside)
    shutil.copytree(root / "etc", root / str(outside).lstrip("/"))  # what the seam sees
    shutil.rmtree(root / "etc")
    os.symlink(str(outside), root / "etc")
    before = (outside / "passwd").read_bytes()
    assert "outside the root" in users.run(_ctx(root, [ED1])).error
    assert (outside / "passwd").read_bytes() == before


# -- #cloud-config -------------------------------------------------------------------

def test_cloud_config_users_with_default_and_an_extra_user(root):
    cc = {"ssh_authorized_keys": [ED3],
          "users": ["default", {"name": "alice", "shell": "/bin/sh", "groups": ["sudo"],
                                "ssh_authorized_keys": [ED2]},
                    {"name": "ops", "sudo": "ALL=(ALL) NOPASSWD:ALL", "lock_passwd": True}]}
    users.run(_ctx(root, [ED1], cloud_config=cc))
    pw = _passwd(root)
    assert pw["alice"][6] == "/bin/sh"
    assert _keys_file(root).read_text() == ED3 + "\n" + ED1 + "\n"
    assert _keys_file(root, "alice").read_text() == ED2 + "\n"
    assert not _keys_file(root, "ops").exists()
    assert _shadow(root)["ops"][1].startswith("!")
    sudo = (root / "etc/sudoers.d/90-guestagent-users").read_text()
    assert "debian ALL=(ALL) NOPASSWD:ALL" in sudo and "ops ALL=(ALL) NOPASSWD:ALL" in sudo
    assert "alice" not in sudo  # no sudo entry, no rule
    assert "sudo:x:27:alice" in (root / "etc/group").read_text()


def test_users_without_default_skip_the_default_user_and_keys_go_to_the_first(root, caplog):
    caplog.set_level(logging.INFO)
    cc = {"ssh_authorized_keys": [ED3],
          "users": [{"name": "alice", "ssh_authorized_keys": [ED2]}, {"name": "bob"}]}
    users.run(_ctx(root, [ED1], cloud_config=cc))
    assert "debian" not in _passwd(root)
    assert _keys_file(root, "alice").read_text() == ED3 + "\n" + ED1 + "\n" + ED2 + "\n"
    assert not _keys_file(root, "bob").exists()
    assert "the instance's keys go to alice" in caplog.text
    assert account_plan.plan(_ctx(root, cloud_config=cc)).key_owner == "alice"


def test_cloud_config_entry_for_the_default_user_overrides_the_config(root):
    cc = {"users": [{"name": "debian", "sudo": False, "shell": "/bin/sh"}]}
    users.run(_ctx(root, [ED1], cloud_config=cc))
    assert _passwd(root)["debian"][6] == "/bin/sh"
    assert not (root / "etc/sudoers.d/90-guestagent-users").exists()
    assert _keys_file(root).read_text() == ED1 + "\n"


def test_empty_users_list_creates_nobody(root, caplog):
    with pytest.raises(Skip):
        users.run(_ctx(root, [ED1], cloud_config={"users": []}))
    assert set(_passwd(root)) == {"root", "nobody"}
    assert "not installed anywhere" in caplog.text


def test_cloud_config_from_real_user_data(root):
    ud = (b"#cloud-config\nusers:\n  - default\n  - name: carol\n"
          b"    sudo: ALL=(ALL) NOPASSWD:ALL\n    ssh_authorized_keys:\n      - " + ED2.encode()
          + b"\nssh_authorized_keys:\n  - " + ED3.encode() + b"\n")
    md = Metadata(source="test", instance_id="i-1", public_keys=[ED1], user_data=ud)
    from guestagent import config as configmod
    from guestagent.state import State
    from guestagent.steps.context import Context
    from guestagent.system import System
    system = System(str(root))
    conf = root / "ga.conf"
    conf.write_text(CONF)
    ctx = Context(system, configmod.load(str(conf), root=str(root)), State(system), md,
                  True, "all")
    users.run(ctx)
    assert _keys_file(root).read_text() == ED3 + "\n" + ED1 + "\n"
    assert _keys_file(root, "carol").read_text() == ED2 + "\n"
    assert "carol ALL=(ALL) NOPASSWD:ALL" in (
        root / "etc/sudoers.d/90-guestagent-users").read_text()


# -- the real agent ----------------------------------------------------------------

def test_useradd_missing_fails_the_step_in_one_line_and_the_boot_goes_on(root, tmp_path,
                                                                          run_agent):
    from support.step_context import config_drive
    drive = config_drive(tmp_path / "drive", {"public_keys": {"k": ED1}})
    conf = tmp_path / "a.conf"
    conf.write_text(f"[main]\ndatasources = configdrive\ndefault_user = debian\n"
                    f"[configdrive]\npath = {drive}\n")
    script = ("mount --bind /dev/null /usr/sbin/useradd && "
              "exec \"$@\"")
    from support import REPO, agent_argv
    argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]
    argv += agent_argv() + ["--once", "--root", str(root), "--config", str(conf)]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, PYTHONPATH=REPO))
    assert res.returncode == 1, res.stderr
    assert "users failed: user debian: cannot create user debian: useradd is not installed" \
        in res.stderr
    assert "Traceback" not in res.stderr
    status = json.loads(run_agent("status", "--json", "--root", root).stdout)
    results = {s["name"]: s["result"] for s in status["last"]["steps"]}
    assert results["users"] == "failed"
    assert results["hostkeys"] == "changed"  # the next step still ran


def test_a_key_removed_on_purpose_stays_removed_on_reboot(root, tmp_path, run_agent):
    from support.step_context import config_drive
    drive = config_drive(tmp_path / "drive", {"public_keys": {"a": ED1, "b": ED2}})
    conf = tmp_path / "a.conf"
    conf.write_text(f"[main]\ndatasources = configdrive\ndefault_user = debian\n"
                    f"[configdrive]\npath = {drive}\n")
    run_agent("--once", "--root", root, "--config", conf, "--only", "users", check=True)
    f = _keys_file(root)
    assert f.read_text() == ED1 + "\n" + ED2 + "\n"
    f.write_text(ED1 + "\n")  # the user drops a key
    res = run_agent("--once", "--root", root, "--config", conf, "--only", "users", check=True)
    assert "same instance" in res.stderr
    assert f.read_text() == ED1 + "\n"


def test_real_agent_against_the_metadata_server(root, tmp_path, run_agent):
    from support.netns import Netns
    tree = tmp_path / "tree"
    latest = tree / "openstack/latest"
    latest.mkdir(parents=True)
    meta = {"uuid": "aaaaaaaa-1111-2222-3333-444444444444", "hostname": "vm1.novalocal",
            "public_keys": {"good": ED1 + "\n", "junk": "not a key at all",
                            "smuggled": ED2 + "\n" + 'command="/bin/sh" ' + ED3},
            "keys": [{"name": "good", "type": "ssh", "data": ED1}]}
    (latest / "meta_data.json").write_text(json.dumps(meta))
    (latest / "user_data").write_text(
        "#cloud-config\nusers:\n  - default\n  - name: 'evil;reboot'\n"
        "    sudo: ALL=(ALL) NOPASSWD:ALL\n  - name: dave\n    sudo: \"ALL=(ALL) ALL\\n"
        "dave ALL=(ALL) NOPASSWD:ALL\"\n")
    conf = tmp_path / "agent.conf"
    conf.write_text("[main]\ndatasources = openstack\ndeadline = 20\ndefault_user = debian\n"
                    "[ssh]\nregenerate_host_keys = no\n")
    # someone's keys already there, in the image
    uid = _useradd(root, "debian")
    f = _keys_file(root)
    f.parent.mkdir(mode=0o700)
    f.write_text(ED3.replace("third@example", "image-builder") + "\n")
    os.chown(f.parent, uid, uid)
    with Netns() as ns:
        ns.start_server(tree, "--mode", "openstack")
        res = run_agent("--once", "--root", root, "--config", conf, netns=ns)
        assert "Traceback" not in res.stderr
        assert f.read_text() == (ED3.replace("third@example", "image-builder") + "\n"
                                 + ED1 + "\n" + ED2 + "\n")
        assert (f.stat().st_uid, f.stat().st_mode & 0o777) == (uid, 0o600)
        pw = _passwd(root)
        assert "dave" in pw and not any(";" in n for n in pw)
        sudo = (root / "etc/sudoers.d/90-guestagent-users").read_text()
        assert sudo.splitlines()[1:] == ["debian ALL=(ALL) NOPASSWD:ALL"]
        assert "not a valid account name" in res.stderr
        # refused when the user-data is read, before any step acts on it
        assert "'sudo' refused: a sudoers rule with a line break" in res.stderr
        # a new instance of the same image: the keys already there are not added twice
        meta["uuid"] = "bbbbbbbb-1111-2222-3333-444444444444"
        (latest / "meta_data.json").write_text(json.dumps(meta))
        shutil.copy(f, tmp_path / "before")
        ns.close()
    with Netns() as ns:
        ns.start_server(tree, "--mode", "openstack")
        res = run_agent("--once", "--root", root, "--config", conf, netns=ns)
    assert "new instance" in res.stderr
    assert f.read_bytes() == (tmp_path / "before").read_bytes()
    assert (root / "etc/sudoers.d/90-guestagent-users").read_text() == sudo


def test_real_agent_creates_the_user_from_the_metadata_service(root, tmp_path, run_agent):
    from support.netns import Netns
    tree = tmp_path / "tree"
    (tree / "openstack/latest").mkdir(parents=True)
    meta = {"uuid": "cccccccc-1111-2222-3333-444444444444",
            "public_keys": {"a": ED1}, "keys": [{"type": "ssh", "data": ED2}]}
    (tree / "openstack/latest/meta_data.json").write_text(json.dumps(meta))
    conf = tmp_path / "agent.conf"
    conf.write_text("[main]\ndatasources = openstack\ndeadline = 20\ndefault_user = debian\n"
                    "[ssh]\nregenerate_host_keys = no\n")
    f = _keys_file(root)
    watched = [f, root / "etc/passwd", root / "etc/shadow", root / "etc/group",
               root / "etc/sudoers.d/90-guestagent-users"]
    with Netns() as ns:
        ns.start_server(tree, "--mode", "openstack")
        res = run_agent("--once", "--root", root, "--config", conf, "--only", "users",
                        netns=ns)
        assert res.returncode == 0, res.stderr
        uid, gid = int(_passwd(root)["debian"][2]), int(_passwd(root)["debian"][3])
        assert _shadow(root)["debian"][1].startswith("!")
        assert "debian ALL=(ALL) NOPASSWD:ALL" in watched[-1].read_text()
        assert f.read_text() == ED1 + "\n" + ED2 + "\n"
        assert (f.stat().st_uid, f.stat().st_gid, f.stat().st_mode & 0o777) == (uid, gid, 0o600)
        assert f.parent.stat().st_mode & 0o777 == 0o700
        before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in watched}
        res = run_agent("--once", "--root", root, "--config", conf, "--only", "users",
                        netns=ns)
    assert res.returncode == 0, res.stderr
    assert "same instance" in res.stderr
    assert before == {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in watched}


# -- a step that fails part way ---------------------------------------------------------

def test_a_partly_failed_step_shows_the_accounts_it_made(tmp_path, root, run_agent):
    """users makes alice, then useradd refuses bob (the uid asked for is
    nobody's): the step fails naming bob, and status lists alice's account
    as changed beside the failure, where a failed step used to show no
    changes at all.  The step is tried again on the next boot, which makes
    nothing twice."""
    drive = Drive(tmp_path, run_agent, root)
    drive.user_data("#cloud-config\nusers:\n  - default\n  - name: alice\n"
                    "  - name: bob\n    uid: 65534\n")
    res = drive.run()
    assert res.returncode == 1, res.stderr
    step = drive.step("users")
    assert step["result"] == "failed"
    assert step["error"] == ("user bob: cannot create user bob: useradd -m -s failed (exit 4): "
                             "useradd: UID 65534 is not unique"), step
    made = [c for c in step["changes"] if c.startswith("created user ")]
    assert [c.split(" (")[0] for c in made] == ["created user debian", "created user alice"]
    assert "users: created user alice (uid " in res.stderr  # the log says it too
    status = run_agent("status", "--root", root)
    assert status.returncode == 1  # the last run had a failed step
    shown = status.stdout.splitlines()
    at = next(i for i, ln in enumerate(shown) if ln.split()[:2] == ["users", "failed"])
    assert "UID 65534 is not unique" in shown[at]
    assert shown[at + 1].lstrip().startswith("changed: created user debian (uid "), shown
    assert "created user alice (uid " in shown[at + 1]
    assert "alice" in _passwd(root) and "bob" not in _passwd(root)

    res = drive.run()  # not done for the instance: tried again, nothing made twice
    step = drive.step("users")
    assert step["result"] == "failed" and "UID 65534 is not unique" in step["error"]
    assert not [c for c in step["changes"] if c.startswith("created user ")], step
