"""One interpreter per boot: the stage units' sh script (units/guestagent-stage)
signals the boot's process (guestagent/boot_process.py) through the FIFO and
locks of guestagent/boot/signals.py, under a scratch root.

The script runs for real (sh, flock(1)); the process runs either in a thread
of this test (so that its steps can be stand-ins that block until told) or
as a real `python -m guestagent --boot` (READY=1 on a socket standing in for
systemd's, killed to show the script then runs the stage itself).
"""

import json
import os
import signal
import socket
import subprocess
import threading
import time

import pytest

from guestagent import boot_process, cli, steps
from guestagent.boot import readiness
from guestagent.boot.signals import RUN_DIR

from support import EXAMPLES, REPO, agent_argv

STAGE = os.path.join(REPO, "units", "guestagent-stage")
CONF = f"{EXAMPLES}/demo.conf"

pytestmark = pytest.mark.skipif(not __import__("shutil").which("flock"),
                                reason="needs flock(1) (util-linux)")


def _step(name, run, pending=None, background=False):
    return steps.Step(name, run, steps.PER_BOOT, needs_metadata=False, background=background,
                      pending=pending)


def signal_stage(stage, root, env=None, timeout=30):
    """What systemd runs as the stage unit's ExecStart=."""
    return subprocess.run(["sh", STAGE, stage, str(root)], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, **(env or {})))


