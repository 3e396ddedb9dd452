import os
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guestagent.metadata import Metadata
from guestagent.steps import Skip
from guestagent.steps import resolv_conf as step
from guestagent.steps.resolv_conf import networkmanager, owner_files, owners, resolv_file, resolved
from guestagent.steps.resolv_conf import settings as dns_settings
from guestagent.steps.resolv_conf.settings import DnsSettings

from support.step_context import (
    StepContext,
    agent_conf,
    config_drive,
    dns_services,
    read_cloud_config,
)

PLAIN = """# Dynamic resolv.conf(5) file for glibc resolver
# kept by the image
domain old.example
search old.example
nameserver 10.0.2.3
options edns0 timeout:5
sortlist 130.155.160.0/255.255.240.0
"""


def md(servers=(), search=()):
    return Metadata(source="test", instance_id="i-1", dns_nameservers=list(servers),
                    dns_search=list(search))


# -- checking values ----------------------------------------------------------

@pytest.mark.parametrize("value, expect", [
    ("192.0.2.53", "192.0.2.53"),
    ("2001:DB8::0:53", "2001:db8::53"),
    ("fe80::1%eth0", "fe80::1%eth0"),
])
def test_nameserver_accepts_and_normalises_addresses(value, expect):
    assert dns_settings.nameserver(value) == expect


@pytest.mark.parametrize("value", [
    "192.0.2.53\nnameserver 6.6.6.6", "192.0.2.300", "dns.example", "", " 192.0.2.1",
    "fe80::1%eth0\nx", "fe80::1%eth0\n", "192.0.2.1\n", "192.0.2.1%eth0", "fe80::1%a b",
    None, 53, "1.2.3.4; rm -rf /",
])
def test_nameserver_refuses_junk(value):
    with pytest.raises(ValueError):
        dns_settings.nameserver(value)


def test_options_from_a_mapping():
    assert dns_settings.resolver_options({"rotate": True, "timeout": 1, "attempts": "2",
                                          "edns0": False}) == ["rotate", "timeout:1",
                                                               "attempts:2"]


def test_options_as_a_list_are_refused_as_the_user_data_is_read():
    """cloud-init's schema wants a mapping; the step never sees a list."""
    cc, notes = read_cloud_config("manage_resolv_conf: true\n"
                                  "resolv_conf: {options: [rotate, 'ndots:2']}\n")
    assert cc["resolv_conf"] == {}
    assert any("'options' should be a mapping of resolver options" in n for n in notes), notes


def test_junk_options_are_dropped_with_a_warning(caplog):
    got = dns_settings.resolver_options({"rotate\nnameserver 6.6.6.6": True, "rotate\n": True,
                                         "timeout": "1 attempts:9", "ndots": -1,
                                         "Bad Key": True, "use-vc": True})
    assert got == ["use-vc"]
    assert caplog.text.count("ignoring resolver option") == 5


# -- resolv.conf text ----------------------------------------------------------

def test_plain_file_keeps_options_sortlist_and_comments():
    new = resolv_file.resolv_conf_text(PLAIN, DnsSettings(["192.0.2.53", "198.51.100.53"],
                                                   ["example.net"]))
    assert new == """# Dynamic resolv.conf(5) file for glibc resolver
# kept by the image
search example.net
nameserver 192.0.2.53
nameserver 198.51.100.53
options edns0 timeout:5
sortlist 130.155.160.0/255.255.240.0
"""
    assert resolv_file.resolv_conf_text(new, DnsSettings(["192.0.2.53", "198.51.100.53"],
                                                  ["example.net"])) == new


def test_only_what_is_given_is_replaced():
    new = resolv_file.resolv_conf_text(PLAIN, DnsSettings(search=["example.net"]))
    assert "nameserver 10.0.2.3" in new and "search example.net" in new
    assert "old.example" not in new
    new = resolv_file.resolv_conf_text(PLAIN, DnsSettings(nameservers=["192.0.2.1"]))
    assert "search old.example" in new and "domain old.example" in new
    assert "10.0.2.3" not in new


def test_options_given_replace_only_those_keys_and_stay_stable():
    dns = DnsSettings(["192.0.2.1"], [], ["rotate", "timeout:1"])
    new = resolv_file.resolv_conf_text(PLAIN, dns)
    assert "options edns0\n" in new and new.endswith("options rotate timeout:1\n")
    assert "timeout:5" not in new
    assert resolv_file.resolv_conf_text(new, dns) == new


