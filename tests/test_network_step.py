"""The network step on scratch roots: the model, the stack it picks, and the
rules that keep an instance at least as reachable as without the agent."""

import json
import logging
import os

import pytest

from guestagent.datasources.network_data import parse
from guestagent.metadata import Metadata
from guestagent.metadata import netconfig as nc
from guestagent.steps import Skip
from guestagent.steps import network as step
from guestagent.steps.network.apply import ASIDE_DIR

from support.network import make_nics, nova_doc
from support.step_context import StepContext, agent_conf, config_drive

IMAGE_DHCP = "[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n"
WANTS = "etc/systemd/system/multi-user.target.wants"


def networkd_root(root):
    (root / WANTS).mkdir(parents=True, exist_ok=True)
    (root / WANTS / "systemd-networkd.service").write_text("")
    (root / "etc/systemd/network").mkdir(parents=True, exist_ok=True)
    (root / "etc/systemd/network/80-dhcp.network").write_text(IMAGE_DHCP)
    return root


def ifupdown_root(root, interfaces):
    (root / "etc/network/interfaces.d").mkdir(parents=True, exist_ok=True)
    (root / "etc/network/interfaces").write_text(interfaces)
    return root


def ctx_for(root, doc, conf_text="", iid="i-1"):
    md = Metadata(source="test", instance_id=iid, network=parse(doc))
    return StepContext(root, metadata=md, conf_text=conf_text)


# -- the model -------------------------------------------------------------------

def test_model_from_nova_static_fixture():
    config = parse(nova_doc("static-v4-v6"))
    (link,) = config.links
    assert (link.kind, link.mac, link.mtu, link.vif_type) == (nc.PHY, "fa:16:3e:11:22:33",
                                                             9000, "ovs")
    v4, v6 = config.subnets
    assert (v4.family, v4.method, v4.address) == (4, nc.STATIC, "192.0.2.10/24")
    assert [r.to_dict() for r in v4.routes] == [
        {"destination": "0.0.0.0/0", "gateway": "192.0.2.1"},
        {"destination": "198.51.100.0/24", "gateway": "192.0.2.254"}]
    assert (v6.family, v6.method, v6.address) == (6, nc.STATIC, "2001:db8:1::10/64")
    assert v4.nameservers == ["192.0.2.53", "2001:db8:1::53"]


def test_model_bond_vlan_slaac_and_dhcp():
    bond = parse(nova_doc("ironic-bond")).links[0]
    assert (bond.kind, bond.bond_mode, bond.bond_options) == (
        nc.BOND, "802.3ad", {"miimon": 100, "xmit_hash_policy": "layer3+4",
                             "lacp_rate": "fast"})
    vlan = parse(nova_doc("two-nics-vlan")).link("vlan100")
    assert (vlan.kind, vlan.vlan_id, vlan.vlan_link) == (nc.VLAN, 100, "tap22222222-aa")
    slaac = parse(nova_doc("slaac")).subnets
    assert [(s.family, s.method) for s in slaac] == [(4, nc.DHCP), (6, nc.SLAAC)]


def test_model_round_trips_through_the_store():
    md = Metadata(source="t", instance_id="i", network=parse(nova_doc("two-nics-vlan")))
    again = Metadata.from_dict(json.loads(json.dumps(md.to_dict())))
    assert again.network.to_dict() == md.network.to_dict()
    assert md.public_dict()["network"]["links"][2]["vlan_id"] == 100


def test_unusable_parts_are_warned_about_by_name_never_a_traceback(caplog):
    doc = {"links": [
        {"id": "a", "type": "phy", "ethernet_mac_address": "fa:16:3e:00:00:0a"},
        {"id": "weird", "type": "infiniband-ish", "ethernet_mac_address": "fa:16:3e:0:0:b"},
        {"id": "nomac", "type": "ovs"},
        {"id": "v", "type": "vlan", "vlan_link": "weird", "vlan_id": 5},
        {"id": "b", "type": "bond", "bond_links": ["a"], "bond_mode": "sideways"},
        {"id": "m", "type": "phy", "ethernet_mac_address": "fa:16:3e:00:00:0c", "mtu": 5},
    ], "networks": [
        {"id": "n1", "type": "ipv4", "link": "a", "ip_address": "10.0.0.300",
         "netmask": "255.255.255.0"},
        {"id": "n2", "type": "ipv5", "link": "a"},
        {"id": "n3", "type": "ipv4", "link": "v", "ip_address": "10.0.0.3",
         "netmask": "255.255.255.0"},
        {"id": "n4", "type": "ipv4", "link": "a", "ip_address": "10.0.0.4",
         "netmask": "255.0.255.0"},
        {"id": "n5", "type": "ipv4_dhcp", "link": "a"},
    ], "services": [{"type": "dns", "address": "not-an-ip\nnameserver 6.6.6.6"}]}
    with caplog.at_level(logging.WARNING):
        config = parse(doc)
    assert [x.id for x in config.links] == ["a"]
    assert [s.id for s in config.subnets] == ["n5"]
    assert config.nameservers == []  # the resolv_conf step warns about it by name
    text = caplog.text
    for expected in ("unknown link type 'infiniband-ish'", "'nomac': no ethernet_mac_address",
                     "'v'", "unknown bond_mode 'sideways'", "mtu 5", "'n1'",
                     "unknown type 'ipv5'", "'n3'", "'n4'"):
        assert expected in text, expected
    assert "\nnameserver 6.6.6.6" not in text


