"""The network and resolv_conf steps given network-config v1/v2, on scratch roots:
NICs found by name, missing NICs named, bridges' ports left alone, netplan
handed the document as it is (and when it is not), DNS into resolv.conf."""

import logging
import os

import pytest
import yaml

from guestagent.datasources.network_config import parse
from guestagent.metadata import Metadata
from guestagent.steps import Skip, resolv_conf
from guestagent.steps import network as step
from guestagent.steps.network.apply import ASIDE_DIR

from support.network import make_nics
from support.step_context import StepContext

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures",
                        "network-config")
WANTS = "etc/systemd/system/multi-user.target.wants"


def fixture(name):
    with open(os.path.join(FIXTURES, f"{name}.yaml")) as f:
        return yaml.safe_load(f)


def ctx_for(root, doc, conf_text="", iid="i-1"):
    md = Metadata(source="nocloud", instance_id=iid, network=parse(doc))
    return StepContext(root, metadata=md, conf_text=conf_text)


def networkd_root(root):
    (root / WANTS).mkdir(parents=True, exist_ok=True)
    (root / WANTS / "systemd-networkd.service").write_text("")
    return root


def netplan_root(root, files):
    (root / "usr/sbin").mkdir(parents=True)
    (root / "usr/sbin/netplan").write_text("")
    np = root / "etc/netplan"
    np.mkdir(parents=True)
    for name, text in files.items():
        (np / name).write_text(text)
    return np


def test_proxmox_v1_on_a_networkd_image(tmp_path):
    root = networkd_root(tmp_path / "root")
    make_nics(root, {"ens18": "bc:24:11:5e:7a:01"})
    changes = step.run(ctx_for(root, fixture("proxmox-v1-static")))
    text = (root / "etc/systemd/network/10-guestagent-ens18.network").read_text()
    assert text.startswith("# Written by guestagent from the instance's network-config v1;")
    assert "Address=192.168.178.50/24\n" in text and "Gateway=192.168.178.1\n" in text
    assert changes == ["wrote /etc/systemd/network/10-guestagent-ens18.network (ens18: "
                       "192.168.178.50/24, 2001:db8:178::50/64)"]


def test_nics_the_document_names_but_the_machine_lacks_are_named(tmp_path, caplog):
    root = networkd_root(tmp_path / "root")
    make_nics(root, {"ens3": "52:54:00:00:00:03"})
    doc = {"version": 1, "config": [
        {"type": "physical", "name": "eth0", "mac_address": "52:54:00:00:00:99",
         "subnets": [{"type": "dhcp"}]},
        {"type": "physical", "name": "eth7", "subnets": [{"type": "dhcp"}]}]}
    with caplog.at_level(logging.WARNING), pytest.raises(Skip, match="no link in network-"
                                                         "config v1 matches"):
        step.run(ctx_for(root, doc))
    assert ("network-config v1 link 'eth0': no interface here has MAC 52:54:00:00:00:99"
            in caplog.text)
    assert "network-config v1 link 'eth7': no interface here is named 'eth7'" in caplog.text
    assert not (root / "etc/systemd/network").exists()


def test_a_glob_configures_every_nic_it_matches_and_the_bond_takes_the_documents_name(
        tmp_path):
    root = networkd_root(tmp_path / "root")
    make_nics(root, {"enp1s0": "52:54:00:00:0b:01", "enp2s0": "52:54:00:00:0b:02",
                     "ens5": "52:54:00:00:0b:05"})
    step.run(ctx_for(root, fixture("netplan-bond-vlan")))
    net = root / "etc/systemd/network"
    assert sorted(os.listdir(net)) == [
        "10-guestagent-bond0.netdev", "10-guestagent-bond0.network",
        "10-guestagent-enp1s0.network", "10-guestagent-enp2s0.network",
        "10-guestagent-vlan15.netdev", "10-guestagent-vlan15.network"]
    assert "Bond=bond0" in (net / "10-guestagent-enp2s0.network").read_text()
    assert "VLAN=vlan15" in (net / "10-guestagent-bond0.network").read_text()
    assert "Metric=50\n" in (net / "10-guestagent-vlan15.network").read_text()


def test_a_static_address_goes_on_one_nic_of_a_glob(tmp_path, caplog):
    root = networkd_root(tmp_path / "root")
    make_nics(root, {"ens3": "52:54:00:00:00:03", "ens4": "52:54:00:00:00:04"})
    doc = {"version": 2, "ethernets": {"all": {"match": {"name": "ens*"},
                                               "addresses": ["192.0.2.4/24"]}}}
    with caplog.at_level(logging.WARNING):
        step.run(ctx_for(root, doc))
    assert os.listdir(root / "etc/systemd/network") == ["10-guestagent-ens3.network"]
    assert "matches ens3, ens4; one static address belongs on one: using ens3" in caplog.text