def test_empty_file_gets_a_header():
    new = resolv_file.resolv_conf_text("", DnsSettings(["192.0.2.1"]))
    assert new.startswith("# Written by guestagent")
    assert new.endswith("nameserver 192.0.2.1\n")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=40), max_size=6), st.lists(st.text(max_size=40), max_size=6))
def test_no_value_ever_injects_a_line(servers, search):
    dns = dns_settings.DnsSettings(dns_settings.nameservers(servers, "test"),
                                   dns_settings.domains(search, "test"))
    new = resolv_file.resolv_conf_text("", dns)
    lines = new.splitlines()[1:]
    assert len(lines) == len(dns.nameservers) + (1 if dns.search else 0)
    for line in lines:
        assert re.fullmatch(r"(nameserver [0-9a-fA-F:.]+(%[A-Za-z0-9_.-]+)?|search [a-z0-9. -]+)",
                            line), line


# -- settings from #cloud-config ---------------------------------------------------

def test_cloud_config_takes_precedence_field_by_field(root):
    cc = {"manage_resolv_conf": True,
          "resolv_conf": {"searchdomains": ["cc.example"], "domain": "dom.example",
                          "options": {"rotate": True, "timeout": 1}}}
    ctx = StepContext(root, md(["192.0.2.1"], ["md.example"]), cc)
    assert dns_settings.from_context(ctx) == DnsSettings(
        ["192.0.2.1"], ["dom.example", "cc.example"], ["rotate", "timeout:1"])
    cc["resolv_conf"]["nameservers"] = ["203.0.113.9", "junk"]
    assert dns_settings.from_context(ctx).nameservers == ["203.0.113.9"]


def test_resolv_conf_without_manage_resolv_conf_is_ignored(root):
    cc, notes = read_cloud_config("resolv_conf: {nameservers: [10.9.9.9]}\n")
    assert "#cloud-config resolv_conf is ignored: manage_resolv_conf is not true" in notes
    ctx = StepContext(root, md(["192.0.2.1"]), cc)
    assert dns_settings.from_context(ctx).nameservers == ["192.0.2.1"]


def test_step_writes_cloud_config_options(root):
    cc = {"manage_resolv_conf": True,
          "resolv_conf": {"nameservers": ["192.0.2.7"], "options": {"rotate": True}}}
    step.run(StepContext(root, md(), cc))
    assert (root / "etc/resolv.conf").read_text() == (
        "nameserver 192.0.2.7\noptions edns0\noptions rotate\n")


def test_nothing_to_set_is_skipped_and_untouched(root):
    before = (root / "etc/resolv.conf").read_bytes()
    with pytest.raises(Skip, match="no DNS servers"):
        step.run(StepContext(root, md()))
    assert (root / "etc/resolv.conf").read_bytes() == before


def test_disabled(root):
    with pytest.raises(Skip, match="enabled = no"):
        step.run(StepContext(root, md(["192.0.2.1"]),
                             conf_text="[resolv_conf]\nenabled = no\n"))


def test_more_than_three_servers_warns(root, caplog):
    step.run(StepContext(root, md(["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"])))
    assert "glibc uses only the first 3" in caplog.text
    assert (root / "etc/resolv.conf").read_text().count("nameserver") == 4


# -- owners ---------------------------------------------------------------------

@pytest.mark.parametrize("target", ["../run/systemd/resolve/stub-resolv.conf",
                                    "/run/systemd/resolve/resolv.conf",
                                    "../usr/lib/systemd/resolv.conf"])
def test_systemd_resolved_gets_a_drop_in(root, target):
    (root / "etc/resolv.conf").unlink()
    os.symlink(target, root / "etc/resolv.conf")
    changes = step.run(StepContext(root, md(["192.0.2.1", "2001:db8::1"], ["example.net"])))
    dropin = (root / "etc/systemd/resolved.conf.d/guestagent.conf").read_text()
    assert "[Resolve]\nDNS=192.0.2.1 2001:db8::1\nDomains=example.net\n" in dropin
    assert os.readlink(root / "etc/resolv.conf") == target
    assert changes == ["wrote /etc/systemd/resolved.conf.d/guestagent.conf for "
                       "systemd-resolved (servers 192.0.2.1, 2001:db8::1; search example.net)"]
    assert step.run(StepContext(root, md(["192.0.2.1", "2001:db8::1"], ["example.net"]))) == []


