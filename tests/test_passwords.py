"""password, chpasswd, ssh_pwauth: cloud-init's documented examples on real scratch roots.

The YAML goes through the real decoder (the validators the boot uses), then
the passwords step runs against a scratch root whose accounts useradd
--prefix made; hashes are checked with the SHA-512 crypt verifier and
openssl.  The live path (chpasswd on /) runs in a private mount namespace.
"""

import os
import subprocess
import sys

import pytest

from guestagent.accounts import shadow
from guestagent.accounts.passwd_hash import sha512_crypt, verify
from guestagent.steps import Skip, passwords
from guestagent.userdata import decode

from support.marks import needs_root
from support.sshd import sshd_t
from support.step_context import StepContext

pytestmark = [needs_root, pytest.mark.root]

CONF = "[main]\ndefault_user = debian\n"
HASH = sha512_crypt("hashed secret", "saltsalt")


def cloud_config(text):
    ud = decode(("#cloud-config\n" + text).encode(), 1 << 20)
    return ud.cloud_config, ud.warnings


def ctx(root, text):
    cc, _ = cloud_config(text)
    return StepContext(root, cloud_config=cc, conf_text=CONF)


def useradd(root, *names):
    for name in names:
        subprocess.run(["useradd", "--prefix", str(root), "-M", "-U", "-s", "/bin/bash", name],
                       check=True)


def shadow_of(root, user):
    for line in (root / "etc/shadow").read_text().splitlines():
        f = line.split(":")
        if f[0] == user:
            return f
    raise KeyError(user)


# -- chpasswd: the documented forms ---------------------------------------------------

def test_chpasswd_users_text_hash_and_random(root, capsys):
    useradd(root, "debian", "user1", "user2", "user3")
    changes = passwords.run(ctx(root, f"""
chpasswd:
  expire: false
  users:
    - {{name: user1, password: password1, type: text}}
    - {{name: user2, password: '{HASH}'}}
    - {{name: user3, type: RANDOM}}
""")).changes
    assert verify("password1", shadow_of(root, "user1")[1])
    assert shadow_of(root, "user2")[1] == HASH  # type defaults to hash, as in cloud-init
    out = capsys.readouterr().out
    block = out[out.index(passwords.BEGIN):out.index(passwords.END)].splitlines()[1:]
    [(user, random_pw)] = [ln.split(":", 1) for ln in block]
    assert user == "user3" and len(random_pw) == 20
    assert verify(random_pw, shadow_of(root, "user3")[1])
    assert out.count(passwords.BEGIN) == 1
    text = " ".join(changes)
    assert "password1" not in text and random_pw not in text and HASH not in text
    assert all(shadow_of(root, u)[2] != "0" for u in ("user1", "user2", "user3"))


def test_chpasswd_list_string_and_list_forms_and_expire_by_default(root, capsys):
    useradd(root, "debian", "user1", "user2", "user4")
    passwords.run(ctx(root, f"""
chpasswd:
  list: |
    user1:password1
    user2:RANDOM
    user4:{HASH}
"""))
    assert verify("password1", shadow_of(root, "user1")[1])
    assert shadow_of(root, "user4")[1] == HASH  # a crypt hash in a list is a hash
    assert "user2:" in capsys.readouterr().out
    # expire defaults to true: each must choose a new password at the first login
    assert [shadow_of(root, u)[2] for u in ("user1", "user2", "user4")] == ["0", "0", "0"]
    useradd(root, "user5")
    passwords.run(ctx(root, "chpasswd:\n  list: [user5:R]\n  expire: false\n"))
    assert shadow_of(root, "user5")[2] != "0"


def test_password_is_the_default_users(root):
    """The documented pairing: password + chpasswd: {expire: false} + ssh_pwauth."""
    useradd(root, "debian")
    passwords.run(ctx(root, "password: test123\nchpasswd: { expire: False }\n"
                            "ssh_pwauth: True\n"))
    assert verify("test123", shadow_of(root, "debian")[1])
    assert shadow_of(root, "debian")[2] != "0"


