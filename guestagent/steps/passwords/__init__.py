"""#cloud-config `password`, `chpasswd` and `ssh_pwauth` (cloud-init's Set Passwords).

With cloud-init's documented meaning, once per instance, after the users
step (the accounts exist) and after admin_pass (what the user-data asks
for wins over the metadata's admin password):

- ``chpasswd: {users: [{name, password, type}]}``: ``type`` is ``hash``
  (the default, as in cloud-init), ``text``, or ``RANDOM`` (no password
  needed);
- ``chpasswd: {list: ...}`` (the older form): ``user:password`` lines in a
  string or a list; a crypt(3) hash is set as a hash, ``R``/``RANDOM`` makes
  a random one, anything else is plain text;
- ``password``: the default user's, when chpasswd names nobody;
- ``chpasswd: {expire: true}`` (the default): each of those users must pick a
  new password at the first login; ``expire: false`` leaves them usable;
- random passwords (20 characters) are printed once, to the console only
  (/dev/console: ``nova console-log``), between
  ``-----BEGIN GUESTAGENT RANDOM PASSWORDS-----`` and ``-----END ...-----``;
  never to the journal, a log or the status;
- ``ssh_pwauth: true/false`` sets sshd's ``PasswordAuthentication`` where the
  image's sshd reads it (`guestagent.steps.passwords.sshd_settings`), reloading a running
  sshd; ``unchanged`` or no key leaves sshd alone.

Passwords reach the system only on the stdin of ``chpasswd`` (or, under
``--root``, as SHA-512 hashes in the root's /etc/shadow); every one is added
to the log filter as a second line of defence.
"""

import logging
import os
import sys

from ... import accounts
from ... import log as logsetup
from ...accounts import plan as account_plan
from .. import PER_INSTANCE, Outcome, Skip

FREQUENCY = PER_INSTANCE
log = logging.getLogger(__name__)

CONSOLE = "/dev/console"
BEGIN = "-----BEGIN GUESTAGENT RANDOM PASSWORDS-----"
END = "-----END GUESTAGENT RANDOM PASSWORDS-----"
RANDOM_LENGTH = 20


def run(ctx):
    cc = ctx.cloud_config or {}
    changes, problems = [], []
    wanted, expire = _wanted(ctx, cc)
    if wanted:
        changes += _set(ctx, wanted, expire, problems)
    pwauth = cc.get("ssh_pwauth")
    if pwauth in (True, False):
        from ...system.sshd_config import SSHD_UNITS
        from . import sshd_settings
        value = "yes" if pwauth else "no"
        where = sshd_settings.set_option(ctx.system, "PasswordAuthentication", value)
        if where:
            reloaded = ctx.system.reload_service(SSHD_UNITS,
                                                 "the new PasswordAuthentication")
            changes.append(f"sshd PasswordAuthentication {value} in {where}"
                           + (f" ({reloaded})" if reloaded else ""))
        else:
            log.info("sshd already has PasswordAuthentication %s", value)
    if not wanted and pwauth not in (True, False):
        raise Skip("no password, chpasswd or ssh_pwauth in #cloud-config")
    # done for this instance even when a user is missing: a reboot must not
    # set (and print) the others' passwords again
    return Outcome(changes, problems)


def _wanted(ctx, cc):
    """[(user, password or None for random, hashed)], expire."""
    from ...accounts import shadow
    ch = cc.get("chpasswd") or {}
    expire = ch.get("expire", True)
    entries = list(ch.get("users", []))
    if not entries and cc.get("password") is not None:
        owner = account_plan.plan(ctx).password_owner
        if owner is None:
            log.warning("#cloud-config password: there is no default user to give it to "
                        "(users lists no 'default')")
        else:
            pw = cc["password"]
            entries = [{"name": owner, "password": pw,
                        "type": "hash" if shadow.is_hash(pw) else "text"}]
    return entries, expire


def _set(ctx, entries, expire, problems):
    """Set the passwords of ``entries``; returns the changes, adding to
    ``problems`` the users who do not exist."""
    from ...accounts import shadow
    system = ctx.system
    known = accounts.users(system)
    missing = sorted({e["name"] for e in entries if e["name"] not in known})
    if missing:
        problems.append(f"no such user(s): {', '.join(missing)}: their password was not "
                        "set (create them with #cloud-config users)")
    entries = [e for e in entries if e["name"] in known]
    randoms, todo = [], []
    for e in entries:
        if e["type"] == "RANDOM":
            pw = random_password()
            randoms.append((e["name"], pw))
            todo.append((e["name"], pw, False))
        else:
            todo.append((e["name"], e["password"], e["type"] == "hash"))
    logsetup.add_secrets(p for _, p, _ in todo)
    changes = []
    if todo:
        # the console first: a random password nobody can read must not be set
        console = _open_console(system) if randoms else None
        how = shadow.set_passwords(system, todo)
        names = ", ".join(dict.fromkeys(u for u, _, _ in todo))
        changes.append(f"set the password of {names} (via {how})")
        if randoms:
            shown_on = _show_randoms(console, randoms)
            changes.append(f"random password(s) for {', '.join(u for u, _ in randoms)} "
                           f"printed once to {shown_on}")
        if expire:
            users = list(dict.fromkeys(u for u, _, _ in todo))
            shadow.expire(system, users)
            changes.append(f"expired the password of {', '.join(users)}: a new one is "
                           "chosen at the first login")
    return changes


def random_password(length=RANDOM_LENGTH):
    """Letters and digits without look-alikes (l, 1, O, 0...), one of each class at least."""
    import secrets
    import string
    lower = [c for c in string.ascii_lowercase if c not in "lo"]
    upper = [c for c in string.ascii_uppercase if c not in "IO"]
    digits = [c for c in string.digits if c not in "01"]
    alphabet = lower + upper + digits
    while True:
        pw = "".join(secrets.choice(alphabet) for _ in range(length))
        if (any(c in lower for c in pw) and any(c in upper for c in pw)
                and any(c in digits for c in pw)):
            return pw


def _open_console(system):
    """A file descriptor on the console (None under --root: stdout is used)."""
    if not system.live:
        return None
    try:
        return os.open(CONSOLE, os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as e:
        # never fall back to stdout: under systemd that is the journal, a log
        raise RuntimeError(f"cannot write random passwords to {CONSOLE} ({e.strerror}), "
                           "so none was set; give the passwords explicitly") from None


def _show_randoms(console, randoms):
    """Print the block once: to the console on a boot, to stdout under --root."""
    block = "\n".join([BEGIN] + [f"{u}:{p}" for u, p in randoms] + [END]) + "\n"
    if console is None:
        sys.stdout.write(block)
        sys.stdout.flush()
        return "standard output (--root run)"
    try:
        os.write(console, block.encode())
    finally:
        os.close(console)
    return CONSOLE
