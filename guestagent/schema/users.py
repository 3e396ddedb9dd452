"""#cloud-config keys about accounts, checked before anything acts on them.

`users`, `user`, `system_info`, `groups`, `disable_root`, `disable_root_opts`:
every rule about what they may hold (names, groups, ids, paths, passwords)
is here, once, so it is read and hardened in one place.  Hostile values are
refused by name, with the rule they break: a user name with ':' or a line
break, uid 0, a password with a line break.  Membership of a root-equivalent
group (root, shadow, disk, kmem, mem) is done as asked, as cloud-init does:
the user-data is the instance owner's, who can grant sudo or run commands
as root just as well; it is said (a notice), never silently.  Validators
only look at values: no system access, no logging (see
`guestagent.schema.checks`).
"""

import datetime
import re

from .. import accounts
from ..accounts import shadow
from ..log import shown
from .checks import (
    IGNORED,
    INVALID,
    NOTICE,
    UNSUPPORTED,
    Bad,
    Note,
    Refused,
    boolean,
    comma_list,
    describe,
    fields,
    normalise_dashes,
    placeholder,
    str_list,
)

# Membership of these is root in all but name: /etc/shadow, raw disks, kernel
# memory.  Granted when the user-data asks (it may grant sudo too), and said.
ROOT_EQUIVALENT_GROUPS = frozenset({"root", "shadow", "disk", "kmem", "mem"})
MAX_UID = 2**31 - 2  # 2^32-1 is (uid_t)-1, and many tools treat large ids as signed
_PATH = re.compile(r"^/[^\x00-\x1f\x7f:]{0,254}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_IMPORT_ID = re.compile(r"^[a-z]{2,3}:[A-Za-z0-9._-]{1,64}$")


def _sudo(value):
    if value is None or value is False:
        return False
    if isinstance(value, str):
        _no_newline(value, "a sudoers rule")
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        for v in value:
            _no_newline(v, "a sudoers rule")
        return list(value)
    raise Bad("a sudoers rule, a list of rules, or false")


def _account_name(value, expected, noun, rules=""):
    """``value`` stripped, where it is a valid user or group name; else Bad
    (``expected``) or Refused naming it as a ``noun`` name, with a placeholder's
    hint or else the ``rules``."""
    if not isinstance(value, str) or not value.strip():
        raise Bad(expected)
    name = value.strip()
    if not accounts.valid_name(name):
        hint = placeholder(name)
        raise Refused(f"{shown(name)} is not a valid {noun} name"
                      + (f": it {hint}" if hint else rules))
    return name


def _no_newline(value, what):
    if any(c in value for c in "\n\r\0"):
        raise Refused(f"{what} with a line break or NUL character")


def user_name(value):
    return _account_name(value, "a user name", "account",
                         " (lower-case letters, digits, _, - and ., starting with a letter "
                         "or _, at most 32)")


def group_name(value):
    return _account_name(value, "a group name", "group")


def _groups(value):
    """A list or comma string of group names; invalid names are refused."""
    names = comma_list(value)
    bad = [n for n in names if not accounts.valid_name(n)]
    if bad:
        raise Refused(", ".join(shown(b) for b in bad[:5]) + ": invalid group names")
    return names


def root_equivalent(joined, what):
    """The notice for ``what`` (a user, or members of a group) joining the
    root-equivalent groups among ``joined``, or None."""
    named = [g for g in joined if g in ROOT_EQUIVALENT_GROUPS]
    if not named:
        return None
    return Note(f"{what} {', '.join(named)}, as asked (as cloud-init does): membership of "
                f"{'it' if len(named) == 1 else 'each'} is root in all but name", NOTICE)


def _uid(value):
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise Bad("a number")
    if isinstance(value, str):
        if not value.strip().isdigit():
            raise Bad("a number")
        value = int(value.strip())
    if value == 0:
        raise Refused("uid 0 is root's")
    if not 0 < value <= MAX_UID:
        raise Refused(f"uid {value} is out of range (1 to {MAX_UID})")
    return value


def _path(value):
    if not isinstance(value, str) or not _PATH.match(value) or "/../" in value + "/":
        raise Bad("an absolute path without ':', '..' or control characters")
    return value


def _gecos(value):
    if not isinstance(value, str):
        raise Bad("a string")
    if any(c in value for c in ":\n\r\0") or len(value) > 256:
        raise Refused("a comment with ':', a line break, or over 256 characters "
                      "(it is a field of /etc/passwd)")
    return value


def _shell(value):
    if not accounts.valid_shell(value):
        raise Bad("an absolute path to a shell")
    return value


def _expiredate(value):
    if isinstance(value, datetime.date):  # YAML reads 2030-01-31 as a date
        return value.isoformat()
    if isinstance(value, str) and _DATE.match(value.strip()):
        try:
            datetime.date.fromisoformat(value.strip())
        except ValueError:
            raise Bad("a date YYYY-MM-DD") from None
        return value.strip()
    raise Bad("a date YYYY-MM-DD")


def _hash(value):
    why = shadow.problem(value, hashed=True)
    if why:
        raise Refused(f"the password hash is unusable: {why}")
    return value


def _plain(value):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)  # `plain_text_passwd: 123456` is a YAML number
    why = shadow.problem(value)
    if why:
        raise Refused(f"the password is unusable: {why}")
    return value


