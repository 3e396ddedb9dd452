import json
import os
import re
import shutil
import socket
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guestagent.metadata import Metadata
from guestagent.metadata.dns_names import BadName, check_hostname, check_name
from guestagent.steps import Skip
from guestagent.steps import hostname as step

from support import REPO, netns
from support.marks import needs_root
from support.step_context import StepContext, agent_conf, config_drive, dns_services

DEBIAN_HOSTS = """127.0.0.1\tlocalhost
127.0.1.1\tdebian

# The following lines are desirable for IPv6 capable hosts
::1     localhost ip6-localhost ip6-loopback
ff02::1 ip6-allnodes
ff02::2 ip6-allrouters
"""
VALID = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)"
                   r"(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")


# -- the validator ------------------------------------------------------------

@pytest.mark.parametrize("value, fqdn, short", [
    ("test.novalocal", "test.novalocal", "test"),
    ("web01", "web01", "web01"),
    ("Web_01.Example.COM.", "web-01.example.com", "web-01"),
    ("a" * 63 + ".example", "a" * 63 + ".example", "a" * 63),
    ("0day.example", "0day.example", "0day"),
])
def test_valid_names_are_normalised(value, fqdn, short):
    assert check_hostname(value) == (fqdn, short)


@pytest.mark.parametrize("value, why", [
    ("evil;reboot", "shell characters ;"),
    ("$(reboot)", "shell characters $ ( )"),
    ("a`id`", "shell characters `"),
    ("host name", "whitespace"),
    ("host\n127.0.0.1 bank.example", "line break"),
    ("host\tname", "whitespace"),
    ("host\n", "line break"),
    ("host.example.\n", "line break"),
    ("host\x00name", "control characters"),
    ("host\x1b[31m", "control characters"),
    ("hôte", "non-ASCII"),
    ("host\u200bname", "control characters"),
    ("a..b", "empty label"),
    (".lead", "empty label"),
    ("-lead", "starts or ends with '-'"),
    ("trail-.example", "starts or ends with '-'"),
    ("a" * 64, "64 characters long"),
    (".".join(["a" * 63] * 4), "255 characters long"),
    ("192.0.2.1", "IP address"),
    ("", "empty"),
    (".", "only a dot"),
    ("a/b", "not allowed in a name: /"),
    (None, "expected a string"),
    (42, "expected a string"),
])
def test_bad_names_are_refused_with_the_reason(value, why):
    with pytest.raises(BadName, match=re.escape(why)):
        check_hostname(value)


def test_domains_keep_underscores_out_instead_of_rewriting():
    with pytest.raises(BadName, match="'_'"):
        check_name("my_domain.example", fix_underscores=False)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=300))
def test_validator_on_any_text_refuses_or_returns_a_clean_name(value):
    try:
        name = check_hostname(value)
    except BadName:
        return
    assert VALID.fullmatch(name.fqdn), name
    assert name.short == name.fqdn.split(".")[0]
    # nothing but letters, digits, '-', '_', '.' (and case) gets through
    assert re.fullmatch(r"[A-Za-z0-9._-]+", value)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="abc-_.", min_size=1, max_size=10),
       st.sampled_from(list(";|&$`'\"<>(){}\n\r\t \x00\x7féü\u2028")),
       st.text(alphabet="abc.", max_size=10))
def test_any_shell_control_or_unicode_character_is_refused(head, bad, tail):
    with pytest.raises(BadName):
        check_hostname(head + bad + tail)


# -- /etc/hosts editing ---------------------------------------------------------

OURS = "127.0.1.1\ttest.novalocal test\t# guestagent"


def test_hosts_replaces_the_images_own_name_line_and_keeps_the_rest():
    new = step.hosts_with_line(DEBIAN_HOSTS, OURS, old_names={"debian"})
    assert new == DEBIAN_HOSTS.replace("127.0.1.1\tdebian", OURS)


