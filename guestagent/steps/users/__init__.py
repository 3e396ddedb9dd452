"""The default user and SSH keys (and #cloud-config `users`).

Who gets what, as in cloud-init:
- With no `users` in #cloud-config, the default user ([main] default_user,
  else the distro's account) is created if missing, gets passwordless sudo
  ([users] sudo), [users] groups and shell, and the metadata's keys plus the
  cloud-config's top-level `ssh_authorized_keys`.
- `users` may list "default" (the above) and accounts of its own; an entry
  named like the default user overrides its settings.  Without "default"
  the default user is not created, and the metadata keys (plus top-level
  `ssh_authorized_keys`) go to the first listed user instead, so the key
  pair the instance was booted with still opens a door.  cloud-init would
  drop them; we say in the log where they went.
- Extra users get sudo only when their entry's `sudo` says so.

Per instance: a key the user removed on purpose does not come back on a
reboot; a new instance (a clone) gets its own keys merged in.
"""

import logging

from ... import accounts
from ...system import UnsafePathError
from .. import PER_INSTANCE, Skip
from . import authorized_keys, sudoers
from .checks import check_users  # noqa: F401 -- the #cloud-config table names it here

FREQUENCY = PER_INSTANCE
log = logging.getLogger(__name__)


class _Spec:
    """One account to set up: its settings and the keys it should hold."""

    def __init__(self, name, shell, groups, sudo, keys, is_default=False):
        self.name = name
        self.shell = shell
        self.groups = list(groups)
        self.sudo = list(sudo)
        self.keys = list(keys)  # (where from, line)
        self.is_default = is_default


def run(ctx):
    specs = plan(ctx)
    if not specs:
        raise Skip("#cloud-config `users` lists nobody, and there is no default user")
    changes, problems = [], []
    for spec in specs:
        try:
            changes += _set_up(ctx.system, spec)
        except (accounts.AccountError, sudoers.SudoersError, OSError) as e:
            problems.append(f"user {spec.name}: {_reason(e)}")
    if problems:
        for c in changes:  # the runner reports changes only for a step that succeeds
            log.info("users: %s", c)
        raise RuntimeError("; ".join(problems))
    return changes


def plan(ctx):
    """The accounts to set up, from the config, #cloud-config and the metadata."""
    conf = ctx.config
    cc = ctx.cloud_config or {}
    md_keys = [("metadata", k) for k in (ctx.metadata.public_keys if ctx.metadata else [])]
    cc_keys = [("#cloud-config ssh_authorized_keys", k)
               for k in _strings(cc.get("ssh_authorized_keys"), "ssh_authorized_keys")]
    default = _Spec(ctx.default_user, conf.get("users", "shell").strip() or "/bin/bash",
                    conf.getlist("users", "groups"),
                    [sudoers.DEFAULT_RULE] if conf.getbool("users", "sudo") else [],
                    cc_keys + md_keys, is_default=True)
    entries = cc.get("users", ["default"])
    if not isinstance(entries, list):
        log.warning("ignoring #cloud-config users: expected a list, got %s",
                    type(entries).__name__)
        entries = ["default"]
    specs = []
    for i, entry in enumerate(entries):
        if entry == "default":
            if default not in specs:
                specs.append(default)
            continue
        spec = _from_entry(entry, i)
        if spec is None:
            continue
        same = [s for s in specs if s.name == spec.name]
        if spec.name == default.name:
            _override(default, entry)
            if default not in specs:
                specs.append(default)
        elif same:
            log.warning("#cloud-config users[%d]: %s is listed twice; using the first", i,
                        spec.name)
        else:
            specs.append(spec)
    if default not in specs:
        owner = specs[0] if specs else None
        if owner is not None and default.keys:
            log.info("#cloud-config users has no 'default' entry: the default user %s is "
                     "not created, and the instance's keys go to %s", default.name, owner.name)
            owner.keys = default.keys + owner.keys
        elif default.keys:
            log.warning("#cloud-config users lists nobody: the instance's %d key(s) are "
                        "not installed anywhere", len(default.keys))
    return specs


