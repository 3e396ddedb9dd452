"""NoCloud seeds as their real producers write them (tests/fixtures/nocloud,
README.md there): cloud-localds images (ISO 9660 and vfat, with and without
--network-config), Proxmox VE's citype nocloud files, Multipass's seed, and
a seed directory baked into an image; the ds=nocloud argument in all its
forms; the agent run on a root that holds a seed."""

import json
import logging
import os
import shutil
import subprocess

import pytest

from guestagent.config import load
from guestagent.datasources import NoDatasource, nocloud, search
from guestagent.datasources.evidence import parse_nocloud_argument
from guestagent.system import System, block_labels

from support import REPO

FIXTURES = os.path.join(REPO, "tests", "fixtures", "nocloud")
LOCALDS = os.path.join(FIXTURES, "cloud-localds")
LIMIT = 16 << 20

needs_localds = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("cloud-localds", "genisoimage", "mkfs.vfat", "mcopy",
                                      "isoinfo")),
    reason="needs cloud-localds, genisoimage, dosfstools, mtools (tests/apt-packages)")


def localds(tmp_path, filesystem, network=True, meta=True):
    """A seed image made by cloud-localds from the committed input files."""
    out = tmp_path / f"seed-{filesystem}-{network}-{meta}.img"
    argv = ["cloud-localds", "--filesystem", filesystem]
    if network:
        argv += ["--network-config", os.path.join(LOCALDS, "input/network-config")]
    argv += [str(out), os.path.join(LOCALDS, "input/user-data")]
    if meta:
        argv.append(os.path.join(LOCALDS, "input/meta-data"))
    else:
        argv[1:1] = ["--hostname", "localds-host"]
    subprocess.run(argv, check=True, capture_output=True,
                   env=dict(os.environ, TMPDIR=str(tmp_path)))
    return out


def extract(image, filesystem, dest):
    """The image's files, copied out without mounting it."""
    dest.mkdir()
    if filesystem == "iso":
        listing = subprocess.run(["isoinfo", "-R", "-f", "-i", str(image)], check=True,
                                 capture_output=True, text=True).stdout.split()
        for path in listing:
            data = subprocess.run(["isoinfo", "-R", "-x", path, "-i", str(image)], check=True,
                                  capture_output=True).stdout
            (dest / path.lstrip("/")).write_bytes(data)
    else:
        subprocess.run(["mcopy", "-i", str(image), "-s", "::/*", str(dest)], check=True,
                       capture_output=True)
    return dest


def user_key(path):
    for line in open(path):
        if line.strip().startswith("- ssh-"):
            return line.strip()[2:]
    raise AssertionError(f"no key in {path}")


@needs_localds
@pytest.mark.parametrize("filesystem", ["iso", "vfat"])
@pytest.mark.parametrize("network", [True, False])
def test_cloud_localds_images(tmp_path, filesystem, network):
    image = localds(tmp_path, filesystem, network)
    # the label the local stage looks for, read as the agent reads it
    assert block_labels.read_label(str(image)) == "cidata"
    sys_block, dev = tmp_path / "sys", tmp_path / "dev"
    (sys_block / "sr0").mkdir(parents=True)
    (sys_block / "sr0/size").write_text(f"{os.path.getsize(image) // 512}\n")
    dev.mkdir()
    shutil.copy(image, dev / "sr0")
    assert nocloud.find_device(str(sys_block), str(dev)) == str(dev / "sr0")

    md = nocloud.read_seed(str(extract(image, filesystem, tmp_path / "files")), LIMIT,
                           "nocloud (/dev/sr0)")
    assert md.instance_id == "iid-localds-01"
    assert md.hostname == "localds-guest"
    assert md.public_keys == []  # cloud-localds puts keys in the user-data
    assert md.user_data == open(os.path.join(LOCALDS, "input/user-data"), "rb").read()
    assert user_key(os.path.join(LOCALDS, "input/user-data")).encode() in md.user_data
    if network:
        doc = md.raw["network-config"]
        assert doc["version"] == 2
        assert doc["ethernets"]["id0"]["addresses"] == ["10.0.2.50/24"]
        # handed to the network model, and its DNS to resolv.conf
        assert [(x.id, x.mac) for x in md.network.links] == [("id0", "52:54:00:12:34:56")]
        assert [str(x.address) for x in md.network.subnets] == ["10.0.2.50/24"]
        assert (md.dns_nameservers, md.dns_search) == (["10.0.2.3"], ["localds.example"])
    else:
        assert "network-config" not in md.raw and md.network is None
        assert md.dns_nameservers == []


