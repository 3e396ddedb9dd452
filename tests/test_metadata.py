import json
import os

from guestagent.datasources.openstack_documents import (
    dns_from_network_data,
    from_openstack_documents,
    keys_from_openstack,
)
from guestagent.metadata import REDACTED, Metadata

from support import REPO

SAMPLES = os.path.join(os.path.dirname(REPO), "shared", "samples", "nova")


def _sample(name):
    path = os.path.join(SAMPLES, name)
    if not os.path.exists(path):  # keep the test meaningful without shared/
        path = os.path.join(REPO, "examples/configdrive/openstack/latest", name)
    with open(path) as f:
        return json.load(f)


def test_nova_sample_normalises():
    meta, nd = _sample("meta_data.json"), _sample("network_data.json")
    md = from_openstack_documents("openstack", meta, nd)
    assert md.instance_id == meta["uuid"]
    assert md.hostname == meta["hostname"]
    assert md.public_keys and all(k.startswith("ssh-") for k in md.public_keys)
    assert md.dns_nameservers == [s["address"] for s in nd["services"] if s["type"] == "dns"]


def test_keys_from_both_fields_once_each_in_order():
    meta = {
        "public_keys": {"a": "ssh-ed25519 AAAA a\n", "b": "ssh-rsa BBBB b"},
        "keys": [{"type": "ssh", "data": "ssh-rsa BBBB b\n"},
                 {"type": "ssh", "data": "ssh-ed25519 CCCC c"},
                 {"type": "x509", "data": "-----BEGIN CERTIFICATE-----"}],
    }
    assert keys_from_openstack(meta) == ["ssh-ed25519 AAAA a", "ssh-rsa BBBB b",
                                         "ssh-ed25519 CCCC c"]


def test_wrong_types_become_empty_with_a_warning(caplog):
    meta = {"uuid": "i-1", "hostname": ["x"], "public_keys": "ssh-rsa A", "keys": {"a": 1},
            "admin_pass": {"x": 1}}
    md = from_openstack_documents("t", meta, network_data=["not", "a", "dict"])
    assert md.hostname == "" and md.public_keys == [] and md.admin_pass == ""
    assert md.dns_nameservers == []
    assert "hostname: expected a string" in caplog.text


def test_dns_in_document_order_including_per_network_services():
    nd = {"services": [{"type": "dns", "address": "10.0.0.2"}, {"type": "ntp", "address": "x"}],
          "networks": [{"services": [{"type": "dns", "address": "10.0.0.1",
                                      "search": ["example.org"]}]}]}
    assert dns_from_network_data(nd) == (["10.0.0.2", "10.0.0.1"], ["example.org"])


def test_public_dict_redacts_secrets_and_roundtrip_keeps_them():
    meta = {"uuid": "u", "admin_pass": "hunter2hunter2", "random_seed": "seedseed",
            "meta": {"password": "p4ssw0rd!"}}
    md = from_openstack_documents("t", meta, vendor_data={"x": "vendorsecret"},
                                  user_data=b"#!/bin/sh\necho topsecret\n")
    text = json.dumps(md.public_dict())
    for secret in ("hunter2hunter2", "seedseed", "p4ssw0rd!", "vendorsecret", "topsecret"):
        assert secret not in text
    assert md.public_dict()["admin_pass"] == REDACTED
    back = Metadata.from_dict(json.loads(json.dumps(md.to_dict())))
    assert back.admin_pass == "hunter2hunter2" and back.user_data == md.user_data