def test_networkmanager_header_gets_a_global_dns_drop_in(root):
    text = "# Generated by NetworkManager\nnameserver 10.0.0.1\n"
    (root / "etc/resolv.conf").write_text(text)
    step.run(StepContext(root, md(["192.0.2.1", "192.0.2.2"], ["example.net"])))
    dropin = (root / "etc/NetworkManager/conf.d/90-guestagent-dns.conf").read_text()
    assert "[global-dns]\nsearches=example.net\n" in dropin
    assert "[global-dns-domain-*]\nservers=192.0.2.1,192.0.2.2\n" in dropin
    assert (root / "etc/resolv.conf").read_text() == text


@pytest.mark.parametrize("conf, owner", [
    ("[main]\nplugins=ifupdown,keyfile\n", "NetworkManager"),
    ("[main]\ndns=none\n", "file"),
    ("[main]\nrc-manager=unmanaged\n", "file"),
])
def test_networkmanager_conf_decides(root, conf, owner):
    (root / "etc/NetworkManager").mkdir()
    (root / "etc/NetworkManager/NetworkManager.conf").write_text(conf)
    assert owners.resolv_conf_owner(step_system(root))[0] == owner


def test_networkmanager_dns_none_in_a_drop_in_wins(root):
    (root / "etc/NetworkManager/conf.d").mkdir(parents=True)
    (root / "etc/NetworkManager/NetworkManager.conf").write_text("[main]\ndns=default\n")
    (root / "etc/NetworkManager/conf.d/dns.conf").write_text("[main]\ndns=none\n")
    assert owners.resolv_conf_owner(step_system(root))[0] == "file"


def test_networkmanager_without_servers_is_left_alone(root):
    (root / "etc/resolv.conf").write_text("# Generated by NetworkManager\n")
    with pytest.raises(Skip, match="NetworkManager's global DNS needs servers"):
        step.run(StepContext(root, md([], ["example.net"])))
    assert not (root / "etc/NetworkManager/conf.d").exists()


def test_foreign_symlink_is_not_written_through(root, tmp_path, caplog):
    target = "/tmp/somewhere/resolv.conf"
    (root / "etc/resolv.conf").unlink()
    os.symlink(target, root / "etc/resolv.conf")
    with pytest.raises(Skip, match="would not last: /etc/resolv.conf is a symlink to "
                                   "/tmp/somewhere/resolv.conf, which the agent does not"):
        step.run(StepContext(root, md(["192.0.2.1"])))
    assert os.readlink(root / "etc/resolv.conf") == target
    assert "not changing the DNS settings (servers 192.0.2.1)" in caplog.text


def step_system(root):
    from guestagent.system import System
    return System(str(root))


# -- the real agent on scratch roots -------------------------------------------------

def agent(run_agent, root, conf):
    return run_agent("--once", "--root", root, "--config", conf, "--only", "resolv_conf")


def test_agent_plain_resolv_conf(tmp_path, root, run_agent):
    (root / "etc/resolv.conf").write_text(PLAIN)
    drive = config_drive(tmp_path / "d", {}, dns_services("192.0.2.53", "198.51.100.53",
                                                           search=["example.net"]))
    res = agent(run_agent, root, agent_conf(tmp_path / "a.conf", drive))
    assert res.returncode == 0, res.stderr
    text = (root / "etc/resolv.conf").read_text()
    assert text == PLAIN.replace(
        "domain old.example\nsearch old.example\nnameserver 10.0.2.3\n",
        "search example.net\nnameserver 192.0.2.53\nnameserver 198.51.100.53\n")
    assert (root / "etc/resolv.conf").stat().st_mode & 0o777 == 0o644
    assert "resolv_conf: wrote /etc/resolv.conf (servers 192.0.2.53, 198.51.100.53; " \
           "search example.net)" in res.stderr


