"""Carry out a plan through the System seam: move aside, then write.

What the agent replaces is moved, not deleted, to
/var/lib/guestagent/network-replaced/ under its own path (a directory no
network stack reads), and each move is named in the step's changes.
"""

import logging
import stat
import time

log = logging.getLogger(__name__)

ASIDE_DIR = "/var/lib/guestagent/network-replaced"


def aside_path(system, path):
    dest = ASIDE_DIR + path
    if system.exists(dest):
        dest += time.strftime(".%Y%m%dT%H%M%S")
    return dest


def move_aside(system, path):
    """Move ``path`` into ASIDE_DIR; returns where it went, or None if it was not there."""
    try:
        st = system.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):  # not there, a link, or not a file
        return None
    dest = aside_path(system, path)
    system.write_file(dest, system.read_bytes(path), mode=st.st_mode & 0o7777,
                      dir_mode=0o700)
    system.remove(path)
    return dest


def apply(system, plan):
    changes = []
    for path in plan.move_aside:
        dest = move_aside(system, path)
        if dest:
            changes.append(f"moved {path} aside to {dest}")
    for path, (text, mode, what) in plan.files.items():
        if system.read_text(path, default="\0") == text:
            log.debug("%s is already up to date", path)
            continue
        system.write_file(path, text, mode=mode)
        changes.append(f"wrote {path}" + (f" ({what})" if what else ""))
    return changes