def _import_ids(value):
    ids = str_list(value)
    bad = [i for i in ids if not _IMPORT_ID.match(i)]
    if bad:
        raise Refused(f"{shown(bad[0])} is not PREFIX:NAME (gh:octocat, lp:someone)")
    return ids


USER_FIELDS = {
    "name": user_name, "sudo": _sudo, "shell": _shell, "groups": _groups,
    "primary_group": group_name, "lock_passwd": boolean,
    "ssh_authorized_keys": str_list, "passwd": _hash, "hashed_passwd": _hash,
    "plain_text_passwd": _plain, "gecos": _gecos, "homedir": _path, "system": boolean,
    "uid": _uid, "no_create_home": boolean,
    "expiredate": _expiredate, "ssh_import_id": _import_ids,
}


# Fields users put in a user entry that cloud-init does not read there.
_MISTAKEN = {
    "ssh_pwauth": "it is a top-level key (password logins over SSH for all users), "
                  "so sshd's setting is left as it is",
    "password": "a user entry takes 'plain_text_passwd' (or 'passwd' for a hash); the "
                "top-level 'password' is the default user's",
}


def _keep_good_entries(item, where, notes):
    """`groups` and `ssh_authorized_keys` lose only their bad entries, said one by one.

    `groups: users, root` keeps `users`; a key list holding a bare `-` keeps
    the keys around it.  A field left with nothing is dropped.
    """
    item = dict(item)
    groups = item.get("groups")
    if isinstance(groups, str) or (isinstance(groups, list)
                                   and all(isinstance(g, str) for g in groups)):
        kept, refused = [], []
        for name in comma_list(groups):
            if not accounts.valid_name(name):
                hint = placeholder(name)
                refused.append((name, "not a valid group name" + (f": it {hint}" if hint
                                                                  else "")))
            else:
                kept.append(name)
        for name, why in refused:
            notes.append(Note(f"{where}: group {shown(name)} refused: {why}"
                              + ("; the other groups kept" if kept else ""), INVALID))
        item["groups"] = kept or None
    keys = item.get("ssh_authorized_keys")
    if isinstance(keys, list) and any(isinstance(k, str) for k in keys):
        for n, k in enumerate(keys, 1):
            if not isinstance(k, str):
                notes.append(Note(f"{where}: 'ssh_authorized_keys' entry {n} is "
                                  f"{describe(k)}, not a key; skipped", INVALID))
        item["ssh_authorized_keys"] = [k for k in keys if isinstance(k, str)]
    return item


def check_user_entry(item, where, notes, name_required=True):
    """One user mapping: USER_FIELDS checked, '-' read as '_' as cloud-init does."""
    item = _keep_good_entries(normalise_dashes(item, where, notes), where, notes)
    home = item.get("home")
    if home is not None:
        item = {k: v for k, v in item.items() if k != "home"}
        name = item.get("name")
        if isinstance(name, str) and home == f"/home/{name.strip()}":
            notes.append(Note(f"{where}: 'home' is not a cloud-init field (it is 'homedir'); "
                              "it names the default home anyway", IGNORED))
        else:
            notes.append(Note(f"{where}: 'home' is not a cloud-init field, and cloud-init "
                              "ignores it too: use 'homedir'", UNSUPPORTED))
    if "create_home" in item:
        create_home = item["create_home"]
        item = {k: v for k, v in item.items() if k != "create_home"}
        if create_home is True and not item.get("no_create_home") and not item.get("system"):
            notes.append(Note(f"{where}: 'create_home' is not a cloud-init field (cloud-init "
                              "ignores it); the home is made anyway, as by default", IGNORED))
        else:
            notes.append(Note(f"{where}: 'create_home' is not a cloud-init field, and "
                              "cloud-init ignores it too: a home is made unless "
                              "'no_create_home' or 'system' is true", UNSUPPORTED))
    out = fields(item, USER_FIELDS, where, notes,
                 required=("name",) if name_required else (), mistaken=_MISTAKEN)
    joins = root_equivalent(list(out.get("groups") or []) + [out.get("primary_group")],
                            f"{where}: the user joins")
    if joins:
        notes.append(joins)
    if out.get("ssh_import_id"):
        notes.append(Note(f"{where}: {_IMPORT_NOTICE}", NOTICE))
    return out


