"""#cloud-config wireguard and snap (cc_wireguard's and cc_snap's keys).

The wireguard tests put the real wireguard-tools files (wg-quick and its
wg-quick@.service, from Debian's package on this machine: tests/apt-packages)
into a scratch root, and enable the unit there with the real `systemctl
--root`.  Starting the unit and the probes on a live system are what a boot
does; the probes themselves run here for real (they are sh command lines).
"""

import os
import shutil
import stat

import pytest

from guestagent.schema.checks import INVALID, NOTICE, kind_of
from guestagent.steps import Skip, snap, wireguard
from guestagent.system import System
from guestagent.userdata import decode

from support.step_context import StepContext

# cloud-init's documented example (cc_wireguard), with a key pair made for the test
WG_EXAMPLE = """#cloud-config
wireguard:
  interfaces:
    - name: wg0
      config_path: /etc/wireguard/wg0.conf
      content: |
        [Interface]
        PrivateKey = 2ERc2TRwo2Gu5a5wMBvCpsf6tkNVHnVhiMeu2IeLYWA=
        Address = 192.168.1.2/24
        [Peer]
        PublicKey = vTvqhs9e/uoknK2EkrbTKKdNx8rKWIEWWsPOOUodiS8=
        Endpoint = 1.2.3.4:51820
        AllowedIPs = 192.168.1.1/32
  readinessprobe:
    - 'systemctl restart service'
    - 'curl https://webhook.endpoint/example'
    - 'nc -zv some-service-fqdn 443'
"""


def cc(text):
    ud = decode(text.encode(), 1 << 20)
    return ud.cloud_config, ud.warnings


def _wireguard_tools(root):
    """The real wg-quick and its unit from this machine's wireguard-tools."""
    if not os.path.exists("/usr/bin/wg-quick"):
        pytest.skip("wireguard-tools is not installed here (tests/apt-packages has it)")
    for path in ("/usr/bin/wg-quick", "/usr/lib/systemd/system/wg-quick@.service"):
        os.makedirs(os.path.dirname(f"{root}{path}"), exist_ok=True)
        shutil.copy2(path, f"{root}{path}")


# -- wireguard: what the check says ------------------------------------------------

def test_documented_example_is_fully_handled():
    cfg, warnings = cc(WG_EXAMPLE)
    assert [w for w in warnings if kind_of(w) != NOTICE] == []
    wg = cfg["wireguard"]
    assert [i["name"] for i in wg["interfaces"]] == ["wg0"]
    assert wg["interfaces"][0]["content"].startswith("[Interface]\nPrivateKey = ")
    assert len(wg["readinessprobe"]) == 3


def test_bad_interfaces_and_probes_are_named_and_dropped():
    cfg, warnings = cc("""#cloud-config
wireguard:
  interfaces:
    - {name: wg0, config_path: /etc/wireguard/wg0.conf}
    - {name: "wg 1; rm", config_path: /etc/wireguard/x.conf, content: x}
    - {name: wg2, config_path: relative.conf, content: x}
    - {name: wg3, config_path: /etc/wireguard/wg3.conf, content: "[Interface]"}
    - {name: wg3, config_path: /etc/wireguard/wg3.conf, content: "[Interface]"}
    - {name: wg4, config_path: /srv/wg4.conf, content: "[Interface]"}
    - just text
  readinessprobe: ['true', 5]
""")
    text = "\n".join(warnings)
    assert "entry 1: content missing or not text; skipped" in text
    assert "entry 2: name is not an interface name" in text
    assert "entry 3: config_path should be an absolute config_path; skipped" in text
    assert "entry 5: interface wg3 is given twice; skipped" in text
    assert "wg-quick@wg4 reads /etc/wireguard/wg4.conf" in text
    assert "entry 7 is a string, not a mapping; skipped" in text
    assert "readinessprobe entry 2 is a number, not a command line; skipped" in text
    assert [i["name"] for i in cfg["wireguard"]["interfaces"]] == ["wg3", "wg4"]
    assert cfg["wireguard"]["readinessprobe"] == ["true"]
    # no value in any note: a config holds a private key
    assert "[Interface]" not in text and "wg 1; rm" not in text


@pytest.mark.parametrize("value, expected", [
    ("wg0", "expected a mapping {interfaces, readinessprobe}"),
    ({"interfaces": []}, "expected a mapping with an 'interfaces' list"),
    ({"interfaces": [{"name": "wg0"}]}, "expected at least one usable interface"),
])
def test_unusable_wireguard_key_is_invalid(value, expected):
    import yaml
    ud = decode(("#cloud-config\n" + yaml.safe_dump({"wireguard": value})).encode(), 1 << 20)
    assert "wireguard" not in ud.cloud_config
    assert any(expected in w and kind_of(w) == INVALID for w in ud.warnings), ud.warnings


# -- wireguard: what the step does ------------------------------------------------

def test_no_wireguard_tools_fails_clearly_and_writes_nothing(root):
    cfg, _ = cc(WG_EXAMPLE)
    with pytest.raises(RuntimeError, match="wireguard-tools is not installed in this image "
                                           r"\(no wg-quick\)"):
        wireguard.run(StepContext(root, cloud_config=cfg))
    assert not (root / "etc/wireguard").exists()


