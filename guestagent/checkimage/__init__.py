"""`guestagent check-image`: an image against the OpenStack image requirements.

Each check reads the image tree (``--root``, or the running system) and
returns a `Finding`: pass, warn or fail, with the fix.  ``--fix`` applies the
fixes that only undo build-machine leftovers (MAC-bound rules, HWADDR, the
missing console arguments, NOZEROCONF, units not enabled, and what
`guestagent clean --all` removes) and leaves
anything that changes what the image does on purpose (packages, firewalls,
passwords) to the builder, with the command to run.
"""

import os
import sys

from ..system import System, UnsafePathError
from . import checks_boot, checks_disk, checks_leftovers, checks_network, checks_services
from .finding import FAIL, failed
from .report import as_json, as_table
from .tree import Image

CHECKS = (checks_disk.CHECKS + checks_network.CHECKS + checks_boot.CHECKS
          + checks_services.CHECKS + checks_leftovers.CHECKS)


def run_checks(image):
    findings = []
    for check in CHECKS:
        try:
            findings.append(check(image))
        except Exception as e:  # one broken check must not hide the others
            name = check.__name__.replace("check_", "").replace("_", "-")
            findings.append(failed(name, f"the check itself failed: {e}",
                                   "report this as a guestagent bug"))
    return findings


def apply_fixes(image, findings):
    """Run each finding's safe repair; returns the change lines, in order."""
    lines = []
    for f in findings:
        if f.repair is None:
            continue
        try:
            f.changes = f.repair(image) or []
        except UnsafePathError as e:
            f.changes = [f"could not fix {f.id}: {e}"]
        except Exception as e:  # one fix going wrong must not stop the others
            f.changes = [f"could not fix {f.id}: {type(e).__name__}: {e}"]
        lines += [f"{f.id}: {c}" for c in f.changes]
    return lines


def main(args):
    system = System(args.root)
    image = Image(system)
    findings = run_checks(image)
    changes = []
    if getattr(args, "fix", False):
        changes = apply_fixes(image, findings)
        by_id = {f.id: f.changes for f in findings}
        image = Image(system)  # re-read: the fixes changed the tree
        findings = run_checks(image)
        for f in findings:
            f.changes = by_id.get(f.id, [])
    try:
        _show(args, findings, changes)
    except BrokenPipeError:  # `check-image | head`: the reader has seen enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 1 if any(f.status == FAIL for f in findings) else 0


def _show(args, findings, changes):
    if args.json:
        print(as_json(findings, with_changes=bool(getattr(args, "fix", False))))
    else:
        if getattr(args, "fix", False):
            print("\n".join(["changes made:"] + ["  " + c for c in changes])
                  if changes else "nothing to fix automatically")
            print()
        print(as_table(findings))
    sys.stdout.flush()
