"""One sshd setting (PasswordAuthentication), put where the image's sshd reads it.

sshd takes the first value it finds for a keyword.  Where sshd_config
includes ``sshd_config.d/*.conf`` before any line of its own for the
keyword (Debian 12, Ubuntu, Fedora, RHEL 9), the setting goes into a drop-in
named to sort before the image's own drop-ins (cloud images ship
``50-cloud-init.conf`` and the like with ``PasswordAuthentication no``):
``/etc/ssh/sshd_config.d/00-guestagent.conf``.  Otherwise the line in
sshd_config itself is changed (the first one outside a ``Match`` block), or
added before the first ``Match`` block.  Comments and every other line are
kept.

A running sshd is reloaded (``systemctl try-reload-or-restart``, which does
nothing when it is not running); on a first boot sshd starts after the agent
and reads the file itself.
"""

import fnmatch
import logging
import os
import re

log = logging.getLogger(__name__)

SSH_DIR = "/etc/ssh"
SSHD_CONFIG = SSH_DIR + "/sshd_config"
DROPIN_DIR = SSH_DIR + "/sshd_config.d"
DROPIN = DROPIN_DIR + "/00-guestagent.conf"
_WORD = re.compile(r"^\s*(\S+)(?:\s*=\s*|\s+)(.*?)\s*$")


def set_option(system, keyword, value):
    """Make sshd use ``keyword value``; returns the file changed, or None (already so)."""
    text = system.read_text(SSHD_CONFIG, default="")
    lines = text.splitlines()
    include_at, own_at, match_at = None, None, None
    for i, line in enumerate(lines):
        m = _WORD.match(line)
        if not m or line.lstrip().startswith("#"):
            continue
        word = m.group(1).lower()
        if word == "match":
            match_at = i
            break
        if word == "include" and include_at is None and _covers_dropins(m.group(2)):
            include_at = i
        elif word == keyword.lower() and own_at is None:
            own_at = i
    if include_at is not None and (own_at is None or own_at > include_at):
        return _write_dropin(system, keyword, value)
    if own_at is not None:
        if _WORD.match(lines[own_at]).group(2) == value:
            return None
        lines[own_at] = f"{keyword} {value}"
    else:
        at = match_at if match_at is not None else len(lines)
        lines[at:at] = [f"{keyword} {value}"]
    _write_keeping_mode(system, SSHD_CONFIG, "\n".join(lines) + "\n")
    return SSHD_CONFIG


def reload(system):
    """Reload a running sshd (live systems only); says what happened, or ''."""
    if not system.live:
        return ""
    tool = system.which("systemctl")
    if tool is None:
        return "no systemctl: a running sshd picks the change up when it restarts"
    for unit in ("ssh.service", "sshd.service"):
        res = system.run([tool, "is-active", "--quiet", unit], timeout=30)
        if res.returncode == 0:
            res = system.run([tool, "try-reload-or-restart", unit], timeout=60)
            if res.returncode != 0:
                log.warning("reloading %s failed (exit %d); it uses the new setting when it "
                            "restarts", unit, res.returncode)
                return ""
            return f"reloaded {unit}"
    return ""


def _covers_dropins(pattern):
    for p in pattern.split():
        p = p.strip("\"'")
        if not p.startswith("/"):
            p = SSH_DIR + "/" + p  # relative includes are relative to /etc/ssh
        if fnmatch.fnmatch(DROPIN, p):
            return True
    return False


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
            m = _WORD.match(line)
            if m and not line.lstrip().startswith("#") and m.group(1).lower() == keyword.lower():
                return f"{DROPIN_DIR}/{name}"
    return None


def _write_keeping_mode(system, path, text):
    try:
        st = system.lstat(path)
        mode, uid, gid = st.st_mode & 0o7777, st.st_uid, st.st_gid
    except FileNotFoundError:
        mode, uid, gid = 0o644, None, None
    system.write_file(path, text, mode=mode, uid=uid, gid=gid)