def test_a_bridge_takes_its_port_from_the_image(tmp_path):
    root = tmp_path / "root"
    make_nics(root, {"ens3": "52:54:00:00:00:03", "ens4": "52:54:00:00:00:04"})
    (root / "etc/network/interfaces.d").mkdir(parents=True)
    image = ("auto lo\niface lo inet loopback\n\nauto ens3\niface ens3 inet dhcp\n\n"
             "auto ens4\niface ens4 inet dhcp\n")
    (root / "etc/network/interfaces").write_text(image)
    doc = {"version": 1, "config": [
        {"type": "physical", "name": "ens3"},
        {"type": "bridge", "name": "br0", "bridge_interfaces": ["ens3"],
         "subnets": [{"type": "dhcp"}]}]}
    changes = step.run(ctx_for(root, doc, conf_text="[network]\nrenderer = ifupdown\n"))
    main = (root / "etc/network/interfaces").read_text()
    assert "ens3" not in main and "iface ens4 inet dhcp" in main
    ours = (root / "etc/network/interfaces.d/50-guestagent").read_text()
    assert "# ens3: a port of br0\n" in ours
    assert "auto br0\niface br0 inet dhcp\n    bridge-ports ens3\n    bridge-stp off\n" in ours
    assert any("br0: bridge of ens3, ipv4 dhcp" in c for c in changes)


def test_a_bridge_missing_a_port_leaves_every_port_the_images(tmp_path, caplog):
    root = networkd_root(tmp_path / "root")
    make_nics(root, {"ens3": "52:54:00:00:00:03", "ens4": "52:54:00:00:00:04"})
    doc = {"version": 2, "ethernets": {"ens3": {}, "lan": {"match": {"name": "eth9"}},
                                       "ens4": {"dhcp4": True}},
           "bonds": {"bond0": {"interfaces": ["ens3"]}},
           "bridges": {"br0": {"interfaces": ["bond0", "lan"], "dhcp4": True}},
           "vlans": {"v5": {"id": 5, "link": "br0"}}}
    with caplog.at_level(logging.WARNING):
        step.run(ctx_for(root, doc))
    assert os.listdir(root / "etc/systemd/network") == ["10-guestagent-ens4.network"]
    assert ("network-config v2 bridge 'br0': a port is missing; leaving the bridge and its "
            "ports as the image has them") in caplog.text
    assert "VLAN 'v5': its parent link is not here" in caplog.text


def test_netplan_gets_the_v2_document_as_it_is(tmp_path):
    root = tmp_path / "root"
    make_nics(root, {"ens3": "52:54:00:4b:1c:8e", "ens4": "52:54:00:a1:33:07"})
    np = netplan_root(root, {"50-cloud-init.yaml": "network:\n  version: 2\n  ethernets:\n"
                             "    ens3: {dhcp4: true}\n"})
    changes = step.run(ctx_for(root, fixture("multipass-v2")))
    ours = yaml.safe_load((np / "90-guestagent.yaml").read_text())
    assert ours == {"network": fixture("multipass-v2")}
    assert os.listdir(np) == ["90-guestagent.yaml"]
    assert (root / ASIDE_DIR.lstrip("/") / "etc/netplan/50-cloud-init.yaml").exists()
    assert any("network-config v2 as it is" in c for c in changes)


def test_netplan_gets_the_model_when_an_image_file_shares_a_nic(tmp_path, caplog):
    root = tmp_path / "root"
    make_nics(root, {"ens3": "52:54:00:4b:1c:8e", "ens4": "52:54:00:a1:33:07",
                     "ens9": "52:54:00:00:00:09"})
    np = netplan_root(root, {"60-mixed.yaml": "network:\n  version: 2\n  ethernets:\n"
                             "    ens4: {dhcp4: true}\n    ens9: {dhcp4: true}\n"})
    with caplog.at_level(logging.INFO):
        step.run(ctx_for(root, fixture("multipass-v2")))
    ours = (np / "90-guestagent.yaml").read_text()
    assert '"ens3"' in ours and "ens4" not in ours and "set-name" not in ours
    assert "not handing the network-config to netplan as it is" in caplog.text
    assert (np / "60-mixed.yaml").exists()


def test_dns_from_network_config_reaches_the_dhclient_hook_that_keeps_it(tmp_path):
    root = tmp_path / "root"
    (root / "usr/sbin").mkdir(parents=True)
    (root / "usr/sbin/dhclient").write_text("")
    (root / "etc/dhcp/dhclient-enter-hooks.d").mkdir(parents=True)
    doc = fixture("hetzner-v1")
    changes = resolv_conf.run(ctx_for(root, doc))
    text = (root / "etc/resolv.conf").read_text()
    servers = [ln.split()[1] for ln in text.splitlines() if ln.startswith("nameserver")]
    assert servers == ["185.12.64.1", "185.12.64.2", "2a01:4ff:ff00::add:2",
                       "2a01:4ff:ff00::add:1"]
    assert any("dhclient keeps the metadata's resolv.conf at every lease" in c
               for c in changes)


def test_clean_knows_the_agents_files_from_network_config_too(tmp_path):
    # a second instance moves the first one's network-config file aside; clean
    # must drop that copy (the agent's), not restore it as the image's own
    from guestagent.clean import network as clean_network
    from guestagent.system import System
    root = networkd_root(tmp_path / "root")
    make_nics(root, {"ens18": "bc:24:11:5e:7a:01"})
    step.run(ctx_for(root, fixture("proxmox-v1-static"), iid="i-1"))
    ours = "/etc/systemd/network/10-guestagent-ens18.network"
    aside = root / ASIDE_DIR.lstrip("/") / ours.lstrip("/")
    aside.parent.mkdir(parents=True)
    aside.write_text((root / ours.lstrip("/")).read_text())
    actions = {(a.verb, a.path) for a in clean_network.find(System(str(root)))
               if hasattr(a, "verb")}
    assert ("remove", ours) in actions
    assert ("remove", ASIDE_DIR + ours) in actions
    assert not any(verb == "restore" for verb, _path in actions)
