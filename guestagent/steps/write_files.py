"""Write the #cloud-config write_files entries, once per instance.

Runs last among the config steps, after the users exist, so owners named
in user-data resolve.  Owners are looked up in the root's /etc/passwd and
/etc/group (not the host's, under --root); an unknown owner is a warning
and the file belongs to root.  `defer: true` (cloud-init's "write after
users and packages") needs nothing more here: this step already runs after
the users step, so deferred files are written in the same step, after the
others.  Every write goes through the System seam, so a symlink in the way
is refused rather than followed.
"""

import base64
import binascii
import logging
import posixpath
import zlib

from ..accounts import groups as read_groups
from ..accounts import users as read_users
from ..log import shown
from . import PER_INSTANCE, Outcome, Skip, asked_for

log = logging.getLogger(__name__)

FREQUENCY = PER_INSTANCE
DEFAULT_MODE = 0o644


class BadEntry(ValueError):
    """An entry that cannot be written as given."""


def run(ctx):
    if not ctx.config.getbool("userdata", "enabled"):
        raise Skip("user-data is turned off ([userdata] enabled = no)")
    entries = asked_for(ctx, "write_files")
    accounts = _Accounts(ctx.system)
    max_bytes = ctx.config.getint("userdata", "max_bytes")
    if not isinstance(entries, list):
        raise RuntimeError(f"write_files is a {type(entries).__name__}, not a list; "
                           f"nothing written")
    changes, problems = [], []
    ordered = ([e for e in entries if not (isinstance(e, dict) and e.get("defer"))]
               + [e for e in entries if isinstance(e, dict) and e.get("defer")])
    for i, entry in enumerate(ordered):
        # one bad entry is refused by name; the others are still written
        try:
            changes.append(_write(ctx.system, entry, accounts, max_bytes))
        except Exception as e:
            problem = f"{_name(entry, i)}: {_reason(e)}"
            log.warning("write_files: not written: %s", problem)
            problems.append(problem)
    # once per instance even where something failed: an `append: true` entry
    # must not append again
    return Outcome(changes, problems, error=f"{len(problems)} of {len(entries)} files not "
                                            "written: " + "; ".join(problems))


def _name(entry, i):
    if isinstance(entry, dict) and isinstance(entry.get("path"), str):
        return shown(entry["path"], 200)
    return f"entry {i + 1}"


def _write(system, entry, accounts, max_bytes):
    if not isinstance(entry, dict):
        raise BadEntry(f"a {type(entry).__name__}, not a mapping with path and content")
    if not isinstance(entry.get("path"), str):
        raise BadEntry("no path")
    path = _clean_path(entry["path"])
    data = _content(entry.get("content", ""), entry.get("encoding", "text"), max_bytes)
    mode = _mode(entry.get("permissions"))
    uid, gid, owner = accounts.resolve(entry.get("owner"), path)
    trusted = (0,) if uid == 0 else (0, uid)  # may write inside the owner's own home
    if entry.get("append"):
        existed = system.exists(path)
        if existed and entry.get("permissions") is None:
            mode = _current_mode(system, path)  # appending must not loosen a file's mode
        if existed and not entry.get("owner"):
            uid = gid = None  # appending keeps the file's owner unless one is named
        system.append_file(path, data, mode=mode, uid=uid, gid=gid)
        return f"appended {len(data)} bytes to {path} ({mode:04o}, {owner})"
    system.write_file(path, data, mode=mode, uid=uid, gid=gid, trusted_uids=trusted)
    return f"wrote {path} ({len(data)} bytes, {mode:04o}, {owner})"


def _clean_path(path):
    if not path.startswith("/"):
        raise BadEntry("not an absolute path; refused")
    if ".." in path.split("/"):
        raise BadEntry("'..' in the path; refused")
    if "\0" in path:
        raise BadEntry("NUL in the path; refused")
    clean = posixpath.normpath(path)
    if clean.startswith("//"):
        clean = "/" + clean.lstrip("/")
    if clean == "/" or path.endswith("/"):
        raise BadEntry("names a directory, not a file; refused")
    return clean


