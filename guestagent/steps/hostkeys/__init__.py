"""New SSH host keys for a new instance, and their fingerprints on the console.

An image cloned into many instances must not share host keys, so on a new
instance every /etc/ssh/ssh_host_*key* goes and fresh keys are made with
ssh-keygen (one process per type, in parallel: RSA dominates the time).
The fingerprints are printed to stdout in one write, between the markers
cloud-init uses, so `nova console-log` shows them and a user can check the
key on first connection.  Per instance: a reboot keeps the keys.

sshd must never start without a host key, nor serve keys swapped under it:
- where the metadata is late and the network stage lets sshd start before it
  (guestagent/boot/ssh_wait.py, [main] ssh_wait), `early.make_for_early_sshd` first
  makes the keys sshd starts with: new ones on what looks like a new
  instance's boot (no instance recorded on the disk, or the DMI UUID names
  another), else only where the image has no sound key (sealed by
  `guestagent clean`); they are recorded in /run, and when the metadata
  comes this step keeps them (made on this machine in this boot: the
  instance's own) instead of making another set;
- where sshd already runs with other keys (the image's, on a disk whose
  instance the DMI cannot confirm; or an operator's `guestagent --once`),
  every key is made in the foreground and sshd is reloaded once after, so
  that it serves the new ones from then on (OpenSSH 9.8 and later read host
  keys only when sshd starts; a login arriving during the reload is reset).
"""

import fnmatch
import logging
import os
import re
import sys
import threading
import time

from ... import accounts
from ...schema.hostkeys import KNOWN_TYPES
from ...system import CommandFailed
from ...system.sshd_config import line_words
from .. import PER_INSTANCE, Outcome, Skip

FREQUENCY = PER_INSTANCE
log = logging.getLogger(__name__)

SSH_DIR = "/etc/ssh"
DEFAULT_TYPES = ["rsa", "ecdsa", "ed25519"]
BEGIN = "-----BEGIN SSH HOST KEY FINGERPRINTS-----"
END = "-----END SSH HOST KEY FINGERPRINTS-----"
_KEYFILE_RE = re.compile(r"^ssh_host_([a-z0-9]+)_key$")
_LABEL_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


def _refuse_on_a_full_root(system):
    """Old keys removed and no room for new ones would leave sshd with no
    host key at all, and no one could log in: on a full root the image's
    keys stay, and the step fails (so it is done on a boot with room)."""
    from ...system.disk_space import is_full, mount_point
    if is_full(system, SSH_DIR):
        _print_fingerprints(system, _existing_keys(system))
        raise RuntimeError(f"no space left on {mount_point(system, SSH_DIR)}: the image's host "
                           "keys are kept (new ones could not be written, and sshd would "
                           "have none); they are made anew on a boot with room")


def run(ctx):
    system = ctx.system
    if not system.exists(SSH_DIR):
        raise Skip(f"no {SSH_DIR} in this image (no SSH server installed)")
    if not ctx.config.getbool("ssh", "regenerate_host_keys"):
        _print_fingerprints(system, _existing_keys(system))
        raise Skip("[ssh] regenerate_host_keys = no (kept the image's host keys)")
    keygen = system.which("ssh-keygen")
    if keygen is None:
        raise RuntimeError("ssh-keygen is not installed: the image's host keys stay, "
                           "shared with every instance cloned from it")
    _refuse_on_a_full_root(system)
    types = key_types(ctx)
    from .early import made_before_metadata
    from .early import sshd_running as sshd_is_running
    early = made_before_metadata(system, types)
    if early:
        _print_fingerprints(system, early)
        return [f"kept the host keys made in this boot for sshd while it waited for the "
                f"metadata ({', '.join(early)}): made on this instance, and sshd serves them"]
    sshd_running = sshd_is_running(system)
    # refuse a planted /etc/ssh link before deleting or creating anything there:
    # ssh-keygen gets host paths and would follow it
    os.close(system.open_dir(SSH_DIR))
    system.command_path(SSH_DIR)
    if (ctx.cloud_config or {}).get("ssh_deletekeys") is False:
        # cloud-init's ssh_deletekeys: false keeps the image's keys; only missing types are made
        kept = _existing_keys(system)
        types = [t for t in types if t not in kept]
        removed = []
        if not types:
            _print_fingerprints(system, kept)
            raise Skip("#cloud-config ssh_deletekeys: false kept the image's host keys")
    else:
        removed = _remove_old_keys(system)
    # a running sshd is reloaded once every key is there
    later = [] if sshd_running else _background_types(ctx, types)
    now = [t for t in types if t not in later]
    t0 = time.monotonic()
    made, failed = _generate(system, keygen, now, _comment(ctx))
    if later and not made:  # sshd would have no key at all: make it now after all
        made, failed = _generate(system, keygen, later, _comment(ctx))
        later = []
    took = time.monotonic() - t0
    _fix_group(system, made)
    changes = []
    if removed:
        changes.append(f"removed the image's {len(removed)} host key files")
    if made:
        changes.append(f"generated new host keys ({', '.join(made)}) in {took:.2f} s")
    if later and made:
        from ...state.done_markers import leave_running
        job = generate_later(system, keygen, later, _comment(ctx), made + later)
        # not done (no marker) until the key exists and is on the disk: a
        # power cut before that makes the next boot do the step again
        leave_running(ctx, "hostkeys", job, f"the {', '.join(later)} host key")
        changes.append(f"the {', '.join(later)} key is being made in the background; the "
                       f"fingerprint block follows on the console when it is done")
    else:
        _print_fingerprints(system, made)
    if sshd_running and (made or removed):
        from ...system.sshd_config import SSHD_UNITS
        done = system.reload_service(SSHD_UNITS, "the new host keys")
        if done:
            changes.append(f"{done}, which was running: it serves the new host keys")
    # a type that failed is made on the next boot (the step is not done);
    # what was removed and made is told beside the failure
    return Outcome(changes, failed, retry=True,
                   error="; ".join(failed) + (" (the other types were generated)"
                                               if made else ""))


