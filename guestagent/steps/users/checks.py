"""#cloud-config `users` (and the keys about accounts), checked before anything acts.

The validators for the account keys live here, in one place, so every rule
about what a user entry may hold (names, groups, ids, passwords) is read and
hardened in one function per key.  They only look at the values: no system
access, no logging (see `guestagent.userdata.checks`).
"""

from ...userdata.checks import (
    INVALID,
    Bad,
    Note,
    boolean,
    comma_list,
    describe,
    fields,
    str_list,
    string,
)


def _sudo(value):
    if value is None or value is False:
        return False
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise Bad("a sudoers rule, a list of rules, or false")


def _user_name(value):
    if not isinstance(value, str) or not value.strip():
        raise Bad("a user name")
    return value.strip()


USER_FIELDS = {"name": _user_name, "sudo": _sudo, "shell": string, "groups": comma_list,
               "lock_passwd": boolean, "ssh_authorized_keys": str_list}


def check_users(value, key, notes):
    """#cloud-config users: "default", names, or entries of USER_FIELDS.

    Field names are read with '-' as '_' (``ssh-authorized-keys``), as
    cloud-init does for user entries.
    """
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list):
        raise Bad("a list of users")
    out = []
    for n, item in enumerate(value, 1):
        if item == "default":
            out.append("default")
        elif isinstance(item, str) and item.strip():
            out.append({"name": item.strip()})
        elif isinstance(item, dict):
            where = f"#cloud-config users entry {n}"
            if isinstance(item.get("name"), str):
                where += f" ({item['name'][:32]!r})"
            try:
                out.append(fields(item, USER_FIELDS, where, notes, required=("name",),
                                  dashes=True))
            except Bad:
                notes.append(Note(f"{where} has no user name; skipped", INVALID))
        else:
            notes.append(Note(f"#cloud-config users entry {n} is {describe(item)}, not "
                              "\"default\" or a user mapping; skipped", INVALID))
    return out
