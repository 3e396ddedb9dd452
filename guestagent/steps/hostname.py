"""The host name: /etc/hostname, the running system, and /etc/hosts.

Where the name comes from, first found wins: #cloud-config ``fqdn``, then
#cloud-config ``hostname``, then the metadata's host name.  ``preserve_hostname:
true`` in #cloud-config leaves everything alone.  A name that fails the
checks in `guestagent.metadata.dns_names` is refused with one warning, and the current
name stays.

Runs every boot, but does not fight the administrator: on a reboot of the
same instance /etc/hostname is only changed while it still holds the name
the agent wrote last (remembered in /var/lib/guestagent/hostname), is empty,
or is an image default such as ``localhost`` or ``debian``.  A new instance
always gets its name from the metadata.

/etc/hosts: the agent owns one line, ``127.0.1.1 FQDN SHORT  # guestagent``
(the Debian convention).  It replaces its own marked line; failing that, a
127.0.1.1 line that names only the image's old host name; failing that, it
adds its line after the other loopback lines.  Every other line, comment and
the order are kept.
"""

import errno
import logging
import socket

from ..log import shown
from ..metadata.dns_names import BadName, check_hostname
from ..state import STATE_DIR
from . import PER_BOOT, Skip

log = logging.getLogger(__name__)

FREQUENCY = PER_BOOT

HOSTNAME_FILE = "/etc/hostname"
HOSTS_FILE = "/etc/hosts"
LAST_WRITTEN = STATE_DIR + "/hostname"
HOSTS_MARK = "# guestagent"
HOSTS_ADDRESS = "127.0.1.1"
# Names images ship with before anyone chose one.
PLACEHOLDERS = {"", "localhost", "localhost.localdomain", "localhost6", "debian",
                "ubuntu", "fedora", "centos", "rhel", "rocky", "almalinux", "alpine",
                "arch", "archlinux", "opensuse", "linux", "unassigned-hostname",
                "none", "(none)"}


def run(ctx):
    if not ctx.config.getbool("hostname", "enabled"):
        raise Skip("[hostname] enabled = no")
    cc = ctx.cloud_config or {}
    name = wanted_name(ctx)
    # prefer_fqdn_over_hostname: the full name is the host name, as in cloud-init
    host = name.fqdn if cc.get("prefer_fqdn_over_hostname") is True else name.short
    changes = []
    current = read_hostname_file(ctx.system)
    last = _read_last_written(ctx.system)
    if current != host:
        if not ctx.new_instance and current not in PLACEHOLDERS and current != last:
            raise Skip(f"/etc/hostname says {current!r}, changed by hand since the agent "
                       f"set {last or 'a name'!r}; leaving the host name alone "
                       f"(the metadata asks for {name.fqdn!r})")
        ctx.system.write_file(HOSTNAME_FILE, host + "\n", mode=0o644)
        changes.append(f"set the host name in /etc/hostname to {host} "
                       f"(was {current or 'empty'})")
    if last != host:
        ctx.system.write_file(LAST_WRITTEN, host + "\n", mode=0o600, dir_mode=0o700)
    if ctx.system.live:
        if socket.gethostname() != host:
            how = apply_live(ctx.system, host)
            changes.append(f"set the running host name to {host} ({how})")
    manage = cc.get("manage_etc_hosts")
    if manage is None:
        manage = "localhost" if ctx.config.getbool("hostname", "manage_hosts") else False
    if manage == "localhost":
        line = update_hosts(ctx.system, name, old_names={current, last})
        if line:
            changes.append(f"/etc/hosts now maps {HOSTS_ADDRESS} to {line}")
    elif manage == "template":
        text = HOSTS_TEMPLATE.format(fqdn=name.fqdn, hostname=name.short)
        if ctx.system.read_text(HOSTS_FILE, default="") != text:
            ctx.system.write_file(HOSTS_FILE, text, mode=0o644)
            changes.append(f"wrote /etc/hosts from the template (manage_etc_hosts: true; "
                           f"{HOSTS_ADDRESS} is {name.fqdn})")
    return changes


def unchanged_inputs(ctx):
    """What decides the next boot's hostname step (see boot_guard)."""
    if not ctx.config.getbool("hostname", "enabled"):
        return []
    return [HOSTNAME_FILE, LAST_WRITTEN, HOSTS_FILE]


