"""Boots off OpenStack: a NoCloud ISO, a NoCloud seed over HTTP, Hetzner Cloud.

  nocloud-iso   a seed made by ``cloud-localds --network-config`` (ISO 9660,
                label cidata) on a plain QEMU machine (no cloud in its DMI, no
                metadata service): network-config v2 gives the NIC 10.0.2.50/24
                (matched by MAC), gateway 10.0.2.2, DNS servers and a search
                domain, and no DHCP.  SSH is forwarded to 10.0.2.50 only, so a
                login proves the static address; then the key (from the
                user-data), the host name (meta-data), the user-data's runcmd,
                no DHCP address, DNS in resolv.conf before and after
                systemd-networkd reapplies its configuration, and not one
                request to 169.254.169.254; then a reboot with the seed still
                attached is the same instance (nothing per-instance again).
  nocloud-http  ``-smbios type=1,serial=ds=nocloud;s=http://10.0.2.2:8000/``: the
                seed served by the project's metadata server on the namespace's
                127.0.0.1:8000 (QEMU's user network maps 10.0.2.2 there); key and
                host name, and no request to the metadata address.
  hetzner       ``-smbios type=1,manufacturer=Hetzner,serial=<instance id>`` and
                the project's metadata server answering /hetzner/v1/metadata and
                /hetzner/v1/userdata only: key, host name, the network-config v1's
                IPv6 address and DNS servers, and the two requests.
"""

import json
import os
import subprocess
import uuid

import pytest
from checks import (
    check_no_failed_units,
    check_per_instance_not_rerun,
    check_resolv_conf,
    status,
)

import harness

pytestmark = [pytest.mark.e2e, pytest.mark.root]
# the CI boots' tree (a module with a MATRIX names it, see scenarios.py)
BASES = (harness.base_variant(),)

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "fixtures", "nocloud")
# a metadata service that would answer (OpenStack and EC2), so that a request
# the NoCloud boots must not make would show in its log
DECOY = os.path.join(harness.REPO, "examples", "configdrive")
STATIC = "10.0.2.50"
SEED_DNS = ["192.0.2.53", "192.0.2.54"]


def settled(guest):
    guest.ssh("sudo -n systemctl is-system-running --wait", check=False, timeout=300)


def ipv4(guest):
    links = json.loads(guest.ssh("ip -j addr show").stdout)
    (nic,) = [link for link in links if link.get("address") == harness.FIRST_MAC]
    return {f"{a['local']}/{a['prefixlen']}" for a in nic.get("addr_info", [])
            if a.get("family") == "inet"}


def seed_files(d, hostname, key, network=None):
    d.mkdir(parents=True)
    (d / "meta-data").write_text(f"instance-id: iid-{hostname}-{uuid.uuid4().hex[:8]}\n"
                                 f"local-hostname: {hostname}\n")
    (d / "user-data").write_text(
        "#cloud-config\n"
        f"ssh_authorized_keys:\n  - {key}\n"
        "runcmd:\n  - [sh, -c, 'echo ran > /var/tmp/nocloud-userdata']\n")
    if network is not None:
        (d / "network-config").write_text(network)
    return d


NETWORK_V2 = f"""\
version: 2
ethernets:
  nic0:
    match:
      macaddress: "{harness.FIRST_MAC}"
    dhcp4: false
    addresses: [{STATIC}/24]
    routes:
      - to: default
        via: 10.0.2.2
    nameservers:
      addresses: [{", ".join(SEED_DNS)}]
      search: [nocloud.example]
"""


@pytest.fixture(scope="class")
def iso_guest(plain_image, keys, e2e_dir):
    d = e2e_dir / "nocloud-iso"
    files = seed_files(d / "seed", "nocloud-iso", harness.public_key(keys["user"]),
                       NETWORK_V2)
    iso = d / "seed.iso"
    subprocess.run(["cloud-localds", "--network-config", str(files / "network-config"),
                    str(iso), str(files / "user-data"), str(files / "meta-data")],
                   check=True, capture_output=True)
    # a plain QEMU machine: no cloud in the DMI
    with harness.Guest(plain_image, d / "vm", "nocloud-iso", key=keys["user"],
                       root_key=keys["debug"], config_drive=str(iso), ssh_to=STATIC,
                       metadata_tree=DECOY, smbios="uuid={uuid}") as g:
        g.wait_ssh()
        g.report_boot()
        settled(g)
        yield g


