"""Live configuration through pyroute2, in a network namespace the test makes.

NICs are veth interfaces carrying the Nova fixtures' MAC addresses; the
agent's code runs inside the namespace (resolve() reads the namespace's own
/sys/class/net), and the result is read back with `ip -j`.  This host's
kernel has neither bonding nor 8021q, so bonds and VLANs are created live
only in the QEMU boots.
"""

import json
import os
import subprocess
import sys
import textwrap
import uuid

import pytest

from support import REPO
from support.marks import needs_root

pytestmark = needs_root

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "nova")

AGENT = textwrap.dedent("""
    import json, logging, sys
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    from guestagent.datasources.network_data import parse
    from guestagent.steps.network.interfaces import resolve
    from guestagent.steps.network import live
    from guestagent.system import System
    config = parse(json.load(open(sys.argv[1])))
    print(json.dumps(live.configure(resolve(config, System("/")))))
""")


AGENT_NETWORK_CONFIG = AGENT.replace(
    "from guestagent.datasources.network_data import parse",
    "from guestagent.datasources.network_config import parse").replace(
    "json.load(open(sys.argv[1]))", "__import__('yaml').safe_load(open(sys.argv[1]))")
NETWORK_CONFIG = os.path.join(os.path.dirname(FIXTURES), "network-config")


class Namespace:
    def __init__(self):
        self.name = "ga-net-" + uuid.uuid4().hex[:8]
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        self.ip("link", "set", "lo", "up")

    def ip(self, *args, check=True):
        return subprocess.run(["ip", "-n", self.name, *args], check=check,
                              capture_output=True, text=True)

    def nic(self, name, mac):
        self.ip("link", "add", name, "address", mac, "type", "veth", "peer", "name",
                f"peer-{name}")
        self.ip("link", "set", f"peer-{name}", "up")

    def agent(self, fixture, script=AGENT, path=None):
        path = path or os.path.join(FIXTURES, f"{fixture}.json")
        res = subprocess.run(["ip", "netns", "exec", self.name, sys.executable, "-c", script,
                              path],
                             capture_output=True, text=True, env=dict(os.environ,
                                                                      PYTHONPATH=REPO))
        assert res.returncode == 0, res.stderr
        return json.loads(res.stdout), res.stderr

    def addrs(self, dev):
        out = json.loads(self.ip("-j", "addr", "show", "dev", dev).stdout)[0]
        return out, {f"{a['local']}/{a['prefixlen']}" for a in out["addr_info"]
                     if a.get("scope") == "global"}

    def routes(self, *args):
        return json.loads(self.ip("-j", *args, "route", "show").stdout)

    def close(self):
        subprocess.run(["ip", "netns", "delete", self.name], check=False)


@pytest.fixture
def ns():
    n = Namespace()
    yield n
    n.close()


def test_static_v4_v6_added_live_and_the_working_network_kept(ns):
    ns.nic("eth0", "fa:16:3e:11:22:33")
    # the network that reached the metadata service: an address and a default route
    ns.ip("link", "set", "eth0", "up")
    ns.ip("addr", "add", "10.0.0.5/24", "dev", "eth0")
    ns.ip("route", "add", "default", "via", "10.0.0.1")
    changes, log = ns.agent("static-v4-v6")
    link, addrs = ns.addrs("eth0")
    assert {"10.0.0.5/24", "192.0.2.10/24", "2001:db8:1::10/64"} <= addrs
    assert link["mtu"] == 9000
    v4 = ns.routes("-4")
    assert [r["gateway"] for r in v4 if r["dst"] == "default"] == ["10.0.0.1"]
    assert any(r["dst"] == "198.51.100.0/24" and r["gateway"] == "192.0.2.254" for r in v4)
    assert "a default route for IPv4 is already in place; keeping it" in log
    assert "eth0: added 192.0.2.10/24 (live)" in changes
    assert "eth0: set mtu 9000 (live)" in changes


