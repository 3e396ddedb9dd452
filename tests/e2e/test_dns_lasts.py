"""The metadata's DNS servers last on an image whose DHCP client owns resolv.conf.

The image is networked as Debian's cloud images are: ifupdown runs
isc-dhcp-client on eth0, and dhclient-script rewrites /etc/resolv.conf at the
lease and at every renewal (QEMU's DHCP hands out 10.0.2.3).  Every DNS origin
(network_data.json ``services`` of type dns, ``#cloud-config`` ``resolv_conf``)
on every source (config drive: the agent writes before the lease; metadata
service: after it) is checked once the boot has settled (``systemctl
is-system-running --wait``) and again after ``dhclient -r; dhclient`` with
ifupdown's own pid and lease files.
"""

import re
import time
import uuid

import pytest
from checks import DISK, all_steps, check_no_failed_units, check_settled, status, write_instance

import harness

pytestmark = [pytest.mark.e2e, pytest.mark.root]

QEMU_DHCP_DNS = "10.0.2.3"
NETWORK_DATA_DNS = ["192.0.2.21", "192.0.2.22"]
CLOUD_CONFIG_DNS = ["192.0.2.31", "192.0.2.32"]
CLOUD_CONFIG = """\
#cloud-config
manage_resolv_conf: true
resolv_conf:
  nameservers: [192.0.2.31, 192.0.2.32]
  searchdomains: [cc.example]
  options: {rotate: true}
"""
DHCLIENT = "-pf /run/dhclient.eth0.pid -lf /var/lib/dhcp/dhclient.eth0.leases"  # ifup's files
LEASES = "/var/lib/dhcp/dhclient.eth0.leases"


@pytest.fixture(scope="module")
def dhclient_image(e2e_dir, deb, keys):
    out = e2e_dir / "image-ifupdown"
    yield harness.build_image(out, deb, "plain", root_key=keys["debug"] + ".pub",
                              net="ifupdown")


CASES = {
    # name: (source, network_data dns, user-data, expected servers)
    "configdrive-network_data": ("configdrive", NETWORK_DATA_DNS, None, NETWORK_DATA_DNS),
    "configdrive-cloud_config": ("configdrive", ["192.0.2.29"], CLOUD_CONFIG,
                                 CLOUD_CONFIG_DNS),
    "metadata-network_data": ("metadata", NETWORK_DATA_DNS, None, NETWORK_DATA_DNS),
    "metadata-cloud_config": ("metadata", [], CLOUD_CONFIG, CLOUD_CONFIG_DNS),
}


@pytest.fixture(scope="class", params=sorted(CASES))
def dns_guest(request, dhclient_image, keys, e2e_dir):
    name = request.param
    source, dns, user_data, expect = CASES[name]
    d = e2e_dir / f"dns-{name}"
    u = str(uuid.uuid4())
    tree = write_instance(d / "tree", u, "dns-guest.novalocal",
                          [harness.public_key(keys["user"])],
                          user_data=user_data.encode() if user_data else None, dns=dns)
    kw = {"metadata_tree": tree} if source == "metadata" else \
        {"config_drive": harness.config_drive_iso(tree, d / "config-2.iso")}
    with harness.Guest(dhclient_image, d / "vm", f"dns-{name}", key=keys["user"],
                       root_key=keys["debug"], disk_size=DISK, instance_uuid=u, **kw) as g:
        g.wait_ssh()
        g.report_boot()
        g.expected_dns = expect
        g.cloud_config = user_data is not None
        yield g


def nameservers(guest):
    text = guest.ssh("cat /etc/resolv.conf").stdout
    return re.findall(r"^nameserver\s+(\S+)", text, re.M), text


def check_dns(guest, when):
    servers, text = nameservers(guest)
    assert servers == guest.expected_dns, f"{when}: /etc/resolv.conf is\n{text}"
    if guest.cloud_config:
        assert re.search(r"^search\s+cc\.example$", text, re.M), f"{when}:\n{text}"
        assert re.search(r"^options\s+.*\brotate\b", text, re.M), f"{when}:\n{text}"


def leases(guest):
    return int(guest.ssh(f"sudo -n grep -c '^lease ' {LEASES} || true").stdout.strip() or 0)


class TestDnsLasts:
    def test_dhclient_owns_the_network(self, dns_guest):
        assert leases(dns_guest) >= 1, "no dhclient lease: the image is not on ifupdown"
        assert dns_guest.ssh("systemctl is-enabled systemd-networkd.service",
                             check=False).stdout.strip() != "enabled"

    def test_after_the_boot_settles(self, dns_guest):
        check_settled(dns_guest)
        check_dns(dns_guest, "after the boot settled")
        steps = [s for s in all_steps(status(dns_guest)) if s["name"] == "resolv_conf"]
        assert steps and steps[0]["result"] == "changed", steps
        assert any("dhclient" in c for s in steps for c in s["changes"]), steps

    def test_after_a_lease_renewal(self, dns_guest):
        before = leases(dns_guest)
        # the release drops eth0's address (and this connection with it): run
        # it detached, then log in again once dhclient has a new lease
        dns_guest.ssh(f"sudo -n setsid sh -c 'dhclient -r {DHCLIENT} eth0; sleep 1; "
                      f"dhclient {DHCLIENT} eth0' >/dev/null 2>&1 </dev/null &")
        deadline = time.monotonic() + 120
        while True:
            time.sleep(3)
            try:
                if leases(dns_guest) > before:
                    break
            except AssertionError:
                pass  # not reachable while the address is away
            assert time.monotonic() < deadline, "no new dhclient lease within 120 s"
        check_dns(dns_guest, "after dhclient -r; dhclient")
        check_no_failed_units(dns_guest)