def test_a_mac_no_interface_has_is_named_and_left_out(tmp_path, caplog):
    root = networkd_root(tmp_path / "root")
    make_nics(root, {"eth0": "52:54:00:00:00:01"})
    ctx = ctx_for(root, nova_doc("static-v4-v6"))
    with caplog.at_level(logging.WARNING), pytest.raises(Skip, match="no link"):
        step.run(ctx)
    assert "no interface here has MAC fa:16:3e:11:22:33" in caplog.text


# -- choosing the stack -------------------------------------------------------------

@pytest.mark.parametrize("layout, expect", [
    ({WANTS + "/systemd-networkd.service": ""}, "networkd"),
    ({WANTS + "/NetworkManager.service": ""}, "networkmanager"),
    ({WANTS + "/NetworkManager.service": "",
      "etc/sysconfig/network-scripts/ifcfg-eth0": "DEVICE=eth0\n"}, "ifcfg"),
    ({"etc/init.d/network": "", "etc/sysconfig/network-scripts/ifcfg-lo": ""}, "ifcfg"),
    ({"usr/sbin/netplan": "", "etc/netplan/50-cloud-init.yaml": ""}, "netplan"),
    ({"etc/network/interfaces": "auto lo\n"}, "ifupdown"),
])
def test_the_stack_is_the_one_the_image_uses(tmp_path, layout, expect):
    from guestagent.steps.network.stack import detect
    from guestagent.system import System
    for path, text in layout.items():
        p = tmp_path / path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    assert detect(System(str(tmp_path)))[0] == expect


def test_no_known_stack_is_a_skip_that_says_so(tmp_path):
    make_nics(tmp_path, {"eth0": "fa:16:3e:11:22:33"})
    with pytest.raises(Skip, match="no network stack"):
        step.run(ctx_for(tmp_path, nova_doc("static-v4-v6")))


# -- never less reachable ---------------------------------------------------------------

def test_networkd_static_nic_written_and_undescribed_nic_untouched(tmp_path):
    root = networkd_root(tmp_path / "root")
    make_nics(root, {"eth0": "fa:16:3e:11:22:33", "eth9": "52:54:00:99:99:99"})
    changes = step.run(ctx_for(root, nova_doc("static-v4-v6")))
    ours = root / "etc/systemd/network/10-guestagent-eth0.network"
    assert "Address=192.0.2.10/24" in ours.read_text()
    assert any(c.startswith(f"wrote /{ours.relative_to(root)} (eth0: 192.0.2.10/24")
               for c in changes), changes
    # eth9 is not in the document: it still matches only the image's own file
    assert (root / "etc/systemd/network/80-dhcp.network").read_text() == IMAGE_DHCP
    assert sorted(os.listdir(root / "etc/systemd/network")) == [
        "10-guestagent-eth0.network", "80-dhcp.network"]


def test_ipv4_dhcp_stays_dhcp_in_every_stack(tmp_path):
    for renderer in ("ifupdown", "networkd", "networkmanager", "ifcfg", "netplan"):
        root = tmp_path / renderer
        make_nics(root, {"eth0": "fa:16:3e:9c:bf:3d"})
        ctx = ctx_for(root, nova_doc("dhcp"), conf_text=f"[network]\nrenderer = {renderer}\n")
        step.run(ctx)
        text = "".join(p.read_text() for p in root.rglob("*")
                       if p.is_file() and "sys" not in p.parts)
        assert any(x in text for x in ("DHCP=ipv4", "inet dhcp", "[ipv4]\nmethod=auto\n",
                                       "BOOTPROTO=dhcp", "dhcp4: true")), renderer
        # Nova leaves the MTU to DHCP there; nothing forces one
        assert "mtu" not in text.lower(), renderer