def test_password_follows_user_key_renaming_the_default_user(root):
    useradd(root, "debian", "testuser")
    passwords.run(ctx(root, "user: testuser\npassword: Password123?\n"
                            "chpasswd: {expire: False}\n"))
    assert verify("Password123?", shadow_of(root, "testuser")[1])
    assert shadow_of(root, "debian")[1] == "!"


def test_password_without_a_default_user_goes_nowhere(root, caplog):
    useradd(root, "debian", "alice")
    with pytest.raises(Skip):
        passwords.run(ctx(root, "users: [alice]\npassword: secret1\n"))
    assert "no default user" in caplog.text
    assert shadow_of(root, "alice")[1] == "!"


def test_unknown_user_fails_naming_it_and_sets_the_others(root):
    """The step fails naming the missing user, and says what it did all the
    same: user1's password set, and sshd's setting (status shows both)."""
    useradd(root, "debian", "user1")
    out = passwords.run(ctx(root, "chpasswd: {list: [user1:pw1, ghost:pw2], expire: false}\n"
                                  "ssh_pwauth: true\n"))
    assert out.problems == ["no such user(s): ghost: their password was not set (create "
                            "them with #cloud-config users)"]
    assert out.changes[0].startswith("set the password of user1 (via ")
    assert out.changes[1].startswith("sshd PasswordAuthentication yes in "), out.changes
    assert verify("pw1", shadow_of(root, "user1")[1])


def test_nothing_asked_is_a_skip(root):
    with pytest.raises(Skip):
        passwords.run(ctx(root, "hostname: x\n"))


# -- hostile values, refused by name before anything acts -----------------------------

@pytest.mark.parametrize("text, said", [
    ("chpasswd: {list: ['bad name:pw']}", "is not a valid account name"),
    ("chpasswd: {list: [\"root\\nx:pw\"]}", "is not a valid account name"),
    ("chpasswd: {users: [{name: 'a:b', password: x, type: text}]}",
     "is not a valid account name"),
    ("chpasswd: {users: [{name: bob, password: \"pw\\nroot:pw\", type: text}]}",
     "contains a line break"),
    ("chpasswd: {users: [{name: bob, password: plain-not-a-hash}]}", "not a crypt(3) hash"),
    ("chpasswd: {users: [{name: bob, password: x, type: weird}]}", "'type' should be"),
    ("password: \"two\\nlines\"", "contains a line break"),
    ("ssh_pwauth: sometimes", "true, false or \"unchanged\""),
])
def test_hostile_values_are_refused_with_a_clear_message(text, said):
    cc, warnings = cloud_config(text)
    assert any(said in w for w in warnings), warnings
    for user in cc.get("chpasswd", {}).get("users", []):
        assert "\n" not in user["name"] + (user["password"] or "")
    assert "root:pw" not in "".join(warnings)  # values are never echoed


# -- where passwords must never be ---------------------------------------------------