def test_hosts_replaces_its_own_marked_line_on_the_next_change():
    once = step.hosts_with_line(DEBIAN_HOSTS, OURS, old_names={"debian"})
    again = step.hosts_with_line(once, "127.0.1.1\tweb\t# guestagent", old_names=set())
    assert again == DEBIAN_HOSTS.replace("127.0.1.1\tdebian", "127.0.1.1\tweb\t# guestagent")
    assert step.hosts_with_line(once, OURS) == once


def test_hosts_keeps_an_admins_127_0_1_1_line_and_adds_its_own_after_it():
    text = "127.0.0.1 localhost\n127.0.1.1 debian myapp.internal\n::1 localhost\n"
    new = step.hosts_with_line(text, OURS, old_names={"debian"})
    assert new == ("127.0.0.1 localhost\n127.0.1.1 debian myapp.internal\n" + OURS
                   + "\n::1 localhost\n")


def test_hosts_empty_or_without_loopback_gets_the_line_appended():
    assert step.hosts_with_line("", OURS) == OURS + "\n"
    assert step.hosts_with_line("# only a comment", OURS) == "# only a comment\n" + OURS + "\n"


# -- the step on a scratch root (real System, #cloud-config as a dict) -----------

def md(hostname="test.novalocal", iid="i-1"):
    return Metadata(source="test", instance_id=iid, hostname=hostname)


def test_cloud_config_fqdn_wins_over_hostname_and_metadata(root):
    ctx = StepContext(root, md(), {"hostname": "cchost", "fqdn": "ccfqdn.example.org"})
    step.run(ctx)
    assert (root / "etc/hostname").read_text() == "ccfqdn\n"
    assert "127.0.1.1\tccfqdn.example.org ccfqdn\t# guestagent" in (root / "etc/hosts").read_text()
    ctx = StepContext(root, md(), {"hostname": "cchost"})
    step.run(ctx)
    assert (root / "etc/hostname").read_text() == "cchost\n"


def test_preserve_hostname_leaves_everything_alone(root):
    before = {p: (root / p).read_bytes() for p in ("etc/hostname", "etc/hosts")}
    with pytest.raises(Skip, match="preserve_hostname"):
        step.run(StepContext(root, md(), {"preserve_hostname": True}))
    assert {p: (root / p).read_bytes() for p in before} == before


def test_hostile_cloud_config_name_is_refused_and_nothing_changes(root, caplog):
    before = {p: (root / p).read_bytes() for p in ("etc/hostname", "etc/hosts")}
    with pytest.raises(Skip, match="not a usable host name"):
        step.run(StepContext(root, md(), {"fqdn": "x\n10.0.0.1 bank.example"}))
    assert {p: (root / p).read_bytes() for p in before} == before
    assert "refusing #cloud-config fqdn 'x\\n10.0.0.1 bank.example': it contains a line " \
           "break; keeping the current host name" in caplog.text


def test_manage_hosts_no_leaves_etc_hosts_alone(root):
    hosts = (root / "etc/hosts").read_bytes()
    step.run(StepContext(root, md(), conf_text="[hostname]\nmanage_hosts = no\n"))
    assert (root / "etc/hostname").read_text() == "test\n"
    assert (root / "etc/hosts").read_bytes() == hosts


def test_disabled(root):
    with pytest.raises(Skip, match="enabled = no"):
        step.run(StepContext(root, md(), conf_text="[hostname]\nenabled = no\n"))


def test_hosts_symlink_is_not_written_through(root, tmp_path):
    outside = tmp_path / "outside-hosts"
    outside.write_text("127.0.0.1 localhost\n")
    (root / "etc/hosts").unlink()
    os.symlink(str(outside), root / "etc/hosts")
    with pytest.raises(OSError, match="symlink"):
        step.run(StepContext(root, md()))
    assert outside.read_text() == "127.0.0.1 localhost\n"


# -- the real agent on a scratch root ----------------------------------------------

def agent(run_agent, root, conf):
    return run_agent("--once", "--root", root, "--config", conf, "--only", "hostname")


