"""The networkd renderer's files, read and applied by the real systemd-networkd.

systemd-networkd runs in a network namespace the test makes, inside a
private mount namespace where /etc/systemd/network is the rendered files,
/run/systemd and /run/dbus are empty (it reaches neither this machine's
state nor its bus), and /sys is read-only (so networkd does not wait for a
udev that is not there).  NICs are veth interfaces with the fixtures' MACs.
What it logs about our files must hold no parse complaint; what it
configured is read back with `ip`.  (This host's kernel has no bonding or
8021q: bonds and VLANs are parsed here, created only in the QEMU boots.)
"""

import json
import os
import shutil
import subprocess
import uuid

import pytest

from guestagent.datasources.network_data import parse

from support.marks import needs_root
from support.network import nics_for, nova_doc, render

NETWORKD = "/lib/systemd/systemd-networkd"
pytestmark = [needs_root, pytest.mark.skipif(not os.path.exists(NETWORKD),
                                             reason="systemd-networkd is not installed")]
COMPLAINTS = ("Unknown key", "Unknown section", "Failed to parse", "Invalid",
              "ignoring assignment", "is not valid", "Ignoring")


def run_networkd(tmp_path, fixture, seconds=6, plan=None, nics=None):
    """networkd on ``fixture``'s files (a Nova fixture), or on ``plan`` for ``nics``."""
    plan = plan or render(tmp_path, "networkd", fixture)
    confdir = tmp_path / "network"
    confdir.mkdir()
    for path, (text, _mode, _what) in plan.files.items():
        (confdir / os.path.basename(path)).write_text(text)
    ns = "ga-nd-" + uuid.uuid4().hex[:8]
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        nics = nics or nics_for(parse(nova_doc(fixture)))
        for name, mac in nics.items():
            subprocess.run(["ip", "-n", ns, "link", "add", name, "address", mac, "type",
                            "veth", "peer", "name", f"p-{name}"], check=True)
            subprocess.run(["ip", "-n", ns, "link", "set", f"p-{name}", "up"], check=True)
        script = (f"mount --make-rprivate / && mount --bind {confdir} /etc/systemd/network"
                  " && mount -t tmpfs tmpfs /run/systemd && mkdir -p /run/dbus"
                  " && mount -t tmpfs tmpfs /run/dbus && mount -o remount,ro /sys"
                  f" && exec {NETWORKD}")
        res = subprocess.run(["timeout", str(seconds), "ip", "netns", "exec", ns, "unshare",
                              "-m", "sh", "-c", script], capture_output=True, text=True,
                             env=dict(os.environ, SYSTEMD_LOG_LEVEL="debug",
                                      SYSTEMD_LOG_TARGET="console"))
        addrs = json.loads(subprocess.run(["ip", "-n", ns, "-j", "addr"], check=True,
                                          capture_output=True, text=True).stdout)
        routes = json.loads(subprocess.run(["ip", "-n", ns, "-j", "route"], check=True,
                                           capture_output=True, text=True).stdout)
        return res.stdout + res.stderr, {a["ifname"]: a for a in addrs}, routes
    finally:
        subprocess.run(["ip", "netns", "delete", ns], check=False)


def our_complaints(log):
    return [line for line in log.splitlines()
            if "guestagent" in line and any(c in line for c in COMPLAINTS)]


@pytest.mark.parametrize("fixture", ["dhcp", "static-v4-v6", "two-nics-vlan", "ironic-bond",
                                     "slaac"])
def test_networkd_reads_every_file_without_a_complaint(tmp_path, fixture):
    log, _addrs, _routes = run_networkd(tmp_path, fixture, seconds=3)
    assert "Configuring with /etc/systemd/network/10-guestagent-" in log or \
        "Loaded" in log or "10-guestagent" in log, log[-2000:]
    assert our_complaints(log) == [], our_complaints(log)


def test_networkd_brings_up_the_static_nic_as_documented(tmp_path):
    log, addrs, routes = run_networkd(tmp_path, "static-v4-v6")
    eth0 = addrs["eth0"]
    have = {f"{a['local']}/{a['prefixlen']}" for a in eth0["addr_info"]
            if a.get("scope") == "global"}
    assert have == {"192.0.2.10/24", "2001:db8:1::10/64"}, log[-3000:]
    assert eth0["mtu"] == 9000
    assert {"dst": "default", "gateway": "192.0.2.1"}.items() <= \
        next(r for r in routes if r["dst"] == "default").items()
    assert any(r["dst"] == "198.51.100.0/24" and r["gateway"] == "192.0.2.254"
               for r in routes)


def test_networkd_leaves_a_nic_the_document_does_not_describe(tmp_path):
    log, addrs, _routes = run_networkd(tmp_path, "qemu-two-nics")
    assert "eth1: found matching network '/etc/systemd/network/10-guestagent-eth1.network'" \
        in log
    eth1 = addrs["eth1"]
    assert eth1["mtu"] == 1400
    assert {f"{a['local']}/{a['prefixlen']}" for a in eth1["addr_info"]
            if a.get("scope") == "global"} == {"192.168.77.5/24"}


# -- network-config ------------------------------------------------------------------

@pytest.mark.parametrize("fixture", ["netplan-on-link", "cloudinit-v1-bridge", "hetzner-v1",
                                     "proxmox-v1-two-nics"])
def test_networkd_reads_network_config_files_without_a_complaint(tmp_path, fixture):
    from test_network_config_render import MACHINES
    from test_network_config_render import render as render_nc
    plan, _ifaces, _config = render_nc(tmp_path, "networkd", fixture)
    log, _addrs, _routes = run_networkd(tmp_path, None, seconds=3, plan=plan,
                                        nics=MACHINES[fixture])
    assert "10-guestagent" in log, log[-2000:]
    assert our_complaints(log) == [], our_complaints(log)


def test_networkd_sets_the_on_link_default_route_and_the_metric(tmp_path):
    from test_network_config_render import MACHINES
    from test_network_config_render import render as render_nc
    plan, _ifaces, _config = render_nc(tmp_path, "networkd", "netplan-on-link")
    log, addrs, routes = run_networkd(tmp_path, None, plan=plan,
                                      nics=MACHINES["netplan-on-link"])
    assert {f"{a['local']}/{a['prefixlen']}" for a in addrs["ens3"]["addr_info"]
            if a.get("scope") == "global"} == {"10.10.10.1/24"}, log[-3000:]
    default = next(r for r in routes if r["dst"] == "default")
    assert default["gateway"] == "9.9.9.9" and "onlink" in default["flags"]
    metric = next(r for r in routes if r["dst"] == "192.168.5.0/24")
    assert (metric["gateway"], metric["metric"]) == ("10.10.10.254", 100)


def test_networkd_makes_the_bridge_with_its_port(tmp_path):
    from test_network_config_render import MACHINES
    from test_network_config_render import render as render_nc
    plan, _ifaces, _config = render_nc(tmp_path, "networkd", "cloudinit-v1-bridge")
    log, addrs, _routes = run_networkd(tmp_path, None, plan=plan,
                                       nics=MACHINES["cloudinit-v1-bridge"])
    assert addrs["ens4"].get("master") == "br0", log[-3000:]
    assert {f"{a['local']}/{a['prefixlen']}" for a in addrs["br0"]["addr_info"]
            if a.get("scope") == "global"} == {"192.168.14.2/24"}


if shutil.which("unshare") is None:  # pragma: no cover - util-linux is in apt-packages
    pytestmark.append(pytest.mark.skip(reason="unshare is not installed"))
