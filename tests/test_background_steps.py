"""Background steps run beside the steps after them; results keep their order."""

import threading
import time

from guestagent import config as config_mod
from guestagent import runner, steps
from guestagent.system import System

from support import EXAMPLES


def _sleeps(name, seconds, log, then=None):
    """A step that sleeps ``seconds``, then calls ``then()`` where given."""
    def run(ctx):
        log.append((name, "start", time.monotonic()))
        time.sleep(seconds)
        log.append((name, "end", time.monotonic()))
        if then:
            then()
        return [f"{name} slept {seconds} s"]
    return steps.Step(name, run, steps.PER_BOOT, needs_metadata=False)


def _waits_for(name, event, log):
    """A background step that ends only once ``event`` is set by a later step."""
    def run(ctx):
        log.append((name, "start", time.monotonic()))
        # Run in the foreground, this would wait out its timeout: the step
        # that sets the event comes after it in the list.
        saw = event.wait(10)
        log.append((name, "end", time.monotonic()))
        return [f"{name} saw the later step: {saw}"]
    return steps.Step(name, run, steps.PER_BOOT, needs_metadata=False, background=True)


def test_background_step_overlaps_the_next_steps(root):
    log = []
    fast2_ran = threading.Event()
    lineup = steps.Lineup([_waits_for("slowbg", fast2_ran, log), _sleeps("fast1", 0.2, log),
                           _sleeps("fast2", 0.2, log, then=fast2_ran.set)], [])
    cfg = config_mod.load(f"{EXAMPLES}/demo.conf")
    code = runner.run(System(str(root)), cfg, stage="all", lineup=lineup)
    assert code == 0
    starts = {n: t for n, what, t in log if what == "start"}
    ends = {n: t for n, what, t in log if what == "end"}
    assert starts["fast1"] < ends["slowbg"], "fast1 waited for the background step"
    import json
    status = json.loads((root / "var/lib/guestagent/status.json").read_text())
    assert [s["name"] for s in status["last"]["steps"]] == ["slowbg", "fast1", "fast2"]
    assert status["last"]["steps"][0]["changes"] == ["slowbg saw the later step: True"]
