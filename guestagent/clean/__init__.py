"""`guestagent clean`: seal an image, so the next boot is a new instance's first.

What a build instance leaves behind that the agent knows about, one
category each (the CLI's flags; `check-image`'s instance-leftovers check
finds the same and ``--fix`` removes it through `find` and `carry_out`):

    state        /var/lib/guestagent: instance id, metadata, done markers,
                 status, the reboot shortcut's list (the installed-keys
                 record is the keys category's, and the network files the
                 agent moved aside the network category's: each stays
                 unless its category settles it)
    logs         [main] log_file, the user-data scripts' and the package
                 manager's logs, and their rotated copies
    network      the files the agent wrote for the build instance's NICs
                 (they carry its header); the image's own files it had
                 moved aside are put back where they were
    host-keys    /etc/ssh/ssh_host_*key* (the agent makes new ones at the
                 next boot)
    machine-id   /etc/machine-id emptied, as systemd expects in an image;
                 a /var/lib/dbus/machine-id that is a file of its own goes
    dhcp-leases  the leases of dhclient, NetworkManager and dhcpcd
                 (systemd-networkd keeps its leases in /run)
    keys         the SSH keys the agent installed from the instance's data
                 (`key_record`); keys baked in or added by hand stay

Nothing else is touched.  Each category that is cleaned without ``state``
also forgets the agent's done marker of the step that would make it again
(hostkeys, users, network) and the reboot shortcut's list, so the next boot
redoes that step even on the same instance.
"""

import logging

log = logging.getLogger(__name__)

# the order they are done in: the key record and the network files moved
# aside are state, read before the state goes
CATEGORIES = ("keys", "network", "state", "host-keys", "machine-id", "dhcp-leases", "logs")
FLAGS = ("state", "logs", "network", "host-keys", "machine-id", "dhcp-leases", "keys")
HELP = {
    "state": "the agent's per-instance state under /var/lib/guestagent, so the next "
             "boot is a first boot",
    "logs": "the agent's logs ([main] log_file, /var/log/guestagent-user-data.log, "
            "/var/log/guestagent-packages.log) and their rotated copies",
    "network": "the network files the agent wrote for this instance's NICs (the "
               "image's own files it moved aside are put back)",
    "host-keys": "the SSH host keys /etc/ssh/ssh_host_*key* (made anew at the next boot)",
    "machine-id": "/etc/machine-id, emptied (systemd makes a new one at the next boot); "
                  "a separate /var/lib/dbus/machine-id file is removed",
    "dhcp-leases": "DHCP leases of dhclient, NetworkManager and dhcpcd",
    "keys": "the SSH keys the agent installed from the instance's metadata or "
            "#cloud-config (keys baked in or added by hand stay)",
}
_PAST = {"remove": "removed", "empty": "emptied", "restore": "restored",
         "take out": "took out", "forget": "forgot"}


class Action:
    """One change: ``verb`` ``path`` (``detail``), done by ``do()``."""

    refusal = False  # a thing that must stay (targets.Refusal)

    def __init__(self, category, verb, path, do, detail=""):
        self.category, self.verb, self.path, self.do, self.detail = (
            category, verb, path, do, detail)

    def describe(self, done=True):
        verb = _PAST[self.verb] if done else f"would {self.verb}"
        return f"{verb} {self.path}" + (f" ({self.detail})" if self.detail else "")


def find(system, config, categories):
    """The actions that clean ``categories`` on ``system``, in the order they
    must run (keys and network before the state that records them)."""
    from . import network, targets
    chosen = [c for c in CATEGORIES if c in categories]
    actions = []
    for c in chosen:
        if c == "network":
            actions += network.find(system)
        else:
            actions += getattr(targets, c.replace("-", "_"))(system, config)
    if "state" not in chosen:
        actions += targets.forget_steps(system, chosen)
    return actions


def carry_out(actions):
    """Do each action, logging it; returns (lines said, lines of failures)."""
    from ..system import UnsafePathError
    done, failed = [], []
    for a in actions:
        try:
            a.do()
        except (OSError, UnsafePathError, RuntimeError) as e:
            line = a.describe() if a.refusal else f"could not {a.verb} {a.path}: {_reason(e)}"
            log.warning("clean: %s", line)
            failed.append(line)
            continue
        line = a.describe()
        log.info("clean: %s", line)
        done.append(line)
    return done, failed


def _reason(e):
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or type(e).__name__
