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


def test_side_by_side_step_overlaps_its_companions_and_ends_before_the_rest(root):
    """steps.SIDE_BY_SIDE (hostkeys beside users): it runs while the steps
    named with it run, and is over before the first step not named with it
    starts (write_files may write under /etc/ssh) and before the stage says
    it is ready (sshd needs the keys)."""
    from guestagent.boot import readiness
    log = []
    companion_ran = threading.Event()
    keys = _waits_for("keys", companion_ran, log)
    keys = steps.Step("keys", keys.run, steps.PER_BOOT, needs_metadata=False)  # not background
    slowbg = steps.Step("slowbg", _sleeps("slowbg", 0.3, log).run, steps.PER_BOOT,
                        needs_metadata=False, background=True)
    lineup = steps.Lineup([keys, _sleeps("companion", 0.2, log, then=companion_ran.set),
                           _sleeps("writer", 0.0, log), slowbg], [],
                          beside={"keys": ("companion",)})
    heard = []
    readiness.handled_by(lambda code: heard.append((code, time.monotonic())))
    try:
        cfg = config_mod.load(f"{EXAMPLES}/demo.conf")
        code = runner.run(System(str(root)), cfg, stage="local", lineup=lineup)
    finally:
        readiness.handled_by(None)
    assert code == 0
    starts = {n: t for n, what, t in log if what == "start"}
    ends = {n: t for n, what, t in log if what == "end"}
    assert starts["companion"] < ends["keys"], "the companion waited for the keys"
    assert ends["keys"] <= starts["writer"], "a step not beside the keys ran with them"
    assert len(heard) == 1 and heard[0][0] == 0
    assert ends["keys"] <= heard[0][1] < ends["slowbg"]
    import json
    status = json.loads((root / "var/lib/guestagent/status.json").read_text())
    assert [s["name"] for s in status["last"]["steps"]] == ["keys", "companion", "writer",
                                                           "slowbg"]
    assert status["last"]["steps"][0]["changes"] == ["keys saw the later step: True"]


def test_hostkeys_is_beside_users_and_before_what_writes_files():
    """The real lists: the host keys start before users and are joined
    before injected_files and write_files."""
    beside = steps.SIDE_BY_SIDE["hostkeys"]
    order = steps.CONFIG_STEPS
    first = order.index("hostkeys")
    following = order[first + 1:first + 1 + len(beside)]
    assert following[0] == "users" and tuple(following) == beside, following
    assert order.index("write_files") > first + len(beside)
    assert not {"write_files", "injected_files", "passwords"} & set(beside)
