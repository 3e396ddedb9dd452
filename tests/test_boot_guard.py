"""A reboot with nothing changed starts no Python: units/guestagent-unchanged
against the list the agent leaves (guestagent/boot/guard.py), on --root trees."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from support import EXAMPLES, REPO

GUARD = os.path.join(REPO, "units", "guestagent-unchanged")
TREE = os.path.join(EXAMPLES, "configdrive")
META = json.load(open(os.path.join(TREE, "openstack/latest/meta_data.json")))
IID = META["uuid"]
MANIFEST = "var/lib/guestagent/unchanged.sha256"

pytestmark = pytest.mark.skipif(not shutil.which("sha256sum"), reason="needs sha256sum")


def reboot(root, n=[0]):  # noqa: B006 - a counter across calls
    """What a reboot does to the tree: /run emptied, a new kernel boot id."""
    shutil.rmtree(root / "run", ignore_errors=True)
    n[0] += 1
    (root / "proc/sys/kernel/random").mkdir(parents=True, exist_ok=True)
    (root / "proc/sys/kernel/random/boot_id").write_text(f"boot-{n[0]}\n")


def guard(root):
    """(exit code, stdout) of the guard script on ``root``: 1 = skip the agent."""
    res = subprocess.run(["sh", GUARD, str(root)], capture_output=True, text=True, timeout=30)
    return res.returncode, res.stdout


@pytest.fixture
def instance(tmp_path, root, run_agent):
    """A root booted once as a Nova instance (DMI UUID = instance id), config drive."""
    def make(user_data=None, dmi=None):
        tree = tmp_path / "drive"
        shutil.copytree(TREE, tree)
        ud = tree / "openstack/latest/user_data"
        if user_data is None:
            ud.unlink()
        else:
            ud.write_text(user_data)
        conf = root / "etc/guestagent/guestagent.conf"
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(f"[main]\ndatasources = configdrive\n[configdrive]\npath = {tree}\n"
                        "[ssh]\nregenerate_host_keys = no\n")
        (root / "sys/class/dmi/id").mkdir(parents=True)
        (root / "sys/class/dmi/id/product_uuid").write_text((dmi or IID.upper()) + "\n")
        reboot(root)
        (root / "sys/class/block/vda").mkdir(parents=True)
        (root / "sys/class/block/vda/size").write_text("20971520\n")

        def boot(stage="local", *extra):
            res = run_agent("--once", "--stage", stage, "--root", root, "--config", conf,
                            *extra)
            assert res.returncode == 0, res.stderr
            return res
        return boot, conf
    return make


def test_unchanged_reboot_is_skipped_and_says_so(root, instance, run_agent):
    boot, conf = instance()
    assert guard(root)[0] == 0  # never configured: the agent must run
    boot()
    reboot(root)
    code, out = guard(root)
    assert code == 1, (root / MANIFEST).read_text()
    assert "nothing to do, not starting" in out
    # the network stage's ConditionPathExists=! sees this and does not start
    assert (root / "run/guestagent/local-configured").exists()
    listed = (root / MANIFEST).read_text()
    for path in ("sys/class/dmi/id/product_uuid", "sys/class/block/vda/size", "etc/hostname",
                 "etc/hosts", "etc/guestagent/guestagent.conf"):
        assert f"  {path}\n" in listed, listed
    # status tells an operator why there is no run this boot
    res = run_agent("status", "--root", root)
    assert "the agent did not start" in res.stdout


def test_a_second_call_in_the_same_boot_reads_the_first_verdict(root, instance):
    """guestagent-main.service runs the guard, then guestagent-local.service
    again (for a boot where the main unit is masked): the second call checks
    nothing, it gives the first call's answer, whatever changed in between."""
    boot, conf = instance()
    assert guard(root)[0] == 0
    (root / "etc/hostname").write_text("changed-meanwhile\n")
    boot()  # the configuring run writes the list anew; same boot, same answer
    assert guard(root) == (0, "")
    reboot(root)
    assert guard(root)[0] == 1
    (root / "etc/hostname").write_text("changed-after-the-verdict\n")
    assert guard(root) == (1, "")  # silent: the first call said why


