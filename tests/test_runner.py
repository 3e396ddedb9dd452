import json

import pytest

from guestagent import config, runner, steps
from guestagent.state import State
from guestagent.system import System

from support import EXAMPLES

DEMO_CONF = f"{EXAMPLES}/demo.conf"


@pytest.mark.parametrize("plant", [
    ("etc/guestagent/disabled", ""),
    ("proc/cmdline", "root=/dev/vda1 guestagent=disabled quiet\n"),
    ("usr/bin/cloud-init", "#!/bin/sh\n"),
])
def test_stands_aside_when_disabled(root, run_agent, plant):
    path, text = plant
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    (root / path).write_text(text)
    res = run_agent("--once", "--root", root, "--config", DEMO_CONF)
    assert res.returncode == 0
    assert "standing aside" in res.stderr
    assert not (root / "var/lib/guestagent/instance-id").exists()


def test_debug_console_from_the_kernel_command_line(root, run_agent):
    """guestagent.debug on the kernel command line: the console shows each
    step and command as it starts (what the power-cut sweep anchors on);
    without it the console keeps to what was found and changed."""
    res = run_agent("--once", "--root", root, "--config", DEMO_CONF)
    assert "new instance" in res.stderr
    assert ": begins" not in res.stderr and "writing /" not in res.stderr
    (root / "proc").mkdir(exist_ok=True)
    (root / "proc/cmdline").write_text("root=/dev/vda1 ro guestagent.debug quiet\n")
    res = run_agent("--once", "--root", root, "--config", DEMO_CONF)
    assert "guestagent: users: begins" in res.stderr, res.stderr
    # the done markers are written (and said) after each step's work
    assert "guestagent: writing /var/lib/guestagent/status.json" in res.stderr, res.stderr


def test_cloud_init_disabled_does_not_block(root, run_agent):
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/cloud-init").write_text("#!/bin/sh\n")
    (root / "etc/cloud").mkdir(parents=True)
    (root / "etc/cloud/cloud-init.disabled").write_text("")
    res = run_agent("--once", "--root", root, "--config", DEMO_CONF)
    assert "standing aside" not in res.stderr
    assert (root / "var/lib/guestagent/instance-id").exists()


def test_new_instance_then_same_instance(root, run_agent):
    res = run_agent("--once", "--root", root, "--config", DEMO_CONF)
    assert res.returncode in (0, 1), res.stderr
    assert "new instance" in res.stderr
    status = json.loads(run_agent("status", "--json", "--root", root).stdout)
    assert status["last"]["new_instance"] is True
    res = run_agent("--once", "--root", root, "--config", DEMO_CONF)
    assert "same instance" in res.stderr
    status = json.loads(run_agent("status", "--json", "--root", root).stdout)
    assert status["last"]["new_instance"] is False
    per_instance = [s for s in status["last"]["steps"] if s.get("frequency") == "per-instance"]
    assert per_instance
    for s in per_instance:  # skipped ones too: "nothing to do" was decided once
        assert s["result"] == "done-before", s


def test_state_is_root_only_and_metadata_0600(root, run_agent):
    run_agent("--once", "--root", root, "--config", DEMO_CONF)
    state = root / "var/lib/guestagent"
    assert state.stat().st_mode & 0o077 == 0
    md = next(state.glob("instances/*/metadata.json"))
    assert md.stat().st_mode & 0o777 == 0o600


def test_plain_invocation_prints_help_and_changes_nothing(root, run_agent):
    res = run_agent("--root", root)
    assert res.returncode == 0 and "--once" in res.stdout
    assert not (root / "var/lib/guestagent").exists()


def test_config_error_exits_2_naming_the_file(tmp_path, root, run_agent):
    bad = tmp_path / "bad.conf"
    bad.write_text("[main]\nno equals sign here\n")
    res = run_agent("--once", "--root", root, "--config", bad)
    assert res.returncode == 2
    assert str(bad) in res.stderr and "line 2" in res.stderr


