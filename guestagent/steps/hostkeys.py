"""New SSH host keys for a new instance, and their fingerprints on the console.

An image cloned into many instances must not share host keys, so on a new
instance every /etc/ssh/ssh_host_*key* goes and fresh keys are made with
ssh-keygen (one process per type, in parallel: RSA dominates the time).
The fingerprints are printed to stdout in one write, between the markers
cloud-init uses, so `nova console-log` shows them and a user can check the
key on first connection.  Per instance: a reboot keeps the keys.

sshd must never start without a host key, nor serve keys swapped under it:
- where the metadata is late and the network stage lets sshd start before it
  (guestagent/boot/ssh_wait.py, [main] ssh_wait), `make_for_early_sshd` first
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

from .. import accounts
from ..schema.hostkeys import KNOWN_TYPES
from ..system import CommandFailed
from . import PER_INSTANCE, Outcome, Skip
from .passwords.sshd_settings import line_words

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
    from ..system.disk_space import is_full, mount_point
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
    early = _made_before_metadata(system, types)
    if early:
        _print_fingerprints(system, early)
        return [f"kept the host keys made in this boot for sshd while it waited for the "
                f"metadata ({', '.join(early)}): made on this instance, and sshd serves them"]
    sshd_running = _sshd_running(system)
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
        from ..state.done_markers import leave_running
        job = generate_later(system, keygen, later, _comment(ctx), made + later)
        # not done (no marker) until the key exists and is on the disk: a
        # power cut before that makes the next boot do the step again
        leave_running(ctx, "hostkeys", job, f"the {', '.join(later)} host key")
        changes.append(f"the {', '.join(later)} key is being made in the background; the "
                       f"fingerprint block follows on the console when it is done")
    else:
        _print_fingerprints(system, made)
    if sshd_running and (made or removed):
        from .passwords.sshd_settings import SSHD_UNITS
        done = system.reload_service(SSHD_UNITS, "the new host keys")
        if done:
            changes.append(f"{done}, which was running: it serves the new host keys")
    # a type that failed is made on the next boot (the step is not done);
    # what was removed and made is told beside the failure
    return Outcome(changes, failed, retry=True,
                   error="; ".join(failed) + (" (the other types were generated)"
                                               if made else ""))


# The host keys made so that sshd could start before the metadata came:
# {type: the .pub file's text}.  In /run: it holds for this boot only.
EARLY_KEYS = "/run/guestagent/host-keys-before-metadata"


def make_for_early_sshd(system, config, new_instance):
    """sshd is about to start before the metadata came (guestagent/boot/ssh_wait.py).
    ``new_instance``: nothing on the disk says this is an instance that
    already made its keys (no instance recorded, or the DMI UUID is another
    one), so the metadata, when it comes, will ask for new keys: make them
    now, before sshd starts, instead of swapping them under it later.
    Otherwise make keys only where sshd has no sound one at all.  The types
    are those this step would choose without user-data; what is made is
    recorded in EARLY_KEYS.  Returns the types made ([] when none)."""
    import json
    from types import SimpleNamespace

    from ..system.disk_space import is_full
    if not system.exists(SSH_DIR) or not config.getbool("ssh", "regenerate_host_keys"):
        return []
    ctx = SimpleNamespace(system=system, config=config, cloud_config={}, metadata=None)
    types = _wanted_or_present(ctx)
    broken = dict(_broken_keys(ctx))
    if not new_instance and any(t not in broken for t in types):
        return []  # one sound key is enough for sshd to start
    keygen = system.which("ssh-keygen")
    if keygen is None:
        raise RuntimeError("ssh-keygen is not installed: no new host keys for sshd")
    if is_full(system, SSH_DIR) and not broken:
        return []  # no room for new keys: sshd starts with the image's
    os.close(system.open_dir(SSH_DIR))
    system.command_path(SSH_DIR)
    if new_instance:
        _remove_old_keys(system)
    else:
        for t in broken:
            for name in (f"ssh_host_{t}_key", f"ssh_host_{t}_key.pub"):
                system.remove(f"{SSH_DIR}/{name}")
    made, failed = _generate(system, keygen, key_types(ctx), _comment(ctx))
    _fix_group(system, made)
    for problem in failed:
        log.warning("%s", problem)
    if made:
        system.sync_to_disk()  # sshd reads them at once; a power cut must not empty them
        record = {t: system.read_text(f"{SSH_DIR}/ssh_host_{t}_key.pub") for t in made}
        try:
            system.write_file(EARLY_KEYS, json.dumps(record) + "\n", mode=0o644)
        except OSError as e:  # the hostkeys step makes another set then: no harm
            log.warning("cannot write %s: %s", EARLY_KEYS, e)
        _print_fingerprints(system, made)
    return made


def _made_before_metadata(system, types):
    """The wanted ``types`` when every host key there is one make_for_early_sshd
    made in this boot, unchanged since; else []."""
    import json
    try:
        record = json.loads(system.read_text(EARLY_KEYS))
    except (OSError, ValueError):
        return []
    if not isinstance(record, dict) or set(_existing_keys(system)) != set(record) or any(
            t not in record for t in types):
        return []
    for t, pub in record.items():
        if system.read_text(f"{SSH_DIR}/ssh_host_{t}_key.pub", default="") != pub:
            return []
    return sorted(record, key=lambda t: types.index(t) if t in types else len(types))


def _sshd_running(system):
    """Whether an sshd runs on this live system (its pid file names a live process)."""
    if not system.live:
        return False
    for pidfile in ("/run/sshd.pid", "/var/run/sshd.pid"):
        try:
            pid = int(system.read_bytes(pidfile, limit=32).strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            continue
        return True
    return False


def check_done(ctx):
    """On a later boot: the host keys this instance's first boot made, each
    present, non-empty and parseable ('' when they are; else what is not)."""
    if not ctx.system.exists(SSH_DIR) or not ctx.config.getbool("ssh", "regenerate_host_keys"):
        return ""
    broken = _broken_keys(ctx)
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
    broken = [t for t, _ in _broken_keys(ctx)]
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


def _broken_keys(ctx):
    """[(type, what is wrong)] for each wanted or present key type."""
    out = []
    for t in _wanted_or_present(ctx):
        for path, check in ((f"{SSH_DIR}/ssh_host_{t}_key", _private_key_problem),
                            (f"{SSH_DIR}/ssh_host_{t}_key.pub", _public_key_problem)):
            try:
                data = ctx.system.read_bytes(path, limit=1 << 16)
            except FileNotFoundError:
                out.append((t, "is missing" if path.endswith("_key") else "has no .pub"))
                break
            why = check(data)
            if why:
                out.append((t, why if path.endswith("_key") else f"(.pub) {why}"))
                break
    return out


def _private_key_problem(data):
    if not data.strip(b"\0 \n"):
        return "is empty"
    text = data.decode("ascii", "replace").strip()
    if not (text.startswith("-----BEGIN ") and text.endswith("PRIVATE KEY-----")
            and "\0" not in text):
        return "is damaged (not a whole private key)"
    return ""


def _public_key_problem(data):
    import base64
    import binascii
    import struct

    if not data.strip(b"\0 \n"):
        return "is empty"
    fields = data.decode("ascii", "replace").split()
    try:
        blob = base64.b64decode(fields[1], validate=True)
        (n,) = struct.unpack(">I", blob[:4])
        if blob[4:4 + n].decode("ascii") != fields[0]:
            raise ValueError("the key type inside differs")
    except (IndexError, ValueError, binascii.Error, struct.error, UnicodeDecodeError):
        return "is damaged (not an OpenSSH public key)"
    return ""


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
    from ..system.distro import family
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