_IMPORT_NOTICE = ("ssh_import_id runs the image's ssh-import-id at boot: it needs the tool "
                  "installed and the network to reach the key server")


def check_import_ids(value, notes):
    """Top-level ssh_import_id: keys for the default user from a key server."""
    try:
        ids = _import_ids(value)
    except Refused as e:
        raise Bad(f"PREFIX:NAME ids ({e})") from None
    notes.append(Note(f"#cloud-config {_IMPORT_NOTICE}", NOTICE))
    return ids


def check_users(value, notes):
    """#cloud-config users: "default", names, or entries of USER_FIELDS.

    A mapping of name -> true/settings (cloud-init's older form) is read too.
    """
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, dict) and all(isinstance(v, (dict, bool)) for v in value.values()):
        # cloud-init's older form: {name: true, other: {settings}}
        value = [{**v, "name": k} if isinstance(v, dict) else k
                 for k, v in value.items() if isinstance(v, dict) or v is True]
    if not isinstance(value, list):
        raise Bad("a list of users")
    out = []
    for n, item in enumerate(value, 1):
        where = f"#cloud-config users entry {n}"
        if item == "default":
            out.append("default")
        elif isinstance(item, str) and item.strip():
            try:
                out.append({"name": user_name(item)})
            except Bad as e:
                notes.append(Note(f"{where}: {e}; skipped", INVALID))
        elif isinstance(item, dict):
            if isinstance(item.get("name"), str):
                where += f" ({shown(item['name'], 32)})"
            try:
                out.append(check_user_entry(item, where, notes))
            except Refused as e:
                notes.append(Note(f"{where}: name refused: {e}; skipped", INVALID))
            except Bad:
                notes.append(Note(f"{where} has no user name; skipped", INVALID))
        else:
            notes.append(Note(f"{where} is {describe(item)}, not \"default\" or a user "
                              "mapping; skipped", INVALID))
    return out


def check_user(value, notes):
    """#cloud-config user: the default user's name, or its settings (cloud-init's
    older form, still honoured: it renames and configures the default user)."""
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict):
        raise Bad("a user name or a user mapping")
    try:
        return check_user_entry(value, "#cloud-config user", notes, name_required=False)
    except Refused as e:
        raise Bad(f"a valid name ({e})") from None


def check_system_info(value, notes):
    """Only `default_user` means something in user-data: the default user's settings."""
    if not isinstance(value, dict):
        raise Bad("a mapping")
    other = [k for k in value if k != "default_user"]
    if other:
        notes.append(Note("#cloud-config system_info: only default_user is used from "
                          "user-data; not supported: " + ", ".join(sorted(map(str, other))),
                          UNSUPPORTED))
    out = {}
    du = value.get("default_user")
    if du is not None:
        if not isinstance(du, dict):
            raise Bad("a mapping with default_user: {name: ..., ...}")
        try:
            out["default_user"] = check_user_entry(du, "#cloud-config system_info."
                                                   "default_user", notes,
                                                   name_required=False)
        except Refused as e:
            raise Bad(f"a valid default_user name ({e})") from None
    return out


def check_groups(value, notes):
    """#cloud-config groups: names, or {group: [members]}, to create before the users."""
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, dict):
        value = [{k: v} for k, v in value.items()]
    if not isinstance(value, list):
        raise Bad("a list of groups")
    out = {}
    for n, item in enumerate(value, 1):
        where = f"#cloud-config groups entry {n}"
        pairs = list(item.items()) if isinstance(item, dict) else [(item, [])]
        for name, members in pairs:
            try:
                name = group_name(name)
                members = [] if members is None else comma_list(members)
                for m in members:
                    user_name(m)
            except Bad as e:
                notes.append(Note(f"{where}: {e}; skipped", INVALID))
                continue
            joins = root_equivalent([name] if members else [],
                                    f"{where}: {', '.join(shown(m) for m in members[:5])} "
                                    "join")
            if joins:
                notes.append(joins)
            out.setdefault(name, [])
            out[name] += [m for m in members if m not in out[name]]
    return out


DISABLE_ROOT_OPTS = ('no-port-forwarding,no-agent-forwarding,no-X11-forwarding,'
                     'command="echo \'Please login as the user \\"$USER\\" rather than the '
                     'user \\"$DISABLE_USER\\".\';echo;sleep 10;exit 142"')


def check_disable_root(value, notes):
    if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
        return bool(value)  # `disable_root: 1`
    return boolean(value)


def check_disable_root_opts(value, notes):
    if not isinstance(value, str) or any(c in value for c in "\n\r\0"):
        raise Bad("one line of authorized_keys options")
    return value
