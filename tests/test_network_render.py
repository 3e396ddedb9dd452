"""Each renderer's output for the Nova fixtures: golden files, and real parsers.

The fixtures in tests/fixtures/nova/ were made by Nova's own code
(tests/fixtures/nova/generate.py).  The golden files in
tests/fixtures/network-golden/ were checked by hand against each format's
reference (systemd.network(5)/systemd.netdev(5), interfaces(5) and
ifenslave's README, nm-settings-keyfile(5), nm-settings-ifcfg-rh(5), netplan's
YAML reference); where a parser is installed here, the output is also fed to
it: ifquery (ifupdown), netplan generate, bash (ifcfg files are shell),
Python's configparser the way NetworkManager's keyfile reader reads INI.
GUESTAGENT_REGEN_GOLDEN=1 rewrites the golden files (then review the diff).
"""

import configparser
import os
import shutil
import subprocess

import pytest

from guestagent.config import NETWORK_RENDERERS
from guestagent.datasources.network_data import parse
from guestagent.metadata import netconfig as nc

from support import TESTS
from support.network import nova_doc, render

GOLDEN = os.path.join(TESTS, "fixtures", "network-golden")
FIXTURES = ["dhcp", "static-v4-v6", "two-nics-vlan", "ironic-bond", "slaac"]
RENDERERS = NETWORK_RENDERERS


def as_text(plan):
    out = []
    for path in sorted(plan.files):
        text, mode, _what = plan.files[path]
        out.append(f"===== {path} ({mode:04o})\n{text}")
    return "".join(out)


@pytest.mark.parametrize("renderer", RENDERERS)
@pytest.mark.parametrize("fixture", FIXTURES)
def test_golden(tmp_path, renderer, fixture):
    got = as_text(render(tmp_path, renderer, fixture))
    path = os.path.join(GOLDEN, renderer, f"{fixture}.txt")
    if os.environ.get("GUESTAGENT_REGEN_GOLDEN") == "1":
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(got)
    with open(path) as f:
        assert got == f.read()


def written(plan, root):
    """Write the plan's files under ``root`` as they would land."""
    for path, (text, mode, _what) in plan.files.items():
        host = os.path.join(str(root), path.lstrip("/"))
        os.makedirs(os.path.dirname(host), exist_ok=True)
        with open(host, "w") as f:
            f.write(text)
        os.chmod(host, mode)


# -- real parsers ----------------------------------------------------------------

@pytest.mark.skipif(not shutil.which("ifquery"), reason="ifupdown is not installed")
@pytest.mark.parametrize("fixture", FIXTURES)
def test_ifupdown_parses_with_ifquery(tmp_path, fixture):
    plan = render(tmp_path, "ifupdown", fixture)
    text, _mode, _what = plan.files["/etc/network/interfaces.d/50-guestagent"]
    f = tmp_path / "interfaces"
    f.write_text(text)
    listed = subprocess.run(["ifquery", f"--interfaces={f}", "--list", "--allow=auto"],
                            capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    assert listed.stderr == ""
    config = parse(nova_doc(fixture))
    for s in config.subnets:
        if s.method != nc.STATIC:
            continue
        names = listed.stdout.split()
        found = False
        for name in names:
            q = subprocess.run(["ifquery", f"--interfaces={f}", name],
                               capture_output=True, text=True)
            assert q.returncode == 0, q.stderr
            ip, prefix = s.address.split("/")
            # ifquery splits the CIDR into address and netmask
            if f"address: {ip}\n" in q.stdout and "netmask: " in q.stdout:
                found = True
        assert found, f"{s.address} not in any stanza ifquery read"


@pytest.mark.skipif(not shutil.which("netplan"), reason="netplan is not installed")
@pytest.mark.parametrize("fixture", FIXTURES)
def test_netplan_generate_accepts(tmp_path, fixture):
    plan = render(tmp_path, "netplan", fixture)
    root = tmp_path / "np"
    written(plan, root)
    res = subprocess.run(["netplan", "generate", "--root-dir", str(root)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "Error" not in res.stderr and "warning" not in res.stderr.lower(), res.stderr
    out = root / "run" / "systemd" / "network"
    generated = "".join(p.read_text() for p in sorted(out.iterdir()))
    config = parse(nova_doc(fixture))
    for s in config.subnets:
        if s.method == nc.STATIC:
            assert f"Address={s.address}" in generated
    for link in config.links:
        if link.kind == nc.BOND:
            assert "Kind=bond" in generated and f"Mode={link.bond_mode}" in generated
        if link.kind == nc.VLAN:
            assert f"Id={link.vlan_id}" in generated


@pytest.mark.parametrize("fixture", FIXTURES)
def test_ifcfg_files_are_shell_that_sets_the_documented_values(tmp_path, fixture):
    plan = render(tmp_path, "ifcfg", fixture)
    config = parse(nova_doc(fixture))
    for path, (text, _mode, _what) in plan.files.items():
        if "/ifcfg-" not in path:
            continue
        f = tmp_path / os.path.basename(path)
        f.write_text(text)
        # initscripts and NetworkManager's ifcfg-rh read these as shell assignments
        res = subprocess.run(["bash", "-euc", f'set -a; . "{f}"; env -0'],
                             capture_output=True, env={"PATH": os.environ["PATH"]})
        assert res.returncode == 0, res.stderr
        env = dict(kv.split("=", 1) for kv in res.stdout.decode().split("\0") if "=" in kv)
        assert env["DEVICE"] == os.path.basename(path)[len("ifcfg-"):]
        assert env["ONBOOT"] == "yes"
    statics = [s for s in config.subnets if s.method == nc.STATIC and s.family == 4]
    for s in statics:
        ip, prefix = s.address.split("/")
        assert any(f"IPADDR={ip}\n" in t and f"PREFIX={prefix}\n" in t
                   for t, _m, _w in plan.files.values())


@pytest.mark.parametrize("fixture", FIXTURES)
def test_networkmanager_keyfiles_read_as_ini_with_the_keys_nm_knows(tmp_path, fixture):
    plan = render(tmp_path, "networkmanager", fixture)
    known = {
        "connection": {"id", "uuid", "type", "autoconnect", "autoconnect-priority",
                       "interface-name", "master", "slave-type"},
        "ethernet": {"mac-address", "cloned-mac-address", "mtu"},
        "bond": {"mode", "miimon", "xmit_hash_policy", "lacp_rate"},
        "vlan": {"id", "parent"},
        "ipv4": {"method", "gateway", "dns", "dns-search"},
        "ipv6": {"method", "gateway", "dns", "dns-search", "addr-gen-mode"},
    }
    for path, (text, mode, _what) in plan.files.items():
        assert mode == 0o600  # NetworkManager refuses keyfiles others can read
        p = configparser.ConfigParser(interpolation=None, strict=True)
        p.read_string(text)
        for section in p.sections():
            assert section in known, section
            for key in p[section]:
                assert key in known[section] or (
                    section.startswith("ipv") and key.rstrip("0123456789") in
                    ("address", "route")), f"{path}: [{section}] {key}"
        member = p.has_option("connection", "master")
        assert member or p.has_section("ipv4")
