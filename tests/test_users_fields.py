"""users[] fields, user/system_info, top-level groups, disable_root: cloud-init's examples.

Each document goes through the real decoder and its validators, then the
users step runs on a scratch root (useradd/groupadd/usermod --prefix for
real).  Hostile values are refused by name before anything acts; what the
instance owner may ask for (root-equivalent groups) is done and said.
"""

import subprocess

import pytest

from guestagent.accounts.passwd_hash import sha512_crypt, verify
from guestagent.metadata import Metadata
from guestagent.steps import admin_pass, users
from guestagent.userdata import decode

from support.marks import needs_root
from support.step_context import StepContext

pytestmark = [needs_root, pytest.mark.root]

ED1 = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO5j2lnT1qR7/lpXRlCfui2BILCHMsFxcyVGD4ENC2q6 "
       "demo@example")
ED2 = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDE0zazn152V6nlkYfCB1Y8sRTbYNUmCQ0LGatgER9wt "
       "second@example")
CONF = "[main]\ndefault_user = debian\n"
HASH = sha512_crypt("foobar's password", "j212wezy")


def cloud_config(text):
    ud = decode(("#cloud-config\n" + text).encode(), 1 << 20)
    return ud.cloud_config, ud.warnings


def run(root, text, keys=(ED1,)):
    cc, _ = cloud_config(text)
    md = Metadata(source="test", instance_id="i-1", public_keys=list(keys))
    return users.run(StepContext(root, md, cloud_config=cc, conf_text=CONF)).changes


def table(root, name):
    return {ln.split(":")[0]: ln.split(":") for ln in
            (root / "etc" / name).read_text().splitlines()}


def test_cloud_inits_user_groups_example(root):
    """The documented example (cloud-config-user-groups), less what needs a network."""
    changes = run(root, f"""
groups:
  - admingroup: [root, sys]
  - cloud-users
users:
  - default
  - name: foobar
    gecos: Foo B. Bar
    primary_group: foobar
    groups: users
    expiredate: '2032-09-01'
    lock_passwd: false
    passwd: {HASH}
  - name: barfoo
    gecos: Bar B. Foo
    sudo: "ALL=(ALL) NOPASSWD:ALL"
    groups: users, admin
    lock_passwd: true
    ssh_authorized_keys: [{ED2}]
  - name: cloudy
    gecos: Magic Cloud App Daemon User
    system: true
  - name: fizzbuzz
    sudo: false
    shell: /bin/bash
""")
    passwd, shadow, group = table(root, "passwd"), table(root, "shadow"), table(root, "group")
    assert passwd["foobar"][4] == "Foo B. Bar"
    assert passwd["foobar"][3] == group["foobar"][2]  # primary group, created
    assert "foobar" in group["users"][3].split(",")
    assert shadow["foobar"][1] == HASH  # lock_passwd: false keeps it usable
    assert shadow["foobar"][7] == str((__import__("datetime").date(2032, 9, 1)
                                       - __import__("datetime").date(1970, 1, 1)).days)
    assert shadow["barfoo"][1].startswith("!")
    assert set(group["admin"][3].split(",")) == {"barfoo"}  # a missing group is created
    assert int(passwd["cloudy"][2]) < 1000 and not (root / "home/cloudy").exists()
    assert passwd["fizzbuzz"][6] == "/bin/bash"
    # this image has no user sys: said in the log, the group made with root in it
    assert set(group["admingroup"][3].split(",")) == {"root"}
    assert "cloud-users" in group
    sudo = (root / "etc/sudoers.d/90-guestagent-users").read_text()
    assert "barfoo ALL=(ALL) NOPASSWD:ALL" in sudo and "fizzbuzz" not in sudo
    assert (root / "home/barfoo/.ssh/authorized_keys").read_text() == ED2 + "\n"
    assert (root / "home/debian/.ssh/authorized_keys").read_text() == ED1 + "\n"
    assert HASH not in " ".join(changes)


def test_homedir_uid_no_create_home_and_passwords(root):
    run(root, """
users:
  - default
  - name: kong
    homedir: /usr/local/kong
    uid: 2345
    plain_text_passwd: 'P@ssw0rd'
    lock_passwd: false
  - name: quiet
    no_create_home: true
    hashed_passwd: '$6$rounds=4096$abcdefgh$0a0b'
""")
    passwd, shadow = table(root, "passwd"), table(root, "shadow")
    assert passwd["kong"][2] == "2345" and passwd["kong"][5] == "/usr/local/kong"
    assert (root / "usr/local/kong").is_dir()
    assert verify("P@ssw0rd", shadow["kong"][1])
    assert not (root / "home/quiet").exists()
    assert shadow["quiet"][1] == "!$6$rounds=4096$abcdefgh$0a0b"  # lock_passwd defaults to true