def test_unknown_only_step_is_a_usage_error(root, run_agent):
    res = run_agent("--once", "--only", "nosuchstep", "--root", root, "--config", DEMO_CONF)
    assert res.returncode == 2 and "nosuchstep" in res.stderr


def test_later_boot_confirmed_by_dmi_uuid_needs_no_datasource(tmp_path, root, run_agent):
    res = run_agent("--once", "--root", root, "--config", DEMO_CONF)
    iid = json.loads(run_agent("query", "--json", "--root", root, "--config",
                               DEMO_CONF).stdout)["instance_id"]
    dmi = root / "sys/devices/virtual/dmi/id"  # laid out as sysfs is: through a link
    dmi.mkdir(parents=True)
    (dmi / "product_uuid").write_text(iid.upper() + "\n")
    (root / "sys/class/dmi").mkdir(parents=True)
    (root / "sys/class/dmi/id").symlink_to("../../devices/virtual/dmi/id")
    conf = tmp_path / "net.conf"  # only network sources, and nothing listens
    conf.write_text("[main]\ndatasources = openstack\ndeadline = 0\n"
                    "metadata_url = http://127.0.0.1:9\n")
    res = run_agent("--once", "--stage", "local", "--root", root, "--config", conf)
    assert res.returncode == 0, res.stderr
    assert "DMI system UUID" in res.stderr
    status = json.loads(run_agent("status", "--json", "--root", root).stdout)
    assert status["last"]["instance_id"] == iid


def test_query_key_paths_and_missing_key(root, run_agent):
    run_agent("--once", "--root", root, "--config", DEMO_CONF)
    out = run_agent("query", "hostname", "--root", root, "--config", DEMO_CONF).stdout
    assert out.strip() == "demo.novalocal"
    out = run_agent("query", "raw/meta_data.json/meta/role", "--root", root).stdout
    assert out.strip() == "webserver"
    res = run_agent("query", "nope", "--root", root)
    assert res.returncode == 2 and "no such key" in res.stderr
    assert "not-a-real-password" not in run_agent("query", "--json", "--root", root).stdout


def test_a_missing_root_is_a_usage_error(tmp_path, run_agent):
    for args in (["--once"], ["status"], ["query"], ["check-image"], ["clean", "--all"]):
        res = run_agent(*args, "--root", tmp_path / "nope")
        assert res.returncode == 2, args
        assert "not a directory" in res.stderr and "Traceback" not in res.stderr


def test_host_keys_are_named_after_the_hostname_that_won(tmp_path, root, run_agent):
    """#cloud-config hostname beats the metadata's, and the keys' comment follows."""
    import shutil
    drive = tmp_path / "drive"
    shutil.copytree(f"{EXAMPLES}/configdrive", drive)
    (drive / "openstack/latest/user_data").write_text("#cloud-config\nhostname: cchost\n")
    conf = tmp_path / "c.conf"
    conf.write_text(f"[main]\ndatasources = configdrive\n[configdrive]\npath = {drive}\n")
    res = run_agent("--once", "--root", root, "--config", conf)
    assert res.returncode == 0, res.stderr
    block = res.stdout.split("-----BEGIN SSH HOST KEY FINGERPRINTS-----")[1]
    assert "root@cchost " in block and "root@demo " not in block


def test_local_stage_leaves_the_flag_the_network_unit_checks(root, run_agent):
    from support import REPO
    unit = open(f"{REPO}/units/guestagent.service").read()
    assert "ConditionPathExists=!/run/guestagent/local-configured" in unit
    res = run_agent("--once", "--stage", "local", "--root", root, "--config", DEMO_CONF)
    assert res.returncode == 0, res.stderr
    flag = root / "run/guestagent/local-configured"
    assert flag.read_text().strip() == "83679162-1378-4288-a2d4-70e13ec132aa"


