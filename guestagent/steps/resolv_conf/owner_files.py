"""What every owner's configuration shares: the marks the agent leaves in the
files it hands over, writing a file only when it changes, and reloading the
service that reads it.
"""

import logging

log = logging.getLogger(__name__)

HEADER = "# Written by guestagent from the instance metadata; changes here may be replaced.\n"
BLOCK_BEGIN = "# BEGIN guestagent: DNS from the instance metadata (rewritten every boot)"
BLOCK_END = "# END guestagent"


class WontLast(Exception):
    """The settings cannot be made to last here (the message says why and what to do)."""


def write_if_changed(system, path, text):
    """Write ``text`` to ``path`` unless it already says that; True when written."""
    if system.read_text(path, default="") == text:
        log.debug("%s is already up to date", path)
        return False
    system.write_file(path, text, mode=0o644)
    return True


def write_block(system, path, lines):
    """Put ``lines`` in the agent's marked block of ``path`` (none: take the
    block out); True when the file changed."""
    return write_if_changed(system, path, with_block(system.read_text(path, default=""), lines))


def with_block(text, lines):
    """``text`` with the agent's marked block holding ``lines`` (none: no block)."""
    out, inside = [], False
    for ln in text.splitlines(True):
        if ln.rstrip("\n") == BLOCK_BEGIN:
            inside = True
        elif inside and ln.rstrip("\n") == BLOCK_END:
            inside = False
        elif not inside:
            out.append(ln)
    body = "".join(out)
    if lines:
        if body and not body.endswith("\n"):
            body += "\n"
        body += BLOCK_BEGIN + "\n" + "".join(f"{ln}\n" for ln in lines) + BLOCK_END + "\n"
    return body


def release_block(system, path):
    """Take the agent's marked block out of ``path``; the changes."""
    text = system.read_text(path, default="")
    if BLOCK_BEGIN not in text:
        return []
    system.write_file(path, with_block(text, []), mode=0o644)
    return [f"took the guestagent block out of {path}"]


def remove_dropin(system, path, unit):
    """Remove the drop-in ``path`` and reload ``unit`` (on a live system), so it
    stops serving the old instance's settings now rather than at its next start."""
    changes = remove_if_there(system, path)
    if changes:
        system.reload_service((unit,), "the new DNS settings")
    return changes


def remove_if_there(system, path):
    """Remove ``path`` (a file the agent wrote whole); the changes."""
    if not system.exists(path):
        return []
    system.remove(path)
    return [f"removed {path}"]


def write_dropin(system, path, text, unit):
    """Write the drop-in ``path`` that the service ``unit`` reads, and reload it
    (on a live system) when it changed; True when it changed."""
    if not write_if_changed(system, path, text):
        return False
    system.reload_service((unit,), "the new DNS settings")
    return True
