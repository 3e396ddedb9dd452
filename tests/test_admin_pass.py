"""admin_pass: the SHA-512 crypt implementation, and the step on real roots."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from guestagent.accounts.passwd_hash import sha512_crypt, verify
from guestagent.metadata import Metadata
from guestagent.steps import Skip, admin_pass

from support.marks import needs_root
from support.step_context import StepContext, config_drive

PASSWORD = "Tr0ub4dor&3-horse:staple\\x"


# -- sha512-crypt ------------------------------------------------------------------

@pytest.mark.parametrize("password,salt", [
    ("hello", "saltsalt"),
    ("pässwörd ünïcode", "0123456789abcdef"),
    ("x" * 200, "s"),
    (PASSWORD, "ab./CD12"),
    ("with $ and : and spaces", "longersaltthan16chars"),  # salts are cut at 16
])
def test_matches_openssl_passwd_6(password, salt):
    ref = subprocess.run(["openssl", "passwd", "-6", "-salt", salt, "-stdin"], input=password,
                         capture_output=True, text=True, check=True).stdout.strip()
    assert sha512_crypt(password, salt) == ref


@pytest.mark.skipif(shutil.which("mkpasswd") is None, reason="mkpasswd (whois) not installed")
def test_matches_mkpasswd():
    ref = subprocess.run(["mkpasswd", "-m", "sha-512", "--stdin", "-S", "saltsaltsalt"],
                         input="hello", capture_output=True, text=True, check=True).stdout
    assert sha512_crypt("hello", "saltsaltsalt") == ref.strip()


def test_specification_vectors_including_rounds():
    # from Drepper's "Unix crypt using SHA-256 and SHA-512", the SHA-512 table
    assert sha512_crypt("Hello world!", "saltstring") == (
        "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiB"
        "FdcbYEdFCoEOfaS35inz1")
    assert sha512_crypt("Hello world!", "saltstringsaltstring", rounds=10000) == (
        "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/Urj"
        "mM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.")
    # checked against glibc/libxcrypt crypt(3) on this machine
    assert sha512_crypt("we have a short salt string but not a short password", "short",
                        rounds=77777) == (
        "$6$rounds=77777$short$WuQyW2YR.hBNpjjRhpYD/ifIw05xdfeEyQoMxIXbkvr0gge1a1x3yRULJ5CCaU"
        "eOxFmtlcGZelFl5CxtgfiAc0")
    # the specification raises rounds below 1000 to 1000
    assert sha512_crypt("a short string", "asaltof16chars..", rounds=10) == \
        sha512_crypt("a short string", "asaltof16chars..", rounds=1000)
    assert sha512_crypt("x", "s", rounds=10).startswith("$6$rounds=1000$s$")


def test_fresh_salts_and_verify():
    a, b = sha512_crypt(PASSWORD), sha512_crypt(PASSWORD)
    assert a != b and a.startswith("$6$") and len(a.split("$")[2]) == 16
    assert verify(PASSWORD, a) and verify(PASSWORD, b)
    assert not verify(PASSWORD + "x", a)
    assert not verify(PASSWORD, "$1$whatever$")
    with pytest.raises(ValueError):
        sha512_crypt("x", "bad$salt")


# -- the step --------------------------------------------------------------------------

def _useradd(root, name="debian"):
    subprocess.run(["useradd", "--prefix", str(root), "-k", str(root / "etc/skel"), "-m",
                    "-U", name], check=True)


def _shadow_hash(root, user="debian"):
    for line in (root / "etc/shadow").read_text().splitlines():
        if line.split(":")[0] == user:
            return line.split(":")[1]
    return None


def _ctx(root, password=PASSWORD, cloud_config=None):
    md = Metadata(source="test", instance_id="i-1", admin_pass=password)
    return StepContext(root, md, cloud_config=cloud_config,
                       conf_text="[main]\ndefault_user = debian\n")


@needs_root
@pytest.mark.root
def test_sets_the_hash_keeping_the_shadow_file_mode_and_owner(root):
    _useradd(root)
    shadow = root / "etc/shadow"
    os.chmod(shadow, 0o640)
    os.chown(shadow, 0, 42)
    others = [ln for ln in shadow.read_text().splitlines() if not ln.startswith("debian:")]
    changes = admin_pass.run(_ctx(root))
    h = _shadow_hash(root)
    assert h.startswith("$6$") and verify(PASSWORD, h)
    st = shadow.stat()
    assert (st.st_mode & 0o777, st.st_uid, st.st_gid) == (0o640, 0, 42)
    assert [ln for ln in shadow.read_text().splitlines() if not ln.startswith("debian:")] \
        == others
    assert PASSWORD not in " ".join(changes)


@needs_root
@pytest.mark.root
def test_goes_to_the_first_cloud_config_user_without_default(root):
    _useradd(root, "alice")
    _useradd(root)
    admin_pass.run(_ctx(root, cloud_config={"users": [{"name": "alice"}]}))
    assert verify(PASSWORD, _shadow_hash(root, "alice"))
    assert _shadow_hash(root) == "!"


def test_no_admin_pass_is_a_skip(root):
    with pytest.raises(Skip, match="no admin_pass"):
        admin_pass.run(_ctx(root, password=""))


def test_missing_user_fails_clearly(root):
    with pytest.raises(RuntimeError, match="user debian does not exist"):
        admin_pass.run(_ctx(root))


@needs_root
@pytest.mark.root
def test_the_password_appears_nowhere_the_agent_writes(root, tmp_path, run_agent):
    meta = {"uuid": "22222222-0000-0000-0000-000000000001", "admin_pass": PASSWORD,
            "public_keys": {"k": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO5j2lnT1qR7/lpXRlCfui"
                                 "2BILCHMsFxcyVGD4ENC2q6 demo@example"}}
    drive = config_drive(tmp_path / "drive", meta)
    conf = tmp_path / "a.conf"
    conf.write_text(f"[main]\ndatasources = configdrive\ndefault_user = debian\n"
                    f"[configdrive]\npath = {drive}\n[ssh]\nregenerate_host_keys = no\n")
    res = run_agent("--once", "--verbose", "--root", root, "--config", conf)
    assert "admin_pass: set the password of debian" in res.stderr, res.stderr
    assert verify(PASSWORD, _shadow_hash(root))
    assert PASSWORD not in res.stdout + res.stderr
    status = run_agent("status", "--json", "--root", root).stdout
    assert json.loads(status)["last"]["steps"]
    assert PASSWORD not in status
    assert PASSWORD not in run_agent("query", "--json", "--root", root, "--config", conf).stdout
    store = list((root / "var/lib/guestagent").glob("instances/*/metadata.json"))
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            if os.path.islink(p) or p in map(str, store):
                continue
            with open(p, "rb") as fh:
                assert PASSWORD.encode() not in fh.read(), p
    # the one stored copy is the metadata store, root-only like the rest of the state
    assert [s.stat().st_mode & 0o777 for s in store] == [0o600]
    assert (root / "var/log/guestagent.log").stat().st_mode & 0o777 == 0o600


_LIVE = r"""
import os, sys
from guestagent import config as configmod
from guestagent.metadata import Metadata
from guestagent.steps.context import Context
from guestagent.state import State
from guestagent.system import System
from guestagent.steps import admin_pass, users
system = System("/")
assert system.live
md = Metadata(source="test", instance_id="i-live", admin_pass=os.environ["GA_PW"],
              public_keys=[os.environ["GA_KEY"]])