class TestNoCloudIso:
    def test_static_address_only(self, iso_guest):
        assert ipv4(iso_guest) == {f"{STATIC}/24"}  # no 10.0.2.15 from DHCP
        routes = json.loads(iso_guest.ssh("ip -j -4 route show default").stdout)
        assert [r.get("gateway") for r in routes] == ["10.0.2.2"], routes

    def test_from_the_seed_in_the_local_stage(self, iso_guest):
        st = status(iso_guest)
        run = next(r for r in st["runs"] if r.get("source"))
        assert run["stage"] == "local", st["runs"]
        assert run["source"].startswith("nocloud (/dev/"), run["source"]
        assert iso_guest.ssh("hostname").stdout.strip() == "nocloud-iso"
        assert iso_guest.ssh("cat /var/tmp/nocloud-userdata").stdout.strip() == "ran"
        assert iso_guest.metadata_requests() == []
        check_no_failed_units(iso_guest)

    def test_dns_lasts_when_networkd_reapplies(self, iso_guest):
        check_resolv_conf(iso_guest, SEED_DNS, "nocloud.example", when="after the boot")
        # the nearest thing to a lease renewal with no DHCP: the stack
        # reconfigures the link from its files
        iso_guest.ssh("sudo -n systemctl restart systemd-networkd; sleep 5", timeout=120)
        iso_guest.wait_ssh(boot=False, timeout=120)
        check_resolv_conf(iso_guest, SEED_DNS, "nocloud.example",
                          when="after systemd-networkd restarted")
        assert ipv4(iso_guest) == {f"{STATIC}/24"}

    def test_reboot_is_the_same_instance(self, iso_guest):
        """The seed is still attached: its instance-id says this is the same
        instance, so nothing per-instance runs again (last in the class)."""
        first = status(iso_guest)
        iso_guest.reboot()
        again = status(iso_guest)
        check_per_instance_not_rerun(first, again)
        assert iso_guest.ssh("hostname").stdout.strip() == "nocloud-iso"
        assert ipv4(iso_guest) == {f"{STATIC}/24"}
        check_resolv_conf(iso_guest, SEED_DNS, "nocloud.example", when="after a reboot")
        assert iso_guest.metadata_requests() == []
        check_no_failed_units(iso_guest)


@pytest.fixture(scope="class")
def http_guest(plain_image, keys, e2e_dir):
    d = e2e_dir / "nocloud-http"
    files = seed_files(d / "seed", "nocloud-http", harness.public_key(keys["user"]))
    seed_log = d / "seed-requests.log"

    def serve(ns):
        ns.start_server(files, "--bind", "127.0.0.1", "--port", "8000",
                        "--nocloud", files, "--log", seed_log)

    with harness.Guest(plain_image, d / "vm", "nocloud-http", key=keys["user"],
                       root_key=keys["debug"], on_netns=serve, metadata_tree=DECOY,
                       smbios="serial=ds=nocloud;s=http://10.0.2.2:8000/,uuid={uuid}") as g:
        g.wait_ssh()
        g.report_boot()
        settled(g)
        g.seed_log = seed_log
        yield g


class TestNoCloudHttp:
    def test_key_hostname_and_source(self, http_guest):
        st = status(http_guest)
        run = next(r for r in st["runs"] if r.get("source"))
        assert run["source"] == "nocloud-net (http://10.0.2.2:8000/)", run
        assert http_guest.ssh("hostname").stdout.strip() == "nocloud-http"
        assert http_guest.ssh("cat /var/tmp/nocloud-userdata").stdout.strip() == "ran"
        asked = [ln.split()[1] for ln in http_guest.seed_log.read_text().splitlines()]
        assert asked[0] == "/meta-data" and "/user-data" in asked, asked
        assert http_guest.metadata_requests() == []
        check_no_failed_units(http_guest)


HETZNER_IID = "4711002"
HETZNER_V6 = "2a01:4f8:c012:abcd::1"


