"""Whose accounts these are: the one answer to who is created, who holds the
instance's SSH keys, and who gets `admin_pass` and `password`.

The users, admin_pass and passwords steps (and root_login, through users)
ask `plan(ctx)`; nothing else works it out, so the account that gets the
keys is always one that is created, and admin_pass goes where the keys went.
With cloud-init's documented meaning (cc_users_groups, its
`ug_util.normalize_users_groups`, cc_ssh and cc_set_passwords):

- the default user is [main] default_user (else the distro's account, with
  [users] shell, groups and sudo), renamed and configured by
  `system_info.default_user`, then by `user` (a name or a mapping; it wins);
- no `users` key means `users: [default]`; `users` without "default" means
  the default user is not created (`users: []`: nobody);
- `user` puts the default user back: cloud-init appends "default" to
  `users`, so `users: [alice]` with `user: {name: bob}` creates alice and
  then bob, the default user;
- an entry with the default user's name configures the default user;
- the instance's keys (the metadata's, and the top-level
  `ssh_authorized_keys`) go to the default user when it is created.  When it
  is not, cloud-init installs them nowhere; this agent gives them to the
  first listed account instead, so the key pair the instance was booted with
  still opens a door (and says so);
- admin_pass goes to the account holding the keys; disable_root names it;
- `password` is the default user's, and only when "default" is asked for
  (cloud-init's set_passwords finds "no default user" otherwise).

No system access and no logging here: the users step logs `notes` once.
"""

import logging

from ..system.distro import default_user
from . import valid_name

# The rule [users] sudo = yes gives the default user.
DEFAULT_SUDO_RULE = "ALL=(ALL) NOPASSWD:ALL"
_OPTIONS = ("gecos", "primary_group", "homedir", "system", "uid", "no_create_home",
            "expiredate")
# the one that wins when several are given: cloud-init sets them in this order
_PASSWORD_FIELDS = (("hashed_passwd", True), ("plain_text_passwd", False), ("passwd", True))


class Account:
    """One account to set up: its settings and the keys it should hold."""

    def __init__(self, name, shell, groups, sudo, keys, is_default=False):
        self.name = name
        self.shell = shell
        self.groups = list(groups)
        self.sudo = list(sudo)
        self.keys = list(keys)  # (where from, line)
        self.is_default = is_default
        self.options = {}
        self.password = None  # (value, hashed)
        self.lock = None  # None: leave the password's lock as it is
        self.import_ids = []
        self.from_user_data = False  # its groups are created when missing


class AccountPlan:
    """accounts: the Accounts to set up, in order; key_owner: the name of the
    one holding the instance's keys (None: nobody); password_owner: whose
    password #cloud-config `password` sets (None: nobody); notes: (level,
    message) for the log, said once by the users step."""

    def __init__(self, accounts, key_owner, password_owner, notes):
        self.accounts = accounts
        self.key_owner = key_owner
        self.password_owner = password_owner
        self.notes = notes

    @property
    def admin_pass_owner(self):
        """The metadata's admin_pass is a credential of the instance, like its
        key pair: it opens the account the keys open."""
        return self.key_owner

    def account(self, name):
        return next((a for a in self.accounts if a.name == name), None)


def default_user_name(ctx):
    """The default user's name: `user` or `system_info.default_user` name it
    (cloud-init's way to rename it), else [main] default_user, else the
    distro's account."""
    cc = ctx.cloud_config or {}
    for given in (cc.get("user"), (cc.get("system_info") or {}).get("default_user")):
        if isinstance(given, dict) and given.get("name"):
            return given["name"]
    return default_user(ctx.system, ctx.config.get("main", "default_user").strip())


