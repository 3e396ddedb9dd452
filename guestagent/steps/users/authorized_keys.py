"""OpenSSH authorized_keys lines: check them, and merge new keys into a file.

A line is accepted only if sshd would read it as exactly one key: an
optional options field made of options sshd knows, a known key type, a
base64 blob that decodes and names the same type, an optional comment.
Anything else (junk, a second line smuggled into a value, control
characters) is refused with a reason, so nothing from metadata can add a
line nobody asked for.
"""

import base64
import binascii
import errno
import logging
import os
import stat
import struct
from collections import namedtuple

from ...system import UnsafePathError

log = logging.getLogger(__name__)

KEY_TYPES = frozenset((
    "ssh-rsa", "ssh-dss", "ssh-ed25519",
    "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
))

# Options sshd(8) understands; it ignores a whole line with any other.
OPTIONS = frozenset((
    "agent-forwarding", "cert-authority", "command", "environment", "expiry-time",
    "from", "no-agent-forwarding", "no-port-forwarding", "no-pty", "no-user-rc",
    "no-x11-forwarding", "no-touch-required", "permitlisten", "permitopen",
    "port-forwarding", "principals", "pty", "restrict", "tunnel", "user-rc",
    "verify-required", "x11-forwarding",
))

MAX_LINE = 16384  # an RSA-16384 key with options fits; sshd's own limit is higher

Key = namedtuple("Key", "options keytype blob comment line")


class BadKey(ValueError):
    """Not one public key line sshd would accept; the message says why."""


def parse(line):
    """Check one authorized_keys line; return a `Key` or raise `BadKey`."""
    if not isinstance(line, str):
        raise BadKey(f"expected text, got {type(line).__name__}")
    line = line.strip(" \t")
    if not line:
        raise BadKey("empty")
    bad = _control_char(line)
    if bad is not None:
        raise BadKey(f"contains a control character ({bad})")
    if len(line) > MAX_LINE:
        raise BadKey(f"longer than {MAX_LINE} characters")
    options = ""
    if not line.split():  # only other whitespace (U+00A0, U+3000...)
        raise BadKey("empty")
    first = line.split(None, 1)[0]
    if first not in KEY_TYPES:
        options, line = _split_options(line)
    fields = line.split(None, 2)
    if not fields:  # nothing, or only non-ASCII whitespace, after the options
        raise BadKey("options but no key")
    keytype = fields[0]
    if keytype not in KEY_TYPES:
        raise BadKey(f"unknown key type {_short(keytype)!r}")
    if len(fields) < 2:
        raise BadKey(f"{keytype} with no key data")
    blob = fields[1]
    try:
        raw = base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError):
        raise BadKey("key data is not valid base64") from None
    if len(raw) < 4:
        raise BadKey("key data too short")
    (n,) = struct.unpack(">I", raw[:4])
    if raw[4:4 + n] != keytype.encode("ascii"):
        raise BadKey(f"key data is not a {keytype} key")
    comment = fields[2] if len(fields) > 2 else ""
    text = " ".join(p for p in (options, keytype, blob, comment) if p)
    return Key(options, keytype, blob, comment, text)


def identity(line):
    """(type, blob) of a line, or None: two lines with one identity are one key."""
    try:
        k = parse(line)
    except BadKey:
        return None
    return (k.keytype, k.blob)


def merge(existing, new_keys, replace_same=False):
    """Add each of ``new_keys`` (parsed `Key`s) not already in ``existing`` text.

    Returns (text, added).  Every existing line is kept as it was, comments
    and lines we cannot parse included: they are the user's.  With
    ``replace_same`` a line holding the same key with other options is
    replaced by the new one (disable_root: the key must not stay unrestricted).
    """
    have = set()
    lines = existing.splitlines()
    wanted = {(k.keytype, k.blob): k for k in new_keys} if replace_same else {}
    replaced = []
    for i, ln in enumerate(lines):
        ident = identity(ln)
        if ident and ident in wanted and ln.strip() != wanted[ident].line:
            lines[i] = wanted[ident].line
            replaced.append(wanted[ident])
        if ident:
            have.add(ident)
    if replaced:
        existing = "\n".join(lines) + "\n"
    added = list(replaced)
    for k in new_keys:
        ident = (k.keytype, k.blob)
        if ident in have:
            continue
        have.add(ident)
        added.append(k)
    if not added:
        return existing, []
    if len(added) == len(replaced):
        return existing, added
    text = existing
    if text and not text.endswith("\n"):
        text += "\n"
    text += "".join(k.line + "\n" for k in added if k not in replaced)
    return text, added


