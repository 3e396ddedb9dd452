"""Sudo rules for the accounts the agent manages, in one sudoers.d file.

Rules are merged into the file (lines already there stay), every rule is
one line we checked ourselves, and the whole file is checked with
``visudo -cf`` before it takes the real name: a file sudo would choke on
(which would lock everyone out of sudo) is never left in place.
"""

import logging

from ...accounts import valid_name

log = logging.getLogger(__name__)

SUDOERS_DIR = "/etc/sudoers.d"
SUDOERS_FILE = SUDOERS_DIR + "/90-guestagent-users"
# sudo skips files in sudoers.d whose names contain a '.', so a check copy
# left behind by a crash is never read as rules
_CHECK_FILE = SUDOERS_DIR + "/.90-guestagent-users.check"
_HEADER = "# Written by guestagent for the accounts it manages.\n"
MAX_RULE = 1024
MAX_FILE = 1 << 20


class SudoersError(RuntimeError):
    """The rules could not be written; the message says why."""


def check_rule(rule):
    """Return ``rule`` stripped, or raise ValueError saying what is wrong.

    One line only: no newline, NUL or other control character, and no
    trailing backslash (sudoers' line continuation, which would glue the
    next line onto this rule).
    """
    if not isinstance(rule, str):
        raise ValueError(f"expected text, got {type(rule).__name__}")
    rule = rule.strip(" \t")
    if not rule:
        raise ValueError("empty rule")
    for c in rule:
        if (ord(c) < 32 and c != "\t") or ord(c) == 127 or c in "\u2028\u2029\x85":
            raise ValueError(f"control character U+{ord(c):04X} in the rule")
    if rule.endswith("\\"):
        raise ValueError("rule ends with a backslash (it would continue onto the next line)")
    if rule.startswith("#"):
        raise ValueError("rule starts with '#'")
    if len(rule) > MAX_RULE:
        raise ValueError(f"rule longer than {MAX_RULE} characters")
    return rule


def add_rules(system, rules):
    """Merge ``rules`` [(user, rule), ...] into the file; return lines added."""
    lines = []
    for user, rule in rules:
        if not valid_name(user):
            raise SudoersError(f"refusing a sudo rule for {user!r}: not a valid user name")
        lines.append(f"{user} {check_rule(rule)}")
    try:
        existing = system.read_text(SUDOERS_FILE, default="")
    except OSError as e:
        raise SudoersError(f"cannot read {SUDOERS_FILE}: {e}") from None
    have = {ln.strip() for ln in existing.splitlines()}
    added = []
    for ln in lines:
        if ln not in have:
            have.add(ln)
            added.append(ln)
    if not added:
        return []
    text = existing or _HEADER
    if not text.endswith("\n"):
        text += "\n"
    text += "".join(ln + "\n" for ln in added)
    _check_with_visudo(system, text)
    system.write_file(SUDOERS_FILE, text, mode=0o440, uid=0, gid=0, dir_mode=0o750)
    _warn_if_not_included(system)
    return added


def damage(system):
    """What is wrong with the rules file as it is on the disk ('' when sudo
    can read it, or there is none): empty or holding NUL bytes (cut off by a
    power loss), or refused by visudo.  A file sudo chokes on locks everyone
    out of sudo."""
    try:
        data = system.read_bytes(SUDOERS_FILE, limit=MAX_FILE)
    except FileNotFoundError:
        return ""
    if not data.strip(b"\0 \n"):
        return f"{SUDOERS_FILE} is empty"
    if b"\0" in data:
        return f"{SUDOERS_FILE} is damaged (it holds NUL bytes)"
    visudo = system.which("visudo")
    if visudo is not None:
        res = system.run([visudo, "-c", "-f", system.path(SUDOERS_FILE)], timeout=30)
        if res.returncode != 0:
            return f"visudo rejects {SUDOERS_FILE}"
    return ""


def set_aside(system):
    """Move a damaged rules file out of sudo's way (sudo skips names with a
    '.'), keeping it for the operator; returns where it went."""
    aside = SUDOERS_DIR + "/.90-guestagent-users.damaged"
    system.write_file(aside, system.read_bytes(SUDOERS_FILE, limit=MAX_FILE), mode=0o400,
                      uid=0, gid=0, dir_mode=0o750)
    system.remove(SUDOERS_FILE)
    return aside


def _check_with_visudo(system, text):
    visudo = system.which("visudo")
    if visudo is None:
        log.info("visudo is not installed; %s checked by the agent's own rules only",
                 SUDOERS_FILE)
        return
    system.write_file(_CHECK_FILE, text, mode=0o440, uid=0, gid=0, dir_mode=0o750)
    try:
        res = system.run([visudo, "-c", "-f", system.path(_CHECK_FILE)], timeout=30)
    finally:
        system.remove(_CHECK_FILE)
    if res.returncode != 0:
        detail = (res.stderr or res.stdout or "").strip().replace(
            system.path(_CHECK_FILE), SUDOERS_FILE).splitlines()
        raise SudoersError(f"visudo rejects the new {SUDOERS_FILE}, left unchanged"
                           + (f": {detail[0][:300]}" if detail else ""))


def _warn_if_not_included(system):
    main = system.read_text("/etc/sudoers", default="")
    if not main:
        log.warning("sudo is not installed in this image (no /etc/sudoers): "
                    "the rules in %s take effect once it is", SUDOERS_FILE)
    elif "includedir /etc/sudoers.d" not in main:
        log.warning("/etc/sudoers does not include /etc/sudoers.d: "
                    "the rules in %s have no effect", SUDOERS_FILE)
