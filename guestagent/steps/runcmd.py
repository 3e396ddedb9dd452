"""Run #cloud-config runcmd once per instance, after the user-data scripts.

The commands become one sh script (strings are shell lines, argv lists are
quoted), as in cloud-init: a failing command does not stop the next, and
the script's exit status is the last command's.
"""

from . import PER_INSTANCE

FREQUENCY = PER_INSTANCE


def pending(ctx):
    """Anything to run?  (See scripts.pending.)"""
    return ctx.config.getbool("userdata", "enabled") and bool(ctx.cloud_config.get("runcmd"))


def run(ctx):
    from ..userdata import execute
    try:
        return execute.run_commands(ctx, "runcmd")
    except execute.ScriptsFailed:
        # failed is still done: a reboot must not run the commands again
        ctx.state.mark_done(ctx.metadata.instance_id, "runcmd")
        raise