def test_agent_sets_hostname_and_hosts_and_leaves_the_machine_alone(tmp_path, root, run_agent):
    (root / "etc/hosts").write_text(DEBIAN_HOSTS)
    (root / "etc/hostname").write_text("debian\n")
    drive = config_drive(tmp_path / "drive", {"hostname": "test.novalocal"})
    before = socket.gethostname()
    res = agent(run_agent, root, agent_conf(tmp_path / "a.conf", drive))
    assert res.returncode == 0, res.stderr
    assert (root / "etc/hostname").read_text() == "test\n"
    assert (root / "etc/hosts").read_text() == DEBIAN_HOSTS.replace(
        "127.0.1.1\tdebian", "127.0.1.1\ttest.novalocal test\t# guestagent")
    assert "set the host name in /etc/hostname to test (was debian)" in res.stderr
    assert "running host name" not in res.stderr  # not live under --root
    assert socket.gethostname() == before
    # a second boot changes nothing
    res = agent(run_agent, root, agent_conf(tmp_path / "a.conf", drive))
    status = json.loads(run_agent("status", "--json", "--root", root).stdout)
    assert status["last"]["steps"][0]["result"] == "ok", res.stderr


def test_agent_keeps_a_name_the_admin_changed_but_a_new_instance_renames(
        tmp_path, root, run_agent):
    drive = config_drive(tmp_path / "drive", {"hostname": "test.novalocal", "uuid": "iid-1"})
    conf = agent_conf(tmp_path / "a.conf", drive)
    assert agent(run_agent, root, conf).returncode == 0
    (root / "etc/hostname").write_text("chosen-by-admin\n")
    res = agent(run_agent, root, conf)
    assert (root / "etc/hostname").read_text() == "chosen-by-admin\n"
    assert "changed by hand since the agent set 'test'" in res.stderr
    # the metadata renames the host: still the admin's choice on the same instance
    config_drive(tmp_path / "drive", {"hostname": "renamed", "uuid": "iid-1"})
    agent(run_agent, root, conf)
    assert (root / "etc/hostname").read_text() == "chosen-by-admin\n"
    # a clone of this image is a new instance and gets its own name
    config_drive(tmp_path / "drive", {"hostname": "clone.novalocal", "uuid": "iid-2"})
    res = agent(run_agent, root, conf)
    assert (root / "etc/hostname").read_text() == "clone\n", res.stderr
    assert "127.0.1.1\tclone.novalocal clone\t# guestagent" in (root / "etc/hosts").read_text()


def test_agent_follows_a_metadata_rename_when_the_admin_did_not_touch_it(
        tmp_path, root, run_agent):
    drive = config_drive(tmp_path / "drive", {"hostname": "one", "uuid": "iid-1"})
    conf = agent_conf(tmp_path / "a.conf", drive)
    agent(run_agent, root, conf)
    config_drive(tmp_path / "drive", {"hostname": "two", "uuid": "iid-1"})
    agent(run_agent, root, conf)
    assert (root / "etc/hostname").read_text() == "two\n"
    assert (root / "etc/hosts").read_text().count("# guestagent") == 1


@pytest.mark.parametrize("hostile", [
    "evil\n127.0.0.1 bank.example",
    "$(touch /tmp/pwned-by-hostname)",
    "`touch /tmp/pwned-by-hostname`",
    "host;touch /tmp/pwned-by-hostname",
    "ホスト.example",
    "a" * 300,
])
def test_agent_refuses_hostile_names_and_changes_nothing(tmp_path, root, run_agent, hostile):
    drive = config_drive(tmp_path / "drive", {"hostname": hostile})
    before = {p: (root / p).read_bytes() for p in ("etc/hostname", "etc/hosts")}
    res = agent(run_agent, root, agent_conf(tmp_path / "a.conf", drive))
    assert res.returncode == 0, res.stderr
    assert {p: (root / p).read_bytes() for p in before} == before
    assert not os.path.exists("/tmp/pwned-by-hostname")
    warning = [ln for ln in res.stderr.splitlines() if "refusing the metadata's host name" in ln]
    assert len(warning) == 1, res.stderr
    assert "keeping the current host name" in warning[0]
    assert len(warning[0]) < 300  # the value is shown truncated
    assert "\x1b" not in res.stderr and "ホスト" not in res.stderr


