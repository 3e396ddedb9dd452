"""Local accounts inside the root: read passwd/group, create users, add groups.

The files are parsed here rather than through the `pwd` module, which reads
the host's databases: under ``--root`` the accounts that matter are the
image's.  Changes go through the distro's own tools (useradd, usermod); under
``--root`` with ``--prefix ROOT`` so they edit the image's files, never the
host's (``--root`` would chroot and need the tools inside the tree).
"""

import logging
import re
from collections import namedtuple

from ..system import CommandFailed, CommandMissing

log = logging.getLogger(__name__)

# What useradd accepts on Debian and RHEL (shadow 4.9+ allows dots: cloud
# users write "first.last"), and nothing a shell or a sudoers line could read
# as syntax.  A name never starts with a dot or a dash.
NAME_RE = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")
_SHELL_RE = re.compile(r"^/[A-Za-z0-9_./+-]{1,255}$")

Account = namedtuple("Account", "name uid gid home shell")
Group = namedtuple("Group", "name gid members")


class AccountError(RuntimeError):
    """An account could not be created or changed; the message says why."""


def valid_name(name):
    return isinstance(name, str) and bool(NAME_RE.fullmatch(name))


def valid_shell(shell):
    return isinstance(shell, str) and bool(_SHELL_RE.fullmatch(shell)) and ".." not in shell


def users(system):
    """name -> Account, from /etc/passwd inside the root."""
    out = {}
    for fields in _records(system, "/etc/passwd", 7):
        try:
            out.setdefault(fields[0], Account(fields[0], int(fields[2]), int(fields[3]),
                                              fields[5], fields[6]))
        except ValueError:
            continue
    return out


def groups(system):
    """name -> Group, from /etc/group inside the root."""
    out = {}
    for fields in _records(system, "/etc/group", 4):
        try:
            members = [m for m in fields[3].split(",") if m]
            out.setdefault(fields[0], Group(fields[0], int(fields[2]), members))
        except ValueError:
            continue
    return out


def lookup(system, name):
    return users(system).get(name)


def ensure_user(system, name, shell="/bin/bash", extra_groups=(), options=None,
                create_groups=False):
    """Create ``name`` if missing (home, shell, locked password); add it to groups.

    Returns (Account, changes).  ``options`` (from #cloud-config users, checked
    there) set what useradd sets for a new account: ``gecos``, ``primary_group``,
    ``homedir``, ``system``, ``uid``, ``no_create_home``, ``expiredate``; an
    existing account keeps its own, except ``expiredate`` and its groups.
    Groups missing from the root are created with ``create_groups`` (cloud-init
    creates a user's groups), else named in a warning and left out.
    """
    options = options or {}
    if not valid_name(name):
        raise AccountError(f"refusing user name {name!r}: not a valid account name")
    if not valid_shell(shell):
        log.warning("user %s: shell %r is not a plain absolute path; using /bin/sh",
                    name, shell)
        shell = "/bin/sh"
    changes = []
    known = groups(system)
    wanted = []
    primary = options.get("primary_group")
    for g in list(extra_groups) + ([primary] if primary else []):
        if not valid_name(g):
            log.warning("user %s: ignoring group %r: not a valid group name", name, g)
            continue
        if g not in known:
            if not create_groups:
                log.warning("user %s: group %s does not exist here; not adding it", name, g)
                continue
            changes += ensure_group(system, g)
            known = groups(system)
        if g not in wanted and g != primary:
            wanted.append(g)
    account = lookup(system, name)
    if account is None:
        system_account = bool(options.get("system"))
        home = not (options.get("no_create_home") or system_account)
        argv = ["useradd", "-m" if home else "-M", "-s", shell]
        if primary:
            argv += ["-g", primary]
        else:
            argv += ["-g", name] if _join_own_group(system, name, known) else ["-U"]
        if wanted:
            argv += ["-G", ",".join(wanted)]
        for opt, flag in (("gecos", "-c"), ("homedir", "-d"), ("uid", "-u"),
                          ("expiredate", "-e")):
            if options.get(opt) is not None:
                argv += [flag, str(options[opt])]
        if system_account:
            argv.append("-r")
        if home:
            # useradd -m makes the home itself, on the host's view of the
            # path: check where that leads before it runs
            target = options.get("homedir") or f"{_home_base(system)}/{name}"
            system.check_tool_path(str(target), "useradd -m")
        argv += _prefix(system, skel=home) + ["--", name]
        _run(system, argv, f"create user {name}")
        account = lookup(system, name)
        if account is None:
            raise AccountError(f"useradd reported success but {name} is not in /etc/passwd")
        if not system.exists(shell):
            log.warning("user %s: shell %s is not installed in this image", name, shell)
        extra = [f"groups {', '.join(wanted)}"] if wanted else []
        extra += [f"{k} {options[k]}" for k in ("primary_group", "expiredate")
                  if options.get(k)]
        extra += ["system account"] if system_account else []
        extra += ["no home created"] if not home else []
        changes.append(f"created user {name} (uid {account.uid}, home {account.home}, "
                       f"shell {shell}, password locked"
                       + "".join(f", {e}" for e in extra) + ")")
        return account, changes
    kept = [k for k in ("gecos", "primary_group", "homedir", "uid", "system")
            if options.get(k) is not None]
    if kept:
        log.info("user %s exists already: its %s stay as they are", name, ", ".join(kept))
    missing = [g for g in wanted if name not in known[g].members and known[g].gid != account.gid]
    if missing:
        _run(system, ["usermod", "-a", "-G", ",".join(missing)] + _prefix(system)
             + ["--", name], f"add {name} to groups")
        changes.append(f"added user {name} to groups {', '.join(missing)}")
    if options.get("expiredate"):
        _run(system, ["usermod", "-e", str(options["expiredate"])] + _prefix(system)
             + ["--", name], f"set the expiry date of {name}")
        changes.append(f"user {name} expires on {options['expiredate']}")
    return account, changes


