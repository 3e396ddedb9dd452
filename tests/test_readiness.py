"""READY=1 to systemd: sent while growroot still runs, after the flags the later
units read are down, and on every way out of a unit's stage (Type=notify)."""

import socket
import time

import pytest

from guestagent import config as config_mod
from guestagent import runner, steps
from guestagent.boot import readiness
from guestagent.system import System

from support import EXAMPLES


@pytest.fixture
def notify_socket(tmp_path, monkeypatch):
    """A datagram socket standing in for systemd's, named in $NOTIFY_SOCKET."""
    path = str(tmp_path / "notify")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(20)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setattr(readiness, "_sent", False)
    yield s
    s.close()


def _step(name, run, background=False):
    return steps.Step(name, run, steps.PER_BOOT, needs_metadata=False, background=background)


def test_ready_while_the_background_step_runs(root, notify_socket):
    seen = {}

    def slow_grow(ctx):
        # ends only once READY=1 has arrived: sent before the stage waits for it
        seen["message"] = notify_socket.recv(4096).decode()
        seen["t_ready"] = time.monotonic()
        seen["flag"] = (root / "run/guestagent/local-configured").exists()
        return ["grew it"]

    def quick(ctx):
        seen["t_quick_done"] = time.monotonic()
        return []

    lineup = steps.Lineup([_step("slowgrow", slow_grow, background=True),
                           _step("quick", quick)], [])
    cfg = config_mod.load(f"{EXAMPLES}/demo.conf")
    code = runner.run(System(str(root)), cfg, stage="local", lineup=lineup)
    assert code == 0
    assert seen["message"] == "READY=1\nSTATUS=slowgrow still running"
    assert seen["t_quick_done"] <= seen["t_ready"]
    # guestagent.service's condition reads this flag as soon as the unit is up
    assert seen["flag"], "READY=1 came before /run/guestagent/local-configured"
    import json
    status = json.loads((root / "var/lib/guestagent/status.json").read_text())
    assert status["last"]["steps"][0]["changes"] == ["grew it"]
    assert readiness.ready() is False  # once only


def test_ready_on_a_stage_with_nothing_to_do(tmp_path, root, notify_socket, run_agent):
    """No local datasource: no step runs, and the unit must still be told."""
    conf = tmp_path / "net.conf"
    conf.write_text("[main]\ndatasources = configdrive, openstack\n"
                    "[configdrive]\npath = /nonexistent\n")
    res = run_agent("--once", "--stage", "local", "--root", root, "--config", conf)
    assert res.returncode == 0, res.stderr
    assert notify_socket.recv(4096) == b"READY=1"


def test_no_socket_no_message(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.setattr(readiness, "_sent", False)
    assert readiness.ready() is False
    monkeypatch.setattr(readiness, "_sent", False)
    monkeypatch.setenv("NOTIFY_SOCKET", "/nonexistent/notify")
    assert readiness.ready() is False  # a socket that is gone: the boot goes on