@needs_localds
def test_cloud_localds_writes_json_meta_data_from_hostname(tmp_path):
    image = localds(tmp_path, "iso", network=False, meta=False)
    files = extract(image, "iso", tmp_path / "files")
    # what the committed fixture says cloud-localds writes: JSON, not YAML
    assert (files / "meta-data").read_text() == open(
        os.path.join(LOCALDS, "generated-hostname/meta-data")).read()
    json.loads((files / "meta-data").read_text())
    md = nocloud.read_seed(str(files), LIMIT, "nocloud")
    assert (md.instance_id, md.hostname) == ("iid-local01", "localds-host")


def test_proxmox_citype_nocloud():
    md = nocloud.read_seed(os.path.join(FIXTURES, "proxmox"), LIMIT, "nocloud (/dev/sr0)")
    # Proxmox: the instance id is a SHA-1 of the user-data and network-config,
    # so it changes when the VM's cloud-init settings do
    assert len(md.instance_id) == 40 and int(md.instance_id, 16) >= 0
    assert md.hostname == ""  # the name is in the user-data (hostname, fqdn)
    assert b"fqdn: pve-guest.pve.example" in md.user_data
    assert md.vendor_data is None  # Proxmox writes an empty vendor-data
    doc = md.raw["network-config"]
    assert doc["version"] == 1
    physical, nameserver = doc["config"]
    assert physical["type"] == "physical" and physical["mac_address"] == "bc:24:11:2a:3b:4c"
    assert physical["subnets"][0] == {"type": "static", "address": "192.0.2.10",
                                      "netmask": "255.255.255.0", "gateway": "192.0.2.1"}
    assert nameserver == {"type": "nameserver", "address": ["192.0.2.53"],
                          "search": ["pve.example"]}
    assert [(x.id, x.mac) for x in md.network.links] == [("eth0", "bc:24:11:2a:3b:4c")]
    assert [str(x.address) for x in md.network.subnets] == ["192.0.2.10/24"]
    assert (md.dns_nameservers, md.dns_search) == (["192.0.2.53"], ["pve.example"])


def test_multipass_seed():
    md = nocloud.read_seed(os.path.join(FIXTURES, "multipass"), LIMIT, "nocloud (/dev/sr0)")
    assert (md.instance_id, md.hostname) == ("vm1", "vm1")
    assert md.raw["meta-data"]["cloud-name"] == "multipass"
    eth = md.raw["network-config"]["ethernets"]
    assert eth["primary"]["match"] == {"macaddress": "52:54:00:56:78:90"}
    assert eth["extra0"]["dhcp4-overrides"] == {"route-metric": 200}
    assert [(x.id, x.mac) for x in md.network.links] == [
        ("primary", "52:54:00:56:78:90"), ("extra0", "52:54:00:d8:12:9c")]
    assert {x.method for x in md.network.subnets} == {"dhcp"}


def test_seed_directory_in_the_image_via_the_search(tmp_path, root):
    seed = root / "var/lib/cloud/seed"
    shutil.copytree(os.path.join(LOCALDS, "seed-local/var/lib/cloud/seed/nocloud"),
                    seed / "nocloud")
    config = load(root=str(root))
    md = search(config, System(str(root)), ["configdrive", "nocloud"], deadline=0)
    assert md.source == "nocloud (/var/lib/cloud/seed/nocloud)"
    assert md.instance_id == "iid-localds-01"
    assert md.raw["network-config"]["ethernets"]["id0"]["set-name"] == "eth0"


def test_nocloud_net_seed_directory_too(tmp_path, root):
    seed = root / "var/lib/cloud/seed/nocloud-net"
    seed.mkdir(parents=True)
    (seed / "meta-data").write_text("instance-id: iid-net\n")
    md = search(load(root=str(root)), System(str(root)), ["nocloud"], deadline=0)
    assert (md.instance_id, md.user_data) == ("iid-net", b"")


