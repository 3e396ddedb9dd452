"""#cloud-config final_message: printed to the console when the final stage ends.

As in cloud-init, at every boot, after the scripts and runcmd, with
``$UPTIME``, ``$TIMESTAMP``, ``$VERSION`` and ``$DATASOURCE`` (any case,
``${...}`` too) filled in.  Control characters are shown as '?': the line
goes to the console and the log.
"""

import logging
import re
import time

from .. import __version__
from . import PER_BOOT, Skip

FREQUENCY = PER_BOOT
log = logging.getLogger(__name__)

_VAR = re.compile(r"\$\{([A-Za-z_]+)\}|\$([A-Za-z_]+)")


def pending(ctx):
    return ctx.config.getbool("userdata", "enabled") and bool(
        (ctx.cloud_config or {}).get("final_message"))


def unchanged_inputs(ctx):
    """A final_message is work on every boot (see boot_guard)."""
    return None if pending(ctx) else []


def run(ctx):
    message = (ctx.cloud_config or {}).get("final_message")
    if not message:
        raise Skip("no final_message in #cloud-config")
    text = render(message, {
        "uptime": _uptime(),
        "timestamp": time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()),
        "version": __version__,
        "datasource": ctx.metadata.source if ctx.metadata else "none",
    })
    lines = [_printable(ln) for ln in text.splitlines()] or [""]
    for line in lines:
        log.info("final message: %s", line)
    return [f"printed the final message ({len(lines)} line{'s' if len(lines) != 1 else ''})"]


def render(message, values):
    def sub(m):
        name = (m.group(1) or m.group(2)).lower()
        return values[name] if name in values else m.group(0)
    return _VAR.sub(sub, message)


def _uptime():
    try:  # the machine's uptime, not a file of the image: the host's /proc
        with open("/proc/uptime", encoding="ascii") as f:
            return f.read().split()[0]
    except (OSError, IndexError):
        return "?"


def _printable(line):
    return "".join(c if c.isprintable() or c == "\t" else "?" for c in line)[:1000]


