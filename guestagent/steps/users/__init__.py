"""The default user and SSH keys (and #cloud-config `users`).

Who is created, who holds the instance's keys and whom disable_root names
is guestagent/accounts/plan.py's answer (the one admin_pass and passwords
ask too): the default user ([main] default_user, else the distro's account,
with [users] sudo, groups and shell) unless `users` leaves out "default"
and no `user` puts it back; the metadata's keys and the top-level
`ssh_authorized_keys` go to it, else to the first listed user (cloud-init
would drop them; the log says where they went).  Here, for each account:
- Extra users get sudo only when their entry's `sudo` says so.
- Each entry's fields as cloud-init documents them: a new account gets
  `gecos`, `primary_group`, `homedir`, `system`, `uid`, `no_create_home`,
  `expiredate` from useradd (an existing one keeps its own, except
  `expiredate` and `groups`); missing groups are created; `hashed_passwd`,
  `plain_text_passwd` or `passwd` set the password (chpasswd, see
  `guestagent.accounts.shadow`); `lock_passwd` (default true for listed users, as in
  cloud-init) then locks it; `ssh_import_id` runs ssh-import-id as the user.
- Top-level `groups` are created first; their members are added once the
  users exist.
- `disable_root: true` puts the instance's keys into root's authorized_keys
  behind `disable_root_opts` (by default a command that says which user to
  log in as, and exits 142), as cloud-init does; `false` gives root the keys
  as they are.  Without the key root is left alone.

Per instance: a key the user removed on purpose does not come back on a
reboot; a new instance (a clone) gets its own keys merged in, and the keys
an earlier instance's data installed that the new one does not list are
taken out (`previous_keys`; [users] remove_previous_instance_keys).
"""

import logging

from ... import accounts
from ... import log as logsetup
from ...accounts import plan as account_plan
from ...accounts import shadow
from ...system import UnsafePathError
from .. import PER_INSTANCE, Outcome, Skip
from . import authorized_keys, key_import, key_record, previous_keys, root_login, sudoers

FREQUENCY = PER_INSTANCE
log = logging.getLogger(__name__)


def run(ctx):
    plan = account_plan.plan(ctx)
    for level, note in plan.notes:
        log.log(level, "%s", note)
    specs = plan.accounts
    cc = ctx.cloud_config or {}
    wanted_groups = cc.get("groups") or {}
    record = _Record(ctx, plan)
    changes = record.forget_earlier()
    if not specs and not wanted_groups and cc.get("disable_root") is None:
        record.save()
        if changes:
            return Outcome(changes)
        raise Skip("#cloud-config `users` lists nobody, and there is no default user")
    problems = []
    for name in wanted_groups:
        try:
            changes += accounts.ensure_group(ctx.system, name)
        except accounts.AccountError as e:
            problems.append(f"group {name}: {e}")
    for spec in specs:
        try:
            _set_up(ctx.system, spec, changes, record.on_added(spec.name, spec))
        except Exception as e:  # one bad account or value costs only that account
            problems.append(f"user {spec.name}: {_reason(e)}")
    for name, members in wanted_groups.items():
        try:
            changes += accounts.ensure_group(ctx.system, name, members)
        except accounts.AccountError as e:
            problems.append(f"group {name}: {e}")
    if cc.get("disable_root") is not None:
        owner = plan.key_owner
        owner_spec = plan.account(owner)
        keys = _checked_keys(owner_spec) if owner_spec else []
        try:
            changes += root_login.apply(ctx.system, cc["disable_root"],
                                        cc.get("disable_root_opts"), owner, keys,
                                        on_added=record.on_added("root", owner_spec))
        except (accounts.AccountError, OSError) as e:
            problems.append(f"root: {_reason(e)}")
    record.save()
    # a failed account is tried again on the next boot (useradd and the
    # rest are safe to repeat); the accounts made beside it are reported
    return Outcome(changes, problems, retry=True)


