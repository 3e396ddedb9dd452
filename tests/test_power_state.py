"""power_state: parsed as cloud-init documents it, asked by the step, acted on by
the runner after the stage (never under --root), once per instance."""

import pytest

from guestagent.steps import Skip
from guestagent.steps import power_state as step
from guestagent.system import power
from guestagent.userdata import decode

from support.step_context import StepContext

# cloud-init's documented examples
EXAMPLE_1 = b"""#cloud-config
power_state:
    delay: now
    mode: poweroff
    message: Powering off
    timeout: 2
    condition: true
"""
EXAMPLE_2 = b"""#cloud-config
power_state:
    delay: 30
    mode: reboot
    message: Rebooting machine
    condition: test -f /var/tmp/reboot_me
"""


def cc(text):
    ud = decode(text, 1 << 20)
    assert ud.warnings == []
    return ud.cloud_config


def test_documented_examples_parse():
    assert cc(EXAMPLE_1)["power_state"] == {"mode": "poweroff", "delay": "now",
                                            "message": "Powering off", "timeout": 2.0,
                                            "condition": True}
    assert cc(EXAMPLE_2)["power_state"] == {"mode": "reboot", "delay": "+30",
                                            "message": "Rebooting machine",
                                            "condition": "test -f /var/tmp/reboot_me"}


def test_poweroff_is_asked_for_and_only_logged_under_root(root, caplog):
    ctx = StepContext(root, cloud_config=cc(EXAMPLE_1))
    assert step.run(ctx) == ["poweroff now once the final stage is done"]
    [req] = ctx.power_requests
    assert (req.mode, req.delay, req.message) == ("poweroff", "now", "Powering off")
    caplog.set_level("INFO")
    assert power.act(ctx.system, ctx.power_requests) is req  # not live: nothing happens
    assert "would poweroff now (power_state), but not under --root" in caplog.text


def test_condition_command_decides(root, tmp_path):
    flag = tmp_path / "reboot_me"
    text = EXAMPLE_2.replace(b"/var/tmp/reboot_me", str(flag).encode())
    with pytest.raises(Skip, match="exited 1"):
        step.run(StepContext(root, cloud_config=cc(text)))
    flag.touch()
    ctx = StepContext(root, cloud_config=cc(text))
    assert step.run(ctx) == ["reboot in 30 min once the final stage is done"]
    # the scratch root has no /run/systemd/system: shutdown(8) schedules it
    assert ctx.power_requests[0].argv(ctx.system) == ["shutdown", "-r", "+30",
                                                      "Rebooting machine"]
    (root / "run/systemd/system").mkdir(parents=True)
    argv = ctx.power_requests[0].argv(ctx.system)
    if ctx.system.which("systemd-run"):
        assert argv == ["systemd-run", "--quiet", "--unit=guestagent-power-state",
                        "--on-active=30min", "systemctl", "--no-block", "reboot"]


def test_condition_false_and_timeout(root):
    with pytest.raises(Skip, match="condition is false"):
        step.run(StepContext(root, cloud_config={"power_state": {"mode": "halt",
                                                                 "condition": False}}))
    ctx = StepContext(root, cloud_config={"power_state": {"mode": "halt", "timeout": 0.5,
                                                          "condition": ["sleep", "5"]}})
    with pytest.raises(Skip, match="could not run"):
        step.run(ctx)


@pytest.mark.parametrize("doc, warning", [
    (b"power_state: {mode: explode}", "'power_state': expected a mapping whose mode"),
    (b"power_state: reboot", "'power_state': expected a mapping"),
    (b"power_state: {mode: reboot, delay: soon}", "should be now, +MINUTES"),
])
def test_bad_values_are_warnings(doc, warning):
    ud = decode(b"#cloud-config\n" + doc + b"\n", 1 << 20)
    assert any(warning in w for w in ud.warnings), ud.warnings


def test_an_explicit_poweroff_wins_over_a_package_reboot(root):
    system = StepContext(root).system
    reqs = [power.Request("reboot", reason="packages"), power.Request("poweroff",
                                                                      reason="power_state")]
    assert power.act(system, reqs).mode == "poweroff"


def test_once_per_instance_through_the_runner(tmp_path, run_agent, root):
    from support.userdata_helpers import Drive
    d = Drive(tmp_path, run_agent, root)
    d.user_data("#cloud-config\npower_state: {mode: reboot, message: bye}\n")
    res = d.run("--only", "power_state")
    assert res.returncode == 0, res.stderr
    assert "would reboot now (power_state), but not under --root" in res.stderr
    assert d.step("power_state")["result"] == "changed"
    res = d.run("--only", "power_state")
    assert "would reboot" not in res.stderr
    assert d.step("power_state")["result"] == "done-before"