def test_agent_systemd_resolved(tmp_path, root, run_agent):
    (root / "etc/resolv.conf").unlink()
    os.symlink("../run/systemd/resolve/stub-resolv.conf", root / "etc/resolv.conf")
    drive = config_drive(tmp_path / "d", {}, dns_services("192.0.2.53"))
    res = agent(run_agent, root, agent_conf(tmp_path / "a.conf", drive))
    assert res.returncode == 0, res.stderr
    assert "DNS=192.0.2.53\n" in (root / "etc/systemd/resolved.conf.d/guestagent.conf"
                                  ).read_text()
    assert os.path.islink(root / "etc/resolv.conf")
    assert not (root / "run/systemd").exists()  # nothing written through the link
    assert "reloading" not in res.stderr.lower()  # no live services under --root


def test_agent_drops_junk_dns_values(tmp_path, root, run_agent):
    before = (root / "etc/resolv.conf").read_text()
    drive = config_drive(tmp_path / "d", {}, dns_services(
        "192.0.2.53\nnameserver 6.6.6.6", "6.6.6.6 ; reboot", "dns.evil.example",
        "198.51.100.53", search=["good.example", "bad\nnameserver 6.6.6.6",
                                 "$(reboot).example", "ünïcode.example"]))
    res = agent(run_agent, root, agent_conf(tmp_path / "a.conf", drive))
    assert res.returncode == 0, res.stderr
    text = (root / "etc/resolv.conf").read_text()
    assert text == before.replace("nameserver 10.0.2.3\n",
                                  "search good.example\nnameserver 198.51.100.53\n")
    assert "6.6.6.6" not in text
    assert res.stderr.count("ignoring DNS server") == 3
    assert res.stderr.count("ignoring DNS search domain") == 3


def test_agent_with_only_junk_leaves_resolv_conf_alone(tmp_path, root, run_agent):
    before = (root / "etc/resolv.conf").read_bytes()
    drive = config_drive(tmp_path / "d", {}, dns_services("not-an-address\n"))
    res = agent(run_agent, root, agent_conf(tmp_path / "a.conf", drive))
    assert res.returncode == 0, res.stderr
    assert (root / "etc/resolv.conf").read_bytes() == before
    assert "resolv_conf: skipped: the metadata names no DNS servers" in res.stderr


def test_live_reload_failure_is_a_warning_not_a_failure(root, tmp_path, monkeypatch, caplog):
    """On a live system the agent asks systemctl to reload systemd-resolved.  The
    host's own systemctl must not be driven by a test, so a stand-in that records
    its arguments and fails (as it does without D-Bus) sits first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    (bin_dir / "systemctl").write_text(
        f"#!/bin/sh\necho \"$@\" >> {calls}\necho 'Failed to connect to bus' >&2\nexit 1\n")
    (bin_dir / "systemctl").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    (root / "etc/resolv.conf").unlink()
    os.symlink("../run/systemd/resolve/stub-resolv.conf", root / "etc/resolv.conf")
    changes = step.run(StepContext(root, md(["192.0.2.1"]), live=True))
    # systemctl cannot tell whether it runs: the warning says so, nothing else is tried
    assert changes and calls.read_text() == "is-active --quiet systemd-resolved\n"
    assert "reloading systemd-resolved failed (exit 1: Failed to connect to bus)" in caplog.text


CLOUD_CONFIG = """#cloud-config
fqdn: cc-host.example.org
manage_resolv_conf: true
resolv_conf:
  nameservers: [203.0.113.1, "203.0.113.2\\nnameserver 6.6.6.6"]
  searchdomains: [cc.example.org]
  domain: example.org
  options: {rotate: true, timeout: 1}