def _content(content, encoding, max_bytes):
    if content is None:
        content = ""
    if isinstance(content, str):
        data = content.encode("utf-8", "replace")  # a lone surrogate: "?"
    elif isinstance(content, bytes):  # YAML !!binary
        data = content
    else:
        raise BadEntry(f"content is a {type(content).__name__}, not text")
    if len(data) > max_bytes:
        raise BadEntry(f"content is over the {max_bytes}-byte limit ([userdata] max_bytes)")
    if not isinstance(encoding, str):
        raise BadEntry(f"encoding {shown(encoding)} is not a name")
    if encoding in ("b64", "base64", "gz+b64", "gzip+base64"):
        try:
            data = base64.b64decode(data, validate=False)
        except (binascii.Error, ValueError):
            raise BadEntry(f"content is not valid base64 (encoding {encoding})") from None
    if encoding in ("gzip", "gz", "gz+b64", "gzip+base64"):
        from ..userdata.parts import gunzip
        if data[:2] != b"\x1f\x8b":
            raise BadEntry(f"content is not gzip data (encoding {encoding})")
        try:
            data = gunzip(data, max_bytes)
        except (zlib.error, ValueError) as e:
            raise BadEntry(f"content cannot be decompressed: {e}") from None
    return data


def _mode(permissions):
    if permissions is None:
        return DEFAULT_MODE
    if isinstance(permissions, int):
        return permissions
    text = permissions.strip().lower()
    return int(text[2:] if text.startswith("0o") else text, 8)


def _current_mode(system, path):
    return system.lstat(path).st_mode & 0o7777


def _reason(e):
    if isinstance(e, OSError) and e.strerror:
        return e.strerror + (f" ({e.filename})" if e.filename else "")
    return str(e) or type(e).__name__


class _Accounts:
    """Users and groups of the root being configured, read once."""

    def __init__(self, system):
        self.users = {a.name: (a.uid, a.gid) for a in read_users(system).values()}
        self.groups = {g.name: g.gid for g in read_groups(system).values()}

    def resolve(self, owner, path):
        """'user:group' or 'user' -> (uid, gid, 'user:group'); unknown parts -> root.

        A numeric id outside what the kernel can store is refused (BadEntry)."""
        if not owner:
            return 0, 0, "root:root"
        if not isinstance(owner, str):
            raise BadEntry(f"owner {shown(owner)} is not a user[:group] string")
        user, _, group = owner.strip().partition(":")
        uid, gid = self._user(user, path)
        if group:
            gid = self._group(group, path)
        names = {v[0]: k for k, v in self.users.items()}
        gnames = {v: k for k, v in self.groups.items()}
        return uid, gid, f"{names.get(uid, uid)}:{gnames.get(gid, gid)}"

    def _user(self, user, path):
        if user in self.users:
            return self.users[user]
        if user.isdigit():
            return _numeric_id(user, "owner"), 0
        log.warning("write_files: owner %r of %s is not a user in /etc/passwd; "
                    "the file belongs to root", user, path)
        return 0, 0

    def _group(self, group, path):
        if group in self.groups:
            return self.groups[group]
        if group.isdigit():
            return _numeric_id(group, "group")
        log.warning("write_files: group %r of %s is not in /etc/group; using root's",
                    group, path)
        return 0


MAX_ID = 2**32 - 2  # (uid_t)-1 means "no change" to chown


def _numeric_id(text, what):
    if not text.isascii() or len(text) > 10 or int(text) > MAX_ID:
        raise BadEntry(f"{what} {shown(text)} is not a valid numeric id (0 to {MAX_ID})")
    return int(text)


# -- #cloud-config `write_files`, checked before anything acts on it ------------------


