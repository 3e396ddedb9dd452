"""Which boots a plain run (CI) makes, and which base trees they need.

A boot module with several scenarios names them in ``MATRIX = {name:
dict(image=<build-image options>, ci=<bool>, ...)}`` and parametrises a
class-scoped fixture over those names; a plain run deselects the scenarios
whose ``ci`` is false (``tests/e2e/run --matrix`` boots them all).  Scenario
names are unique across modules: the end of a run lists those not booted.

A module's other boots use the default base tree unless it names the ones
they need in ``BASES`` (``harness.base_variant`` names).

``python tests/e2e/scenarios.py [--matrix]`` prints every base tree CI's boots
(or all boots) need, the default first: tests/run builds them in the
background while the fast tests run.
"""

import glob
import importlib
import os
import sys

import harness

DEFAULT_BASE = harness.base_variant()


def scenario(item):
    """(name, spec) of the MATRIX scenario a collected test boots, or None."""
    matrix = getattr(item.module, "MATRIX", None)
    callspec = getattr(item, "callspec", None)
    if not matrix or callspec is None:
        return None
    for value in callspec.params.values():
        if isinstance(value, str) and value in matrix:
            return value, matrix[value]
    return None


def item_bases(item):
    """The base trees one collected test's boot needs."""
    found = scenario(item)
    if found:
        return {harness.base_variant(**found[1]["image"])}
    return set(getattr(item.module, "BASES", (DEFAULT_BASE,)))


def module_bases(module, every):
    """The base trees a boot module needs: its BASES (default: the default
    tree, unless it has only MATRIX scenarios) and those of its scenarios
    that boot (``every``: also those CI leaves out)."""
    matrix = getattr(module, "MATRIX", {})
    bases = set(getattr(module, "BASES", () if matrix else (DEFAULT_BASE,)))
    return bases | {harness.base_variant(**spec["image"]) for spec in matrix.values()
                    if every or spec["ci"]}


def ordered(bases):
    """The default tree first (most boots wait for it), then by name."""
    return sorted(bases, key=lambda v: (v != DEFAULT_BASE, v))


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    every = "--matrix" in sys.argv
    needed = set()
    for path in sorted(glob.glob(os.path.join(here, "test_*.py"))):
        module = importlib.import_module(os.path.basename(path)[:-3])
        needed |= module_bases(module, every)
    print(" ".join(ordered(needed)))