def plan(ctx):
    """The AccountPlan from the config, the #cloud-config and the metadata."""
    notes = []
    conf = ctx.config
    cc = ctx.cloud_config or {}
    md_keys = [("metadata", k) for k in (ctx.metadata.public_keys if ctx.metadata else [])]
    cc_keys = [("#cloud-config ssh_authorized_keys", k)
               for k in _strings(cc.get("ssh_authorized_keys"), "ssh_authorized_keys", notes)]
    default = Account(default_user_name(ctx), conf.get("users", "shell").strip() or "/bin/bash",
                      conf.getlist("users", "groups"),
                      [DEFAULT_SUDO_RULE] if conf.getbool("users", "sudo") else [],
                      cc_keys + md_keys, is_default=True)
    # cloud-init's older ways to configure the default user; `user` wins
    for given in ((cc.get("system_info") or {}).get("default_user"), cc.get("user")):
        if isinstance(given, dict):
            _override(default, given, notes, add_groups=True)
    if cc.get("ssh_import_id"):
        default.import_ids += cc["ssh_import_id"]
    entries = cc.get("users", ["default"])
    if not isinstance(entries, list):
        notes.append((logging.WARNING, "ignoring #cloud-config users: expected a list, got "
                      f"{type(entries).__name__}"))
        entries = ["default"]
    if cc.get("user") and "default" not in entries:
        entries = entries + ["default"]  # as cloud-init does: `user` is the default user
    specs = []
    for i, entry in enumerate(entries):
        if entry == "default":
            if default not in specs:
                specs.append(default)
            continue
        spec = _from_entry(entry, i, notes)
        if spec is None:
            continue
        if spec.name == default.name:
            _override(default, entry, notes)
            if default not in specs:
                specs.append(default)
        elif any(s.name == spec.name for s in specs):
            notes.append((logging.WARNING, f"#cloud-config users[{i}]: {spec.name} is listed "
                                           "twice; using the first"))
        else:
            specs.append(spec)
    key_owner = default if default in specs else (specs[0] if specs else None)
    if key_owner is not None and key_owner is not default and default.keys:
        notes.append((logging.INFO, "#cloud-config users has no 'default' entry: the default "
                                    f"user {default.name} is not created, and the instance's "
                                    f"keys go to {key_owner.name}"))
        key_owner.keys = default.keys + key_owner.keys
    elif key_owner is None and default.keys:
        notes.append((logging.WARNING, "#cloud-config users lists nobody: the instance's "
                                       f"{len(default.keys)} key(s) are not installed "
                                       "anywhere"))
    password_owner = default.name if "default" in entries else None
    return AccountPlan(specs, key_owner.name if key_owner else None, password_owner, notes)


def _from_entry(entry, i, notes):
    where = f"#cloud-config users[{i}]"
    if isinstance(entry, str):
        entry = {"name": entry}
    if not isinstance(entry, dict):
        notes.append((logging.WARNING, f"ignoring {where}: expected \"default\" or a mapping, "
                                       f"got {type(entry).__name__}"))
        return None
    name = entry.get("name")
    if not valid_name(name):
        notes.append((logging.WARNING, f"ignoring {where}: name {name!r} is not a valid "
                                       "account name (lower-case letters, digits, _, - and "
                                       "., at most 32)"))
        return None
    spec = Account(name, "/bin/bash", [], [], [])
    spec.from_user_data = True
    spec.lock = True  # cloud-init's default for a listed user
    _override(spec, entry, notes)
    return spec


def _override(spec, entry, notes, add_groups=False):
    """Apply a cloud-config user entry's settings onto ``spec``."""
    where = f"#cloud-config user {spec.name}"
    if isinstance(entry.get("shell"), str):
        spec.shell = entry["shell"]
    if "groups" in entry:
        g = entry["groups"]
        if isinstance(g, str):
            g = [x.strip() for x in g.split(",") if x.strip()]
        g = _strings(g, f"{where} groups", notes)
        spec.groups = spec.groups + [x for x in g if x not in spec.groups] if add_groups else g
        spec.from_user_data = True
    if "sudo" in entry:
        s = entry["sudo"]
        if s is False or s is None:
            spec.sudo = []
        elif isinstance(s, (str, list)):
            spec.sudo = _strings([s] if isinstance(s, str) else s, f"{where} sudo", notes)
        else:
            notes.append((logging.WARNING, f"{where}: ignoring sudo {s!r}: expected a rule "
                                           f"such as {DEFAULT_SUDO_RULE!r}, a list of rules "
                                           "or false"))
    spec.options.update({k: entry[k] for k in _OPTIONS if entry.get(k) is not None})
    for field, hashed in _PASSWORD_FIELDS:
        if entry.get(field):
            spec.password = (entry[field], hashed)
            break
    if isinstance(entry.get("lock_passwd"), bool):
        spec.lock = entry["lock_passwd"]
    spec.import_ids += entry.get("ssh_import_id") or []
    own = [(f"{where} ssh_authorized_keys", k)
           for k in _strings(entry.get("ssh_authorized_keys"),
                             f"{where} ssh_authorized_keys", notes)]
    spec.keys = own + spec.keys


def _strings(value, what, notes):
    if value is None:
        return []
    if not isinstance(value, list):
        notes.append((logging.WARNING, f"ignoring {what}: expected a list, got "
                                       f"{type(value).__name__}"))
        return []
    out = []
    for i, v in enumerate(value):
        if isinstance(v, str):
            out.append(v)
        else:
            notes.append((logging.WARNING, f"ignoring {what}[{i}]: expected text, got "
                                           f"{type(v).__name__}"))
    return out
