"""#cloud-config keys of the timezone step: their validators (see guestagent/schema)."""

from .checks import Bad


def check_timezone(value, notes=None):
    if not isinstance(value, str) or not value.strip():
        raise Bad("a time zone name like Europe/Berlin")
    return value.strip()