def check_done(ctx):
    """On a later boot: the host keys this instance's first boot made, each
    present, non-empty and parseable ('' when they are; else what is not)."""
    if not ctx.system.exists(SSH_DIR) or not ctx.config.getbool("ssh", "regenerate_host_keys"):
        return ""
    from .soundness import broken_keys
    broken = broken_keys(ctx)
    return "; ".join(f"{SSH_DIR}/ssh_host_{t}_key {why}" for t, why in broken)


def redo(ctx):
    """Make again the host keys `check_done` found missing or damaged; the
    sound ones stay (clients may know them already)."""
    system = ctx.system
    keygen = system.which("ssh-keygen")
    if keygen is None:
        raise RuntimeError("ssh-keygen is not installed: cannot make the missing host keys")
    os.close(system.open_dir(SSH_DIR))
    system.command_path(SSH_DIR)
    from .soundness import broken_keys
    broken = [t for t, _ in broken_keys(ctx)]
    for t in broken:
        for name in (f"ssh_host_{t}_key", f"ssh_host_{t}_key.pub"):
            system.remove(f"{SSH_DIR}/{name}")
    made, failed = _generate(system, keygen, broken, _comment(ctx))
    _fix_group(system, made)
    _print_fingerprints(system, [t for t in _wanted_or_present(ctx)
                                 if system.exists(f"{SSH_DIR}/ssh_host_{t}_key.pub")])
    return Outcome([f"made the {t} host key again" for t in made], failed, retry=True)


def _wanted_or_present(ctx):
    types = key_types(ctx)
    return types + [t for t in _existing_keys(ctx.system) if t not in types]


def key_types(ctx):
    """#cloud-config ssh_genkeytypes, else [ssh] host_key_types, else sshd_config's
    HostKey types, else the usual three."""
    wanted = (ctx.cloud_config or {}).get("ssh_genkeytypes")
    if wanted:
        return list(wanted)
    configured = [t.lower() for t in ctx.config.getlist("ssh", "host_key_types")]
    if configured:
        types = []
        for t in configured:
            if t not in KNOWN_TYPES:
                log.warning("[ssh] host_key_types: ignoring unknown key type %r "
                            "(known: %s)", t, ", ".join(KNOWN_TYPES))
            elif t not in types:
                types.append(t)
        return types or list(DEFAULT_TYPES)
    types = []
    for path, line in _sshd_config_lines(ctx.system):
        words = line_words(line)
        if len(words) < 2 or words[0] != "hostkey":
            continue
        key = words[1]
        km = _KEYFILE_RE.match(os.path.basename(key))
        if km and km.group(1) in KNOWN_TYPES and os.path.dirname(key) == SSH_DIR:
            if km.group(1) not in types:
                types.append(km.group(1))
        else:
            log.warning("%s: HostKey %s is not an %s/ssh_host_TYPE_key file; not "
                        "generating it", path, key, SSH_DIR)
    return types or list(DEFAULT_TYPES)


def _sshd_config_lines(system):
    files = [SSH_DIR + "/sshd_config"]
    files += [SSH_DIR + "/sshd_config.d/" + f for f in system.listdir(SSH_DIR + "/sshd_config.d")
              if f.endswith(".conf")]
    for f in files:
        for line in system.read_text(f, default="").splitlines():
            yield f, line


def _existing_keys(system):
    found = []
    for pub in fnmatch.filter(system.listdir(SSH_DIR), "ssh_host_*_key.pub"):
        m = _KEYFILE_RE.match(pub[:-4])
        if m:
            found.append(m.group(1))
    return found


def _remove_old_keys(system):
    removed = []
    for name in fnmatch.filter(system.listdir(SSH_DIR), "ssh_host_*key*"):
        rel = SSH_DIR + "/" + name
        if system.remove(rel):
            removed.append(rel)
    return removed


