"""Keys belong to the instance that brought them.

A new instance (a new instance id) may boot from a disk an earlier instance
used: a snapshot, or an image sealed without `guestagent clean --keys`.
cloud-init only appends keys, so the earlier instance's key pair still
opens the new one.  Here the keys an earlier instance's data installed
(`key_record`) and that the new instance's data does not list are taken out
of authorized_keys, each named on the console by its fingerprint.  Keys the
agent did not install (baked in by the image builder, added by a person, or
fetched by ssh-import-id) are not in the record and are never touched.

``[users] remove_previous_instance_keys = no`` keeps cloud-init's
append-only behaviour.  A disk configured by an agent that kept no record
has nothing to go by, so nothing is removed there (the log says so).
"""

import logging

from ... import accounts
from ...system import UnsafePathError
from . import authorized_keys
from .key_record import PATH, fingerprint

log = logging.getLogger(__name__)


def forget_earlier(ctx, record, wanted):
    """Remove the earlier instances' keys that ``wanted`` (account -> set of
    (type, blob) this instance installs for it) does not list; the ones it
    lists now belong to this instance.  Returns the changes, in words."""
    iid = ctx.metadata.instance_id
    earlier = [e for e in record.entries if e.get("instance_id") != iid]
    if not record.found:
        if _earlier_instance_on_disk(ctx):
            log.info("no record of the SSH keys earlier instances installed (%s is missing: "
                     "an older agent configured this disk): no key is removed", PATH)
        return []
    kept = []
    for e in earlier:
        if (e["type"], e["blob"]) in wanted.get(e["account"], ()):
            e["instance_id"] = iid  # this instance's data lists it too: it is this one's now
        else:
            kept.append(e)
    if not kept:
        return []
    if not ctx.config.getbool("users", "remove_previous_instance_keys"):
        log.info("keeping %d SSH key(s) an earlier instance installed and this one does "
                 "not list ([users] remove_previous_instance_keys = no)", len(kept))
        return []
    changes = []
    for e in take_out(ctx.system, record, kept):
        fp = fingerprint(e["type"], e["blob"])
        why = (f"installed for instance {e.get('instance_id') or '?'}, not listed by this "
               "instance")
        log.info("removed SSH key %s from %s's authorized_keys (%s)", fp, e["account"], why)
        changes.append(f"removed SSH key {fp} from {e['account']}'s authorized_keys ({why})")
    return changes


def take_out(system, record, entries):
    """Take the recorded ``entries`` out of their accounts' authorized_keys and
    out of ``record``; returns the entries whose key was in a file and is gone
    now.  An entry whose file cannot be changed safely stays recorded (a
    warning says why); one whose account or key is gone is forgotten."""
    removed_entries = []
    by_account = {}
    for e in entries:
        by_account.setdefault(e["account"], []).append(e)
    known = accounts.users(system)
    for name, group in by_account.items():
        account = known.get(name)
        if account is None:
            log.info("the account %s that held %d recorded key(s) is gone; forgetting them",
                     name, len(group))
            for e in group:
                record.drop(e)
            continue
        try:
            removed = set(authorized_keys.remove(system, account, {
                (e["type"], e["blob"]) for e in group}))
        except (UnsafePathError, OSError) as err:
            log.warning("user %s: not removing %d key(s) from authorized_keys: %s", name,
                        len(group), err)
            continue
        for e in group:
            record.drop(e)
            if (e["type"], e["blob"]) in removed:
                removed_entries.append(e)
            else:
                log.debug("user %s: %s was already gone", name,
                          fingerprint(e["type"], e["blob"]))
    return removed_entries


def present(system, entries):
    """The recorded ``entries`` whose key is still in its account's authorized_keys."""
    known = accounts.users(system)
    out = []
    for e in entries:
        account = known.get(e["account"])
        if account is not None and (e["type"], e["blob"]) in authorized_keys.held(
                system, account):
            out.append(e)
    return out


def _earlier_instance_on_disk(ctx):
    from ...state import STATE_DIR, safe_id
    names = ctx.system.listdir(STATE_DIR + "/instances")
    return any(n != safe_id(ctx.metadata.instance_id) for n in names)