def test_skipped_reboot_puts_the_instance_data_back_in_run(root, instance):
    """/run is empty at every boot; scripts still find the instance data when
    no Python starts (guestagent/metadata/instance_data.py)."""
    boot, conf = instance()
    boot()
    before = {n: (root / "run/guestagent" / n).read_bytes()
              for n in ("instance-data.json", "instance-data-sensitive.json")}
    assert json.loads(before["instance-data.json"])["v1"]["instance_id"] == IID
    reboot(root)
    assert not (root / "run/guestagent").exists()
    assert guard(root)[0] == 1
    for name, data in before.items():
        path = root / "run/guestagent" / name
        assert path.read_bytes() == data
        assert oct(path.stat().st_mode & 0o777) == \
            ("0o644" if name == "instance-data.json" else "0o600")


@pytest.mark.parametrize("change", ["disk grown", "hostname edited", "hosts edited",
                                    "config edited", "config drop-in added",
                                    "other instance", "list damaged"])
def test_any_change_starts_the_agent(root, instance, change):
    boot, conf = instance()
    boot()
    reboot(root)
    assert guard(root)[0] == 1
    if change == "disk grown":
        (root / "sys/class/block/vda/size").write_text("41943040\n")
    elif change == "hostname edited":
        (root / "etc/hostname").write_text("renamed\n")
    elif change == "hosts edited":
        with open(root / "etc/hosts", "a") as f:
            f.write("192.0.2.7 extra\n")
    elif change == "config edited":
        with open(conf, "a") as f:
            f.write("\n")
    elif change == "config drop-in added":
        d = root / "etc/guestagent/guestagent.conf.d"
        d.mkdir()
        (d / "10-local.conf").write_text("[hostname]\nenabled = no\n")
    elif change == "other instance":
        (root / "sys/class/dmi/id/product_uuid").write_text(
            "00000000-0000-0000-0000-0000000000aa\n")
    elif change == "list damaged":
        with open(root / MANIFEST, "a") as f:
            f.write("not a checksum line\n")
    reboot(root)
    assert guard(root)[0] == 0
    assert not (root / "run/guestagent/local-configured").exists()


def test_a_disk_grown_later_runs_growroot_again_then_the_shortcut_returns(root, instance):
    boot, _ = instance()
    boot()
    (root / "sys/class/block/vda/size").write_text("41943040\n")
    reboot(root)
    assert guard(root)[0] == 0
    boot()  # the agent runs (its growroot looks at the disks) and writes a new list
    reboot(root)
    assert guard(root)[0] == 1


def test_no_list_without_a_dmi_uuid_that_names_the_instance(root, instance):
    boot, _ = instance(dmi="11111111-2222-3333-4444-555555555555")
    boot()
    assert not (root / MANIFEST).exists()
    assert guard(root)[0] == 0


def test_bootcmd_is_work_on_every_boot(root, instance):
    boot, _ = instance(user_data="#cloud-config\nbootcmd:\n  - echo hi >/dev/null\n")
    boot()
    assert not (root / MANIFEST).exists()
    assert guard(root)[0] == 0


def test_user_scripts_pending_hold_the_list_until_the_final_stage(root, instance):
    boot, _ = instance(user_data="#!/bin/sh\ntrue\n")
    boot()
    assert (root / "run/guestagent/final-pending").exists()
    assert guard(root)[0] == 0  # the scripts have not run yet
    boot("final")
    reboot(root)
    assert guard(root)[0] == 1


def test_a_later_boot_reads_the_stored_cloud_config_and_never_imports_yaml(root, instance):
    boot, conf = instance(user_data="#cloud-config\nhostname: cc-name\n"
                                    "runcmd:\n  - [true]\n")
    boot()
    boot("final")
    assert (root / "etc/hostname").read_text() == "cc-name\n"
    stored = root / f"var/lib/guestagent/instances/{IID}/cloud-config.json"
    assert oct(stored.stat().st_mode & 0o777) == "0o600"
    (root / "sys/class/block/vda/size").write_text("41943040\n")  # so the agent runs
    imported, log = imports_of(root, conf, "local")
    assert "yaml" not in imported
    assert "using the copy worked out on this instance's first boot" in log
    assert (root / "etc/hostname").read_text() == "cc-name\n"