class _Record:
    """The keys this run installs, in the record of who brought which key."""

    def __init__(self, ctx, plan):
        self.ctx = ctx
        self.record = key_record.KeyRecord.load(ctx.system) if ctx.metadata else None
        self.wanted = {}
        for spec in plan.accounts:  # _set_up warns about the bad lines; not twice
            self.wanted[spec.name] = {authorized_keys.identity(line) for _, line in spec.keys
                                      if isinstance(line, str)} - {None}
        cc = ctx.cloud_config or {}
        if cc.get("disable_root") is not None:
            owner = plan.key_owner
            self.wanted["root"] = self.wanted.get("root", set()) | self.wanted.get(owner, set())

    def forget_earlier(self):
        if self.record is None:
            return []
        try:
            return previous_keys.forget_earlier(self.ctx, self.record, self.wanted)
        except Exception as e:  # the new instance's own keys still go in
            log.warning("could not take out an earlier instance's SSH keys: %s", _reason(e))
            return []

    def on_added(self, account, spec):
        if self.record is None or spec is None:
            return None
        sources = {}
        for where, line in spec.keys:
            ident = authorized_keys.identity(line) if isinstance(line, str) else None
            if ident:
                sources.setdefault(ident, where)
        iid = self.ctx.metadata.instance_id

        def added(key):
            self.record.add(account, key, iid, sources.get((key.keytype, key.blob), "?"))
        return added

    def save(self):
        if self.record is None:
            return
        try:
            self.record.save(self.ctx.system)
        except OSError as e:
            log.warning("cannot write %s: %s (a later instance will not know which keys "
                        "this one installed)", key_record.PATH, _reason(e))


def check_done(ctx):
    """On a later boot: what a login needs of what this step left ('' when
    all is there): the key owner's account and a non-empty authorized_keys
    when the instance has keys, and a sudoers file sudo can read."""
    problems = []
    cc = ctx.cloud_config or {}
    owner = account_plan.plan(ctx).key_owner
    if owner and (ctx.metadata.public_keys or cc.get("ssh_authorized_keys")):
        account = accounts.lookup(ctx.system, owner)
        if account is None:
            problems.append(f"the account {owner} is missing")
        elif account.home.startswith("/"):
            path = account.home.rstrip("/") + "/.ssh/authorized_keys"
            try:
                data = ctx.system.read_bytes(path, limit=1 << 20)
            except FileNotFoundError:
                data = None
            except OSError:
                data = b"?"  # there but not ours to read: not a power cut's doing
            if data is None:
                problems.append(f"{path} is missing")
            elif not data.strip(b"\0 \n") or b"\0" in data:
                problems.append(f"{path} is empty or damaged")
    broken_rules = sudoers.damage(ctx.system)
    if broken_rules:
        problems.append(broken_rules)
    return "; ".join(problems)


def redo(ctx):
    """The step again after `check_done` found damage; a rules file sudo
    cannot read is set aside first (kept, under a name sudo skips)."""
    changes = []
    if sudoers.damage(ctx.system):
        aside = sudoers.set_aside(ctx.system)
        changes.append(f"moved the damaged {sudoers.SUDOERS_FILE} to {aside}")
    outcome = run(ctx)
    return Outcome(changes + outcome.changes, outcome.problems, retry=True)


def _set_up(system, spec, changes, on_added=None):
    """Make ``spec``'s account as it asks, adding to ``changes`` as each part
    is done (an account made before its password failed is still told)."""
    keys = _checked_keys(spec)
    if not accounts.valid_name(spec.name):
        raise accounts.AccountError(f"refusing user name {spec.name!r}: not a valid "
                                    "account name ([main] default_user?)")
    account, made = accounts.ensure_user(system, spec.name, spec.shell, spec.groups,
                                         spec.options, create_groups=spec.from_user_data)
    changes += made
    if spec.password:
        value, hashed = spec.password
        logsetup.add_secrets([value])
        how = shadow.set_passwords(system, [(spec.name, value, hashed)])
        changes.append(f"set the password of {spec.name} from #cloud-config users "
                       f"(via {how})")
    if spec.lock and shadow.status(system, spec.name) not in ("locked", "missing"):
        shadow.lock(system, spec.name)
        changes.append(f"locked the password of {spec.name} (lock_passwd, the default "
                       "for a listed user; key logins still work)")
    if spec.import_ids:
        changes += key_import.import_ids(system, account, spec.import_ids)
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
            changes += authorized_keys.install(system, account, keys, on_added=on_added)
        except UnsafePathError as e:
            log.warning("user %s: not writing the SSH keys: %s", spec.name, _reason(e))
    else:
        log.info("user %s: no SSH keys to install", spec.name)


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


def _reason(e):
    if isinstance(e, OSError) and e.strerror:
        return f"{e.strerror}: {e.filename}" if e.filename else e.strerror
    return str(e) or type(e).__name__