def test_passwords_appear_nowhere_the_agent_writes(root, tmp_path, run_agent):
    from support.step_context import config_drive
    secret, plain = "Pl41n-Secret-Value", "Us3rs-Plain-Value"
    drive = config_drive(tmp_path / "drive", {"public_keys": {}}, user_data=(
        "#cloud-config\nusers:\n  - default\n  - name: alice\n"
        f"    plain_text_passwd: {plain}\n    lock_passwd: false\n"
        "chpasswd:\n  expire: false\n  users:\n"
        f"    - {{name: debian, password: {secret}, type: text}}\n"
        "    - {name: alice, type: RANDOM}\n"))
    conf = tmp_path / "a.conf"
    conf.write_text(f"[main]\ndatasources = configdrive\ndefault_user = debian\n"
                    f"[configdrive]\npath = {drive}\n[ssh]\nregenerate_host_keys = no\n")
    res = run_agent("--once", "--root", root, "--config", conf, check=True)
    out = res.stdout
    random_pw = out[out.index(passwords.BEGIN):].splitlines()[1].split(":", 1)[1]
    assert verify(secret, shadow_of(root, "debian")[1])
    assert verify(random_pw, shadow_of(root, "alice")[1])
    assert secret not in res.stderr and plain not in res.stderr and random_pw not in res.stderr
    # the root-only stored copies: the metadata, and the #cloud-config worked
    # out from it (kept so a later boot never parses YAML again)
    store = list(root.glob("var/lib/guestagent/instances/*/metadata.json")) + \
        list(root.glob("var/lib/guestagent/instances/*/cloud-config.json"))
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            if os.path.islink(p) or p in map(str, store):
                continue
            data = open(p, "rb").read()
            for value in (secret, plain, random_pw):
                assert value.encode() not in data, p
    assert [s.stat().st_mode & 0o777 for s in store] == [0o600, 0o600]
    status = (root / "var/lib/guestagent/status.json").read_text()
    assert "alice" in status and random_pw not in status


# -- ssh_pwauth: where the image's sshd reads it ---------------------------------------

DEBIAN_SSHD = """\
# This is the sshd server system-wide configuration file.
Include /etc/ssh/sshd_config.d/*.conf

#PasswordAuthentication yes
KbdInteractiveAuthentication no
UsePAM yes
Subsystem sftp /usr/lib/openssh/sftp-server
"""


@pytest.mark.skipif(not os.path.exists("/usr/sbin/sshd"), reason="needs openssh-server")
def test_ssh_pwauth_true_beats_a_cloud_images_drop_in(root):
    (root / "etc/ssh").mkdir(parents=True, exist_ok=True)
    (root / "etc/ssh/sshd_config").write_text(DEBIAN_SSHD)
    (root / "etc/ssh/sshd_config.d").mkdir(exist_ok=True)
    (root / "etc/ssh/sshd_config.d/50-cloud-init.conf").write_text(
        "PasswordAuthentication no\n")
    assert sshd_t(root)["passwordauthentication"] == "no"
    changes = passwords.run(ctx(root, "ssh_pwauth: true\n")).changes
    assert "00-guestagent.conf" in " ".join(changes)
    assert sshd_t(root)["passwordauthentication"] == "yes"
    assert (root / "etc/ssh/sshd_config").read_text() == DEBIAN_SSHD  # untouched
    assert passwords.run(ctx(root, "ssh_pwauth: true\n")).changes == []  # already so
    passwords.run(ctx(root, "ssh_pwauth: no\n"))
    assert sshd_t(root)["passwordauthentication"] == "no"


@pytest.mark.skipif(not os.path.exists("/usr/sbin/sshd"), reason="needs openssh-server")
def test_ssh_pwauth_in_sshd_config_without_include(root):
    (root / "etc/ssh").mkdir(parents=True, exist_ok=True)
    (root / "etc/ssh/sshd_config").write_text(
        "Port 22\nPasswordAuthentication no\nMatch User bob\n  PasswordAuthentication no\n")
    passwords.run(ctx(root, "ssh_pwauth: 1\n"))
    assert (root / "etc/ssh/sshd_config").read_text() == (
        "Port 22\nPasswordAuthentication yes\nMatch User bob\n  PasswordAuthentication no\n")
    assert sshd_t(root)["passwordauthentication"] == "yes"
    (root / "etc/ssh/sshd_config").write_text("Port 22\nMatch User bob\n  X11Forwarding no\n")
    passwords.run(ctx(root, "ssh_pwauth: false\n"))
    assert (root / "etc/ssh/sshd_config").read_text().startswith(
        "Port 22\nPasswordAuthentication no\nMatch User bob\n")
    assert sshd_t(root)["passwordauthentication"] == "no"


