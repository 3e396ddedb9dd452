"""#cloud-config timezone, once per instance.

The name must be a zone the image has (/usr/share/zoneinfo/NAME, a TZif
file): anything else is refused with the reason, and the clock's zone stays
as it was.  /etc/localtime becomes a symlink to the zone (what systemd and
timedatectl read), and /etc/timezone is written where the image keeps one
(Debian, Ubuntu).
"""

import re

from . import PER_INSTANCE, Skip, asked_for

FREQUENCY = PER_INSTANCE
ZONEINFO = "/usr/share/zoneinfo"
_NAME = re.compile(r"^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$")


def run(ctx):
    name = asked_for(ctx, "timezone")
    system = ctx.system
    if not _NAME.match(name) or len(name) > 100:
        raise RuntimeError(f"timezone {name[:60]!r} is not a zone name; the zone is unchanged")
    zone = f"{ZONEINFO}/{name}"
    try:
        magic = system.read_bytes(zone, limit=4)
    except OSError:
        magic = b""
    if magic != b"TZif":
        raise RuntimeError(f"timezone {name!r} is not a zone this image has (no {zone}); "
                           "the zone is unchanged")
    changes = []
    if system.readlink("/etc/localtime") != zone:
        system.symlink("/etc/localtime", zone)
        changes.append(f"/etc/localtime -> {zone}")
    if system.exists("/etc/timezone") or system.exists("/etc/debian_version"):
        if system.read_text("/etc/timezone", default="").strip() != name:
            system.write_file("/etc/timezone", name + "\n")
            changes.append(f"wrote /etc/timezone ({name})")
    if not changes:
        raise Skip(f"the time zone is already {name}")
    return changes
