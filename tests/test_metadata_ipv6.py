"""Nova's IPv6 metadata address, fe80::a9fe:a9fe, across a veth pair.

Two namespaces the test makes: the "cloud" side holds fe80::a9fe:a9fe on its
end of the pair with our metadata server listening on [::]:80; the guest side
has only its link-local address, no IPv4 at all, so 169.254.169.254 cannot
be reached and the agent must find the service through the interface.
"""

import json
import os
import subprocess
import time

import pytest

from guestagent.datasources import linklocal

from support import EXAMPLES
from support.marks import needs_root
from support.netns import Netns
from support.step_context import agent_conf

pytestmark = needs_root


def wait_for_dad(ns, dev):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        out = ns.run(["ip", "-6", "addr", "show", "dev", dev], capture_output=True,
                     text=True).stdout
        if "fe80::" in out and "tentative" not in out:
            return
        time.sleep(0.1)
    raise AssertionError(f"{dev}: no usable link-local address")


@pytest.fixture
def cloud_and_guest():
    cloud = Netns(with_address=False)
    guest = Netns(with_address=False)
    try:
        subprocess.run(["ip", "link", "add", "ga6-c", "netns", cloud.name, "type", "veth",
                        "peer", "name", "eth0", "netns", guest.name], check=True)
        cloud.run(["ip", "addr", "add", "fe80::a9fe:a9fe/64", "dev", "ga6-c", "nodad"],
                  check=True)
        cloud.run(["ip", "link", "set", "ga6-c", "up"], check=True)
        guest.run(["ip", "link", "set", "eth0", "up"], check=True)
        wait_for_dad(guest, "eth0")
        yield cloud, guest
    finally:
        guest.close()
        cloud.close()


def test_urls_only_for_nova_address_and_interfaces_that_are_up(tmp_path):
    for name, flags in (("eth0", "0x1003"), ("eth1", "0x1002"), ("lo", "0x9")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "flags").write_text(flags + "\n")
    assert linklocal.ipv6_urls("http://169.254.169.254", str(tmp_path)) == [
        "http://[fe80::a9fe:a9fe%25eth0]"]
    assert linklocal.ipv6_urls("http://10.0.0.1:8775", str(tmp_path)) == []


def test_agent_finds_the_service_over_ipv6_link_local(tmp_path, run_agent, root,
                                                     cloud_and_guest):
    cloud, guest = cloud_and_guest
    log = tmp_path / "requests.log"
    cloud.start_server(os.path.join(EXAMPLES, "configdrive"), "--bind", "::", "--log", log)
    conf = agent_conf(tmp_path / "agent.conf")
    res = run_agent("--once", "--verbose", "--root", root, "--config", conf, "--only",
                    "hostname", netns=guest, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "fe80::a9fe:a9fe%25eth0" in res.stderr
    q = json.loads(run_agent("query", "--json", "--root", root, "--config", conf,
                             check=True).stdout)
    assert q["source"] == "openstack (http://[fe80::a9fe:a9fe%25eth0])"
    assert "GET /openstack/latest/meta_data.json 200" in log.read_text()
