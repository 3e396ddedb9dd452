"""Passwords in the root's shadow database: set, expire, lock.

On a running system the distro's own tools do it, with the secret on stdin
only: ``chpasswd`` hashes a plain password the way the image is configured
to (``ENCRYPT_METHOD`` in login.defs: yescrypt on Debian 12, SHA-512 on
RHEL), ``chpasswd -e`` takes a hash as it is, ``passwd --expire`` and
``usermod --lock`` do the rest.  Under ``--root`` (image builders, tests)
chpasswd cannot be pointed at the tree without chrooting into it, so the
agent hashes plain passwords itself (SHA-512 crypt, `passwd_hash`) and edits
ROOT/etc/shadow directly, keeping its mode and owner.

`entry` and `password_state` are the one reading of a shadow line, for the
steps and for check-image alike.

Nothing here logs a password or a hash, or puts one in an argv.
"""

import logging
import re
import stat
import time

from ..system import CommandFailed, CommandMissing
from .passwd_hash import MAX_PASSWORD as MAX_PLAIN_BYTES
from .passwd_hash import sha512_crypt

log = logging.getLogger(__name__)

SHADOW = "/etc/shadow"
# What crypt(3) hashes look like: $id$[params$]salt$digest.  cloud-init's own
# test is \$(1|2a|2y|5|6)(\$.+){2}; yescrypt ($y$, Debian 12's default) and
# $gy$/$7$ are hashes too and are not sent through chpasswd as plain text.
HASH = re.compile(r"^\$(1|2a|2b|2y|5|6|7|y|gy)(\$[^$:\s]+){2,3}$")
MAX_PASSWORD = 1024


class PasswordError(RuntimeError):
    """A password could not be set; the message never contains it."""


def is_hash(value):
    return isinstance(value, str) and bool(HASH.match(value))


def problem(value, hashed=False):
    """Why ``value`` cannot be used as a password (or a hash), or ''."""
    if not isinstance(value, str):
        return "it is not a string"
    if not value:
        return "it is empty"
    if not hashed and len(value.encode("utf-8", "surrogatepass")) > MAX_PLAIN_BYTES:
        # libxcrypt's limit; and SHA-512 crypt's work grows with the square
        # of the length, so a longer one is refused before any hashing
        return f"it is longer than {MAX_PLAIN_BYTES} bytes"
    if len(value) > MAX_PASSWORD:
        return f"it is longer than {MAX_PASSWORD} characters"
    if any(c in value for c in "\n\r\0"):
        return "it contains a line break or a NUL character"
    if any(0xD800 <= ord(c) < 0xE000 for c in value):
        return "it contains invalid characters (lone UTF-16 surrogates)"
    if hashed and not is_hash(value):
        return "it is not a crypt(3) hash ($6$..., $y$..., $5$...)"
    return ""


def set_passwords(system, entries):
    """Set each (user, password, hashed) in one go; returns how ("chpasswd", ...)."""
    plain = [(u, p) for u, p, hashed in entries if not hashed]
    hashes = [(u, p) for u, p, hashed in entries if hashed]
    for user, password, hashed in entries:
        why = problem(password, hashed)
        if why:
            raise PasswordError(f"refusing the password for {user}: {why}")
    chpasswd = system.which("chpasswd") if system.live else None
    if chpasswd is None:
        if system.live:
            log.warning("chpasswd is not installed; writing the hashes into %s directly",
                        SHADOW)
        changes = {u: {1: sha512_crypt(p), 2: _today()} for u, p in plain}
        changes.update({u: {1: h, 2: _today()} for u, h in hashes})
        _edit_shadow(system, changes)
        return f"{SHADOW}, hashed here with SHA-512 crypt" if plain else SHADOW
    how = []
    if plain:
        _chpasswd(system, chpasswd, plain, [])
        how.append("chpasswd")
    if hashes:
        _chpasswd(system, chpasswd, hashes, ["-e"])
        how.append("chpasswd -e")
    return " and ".join(how)