def test_ifupdown_replaces_only_the_described_stanzas_and_keeps_the_original(tmp_path):
    original = ("# image's file\nsource /etc/network/interfaces.d/*\n\nauto lo\n"
                "iface lo inet loopback\n\nallow-hotplug eth0 eth9\niface eth0 inet dhcp\n"
                "    hostname old\n\niface eth9 inet dhcp\n")
    root = ifupdown_root(tmp_path / "root", original)
    make_nics(root, {"eth0": "fa:16:3e:11:22:33", "eth9": "52:54:00:99:99:99"})
    changes = step.run(ctx_for(root, nova_doc("static-v4-v6"),
                               conf_text="[network]\nrenderer = ifupdown\n"))
    now = (root / "etc/network/interfaces").read_text()
    assert "iface eth0" not in now and "hostname old" not in now
    assert "allow-hotplug eth9\n" in now and "iface eth9 inet dhcp" in now
    assert "iface lo inet loopback" in now
    kept = root / ASIDE_DIR.lstrip("/") / "etc/network/interfaces"
    assert kept.read_text() == original
    assert f"moved /etc/network/interfaces aside to {ASIDE_DIR}/etc/network/interfaces" \
        in changes
    ours = (root / "etc/network/interfaces.d/50-guestagent").read_text()
    assert "iface eth0 inet static" in ours and "address 192.0.2.10/24" in ours


def test_networkmanager_profile_for_the_same_nic_is_moved_aside(tmp_path):
    root = tmp_path / "root"
    make_nics(root, {"eth0": "fa:16:3e:11:22:33", "eth9": "52:54:00:99:99:99"})
    conns = root / "etc/NetworkManager/system-connections"
    conns.mkdir(parents=True)
    (conns / "cloud-eth0.nmconnection").write_text(
        "[connection]\nid=cloud\ntype=ethernet\ninterface-name=eth0\n")
    (conns / "other.nmconnection").write_text(
        "[connection]\nid=other\ntype=ethernet\ninterface-name=eth9\n")
    changes = step.run(ctx_for(root, nova_doc("static-v4-v6"),
                               conf_text="[network]\nrenderer = networkmanager\n"))
    assert sorted(os.listdir(conns)) == ["guestagent-eth0.nmconnection", "other.nmconnection"]
    assert (root / ASIDE_DIR.lstrip("/") / "etc/NetworkManager/system-connections"
            / "cloud-eth0.nmconnection").exists()
    assert any("cloud-eth0.nmconnection aside" in c for c in changes)
    assert oct(os.stat(conns / "guestagent-eth0.nmconnection").st_mode & 0o777) == "0o600"


def test_netplan_file_shared_with_other_nics_leaves_those_nics_alone(tmp_path, caplog):
    root = tmp_path / "root"
    make_nics(root, {"eth0": "fa:16:3e:00:00:01", "eth1": "fa:16:3e:00:00:02",
                     "eth9": "52:54:00:99:99:99"})
    np = root / "etc/netplan"
    np.mkdir(parents=True)
    (np / "50-cloud-init.yaml").write_text(
        "network:\n  version: 2\n  ethernets:\n    eth0:\n      dhcp4: true\n")
    (np / "60-mixed.yaml").write_text(
        "network:\n  version: 2\n  ethernets:\n    eth1: {dhcp4: true}\n"
        "    eth9: {dhcp4: true}\n")
    with caplog.at_level(logging.WARNING):
        changes = step.run(ctx_for(root, nova_doc("two-nics-vlan"),
                                   conf_text="[network]\nrenderer = netplan\n"))
    ours = (np / "90-guestagent.yaml").read_text()
    assert '"eth0"' in ours and '"eth1"' not in ours and "eth1.100" not in ours
    assert (np / "60-mixed.yaml").exists() and not (np / "50-cloud-init.yaml").exists()
    assert "leaving eth1 as the image configures them" in caplog.text
    assert any("50-cloud-init.yaml aside" in c for c in changes)