def test_second_nic_static_first_nic_dhcp_untouched(ns):
    ns.nic("eth0", "52:54:00:12:34:56")
    ns.nic("eth1", "52:54:00:12:34:57")
    ns.ip("link", "set", "eth0", "up")
    ns.ip("addr", "add", "10.0.2.15/24", "dev", "eth0")
    changes, _log = ns.agent("qemu-two-nics")
    _link0, addrs0 = ns.addrs("eth0")
    link1, addrs1 = ns.addrs("eth1")
    assert addrs0 == {"10.0.2.15/24"}
    assert addrs1 == {"192.168.77.5/24"}
    assert "UP" in link1["flags"] and link1["mtu"] == 1400
    assert "eth1: brought the link up (live)" in changes


def test_a_vlan_the_kernel_cannot_make_is_a_warning_and_the_rest_goes_on(ns):
    ns.nic("eth0", "fa:16:3e:00:00:01")
    ns.nic("eth1", "fa:16:3e:00:00:02")
    changes, log = ns.agent("two-nics-vlan")
    _link, addrs = ns.addrs("eth1")
    assert addrs == {"172.16.5.20/24"}
    if not any(c.startswith("eth1.100: created VLAN 100") for c in changes):
        assert "eth1.100: live configuration failed" in log
    assert "Traceback" not in log


def test_rerun_changes_nothing(ns):
    ns.nic("eth0", "fa:16:3e:11:22:33")
    ns.agent("static-v4-v6")
    changes, _log = ns.agent("static-v4-v6")
    assert changes == []


def test_network_config_on_link_default_and_metric_route_live(ns):
    # netplan's direct-connect-gateway shape: the gateway is outside the prefix
    ns.nic("ens3", "52:54:00:00:0a:01")
    changes, log = ns.agent(None, AGENT_NETWORK_CONFIG,
                            os.path.join(NETWORK_CONFIG, "netplan-on-link.yaml"))
    _link, addrs = ns.addrs("ens3")
    assert addrs == {"10.10.10.1/24"}
    v4 = ns.routes("-4")
    default = [r for r in v4 if r["dst"] == "default"]
    assert [(r["gateway"], r["dev"]) for r in default] == [("9.9.9.9", "ens3")]
    assert "onlink" in default[0]["flags"]
    (metric,) = [r for r in v4 if r["dst"] == "192.168.5.0/24"]
    assert (metric["gateway"], metric["metric"]) == ("10.10.10.254", 100)
    assert "ens3: added the route to 0.0.0.0/0 via 9.9.9.9 (live)" in changes
    assert "Traceback" not in log


def test_network_config_bridge_created_live_with_its_port(ns, tmp_path):
    ns.nic("enp3s0", "52:54:00:00:0c:01")
    doc = tmp_path / "nc.yaml"
    doc.write_text("version: 2\nethernets:\n  enp3s0: {}\nbridges:\n  br0:\n"
                   "    interfaces: [enp3s0]\n    parameters: {stp: false}\n"
                   "    addresses: [192.0.2.7/24]\n")
    changes, log = ns.agent(None, AGENT_NETWORK_CONFIG, str(doc))
    link, addrs = ns.addrs("br0")
    assert addrs == {"192.0.2.7/24"} and "UP" in link["flags"]
    port = json.loads(ns.ip("-j", "-d", "link", "show", "enp3s0").stdout)[0]
    assert port["master"] == "br0"
    assert "br0: created the bridge of enp3s0 (live)" in changes
    assert "Traceback" not in log


def test_a_port_carrying_the_running_network_is_not_bridged_live(ns, tmp_path):
    ns.nic("enp3s0", "52:54:00:00:0c:01")
    ns.ip("link", "set", "enp3s0", "up")
    ns.ip("addr", "add", "10.0.2.15/24", "dev", "enp3s0")
    doc = tmp_path / "nc.yaml"
    doc.write_text("version: 2\nethernets:\n  enp3s0: {}\nbridges:\n  br0:\n"
                   "    interfaces: [enp3s0]\n    dhcp4: true\n")
    changes, log = ns.agent(None, AGENT_NETWORK_CONFIG, str(doc))
    _link, addrs = ns.addrs("enp3s0")
    assert addrs == {"10.0.2.15/24"}
    assert ns.ip("link", "show", "br0", check=False).returncode != 0
    assert "not creating the bridge now: enp3s0 carries the running network" in log
