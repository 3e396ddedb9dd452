"""#cloud-config keys of the hostkeys step: their validators (see guestagent/schema)."""

from .checks import Bad

KNOWN_TYPES = ("rsa", "ecdsa", "ed25519", "dsa")


def check_genkeytypes(value, notes):
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(
            isinstance(t, str) and t.lower() in KNOWN_TYPES for t in value):
        raise Bad("a list of key types: " + ", ".join(KNOWN_TYPES))
    return list(dict.fromkeys(t.lower() for t in value))
