"""The metadata's random_seed, mixed into the kernel's entropy pool early.

Nova hands each instance 512 random bytes (base64) as ``random_seed``, so a
fresh clone does not start with the image's entropy alone.  Like
cloud-init's seed_random, the bytes are written to /dev/urandom: that mixes
them into the pool without crediting entropy (only root's RNDADDENTROPY
ioctl could, and the seed crossed the hypervisor).  Once per instance; the
seed is never logged, and only its length is reported.
"""

import base64
import binascii
import logging
import stat

from . import PER_INSTANCE, Skip

log = logging.getLogger(__name__)

FREQUENCY = PER_INSTANCE
URANDOM = "/dev/urandom"


def run(ctx):
    seed = ctx.metadata.random_seed
    if not seed:
        raise Skip("no random_seed in the metadata")
    try:
        data = base64.b64decode(seed, validate=True)
    except (binascii.Error, ValueError):
        log.info("random_seed is not base64; mixing in its %d characters as they are",
                 len(seed))
        data = seed.encode("utf-8", "replace")
    system = ctx.system
    try:
        st = system.lstat(URANDOM)
    except OSError:
        raise Skip(f"no {URANDOM} here") from None
    # a scratch root (--root, tests) stands in with a plain file
    if not (stat.S_ISCHR(st.st_mode) or (stat.S_ISREG(st.st_mode) and not system.live)):
        raise Skip(f"{URANDOM} is not the kernel's random device")
    system.write_existing(URANDOM, data)
    return [f"mixed the metadata's random_seed ({len(data)} bytes) into the kernel's "
            "entropy pool"]