def expire(system, users):
    """Make each user choose a new password at the next login."""
    if system.live and system.which("passwd"):
        for user in users:
            _run(system, ["passwd", "--expire", "--", user], f"expire the password of {user}")
        return
    _edit_shadow(system, {u: {2: "0"} for u in users})


def lock(system, user):
    """Lock the password (a '!' before the hash); key logins still work."""
    if system.live and system.which("usermod"):
        _run(system, ["usermod", "--lock", "--", user], f"lock the password of {user}")
        return
    fields = _fields_of(system, user)
    if not fields[1].startswith("!"):
        _edit_shadow(system, {user: {1: "!" + fields[1]}})


def status(system, user):
    """'locked', 'none' (no password), 'set', or 'missing' (no shadow entry)."""
    try:
        fields = _fields_of(system, user)
    except PasswordError:
        return "missing"
    return password_state(fields[1])


def entry(text, user):
    """The fields of ``user``'s line in shadow ``text`` (name, password, last
    change, ...), or None when it has no line with at least those three."""
    for line in text.splitlines():
        fields = line.split(":")
        if fields[0] == user and len(fields) >= 3:
            return fields
    return None


def password_state(field):
    """What a shadow password field lets in, as ``passwd -S`` reads it:
    'locked' ('!' or '*' first: no password does), 'none' (empty: any
    does), or 'set'."""
    if field[:1] in ("!", "*"):
        return "locked"
    return "set" if field else "none"


def _chpasswd(system, chpasswd, pairs, extra):
    text = "".join(f"{u}:{p}\n" for u, p in pairs)
    try:
        res = system.run([chpasswd] + extra, input=text, timeout=60)
    except CommandMissing:
        raise PasswordError("chpasswd is not installed") from None
    if res.returncode != 0:
        detail = (res.stderr or "").strip()
        for _, p in pairs:  # chpasswd quotes nothing back, but be sure
            detail = detail.replace(p, "<password>")
        last = detail.splitlines()[-1][:200] if detail else ""
        raise PasswordError(f"chpasswd{' -e' if extra else ''} failed (exit {res.returncode})"
                            + (f": {last}" if last else ""))


def _run(system, argv, what):
    try:
        system.run(argv, timeout=60, check=True)
    except CommandMissing:
        raise PasswordError(f"cannot {what}: {argv[0]} is not installed") from None
    except CommandFailed as e:
        raise PasswordError(f"cannot {what}: {e}") from None


def _today():
    return str(int(time.time() // 86400))


def _read_shadow(system):
    try:
        text = system.read_text(SHADOW)
    except FileNotFoundError:
        raise PasswordError(f"no {SHADOW} in this image") from None
    st = system.lstat(SHADOW)
    if not stat.S_ISREG(st.st_mode):
        raise PasswordError(f"{SHADOW} is not a regular file")
    return text, st


def _fields_of(system, user):
    text, _ = _read_shadow(system)
    fields = entry(text, user)
    if fields is None:
        raise PasswordError(f"{user} has no entry in {SHADOW}")
    return fields


def _edit_shadow(system, changes):
    """Set shadow fields {user: {index: value}}, keeping the file's mode and owner."""
    if not changes:
        return
    text, st = _read_shadow(system)
    lines = text.splitlines()
    left = dict(changes)
    for i, line in enumerate(lines):
        fields = line.split(":")
        if fields[0] in left and len(fields) >= 3:
            for index, value in left.pop(fields[0]).items():
                fields[index] = value
            lines[i] = ":".join(fields)
    if left:
        raise PasswordError(f"{', '.join(sorted(left))} ha{'s' if len(left) == 1 else 've'} "
                            f"no entry in {SHADOW}")
    system.write_file(SHADOW, "\n".join(lines) + "\n", mode=stat.S_IMODE(st.st_mode),
                      uid=st.st_uid, gid=st.st_gid, make_dirs=False)
