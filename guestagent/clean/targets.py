"""What each `clean` category finds: actions, nothing done yet (see __init__).

Every path is inside the System's root and is only ever removed or emptied
through it: a link is removed itself, never followed.
"""

import fnmatch
import logging
import re
import stat

from ..boot import guard as boot_guard
from ..state import STATE_DIR
from . import Action

log = logging.getLogger(__name__)

KEY_RECORD_NAME = "installed-keys.json"
NETWORK_ASIDE_NAME = "network-replaced"
SSH_DIR = "/etc/ssh"
MACHINE_ID = "/etc/machine-id"
DBUS_MACHINE_ID = "/var/lib/dbus/machine-id"
# (directory, name patterns): where each DHCP client keeps what it learnt
LEASES = (
    ("/var/lib/dhcp", ("dhclient*.lease", "dhclient*.leases")),          # dhclient (Debian)
    ("/var/lib/dhclient", ("*.lease", "*.leases")),                      # dhclient (RHEL)
    ("/var/lib/NetworkManager", ("*.lease",)),                           # NM, internal or dhclient
    ("/var/lib/dhcpcd", ("*.lease", "*.lease6", "duid")),                # dhcpcd
    ("/var/lib/dhcpcd5", ("*.lease", "*.lease6", "duid")),               # dhcpcd5 (older Debian)
    ("/var/db/dhcpcd", ("*.lease", "*.lease6", "duid")),
)
# the step that makes each category's things again, on the next boot
KEY_MAKER_WAIT = 300  # RSA 4096 under emulation takes a while
STEP_OF = {"host-keys": "hostkeys", "keys": "users", "network": "network"}


class Refusal(Action):
    """A category's thing that must stay; carrying it out fails with the reason."""

    def __init__(self, category, path, reason):
        def refuse():
            raise RuntimeError(reason)
        super().__init__(category, "keep", path, refuse, reason)

    refusal = True

    def describe(self, done=True):
        return f"keeping {self.path}: {self.detail}"


def _files(system, directory, patterns):
    """Regular files and links in ``directory`` whose names match ``patterns``."""
    out = []
    for name in system.listdir(directory):
        if not any(fnmatch.fnmatchcase(name, p) for p in patterns):
            continue
        path = f"{directory}/{name}"
        try:
            mode = system.lstat(path).st_mode
        except OSError:
            continue
        if stat.S_ISREG(mode) or stat.S_ISLNK(mode):
            out.append(path)
    return out


def _remove(system, category, path, detail=""):
    return Action(category, "remove", path, lambda: system.remove_tree(path), detail)


def state(system, config):
    try:
        if stat.S_ISLNK(system.lstat(STATE_DIR).st_mode):
            # whatever it points at (inside the image) is not the agent's to empty
            return [Refusal("state", STATE_DIR, "a symlink; not emptying what it points at")]
    except OSError:
        return []
    # the key record and the network files moved aside are the keys and
    # network categories' to settle: without them they stay
    kept = (KEY_RECORD_NAME, NETWORK_ASIDE_NAME)
    return [_remove(system, "state", f"{STATE_DIR}/{name}")
            for name in system.listdir(STATE_DIR) if name not in kept]


def logs(system, config):
    """[main] log_file, the user-data scripts' and the package manager's logs,
    and their rotated copies (``.1``, ``.2.gz``, ``-20261207``)."""
    from ..steps.packages.managers import LOG_FILE as PACKAGES_LOG
    from ..userdata.execute import LOG_FILE as SCRIPTS_LOG
    actions = []
    for path in dict.fromkeys((config.get("main", "log_file").strip(), SCRIPTS_LOG,
                               PACKAGES_LOG)):
        if not path.startswith("/") or path.endswith("/"):
            continue
        directory, base = path.rsplit("/", 1)
        rotated = re.compile(re.escape(base) + r"([.-][0-9][0-9A-Za-z.-]*)?")
        actions += [_remove(system, "logs", f"{directory}/{name}")
                    for name in system.listdir(directory or "/")
                    if rotated.fullmatch(name) and _is_file_or_link(system, f"{directory}/{name}")]
    return actions


def _is_file_or_link(system, path):
    try:
        mode = system.lstat(path).st_mode
    except OSError:
        return False
    return stat.S_ISREG(mode) or stat.S_ISLNK(mode)