"""


def test_agent_cloud_config_resolv_conf_and_fqdn_win(tmp_path, root, run_agent):
    drive = config_drive(tmp_path / "d", {"hostname": "md-host.novalocal"},
                         dns_services("192.0.2.53", search=["md.example"]),
                         user_data=CLOUD_CONFIG)
    res = run_agent("--once", "--root", root, "--config", agent_conf(tmp_path / "a.conf", drive),
                    "--only", "hostname,resolv_conf")
    assert res.returncode == 0, res.stderr
    assert (root / "etc/resolv.conf").read_text() == (
        "search example.org cc.example.org\nnameserver 203.0.113.1\noptions edns0\n"
        "options rotate timeout:1\n")
    assert (root / "etc/hostname").read_text() == "cc-host\n"
    assert "ignoring DNS server '203.0.113.2\\nnameserver 6.6.6.6'" in res.stderr


def test_networkmanager_symlink_is_networkmanagers(root):
    (root / "etc/resolv.conf").unlink()
    os.symlink("/run/NetworkManager/resolv.conf", root / "etc/resolv.conf")
    assert owners.resolv_conf_owner(step_system(root))[0] == "NetworkManager"


# -- owners that rewrite the file: configured, so the settings last ------------------

def test_resolvconf_head_goes_before_every_interfaces_servers(root):
    (root / "etc/resolv.conf").unlink()
    os.symlink("../run/resolvconf/resolv.conf", root / "etc/resolv.conf")
    head = root / "etc/resolvconf/resolv.conf.d/head"
    head.parent.mkdir(parents=True)
    shipped = "# Dynamic resolv.conf(5) file for glibc resolver(3) generated by resolvconf(8)\n"
    head.write_text(shipped)
    changes = step.run(StepContext(root, md(["192.0.2.1"], ["example.net"])))
    assert changes == ["wrote /etc/resolvconf/resolv.conf.d/head, which resolvconf puts first "
                       "in /etc/resolv.conf (servers 192.0.2.1; search example.net)"]
    assert head.read_text() == shipped + owner_files.HEADER + (
        "search example.net\nnameserver 192.0.2.1\n")
    assert step.run(StepContext(root, md(["192.0.2.1"], ["example.net"]))) == []
    step.run(StepContext(root, md(["192.0.2.9"])))  # replaced, not added to
    assert head.read_text() == shipped + owner_files.HEADER + "nameserver 192.0.2.9\n"
    assert step.run(StepContext(root, md())) == [
        "took the guestagent lines out of /etc/resolvconf/resolv.conf.d/head"]
    assert head.read_text() == shipped


def test_openresolv_gets_a_marked_block(root):
    (root / "etc/resolv.conf").write_text("# Generated by resolvconf\nnameserver 10.0.2.3\n")
    conf = root / "etc/resolvconf.conf"
    conf.write_text("# shipped\nresolv_conf=/etc/resolv.conf\n")
    changes = step.run(StepContext(root, md(["192.0.2.1", "192.0.2.2"], ["example.net"])))
    assert changes == ["set /etc/resolvconf.conf for openresolv (servers 192.0.2.1, "
                       "192.0.2.2; search example.net)"]
    assert conf.read_text() == (
        "# shipped\nresolv_conf=/etc/resolv.conf\n" + owner_files.BLOCK_BEGIN + "\n"
        'name_servers="192.0.2.1 192.0.2.2"\nsearch_domains="example.net"\n'
        + owner_files.BLOCK_END + "\n")
    assert (root / "etc/resolv.conf").read_text().endswith("nameserver 10.0.2.3\n")
    assert step.run(StepContext(root, md(["192.0.2.1", "192.0.2.2"], ["example.net"]))) == []


def with_dhclient(root, hook_dir=True):
    (root / "usr/sbin").mkdir(parents=True, exist_ok=True)
    (root / "usr/sbin/dhclient").write_text("")
    (root / "etc/dhcp").mkdir(parents=True, exist_ok=True)
    if hook_dir:
        (root / "etc/dhcp/dhclient-enter-hooks.d").mkdir()


def test_dhclient_gets_an_enter_hook_beside_the_file(root):
    with_dhclient(root)
    changes = step.run(StepContext(root, md(["192.0.2.1"])))
    assert changes == [
        "wrote /etc/resolv.conf (servers 192.0.2.1)",
        "wrote /etc/dhcp/dhclient-enter-hooks.d/guestagent: dhclient keeps the metadata's "
        "resolv.conf at every lease"]
    hook = (root / "etc/dhcp/dhclient-enter-hooks.d/guestagent").read_text()
    assert "make_resolv_conf() { :; }\n" in hook
    assert step.run(StepContext(root, md(["192.0.2.1"]))) == []


def test_dhclient_without_a_hook_dir_uses_the_single_hook_file_if_free(root):
    with_dhclient(root, hook_dir=False)  # RHEL's dhclient-script
    step.run(StepContext(root, md(["192.0.2.1"])))
    assert "make_resolv_conf" in (root / "etc/dhcp/dhclient-enter-hooks").read_text()
    step.run(StepContext(root, md(["192.0.2.2"])))  # ours: rewritten
    assert (root / "etc/dhcp/dhclient-enter-hooks").read_text().startswith("# guestagent")


def test_dhclient_hook_file_of_someone_else_means_it_would_not_last(root, caplog):
    with_dhclient(root, hook_dir=False)
    (root / "etc/dhcp/dhclient-enter-hooks").write_text("# the admin's\n")
    before = (root / "etc/resolv.conf").read_text()
    with pytest.raises(Skip, match="would not last: dhclient rewrites /etc/resolv.conf"):
        step.run(StepContext(root, md(["192.0.2.1"])))
    assert (root / "etc/resolv.conf").read_text() == before  # nothing half-done
    assert (root / "etc/dhcp/dhclient-enter-hooks").read_text() == "# the admin's\n"


def test_dhcpcd_gets_nohook_or_static_search_in_a_marked_block(root):
    (root / "usr/sbin").mkdir(parents=True)
    (root / "usr/sbin/dhcpcd").write_text("")
    conf = root / "etc/dhcpcd.conf"
    conf.write_text("hostname\noption rapid_commit\n")
    changes = step.run(StepContext(root, md(["192.0.2.1"])))
    assert changes[-1] == "set /etc/dhcpcd.conf: dhcpcd leaves /etc/resolv.conf alone"
    assert conf.read_text() == ("hostname\noption rapid_commit\n" + owner_files.BLOCK_BEGIN
                                + "\nnohook resolv.conf\n" + owner_files.BLOCK_END + "\n")
    step.run(StepContext(root, md([], ["a.example", "b.example"])))
    assert conf.read_text().count(owner_files.BLOCK_BEGIN) == 1
    assert "static domain_search=a.example b.example\n" in conf.read_text()
    assert "nohook" not in conf.read_text()
    step.run(StepContext(root, md()))
    assert conf.read_text() == "hostname\noption rapid_commit\n"


def test_a_later_instance_without_dns_takes_the_agents_configuration_out(root):
    with_dhclient(root)
    (root / "etc/systemd/resolved.conf.d").mkdir(parents=True)
    (root / "etc/systemd/resolved.conf.d/guestagent.conf").write_text("[Resolve]\n")
    step.run(StepContext(root, md(["192.0.2.1"])))
    changes = step.run(StepContext(root, md()))
    assert sorted(changes) == ["removed /etc/dhcp/dhclient-enter-hooks.d/guestagent",
                               "removed /etc/systemd/resolved.conf.d/guestagent.conf"]
    with pytest.raises(Skip, match="no DNS servers"):
        step.run(StepContext(root, md()))


def test_taking_a_drop_in_out_reloads_its_owner_on_a_live_system(root, tmp_path, monkeypatch):
    """Removing the drop-in alone would leave systemd-resolved and NetworkManager
    serving the old instance's servers until they next start: the live agent
    reloads each owner whose drop-in it took out (a systemctl stand-in on PATH
    records it; the host's own must not be driven by a test)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    (bin_dir / "systemctl").write_text(f"#!/bin/sh\necho \"$@\" >> {calls}\n")
    (bin_dir / "systemctl").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    for dropin in (resolved.RESOLVED_DROPIN, networkmanager.NM_DROPIN):
        (root / dropin.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (root / dropin.lstrip("/")).write_text("[Resolve]\n")
    changes = step.run(StepContext(root, md(), live=True))
    assert sorted(changes) == [f"removed {networkmanager.NM_DROPIN}",
                               f"removed {resolved.RESOLVED_DROPIN}"]
    assert calls.read_text().splitlines() == ["is-active --quiet systemd-resolved",
                                              "try-reload-or-restart systemd-resolved",
                                              "is-active --quiet NetworkManager",
                                              "try-reload-or-restart NetworkManager"]
    calls.unlink()
    with pytest.raises(Skip, match="no DNS servers"):
        step.run(StepContext(root, md(), live=True))
    assert not calls.exists()  # nothing taken out: nothing to reload


def test_options_alone_would_not_outlast_a_dhcp_client(root):
    with_dhclient(root)
    before = (root / "etc/resolv.conf").read_text()
    cc = {"manage_resolv_conf": True, "resolv_conf": {"options": {"rotate": True}}}
    with pytest.raises(Skip, match="resolver options alone"):
        step.run(StepContext(root, md(), cc))
    assert (root / "etc/resolv.conf").read_text() == before
