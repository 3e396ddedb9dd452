"""Boot a real Debian image whose #cloud-config installs packages and sets up
time, disks and a reboot (issue 16's keys), then check what lasts.

Scenario f (one guest, two boots):
  - the test builds a package with dpkg-deb and serves a flat apt repository
    on 127.0.0.1:8080 inside the guest's network namespace; the guest sees it
    at 10.0.2.2.  The image's own Debian sources are unreachable there.
  - user-data: `apt: sources:` adds the repository ([trusted=yes]),
    `package_update` + `packages` install the package, `runcmd` uses it;
    `timezone`, a `swap` file, and `power_state: {mode: reboot}`.
  - a second disk, formatted with the label ephemeral0 as Nova formats the
    ephemeral disk, must be mounted at /mnt.
  - the guest reboots once after the final stage; the second boot must not
    reboot again, and every check runs on that second boot, so it sees what
    lasted (the package, the zone, swap and /mnt coming back from fstab).
  - issue 31: the repository also serves Debian's real wireguard-tools (for
    the image's release, fetched by the test through a private apt
    configuration); `packages` installs it and `wireguard` brings up wg0
    (a tunnel with no peer) through wg-quick@wg0, its readiness probes pass,
    and it is up again after the reboot.  A `## template: jinja` MIME part
    beside the #cloud-config is skipped by name: the image has no Jinja2.
    /run/guestagent/instance-data.json is there on the second boot (0644,
    the sensitive copy 0600), with this instance's id.
"""

import json
import subprocess
import time
import uuid
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import pytest
from test_boot import check_no_failed_units, status, write_instance

import harness
from support.aptrepo import make_repo, served_in_netns
from support.debian_download import download

pytestmark = [pytest.mark.e2e, pytest.mark.root]

PACKAGE = "ga-e2e-hello"
REPO_PORT = 8080
BOOTS = "/var/lib/ga-e2e-boots"
CLOUD_CONFIG = f"""\
#cloud-config
bootcmd:
  - cat /proc/sys/kernel/random/boot_id >> {BOOTS}
apt:
  # the image's own Debian sources are unreachable here: wireguard-tools'
  # recommended iptables/nftables could not be fetched
  conf: |
    APT::Install-Recommends "false";
  sources:
    ga-e2e:
      source: "deb [trusted=yes] http://10.0.2.2:{REPO_PORT}/ ./"
package_update: true
packages:
  - {PACKAGE}
  - wireguard-tools
wireguard:
  interfaces:
    - name: wg0
      config_path: /etc/wireguard/wg0.conf
      content: |
        [Interface]
        PrivateKey = 2ERc2TRwo2Gu5a5wMBvCpsf6tkNVHnVhiMeu2IeLYWA=
        Address = 10.99.0.1/24
        ListenPort = 51820
  readinessprobe:
    - 'wg show wg0 listen-port | grep -qx 51820'
    - 'ip -4 addr show dev wg0 | grep -q "inet 10.99.0.1/24"'
runcmd:
  - {PACKAGE} > /var/tmp/{PACKAGE}.out
timezone: America/Vancouver
swap:
  filename: /swapfile
  size: 64M
power_state:
  mode: reboot
  message: guestagent e2e reboots once
"""


JINJA_PART = "## template: jinja\n#!/bin/sh\necho {{ v1.instance_id }} > /var/tmp/jinja.out\n"


def _user_data():
    msg = MIMEMultipart()
    msg.attach(MIMEText(CLOUD_CONFIG, "cloud-config"))
    msg.attach(MIMEText(JINJA_PART, "jinja2"))
    return msg.as_bytes()


@pytest.fixture(scope="class")
def pkg_guest(plain_image, keys, e2e_dir):
    d = e2e_dir / "packages"
    d.mkdir()
    wireguard = download("wireguard-tools", plain_image.suite, str(d / "apt"))
    repo = make_repo(d / "repo", PACKAGE, "1.0", f'echo "hello from {PACKAGE}"',
                     more_debs=[wireguard])
    ephemeral = d / "ephemeral0.raw"
    with open(ephemeral, "wb") as f:
        f.truncate(64 * 1024 * 1024)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "ephemeral0", str(ephemeral)], check=True)
    tree = write_instance(d / "drive", str(uuid.uuid4()), "pkg-guest.novalocal",
                          [harness.public_key(keys["user"])],
                          user_data=_user_data())
    iso = harness.config_drive_iso(tree, d / "config-2.iso")
    repo_log = open(d / "repo-requests.log", "w")
    g = harness.Guest(plain_image, d / "vm", "f-packages", key=keys["user"],
                      root_key=keys["debug"], config_drive=iso, extra_disks=[str(ephemeral)],
                      on_netns=served_in_netns(repo, REPO_PORT, repo_log))
    with g:
        g.wait_ssh()
        g.boot_ids = _wait_for_second_boot(g)
        g.wait_ssh()
        g.ssh("systemctl is-system-running --wait", check=False, timeout=300)
        yield g
    repo_log.close()


def _wait_for_second_boot(g, timeout=900):
    """The guest reboots by itself (power_state); returns the boot ids it logged."""
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        try:
            res = g.ssh(f"cat {BOOTS}; echo now $(cat /proc/sys/kernel/random/boot_id)",
                        check=False, timeout=60)
            seen = res.stdout
        except subprocess.TimeoutExpired:
            res = None
        if res is not None and res.returncode == 0:
            lines = res.stdout.split()
            boots, now = lines[:-2], lines[-1]
            if len(boots) >= 2 and now == boots[-1]:
                return boots
        if g.qemu.poll() is not None:
            g.fail(f"QEMU exited ({g.qemu.returncode}) while waiting for the reboot")
        time.sleep(5)
    g.collect_journal()
    g.fail(f"the guest did not reboot by itself within {timeout} s (boots seen: {seen!r})")