def test_local_stage_without_a_local_source_leaves_no_flag(tmp_path, root, run_agent):
    conf = tmp_path / "net.conf"
    conf.write_text("[main]\ndatasources = configdrive, openstack\n"
                    "[configdrive]\npath = /nonexistent\n")
    res = run_agent("--once", "--stage", "local", "--root", root, "--config", conf)
    assert res.returncode == 0, res.stderr
    assert "the network stage will look" in res.stderr
    assert not (root / "run/guestagent/local-configured").exists()


def test_final_pending_flag_only_while_scripts_or_runcmd_wait(tmp_path, root, run_agent):
    import shutil

    from support import REPO
    unit = open(f"{REPO}/units/guestagent-final.service").read()
    assert "ConditionPathExists=/run/guestagent/final-pending" in unit
    drive = tmp_path / "drive"
    shutil.copytree(f"{EXAMPLES}/configdrive", drive)  # its user_data is a #! script
    conf = tmp_path / "c.conf"
    conf.write_text(f"[main]\ndatasources = configdrive\n[configdrive]\npath = {drive}\n")
    flag = root / "run/guestagent/final-pending"
    run_agent("--once", "--stage", "local", "--root", root, "--config", conf, check=True)
    assert flag.read_text().split() == ["scripts"]
    run_agent("--once", "--stage", "final", "--root", root, "--config", conf, check=True)
    shutil.rmtree(root / "run")  # a reboot empties /run
    run_agent("--once", "--stage", "local", "--root", root, "--config", conf, check=True)
    assert not flag.exists(), "a reboot of the same instance has no final work"
    # a new instance without scripts or runcmd: no final work either
    (drive / "openstack/latest/user_data").write_text("#cloud-config\nhostname: x\n")
    meta = (drive / "openstack/latest/meta_data.json").read_text()
    old_id = "83679162-1378-4288-a2d4-70e13ec132aa"
    (drive / "openstack/latest/meta_data.json").write_text(meta.replace(old_id, "new-1"))
    shutil.rmtree(root / "run")
    run_agent("--once", "--stage", "local", "--root", root, "--config", conf, check=True)
    assert not flag.exists()
    (drive / "openstack/latest/user_data").write_text("#cloud-config\nruncmd: ['echo hi']\n")
    (drive / "openstack/latest/meta_data.json").write_text(meta.replace(old_id, "new-2"))
    run_agent("--once", "--stage", "local", "--root", root, "--config", conf, check=True)
    assert flag.read_text().split() == ["runcmd"]


@pytest.mark.parametrize("ending, runs_again", [
    (steps.Outcome(["ran script a"], ["1 of 2 scripts failed"]), False),
    (steps.Outcome(["created user alice"], ["user bob: useradd failed"], retry=True), True),
    (RuntimeError("could not reach the disk"), True),
])
def test_the_runner_marks_a_failed_step_done_unless_it_asks_to_be_retried(
        root, ending, runs_again):
    """A step that returns its problems with its changes failed, and status
    keeps both; it is done for the instance unless its Outcome asks for a
    retry.  A step that raises changed nothing the runner knows of, and runs
    again on the next boot."""
    calls = []

    def run(ctx):
        calls.append(ctx.metadata.instance_id)
        if isinstance(ending, Exception):
            raise ending
        return ending
    lineup = steps.Lineup([steps.Step("once", run, steps.PER_INSTANCE)], [])
    system = System(str(root))
    cfg = config.load(DEMO_CONF)
    assert runner.run(system, cfg, stage="all", lineup=lineup) == runner.EXIT_STEP_FAILED
    first = State(system).read_status()["last"]["steps"][0]
    if isinstance(ending, Exception):
        assert (first["result"], first["error"], first["changes"]) == (
            "failed", str(ending), [])
    else:
        assert (first["result"], first["error"], first["changes"]) == (
            "failed", ending.problems[0], ending.changes)
    runner.run(system, cfg, stage="all", lineup=lineup)
    second = State(system).read_status()["last"]["steps"][0]
    assert len(calls) == (2 if runs_again else 1)
    assert second["result"] == ("failed" if runs_again else "done-before")
