"""Background steps run beside the steps after them; results keep their order."""

import sys
import threading
import time
import types

from guestagent import config as config_mod
from guestagent import runner, steps
from guestagent.system import System

from support import EXAMPLES


def _module(name, seconds, log, background_name=None):
    mod = types.ModuleType(f"guestagent.steps.{name}")
    mod.FREQUENCY = steps.PER_BOOT
    mod.NEEDS_METADATA = False

    def run(ctx):
        log.append((name, "start", time.monotonic()))
        time.sleep(seconds)
        log.append((name, "end", time.monotonic()))
        return [f"{name} slept {seconds} s"]
    mod.run = run
    return mod


def _waits_for(name, event, log):
    """A background step that ends only once ``event`` is set by a later step."""
    mod = types.ModuleType(f"guestagent.steps.{name}")
    mod.FREQUENCY = steps.PER_BOOT
    mod.NEEDS_METADATA = False

    def run(ctx):
        log.append((name, "start", time.monotonic()))
        # Run in the foreground, this would wait out its timeout: the step
        # that sets the event comes after it in the list.
        saw = event.wait(10)
        log.append((name, "end", time.monotonic()))
        return [f"{name} saw the later step: {saw}"]
    mod.run = run
    return mod


def test_background_step_overlaps_the_next_steps(root, monkeypatch):
    log = []
    fast2_ran = threading.Event()
    fast2 = _module("fast2", 0.2, log)
    plain_run = fast2.run

    def run_and_signal(ctx):
        fast2_ran.set()
        return plain_run(ctx)
    fast2.run = run_and_signal
    slowbg = _waits_for("slowbg", fast2_ran, log)
    monkeypatch.setitem(sys.modules, "guestagent.steps.slowbg", slowbg)
    monkeypatch.setitem(sys.modules, "guestagent.steps.fast1", _module("fast1", 0.2, log))
    monkeypatch.setitem(sys.modules, "guestagent.steps.fast2", fast2)
    monkeypatch.setattr(steps, "CONFIG_STEPS", ["slowbg", "fast1", "fast2"])
    monkeypatch.setattr(steps, "ALL_STEPS", ["slowbg", "fast1", "fast2"])
    monkeypatch.setattr(steps, "BACKGROUND_STEPS", {"slowbg"})
    cfg = config_mod.load(f"{EXAMPLES}/demo.conf")
    code = runner.run(System(str(root)), cfg, stage="all")
    assert code == 0
    starts = {n: t for n, what, t in log if what == "start"}
    ends = {n: t for n, what, t in log if what == "end"}
    assert starts["fast1"] < ends["slowbg"], "fast1 waited for the background step"
    import json
    status = json.loads((root / "var/lib/guestagent/status.json").read_text())
    assert [s["name"] for s in status["last"]["steps"]] == ["slowbg", "fast1", "fast2"]
    assert status["last"]["steps"][0]["changes"] == ["slowbg saw the later step: True"]