def test_no_seed_is_not_found(root):
    with pytest.raises(NoDatasource) as e:
        search(load(root=str(root)), System(str(root)), ["nocloud"], deadline=0)
    assert "no filesystem labelled cidata" in str(e.value)


@pytest.mark.parametrize("text, name, seedfrom, meta", [
    ("ds=nocloud", "nocloud", "", {}),
    ("ds=nocloud;s=http://10.0.2.2:8000/", "nocloud", "http://10.0.2.2:8000/", {}),
    ("ds=nocloud-net;s=https://seed.example/v1/", "nocloud-net", "https://seed.example/v1/", {}),
    ("BOOT_IMAGE=/vmlinuz root=/dev/vda1 ds=nocloud;h=web1;i=iid-7;s=file:///srv/seed/ quiet",
     "nocloud", "file:///srv/seed/", {"local-hostname": "web1", "instance-id": "iid-7"}),
    ("ds=nocloud;seedfrom=/srv/seed/;local-hostname=db;instance-id=x",
     "nocloud", "/srv/seed/", {"local-hostname": "db", "instance-id": "x"}),
    ("ds=nocloud;x=1;s", "nocloud", "", {}),            # unknown and bare keys ignored
])
def test_the_ds_argument(text, name, seedfrom, meta):
    arg = parse_nocloud_argument(text, "here")
    assert (arg.name, arg.seedfrom, arg.meta) == (name, seedfrom, meta)
    assert arg.over_network == seedfrom.startswith("http")


@pytest.mark.parametrize("text", ["", "ds=nocloudy", "xds=nocloud", "ds=ec2", "ds=configdrive"])
def test_no_ds_argument(text):
    assert parse_nocloud_argument(text, "here") is None


def _seed(top, meta="instance-id: iid-seed\nlocal-hostname: seeded\n", user=b"#cloud-config\n"):
    top.mkdir(parents=True)
    (top / "meta-data").write_text(meta)
    (top / "user-data").write_bytes(user)
    return top


@pytest.mark.parametrize("where", ["proc/cmdline", "sys/class/dmi/id/product_serial"])
def test_a_file_seed_named_by_ds_with_overrides(root, where):
    _seed(root / "srv/seed")
    (root / where).parent.mkdir(parents=True, exist_ok=True)
    (root / where).write_text("ds=nocloud;s=file:///srv/seed/;h=from-cmdline\n")
    md = search(load(root=str(root)), System(str(root)), ["nocloud"], deadline=0)
    assert md.source == "nocloud (/srv/seed/)"
    assert (md.instance_id, md.hostname) == ("iid-seed", "from-cmdline")


def test_the_kernel_command_line_wins_over_the_serial(root):
    _seed(root / "srv/a", meta="instance-id: a\n")
    _seed(root / "srv/b", meta="instance-id: b\n")
    (root / "proc").mkdir()
    (root / "proc/cmdline").write_text("ds=nocloud;s=/srv/a/\n")
    (root / "sys/class/dmi/id").mkdir(parents=True)
    (root / "sys/class/dmi/id/product_serial").write_text("ds=nocloud;s=/srv/b/\n")
    assert search(load(root=str(root)), System(str(root)), ["nocloud"],
                  deadline=0).instance_id == "a"


@pytest.mark.parametrize("value, keys", [
    ("ssh-ed25519 AAAA one\n\nssh-rsa BBBB two\n", ["ssh-ed25519 AAAA one", "ssh-rsa BBBB two"]),
    (["ssh-ed25519 AAAA one", "ssh-ed25519 AAAA one"], ["ssh-ed25519 AAAA one"]),
    ({"mykey": "ssh-ed25519 AAAA one", "other": ["ssh-rsa BBBB two"]},
     ["ssh-ed25519 AAAA one", "ssh-rsa BBBB two"]),
    ({"0": {"openssh-key": "ssh-ed25519 AAAA one"}}, ["ssh-ed25519 AAAA one"]),
    (42, []),
    ([None, 7, "ssh-ed25519 AAAA one"], ["ssh-ed25519 AAAA one"]),
])
def test_public_keys_forms(value, keys):
    assert nocloud.keys_from_meta(value) == keys