def start_signal(stage, root):
    return subprocess.Popen(["sh", STAGE, stage, str(root)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


class InThread:
    """boot_process.main in a thread of this test, so stand-in steps work."""

    def __init__(self, root, lineup):
        self.code = None
        self.thread = threading.Thread(target=self._main, args=(root, lineup), daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not (root / RUN_DIR.lstrip("/") / "request").exists():
            assert time.monotonic() < deadline, "the process never opened its channel"
            time.sleep(0.02)

    def _main(self, root, lineup):
        self.code = boot_process.main(str(root), CONF, lineup)

    def join(self, timeout=30):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the boot's process is still waiting"
        return self.code


@pytest.fixture
def stand_ins(monkeypatch):
    """The process's steps: a Lineup of stand-ins, nothing prefetched."""
    monkeypatch.setattr(readiness, "_hook", None)
    monkeypatch.setattr(readiness, "_sent", False)
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.setattr(boot_process, "PREFETCH_FIRST", ())
    monkeypatch.setattr(boot_process, "PREFETCH_LAST", ())
    from guestagent import datasources
    monkeypatch.setattr(datasources, "_stage_started", None)

    def use(config, final=()):
        return steps.Lineup(list(config), list(final), beside={})
    yield use
    readiness.handled_by(None)


def runs(root):
    st = json.loads((root / "var/lib/guestagent/status.json").read_text())
    return [(r["stage"], [s["name"] for s in r["steps"]], r["exit_code"]) for r in st["runs"]]


def test_the_unit_ends_when_a_login_can_start_and_growroot_goes_on(root, stand_ins):
    """The config drive's boot: the local unit's script returns (exit 0)
    while the background step still runs in the process; the process then
    finishes it, finds no stage owed (the local stage configured the boot,
    no user scripts) and exits 0."""
    go_on = threading.Event()
    seen = {}

    def slow_grow(ctx):
        seen["released"] = go_on.wait(20)
        return ["grew it"]

    def quick(ctx):
        seen["quick"] = time.monotonic()
        return []

    lineup = stand_ins([_step("slowgrow", slow_grow, background=True), _step("quick", quick)])
    proc = InThread(root, lineup)
    unit = signal_stage("local", root)
    ended = time.monotonic()
    assert unit.returncode == 0, unit.stdout + unit.stderr
    assert "running the stage here" not in unit.stdout  # the process did it
    assert proc.thread.is_alive() and not go_on.is_set(), "the unit waited for growroot"
    assert seen["quick"] <= ended
    assert (root / "run/guestagent/local-configured").exists()
    go_on.set()
    assert proc.join() == 0
    assert seen["released"]
    assert runs(root) == [("local", ["slowgrow", "quick"], 0)]


def test_a_stage_whose_unit_did_not_start_is_passed_over(root, stand_ins, tmp_path):
    """A metadata boot: no local signal (guestagent-local-source skipped the
    unit), the network unit signals; a script is left for the final stage,
    so the process waits for that unit too, then exits."""
    order, ages = [], []

    def config_step(ctx):
        from guestagent.datasources import process_age
        order.append(("config", ctx.stage.name))
        ages.append(process_age())
        return ["configured"]

    def script(ctx):
        order.append(("final", ctx.stage.name))
        return ["ran the script"]

    lineup = stand_ins([_step("conf", config_step)],
                       final=[_step("script", script, pending=lambda ctx: True)])
    proc = InThread(root, lineup)
    time.sleep(1.5)  # the process waits for the network to come up, say
    unit = signal_stage("network", root)
    assert unit.returncode == 0, unit.stdout + unit.stderr
    assert (root / "run/guestagent/final-pending").exists()
    assert proc.thread.is_alive(), "the process left before the final stage's unit came"
    unit = signal_stage("final", root)
    assert unit.returncode == 0, unit.stdout + unit.stderr
    assert proc.join() == 0
    assert order == [("config", "network"), ("final", "final")]
    # the deadline (and ssh_wait) count from the unit's signal, not from the
    # process's early start: the network stage gets its whole deadline
    assert ages and ages[0] < 1.5, ages
    assert runs(root)[-1] == ("final", ["script"], 0)
    # a unit started again later finds its stage over, and runs it itself
    # (by hand, as systemctl restart would): the result was read once
    again = signal_stage("local", root, env={"GUESTAGENT": str(_recorder(tmp_path))})
    assert again.returncode == 0
    assert (tmp_path / "argv").read_text().split() == ["--once", "--stage", "local",
                                                       "--root", str(root)]


def test_a_step_that_failed_before_readiness_fails_the_unit(root, stand_ins):
    go_on = threading.Event()

    def broken(ctx):
        raise RuntimeError("useradd said no")

    lineup = stand_ins([_step("slowgrow", lambda ctx: go_on.wait(20) and [], background=True),
                        _step("broken", broken)])
    proc = InThread(root, lineup)
    unit = signal_stage("local", root)
    assert unit.returncode == 1, unit.stdout + unit.stderr
    go_on.set()
    # reported by the unit: not again by the process's own exit code
    assert proc.join() == 0


def test_a_failure_after_the_unit_ended_is_the_process_exit_code(root, stand_ins):
    go_on = threading.Event()

    def grow_fails(ctx):
        go_on.wait(20)
        raise RuntimeError("growpart failed")

    lineup = stand_ins([_step("slowgrow", grow_fails, background=True),
                        _step("quick", lambda ctx: [])])
    proc = InThread(root, lineup)
    unit = signal_stage("local", root)
    assert unit.returncode == 0, unit.stdout + unit.stderr
    go_on.set()
    assert proc.join() == 1


def _recorder(tmp_path):
    """A stand-in /usr/bin/guestagent that records its argv."""
    stub = tmp_path / "guestagent-stub"
    stub.write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path}/argv\nexit 0\n")
    stub.chmod(0o755)
    return stub


def test_no_process_the_stage_runs_in_the_unit(root, tmp_path):
    """guestagent-main.service masked or never started: the script runs
    `guestagent --once --stage STAGE` itself, as the units did before."""
    res = signal_stage("network", root, env={"GUESTAGENT": str(_recorder(tmp_path))})
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "argv").read_text().split() == ["--once", "--stage", "network",
                                                       "--root", str(root)]


@pytest.fixture
def notify_socket(tmp_path):
    path = str(tmp_path / "notify")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(60)
    yield s, path
    s.close()


def start_boot_process(root, conf, notify):
    return subprocess.Popen(agent_argv() + ["--boot", "--root", str(root), "--config", str(conf)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=REPO, NOTIFY_SOCKET=notify))


def test_the_real_process_says_ready_then_serves_the_units(root, tmp_path, notify_socket):
    """`guestagent --boot` as the unit runs it: READY=1 once its imports are
    done, then the local unit finds no config drive (exit 0: the network
    stage will look), the network unit finds no datasource (exit 3, as the
    unit did before) and the process, with no stage owed, exits 0: the 3 was
    the unit's to show."""
    sock, path = notify_socket
    conf = tmp_path / "none.conf"
    conf.write_text("[main]\ndatasources = configdrive\ndeadline = 1\n"
                    "[configdrive]\npath = /nonexistent\n")
    proc = start_boot_process(root, conf, path)
    try:
        assert sock.recv(4096).decode().startswith("READY=1\nSTATUS=")
        local = signal_stage("local", root)
        assert local.returncode == 0, local.stdout + local.stderr
        network = signal_stage("network", root)
        assert network.returncode == 3, network.stdout + network.stderr
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()
    err = proc.stderr.read()
    assert "the network stage will look" in err and "no datasource found" in err, err
    assert runs(root)[-1][0] == "network"


def test_guestagent_debug_on_the_kernel_command_line_shows_the_writes(root, tmp_path,
                                                                      notify_socket):
    """The boot's process reads guestagent.debug from the kernel command line
    as `--once` does: its console then shows each write as it starts (what
    the power-cut sweep anchors on); without it, it does not."""
    sock, path = notify_socket
    conf = tmp_path / "none.conf"
    conf.write_text("[main]\ndatasources = configdrive\ndeadline = 1\n"
                    "[configdrive]\npath = /nonexistent\n")
    seen = []
    for cmdline in ("root=/dev/vda1 ro quiet\n", "root=/dev/vda1 ro guestagent.debug\n"):
        (root / "proc").mkdir(exist_ok=True)
        (root / "proc/cmdline").write_text(cmdline)
        proc = start_boot_process(root, conf, path)
        try:
            while not sock.recv(4096).decode().startswith("READY=1\n"):
                pass  # the first process's last words
            signal_stage("local", root)
            signal_stage("network", root)
            proc.wait(timeout=60)
        finally:
            proc.kill()
            proc.wait()
        seen.append(proc.stderr.read())
    assert "writing /var/lib/guestagent/status.json" not in seen[0], seen[0]
    assert "guestagent: writing /var/lib/guestagent/status.json" in seen[1], seen[1]


def test_a_process_that_died_leaves_the_stage_to_its_unit(root, tmp_path, notify_socket):
    """Killed with the unit's signal unanswered: the kernel frees its lock,
    no result is there, and the script runs the stage itself."""
    sock, path = notify_socket
    proc = start_boot_process(root, CONF, path)
    try:
        assert sock.recv(4096).startswith(b"READY=1")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert (root / RUN_DIR.lstrip("/") / "request").exists()  # left behind, unheard
    res = signal_stage("local", root, env={"GUESTAGENT": str(_recorder(tmp_path))})
    assert res.returncode == 0, res.stderr
    assert "ended before the local stage was done; running the stage here" in res.stdout
    assert (tmp_path / "argv").read_text().split() == ["--once", "--stage", "local",
                                                       "--root", str(root)]


def test_an_unsafe_own_file_exits_as_the_cli_does():
    assert boot_process.EXIT_UNSAFE == cli.EXIT_UNSAFE


def test_every_module_it_prefetches_exists():
    """A name here that no longer imports (a module moved) would be skipped
    in silence at boot, and its import paid on sshd's path again."""
    import importlib
    for name in boot_process.PREFETCH_FIRST + boot_process.PREFETCH_LAST:
        importlib.import_module(name)
    assert set(steps.Lineup().config) == set(steps.CONFIG_STEPS)  # the steps come from here
