"""network-config v1/v2 fixtures through all five renderers: golden files, and
the real parsers where they are installed (as tests/test_network_render.py
does for Nova's network_data.json).

The fixtures in tests/fixtures/network-config/ take each producer's shape
(README.md there says where each comes from).  Every fixture is rendered on
a scratch root whose NICs carry the kernel names a Debian guest would give
them (ens18, enp1s0), not the names the document asks for: the agent finds
NICs by MAC or by name glob and keeps the kernel's names.
GUESTAGENT_REGEN_GOLDEN=1 rewrites the golden files (then review the diff).
"""

import configparser
import os
import shutil
import subprocess

import pytest
import yaml

from guestagent.config import NETWORK_RENDERERS
from guestagent.datasources.network_config import parse
from guestagent.metadata import netconfig as nc
from guestagent.steps.network import build_plan
from guestagent.steps.network.interfaces import resolve
from guestagent.system import System

from support import TESTS
from support.network import make_nics

FIXTURES = os.path.join(TESTS, "fixtures", "network-config")
GOLDEN = os.path.join(TESTS, "fixtures", "network-golden")
RENDERERS = NETWORK_RENDERERS

# fixture -> the machine's NICs {kernel name: MAC}
MACHINES = {
    "proxmox-v1-static": {"ens18": "bc:24:11:5e:7a:01"},
    "proxmox-v1-two-nics": {"ens18": "bc:24:11:5e:7a:02", "ens19": "bc:24:11:5e:7a:03"},
    "hetzner-v1": {"eth0": "96:00:00:08:19:da"},
    "multipass-v2": {"ens3": "52:54:00:4b:1c:8e", "ens4": "52:54:00:a1:33:07"},
    "netplan-static": {"ens3": "52:54:00:12:34:56"},
    "netplan-on-link": {"ens3": "52:54:00:00:0a:01"},
    "netplan-bond-vlan": {"enp1s0": "52:54:00:00:0b:01", "enp2s0": "52:54:00:00:0b:02",
                          "ens5": "52:54:00:00:0b:05"},
    "cloudinit-v1-bonded-vlan": {"ens3": "cd:11:22:33:44:00", "ens4": "cd:11:22:33:44:02"},
    "cloudinit-v1-bridge": {"ens3": "00:11:22:33:44:55", "ens4": "aa:11:22:33:44:55"},
    "netplan-bridge": {"enp3s0": "52:54:00:00:0c:01"},
}
FIXTURE_NAMES = sorted(MACHINES)
# NICs a fixture's machine has that its document does not name: left alone
UNNAMED = {"netplan-bond-vlan": {"ens5"}}


def document(name):
    with open(os.path.join(FIXTURES, f"{name}.yaml")) as f:
        return yaml.safe_load(f)


def render(tmp_path, renderer, fixture):
    root = tmp_path / f"{renderer}-{fixture}"
    make_nics(root, MACHINES[fixture])
    config = parse(document(fixture))
    system = System(str(root))
    ifaces = resolve(config, system)
    plan, ifaces = build_plan(system, renderer, ifaces, config)
    return plan, ifaces, config


def as_text(plan):
    return "".join(f"===== {path} ({plan.files[path][1]:04o})\n{plan.files[path][0]}"
                   for path in sorted(plan.files))


@pytest.mark.parametrize("renderer", RENDERERS)
@pytest.mark.parametrize("fixture", FIXTURE_NAMES)
def test_golden(tmp_path, renderer, fixture):
    plan, _ifaces, _config = render(tmp_path, renderer, fixture)
    got = as_text(plan)
    path = os.path.join(GOLDEN, renderer, f"{fixture}.txt")
    if os.environ.get("GUESTAGENT_REGEN_GOLDEN") == "1":
        with open(path, "w") as f:
            f.write(got)
    with open(path) as f:
        assert got == f.read()


@pytest.mark.parametrize("fixture", FIXTURE_NAMES)
def test_every_nic_of_the_machine_is_found_under_its_kernel_name(tmp_path, fixture):
    _plan, ifaces, _config = render(tmp_path, "networkd", fixture)
    phys = {it.name: it.mac for it in ifaces if it.kind == nc.PHY}
    assert phys == {name: mac for name, mac in MACHINES[fixture].items()
                    if name not in UNNAMED.get(fixture, ())}


def test_headers_name_the_document(tmp_path):
    plan, _ifaces, _config = render(tmp_path, "ifcfg", "proxmox-v1-static")
    for text, _mode, _what in plan.files.values():
        assert text.startswith("# Written by guestagent from the instance's network-config "
                               "v1; replaced when a new instance boots from this disk.\n")


