"""The steps, in the order they run, and what each one declares.

Like tiny-cloud's phases: two short ordered lists.  ``config`` steps run as
soon as metadata is found and must be done before sshd accepts logins;
``final`` steps (user scripts) run late and never hold up a login.

Each step lives in ``guestagent/steps/<name>.py``, or in a package
``guestagent/steps/<name>/`` whose ``__init__.py`` is the step and whose other
modules are the helpers only that step uses; either way it is imported as
``guestagent.steps.<name>`` only when it runs.  A step module defines::

    FREQUENCY = PER_BOOT or PER_INSTANCE
    NEEDS_METADATA = True          # False: runs even with no datasource
    def run(ctx) -> list[str]      # what it changed, in operator's words

and raises `Skip` to say why it did nothing, or `FailedButDone` when it
failed after doing something that must not be done twice (scripts that
ran, files appended to).  The runner does all the bookkeeping: the status,
and the per-instance "done" markers (after a change, a Skip or a
FailedButDone; never after any other failure, so that is retried).  A final step may also define
``pending(ctx) -> bool`` (is there anything to run?), which the config stage
asks so the final unit does not start on a boot with nothing to do.

Two helpers here serve the steps alike: `asked_for` (the #cloud-config
value, or Skip when the user-data does not ask), and `changes_or_failure`
(how a step that does several things ends when some of them failed).
"""

PER_BOOT = "per-boot"
PER_INSTANCE = "per-instance"

# random_seed comes first, so the host keys are made from a pool that has it;
# machine_id next, before the network step and network-pre.target, so
# systemd-networkd's DHCP client id follows a new instance's new machine-id;
# disks are set up and mounted before users, as cloud-init does (its
# disk_setup and mounts come before users_groups), so that a `mounts` entry
# for /home holds the home directories the users step makes;
# hostname comes before hostkeys so the keys' comment names the final host.
CONFIG_STEPS = [
    "random_seed",
    "machine_id",
    "bootcmd",
    "growroot",
    "network",
    "disk_setup",
    "mounts",
    "hostname",
    "users",
    "hostkeys",
    "resolv_conf",
    "admin_pass",
    "passwords",
    "injected_files",
    "write_files",
    "timezone",
]
# locale, keyboard and ntp run late (locale-gen takes seconds, the clients
# restart); repositories and packages come before the user's scripts and runcmd, which
# usually need the packages; wireguard and snap come after packages (which may
# install wireguard-tools or snapd) and before the scripts (which may need the
# tunnel or the snaps); power_state is last (it acts after the stage).
FINAL_STEPS = [
    "locale",
    "keyboard",
    "ntp",
    "yum_repos",
    "apt_configure",
    "packages",
    "wireguard",
    "snap",
    "scripts",
    "runcmd",
    "final_message",
    "power_state",
]
ALL_STEPS = CONFIG_STEPS + FINAL_STEPS
# Run in a thread beside the steps after them (joined before the stage ends):
# they only wait on their own commands and no other step reads what they do.
BACKGROUND_STEPS = {"growroot"}


def when_they_run():
    """step -> ", once per instance, final stage" and the like (for reports)."""
    import importlib

    out = {}
    for name in ALL_STEPS:
        try:
            freq = importlib.import_module(f"{__name__}.{name}").FREQUENCY
        except Exception:  # a report, not a boot: say less rather than fail
            freq = None
        when = {PER_INSTANCE: ", once per instance"}.get(freq, ", every boot" if freq else "")
        out[name] = when + (", final stage" if name in FINAL_STEPS else "")
    return out


class Skip(Exception):
    """The step had nothing to do, for the reason given."""


class FailedButDone(RuntimeError):
    """The step failed, but is done for this instance: a reboot must not run it
    again (the runner records the failure and marks the step done)."""


def asked_for(ctx, key):
    """#cloud-config ``key``'s value; Skip where the user-data does not ask for it."""
    value = ctx.cloud_config.get(key)
    if not value:
        raise Skip(f"no {key} in #cloud-config")
    return value


def changes_or_failure(step, changes, problems, failure="", unchanged=""):
    """How a step that does several things ends: its ``changes``; where any of
    it went wrong, FailedButDone saying ``failure`` (default: the ``problems``
    joined), the changes made beside them logged first, since a failed step
    returns none; Skip(``unchanged``), where that is given, when nothing
    changed."""
    if problems:
        import logging

        log = logging.getLogger(f"{__name__}.{step}")
        for change in changes:
            log.info("%s: %s", step, change)
        raise FailedButDone(failure or "; ".join(problems))
    if unchanged and not changes:
        raise Skip(unchanged)
    return changes
