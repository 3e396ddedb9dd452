"""The proof that a reboot needs no agent: /var/lib/guestagent/unchanged.sha256.

At the end of a configuring stage that went well, the agent lists (in
``sha256sum`` format, paths relative to the root) every file whose content
decides what it would do on the next boot:

- the DMI system UUID, when it is the instance id (Nova sets it so): the
  same instance, known without a config drive or the network;
- what each per-boot step reads, as the step declares it with
  ``unchanged_inputs(ctx)`` (growroot: the block devices' sizes, so a disk
  grown later is noticed; hostname: /etc/hostname, /etc/hosts; resolv_conf:
  the file it manages);
- the agent's config files and its own package (an upgrade runs it again).

On the next boot `units/guestagent-unchanged` (sh, the local unit's
ExecCondition) runs ``sha256sum --check``: when every file is unchanged no
Python starts at all.  A step with work every boot (``bootcmd``) returns
None, and then no list is written.  While user scripts still wait for the
final stage, the list waits beside it (``.pending``) until they have run.
"""

import logging
import os

from ..state import STATE_DIR
from ..steps import PER_BOOT

log = logging.getLogger(__name__)

MANIFEST = STATE_DIR + "/unchanged.sha256"
PENDING = MANIFEST + ".pending"
SKIPPED_MARK = "/run/guestagent/unchanged"  # left by the guard script when it skips
# The other flags in /run (emptied every boot) that units' conditions read:
# the local stage configured this boot (the network unit does not start), and
# the final steps with work left (the final unit starts).  The guard script
# leaves LOCAL_DONE too.
LOCAL_DONE = "/run/guestagent/local-configured"
FINAL_PENDING = "/run/guestagent/final-pending"
DMI_UUID = "/sys/class/dmi/id/product_uuid"


def forget(system):
    """A configuring run starts: the old proof no longer holds."""
    for path in (MANIFEST, PENDING):
        try:
            system.remove(path)
        except OSError as e:
            log.warning("cannot remove %s: %s", path, e)


def write(ctx, step_list, final_pending):
    """Write the list after a configuring stage; returns why not, or ''."""
    why = _identity_problem(ctx)
    paths = [DMI_UUID]
    if not why:
        for step in step_list:
            if step.frequency != PER_BOOT:
                continue
            inputs = step.unchanged_inputs(ctx)
            if inputs is None:
                why = f"{step.name} has work on every boot"
                break
            paths += inputs
    if why:
        log.debug("no reboot shortcut: %s", why)
        return why
    paths += [_relative_to(ctx.system, f) for f in ctx.config.files]
    if ctx.system.live:
        paths.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), "__init__.py"))
    lines = []
    for p in dict.fromkeys(paths):
        digest = _digest(ctx.system, p)
        if digest:
            lines.append(f"{digest}  {p.lstrip('/')}\n")
    target = PENDING if final_pending else MANIFEST
    try:
        ctx.system.write_file(target, "".join(lines), mode=0o600, dir_mode=0o700)
    except OSError as e:
        log.warning("cannot write %s: %s", target, e)
        return str(e)
    log.debug("wrote %s: %d files that decide the next boot", target, len(lines))
    return ""


def publish(system):
    """The final stage finished its work: the waiting list now holds."""
    try:
        data = system.read_bytes(PENDING)
    except OSError:
        return False
    system.write_file(MANIFEST, data, mode=0o600, dir_mode=0o700)
    system.remove(PENDING)
    return True


def skipped_this_boot(system):
    """True when the guard script found nothing changed on this boot."""
    return system.exists(SKIPPED_MARK)


def _identity_problem(ctx):
    try:
        uuid = ctx.system.read_text(DMI_UUID).strip().lower()
    except OSError:
        return "no DMI system UUID to recognise the instance by"
    if uuid != ctx.metadata.instance_id.lower():
        return "the DMI system UUID is not the instance id"
    return ""


def _relative_to(system, host_path):
    """A config file's path inside the root (config files are host paths)."""
    path = os.path.abspath(host_path)
    if system.live:
        return path
    root = system.root.rstrip("/") + "/"
    return "/" + path[len(root):] if path.startswith(root) else ""


def _digest(system, path):
    if not path:
        return ""
    import hashlib

    try:
        if path.startswith(os.path.dirname(os.path.abspath(__file__))) and system.live:
            with open(path, "rb") as f:
                data = f.read()
        else:
            data = system.read_bytes(path)
    except OSError:
        return ""  # absent now: sha256sum cannot say "still absent"; left out
    return hashlib.sha256(data).hexdigest()
