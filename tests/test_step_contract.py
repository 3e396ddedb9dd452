"""The step contract (guestagent/steps/__init__.py): every step keeps it, and
one that does not fails when it is loaded, naming what is wrong, while the
other steps of the stage still run."""

import types

import pytest

from guestagent import config, runner, steps
from guestagent.state import State
from guestagent.system import System

from support import EXAMPLES


@pytest.mark.parametrize("name", steps.ALL_STEPS)
def test_every_step_keeps_the_contract(name):
    step = steps.load(name)
    assert step.name == name
    assert step.frequency in (steps.PER_BOOT, steps.PER_INSTANCE)


def test_the_hooks_a_step_leaves_out_have_their_documented_defaults():
    step = steps.load("timezone")  # defines none of the optional hooks
    assert step.needs_metadata is True and step.background is False
    assert step.pending(None) is True
    assert step.check_done(None) == ""
    assert step.redo is step.run
    assert steps.load("growroot").background is True
    # a per-boot step that names no inputs has work every boot
    assert steps.Step("a_step", lambda ctx: [], steps.PER_BOOT).unchanged_inputs(None) is None


def _module(**names):
    module = types.ModuleType("a_step")  # never in sys.modules
    module.__dict__.update(names)
    return module


def _run(ctx):
    return []


@pytest.mark.parametrize("names, said", [
    ({"run": _run}, "defines no FREQUENCY"),
    ({"FREQUENCY": steps.PER_BOOT}, "defines no run"),
    ({"FREQUENCY": "per_instance", "run": _run},
     "FREQUENCY is 'per_instance', not 'per-boot' or 'per-instance'"),
    ({"FREQUENCY": steps.PER_BOOT, "run": _run, "NEEDS_METADATA": "no"},
     "NEEDS_METADATA is 'no', not True or False"),
    ({"FREQUENCY": steps.PER_BOOT, "run": lambda: []}, "run is not a function of (ctx)"),
    ({"FREQUENCY": steps.PER_BOOT, "run": _run, "Pending": _run},
     "defines Pending (the contract's name is pending)"),
    ({"FREQUENCY": steps.PER_BOOT, "run": _run, "needs_metadata": False},
     "defines needs_metadata (the contract's name is NEEDS_METADATA)"),
    ({"FREQUENCY": steps.PER_BOOT, "run": _run, "check_done": _run},
     "check_done and redo are asked only of per-instance steps"),
    ({"FREQUENCY": steps.PER_INSTANCE, "run": _run, "unchanged_inputs": _run},
     "unchanged_inputs is asked only of per-boot steps"),
    ({"FREQUENCY": steps.PER_INSTANCE, "run": _run, "pending": _run},
     "defines pending (asked only of final steps)"),
])
def test_a_step_that_breaks_the_contract_fails_at_load_saying_why(names, said):
    with pytest.raises(steps.BrokenStep) as e:
        steps.from_module("hostname", _module(**names))
    assert str(e.value) == f"step hostname: {said}"


@pytest.mark.parametrize("name, names, said", [
    ("hostname", {"check_done": _run}, "defines check_done, but is not in CHECKED_WHEN_DONE"),
    ("users", {}, "defines no check_done, but is in CHECKED_WHEN_DONE"),
])
def test_a_later_boot_loads_exactly_the_steps_that_check_what_they_left(name, names, said):
    """The runner passes a done step over without importing it unless it is
    in CHECKED_WHEN_DONE, so that list and the modules must agree."""
    with pytest.raises(steps.BrokenStep) as e:
        steps.from_module(name, _module(FREQUENCY=steps.PER_INSTANCE, run=_run, **names))
    assert str(e.value) == f"step {name}: {said}"


def test_a_final_step_may_say_whether_it_has_work():
    step = steps.from_module("runcmd", _module(FREQUENCY=steps.PER_INSTANCE, run=_run,
                                               pending=lambda ctx: False))
    assert step.pending(None) is False


def test_only_the_named_steps_load():
    with pytest.raises(steps.BrokenStep, match="no step named 'os'"):
        steps.load("os")


def test_a_step_that_cannot_be_loaded_fails_alone_and_the_others_run(root):
    ran = []

    def quick(ctx):
        ran.append("quick")
        return ["did it"]
    lineup = steps.Lineup(["nosuch", steps.Step("quick", quick, steps.PER_BOOT)], [])
    system = System(str(root))
    code = runner.run(system, config.load(f"{EXAMPLES}/demo.conf"), stage="all",
                      lineup=lineup)
    assert code == runner.EXIT_STEP_FAILED
    broken, done = State(system).read_status()["last"]["steps"]
    assert (broken["name"], broken["result"]) == ("nosuch", "failed")
    assert broken["error"] == "cannot load the step: no step named 'nosuch'"
    assert (done["result"], done["changes"], ran) == ("changed", ["did it"], ["quick"])


def test_a_name_becomes_code_in_one_place():
    """Steps, datasources, renderers and the boot's warm-up all import by name
    through guestagent.named_module, which takes dotted identifiers only."""
    import os

    import guestagent
    from guestagent import named_module
    for bad in ("", "guestagent.steps.", "guestagent.steps/../os", "guestagent.steps.1x",
                "guestagent..steps"):
        with pytest.raises(ImportError, match="not a module name"):
            named_module(bad)
    assert named_module("guestagent.steps.users").FREQUENCY == "per-instance"
    top = os.path.dirname(guestagent.__file__)
    users = []
    for folder, _, files in os.walk(top):
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(folder, name)) as f:
                    if "import_module(" in f.read():
                        users.append(os.path.relpath(os.path.join(folder, name), top))
    assert users == ["__init__.py"]
