"""The metadata's DNS servers last on an image whose DHCP client owns resolv.conf.

The image (``--net ifupdown``) is networked as Debian's cloud images are:
ifupdown runs isc-dhcp-client on eth0, and dhclient-script rewrites
/etc/resolv.conf at the lease and at every renewal (QEMU's DHCP hands out
10.0.2.3).  Each DNS origin (network_data.json ``services`` of type dns,
``#cloud-config`` ``resolv_conf``) on each source (config drive: the agent
writes before the lease; metadata service: after it) is checked once the boot
has settled (``systemctl is-system-running --wait``) and again after
``dhclient -r; dhclient`` with ifup's own pid and lease files.

One boot per scenario.  The fourth combination, network_data.json from the
config drive (the issue's lost-DNS boot), is test_lvm_spacer.py's boot, which
also reboots it: CI covers each origin and each source, with the agent
writing before and after the lease, in two boots; ``tests/e2e/run --matrix``
adds the other two.
"""

import uuid

import pytest
from checks import (
    DISK,
    check_dhclient_owns_the_network,
    check_no_failed_units,
    check_resolv_conf,
    check_resolv_conf_step_lasts,
    check_settled,
    renew_dhcp_lease,
    status,
    write_instance,
)

import harness

pytestmark = [pytest.mark.e2e, pytest.mark.root]

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

# name: where the metadata comes from, network_data.json's DNS servers, the
# user-data, and whether a plain run (CI) boots it (see scenarios.py).
# #cloud-config resolv_conf wins over network_data.json field by field, so
# the config-drive case also gives network_data a server that must not show.
IMAGE = dict(net="ifupdown")
MATRIX = {
    "dns-metadata-cloud_config": dict(image=IMAGE, source="metadata", dns=[],
                                      user_data=CLOUD_CONFIG, ci=True),
    "dns-configdrive-cloud_config": dict(image=IMAGE, source="configdrive",
                                         dns=["192.0.2.29"], user_data=CLOUD_CONFIG, ci=False),
    "dns-metadata-network_data": dict(image=IMAGE, source="metadata", dns=NETWORK_DATA_DNS,
                                      user_data=None, ci=False),
}


@pytest.fixture(scope="class", params=sorted(MATRIX))
def dns_guest(request, variant_image, keys, e2e_dir):
    name = request.param
    spec = MATRIX[name]
    image = variant_image(**spec["image"])
    d = e2e_dir / name
    u = str(uuid.uuid4())
    user_data = spec["user_data"]
    tree = write_instance(d / "tree", u, "dns-guest.novalocal",
                          [harness.public_key(keys["user"])],
                          user_data=user_data.encode() if user_data else None, dns=spec["dns"])
    kw = {"metadata_tree": tree} if spec["source"] == "metadata" else \
        {"config_drive": harness.config_drive_iso(tree, d / "config-2.iso")}
    with harness.Guest(image, d / "vm", name, key=keys["user"], root_key=keys["debug"],
                       disk_size=DISK, instance_uuid=u, **kw) as g:
        g.wait_ssh()
        g.report_boot()
        g.spec = spec
        yield g


def check_dns(guest, when):
    if guest.spec["user_data"]:
        check_resolv_conf(guest, CLOUD_CONFIG_DNS, search="cc.example", options=["rotate"],
                          when=when)
    else:
        check_resolv_conf(guest, NETWORK_DATA_DNS, when=when)


class TestDnsLasts:
    def test_after_the_boot_settles(self, dns_guest):
        check_settled(dns_guest)
        check_dhclient_owns_the_network(dns_guest)
        check_dns(dns_guest, "after the boot settled")
        st = status(dns_guest)
        want = "configdrive" if dns_guest.spec["source"] == "configdrive" else "openstack"
        sources = {r.get("source") for r in st["runs"] if r.get("source")}
        assert sources and all(want in s for s in sources), sources
        check_resolv_conf_step_lasts(st)

    def test_after_a_lease_renewal(self, dns_guest):
        renew_dhcp_lease(dns_guest)
        check_dns(dns_guest, "after dhclient -r; dhclient")
        check_no_failed_units(dns_guest)
