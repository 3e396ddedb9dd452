"""Run #cloud-config runcmd once per instance, after the user-data scripts.

The commands become one sh script (strings are shell lines, argv lists are
quoted), as in cloud-init: a failing command does not stop the next, and
the script's exit status is the last command's.
"""

from . import PER_INSTANCE, Skip

FREQUENCY = PER_INSTANCE


def run(ctx):
    if not ctx.config.getbool("userdata", "enabled"):
        raise Skip("user-data is turned off ([userdata] enabled = no)")
    commands = ctx.cloud_config.get("runcmd")
    if not commands:
        raise Skip("no runcmd in #cloud-config")
    from ..userdata import execute
    script = execute.shell_script(commands, "runcmd")
    label = f"runcmd ({len(commands)} command{'s' if len(commands) != 1 else ''})"
    outcomes = execute.run_all(ctx, [(label, "runcmd", script)], "runcmd")
    try:
        return execute.report(outcomes, "runcmd")
    except execute.ScriptsFailed:
        ctx.state.mark_done(ctx.metadata.instance_id, "runcmd")
        raise
