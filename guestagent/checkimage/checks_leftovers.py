"""instance-leftovers: what a build instance left in the image (`guestagent clean`).

The same list `guestagent clean --all` works from (guestagent/clean), so
what the check reports is exactly what the fix removes.  An image carrying
a machine-id, or SSH keys the agent installed from the build instance's
metadata, fails: every instance made from it would share the one, and the
builder's key pair would open each until its first boot took it out.  The
rest (state, logs, network files, host keys, leases) warns: the agent
redoes those on a new instance, but they should not ship.
"""

import os

from ..clean import CATEGORIES, carry_out, find
from .finding import failed, passed, warned

ID = "instance-leftovers"
_SHARED = ("keys", "machine-id")
_NAMES = {"state": "agent state", "logs": "agent logs", "network": "agent network files",
          "host-keys": "SSH host keys", "machine-id": "machine-id",
          "dhcp-leases": "DHCP leases", "keys": "SSH keys the agent installed"}


def _config(system):
    from ..config import ConfigError, load
    try:
        return load(None, root=system.root)
    except ConfigError:  # the image's own config is not this check's business
        return load(os.devnull)


def check_instance_leftovers(image):
    config = _config(image.system)
    actions = [a for a in find(image.system, config, CATEGORIES) if a.verb != "forget"]
    if not actions:
        return passed(ID, "no trace of an earlier instance (agent state, logs, network files, "
                          "host keys, machine-id, DHCP leases, installed SSH keys)")
    by_category = {}
    for a in actions:
        by_category.setdefault(a.category, []).append(a)
    parts = []
    for c in CATEGORIES:
        if c in by_category:
            shown = [a.path for a in by_category[c]]
            more = f" and {len(shown) - 3} more" if len(shown) > 3 else ""
            parts.append(f"{_NAMES[c]}: {', '.join(shown[:3])}{more}")
    detail = "an earlier instance's traces: " + "; ".join(parts)
    root = "" if image.live else f" --root {image.root}"
    fix = f"guestagent clean --all{root} (or check-image --fix)"
    make = failed if any(c in by_category for c in _SHARED) else warned
    return make(ID, detail, fix, repair=_repair)


def _repair(image):
    config = _config(image.system)
    done, failures = carry_out(find(image.system, config, CATEGORIES))
    return done + failures


CHECKS = [check_instance_leftovers]
