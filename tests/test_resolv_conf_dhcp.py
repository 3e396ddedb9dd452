"""The metadata's DNS outlasts a real DHCP client: lease, release, renewal.

Debian's isc-dhcp-client (dhclient and its dhclient-script) gets a lease from
dnsmasq over a veth pair inside a network namespace the test made; dnsmasq
hands out its own DNS server, as a cloud's DHCP does.  dhclient runs in a
private mount namespace where /etc is an overlay (nothing reaches this
machine's /etc) with the scratch root's /etc/dhcp and /etc/resolv.conf bound
in, so the hooks the agent wrote are the ones dhclient-script sources.
"""

import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from support import EXAMPLES
from support.marks import needs_root
from support.netns import Netns

pytestmark = [needs_root, pytest.mark.root,
              pytest.mark.skipif(not (shutil.which("dhclient") and shutil.which("dnsmasq")),
                                 reason="needs isc-dhcp-client and dnsmasq-base "
                                        "(tests/apt-packages)")]

DHCP_DNS = "10.99.0.1"  # what the lease says
METADATA_DNS = ["192.0.2.10", "192.0.2.11"]


class DhcpNet:
    """dnsmasq on one end of a veth pair in a namespace; dhclient on the other."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.ns = Netns(with_address=False)
        run = self.ns.run
        run(["ip", "link", "add", "srv0", "type", "veth", "peer", "name", "cli0"], check=True)
        run(["ip", "addr", "add", f"{DHCP_DNS}/24", "dev", "srv0"], check=True)
        run(["ip", "link", "set", "srv0", "up"], check=True)
        run(["ip", "link", "set", "cli0", "up"], check=True)
        self.ns.popen(["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
                       "--port=0", "--interface=srv0", "--bind-interfaces",
                       "--dhcp-range=10.99.0.50,10.99.0.60,255.255.255.0,2m",
                       f"--dhcp-option=option:dns-server,{DHCP_DNS}",
                       "--dhcp-option=option:domain-search,dhcp.example",
                       f"--dhcp-leasefile={tmp_path}/dnsmasq.leases",
                       f"--pid-file={tmp_path}/dnsmasq.pid"],
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def dhclient(self, root, *args):
        """dhclient ARGS against cli0, seeing ``root``'s /etc/dhcp and resolv.conf."""
        upper, work = self.tmp / "etc-upper", self.tmp / "etc-work"
        upper.mkdir(exist_ok=True)
        work.mkdir(exist_ok=True)
        script = (
            "set -e\n"
            f"mount -t overlay overlay -o lowerdir=/etc,upperdir={upper},workdir={work} /etc\n"
            f"mount --bind {root}/etc/dhcp /etc/dhcp\n"
            f"mount --bind {root}/etc/resolv.conf /etc/resolv.conf\n"
            f"exec dhclient -v -1 -pf {self.tmp}/dhclient.pid -lf {self.tmp}/dhclient.leases "
            + " ".join(args) + " cli0\n")
        res = self.ns.run(["unshare", "--mount", "--uts", "--propagation", "private",
                           "sh", "-c", script], capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        return res

    def renew(self, root):
        """What an operator does to see a renewal now: release, then lease again."""
        self.dhclient(root, "-r")
        time.sleep(0.2)
        return self.dhclient(root)

    def close(self):
        # dhclient -1 stays on as a daemon once it has a lease: end it (by its
        # pid file), before the namespace it lives in goes
        try:
            pid = int((self.tmp / "dhclient.pid").read_text().split()[0])
            os.kill(pid, signal.SIGTERM)
        except (OSError, ValueError, IndexError):
            pass
        self.ns.close()


@pytest.fixture
def dhcp(tmp_path):
    net = DhcpNet(tmp_path)
    yield net
    net.close()


def image_root(root):
    """The scratch root as an image with isc-dhcp-client installed (its /etc/dhcp)."""
    shutil.copytree("/etc/dhcp", root / "etc/dhcp", symlinks=True, dirs_exist_ok=True)
    (root / "usr/sbin").mkdir(parents=True, exist_ok=True)
    os.symlink(shutil.which("dhclient"), root / "usr/sbin/dhclient")
    return root


def drive_with(tmp_path, dns=(), user_data=None):
    drive = tmp_path / "drive"
    shutil.copytree(f"{EXAMPLES}/configdrive", drive)
    net = json.loads((drive / "openstack/latest/network_data.json").read_text())
    net["services"] = [{"type": "dns", "address": a} for a in dns]
    (drive / "openstack/latest/network_data.json").write_text(json.dumps(net))
    ud = drive / "openstack/latest/user_data"
    if user_data is None:
        ud.unlink()
    else:
        ud.write_text(user_data)
    conf = tmp_path / "agent.conf"
    conf.write_text(f"[main]\ndatasources = configdrive\n[configdrive]\npath = {drive}\n")
    return conf


def nameservers(root):
    return [ln.split()[1] for ln in (root / "etc/resolv.conf").read_text().splitlines()
            if ln.startswith("nameserver")]


def search(root):
    return [ln.split()[1:] for ln in (root / "etc/resolv.conf").read_text().splitlines()
            if ln.startswith("search")]


def resolv_conf_step(run_agent, root):
    status = json.loads(run_agent("status", "--json", "--root", root, check=True).stdout)
    return next(s for s in status["last"]["steps"] if s["name"] == "resolv_conf")


@pytest.mark.parametrize("origin", ["network_data", "cloud_config"])
def test_config_drive_dns_outlasts_the_lease_and_its_renewal(tmp_path, root, run_agent, dhcp,
                                                             origin):
    """The config-drive boot: the agent writes first, the lease comes after."""
    image_root(root)
    if origin == "network_data":
        conf = drive_with(tmp_path, dns=METADATA_DNS)
    else:
        conf = drive_with(tmp_path, user_data=(
            "#cloud-config\nmanage_resolv_conf: true\nresolv_conf:\n"
            f"  nameservers: {json.dumps(METADATA_DNS)}\n  searchdomains: [meta.example]\n"
            "  options: {rotate: true}\n"))
    res = run_agent("--once", "--stage", "local", "--root", root, "--config", conf)
    assert res.returncode == 0, res.stderr
    step = resolv_conf_step(run_agent, root)
    assert step["result"] == "changed", step
    assert any("dhclient" in c for c in step["changes"]), step
    dhcp.dhclient(root)
    assert nameservers(root) == METADATA_DNS
    dhcp.renew(root)
    assert nameservers(root) == METADATA_DNS
    if origin == "cloud_config":
        text = (root / "etc/resolv.conf").read_text()
        assert "search meta.example" in text and "options rotate" in text, text
    # a later boot of the same instance: nothing to do, and it says ok
    res = run_agent("--once", "--stage", "local", "--root", root, "--config", conf)
    assert resolv_conf_step(run_agent, root)["result"] == "ok"


def test_after_the_lease_the_agent_takes_over_and_keeps_it(tmp_path, root, run_agent, dhcp):
    """The metadata-service boot: the lease came first, the agent writes after."""
    image_root(root)
    dhcp.dhclient(root)
    assert nameservers(root) == [DHCP_DNS]
    conf = drive_with(tmp_path, dns=METADATA_DNS)
    run_agent("--once", "--root", root, "--config", conf, check=True)
    assert nameservers(root) == METADATA_DNS
    dhcp.renew(root)
    assert nameservers(root) == METADATA_DNS


def test_search_domains_only_keep_the_lease_servers(tmp_path, root, run_agent, dhcp):
    image_root(root)
    conf = drive_with(tmp_path, user_data=(
        "#cloud-config\nmanage_resolv_conf: true\nresolv_conf:\n"
        "  searchdomains: [meta.example, two.example]\n"))
    run_agent("--once", "--root", root, "--config", conf, check=True)
    dhcp.dhclient(root)
    dhcp.renew(root)
    assert nameservers(root) == [DHCP_DNS]  # the lease's servers still arrive
    assert search(root) == [["meta.example", "two.example"]]


def test_a_new_instance_without_dns_gives_the_file_back_to_dhcp(tmp_path, root, run_agent,
                                                                 dhcp):
    image_root(root)
    conf = drive_with(tmp_path, dns=METADATA_DNS)
    run_agent("--once", "--root", root, "--config", conf, check=True)
    assert (root / "etc/dhcp/dhclient-enter-hooks.d/guestagent").exists()
    drive = tmp_path / "drive/openstack/latest"
    meta = json.loads((drive / "meta_data.json").read_text())
    meta["uuid"] = "a-new-instance"
    (drive / "meta_data.json").write_text(json.dumps(meta))
    net = json.loads((drive / "network_data.json").read_text())
    net["services"] = []
    (drive / "network_data.json").write_text(json.dumps(net))
    run_agent("--once", "--root", root, "--config", conf, check=True)
    assert not (root / "etc/dhcp/dhclient-enter-hooks.d/guestagent").exists()
    dhcp.renew(root)
    assert nameservers(root) == [DHCP_DNS]