# -- the live path, inside a UTS namespace of its own ----------------------------------

LIVE_SCRIPT = """
import json, socket, subprocess, sys
sys.path.insert(0, {tests!r})
from guestagent.metadata import Metadata
from guestagent.steps import hostname
from support.step_context import StepContext
ctx = StepContext({root!r}, Metadata("test", "i-1", hostname="live-test.novalocal"), live=True)
changes = hostname.run(ctx)
print(json.dumps({{"changes": changes, "kernel": socket.gethostname(),
                   "command": subprocess.run(["hostname"], capture_output=True,
                                             text=True).stdout.strip()}}))
"""


@needs_root
@pytest.mark.root
def test_live_hostname_is_set_in_a_private_uts_namespace_only(root):
    if not shutil.which("unshare"):
        pytest.skip("no unshare")
    before = socket.gethostname()
    script = LIVE_SCRIPT.format(tests=os.path.join(REPO, "tests"), root=str(root))
    res = subprocess.run(["unshare", "--uts", sys.executable, "-c", script],
                         capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=REPO))
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["kernel"] == out["command"] == "live-test"
    assert "set the running host name to live-test (sethostname)" in out["changes"]
    assert (root / "etc/hostname").read_text() == "live-test\n"
    assert socket.gethostname() == before
    assert subprocess.run(["hostname"], capture_output=True, text=True).stdout.strip() == before


@needs_root
@pytest.mark.root
def test_apply_live_falls_back_to_the_hostname_command(root):
    """Where sethostname(2) is refused (EPERM in a seccomp'd or capability-less
    process) the agent tries the hostname command; here both run in a fresh UTS
    namespace and only the fallback's own argv is checked."""
    script = (
        "import socket, errno\n"
        "from guestagent.system import System\n"
        "from guestagent.steps.hostname import apply_live\n"
        "def refuse(name): raise PermissionError(errno.EPERM, 'Operation not permitted')\n"
        "socket.sethostname = refuse\n"
        "print(apply_live(System('/'), 'fallback-test'))\n"
        "print(socket.gethostname())\n")
    before = socket.gethostname()
    res = subprocess.run(["unshare", "--uts", sys.executable, "-c", script],
                         capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=REPO))
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["hostname", "command", "fallback-test"]
    assert socket.gethostname() == before


# -- the metadata service at 169.254.169.254 in a network namespace --------------------

@needs_root
@pytest.mark.root
@pytest.mark.skipif(not netns.available(), reason="needs ip netns")
def test_from_the_metadata_service_in_a_netns(tmp_path, root, run_agent):
    tree = config_drive(tmp_path / "tree", {"hostname": "svc-host.example.net",
                                            "uuid": "svc-iid"},
                        network_data=dns_services("192.0.2.10", "2001:db8::53",
                                                  search=["example.net"]))
    conf = agent_conf(tmp_path / "a.conf")
    with netns.Netns() as ns:
        ns.start_server(tree)
        res = run_agent("--once", "--root", root, "--config", conf,
                        "--only", "hostname,resolv_conf", netns=ns)
    assert res.returncode == 0, res.stderr
    assert (root / "etc/hostname").read_text() == "svc-host\n"
    hosts = (root / "etc/hosts").read_text()
    assert "127.0.1.1\tsvc-host.example.net svc-host\t# guestagent" in hosts
    assert hosts.startswith("127.0.0.1\tlocalhost\n")
    assert (root / "etc/resolv.conf").read_text() == (
        "search example.net\nnameserver 192.0.2.10\nnameserver 2001:db8::53\n"
        "options edns0\n")


def test_no_name_in_the_metadata_is_skipped(root):
    before = (root / "etc/hostname").read_bytes()
    with pytest.raises(Skip, match="names no host name"):
        step.run(StepContext(root, md(hostname="")))
    assert (root / "etc/hostname").read_bytes() == before
