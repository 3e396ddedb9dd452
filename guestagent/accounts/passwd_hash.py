"""SHA-512 crypt ("$6$") password hashes, in pure Python.

Python's `crypt` module is gone in 3.13, and the hash must be computed here
so that the password itself only ever travels to `chpasswd -e` as a hash.
This follows Ulrich Drepper's "Unix crypt using SHA-256 and SHA-512"
specification, the scheme glibc, libxcrypt, `openssl passwd -6` and
`mkpasswd -m sha-512` implement.
"""

import os

ROUNDS_DEFAULT = 5000
ROUNDS_MIN = 1000
ROUNDS_MAX = 999999999
SALT_MAX = 16
# bytes: libxcrypt refuses longer ones (CRYPT_MAX_PASSPHRASE_SIZE 512, NUL included),
# and SHA-512 crypt's work grows with the square of the length
MAX_PASSWORD = 511
_ALPHABET = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

# The order in which the 64 digest bytes are packed, three at a time, into
# the 86 characters of the hash (from the specification).
_ORDER = [
    (0, 21, 42), (22, 43, 1), (44, 2, 23), (3, 24, 45), (25, 46, 4),
    (47, 5, 26), (6, 27, 48), (28, 49, 7), (50, 8, 29), (9, 30, 51),
    (31, 52, 10), (53, 11, 32), (12, 33, 54), (34, 55, 13), (56, 14, 35),
    (15, 36, 57), (37, 58, 16), (59, 17, 38), (18, 39, 60), (40, 61, 19),
    (62, 20, 41),
]


def new_salt(length=SALT_MAX):
    # 64 symbols: the low six bits of a random byte pick one without bias
    return "".join(_ALPHABET[b & 0x3F] for b in os.urandom(length))


def sha512_crypt(password, salt=None, rounds=None):
    """Return the ``$6$...`` hash of ``password`` (str or bytes)."""
    # Imported here, not at the top: hashlib loads OpenSSL (~0.4 s under
    # emulation), and every boot imports this module but few hash a password.
    import hashlib

    if isinstance(password, str):
        password = password.encode("utf-8")
    if len(password) > MAX_PASSWORD:
        raise ValueError(f"password is {len(password)} bytes long (at most {MAX_PASSWORD})")
    if salt is None:
        salt = new_salt()
    salt_b = salt.encode("ascii")[:SALT_MAX]
    if any(c in b"$:\n" for c in salt_b):
        raise ValueError("salt must not contain '$', ':' or a newline")
    explicit_rounds = rounds is not None
    rounds = ROUNDS_DEFAULT if rounds is None else max(ROUNDS_MIN, min(ROUNDS_MAX, rounds))

    def h(*parts):
        d = hashlib.sha512()
        for p in parts:
            d.update(p)
        return d.digest()

    plen = len(password)
    b = h(password, salt_b, password)
    a = hashlib.sha512(password + salt_b)
    a.update(_repeat(b, plen))
    n = plen
    while n:
        a.update(b if n & 1 else password)
        n >>= 1
    a = a.digest()

    dp_hash = hashlib.sha512()
    for _ in range(plen):  # the password plen times, never built as one string
        dp_hash.update(password)
    dp = _repeat(dp_hash.digest(), plen)
    ds = _repeat(h(salt_b * (16 + a[0])), len(salt_b))

    c = a
    for i in range(rounds):
        d = hashlib.sha512(dp if i & 1 else c)
        if i % 3:
            d.update(ds)
        if i % 7:
            d.update(dp)
        d.update(c if i & 1 else dp)
        c = d.digest()

    out = []
    for x, y, z in _ORDER:
        out.append(_b64(c[x] << 16 | c[y] << 8 | c[z], 4))
    out.append(_b64(c[63], 2))
    prefix = "$6$" + (f"rounds={rounds}$" if explicit_rounds else "")
    return prefix + salt_b.decode("ascii") + "$" + "".join(out)


def verify(password, hashed):
    """True when ``hashed`` (a ``$6$`` hash) is the hash of ``password``."""
    parts = hashed.split("$")
    if len(parts) < 4 or parts[1] != "6":
        return False
    rounds = None
    if parts[2].startswith("rounds="):
        try:
            rounds = int(parts[2][7:])
        except ValueError:
            return False
        salt = parts[3]
    else:
        salt = parts[2]
    import hmac

    return hmac.compare_digest(sha512_crypt(password, salt, rounds), hashed)


def _repeat(digest, length):
    return (digest * (length // len(digest) + 1))[:length]


def _b64(value, n):
    chars = []
    for _ in range(n):
        chars.append(_ALPHABET[value & 0x3F])
        value >>= 6
    return "".join(chars)
