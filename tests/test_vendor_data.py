"""Vendor data: vendor_data.json / vendor_data2.json #cloud-config under the user's.

Through the real agent on a config drive tree (and the metadata server for the
fifth request), the shapes Nova serves: a string, a mapping with a
``cloud-init`` entry (a string or a list), and the dynamic vendor_data2.json.
"""

import json

import pytest

from guestagent.metadata import Metadata
from guestagent.userdata import vendor

from support.marks import needs_root
from support.step_context import config_drive

pytestmark = [needs_root, pytest.mark.root]


def agent(tmp_path, root, run_agent, user_data=None, vendor_data=None, vendor_data2=None,
          conf_extra=""):
    drive = config_drive(tmp_path / "drive", {"public_keys": {}}, user_data=user_data)
    latest = tmp_path / "drive/openstack/latest"
    for name, doc in (("vendor_data.json", vendor_data), ("vendor_data2.json", vendor_data2)):
        if doc is not None:
            (latest / name).write_text(json.dumps(doc))
    conf = tmp_path / "a.conf"
    conf.write_text(f"[main]\ndatasources = configdrive\ndefault_user = debian\n"
                    f"[configdrive]\npath = {drive}\n[ssh]\nregenerate_host_keys = no\n"
                    + conf_extra)
    return run_agent("--once", "--root", root, "--config", conf)


VENDOR = ("#cloud-config\nwrite_files:\n  - {path: /etc/vendor.conf, content: vendor}\n"
          "hostname: vendorhost\nfinal_message: from the vendor\n")


def test_vendor_string_applies_and_user_data_wins(tmp_path, root, run_agent):
    res = agent(tmp_path, root, run_agent, vendor_data={"cloud-init": VENDOR},
                user_data="#cloud-config\nhostname: userhost\n")
    assert res.returncode == 0, res.stderr
    assert (root / "etc/hostname").read_text() == "userhost\n"  # the user's key wins
    assert (root / "etc/vendor.conf").read_text() == "vendor"  # the vendor's is applied
    assert "final message: from the vendor" in res.stderr


def test_vendor_data_without_user_data(tmp_path, root, run_agent):
    res = agent(tmp_path, root, run_agent, vendor_data=VENDOR)  # a plain string document
    assert res.returncode == 0, res.stderr
    assert (root / "etc/hostname").read_text() == "vendorhost\n"


def test_vendor_data2_and_a_list(tmp_path, root, run_agent):
    res = agent(tmp_path, root, run_agent,
                vendor_data={"cloud-init": ["#cloud-config\nhostname: fromlist\n"]},
                vendor_data2={"cloud-init": "#cloud-config\nfqdn: dyn.example.org\n",
                              "other-provider": {"x": 1}})
    assert res.returncode == 0, res.stderr
    assert (root / "etc/hostname").read_text() == "dyn\n"  # fqdn beats hostname


def test_mappings_merge_key_by_key_user_first():
    user = {"resolv_conf": {"nameservers": ["192.0.2.1"]}, "runcmd": ["user"]}
    vend = {"resolv_conf": {"nameservers": ["198.51.100.1"], "domain": "vendor.org"},
            "runcmd": ["vendor"], "bootcmd": ["vb"]}
    assert vendor.under(user, vend) == {
        "resolv_conf": {"nameservers": ["192.0.2.1"], "domain": "vendor.org"},
        "runcmd": ["user"], "bootcmd": ["vb"]}


def test_switched_off_in_the_config(tmp_path, root, run_agent):
    agent(tmp_path, root, run_agent, vendor_data={"cloud-init": VENDOR},
          conf_extra="[userdata]\nvendor_data = no\n")
    assert not (root / "etc/vendor.conf").exists()


def test_switched_off_by_the_user_data(tmp_path, root, run_agent):
    res = agent(tmp_path, root, run_agent, vendor_data={"cloud-init": VENDOR},
                user_data="#cloud-config\nvendor_data: {enabled: false}\n")
    assert not (root / "etc/vendor.conf").exists()
    assert "vendor data turned off by the user-data" in res.stderr


def test_vendor_scripts_are_named_not_run(tmp_path, root, run_agent):
    marker = tmp_path / "vendor-script-ran"
    res = agent(tmp_path, root, run_agent,
                vendor_data={"cloud-init": f"#!/bin/sh\ntouch {marker}\n"})
    assert not marker.exists()
    assert "vendor data (vendor_data.json): 1 script(s) not run" in res.stderr


def test_payload_shapes():
    md = Metadata(source="t", instance_id="i", vendor_data={"static": {"a": 1}},
                  vendor_data2={"cloud-init": 5})
    assert vendor.payloads(md) == []
    md.vendor_data = "#cloud-config\n{}"
    assert vendor.payloads(md) == [("vendor_data.json", b"#cloud-config\n{}")]


def test_metadata_service_serves_vendor_data2(tmp_path, root, run_agent):
    from support.netns import Netns
    tree = tmp_path / "tree"
    latest = tree / "openstack/latest"
    latest.mkdir(parents=True)
    (latest / "meta_data.json").write_text(json.dumps({"uuid": "vd2-1", "hostname": "h"}))
    (latest / "vendor_data2.json").write_text(json.dumps(
        {"cloud-init": "#cloud-config\nhostname: fromvd2\n"}))
    conf = tmp_path / "m.conf"
    conf.write_text("[main]\ndatasources = openstack\ndeadline = 20\ndefault_user = debian\n"
                    "[ssh]\nregenerate_host_keys = no\n")
    with Netns() as ns:
        ns.start_server(tree, "--mode", "openstack")
        res = run_agent("--once", "--root", root, "--config", conf, netns=ns)
    assert res.returncode == 0, res.stderr
    assert (root / "etc/hostname").read_text() == "fromvd2\n"
    out = run_agent("query", "vendor_data2", "--root", root).stdout
    assert out.strip() == "<redacted>"
