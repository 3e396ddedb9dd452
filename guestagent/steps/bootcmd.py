"""Run #cloud-config bootcmd at every boot, before the other config steps.

Like runcmd, the commands become one sh script; it runs early in the config
stage, so it holds up the boot for as long as it takes ([userdata]
script_timeout limits it).
"""

from . import PER_BOOT, Skip

FREQUENCY = PER_BOOT


def run(ctx):
    if not ctx.config.getbool("userdata", "enabled"):
        raise Skip("user-data is turned off ([userdata] enabled = no)")
    commands = ctx.cloud_config.get("bootcmd")
    if not commands:
        raise Skip("no bootcmd in #cloud-config")
    from ..userdata import execute
    script = execute.shell_script(commands, "bootcmd")
    label = f"bootcmd ({len(commands)} command{'s' if len(commands) != 1 else ''})"
    outcomes = execute.run_all(ctx, [(label, "bootcmd", script)], "bootcmd")
    return execute.report(outcomes, "bootcmd")