def imports_of(root, conf, stage):
    """The modules a stage imports, and its log (-X importtime, --verbose)."""
    res = subprocess.run([sys.executable, "-X", "importtime", "-m", "guestagent", "--once",
                          "--stage", stage, "--verbose", "--root", str(root),
                          "--config", str(conf)], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, PYTHONPATH=REPO))
    assert res.returncode == 0, res.stderr
    imported = {line.split("|")[-1].strip() for line in res.stderr.splitlines()
                if line.startswith("import time:")}
    assert "guestagent.runner" in imported  # -X importtime did report
    return imported, res.stderr


def modules_after(root, conf, stage):
    """Every module a stage's process had imported by its end (``-X
    importtime`` misses those importlib.import_module loads, as steps are)."""
    dump = root.parent / "modules.txt"
    script = ("import sys\nfrom guestagent import cli\n"
              f"code = cli.main(['--once', '--stage', {stage!r}, '--verbose', '--root', "
              f"{str(root)!r}, '--config', {str(conf)!r}])\n"
              f"open({str(dump)!r}, 'w').write('\\n'.join(sorted(sys.modules)))\n"
              "sys.exit(code)\n")
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, env=dict(os.environ, PYTHONPATH=REPO))
    assert res.returncode == 0, res.stderr
    return set(dump.read_text().split()), res.stderr


def test_a_later_boot_imports_no_done_step_but_those_that_check_what_they_left(
        root, instance):
    """A per-instance step done for the instance is passed over without
    importing its module, save hostkeys and users (steps.CHECKED_WHEN_DONE),
    which check what they left; the record still says done-before."""
    boot, conf = instance(user_data="#cloud-config\nwrite_files:\n"
                                    "  - {path: /etc/ga-written, content: hi}\n")
    boot()
    assert (root / "etc/ga-written").read_text() == "hi"
    (root / "sys/class/block/vda/size").write_text("41943040\n")  # so the agent runs
    imported, log = modules_after(root, conf, "local")
    assert "write_files: already done for instance" in log, log
    assert "guestagent.runner" in imported
    done = {"write_files", "admin_pass", "injected_files", "passwords", "machine_id",
            "random_seed", "network", "mounts", "disk_setup"}
    assert not {f"guestagent.steps.{n}" for n in done} & imported
    assert {"guestagent.steps.users", "guestagent.steps.hostkeys",
            "guestagent.steps.growroot", "guestagent.steps.hostname"} <= imported
    status = json.loads((root / "var/lib/guestagent/status.json").read_text())
    records = {s["name"]: s for s in status["last"]["steps"]}
    assert {records[n]["result"] for n in done} == {"done-before"}
    assert records["write_files"]["frequency"] == "per-instance"


def test_the_final_stage_runs_scripts_and_runcmd_without_parsing_yaml_again(root, instance):
    """The first boot's final stage reads the #cloud-config the config stage
    stored and splits the user-data for its scripts without parsing YAML."""
    from email.mime.multipart import MIMEMultipart
    from email.mime.text import MIMEText
    msg = MIMEMultipart()
    msg.attach(MIMEText("#cloud-config\nruncmd:\n  - [/bin/true]\n", "cloud-config"))
    msg.attach(MIMEText("#!/bin/sh\ntrue\n", "x-shellscript"))
    boot, conf = instance(user_data=msg.as_string())
    boot()
    assert (root / "run/guestagent/final-pending").exists()
    imported, log = imports_of(root, conf, "final")
    assert "yaml" not in imported
    assert "scripts: script 'part-002' exited 0" in log, log
    assert "runcmd: runcmd (1 command) exited 0" in log, log