def test_config_written_0600_and_unit_enabled_in_the_tree(root):
    _wireguard_tools(root)
    cfg, _ = cc(WG_EXAMPLE)
    changes = wireguard.run(StepContext(root, cloud_config=cfg)).changes
    conf = root / "etc/wireguard/wg0.conf"
    assert conf.read_text() == cfg["wireguard"]["interfaces"][0]["content"]
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600
    assert stat.S_IMODE((root / "etc/wireguard").stat().st_mode) == 0o700
    link = root / "etc/systemd/system/multi-user.target.wants/wg-quick@wg0.service"
    assert os.readlink(link) == "/usr/lib/systemd/system/wg-quick@.service"
    assert changes == ["wg0: configuration in /etc/wireguard/wg0.conf (0600)",
                       "wg0: wg-quick@wg0.service enabled in the tree (started at its first "
                       "boot)",
                       "3 readiness probe(s) not run: not the live system"]


def test_an_interface_that_cannot_be_written_fails_the_step_and_the_others_go_on(root):
    _wireguard_tools(root)
    (root / "etc/wireguard").mkdir(mode=0o700)
    (root / "etc/wireguard/wg0.conf").symlink_to("/etc/shadow")  # planted
    cfg, _ = cc("#cloud-config\nwireguard:\n  interfaces:\n"
                "    - {name: wg0, config_path: /etc/wireguard/wg0.conf, content: a}\n"
                "    - {name: wg1, config_path: /etc/wireguard/wg1.conf, content: b}\n")
    out = wireguard.run(StepContext(root, cloud_config=cfg))
    assert out.problems[0].startswith("wg0: cannot write /etc/wireguard/wg0.conf")
    assert out.changes[0] == "wg1: configuration in /etc/wireguard/wg1.conf (0600)"
    assert (root / "etc/wireguard/wg1.conf").read_text() == "b\n"
    assert os.readlink(root / "etc/wireguard/wg0.conf") == "/etc/shadow"


def test_readiness_probes_run_and_failures_are_named(tmp_path, monkeypatch):
    system = System(str(tmp_path))
    marker = tmp_path / "ran"
    assert wireguard._probe(system, [f"touch {marker}", "true"]) == []
    assert marker.exists()
    failed = wireguard._probe(system, ["true", "echo peer unreachable >&2; exit 3", "false"])
    assert failed == ["readiness probe 2 failed (exit 3): peer unreachable",
                      "readiness probe 3 failed (exit 1)"]
    monkeypatch.setattr(wireguard, "PROBE_TIMEOUT", 1)
    assert wireguard._probe(system, ["sleep 10"]) == \
        ["readiness probe 1 did not finish within 1 s"]


def test_pending_only_with_interfaces():
    class Ctx:
        cloud_config = {}
    assert not wireguard.pending(Ctx())
    Ctx.cloud_config = cc(WG_EXAMPLE)[0]
    assert wireguard.pending(Ctx())


# -- snap ------------------------------------------------------------------------------

SNAP_EXAMPLE = """#cloud-config
snap:
  assertions:
    00: |
      signed_assertion_blob_here
    02: |
      signed_assertion_blob_here
  commands:
    00: snap create-user --sudoer --known <snap-user>@mydomain.com
    01: snap install canonical-livepatch
    02: canonical-livepatch enable <AUTH_TOKEN>
"""


def test_snap_documented_example_and_command_forms():
    cfg, warnings = cc(SNAP_EXAMPLE)
    assert [w for w in warnings if kind_of(w) != NOTICE] == []
    assert any("commands entry 3 does not start with 'snap '" in w for w in warnings)
    assert len(cfg["snap"]["assertions"]) == 2
    assert cfg["snap"]["commands"][0].startswith("snap create-user")
    cfg, warnings = cc("#cloud-config\nsnap:\n  commands:\n"
                       "    - [install, vlc]\n    - [snap, install, hello]\n"
                       "    - [null, snapctl, get, x]\n    - {a: b}\n  stuff: 1\n")
    assert cfg["snap"]["commands"] == [["snap", "install", "vlc"],
                                       ["snap", "install", "hello"], ["snapctl", "get", "x"]]
    text = "\n".join(warnings)
    assert "commands entry 4 is a mapping, not a command string" in text
    assert "fields neither guestagent nor cloud-init knows, ignored: stuff" in text


def test_snap_command_mapping_runs_in_the_order_of_its_keys():
    cfg, _ = cc("#cloud-config\nsnap:\n  commands:\n    b: snap two\n    a: snap one\n")
    assert cfg["snap"]["commands"] == ["snap one", "snap two"]


def test_no_snapd_is_a_named_skip(root):
    cfg, _ = cc(SNAP_EXAMPLE)
    with pytest.raises(Skip, match=r"snapd is not installed in this image \(no snap "
                                   r"command\): 2 assertion\(s\) and 3 command\(s\) not run"):
        snap.run(StepContext(root, cloud_config=cfg))


def test_snap_under_root_is_a_named_skip(root):
    (root / "usr/bin").mkdir(parents=True, exist_ok=True)
    (root / "usr/bin/snap").write_text("")
    cfg, _ = cc(SNAP_EXAMPLE)
    with pytest.raises(Skip, match=r"not the live system \(--root\)"):
        snap.run(StepContext(root, cloud_config=cfg))


def test_snap_command_failures_are_named_by_number(tmp_path):
    system = System(str(tmp_path))
    assert snap._run(system, ["sh", "-c", "exit 0"], 10) == ""
    assert snap._run(system, ["sh", "-c", "echo no such snap >&2; exit 1"], 10) == \
        "failed (exit 1): no such snap"
    assert snap._run(system, ["ga-no-such-command-here"], 10) == \
        "command not found: ga-no-such-command-here"
