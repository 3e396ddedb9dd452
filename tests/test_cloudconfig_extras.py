"""manage_etc_hosts, prefer_fqdn_over_hostname, final_message, output: cloud-init's examples.

Through the real decoder and the real steps on scratch roots; final_message
and output through the agent itself (`guestagent --once --root`).
"""

import pytest

from guestagent.metadata import Metadata
from guestagent.steps import final_message, hostname
from guestagent.userdata import decode

from support.step_context import StepContext, config_drive


def cloud_config(text):
    ud = decode(("#cloud-config\n" + text).encode(), 1 << 20)
    return ud.cloud_config, ud.warnings


def ctx(root, text, md_hostname="meta.novalocal"):
    cc, _ = cloud_config(text)
    md = Metadata(source="test", instance_id="i-1", hostname=md_hostname)
    return StepContext(root, md, cloud_config=cc)


# -- manage_etc_hosts ------------------------------------------------------------------

def test_manage_etc_hosts_true_writes_the_template(root):
    (root / "etc/hosts").write_text("10.0.0.5 mine\n")
    hostname.run(ctx(root, "manage_etc_hosts: true\nfqdn: web1.example.org\n"))
    text = (root / "etc/hosts").read_text()
    assert "127.0.1.1 web1.example.org web1\n127.0.0.1 localhost\n" in text
    assert "::1 localhost ip6-localhost ip6-loopback" in text
    assert "10.0.0.5 mine" not in text  # the template owns the file, as in cloud-init
    assert hostname.run(ctx(root, "manage_etc_hosts: template\nfqdn: web1.example.org\n")) \
        == []  # rewritten only when it would change


def test_manage_etc_hosts_localhost_keeps_the_rest(root):
    (root / "etc/hosts").write_text("127.0.0.1 localhost\n10.0.0.5 mine\n")
    hostname.run(ctx(root, "manage_etc_hosts: localhost\nhostname: web2\n"))
    text = (root / "etc/hosts").read_text()
    assert "10.0.0.5 mine" in text and "127.0.1.1\tweb2" in text


def test_manage_etc_hosts_false_leaves_hosts_alone(root):
    (root / "etc/hosts").write_text("127.0.0.1 localhost\n")
    hostname.run(ctx(root, "manage_etc_hosts: false\nhostname: web3\n"))
    assert (root / "etc/hosts").read_text() == "127.0.0.1 localhost\n"
    assert (root / "etc/hostname").read_text() == "web3\n"


@pytest.mark.parametrize("value", ["sometimes", "[1]", "{a: b}"])
def test_manage_etc_hosts_bad_values_are_invalid(value):
    cc, warnings = cloud_config(f"manage_etc_hosts: {value}\n")
    assert "manage_etc_hosts" not in cc
    assert any('"localhost" or "template"' in w for w in warnings)


def test_prefer_fqdn_over_hostname(root):
    hostname.run(ctx(root, "prefer_fqdn_over_hostname: true\nfqdn: db.example.org\n"))
    assert (root / "etc/hostname").read_text() == "db.example.org\n"
    hostname.run(ctx(root, "prefer_fqdn_over_hostname: false\nfqdn: db.example.org\n"))
    assert (root / "etc/hostname").read_text() == "db\n"


def test_a_host_name_the_step_would_refuse_is_invalid_in_the_check():
    cc, warnings = cloud_config("hostname: 'web;reboot'\nfqdn: ${fqdn}\n")
    assert cc == {}
    assert any("'hostname': expected a usable host name" in w for w in warnings)
    assert any("'fqdn': expected a usable host name" in w for w in warnings)


# -- final_message and output, through the agent -----------------------------------------

def agent(tmp_path, root, run_agent, user_data):
    drive = config_drive(tmp_path / "drive", {"public_keys": {}}, user_data=user_data)
    conf = tmp_path / "a.conf"
    conf.write_text(f"[main]\ndatasources = configdrive\ndefault_user = debian\n"
                    f"[configdrive]\npath = {drive}\n[ssh]\nregenerate_host_keys = no\n")
    return run_agent("--once", "--root", root, "--config", conf)