def install(system, account, keys, replace_same=False, on_added=None):
    """Merge parsed ``keys`` into ``account``'s ~/.ssh/authorized_keys.

    ~/.ssh is 0700 and the file 0600, both owned by the user; the file is
    replaced atomically and never through a link or a directory the user
    could swap (`UnsafePathError` then, with nothing written).  Returns the
    changes made, in words.  ``on_added(key)`` is called for each key the
    file did not hold before (not for one only given other options).
    """
    home, ssh_dir, path = _paths(account)
    trusted = (0, account.uid)
    changes = []
    if not system.exists(home):
        system.makedirs(home, mode=0o700)
        dfd = system.open_dir(home, trusted_uids=trusted)
        try:
            os.fchown(dfd, account.uid, account.gid)
        finally:
            os.close(dfd)
        changes.append(f"created the missing home directory {home} of {account.name}")
    changes += _ensure_ssh_dir(system, home, account)
    existing = _read_existing(system, ssh_dir, account)
    text, added = merge(existing or "", keys, replace_same)
    if added or existing is None:
        system.write_file(path, text, mode=0o600, uid=account.uid, gid=account.gid,
                          make_dirs=False, trusted_uids=trusted)
    else:
        changes += _fix_file(system, ssh_dir, account)
    if added:
        n = len(added)
        changes.append(f"added {n} key{'s' if n != 1 else ''} to {path} "
                       f"({', '.join(_describe(k) for k in added)})")
        had = {identity(ln) for ln in (existing or "").splitlines()}
        for k in added:
            if on_added is not None and (k.keytype, k.blob) not in had:
                on_added(k)
    _restore_selinux_context(system, ssh_dir)
    return changes


def remove(system, account, idents):
    """Take the lines holding any of ``idents`` ((type, blob) pairs, whatever
    their options) out of ``account``'s authorized_keys; every other line stays
    as it was.  Returns the identities removed, in file order."""
    home, ssh_dir, path = _paths(account)
    try:
        existing = _read_existing(system, ssh_dir, account)
    except FileNotFoundError:  # no home or no ~/.ssh: nothing to take out
        return []
    if existing is None:
        return []
    kept, removed = [], []
    for ln in existing.splitlines(keepends=True):
        ident = identity(ln.rstrip("\r\n"))
        if ident in idents:
            removed.append(ident)
        else:
            kept.append(ln)
    if removed:
        system.write_file(path, "".join(kept), mode=0o600, uid=account.uid, gid=account.gid,
                          make_dirs=False, trusted_uids=(0, account.uid))
    return removed


def held(system, account):
    """The (type, blob) identities in ``account``'s authorized_keys (empty when
    there is no file, or it cannot be read safely)."""
    _, ssh_dir, _ = _paths(account)
    try:
        text = _read_existing(system, ssh_dir, account)
    except (OSError, UnsafePathError):
        return set()
    return {identity(ln) for ln in (text or "").splitlines()} - {None}


def _paths(account):
    """(home, ~/.ssh, ~/.ssh/authorized_keys) of ``account``, inside the root."""
    if not account.home.startswith("/"):
        raise UnsafePathError(errno.EINVAL, "the home directory in /etc/passwd is not an "
                              "absolute path", account.home or "(empty)")
    home = account.home.rstrip("/") or "/"
    ssh_dir = (home if home != "/" else "") + "/.ssh"
    return home, ssh_dir, ssh_dir + "/authorized_keys"


def _ensure_ssh_dir(system, home, account):
    changes = []
    hfd = system.open_dir(home, trusted_uids=(0, account.uid))
    try:
        try:
            os.mkdir(".ssh", 0o700, dir_fd=hfd)
            created = True
        except FileExistsError:
            created = False
        try:
            sfd = os.open(".ssh", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                          dir_fd=hfd)
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENOTDIR):
                raise UnsafePathError(errno.ELOOP, "refusing: ~/.ssh is a symlink or "
                                      "not a directory", home + "/.ssh") from None
            raise
    finally:
        os.close(hfd)
    try:
        st = os.fstat(sfd)
        if st.st_uid not in (0, account.uid):
            raise UnsafePathError(errno.EPERM, f"refusing: ~/.ssh is owned by uid {st.st_uid}",
                                  home + "/.ssh")
        if (st.st_uid, st.st_gid) != (account.uid, account.gid):
            os.fchown(sfd, account.uid, account.gid)
            if not created:
                changes.append(f"gave {home}/.ssh to {account.name}")
        if stat.S_IMODE(st.st_mode) != 0o700:
            os.fchmod(sfd, 0o700)
            if not created:
                changes.append(f"set {home}/.ssh to mode 0700 "
                               f"(was {stat.S_IMODE(st.st_mode):04o})")
    finally:
        os.close(sfd)
    if created:
        changes.append(f"created {home}/.ssh (0700, owner {account.name})")
    return changes