@pytest.mark.parametrize("meta, problem", [
    ("instance-id: [unclosed\n", "not valid YAML"),
    ("- a\n- b\n", "not a mapping"),
    ("a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c]\n"
     "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e]\n",
     "more than 200000 values"),
])
def test_bad_meta_data_is_named(tmp_path, meta, problem):
    with pytest.raises(ValueError) as e:
        nocloud.read_seed(str(_seed(tmp_path / "s", meta=meta)), LIMIT, "nocloud (test)")
    assert problem in str(e.value)


def test_empty_meta_data_is_cloud_inits_default_instance(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    md = nocloud.read_seed(str(_seed(tmp_path / "s", meta="")), LIMIT, "nocloud (test)")
    assert md.instance_id == "nocloud"
    assert "names no instance-id" in caplog.text


def test_yaml_only_types_become_text(tmp_path):
    md = nocloud.read_seed(str(_seed(tmp_path / "s", meta="instance-id: 2024-01-02\n"
                                                          "local-hostname: 12345\n")),
                           LIMIT, "nocloud (test)")
    assert (md.instance_id, md.hostname) == ("2024-01-02", "12345")
    json.dumps(md.to_dict())  # storable as it is


def test_a_symlink_off_the_seed_and_oversized_files_are_refused(tmp_path, caplog):
    seed = _seed(tmp_path / "s")
    secret = tmp_path / "secret"
    secret.write_text("#cloud-config\nsecret\n")
    os.unlink(seed / "user-data")
    os.symlink(str(secret), seed / "user-data")
    (seed / "network-config").write_bytes(b"x" * (nocloud.MAX_DOCUMENT + 1))
    caplog.set_level(logging.WARNING)
    md = nocloud.read_seed(str(seed), LIMIT, "nocloud (test)")
    assert md.user_data == b"" and md.instance_id == "iid-seed"
    assert "leads off the NoCloud seed" in caplog.text
    assert "larger than" in caplog.text
    os.unlink(seed / "meta-data")
    os.symlink("../secret", seed / "meta-data")
    with pytest.raises(ValueError, match="leads off the NoCloud seed"):
        nocloud.read_seed(str(seed), LIMIT, "nocloud (test)")


def test_the_agent_on_a_seeded_root_asks_no_network(tmp_path, root, run_agent):
    """A NoCloud boot makes no request: the metadata URL is a port where
    nothing listens, and the run is quick and says where the data came from."""
    shutil.copytree(os.path.join(FIXTURES, "multipass"), root / "var/lib/cloud/seed/nocloud")
    conf = tmp_path / "agent.conf"
    conf.write_text("[main]\nmetadata_url = http://127.0.0.1:9\ndeadline = 30\n")
    res = run_agent("--once", "--root", root, "--config", conf,
                    "--only", "hostname,users", check=True)
    assert "found instance vm1 from nocloud (/var/lib/cloud/seed/nocloud)" in res.stderr
    assert "metadata service" not in res.stderr and "probe" not in res.stderr
    q = json.loads(run_agent("query", "--json", "--root", root, "--config", conf,
                             check=True).stdout)
    assert q["source"] == "nocloud (/var/lib/cloud/seed/nocloud)"
    assert q["hostname"] == "vm1"
    status = run_agent("status", "--root", root, "--config", conf).stdout
    assert "from nocloud (/var/lib/cloud/seed/nocloud)" in status


def test_a_missing_file_seed_falls_back_to_the_seed_directory(root, caplog):
    _seed(root / "var/lib/cloud/seed/nocloud", meta="instance-id: baked\n")
    (root / "proc").mkdir()
    (root / "proc/cmdline").write_text("ds=nocloud;s=file:///srv/absent/\n")
    caplog.set_level(logging.WARNING)
    md = search(load(root=str(root)), System(str(root)), ["nocloud"], deadline=0)
    assert md.instance_id == "baked"
    assert "seed 'file:///srv/absent/' is not a directory" in caplog.text