@pytest.mark.usefixtures("pkg_guest")
class TestPackagesTimeDisksPower:
    def test_rebooted_exactly_once(self, pkg_guest):
        g = pkg_guest
        assert len(g.boot_ids) == 2, f"boots: {g.boot_ids}"
        assert "guestagent e2e reboots once" in g.console_text()
        st = status(g)
        steps = {s["name"]: s["result"] for r in st["runs"] for s in r["steps"]}
        # nothing is left for the final stage on the second boot: it does not start,
        # so power_state cannot act again
        assert "final" not in {r["stage"] for r in st["runs"]}, st
        assert "power_state" not in steps
        time.sleep(20)  # a second reboot would have come by now
        assert g.boot_id() == g.boot_ids[-1], "the guest rebooted again"
        assert g.ssh(f"cat {BOOTS}").stdout.split() == g.boot_ids

    def test_package_installed_from_the_local_repository(self, pkg_guest):
        g = pkg_guest
        res = g.ssh(f"dpkg-query -W -f='${{Status}} ${{Version}}' {PACKAGE}")
        assert res.stdout == "install ok installed 1.0"
        assert g.ssh(f"cat /var/tmp/{PACKAGE}.out").stdout == f"hello from {PACKAGE}\n"
        assert g.ssh("cat /etc/apt/sources.list.d/ga-e2e.list").stdout == \
            f"deb [trusted=yes] http://10.0.2.2:{REPO_PORT}/ ./\n"
        log = g.ssh("sudo -n cat /var/log/guestagent-packages.log").stdout
        assert "apt-get" in log and f"Setting up {PACKAGE} (1.0)" in log
        # the image's own sources were unreachable, and apt installed anyway
        assert "Failed to fetch" in log or "Err:" in log, log[-2000:]

    def test_timezone(self, pkg_guest):
        g = pkg_guest
        assert g.ssh("readlink /etc/localtime").stdout.strip() == \
            "/usr/share/zoneinfo/America/Vancouver"
        assert g.ssh("cat /etc/timezone").stdout == "America/Vancouver\n"
        # the zone's current abbreviation and offset, from the guest's own tzdata
        # (British Columbia's rules change: no fixed PST/PDT here)
        now = g.ssh("date +%Z%z; TZ=America/Vancouver date +%Z%z").stdout.split()
        assert now[0] == now[1] and not now[0].endswith("+0000"), now

    def test_swap_file_is_on_after_the_reboot(self, pkg_guest):
        g = pkg_guest
        swaps = g.ssh("cat /proc/swaps").stdout
        assert "/swapfile" in swaps, swaps
        assert g.ssh("stat -c %a /swapfile").stdout.strip() == "600"

    def test_ephemeral_disk_at_mnt(self, pkg_guest):
        g = pkg_guest
        src = g.ssh("findmnt -n -o SOURCE,FSTYPE /mnt", check=False).stdout.split()
        assert src == ["/dev/vdb", "ext4"], \
            f"/mnt: {src}; fstab:\n{g.ssh('cat /etc/fstab').stdout}"
        fstab = g.ssh("cat /etc/fstab").stdout
        assert "LABEL=ephemeral0\t/mnt\tauto\tdefaults,nofail,comment=guestagent" in fstab

    def test_no_failed_units(self, pkg_guest):
        check_no_failed_units(pkg_guest)

    def test_wireguard_up_and_enabled_after_the_reboot(self, pkg_guest):
        g = pkg_guest
        assert g.ssh("sudo -n stat -c %a /etc/wireguard/wg0.conf").stdout.strip() == "600"
        assert g.ssh("sudo -n systemctl is-enabled wg-quick@wg0").stdout.strip() == "enabled"
        assert g.ssh("sudo -n systemctl is-active wg-quick@wg0").stdout.strip() == "active"
        assert g.ssh("sudo -n wg show wg0 listen-port").stdout.strip() == "51820"
        assert "inet 10.99.0.1/24" in g.ssh("ip -4 addr show dev wg0").stdout
        # the step ran in the first boot's final stage (status keeps this boot's runs)
        log = g.ssh("sudo -n cat /var/log/guestagent.log").stdout
        assert "wireguard: wg0: wg-quick@wg0.service enabled and started" in log
        assert "wireguard: 2 readiness probe(s) passed" in log
        assert "wireguard failed" not in log

    def test_jinja_part_skipped_by_name_without_jinja2(self, pkg_guest):
        g = pkg_guest
        assert g.ssh("test -e /var/tmp/jinja.out", check=False).returncode == 1
        log = g.ssh("sudo -n cat /var/log/guestagent.log").stdout
        assert "Jinja2 is not installed (python3-jinja2); skipped" in log

    def test_instance_data_in_run_on_the_second_boot(self, pkg_guest):
        g = pkg_guest
        modes = g.ssh("stat -c '%a %U' /run/guestagent/instance-data.json "
                      "/run/guestagent/instance-data-sensitive.json").stdout.split("\n")
        assert modes[:2] == ["644 root", "600 root"]
        data = json.loads(g.ssh("cat /run/guestagent/instance-data.json").stdout)
        iid = g.ssh("sudo -n cat /var/lib/guestagent/instance-id").stdout.strip()
        assert data["v1"]["instance_id"] == iid and data["v1"]["cloud_name"] == "openstack"
        assert data["v1"]["local_hostname"] == "pkg-guest.novalocal"
