"""The config drive's admin_pass as the default user's password.

Nova puts ``admin_pass`` in the metadata when an instance is booted without
a key pair (seed: "inject an admin password").  The password is hashed here
(SHA-512 crypt) and only the hash goes anywhere: to ``chpasswd -e`` over
stdin on a running system, or straight into the image's /etc/shadow under
``--root`` (this chpasswd has no --prefix, and --root would chroot).  The
password is never in an argv, a log line or the status.
"""

import logging
import os
import stat
import time

from .. import accounts
from ..system import CommandMissing
from . import PER_INSTANCE, Skip

FREQUENCY = PER_INSTANCE
log = logging.getLogger(__name__)

SHADOW = "/etc/shadow"


def run(ctx):
    password = ctx.metadata.admin_pass
    if not password:
        raise Skip("no admin_pass in the metadata")
    user = accounts.key_owner(ctx)
    if user is None:
        raise Skip("#cloud-config users lists nobody to give admin_pass to")
    if not accounts.valid_name(user):
        raise RuntimeError(f"refusing user name {user!r}: not a valid account name")
    if accounts.lookup(ctx.system, user) is None:
        raise RuntimeError(f"user {user} does not exist here, so admin_pass was not set "
                           "(see the users step)")
    from ..passwd_hash import sha512_crypt  # hashlib loads OpenSSL: only with a password

    hashed = sha512_crypt(password)
    how = _set_live(ctx.system, user, hashed) if ctx.system.live else None
    if how is None:
        _set_in_shadow(ctx.system, user, hashed)
        how = SHADOW
    return [f"set the password of {user} from the metadata's admin_pass "
            f"(SHA-512 hash, via {how})"]


def _set_live(system, user, hashed):
    """chpasswd -e with the hash on stdin; None when chpasswd is missing."""
    chpasswd = system.which("chpasswd")
    if chpasswd is None:
        log.warning("chpasswd is not installed; writing the hash into %s directly", SHADOW)
        return None
    try:
        res = system.run([chpasswd, "-e"], input=f"{user}:{hashed}\n", timeout=60)
    except CommandMissing:
        return None
    if res.returncode != 0:
        detail = (res.stderr or "").strip().replace(hashed, "<hash>").splitlines()
        raise RuntimeError(f"chpasswd -e failed (exit {res.returncode})"
                           + (f": {detail[-1][:200]}" if detail else ""))
    return "chpasswd -e"


def _set_in_shadow(system, user, hashed):
    """Replace the user's hash in the root's /etc/shadow, keeping its mode and owner."""
    try:
        text = system.read_text(SHADOW)
    except FileNotFoundError:
        raise RuntimeError(f"no {SHADOW} in this image; admin_pass was not set") from None
    st = os.stat(system.path(SHADOW), follow_symlinks=False)
    if not stat.S_ISREG(st.st_mode):
        raise RuntimeError(f"{SHADOW} is not a regular file; admin_pass was not set")
    today = str(int(time.time() // 86400))
    lines = text.splitlines()
    for i, line in enumerate(lines):
        fields = line.split(":")
        if fields[0] == user and len(fields) >= 3:
            fields[1], fields[2] = hashed, today
            lines[i] = ":".join(fields)
            break
    else:
        raise RuntimeError(f"{user} has no entry in {SHADOW}; admin_pass was not set")
    system.write_file(SHADOW, "\n".join(lines) + "\n", mode=stat.S_IMODE(st.st_mode),
                      uid=st.st_uid, gid=st.st_gid, make_dirs=False)