@pytest.fixture(scope="class")
def hetzner_guest(plain_image, keys, e2e_dir):
    d = e2e_dir / "hetzner"
    docs = d / "hetzner"
    docs.mkdir(parents=True)
    # the fixture's document (tests/fixtures/nocloud/hetzner, README.md there),
    # with this run's key, name, MAC and id
    text = open(os.path.join(FIXTURES, "hetzner", "metadata")).read()
    text = (text.replace("4711001", HETZNER_IID)
            .replace("hetzner-guest", "hetzner-e2e")
            .replace("96:00:00:ab:cd:ef", harness.FIRST_MAC))
    key = harness.public_key(keys["user"])
    lines = text.splitlines()
    at = lines.index("public-keys:")
    lines[at + 1] = f"- {key}"
    (docs / "metadata").write_text("\n".join(lines) + "\n")
    (docs / "userdata").write_text("#cloud-config\nruncmd:\n"
                                   "  - [sh, -c, 'echo ran > /var/tmp/hetzner-userdata']\n")
    with harness.Guest(plain_image, d / "vm", "hetzner", key=keys["user"],
                       root_key=keys["debug"], metadata_tree=docs,
                       metadata_args=["--hetzner", docs],
                       smbios=f"manufacturer=Hetzner,product=vServer,serial={HETZNER_IID},"
                              "uuid={uuid}") as g:
        g.wait_ssh()
        g.report_boot()
        settled(g)
        yield g


class TestHetzner:
    def test_key_hostname_userdata_and_two_requests(self, hetzner_guest):
        st = status(hetzner_guest)
        run = next(r for r in st["runs"] if r.get("source"))
        assert run["source"] == "hetzner (http://169.254.169.254)", run
        assert run["instance_id"] == HETZNER_IID
        assert hetzner_guest.ssh("hostname").stdout.strip() == "hetzner-e2e"
        assert hetzner_guest.ssh("cat /var/tmp/hetzner-userdata").stdout.strip() == "ran"
        asked = [ln.split()[1] for ln in hetzner_guest.metadata_requests()]
        assert asked == ["/hetzner/v1/metadata", "/hetzner/v1/userdata"], asked
        check_no_failed_units(hetzner_guest)

    def test_network_config_v1(self, hetzner_guest):
        # the DHCP subnet keeps the address that reached the service; the
        # static IPv6 subnet and the DNS servers come from the document
        assert ipv4(hetzner_guest) == {"10.0.2.15/24"}
        v6 = hetzner_guest.ssh("ip -6 addr show").stdout
        assert f"{HETZNER_V6}/64" in v6, v6
        q = json.loads(hetzner_guest.ssh("sudo -n guestagent query network --json").stdout)
        assert [link["mac"] for link in q["links"]] == [harness.FIRST_MAC]
        text = hetzner_guest.ssh("cat /etc/resolv.conf").stdout
        assert "nameserver 185.12.64.1" in text, text


# A machine with no sign of any cloud: no config drive, no seed, a DMI that
# names no cloud, nothing serving metadata.  Before the evidence-based search
# its network stage waited out the whole 120 s deadline.  One boot, with
# --matrix only (docs/e2e.md records its last result).
MATRIX = {"no-cloud": dict(image={}, ci=False)}


@pytest.fixture(scope="class", params=list(MATRIX))
def bare_guest(request, plain_image, keys, e2e_dir):
    d = e2e_dir / request.param
    # no default user appears without metadata: the image's own root key
    # (baked in for diagnostics) is the way in
    with harness.Guest(plain_image, d / "vm", request.param, key=keys["debug"],
                       root_key=keys["debug"], smbios="uuid={uuid}") as g:
        g.wait_ssh(user="root")
        g.ssh("systemctl is-system-running --wait", user="root", check=False, timeout=300)
        yield g


class TestNoCloudAtAll:
    def test_a_short_probe_and_one_line(self, bare_guest):
        def root(cmd):
            return bare_guest.ssh(cmd, user="root", check=False).stdout

        # the stage runs in the boot's one process: its lines are that unit's
        journal = root("journalctl -b -o cat -u 'guestagent*'")
        lines = [ln for ln in journal.splitlines() if "standing aside" in ln]
        assert len(lines) == 1 and "no datasource found: no config drive, no NoCloud seed, " \
            "DMI vendor 'QEMU'" in lines[0] and "10 s probe" in lines[0], journal
        times = dict(ln.split("=", 1) for ln in root(
            "systemctl show guestagent.service -p ExecMainStartTimestampMonotonic "
            "-p ExecMainExitTimestampMonotonic -p ExecMainStatus").split())
        took = (int(times["ExecMainExitTimestampMonotonic"])
                - int(times["ExecMainStartTimestampMonotonic"])) / 1e6
        print(f"[e2e] no-cloud: the network stage took {took:.1f} s")
        # the probe, plus the interpreter's start under TCG; not the 120 s deadline
        assert took < 10 + 20, f"the network stage took {took:.1f} s"
        assert times["ExecMainStatus"] == "3"  # no datasource, as documented
        assert "standing aside" in root("guestagent status")
