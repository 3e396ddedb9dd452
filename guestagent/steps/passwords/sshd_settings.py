"""One sshd setting (PasswordAuthentication) put where the image's sshd
reads it.  The lines are read as sshd reads them (guestagent/system/sshd_config.py).

sshd takes the first value it finds for a keyword.  Where sshd_config
includes ``sshd_config.d/*.conf`` before any line of its own for the
keyword (Debian 12, Ubuntu, Fedora, RHEL 9), the setting goes into a drop-in
named to sort before the image's own drop-ins (cloud images ship
``50-cloud-init.conf`` and the like with ``PasswordAuthentication no``):
``/etc/ssh/sshd_config.d/00-guestagent.conf``.  Otherwise the line in
sshd_config itself is changed (the first one outside a ``Match`` block), or
added before the first ``Match`` block.  Comments and every other line are
kept.

A running sshd is reloaded (`System.reload_service` with `SSHD_UNITS`); on
a first boot sshd starts after the agent and reads the file itself.
"""

import fnmatch
import logging
import os

from ...system.sshd_config import SSH_DIR, SSHD_CONFIG, include_patterns, line_words

log = logging.getLogger(__name__)

DROPIN_DIR = SSH_DIR + "/sshd_config.d"
DROPIN = DROPIN_DIR + "/00-guestagent.conf"


def set_option(system, keyword, value):
    """Make sshd use ``keyword value``; returns the file changed, or None (already so)."""
    text = system.read_text(SSHD_CONFIG, default="")
    lines = text.splitlines()
    include_at, own_at, match_at = None, None, None
    for i, line in enumerate(lines):
        words = line_words(line)
        if len(words) < 2:
            continue
        if words[0] == "match":
            match_at = i
            break
        if words[0] == "include" and include_at is None and _covers_dropins(words[1:]):
            include_at = i
        elif words[0] == keyword.lower() and own_at is None:
            own_at = i
    if include_at is not None and (own_at is None or own_at > include_at):
        return _write_dropin(system, keyword, value)
    if own_at is not None:
        if line_words(lines[own_at])[1:] == [value]:
            return None
        lines[own_at] = f"{keyword} {value}"
    else:
        at = match_at if match_at is not None else len(lines)
        lines[at:at] = [f"{keyword} {value}"]
    _write_keeping_mode(system, SSHD_CONFIG, "\n".join(lines) + "\n")
    return SSHD_CONFIG


def _covers_dropins(arguments):
    return any(fnmatch.fnmatch(DROPIN, p) for p in include_patterns(arguments))


def _write_dropin(system, keyword, value):
    wanted = f"# written by guestagent from #cloud-config\n{keyword} {value}\n"
    earlier = _earlier_dropins_setting(system, keyword)
    if earlier:
        log.warning("%s also sets %s and sorts before %s: sshd uses its value", earlier,
                    keyword, DROPIN)
    if system.read_text(DROPIN, default="") == wanted:
        return None
    system.write_file(DROPIN, wanted, mode=0o600)
    return DROPIN


def _earlier_dropins_setting(system, keyword):
    mine = os.path.basename(DROPIN)
    for name in system.listdir(DROPIN_DIR):
        if not name.endswith(".conf") or name >= mine:
            continue
        for line in system.read_text(f"{DROPIN_DIR}/{name}", default="").splitlines():
            words = line_words(line)
            if len(words) > 1 and words[0] == keyword.lower():
                return f"{DROPIN_DIR}/{name}"
    return None


def _write_keeping_mode(system, path, text):
    try:
        st = system.lstat(path)
        mode, uid, gid = st.st_mode & 0o7777, st.st_uid, st.st_gid
    except FileNotFoundError:
        mode, uid, gid = 0o644, None, None
    system.write_file(path, text, mode=mode, uid=uid, gid=gid)
