"""#cloud-config keyboard, once per instance, in the final stage.

    keyboard: {layout: de, model: pc105, variant: nodeadkeys, options: compose:rwin}

Debian/Ubuntu: /etc/default/keyboard (XKBMODEL, XKBLAYOUT, XKBVARIANT,
XKBOPTIONS; read by console-setup and X), applied at once with `setupcon
--save-only` where console-setup is installed.  Elsewhere `localectl
set-x11-keymap` (live systems only).
"""


from ..system import CommandFailed
from . import PER_INSTANCE, Skip, asked_for

FREQUENCY = PER_INSTANCE
CONF = "/etc/default/keyboard"


def pending(ctx):
    return bool(ctx.cloud_config.get("keyboard"))


def run(ctx):
    kb = asked_for(ctx, "keyboard")
    system = ctx.system
    if system.exists("/etc/debian_version"):
        text = (f'XKBMODEL="{kb["model"]}"\nXKBLAYOUT="{kb["layout"]}"\n'
                f'XKBVARIANT="{kb["variant"]}"\nXKBOPTIONS="{kb["options"]}"\n'
                'BACKSPACE="guess"\n')
        system.write_file(CONF, "# written by guestagent from #cloud-config keyboard\n" + text)
        changes = [f"keyboard {kb['layout']} ({kb['model']}) in {CONF}"]
        if system.live and system.which("setupcon"):
            system.run(["setupcon", "--save-only"], timeout=60)
        return changes
    if not system.live:
        raise Skip("not a Debian-family root and not live: localectl needs the running system")
    if not system.which("localectl"):
        raise RuntimeError("keyboard: no /etc/default/keyboard convention and no localectl")
    try:
        system.run(["localectl", "set-x11-keymap", kb["layout"], kb["model"],
                    kb["variant"], kb["options"]], timeout=60, check=True)
    except CommandFailed as e:
        raise RuntimeError(f"cannot set keyboard {kb['layout']}: {e}") from None
    return [f"keyboard {kb['layout']} ({kb['model']}) via localectl"]
