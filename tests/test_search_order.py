"""Which datasource is asked, and for how long, decided from local evidence
(DMI, the kernel command line) before any request: the agent against the
project's metadata server at 169.254.169.254 in a namespace the test made,
serving OpenStack, Hetzner's documents and a NoCloud seed."""

import json
import os
import time

import pytest

from guestagent.state import State
from guestagent.system import System

from support import EXAMPLES, REPO
from support.marks import needs_root
from support.netns import Netns

pytestmark = [needs_root, pytest.mark.root]
TREE = os.path.join(EXAMPLES, "configdrive")
FIXTURES = os.path.join(REPO, "tests", "fixtures", "nocloud")
HETZNER = os.path.join(FIXTURES, "hetzner")
META = json.load(open(os.path.join(TREE, "openstack/latest/meta_data.json")))


def _conf(tmp_path, text="", deadline=20):
    f = tmp_path / "agent.conf"
    f.write_text(f"[main]\ndeadline = {deadline}\n{text}")
    return f


def _dmi(root, **fields):
    d = root / "sys/class/dmi/id"
    d.mkdir(parents=True, exist_ok=True)
    for name, value in fields.items():
        (d / name).write_text(value + "\n")


def _query(run_agent, root, conf):
    return json.loads(run_agent("query", "--json", "--root", root, "--config", conf,
                                check=True).stdout)


def _requests(log):
    return [ln.split()[1] for ln in log.read_text().splitlines()] if log.exists() else []


def test_hetzner_two_requests_and_nothing_else(tmp_path, root, run_agent):
    log = tmp_path / "requests.log"
    _dmi(root, sys_vendor="Hetzner", product_name="vServer", product_serial="4711001")
    conf = _conf(tmp_path)
    with Netns() as ns:
        ns.start_server(TREE, "--hetzner", HETZNER, log=log)
        res = run_agent("--once", "--root", root, "--config", conf, "--only", "hostname,users",
                        netns=ns)
    assert res.returncode == 0, res.stderr
    assert _requests(log) == ["/hetzner/v1/metadata", "/hetzner/v1/userdata"]
    assert "evidence of hetzner: DMI system vendor 'Hetzner'" in res.stderr
    q = _query(run_agent, root, conf)
    assert q["source"] == "hetzner (http://169.254.169.254)"
    assert (q["instance_id"], q["hostname"]) == ("4711001", "hetzner-guest")
    assert q["availability_zone"] == "fsn1-dc14"
    assert q["public_keys"] == [
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGhldHpuZXJmaXh0dXJla2V5Zm9yZ3Vlc3RhZ2VudHRlc3RzMQ "
        "hetzner@fixture"]
    assert q["user_data"] == "<redacted>" and q["vendor_data"] == "<redacted>"
    assert q["raw"]["metadata"]["vendor_data"] == "<redacted>"
    assert q["raw"]["metadata"]["network-config"]["version"] == 1
    assert [link["mac"] for link in q["network"]["links"]] == ["96:00:00:ab:cd:ef"]
    assert q["dns_nameservers"] == ["185.12.64.1", "185.12.64.2", "2a01:4ff:ff00::add:2",
                                    "2a01:4ff:ff00::add:1"]
    stored = State(System(str(root))).stored_metadata()
    assert stored.user_data == open(os.path.join(HETZNER, "userdata"), "rb").read()
    assert stored.vendor_data == "#cloud-config\npackage_update: false\n"
    status = run_agent("status", "--root", root, "--config", conf).stdout
    assert "instance 4711001 (new instance) from hetzner (http://169.254.169.254)" in status


def test_no_hetzner_dmi_no_hetzner_request(tmp_path, root, run_agent):
    """On OpenStack's DMI the Hetzner paths are never asked, even when served."""
    log = tmp_path / "requests.log"
    _dmi(root, sys_vendor="OpenStack Foundation", product_name="OpenStack Nova")
    conf = _conf(tmp_path)
    with Netns() as ns:
        ns.start_server(TREE, "--mode", "openstack", "--hetzner", HETZNER, log=log)
        res = run_agent("--once", "--root", root, "--config", conf, "--only", "hostname",
                        netns=ns)
    assert res.returncode == 0, res.stderr
    asked = _requests(log)
    assert asked[0] == "/openstack/latest/meta_data.json" and len(asked) <= 5, asked
    assert not any(p.startswith("/hetzner") for p in asked)
    assert "evidence of openstack, ec2: DMI product name 'OpenStack Nova'" in res.stderr
    assert _query(run_agent, root, conf)["instance_id"] == META["uuid"]


def test_openstack_evidence_waits_the_whole_deadline_for_a_late_service(tmp_path, root,
                                                                        run_agent):
    """Nova's DMI: the service may come up late, and is waited for past the
    short probe, as before this search order existed."""
    _dmi(root, product_name="OpenStack Nova")
    conf = _conf(tmp_path, "probe_deadline = 1\n", deadline=20)
    with Netns() as ns:
        ns.start_server(TREE, "--mode", "openstack", "--start-after", "4", wait=False)
        res = run_agent("--once", "--root", root, "--config", conf, "--only", "hostname",
                        netns=ns)
    assert res.returncode == 0, res.stderr
    assert _query(run_agent, root, conf)["instance_id"] == META["uuid"]


