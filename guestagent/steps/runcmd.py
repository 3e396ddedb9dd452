"""Run #cloud-config runcmd once per instance, after the user-data scripts.

The commands become one sh script (strings are shell lines, argv lists are
quoted), as in cloud-init: a failing command does not stop the next, and
the script's exit status is the last command's.
"""

from . import PER_INSTANCE, Outcome, Skip

FREQUENCY = PER_INSTANCE


def pending(ctx):
    """Anything to run?  (See scripts.pending.)"""
    return ctx.config.getbool("userdata", "enabled") and bool(ctx.cloud_config.get("runcmd"))


def run(ctx):
    from ..userdata import execute
    why = execute.nothing_to_run(ctx, "runcmd")
    if why:
        raise Skip(why)
    # failed is still done: a reboot must not run the commands again
    return Outcome(*execute.run_commands(ctx, "runcmd"))
