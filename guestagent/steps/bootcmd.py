"""Run #cloud-config bootcmd at every boot, before the other config steps.

Like runcmd, the commands become one sh script; it runs early in the config
stage, so it holds up the boot for as long as it takes ([userdata]
script_timeout limits it).
"""

from . import PER_BOOT, Outcome, Skip

FREQUENCY = PER_BOOT


def unchanged_inputs(ctx):
    """bootcmd is work on every boot: with any, a reboot always starts the agent."""
    if ctx.config.getbool("userdata", "enabled") and ctx.cloud_config.get("bootcmd"):
        return None
    return []


def run(ctx):
    from ..userdata import execute
    why = execute.nothing_to_run(ctx, "bootcmd")
    if why:
        raise Skip(why)
    return Outcome(*execute.run_commands(ctx, "bootcmd"))
