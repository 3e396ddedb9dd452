"""The agent's own files under the root, checked before a command uses them.

    /var/lib/guestagent/            the state directory (state.py)
      lock                          one run at a time (run_lock.py)
      status.json, instance-id, format
      instance-data[-sensitive].json  the copies the reboot guard restores (instance_data.py)
      unchanged.sha256[.pending]    the reboot guard's list (boot_guard.py)
      instances/ID/                 metadata.json, cloud-config.json, done/STEP
    /run/guestagent/                local-configured, final-pending, unchanged,
                                    instance-data.json, instance-data-sensitive.json

Every write to them goes through `System`, which refuses a planted link; but
a refusal met half-way through a run ended it with a traceback, and `status`
and `query` read through the very link the writer refuses.  `check` looks at
all of them first, reaching each the way the writer will (directories opened
without following untrusted links, the file itself never a link), so every
command that uses them refuses an unsafe tree the same way, before anything
is read or written: one line naming the path, exit 4 (guestagent/cli.py).

The log file ([main] log_file) is refused too, but not checked here: losing
it costs only a copy of what the console and the journal already carry, so
log.add_file names it in one line and the boot goes on.  (Ending the boot
there would let anyone who can write /var/log, a syslog group on Ubuntu,
keep an instance from getting its keys.)
"""

import errno
import os
import stat

from ..metadata.instance_data import PUBLIC, SENSITIVE
from ..state import FORMAT_FILE, STATE_DIR, State
from ..state.run_lock import LOCK
from ..system.root_paths import UnsafePathError
from .guard import FINAL_PENDING, LOCAL_DONE, MANIFEST, PENDING, SKIPPED_MARK

RUN_DIR = "/run/guestagent"


def own_paths(system, config):
    """[(directory, [file names in it])] for every path the agent's own
    bookkeeping reads or writes, parents before what they hold."""
    data_files = [_name(PUBLIC), _name(SENSITIVE)]
    groups = [(STATE_DIR, [_name(LOCK), "status.json", "instance-id", _name(MANIFEST),
                           _name(PENDING), _name(FORMAT_FILE)] + data_files),
              (STATE_DIR + "/instances", [])]
    iid = State(system).previous_instance_id()
    if iid:
        instance = State(system).instance_dir(iid)
        groups.append((instance, ["metadata.json", "cloud-config.json"]))
        groups.append((instance + "/done", None))  # None: every file it holds
    groups.append((RUN_DIR, [_name(p) for p in (LOCAL_DONE, FINAL_PENDING, SKIPPED_MARK)]
                   + data_files))
    return groups


def check(system, config):
    """Raise UnsafePathError naming the first of the agent's own paths that a
    write there would refuse; paths not there yet are fine (they are made
    safely), and a directory this user may not open is left to the command."""
    trusted = tuple({0, os.geteuid()})  # directories only root, or you, can change
    for directory, names in own_paths(system, config):
        try:
            dfd = system.open_dir(directory, trusted_uids=trusted)
        except UnsafePathError as e:
            raise UnsafePathError(e.errno, e.strerror, directory) from None
        except OSError:
            continue  # missing (made when needed), or not ours to read
        try:
            for name in os.listdir(dfd) if names is None else names:
                _check_file(dfd, directory, name)
        finally:
            os.close(dfd)


def why(e):
    """Why an UnsafePathError met on one of the agent's own paths refuses the
    run, in an operator's words (root_paths' reasons are terse)."""
    reason = e.strerror or "unsafe"
    for said, meant in (("refusing symlink with '..': ", "a symlink with '..' on the way: "),
                        ("refusing to follow symlink ", "a symlink on the way that is not "
                                                        "root's, or in a directory others "
                                                        "can write: "),
                        ("refusing to write: ", "")):
        if reason.startswith(said):
            reason = meant + reason[len(said):]
    return (f"{reason}; the agent keeps its own files as regular files, reached only "
            "through root's own directories and links inside the root")


def _check_file(dfd, directory, name):
    try:
        st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return
    path = f"{directory}/{name}"
    if stat.S_ISLNK(st.st_mode):
        target = os.readlink(name, dir_fd=dfd)
        raise UnsafePathError(errno.ELOOP, f"a symlink (to {target})", path)
    if not stat.S_ISREG(st.st_mode):
        raise UnsafePathError(errno.EINVAL, "not a regular file", path)


def _name(path):
    return path.rsplit("/", 1)[1]