def host_keys(system, config):
    from ..steps import hostkeys
    pid = _wait_for(lambda: hostkeys.background_maker(system), KEY_MAKER_WAIT)
    if pid:
        return [Refusal("host-keys", f"{SSH_DIR}/ssh_host_*key*", f"the host key being made "
                        f"in the background (pid {pid}) is still not done after "
                        f"{KEY_MAKER_WAIT} s")]
    # with the key maker's leftovers, should it have been cut off
    found = _files(system, SSH_DIR, ("ssh_host_*key*", ".ssh_host_*guestagent-*"))
    if found and not config.getbool("ssh", "regenerate_host_keys"):
        # nothing would make new ones, and sshd does not start without a key
        return [Refusal("host-keys", f"{SSH_DIR}/ssh_host_*key*",
                        "[ssh] regenerate_host_keys = no: nothing would make new ones")]
    return [_remove(system, "host-keys", p) for p in found]


def _wait_for(busy, seconds):
    """Poll ``busy()`` until it is falsy or ``seconds`` pass; returns its last answer."""
    import time
    deadline = time.monotonic() + seconds
    answer = busy()
    if answer:
        log.info("waiting for the SSH host key being made in the background (pid %s)", answer)
    while answer and time.monotonic() < deadline:
        time.sleep(0.2)
        answer = busy()
    return answer


def machine_id(system, config):
    actions = []
    try:
        st = system.lstat(MACHINE_ID)
    except OSError:
        st = None
    if st is not None and stat.S_ISREG(st.st_mode) and st.st_size > 0:
        def empty():
            system.write_file(MACHINE_ID, b"", mode=stat.S_IMODE(st.st_mode), uid=st.st_uid,
                              gid=st.st_gid, make_dirs=False)
        actions.append(Action("machine-id", "empty", MACHINE_ID, empty,
                              "systemd makes a new id at the next boot"))
    elif st is not None and stat.S_ISLNK(st.st_mode):
        actions.append(Refusal("machine-id", MACHINE_ID, "a symlink; not following it"))
    try:
        dbus = system.lstat(DBUS_MACHINE_ID)
    except OSError:
        dbus = None
    if dbus is not None and stat.S_ISREG(dbus.st_mode):  # a link to /etc/machine-id stays
        actions.append(_remove(system, "machine-id", DBUS_MACHINE_ID,
                               "D-Bus reads /etc/machine-id without it"))
    return actions


def dhcp_leases(system, config):
    return [_remove(system, "dhcp-leases", p) for d, patterns in LEASES
            for p in _files(system, d, patterns)]


def keys(system, config):
    from ..steps.users import key_record, previous_keys
    record = key_record.KeyRecord.load(system)
    if not record.found:
        return []
    entries = list(record.entries)
    actions = []
    by_account = {}
    for e in previous_keys.present(system, entries):
        by_account.setdefault(e["account"], []).append(e)
    for name, group in by_account.items():
        fps = ", ".join(key_record.fingerprint(e["type"], e["blob"]) for e in group)

        def take_out(group=group):
            previous_keys.take_out(system, record, group)
            left = [e for e in group if e in record.entries]
            if left:
                raise RuntimeError(f"{len(left)} key(s) could not be removed (see above)")
        actions.append(Action("keys", "take out", f"{len(group)} key(s) from {name}'s "
                              "authorized_keys", take_out, f"the agent installed them: {fps}"))

    def settle():
        # what could not be taken out stays recorded; keys already gone are forgotten
        gone = [e for e in record.entries if e not in previous_keys.present(system, [e])]
        for e in gone:
            record.drop(e)
        if record.entries:
            record.save(system)
            raise RuntimeError(f"{len(record.entries)} recorded key(s) are still installed")
        system.remove(key_record.PATH)
    actions.append(Action("keys", "remove", key_record.PATH, settle,
                          "the record of the keys the agent installed"))
    return actions


def forget_steps(system, categories):
    """Done markers (and the reboot shortcut) that would keep the next boot of the
    same instance from making the cleaned things again."""
    steps = [STEP_OF[c] for c in categories if c in STEP_OF]
    if not steps:
        return []
    actions = []
    base = f"{STATE_DIR}/instances"
    for inst in system.listdir(base):
        for step in steps:
            marker = f"{base}/{inst}/done/{step}"
            if _is_file_or_link(system, marker):
                actions.append(Action("state", "forget", marker, lambda m=marker: system.remove(m),
                                      f"the next boot runs the {step} step again"))
    for path in (boot_guard.MANIFEST, boot_guard.PENDING):
        if _is_file_or_link(system, path):
            actions.append(_remove(system, "state", path, "the reboot shortcut's list"))
    return actions
