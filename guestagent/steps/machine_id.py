"""A new machine-id for a new instance on a disk an earlier instance used.

systemd makes /etc/machine-id on an image's first boot (an image sealed
with `guestagent clean --machine-id` ships it empty).  A snapshot of a
running instance, or an image sealed without that, carries the earlier
instance's id: systemd-networkd's DHCP client identifier (DUID/IAID), the
journal's directory and D-Bus all follow it, so two machines would look
like one.  So when this instance is not the first one the agent's state
has seen on this disk, a fresh id is written, made the way
`systemd-id128 new` makes one (128 random bits marked as a v4 UUID,
32 lowercase hex digits).  On the very first instance the id is the one
systemd just made for this boot, and stays.

This runs first in the local stage, before network-pre.target, so
systemd-networkd starts with the new id.  Services already running
(journald) take it at the next boot.  Left alone: an empty or missing file
(systemd fills it), one that is not an id yet ("uninitialized"), a symlink,
and a file systemd has bind-mounted (its /run/machine-id copy, when /etc is
read-only).  ``[main] new_machine_id = no`` turns this off.
"""

import logging
import os
import re
import stat

from ..state import STATE_DIR, safe_id
from . import PER_INSTANCE, Skip

FREQUENCY = PER_INSTANCE
log = logging.getLogger(__name__)

MACHINE_ID = "/etc/machine-id"
DBUS_MACHINE_ID = "/var/lib/dbus/machine-id"
_ID = re.compile(r"[0-9a-f]{32}")


def new_id():
    """128 random bits with a v4 UUID's version and variant, as systemd's
    sd_id128_randomize makes them, in machine-id(5)'s form."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    return b.hex()


def run(ctx):
    system = ctx.system
    earlier = _earlier_instances(ctx)
    if not earlier:
        raise Skip("the first instance on this disk: the machine-id systemd made stays")
    if not ctx.config.getbool("main", "new_machine_id"):
        raise Skip(f"[main] new_machine_id = no: kept {MACHINE_ID}, which an earlier "
                   "instance of this disk used")
    try:
        st = system.lstat(MACHINE_ID)
    except FileNotFoundError:
        raise Skip(f"no {MACHINE_ID}: systemd makes one at boot") from None
    if stat.S_ISLNK(st.st_mode):
        raise Skip(f"{MACHINE_ID} is a symlink: not following it, the id stays")
    if not stat.S_ISREG(st.st_mode):
        raise Skip(f"{MACHINE_ID} is not a regular file: the id stays")
    if _is_mount_point(system, MACHINE_ID, st):
        raise Skip(f"{MACHINE_ID} is a mount point (systemd's copy from /run, /etc read-only "
                   "at boot): nothing written, the id stays for this boot")
    old = system.read_bytes(MACHINE_ID, limit=4096).decode("ascii", "replace").strip()
    if not old:
        raise Skip(f"{MACHINE_ID} is empty (a sealed image): systemd makes the id")
    if not _ID.fullmatch(old):
        raise Skip(f"{MACHINE_ID} does not hold an id yet ({old[:40]!r}): systemd makes it")
    mid = new_id()
    system.write_file(MACHINE_ID, mid + "\n", mode=stat.S_IMODE(st.st_mode), uid=st.st_uid,
                      gid=st.st_gid, make_dirs=False)
    # machine-id(5) asks that the id stay confidential, and the console goes to
    # whoever owns this instance now: eight digits tell the ids apart
    changes = [f"new instance on a used disk: gave this system a new machine-id (was {old[:8]}..., "
               f"the earlier instance's); takes full effect at the next boot for services "
               f"already running (journald)"]
    dbus = _separate_dbus_copy(system)
    if dbus is not None:
        system.write_file(DBUS_MACHINE_ID, mid + "\n", mode=stat.S_IMODE(dbus.st_mode),
                          uid=dbus.st_uid, gid=dbus.st_gid, make_dirs=False)
        changes.append(f"wrote the same id to {DBUS_MACHINE_ID} (D-Bus's own copy)")
    return changes


def _earlier_instances(ctx):
    """The instances other than this one the agent's state has configured on
    this disk (its directories last past this boot, so a retried step still
    sees them after the instance id is recorded)."""
    this = safe_id(ctx.metadata.instance_id)
    return [n for n in ctx.system.listdir(STATE_DIR + "/instances") if n != this]


def _separate_dbus_copy(system):
    """D-Bus's machine-id when it is a file of its own (a symlink to
    /etc/machine-id follows by itself); None otherwise."""
    try:
        st = system.lstat(DBUS_MACHINE_ID)
    except OSError:
        return None
    return st if stat.S_ISREG(st.st_mode) else None


def _is_mount_point(system, path, st):
    """A file mounted over ``path``: another filesystem than its directory's,
    or a mount point the kernel lists (a bind mount from the same one)."""
    host = system.path(path)
    try:
        if os.stat(os.path.dirname(host)).st_dev != st.st_dev:
            return True
    except OSError:
        return False
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                fields = line.split()
                if len(fields) > 4 and _unescape(fields[4]) == host:
                    return True
    except OSError:
        pass
    return False


def _unescape(field):
    # mountinfo writes space, tab, newline and backslash as \ooo
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)