def _from_entry(entry, i):
    where = f"#cloud-config users[{i}]"
    if isinstance(entry, str):
        entry = {"name": entry}
    if not isinstance(entry, dict):
        log.warning("ignoring %s: expected \"default\" or a mapping, got %s", where,
                    type(entry).__name__)
        return None
    name = entry.get("name")
    if not accounts.valid_name(name):
        log.warning("ignoring %s: name %r is not a valid account name "
                    "(lower-case letters, digits, _ and -, at most 32)", where, name)
        return None
    spec = _Spec(name, "/bin/bash", [], [], [])
    _override(spec, entry)
    return spec


def _override(spec, entry):
    """Apply a cloud-config user entry's settings onto ``spec``."""
    where = f"#cloud-config user {spec.name}"
    if isinstance(entry.get("shell"), str):
        spec.shell = entry["shell"]
    if "groups" in entry:
        g = entry["groups"]
        if isinstance(g, str):
            g = [x.strip() for x in g.split(",") if x.strip()]
        spec.groups = _strings(g, f"{where} groups")
    if "sudo" in entry:
        s = entry["sudo"]
        if s is False or s is None:
            spec.sudo = []
        elif isinstance(s, (str, list)):
            spec.sudo = _strings([s] if isinstance(s, str) else s, f"{where} sudo")
        else:
            log.warning("%s: ignoring sudo %r: expected a rule such as %r, a list of rules "
                        "or false", where, s, sudoers.DEFAULT_RULE)
    if "lock_passwd" in entry and entry["lock_passwd"] is False:
        log.info("%s: lock_passwd is false, but no password is set here: a new account "
                 "still has no usable password", where)
    own = [(f"{where} ssh_authorized_keys", k)
           for k in _strings(entry.get("ssh_authorized_keys"), f"{where} ssh_authorized_keys")]
    spec.keys = own + spec.keys


def _set_up(system, spec):
    changes = []
    keys = _checked_keys(spec)
    if not accounts.valid_name(spec.name):
        raise accounts.AccountError(f"refusing user name {spec.name!r}: not a valid "
                                    "account name ([main] default_user?)")
    account, made = accounts.ensure_user(system, spec.name, spec.shell, spec.groups)
    changes += made
    rules = []
    for rule in spec.sudo:
        try:
            rules.append((spec.name, sudoers.check_rule(rule)))
        except ValueError as e:
            log.warning("user %s: refusing sudo rule %r: %s", spec.name, rule[:80], e)
    if rules:
        for line in sudoers.add_rules(system, rules):
            changes.append(f"sudo rule in {sudoers.SUDOERS_FILE}: {line}")
    if keys:
        try:
            changes += authorized_keys.install(system, account, keys)
        except UnsafePathError as e:
            log.warning("user %s: not writing the SSH keys: %s", spec.name, _reason(e))
    else:
        log.info("user %s: no SSH keys to install", spec.name)
    return changes


def _checked_keys(spec):
    keys = []
    for where, line in spec.keys:
        if isinstance(line, str) and ("\n" in line.strip() or "\r" in line):
            log.warning("user %s: skipping a key from %s: it spans several lines "
                        "(one key per entry)", spec.name, where)
            continue
        try:
            keys.append(authorized_keys.parse(line))
        except authorized_keys.BadKey as e:
            log.warning("user %s: skipping a line from %s that is not a public key: %s",
                        spec.name, where, e)
    return keys


def _strings(value, what):
    if value is None:
        return []
    if not isinstance(value, list):
        log.warning("ignoring %s: expected a list, got %s", what, type(value).__name__)
        return []
    out = []
    for i, v in enumerate(value):
        if isinstance(v, str):
            out.append(v)
        else:
            log.warning("ignoring %s[%d]: expected text, got %s", what, i, type(v).__name__)
    return out


def _reason(e):
    if isinstance(e, OSError) and e.strerror:
        return f"{e.strerror}: {e.filename}" if e.filename else e.strerror
    return str(e)