def test_final_message_with_its_variables(tmp_path, root, run_agent):
    res = agent(tmp_path, root, run_agent,
                "#cloud-config\nfinal_message: \"The system is finally up, after $UPTIME "
                "seconds (${version}, $DATASOURCE) at $TIMESTAMP; $unknown\"\n")
    assert res.returncode == 0, res.stderr
    [line] = [ln for ln in res.stderr.splitlines() if "final message:" in ln]
    assert "The system is finally up, after " in line and " seconds (" in line
    assert "$UPTIME" not in line and "$TIMESTAMP" not in line and "configdrive" in line
    assert line.endswith("; $unknown")  # unknown names stay as written


def test_final_message_control_characters_are_made_visible():
    assert final_message._printable("a\x1b[31mb\x07") == "a?[31mb?"
    assert final_message.render("$UPTIME ${Uptime}", {"uptime": "5"}) == "5 5"


def test_output_file_gets_a_copy_of_the_scripts_output(tmp_path, root, run_agent):
    res = agent(tmp_path, root, run_agent,
                "#cloud-config\noutput: {all: '| tee -a /var/log/cloud-init-output.log'}\n"
                "runcmd: [echo from-runcmd]\nbootcmd: [echo from-bootcmd]\n")
    assert res.returncode == 0, res.stderr
    copy = root / "var/log/cloud-init-output.log"
    text = copy.read_text()
    assert "from-bootcmd" in text and "from-runcmd" in text
    assert copy.stat().st_mode & 0o777 == 0o600
    assert "from-runcmd" in (root / "var/log/guestagent-user-data.log").read_text()


@pytest.mark.parametrize("value, ok", [
    ("{all: '>> /var/log/cloud-init-output.log'}", True),
    ("{final: '> /var/log/x.log'}", True),
    ("{all: ['>> /var/log/a.log', '>> /var/log/b.log']}", True),
    ("{all: '| logger -t cloud'}", False),
    ("{all: '>> relative.log'}", False),
    ("{all: '>> /var/log/$(reboot)'}", False),
    ("'>> /var/log/x'", False),
])
def test_output_forms(value, ok):
    cc, warnings = cloud_config(f"output: {value}\n")
    assert ("output" in cc) == ok, warnings


# -- ssh_genkeytypes, ssh_deletekeys ---------------------------------------------------

def _hostkeys(root):
    return sorted(p.name for p in (root / "etc/ssh").glob("ssh_host_*_key"))


def test_ssh_genkeytypes_and_deletekeys(root):
    import subprocess

    from guestagent.steps import Skip, hostkeys
    ssh = root / "etc/ssh"
    ssh.mkdir(parents=True, exist_ok=True)
    for f in ssh.glob("ssh_host_*"):
        f.unlink()
    subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "1024", "-N", "", "-f",
                    ssh / "ssh_host_rsa_key"], check=True)
    image_rsa = (ssh / "ssh_host_rsa_key.pub").read_text()
    hostkeys.run(ctx(root, "ssh_deletekeys: false\nssh_genkeytypes: [rsa, ed25519]\n"))
    assert _hostkeys(root) == ["ssh_host_ed25519_key", "ssh_host_rsa_key"]
    assert (ssh / "ssh_host_rsa_key.pub").read_text() == image_rsa  # kept
    with pytest.raises(Skip, match="ssh_deletekeys: false kept"):
        hostkeys.run(ctx(root, "ssh_deletekeys: false\nssh_genkeytypes: [rsa]\n"))
    hostkeys.run(ctx(root, "ssh_genkeytypes: [ed25519]\n"))
    assert _hostkeys(root) == ["ssh_host_ed25519_key"]  # deleted, as cloud-init's default
    _, warnings = cloud_config("ssh_genkeytypes: [rsa, dsa2]\n")
    assert any("a list of key types" in w for w in warnings)


def test_growpart_ignore_growroot_disabled(root):
    from guestagent.steps import Skip, growroot
    (root / "etc/growroot-disabled").write_text("")
    cc, _ = cloud_config("growpart: {mode: auto}\n")
    with pytest.raises(Skip, match="/etc/growroot-disabled exists"):
        growroot.run(StepContext(root, cloud_config=cc,
                                 conf_text="[growroot]\ndevices = /nonexistent-mount\n"))
    cc, _ = cloud_config("growpart: {mode: auto, ignore_growroot_disabled: true}\n")
    with pytest.raises(Skip) as skipped:
        growroot.run(StepContext(root, cloud_config=cc,
                                 conf_text="[growroot]\ndevices = /nonexistent-mount\n"))
    assert "growroot-disabled" not in str(skipped.value)
