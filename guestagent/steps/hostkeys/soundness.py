"""Whether the host keys on the disk are whole: present, non-empty and parseable.

A power cut can leave a key file empty or half written after its step was
recorded as done; a later boot checks them (check_done) and makes again the
ones that are not (redo), and the early keys for sshd are judged the same way.
"""

from . import SSH_DIR, _wanted_or_present


def broken_keys(ctx):
    """[(type, what is wrong)] for each wanted or present key type."""
    out = []
    for t in _wanted_or_present(ctx):
        for path, check in ((f"{SSH_DIR}/ssh_host_{t}_key", private_key_problem),
                            (f"{SSH_DIR}/ssh_host_{t}_key.pub", public_key_problem)):
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


def private_key_problem(data):
    if not data.strip(b"\0 \n"):
        return "is empty"
    text = data.decode("ascii", "replace").strip()
    if not (text.startswith("-----BEGIN ") and text.endswith("PRIVATE KEY-----")
            and "\0" not in text):
        return "is damaged (not a whole private key)"
    return ""


def public_key_problem(data):
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