def test_dashes_read_as_underscores_in_user_entries(root):
    """Eleven corpus documents give ssh-authorized-keys: cloud-init maps - to _."""
    run(root, f"""
users:
  - default
  - name: dashed
    ssh-authorized-keys: [{ED2}]
    lock-passwd: false
    primary-group: dashedgrp
""")
    assert (root / "home/dashed/.ssh/authorized_keys").read_text() == ED2 + "\n"
    assert "dashedgrp" in table(root, "group")


def test_user_and_system_info_rename_and_configure_the_default_user(root):
    run(root, """
system_info:
  default_user:
    name: centos
    plain_text_passwd: 'P@ssw0rd'
    lock_passwd: false
    groups: [wheel]
""")
    passwd, shadow = table(root, "passwd"), table(root, "shadow")
    assert "centos" in passwd and "debian" not in passwd
    assert verify("P@ssw0rd", shadow["centos"][1])
    assert (root / "home/centos/.ssh/authorized_keys").read_text() == ED1 + "\n"
    assert "centos ALL=(ALL) NOPASSWD:ALL" in (
        root / "etc/sudoers.d/90-guestagent-users").read_text()
    run(root, "user: {name: legacy, shell: /bin/sh}\n")
    assert table(root, "passwd")["legacy"][6] == "/bin/sh"


def test_disable_root_true_gives_root_the_keys_behind_a_message(root):
    (root / "root/.ssh").mkdir(parents=True, exist_ok=True)
    (root / "root/.ssh/authorized_keys").write_text(ED1 + "\n" + ED2 + "\n")
    run(root, "disable_root: true\n")
    lines = (root / "root/.ssh/authorized_keys").read_text().splitlines()
    assert lines[1] == ED2  # someone else's key stays as it was
    assert lines[0].startswith('no-port-forwarding,no-agent-forwarding,no-X11-forwarding,'
                               'command="echo \'Please login as the user \\"debian\\" rather '
                               'than the user \\"root\\".\';echo;sleep 10;exit 142" ')
    assert lines[0].endswith(ED1)
    assert len(lines) == 2


def test_disable_root_false_and_custom_opts(root):
    run(root, "disable_root: false\n")
    assert (root / "root/.ssh/authorized_keys").read_text() == ED1 + "\n"
    run(root, "disable_root: true\ndisable_root_opts: no-pty\n")
    assert (root / "root/.ssh/authorized_keys").read_text() == "no-pty " + ED1 + "\n"


def test_no_disable_root_key_leaves_root_alone(root):
    run(root, "users: [default]\n")
    assert not (root / "root/.ssh/authorized_keys").exists()


# -- hostile values --------------------------------------------------------------------

@pytest.mark.parametrize("text, said", [
    ("users: [{name: 'evil:x'}]", "is not a valid account name"),
    ("users: [{name: \"two\\nlines\"}]", "is not a valid account name"),
    ("users: [{name: u0, uid: 0}]", "uid 0 is root's"),
    ("users: [{name: p1, plain_text_passwd: \"a\\nroot::0:0\"}]", "line break"),
    ("users: [{name: p2, passwd: not-a-hash}]", "not a crypt(3) hash"),
    ("users: [{name: c1, gecos: 'a:b'}]", "field of /etc/passwd"),
    ("users: [{name: h1, homedir: '/home/../etc'}]", "absolute path without"),
    ("disable_root_opts: \"x\\ny\"", "one line"),
])
def test_hostile_values_are_refused_by_name(text, said):
    cc, warnings = cloud_config(text)
    assert any(said in w for w in warnings), warnings
    for entry in cc.get("users", []):
        if isinstance(entry, dict):
            assert entry.get("uid") != 0
            assert ":" not in entry.get("name", "")


def test_refused_values_never_reach_the_system(root):
    run(root, "users: [default, {name: u0, uid: 0}, {name: 'evil:x'}]\n")
    assert table(root, "passwd")["u0"][2] != "0"
    assert not any(name.startswith("evil") for name in table(root, "passwd"))