# cloud-init's Debian template, with its names filled in; rewritten every boot
HOSTS_TEMPLATE = """\
# Written by guestagent at every boot: #cloud-config sets manage_etc_hosts.
# To keep changes here, change or remove manage_etc_hosts in the user-data.
127.0.1.1 {fqdn} {hostname}
127.0.0.1 localhost

# The following lines are desirable for IPv6 capable hosts
::1 localhost ip6-localhost ip6-loopback
ff02::1 ip6-allnodes
ff02::2 ip6-allrouters
"""


# -- #cloud-config hostname keys, checked before anything acts on them ---------------


def wanted_name(ctx):
    """The HostName to use, or Skip saying why there is none."""
    cc = ctx.cloud_config or {}
    if cc.get("preserve_hostname") is True:
        raise Skip("#cloud-config sets preserve_hostname: true")
    for key in ("fqdn", "hostname"):
        if cc.get(key) not in (None, ""):
            value, where = cc[key], f"#cloud-config {key}"
            break
    else:
        value, where = ctx.metadata.hostname, "the metadata's host name"
        if not value:
            raise Skip("the metadata names no host name")
    try:
        return check_hostname(value)
    except BadName as e:
        log.warning("refusing %s %s: %s; keeping the current host name", where,
                    shown(value), e)
        raise Skip(f"{where} is not a usable host name") from None


def read_hostname_file(system):
    """The name /etc/hostname holds ('' when missing); comments are skipped."""
    try:
        text = system.read_text(HOSTNAME_FILE)
    except OSError:
        return ""
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            return line
    return ""


def apply_live(system, short):
    """Set the kernel's host name; returns how.  Never needs D-Bus.

    socket.sethostname first (no process), then the ``hostname`` command.
    hostnamectl is not used: minimal images have no D-Bus, and systemd-hostnamed
    reads /etc/hostname and the kernel name itself.
    """
    try:
        socket.sethostname(short)
        return "sethostname"
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.ENOSYS, errno.EINVAL):
            raise
        first = e
    tool = system.which("hostname")
    if tool is None:
        raise RuntimeError(f"cannot set the running host name: {first.strerror}, "
                           "and there is no hostname command")
    system.run([tool, short], check=True, timeout=30)
    return "hostname command"


def update_hosts(system, name, old_names=()):
    """Make /etc/hosts map 127.0.1.1 to the name; returns the names written or ''."""
    try:
        text = system.read_text(HOSTS_FILE)
    except OSError:
        text = ""
    names = name.short if name.fqdn == name.short else f"{name.fqdn} {name.short}"
    ours = f"{HOSTS_ADDRESS}\t{names}\t{HOSTS_MARK}"
    new = hosts_with_line(text, ours, old_names=set(old_names) | PLACEHOLDERS | {name.short})
    if new == text:
        return ""
    system.write_file(HOSTS_FILE, new, mode=0o644)
    return names


def hosts_with_line(text, ours, old_names=()):
    """``text`` with the agent's line in place; everything else untouched."""
    lines = text.splitlines()
    mine = [i for i, ln in enumerate(lines) if _is_marked(ln)]
    if mine:
        lines[mine[0]] = ours
        for i in reversed(mine[1:]):
            del lines[i]
    else:
        target = last_v4 = last_v6 = None
        for i, ln in enumerate(lines):
            fields = ln.split("#", 1)[0].split()
            if not fields:
                continue
            if fields[0].startswith("127."):
                last_v4 = i
            elif fields[0] == "::1":
                last_v6 = i
            if fields[0] == HOSTS_ADDRESS and target is None \
                    and all(_short(n) in old_names or n in old_names for n in fields[1:]):
                target = i
        after = last_v4 if last_v4 is not None else last_v6
        if target is not None:
            lines[target] = ours
        elif after is not None:
            lines.insert(after + 1, ours)
        else:
            lines.append(ours)
    return "\n".join(lines) + "\n"


def _is_marked(line):
    return line.rstrip().endswith(HOSTS_MARK) and \
        line.split()[:1] == [HOSTS_ADDRESS]


def _short(n):
    return n.split(".", 1)[0]


def _read_last_written(system):
    try:
        return system.read_text(LAST_WRITTEN).strip()
    except OSError:
        return ""
