"""#cloud-config keys of the final_message step: their validators (see guestagent/schema)."""

from .checks import Bad


def check_final_message(value, notes):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise Bad("a message")
    return value