@pytest.mark.parametrize("groups", ["root", "users, root", "[root, shadow]"])
def test_root_equivalent_groups_the_user_data_asks_for_are_joined_and_said(root, groups):
    """Issue 25: `groups: root` (corpus document 035) is what cloud-init does
    too; the same entry grants sudo.  check-userdata says it, as a notice."""
    text = ("users:\n  - name: x\n    sudo: ALL=(ALL) NOPASSWD:ALL\n"
            f"    groups: {groups}\n")
    cc, warnings = cloud_config(text)
    asked = [g.strip() for g in groups.strip("[]").split(",")]
    assert cc["users"][0]["groups"] == asked
    said = [w for w in warnings if "root in all but name" in w]
    assert len(said) == 1 and said[0].kind == "notice", warnings
    assert all(w.kind == "notice" for w in warnings), warnings
    run(root, text)
    group = table(root, "group")
    for name in asked:
        assert "x" in group[name][3].split(","), (name, group[name])
    assert "x ALL=(ALL) NOPASSWD:ALL" in (root / "etc/sudoers.d/90-guestagent-users"
                                          ).read_text()


def test_root_equivalent_primary_and_top_level_groups_are_honoured_and_said(root):
    text = ("groups: [{shadow: [debian]}]\n"
            "users: [default, {name: g2, primary_group: disk}]\n")
    cc, warnings = cloud_config(text)
    assert cc["groups"] == {"shadow": ["debian"]}
    assert cc["users"][1]["primary_group"] == "disk"
    assert sorted(w.kind for w in warnings) == ["notice", "notice"], warnings
    run(root, text)
    assert "debian" in table(root, "group")["shadow"][3].split(",")
    assert table(root, "passwd")["g2"][3] == table(root, "group")["disk"][2]


def test_a_refused_group_or_empty_key_entry_costs_only_itself(root):
    """`groups: staff, ${admin_group}` (a template never rendered): the user
    still joins `staff`; a key list with a bare `-` still installs the keys
    beside it.  Each refusal is named."""
    text = (f"users:\n  - default\n  - name: g3\n    groups: staff, ${{admin_group}}\n"
            f"    ssh_authorized_keys:\n      - {ED2}\n      -  # the second key\n")
    cc, warnings = cloud_config(text)
    assert cc["users"][1]["groups"] == ["staff"]
    assert cc["users"][1]["ssh_authorized_keys"] == [ED2]
    assert any("group '${admin_group}' refused: not a valid group name" in w
               and "other groups kept" in w for w in warnings), warnings
    assert any("'ssh_authorized_keys' entry 2 is empty, not a key; skipped" in w
               for w in warnings)
    assert all(w.kind == "invalid" for w in warnings)
    run(root, text)
    group = table(root, "group")
    assert "g3" in group["staff"][3].split(",")
    assert (root / "home/g3/.ssh/authorized_keys").read_text() == ED2 + "\n"


def test_ssh_import_id_under_root_is_said_not_fetched(root, caplog):
    cc, warnings = cloud_config("users: [{name: imp, ssh_import_id: [gh:octocat]}]\n")
    assert any("key server" in w for w in warnings)
    run(root, "users: [{name: imp, ssh_import_id: [gh:octocat]}]\n")
    assert "ssh_import_id is not run under --root" in caplog.text


def test_home_is_not_a_cloud_init_field():
    _, warnings = cloud_config("users: [{name: a, home: /home/a}, {name: b, home: /srv/b}]\n")
    a = [w for w in warnings if "'a'" in w]
    b = [w for w in warnings if "'b'" in w]
    assert a[0].kind == "ignored" and "homedir" in a[0]
    assert b[0].kind == "unsupported" and "homedir" in b[0]


def test_create_home_true_is_the_default_and_said_so(root):
    """`create_home` is not a cloud-init field: cloud-init's useradd gets -m anyway
    (no_create_home and system are what turn the home off).  `true` asks for
    what happens; anything else asks for something neither agent does."""
    text = ("users:\n  - {name: made, create_home: true}\n"
            "  - {name: kept, create-home: false}\n"
            "  - {name: sysacct, system: true, create_home: true}\n")
    _, warnings = cloud_config(text)
    by_user = {u: [w for w in warnings if f"'{u}'" in w] for u in ("made", "kept", "sysacct")}
    assert [w.kind for w in by_user["made"]] == ["ignored"]
    assert [w.kind for w in by_user["kept"]] == ["unsupported"]
    assert "no_create_home" in by_user["kept"][0]
    assert [w.kind for w in by_user["sysacct"]] == ["unsupported"]
    run(root, text)
    assert (root / "home/made").is_dir()
    assert table(root, "passwd")["made"][5] == "/home/made"