@pytest.mark.parametrize("fixture", [f for f in FIXTURE_NAMES if "v2" in f or "netplan" in f])
def test_netplan_is_handed_a_v2_document_as_it_is(tmp_path, fixture):
    plan, _ifaces, config = render(tmp_path, "netplan", fixture)
    (text, mode, _what), = plan.files.values()
    assert mode == 0o600
    assert yaml.safe_load(text) == {"network": config_body(document(fixture))}


def config_body(doc):
    return doc["network"] if "network" in doc else doc


def written(plan, root):
    for path, (text, mode, _what) in plan.files.items():
        host = os.path.join(str(root), path.lstrip("/"))
        os.makedirs(os.path.dirname(host), exist_ok=True)
        with open(host, "w") as f:
            f.write(text)
        os.chmod(host, mode)


# -- real parsers ------------------------------------------------------------------

@pytest.mark.skipif(not shutil.which("netplan"), reason="netplan is not installed")
@pytest.mark.parametrize("fixture", FIXTURE_NAMES)
def test_netplan_generate_accepts(tmp_path, fixture):
    plan, ifaces, config = render(tmp_path, "netplan", fixture)
    root = tmp_path / "np"
    written(plan, root)
    res = subprocess.run(["netplan", "generate", "--root-dir", str(root)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "Error" not in res.stderr, res.stderr
    out = root / "run" / "systemd" / "network"
    generated = "".join(p.read_text() for p in sorted(out.iterdir()))
    for s in config.subnets:
        if s.method == nc.STATIC and any(s.link == x.id for x in config.links):
            assert f"Address={s.address}" in generated


@pytest.mark.skipif(not shutil.which("ifquery"), reason="ifupdown is not installed")
@pytest.mark.parametrize("fixture", FIXTURE_NAMES)
def test_ifupdown_parses_with_ifquery(tmp_path, fixture):
    plan, ifaces, _config = render(tmp_path, "ifupdown", fixture)
    text, _mode, _what = plan.files["/etc/network/interfaces.d/50-guestagent"]
    f = tmp_path / "interfaces"
    f.write_text(text)
    listed = subprocess.run(["ifquery", f"--interfaces={f}", "--list", "--allow=auto"],
                            capture_output=True, text=True)
    assert listed.returncode == 0 and listed.stderr == "", listed.stderr
    assert set(listed.stdout.split()) - {"lo"} == {it.name for it in ifaces if not it.master}
    for it in ifaces:
        for s in it.static(4):
            q = subprocess.run(["ifquery", f"--interfaces={f}", it.name],
                               capture_output=True, text=True)
            assert f"address: {s.address.split('/')[0]}\n" in q.stdout


@pytest.mark.parametrize("fixture", FIXTURE_NAMES)
def test_ifcfg_files_are_shell(tmp_path, fixture):
    plan, _ifaces, _config = render(tmp_path, "ifcfg", fixture)
    for path, (text, _mode, _what) in plan.files.items():
        f = tmp_path / os.path.basename(path)
        f.write_text(text)
        if "/ifcfg-" in path:
            res = subprocess.run(["bash", "-euc", f'set -a; . "{f}"; env -0'],
                                 capture_output=True, env={"PATH": os.environ["PATH"]})
            assert res.returncode == 0, res.stderr
            env = dict(kv.split("=", 1) for kv in res.stdout.decode().split("\0") if "=" in kv)
            assert env["DEVICE"] == os.path.basename(path)[len("ifcfg-"):]
        else:  # route files: "ip route add" arguments, one route a line
            for line in text.splitlines()[1:]:
                words = line.split()
                assert words[1] == "via" and words[3] == "dev", line


@pytest.mark.parametrize("fixture", FIXTURE_NAMES)
def test_networkmanager_keyfiles_read_as_ini(tmp_path, fixture):
    plan, _ifaces, _config = render(tmp_path, "networkmanager", fixture)
    for path, (text, mode, _what) in plan.files.items():
        assert mode == 0o600
        p = configparser.ConfigParser(interpolation=None, strict=True)
        p.read_string(text)
        for section in ("ipv4", "ipv6"):
            for key in p[section] if p.has_section(section) else []:
                base = key.rstrip("0123456789")
                if key.startswith("route") and key.endswith("_options"):
                    assert p[section][key] == "onlink=true"
                else:
                    assert key in ("method", "gateway", "dns", "dns-search", "addr-gen-mode") \
                        or base in ("address", "route"), f"{path}: [{section}] {key}"
