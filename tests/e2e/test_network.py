"""Boots whose network comes from network_data.json (Nova's own fixtures).

  static    a config drive giving the only NIC 10.0.2.42/24, gateway 10.0.2.2:
            an address QEMU's DHCP (10.0.2.15) never hands out.  SSH is
            forwarded to 10.0.2.42 only, so logging in at all proves the NIC
            came up as documented; then no DHCP address, and the default
            route via the document's gateway.
  two-nics  the first NIC by DHCP, the second static (192.168.77.5/24, MTU 1400)
            on a second, isolated QEMU network.
  live      the same two NICs, from the metadata service: the network that
            reached it stays, and the second NIC's static address and MTU are
            configured live (netlink) as well as written for the next boot.

Checks run after `systemctl is-system-running --wait`, so systemd-networkd
(the image's stack) has acted on what the agent wrote.
"""

import json
import os
import uuid

import pytest

import harness

pytestmark = [pytest.mark.e2e, pytest.mark.root]

NOVA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                    "fixtures", "nova")


def nova_doc(name):
    with open(os.path.join(NOVA, f"{name}.json")) as f:
        return json.load(f)


def tree(tmp, instance_uuid, hostname, key, network_data):
    base = tmp / "drive" / "openstack" / "latest"
    base.mkdir(parents=True)
    meta = {"uuid": instance_uuid, "name": hostname, "hostname": hostname,
            "availability_zone": "nova", "launch_index": 0, "project_id": "e2e",
            "public_keys": {"e2e": key + "\n"}}
    (base / "meta_data.json").write_text(json.dumps(meta))
    (base / "network_data.json").write_text(json.dumps(network_data))
    (base / "vendor_data.json").write_text("{}")
    return tmp / "drive"


def drive(tmp, instance_uuid, hostname, key, network_data):
    top = tree(tmp, instance_uuid, hostname, key, network_data)
    return harness.config_drive_iso(top, tmp / "config-2.iso")


def settled(guest):
    # "degraded" is an answer too; what matters is that the boot finished
    guest.ssh("sudo -n systemctl is-system-running --wait", check=False, timeout=300)


def addresses(guest):
    links = json.loads(guest.ssh("ip -j addr show").stdout)
    return {link["address"]: link for link in links if link.get("address")}


def ipv4(link):
    return {f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", [])
            if a.get("family") == "inet"}


@pytest.fixture(scope="class")
def static_guest(plain_image, keys, e2e_dir):
    d = e2e_dir / "net-static"
    u = str(uuid.uuid4())
    iso = drive(d, u, "net-static", harness.public_key(keys["user"]),
                nova_doc("qemu-static"))
    with harness.Guest(plain_image, d / "vm", "net-static", key=keys["user"],
                       root_key=keys["debug"], config_drive=iso, instance_uuid=u,
                       ssh_to="10.0.2.42") as g:
        g.wait_ssh()
        g.report_boot()
        settled(g)
        yield g


class TestStaticAddress:
    def test_reachable_only_at_the_documented_address(self, static_guest):
        nic = addresses(static_guest)[harness.FIRST_MAC]
        assert ipv4(nic) == {"10.0.2.42/24"}, nic  # no 10.0.2.15 from DHCP

    def test_default_route_via_the_documents_gateway(self, static_guest):
        routes = json.loads(static_guest.ssh("ip -j -4 route show default").stdout)
        assert [r.get("gateway") for r in routes] == ["10.0.2.2"], routes

    def test_status_names_the_file_and_networkd_uses_it(self, static_guest):
        st = json.loads(static_guest.ssh("sudo -n guestagent status --json").stdout)
        steps = [s for r in st["runs"] for s in r["steps"] if s["name"] == "network"]
        assert steps and steps[0]["result"] == "changed", steps
        (written,) = [c for c in steps[0]["changes"]
                      if c.startswith("wrote /etc/systemd/network/10-guestagent-")]
        path = written.split()[1]
        name = path.rsplit("10-guestagent-", 1)[1][:-len(".network")]
        # networkd's own record of the file it configured the link with (no
        # D-Bus needed, unlike networkctl)
        state = static_guest.ssh(f"cat /run/systemd/netif/links/$(cat "
                                 f"/sys/class/net/{name}/ifindex)").stdout
        assert f"NETWORK_FILE={path}\n" in state, state
        # the stored metadata is root's (it holds secrets)
        assert "10.0.2.42" in static_guest.ssh("sudo -n guestagent query network --json").stdout


@pytest.fixture(scope="class")
def two_nic_guest(plain_image, keys, e2e_dir):
    d = e2e_dir / "net-two"
    u = str(uuid.uuid4())
    iso = drive(d, u, "net-two", harness.public_key(keys["user"]),
                nova_doc("qemu-two-nics"))
    with harness.Guest(plain_image, d / "vm", "net-two", key=keys["user"],
                       root_key=keys["debug"], config_drive=iso, instance_uuid=u,
                       extra_nics=[("52:54:00:12:34:57", "192.168.77.0/24")]) as g:
        g.wait_ssh()
        g.report_boot()
        settled(g)
        yield g


class TestTwoNics:
    def test_first_nic_by_dhcp(self, two_nic_guest):
        assert ipv4(addresses(two_nic_guest)[harness.FIRST_MAC]) == {"10.0.2.15/24"}

    def test_second_nic_static_with_its_mtu(self, two_nic_guest):
        nic = addresses(two_nic_guest)["52:54:00:12:34:57"]
        assert ipv4(nic) == {"192.168.77.5/24"}, nic
        assert nic["mtu"] == 1400
        assert "UP" in nic["flags"]


@pytest.fixture(scope="class")
def live_guest(plain_image, keys, e2e_dir):
    d = e2e_dir / "net-live"
    u = str(uuid.uuid4())
    top = tree(d, u, "net-live", harness.public_key(keys["user"]), nova_doc("qemu-two-nics"))
    with harness.Guest(plain_image, d / "vm", "net-live", key=keys["user"],
                       root_key=keys["debug"], metadata_tree=top, instance_uuid=u,
                       extra_nics=[("52:54:00:12:34:57", "192.168.77.0/24")]) as g:
        g.wait_ssh()
        g.report_boot()
        settled(g)
        yield g


class TestMetadataServiceLive:
    def test_the_network_that_reached_the_service_stays(self, live_guest):
        assert ipv4(addresses(live_guest)[harness.FIRST_MAC]) == {"10.0.2.15/24"}
        routes = json.loads(live_guest.ssh("ip -j -4 route show default").stdout)
        assert [r.get("gateway") for r in routes] == ["10.0.2.2"], routes

    def test_second_nic_configured_live_and_for_the_next_boot(self, live_guest):
        nic = addresses(live_guest)["52:54:00:12:34:57"]
        assert "192.168.77.5/24" in ipv4(nic), nic
        assert nic["mtu"] == 1400
        st = json.loads(live_guest.ssh("sudo -n guestagent status --json").stdout)
        (step,) = [s for r in st["runs"] for s in r["steps"] if s["name"] == "network"]
        changes = "\n".join(step["changes"])
        assert "added 192.168.77.5/24 (live)" in changes, changes
        assert "wrote /etc/systemd/network/10-guestagent-" in changes, changes