ctx = Context(system, configmod.load(sys.argv[1]), State(system), md, True, "all")
print(users.run(ctx))
print(admin_pass.run(ctx))
"""


@needs_root
@pytest.mark.root
def test_live_path_with_chpasswd_in_a_private_mount_namespace(tmp_path):
    """The running-system path (useradd, visudo, chpasswd -e on /), on copies of
    /etc and /home bind-mounted in a mount namespace of the test's own."""
    from support import REPO
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    subprocess.run(["cp", "-a", "/etc", str(scratch / "etc")], check=True)
    # The agent's own state, log and run flags go to scratch too: the steps
    # cache the #cloud-config under /var/lib/guestagent (issue 25).
    for d in ("home", "var-lib", "var-log", "run"):
        (scratch / d).mkdir(parents=True)
    for d in ("etc", "home"):
        (scratch / d / ".ga-test-marker").write_text("")
    conf = tmp_path / "a.conf"
    conf.write_text("[main]\ndefault_user = gatestuser\n")
    key = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO5j2lnT1qR7/lpXRlCfui2BILCHMsFxcyVGD4ENC2q6 "
           "demo@example")
    host_passwd = open("/etc/passwd", "rb").read()
    host_shadow = open("/etc/shadow", "rb").read()
    script = (f"set -e; mount --bind {scratch}/etc /etc; mount --bind {scratch}/home /home; "
              f"mount --bind {scratch}/var-lib /var/lib; mount --bind {scratch}/var-log /var/log; "
              f"mount --bind {scratch}/run /run; "
              "test -e /etc/.ga-test-marker; test -e /home/.ga-test-marker; "
              'exec "$@"')
    res = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script,
                          "sh", sys.executable,
                          "-c", _LIVE, str(conf)],
                         capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, PYTHONPATH=REPO, GA_PW=PASSWORD, GA_KEY=key))
    assert res.returncode == 0, res.stderr
    assert "via chpasswd -e" in res.stdout
    assert PASSWORD not in res.stdout + res.stderr
    assert open("/etc/passwd", "rb").read() == host_passwd
    assert open("/etc/shadow", "rb").read() == host_shadow
    assert not os.path.exists("/home/gatestuser")
    assert verify(PASSWORD, _shadow_hash(scratch, "gatestuser"))
    assert (scratch / "home/gatestuser/.ssh/authorized_keys").read_text() == key + "\n"
    assert "gatestuser ALL=(ALL) NOPASSWD:ALL" in (
        scratch / "etc/sudoers.d/90-guestagent-users").read_text()