def _read_existing(system, ssh_dir, account):
    """The file's text, None when there is none; refuses a link before reading it."""
    dfd = system.open_dir(ssh_dir, trusted_uids=(0, account.uid))
    try:
        fd = os.open("authorized_keys", os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
                     | os.O_NONBLOCK, dir_fd=dfd)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise UnsafePathError(errno.ELOOP, "refusing to write: a symlink",
                                  ssh_dir + "/authorized_keys") from None
        raise
    finally:
        os.close(dfd)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise UnsafePathError(errno.EINVAL, "refusing to write: not a regular file",
                                  ssh_dir + "/authorized_keys")
        return f.read().decode("utf-8", "replace")


def _fix_file(system, ssh_dir, account):
    """Owner and mode of an existing file we had nothing to add to."""
    dfd = system.open_dir(ssh_dir, trusted_uids=(0, account.uid))
    try:
        fd = os.open("authorized_keys", os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
                     | os.O_NONBLOCK, dir_fd=dfd)
    finally:
        os.close(dfd)
    changes = []
    try:
        st = os.fstat(fd)
        path = ssh_dir + "/authorized_keys"
        if (st.st_uid, st.st_gid) != (account.uid, account.gid):
            os.fchown(fd, account.uid, account.gid)
            changes.append(f"gave {path} to {account.name}")
        if stat.S_IMODE(st.st_mode) != 0o600:
            os.fchmod(fd, 0o600)
            changes.append(f"set {path} to mode 0600 (was {stat.S_IMODE(st.st_mode):04o})")
    finally:
        os.close(fd)
    return changes


def _restore_selinux_context(system, ssh_dir):
    # only on the running system: a tree under --root gets its labels when
    # the image is relabelled, and the host's policy says nothing about it
    if not system.live or not system.exists("/sys/fs/selinux/enforce"):
        return
    restorecon = system.which("restorecon")
    if restorecon is None:
        log.warning("SELinux is enabled but restorecon is missing: %s keeps its "
                    "current label", ssh_dir)
        return
    res = system.run([restorecon, "-R", system.path(ssh_dir)], timeout=60)
    if res.returncode != 0:
        log.warning("restorecon -R %s failed (exit %d): sshd may not read the keys",
                    ssh_dir, res.returncode)


def _describe(k):
    return f"{k.keytype} {k.comment}" if k.comment else k.keytype


def _split_options(line):
    """Split 'opt1,opt2="x y" keytype ...' at the first unquoted blank."""
    i, n = 0, len(line)
    quoted = False
    while i < n:
        c = line[i]
        if c == "\\" and quoted and i + 1 < n:
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        elif c in " \t" and not quoted:
            break
        i += 1
    if quoted:
        raise BadKey("unterminated quote in the options")
    options = line[:i]
    for opt in _options_list(options):
        name = opt.split("=", 1)[0].lower()
        if name not in OPTIONS:
            raise BadKey(f"not a key, and not an option sshd knows: {_short(name)!r}")
        if "=" in opt:
            value = opt.split("=", 1)[1]
            if len(value) < 2 or not (value.startswith('"') and value.endswith('"')):
                raise BadKey(f"option {name} needs a double-quoted value")
    return options, line[i:].lstrip(" \t")


def _options_list(options):
    out, cur, quoted, i = [], "", False, 0
    while i < len(options):
        c = options[i]
        if c == "\\" and quoted and i + 1 < len(options):
            cur += options[i:i + 2]
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        if c == "," and not quoted:
            out.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    out.append(cur)
    if any(not o for o in out):
        raise BadKey("empty option")
    return out


def _control_char(text):
    for c in text:
        o = ord(c)
        if ((o < 32 and c != "\t") or o == 127 or 0x80 <= o < 0xA0 or c in "\u2028\u2029"
                or 0xD800 <= o < 0xE000):  # a lone surrogate cannot even be written
            return f"U+{o:04X}"
    return None


def _short(s):
    return s if len(s) <= 40 else s[:37] + "..."