def ensure_group(system, name, members=()):
    """Create group ``name`` if missing and add ``members`` that exist; returns changes."""
    if not valid_name(name):
        raise AccountError(f"refusing group name {name!r}: not a valid group name")
    changes = []
    known = groups(system)
    if name not in known:
        _run(system, ["groupadd"] + _prefix(system) + ["--", name], f"create group {name}")
        changes.append(f"created group {name}")
        known = groups(system)
    present = users(system)
    for m in members:
        if m not in present:
            log.warning("group %s: user %s does not exist; not adding it", name, m)
            continue
        if m in known[name].members or present[m].gid == known[name].gid:
            continue
        _run(system, ["usermod", "-a", "-G", name] + _prefix(system) + ["--", m],
             f"add {m} to group {name}")
        changes.append(f"added user {m} to group {name}")
    return changes


def _join_own_group(system, name, known):
    """True when a group named ``name`` exists and may be the new user's primary group.

    useradd -U refuses when it exists; joining it is right for a left-over
    group of the user's own, but a system group (``disk``, ``shadow``,
    ``sudo``...) or one with members would silently hand the new user its
    privileges, so that is refused."""
    group = known.get(name)
    if group is None:
        return False
    gid_min = _login_defs_int(system, "GID_MIN", 1000)
    if group.gid < gid_min:
        raise AccountError(f"refusing to create user {name}: a system group {name} "
                           f"(gid {group.gid}) exists and would become its primary group, "
                           f"with that group's access; pick another user name")
    if group.members:
        raise AccountError(f"refusing to create user {name}: the group {name} "
                           f"(gid {group.gid}) already has members "
                           f"({', '.join(group.members[:5])}) and would become its primary "
                           f"group; pick another user name")
    log.warning("user %s: a group %s (gid %d) already exists, with no members; it becomes "
                "the user's primary group", name, name, group.gid)
    return True


def _login_defs_int(system, key, default):
    try:
        text = system.read_text("/etc/login.defs", default="")
    except OSError:
        return default
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == key:
            try:
                return int(fields[1], 0)
            except ValueError:
                return default
    return default


def _home_base(system):
    """Where useradd puts homes: HOME in /etc/default/useradd, else /home."""
    try:
        text = system.read_text("/etc/default/useradd", default="")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.strip().partition("=")
        if key == "HOME" and value.strip().startswith("/"):
            return value.strip().rstrip("/") or "/home"
    return "/home"


# What useradd/usermod --prefix ROOT write besides the home: the account
# files (via lock files beside them), the mail spool and the login records.
_TOOL_PATHS = ("/etc", "/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow",
               "/etc/subuid", "/etc/subgid", "/var/mail", "/var/spool/mail",
               "/var/log/lastlog", "/var/log/faillog")


def _prefix(system, skel=False):
    if system.live:
        return []
    system.command_path("/etc")
    for path in _TOOL_PATHS:
        system.check_tool_path(path, "useradd/usermod --prefix")
    argv = ["--prefix", system.root]
    if skel:
        # with --prefix, useradd still copies the host's /etc/skel: use the image's
        argv += ["-k", system.path("/etc/skel")]
    return argv


def _run(system, argv, what):
    if system.which(argv[0]) is None:
        raise AccountError(f"cannot {what}: {argv[0]} is not installed")
    try:
        return system.run(argv, timeout=60, check=True)
    except CommandMissing:
        raise AccountError(f"cannot {what}: {argv[0]} is not installed") from None
    except CommandFailed as e:
        raise AccountError(f"cannot {what}: {e}") from None


def _records(system, path, nfields):
    try:
        text = system.read_text(path)
    except OSError:
        return
    for line in text.splitlines():
        if not line or line.startswith(("#", "+", "-")):
            continue
        fields = line.split(":")
        if len(fields) >= nfields:
            yield fields
