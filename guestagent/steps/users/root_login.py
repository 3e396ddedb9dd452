"""#cloud-config `disable_root` and `disable_root_opts`: what root's SSH keys say.

cloud-init gives root the instance's keys either way: with ``disable_root:
true`` behind options that refuse the login and say which user to use
(``disable_root_opts``, ``$USER`` and ``$DISABLE_USER`` replaced), with
``false`` as they are.  The same keys already in root's file are replaced
by the restricted line: the user asked for root logins with them to stop.
Other lines (an image builder's own keys) are kept.
"""

import logging

from ... import accounts
from ...schema.users import DISABLE_ROOT_OPTS
from . import authorized_keys

log = logging.getLogger(__name__)


def apply(system, disable, opts, user, keys, on_added=None):
    """Install ``keys`` (parsed) for root, restricted when ``disable``; returns changes."""
    if not keys:
        log.info("disable_root: no instance keys, so root's authorized_keys is left alone")
        return []
    root = accounts.lookup(system, "root")
    if root is None:
        raise accounts.AccountError("there is no root account in /etc/passwd")
    if disable:
        prefix = (opts or DISABLE_ROOT_OPTS).replace("$USER", user or "NONE").replace(
            "$DISABLE_USER", "root")
        restricted = []
        for k in keys:
            line = f"{prefix} {k.keytype} {k.blob}" + (f" {k.comment}" if k.comment else "")
            try:
                restricted.append(authorized_keys.parse(line))
            except authorized_keys.BadKey as e:
                raise accounts.AccountError(f"disable_root_opts do not make a key line sshd "
                                            f"accepts ({e})") from None
        changes = authorized_keys.install(system, root, restricted, replace_same=True,
                                          on_added=on_added)
        return changes + [f"root logins with the instance's key(s) print a message and end "
                          f"(disable_root; log in as {user or 'the default user'})"]
    return authorized_keys.install(system, root, keys, on_added=on_added) + [
        "root may log in with the instance's key(s) (disable_root: false)"]
