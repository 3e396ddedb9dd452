"""Background steps run beside the steps after them; results keep their order."""

import sys
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


def test_background_step_overlaps_the_next_steps(root, monkeypatch):
    log = []
    monkeypatch.setitem(sys.modules, "guestagent.steps.slowbg", _module("slowbg", 0.6, log))
    monkeypatch.setitem(sys.modules, "guestagent.steps.fast1", _module("fast1", 0.2, log))
    monkeypatch.setitem(sys.modules, "guestagent.steps.fast2", _module("fast2", 0.2, log))
    monkeypatch.setattr(steps, "CONFIG_STEPS", ["slowbg", "fast1", "fast2"])
    monkeypatch.setattr(steps, "ALL_STEPS", ["slowbg", "fast1", "fast2"])
    monkeypatch.setattr(steps, "BACKGROUND_STEPS", {"slowbg"})
    cfg = config_mod.load(f"{EXAMPLES}/demo.conf")
    t0 = time.monotonic()
    code = runner.run(System(str(root)), cfg, stage="all")
    took = time.monotonic() - t0
    assert code == 0
    starts = {n: t for n, what, t in log if what == "start"}
    ends = {n: t for n, what, t in log if what == "end"}
    assert starts["fast1"] < ends["slowbg"], "fast1 waited for the background step"
    assert took < 0.6 + 0.2 + 0.2  # not the sum: the slow one ran beside the others
    import json
    status = json.loads((root / "var/lib/guestagent/status.json").read_text())
    assert [s["name"] for s in status["last"]["steps"]] == ["slowbg", "fast1", "fast2"]
    assert status["last"]["steps"][0]["changes"] == ["slowbg slept 0.6 s"]