def _generate(system, keygen, types, comment):
    """Run one ssh-keygen per type, in parallel; return (made, problems)."""
    results = {}

    def one(t):
        path = system.path(f"{SSH_DIR}/ssh_host_{t}_key")
        try:
            system.run([keygen, "-q", "-N", "", "-t", t, "-C", comment, "-f", path],
                       input="", timeout=120, check=True)
            results[t] = ""
        except CommandFailed as e:
            results[t] = e.detail or f"exit {e.returncode}"
        except Exception as e:  # reported below with the type it belongs to
            results[t] = str(e)

    threads = [threading.Thread(target=one, args=(t,)) for t in types]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    made, problems = [], []
    for t in types:
        problem = results.get(t, "did not run")
        if not problem and system.exists(f"{SSH_DIR}/ssh_host_{t}_key.pub"):
            made.append(t)
        else:
            problem = problem.splitlines()[-1][:200] if problem else "no key written"
            problems.append(f"ssh-keygen could not make the {t} host key: {problem}")
    return made, problems


def _background_types(ctx, types):
    """RSA 3072 takes seconds on a slow CPU, and sshd serves the other keys
    meanwhile: on a live Debian-family boot it is made after the step returns.
    (Fedora's sshd-keygen@rsa.service would race it, so not there.)"""
    from ...system.distro import family
    if (not ctx.system.live or "rsa" not in types or len(types) < 2
            or not ctx.config.getbool("ssh", "rsa_in_background")
            or family(ctx.system) == "rhel"):
        return []
    return ["rsa"]


# Runs detached: make the key under a temporary name, move it into place and
# print the whole fingerprint block in one write.  A running sshd is not
# reloaded: SIGHUP re-executes it and a login arriving at that moment is
# refused; it serves the RSA key from its next start, and meanwhile offers
# ed25519 and ecdsa, which every client of the last decade speaks.
# While the detached maker runs, MAKING (in the ssh directory) holds its pid:
# `guestagent clean --host-keys` waits for it, so no key lands after a seal.
MAKING = ".ssh_host_keys.guestagent-making"
_LATER = r"""
keygen=$1 dir=$2 comment=$3 later=$4; shift 4
mark="$dir/""" + MAKING + r""""
echo $$ > "$mark"
trap 'rm -f "$mark"' EXIT
for t in $later; do
    new="$dir/.ssh_host_${t}_key.guestagent-new"
    rm -f "$new" "$new.pub"
    "$keygen" -q -N "" -t "$t" -C "$comment" -f "$new" </dev/null || exit 1
    chmod 600 "$new"
    mv -f "$new.pub" "$dir/ssh_host_${t}_key.pub"
    mv -f "$new" "$dir/ssh_host_${t}_key"
done
block=$(
    echo "-----BEGIN SSH HOST KEY FINGERPRINTS-----"
    for t in "$@"; do "$keygen" -l -f "$dir/ssh_host_${t}_key.pub"; done
    echo "-----END SSH HOST KEY FINGERPRINTS-----"
)
printf '%s\n' "$block"
"""


def generate_later(system, keygen, later, comment, all_types, stdout=None):
    """Start the detached key maker; returns its Popen (tests wait on it)."""
    log.info("making the %s host key in the background; sshd starts with the others",
             ", ".join(later))
    return system.start(["sh", "-c", _LATER, "sh", keygen, system.path(SSH_DIR), comment,
                         " ".join(later)] + list(all_types), stdout=stdout)


def background_maker(system):
    """The pid of a detached key maker still running for this root, or None
    (a marker a power cut left behind names a process that is gone)."""
    try:
        pid = int(system.read_bytes(f"{SSH_DIR}/{MAKING}", limit=32).strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, someone else's: still wait
    return pid


def _fix_group(system, types):
    # Fedora/RHEL's sshd reads host keys as group ssh_keys (0640)
    group = accounts.groups(system).get("ssh_keys")
    if group is None:
        return
    for t in types:
        system.set_mode(f"{SSH_DIR}/ssh_host_{t}_key", 0o640, uid=0, gid=group.gid)


def _print_fingerprints(system, types):
    keygen = system.which("ssh-keygen")
    if not types or keygen is None:
        return
    lines = []
    for t in types:
        res = system.run([keygen, "-l", "-f", system.path(f"{SSH_DIR}/ssh_host_{t}_key.pub")],
                         timeout=30)
        if res.returncode == 0 and res.stdout.strip():
            lines.append(res.stdout.strip().splitlines()[0])
    if lines:
        # one write, so the block is not interleaved with log lines on the console
        sys.stdout.write("\n".join([BEGIN] + lines + [END]) + "\n")
        sys.stdout.flush()


def _comment(ctx):
    """root@SHORTNAME, the way ssh-keygen names keys made on the host itself."""
    # the hostname step ran first, so /etc/hostname holds the name that won
    # (#cloud-config over metadata); the metadata's name is the fallback
    current = ctx.system.read_text("/etc/hostname", default="").strip()
    candidates = [current] if current not in ("", "localhost") else []
    if ctx.metadata and ctx.metadata.hostname:
        candidates.append(ctx.metadata.hostname)
    for c in candidates:
        short = c.split(".", 1)[0]
        if _LABEL_RE.fullmatch(short):
            return "root@" + short
    return "root@localhost"


# -- #cloud-config ssh_genkeytypes, ssh_deletekeys, checked before anything acts --------