def test_unfilled_placeholders_are_named_as_such():
    """Template variables that reached the instance unrendered: the note says so."""
    _, warnings = cloud_config("users: [{name: '${username}'}, {name: '<< USERNAME >>'},"
                               " {name: <user>}, {name: 'Bad:Name'}]\n"
                               "groups: ['${group}']\n")
    names = [w for w in warnings if "not a valid account name" in w]
    assert len(names) == 4
    assert "template placeholder (${...})" in names[0]
    assert "template placeholder (<< ... >>)" in names[1]
    assert "placeholder (<...>)" in names[2]
    assert "placeholder" not in names[3] and "lower-case letters" in names[3]
    assert any("not a valid group name" in w and "${...}" in w for w in warnings)


def test_a_key_list_with_an_empty_entry_says_which_entry():
    """`ssh_authorized_keys: [-  # SSH key]`: the key was left out, the list holds null."""
    _, warnings = cloud_config("users:\n  - name: k\n    ssh_authorized_keys:\n"
                               "      -  # SSH key\n")
    [w] = warnings
    assert "'ssh_authorized_keys' should be a list of strings, not a list whose entry 1 is " \
           "empty" in w and w.kind == "invalid"


def test_check_userdata_exit_codes_follow_the_fields(tmp_path, run_agent):
    f = tmp_path / "ud"
    f.write_text("#cloud-config\nusers: [{name: a, gecos: A, uid: 2000}]\n")
    assert run_agent("check-userdata", f).returncode == 0
    f.write_text("#cloud-config\nusers: [{name: a, uid: 0}]\n")
    res = run_agent("check-userdata", f)
    assert res.returncode == 1 and "uid 0 is root's" in res.stdout


def test_cmd_runs_nothing_for_a_refused_name(root):
    """A name the validator refused is not handed to useradd either."""
    run(root, "users: [default, {name: 'x;reboot'}]\n")
    assert not any(";" in n for n in table(root, "passwd"))
    res = subprocess.run(["grep", "-c", "reboot", str(root / "etc/passwd")],
                         capture_output=True, text=True)
    assert res.stdout.strip() == "0"


def test_a_dotted_user_name_is_created_as_useradd_allows(root):
    """shadow's useradd (Debian, RHEL) takes "first.last"; cloud users write it."""
    changes = run(root, f"""
users:
  - name: dev.user
    ssh_authorized_keys: [{ED2}]
""")
    assert "dev.user" in table(root, "passwd")
    keys = (root / "home" / "dev.user" / ".ssh" / "authorized_keys").read_text()
    assert ED2 in keys
    assert any("dev.user" in c for c in changes)


@pytest.mark.parametrize("name", [".hidden", "-opt", "..", "a:b", "dev user", "Dev.User"])
def test_names_useradd_or_a_shell_would_misread_are_still_refused(name):
    from guestagent import accounts
    assert not accounts.valid_name(name)
    _, warnings = cloud_config(f"users:\n  - name: {name!r}\n")
    assert any("not a valid account name" in w for w in warnings), warnings


# -- whose accounts (guestagent/accounts/plan.py; the matrix: test_account_plan.py) --

def test_user_beside_users_without_default_gets_the_keys_admin_pass_and_root_s_message(
        root):
    """Issue 27 part 1: before the planner, alice alone was created and held
    the keys; admin_pass failed with "user bob does not exist" and root's
    message told people to log in as bob."""
    text = "users: [alice]\nuser: {name: bob}\ndisable_root: true\n"
    cc, _ = cloud_config(text)
    md = Metadata(source="test", instance_id="i-1", public_keys=[ED1],
                  admin_pass="s3cret-Admin-pass")
    ctx = StepContext(root, md, cloud_config=cc, conf_text=CONF)
    users.run(ctx)
    passwd = {ln.split(":")[0] for ln in (root / "etc/passwd").read_text().splitlines()}
    assert {"alice", "bob"} <= passwd
    assert (root / "home/bob/.ssh/authorized_keys").read_text() == ED1 + "\n"
    assert not (root / "home/alice/.ssh/authorized_keys").exists()
    root_keys = (root / "root/.ssh/authorized_keys").read_text()
    assert 'as the user \\"bob\\"' in root_keys and ED1.split()[1] in root_keys
    changes = admin_pass.run(ctx)
    assert changes and "bob" in changes[0]
    shadow = {ln.split(":")[0]: ln.split(":")[1]
              for ln in (root / "etc/shadow").read_text().splitlines()}
    assert verify("s3cret-Admin-pass", shadow["bob"])
    assert shadow["alice"].startswith("!")  # listed users' passwords stay locked
