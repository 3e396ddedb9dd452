"""Host keys for an sshd that starts before the metadata came.

The network stage lets sshd start when the metadata is late
(guestagent/boot/ssh_wait.py, [main] ssh_wait).  sshd must then have sound
keys, and must not have them swapped under it later: the keys made here are
recorded in /run, and the hostkeys step keeps them as the instance's own.
"""

import json
import logging
import os
from types import SimpleNamespace

from ...system.disk_space import is_full
from . import (
    SSH_DIR,
    _comment,
    _existing_keys,
    _fix_group,
    _generate,
    _print_fingerprints,
    _remove_old_keys,
    _wanted_or_present,
    key_types,
)
from .soundness import broken_keys

log = logging.getLogger(__name__)


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
    if not system.exists(SSH_DIR) or not config.getbool("ssh", "regenerate_host_keys"):
        return []
    ctx = SimpleNamespace(system=system, config=config, cloud_config={}, metadata=None)
    types = _wanted_or_present(ctx)
    broken = dict(broken_keys(ctx))
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


def made_before_metadata(system, types):
    """The wanted ``types`` when every host key there is one make_for_early_sshd
    made in this boot, unchanged since; else []."""
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


def sshd_running(system):
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