def test_ifcfg_replaces_the_nic_file_and_keeps_the_old_one(tmp_path):
    root = tmp_path / "root"
    make_nics(root, {"eth0": "fa:16:3e:11:22:33"})
    scripts = root / "etc/sysconfig/network-scripts"
    scripts.mkdir(parents=True)
    (scripts / "ifcfg-eth0").write_text("DEVICE=eth0\nBOOTPROTO=dhcp\n")
    step.run(ctx_for(root, nova_doc("static-v4-v6"), conf_text="[network]\nrenderer = ifcfg\n"))
    assert "IPADDR=192.0.2.10" in (scripts / "ifcfg-eth0").read_text()
    assert (root / ASIDE_DIR.lstrip("/") / "etc/sysconfig/network-scripts/ifcfg-eth0"
            ).read_text() == "DEVICE=eth0\nBOOTPROTO=dhcp\n"


def test_a_new_instance_moves_the_earlier_instances_files_aside(tmp_path):
    root = networkd_root(tmp_path / "root")
    make_nics(root, {"eth0": "fa:16:3e:00:00:01", "eth1": "fa:16:3e:00:00:02"})
    step.run(ctx_for(root, nova_doc("two-nics-vlan"), iid="i-1"))
    assert (root / "etc/systemd/network/10-guestagent-eth1.100.netdev").exists()
    doc = nova_doc("dhcp")
    doc["links"][0]["ethernet_mac_address"] = "fa:16:3e:00:00:01"
    changes = step.run(ctx_for(root, doc, iid="i-2"))
    assert sorted(os.listdir(root / "etc/systemd/network")) == [
        "10-guestagent-eth0.network", "80-dhcp.network"]
    assert any("10-guestagent-eth1.100.netdev aside" in c for c in changes)


def test_switched_off_by_config_and_by_the_kernel_command_line(tmp_path):
    root = networkd_root(tmp_path / "root")
    make_nics(root, {"eth0": "fa:16:3e:11:22:33"})
    with pytest.raises(Skip, match="enabled = no"):
        step.run(ctx_for(root, nova_doc("static-v4-v6"), conf_text="[network]\nenabled = no\n"))
    (root / "proc").mkdir()
    (root / "proc/cmdline").write_text("root=/dev/vda1 guestagent.network=off quiet\n")
    with pytest.raises(Skip, match="guestagent.network=off"):
        step.run(ctx_for(root, nova_doc("static-v4-v6")))
    assert sorted(os.listdir(root / "etc/systemd/network")) == ["80-dhcp.network"]


def test_query_shows_the_model_and_status_says_what_was_written(tmp_path, run_agent, root):
    networkd_root(root)
    make_nics(root, {"eth0": "fa:16:3e:11:22:33"})
    drive = config_drive(tmp_path / "drive", {"hostname": "net"},
                         network_data=nova_doc("static-v4-v6"))
    conf = agent_conf(tmp_path / "agent.conf", drive=drive)
    run_agent("--once", "--root", root, "--config", conf, "--only", "network", check=True)
    q = run_agent("query", "network", "--json", "--root", root, "--config", conf, check=True)
    model = json.loads(q.stdout)
    assert model["networks"][0]["address"] == "192.0.2.10/24"
    assert model["links"][0]["mac"] == "fa:16:3e:11:22:33"
    st = json.loads(run_agent("status", "--json", "--root", root, check=True).stdout)
    (net,) = [s for s in st["last"]["steps"] if s["name"] == "network"]
    assert net["result"] == "changed"
    assert any(c.startswith("wrote /etc/systemd/network/10-guestagent-eth0.network")
               for c in net["changes"])


@pytest.mark.parametrize("renderer, path", [
    ("ifupdown", "etc/network/interfaces.d/50-guestagent"),
    ("netplan", "etc/netplan/90-guestagent.yaml"),
    ("networkd", "etc/systemd/network/10-guestagent-eth0.network"),
])
def test_a_new_instance_without_a_network_drops_the_earlier_static_address(
        tmp_path, renderer, path):
    root = tmp_path / "root"
    make_nics(root, {"eth0": "fa:16:3e:11:22:33"})
    (root / "etc/network").mkdir(parents=True)
    (root / "etc/network/interfaces").write_text(
        "source /etc/network/interfaces.d/*\nauto lo\niface lo inet loopback\n")
    conf = f"[network]\nrenderer = {renderer}\n"
    step.run(ctx_for(root, nova_doc("static-v4-v6"), conf_text=conf, iid="i-1"))
    assert "192.0.2.10" in (root / path).read_text()
    interfaces = (root / "etc/network/interfaces").read_text()
    changes = step.run(ctx_for(root, {}, conf_text=conf, iid="i-2"))
    assert not (root / path).exists()
    assert changes == [f"moved /{path} aside to {ASIDE_DIR}/{path}"]
    assert (root / "etc/network/interfaces").read_text() == interfaces