def test_no_evidence_a_short_probe_then_one_line(tmp_path, root, run_agent):
    _dmi(root, sys_vendor="QEMU", product_name="Standard PC (Q35 + ICH9, 2009)")
    conf = _conf(tmp_path, "probe_deadline = 2\n", deadline=60)
    with Netns() as ns:
        t0 = time.monotonic()
        res = run_agent("--once", "--root", root, "--config", conf, netns=ns)
        took = time.monotonic() - t0
    assert res.returncode == 3, res.stderr
    assert took < 2 + 6, f"{took:.1f} s for a 2 s probe"
    lines = [ln for ln in res.stderr.splitlines() if "standing aside" in ln]
    assert lines == ["guestagent: no datasource found: no config drive, no NoCloud seed, DMI "
                     "vendor 'QEMU', product 'Standard PC (Q35 + ICH9, 2009)', and nothing "
                     "answered a 2 s probe; standing aside ([main] assume_cloud = yes waits "
                     "the whole deadline)"], res.stderr
    assert "no datasource found: openstack" not in res.stderr  # one line, not two
    status = run_agent("status", "--root", root, "--config", conf).stdout
    assert "standing aside" in status, status


def test_no_evidence_but_a_service_answers_the_probe(tmp_path, root, run_agent):
    """A cloud that hides its DMI but answers at once still works."""
    log = tmp_path / "requests.log"
    conf = _conf(tmp_path, "probe_deadline = 5\n")
    with Netns() as ns:
        ns.start_server(TREE, "--mode", "openstack", log=log)
        res = run_agent("--once", "--root", root, "--config", conf, "--only", "hostname",
                        netns=ns)
    assert res.returncode == 0, res.stderr
    assert len(_requests(log)) <= 5
    assert "a 5 s probe of nocloud-net, hetzner, openstack, ec2" in res.stderr


def test_assume_cloud_waits_the_whole_deadline(tmp_path, root, run_agent):
    conf = _conf(tmp_path, "probe_deadline = 1\nassume_cloud = yes\n", deadline=20)
    with Netns() as ns:
        ns.start_server(TREE, "--mode", "openstack", "--start-after", "4", wait=False)
        res = run_agent("--once", "--root", root, "--config", conf, "--only", "hostname",
                        netns=ns)
    assert res.returncode == 0, res.stderr
    assert "[main] assume_cloud is set" in res.stderr


def test_datasources_restricts_the_list(tmp_path, root, run_agent):
    """[main] datasources = ec2: the OpenStack tree is never asked."""
    log = tmp_path / "requests.log"
    _dmi(root, product_name="OpenStack Nova")
    conf = _conf(tmp_path, "datasources = ec2\n")
    with Netns() as ns:
        ns.start_server(TREE, "--mode", "both", log=log)
        res = run_agent("--once", "--root", root, "--config", conf, "--only", "hostname",
                        netns=ns)
    assert res.returncode == 0, res.stderr
    asked = _requests(log)
    assert asked and not any(p.startswith("/openstack") for p in asked), asked
    assert _query(run_agent, root, conf)["source"].startswith("ec2")


@pytest.mark.parametrize("where", ["proc/cmdline", "sys/class/dmi/id/product_serial"])
def test_nocloud_over_http(tmp_path, root, run_agent, where):
    """ds=nocloud;s=http://...: the seed's files from that URL, and no
    request to the metadata address."""
    log = tmp_path / "requests.log"
    (root / where).parent.mkdir(parents=True, exist_ok=True)
    (root / where).write_text("ds=nocloud;s=http://127.0.0.1:8000/seed;i=iid-from-serial\n")
    conf = _conf(tmp_path)
    with Netns() as ns:
        ns.start_server(TREE, "--bind", "127.0.0.1", "--port", "8000", "--nocloud",
                        os.path.join(FIXTURES, "proxmox"), "--nocloud-at", "/seed/", log=log)
        # a metadata service that would answer, to show it is not asked
        other = tmp_path / "other.log"
        ns.start_server(TREE, log=other)
        res = run_agent("--once", "--root", root, "--config", conf, "--only", "hostname",
                        netns=ns)
    assert res.returncode == 0, res.stderr
    assert _requests(log) == ["/seed/meta-data", "/seed/user-data", "/seed/vendor-data",
                              "/seed/network-config"]
    assert not other.exists() or other.read_text() == ""
    q = _query(run_agent, root, conf)
    assert q["source"] == "nocloud-net (http://127.0.0.1:8000/seed/)"
    assert q["instance_id"] == "iid-from-serial"
    assert q["raw"]["network-config"]["version"] == 1
    assert (root / "etc/hostname").read_text().strip() == "pve-guest"


def test_nocloud_over_http_refuses_a_redirect(tmp_path, root, run_agent):
    (root / "proc").mkdir()
    (root / "proc/cmdline").write_text("ds=nocloud-net;s=http://127.0.0.1:8000/\n")
    conf = _conf(tmp_path, deadline=5)
    with Netns() as ns:
        ns.start_server(TREE, "--bind", "127.0.0.1", "--port", "8000", "--nocloud",
                        os.path.join(FIXTURES, "multipass"), "--redirect", "meta-data")
        res = run_agent("--once", "--root", root, "--config", conf, "--only", "hostname",
                        netns=ns)
    assert res.returncode == 3
    assert "refusing to follow a redirect" in res.stderr