def test_ssh_pwauth_unchanged_leaves_sshd_alone(root):
    (root / "etc/ssh").mkdir(parents=True, exist_ok=True)
    (root / "etc/ssh/sshd_config").write_text(DEBIAN_SSHD)
    with pytest.raises(Skip):
        passwords.run(ctx(root, "ssh_pwauth: unchanged\n"))
    assert not (root / "etc/ssh/sshd_config.d/00-guestagent.conf").exists()


def test_hash_detection_and_problems():
    assert shadow.is_hash(HASH)
    assert shadow.is_hash("$y$j9T$PaHDJT8JdSn3Pgi3ODgbl/$QLhzCFCDVbtU9H.5btqodYu1KczA5HJfRvw")
    assert not shadow.is_hash("$6$onlysalt")
    assert not shadow.is_hash("password1")
    assert shadow.problem("a\nb") and shadow.problem("") and shadow.problem("x" * 2000)
    assert shadow.problem("plain", hashed=True) and not shadow.problem(HASH, hashed=True)


# -- the running-system path: chpasswd, passwd --expire, usermod --lock ------------------

_LIVE = r"""
import sys
from guestagent import config as configmod
from guestagent.metadata import Metadata
from guestagent.steps.context import Context
from guestagent.state import State
from guestagent.system import System
from guestagent.steps import passwords
from guestagent.userdata import decode
system = System("/")
ud = decode(sys.stdin.buffer.read(), 1 << 20)
class C(Context):
    cloud_config = ud.cloud_config
ctx = C(system, configmod.load(sys.argv[1]), State(system),
        Metadata(source="test", instance_id="i-live"), True, "all")
print(passwords.run(ctx).changes)
"""


@pytest.mark.skipif(not os.path.exists("/usr/sbin/chpasswd"), reason="needs chpasswd")
def test_live_path_in_a_private_mount_namespace(tmp_path):
    """chpasswd (the image's own hashing), chpasswd -e and passwd --expire on /, on a copy
    of /etc bind-mounted in a mount namespace of the test's own."""
    from support import REPO
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    subprocess.run(["cp", "-a", "/etc", str(scratch / "etc")], check=True)
    (scratch / "etc/.ga-test-marker").write_text("")
    conf = tmp_path / "a.conf"
    conf.write_text("[main]\ndefault_user = gatestuser\n")
    host_shadow = open("/etc/shadow", "rb").read()
    user_data = (f"#cloud-config\nchpasswd:\n  users:\n"
                 f"    - {{name: gatestuser, password: 'live pw 1', type: text}}\n"
                 f"    - {{name: gatestuser2, password: '{HASH}'}}\n").encode()
    script = (f"set -e; mount --bind {scratch}/etc /etc; test -e /etc/.ga-test-marker; "
              "useradd -M gatestuser; useradd -M gatestuser2; exec \"$@\"")
    res = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script,
                          "sh", sys.executable, "-c", _LIVE, str(conf)],
                         input=user_data, capture_output=True, timeout=120,
                         env=dict(os.environ, PYTHONPATH=REPO))
    out = res.stdout.decode() + res.stderr.decode()
    assert res.returncode == 0, out
    assert "via chpasswd and chpasswd -e" in out and "live pw 1" not in out
    assert open("/etc/shadow", "rb").read() == host_shadow
    lines = {ln.split(":")[0]: ln.split(":") for ln in
             (scratch / "etc/shadow").read_text().splitlines()}
    hashed = lines["gatestuser"][1]
    # hashed by the image's chpasswd (its ENCRYPT_METHOD), and it verifies
    check = subprocess.run([sys.executable, "-c",
                            "import crypt,sys; print(crypt.crypt(sys.argv[1], sys.argv[2]))",
                            "live pw 1", hashed], capture_output=True, text=True)
    if check.returncode == 0:
        assert check.stdout.strip() == hashed
    assert lines["gatestuser2"][1] == HASH
    assert lines["gatestuser"][2] == "0" and lines["gatestuser2"][2] == "0"  # expired
