"""The config drive's admin_pass as the password of the account holding the
instance's keys (guestagent/accounts/plan.py: the default user, or the first
listed user when `users` leaves the default out).

Nova puts ``admin_pass`` in the metadata when an instance is booted without
a key pair (seed: "inject an admin password").  The password is hashed here
(SHA-512 crypt) and only the hash goes anywhere: to ``chpasswd -e`` over
stdin on a running system, or straight into the image's /etc/shadow under
``--root`` (this chpasswd has no --prefix, and --root would chroot).  The
password is never in an argv, a log line or the status.
"""

import logging

from .. import accounts
from ..accounts import plan as account_plan
from ..accounts import shadow
from ..accounts.passwd_hash import sha512_crypt
from . import PER_INSTANCE, Skip

FREQUENCY = PER_INSTANCE
log = logging.getLogger(__name__)


def run(ctx):
    password = ctx.metadata.admin_pass
    if not password:
        raise Skip("no admin_pass in the metadata")
    user = account_plan.plan(ctx).admin_pass_owner
    if user is None:
        raise Skip("#cloud-config users lists nobody to give admin_pass to")
    if not accounts.valid_name(user):
        raise RuntimeError(f"refusing user name {user!r}: not a valid account name")
    if accounts.lookup(ctx.system, user) is None:
        raise RuntimeError(f"user {user} does not exist here, so admin_pass was not set "
                           "(see the users step)")
    why = shadow.problem(password)
    if why:  # checked before hashing: the hash's work grows with the length
        raise RuntimeError(f"refusing admin_pass: {why}; admin_pass was not set")
    try:
        how = shadow.set_passwords(ctx.system, [(user, sha512_crypt(password), True)])
    except shadow.PasswordError as e:
        raise RuntimeError(f"{e}; admin_pass was not set") from None
    return [f"set the password of {user} from the metadata's admin_pass "
            f"(SHA-512 hash, via {how})"]
