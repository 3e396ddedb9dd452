"""#cloud-config `ssh_import_id`: keys fetched from a key server by ssh-import-id.

As in cloud-init, the image's own ``ssh-import-id`` runs as the user
(``gh:NAME`` from GitHub, ``lp:NAME`` from Launchpad) and adds the keys to
the user's authorized_keys itself.  It needs the tool in the image and a
network path to the key server at boot; without either it fails with the
reason.  Under ``--root`` nothing is fetched: it would write the host's files.
"""

import logging

from ...accounts import AccountError
from ...system import CommandFailed

log = logging.getLogger(__name__)


def import_ids(system, account, ids):
    """Run ssh-import-id for ``account``; returns changes, AccountError when it cannot."""
    if not system.live:
        log.warning("user %s: ssh_import_id is not run under --root (it fetches keys and "
                    "writes as the user)", account.name)
        return []
    tool = system.which("ssh-import-id")
    if tool is None:
        raise AccountError("ssh_import_id: ssh-import-id is not installed in this image")
    runuser = system.which("runuser")
    if runuser is None:
        raise AccountError("ssh_import_id: runuser is not installed in this image")
    try:
        system.run([runuser, "-u", account.name, "--", "env", f"HOME={account.home}",
                    tool, "--"] + list(ids), timeout=120, check=True)
    except CommandFailed as e:
        raise AccountError(f"ssh-import-id {' '.join(ids)} exited {e.returncode}"
                           + (f": {e.detail}" if e.detail else "")
                           + " (it needs the network to reach the key server)") from None
    return [f"imported the SSH keys of {', '.join(ids)} for {account.name} (ssh-import-id)"]
