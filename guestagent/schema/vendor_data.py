"""#cloud-config vendor_data (does vendor data apply? the user-data reader acts on it)."""

from .checks import Bad, boolean, fields


def check_vendor_data(value, notes):
    if not isinstance(value, dict):
        raise Bad("a mapping like {enabled: false}")
    return fields(value, {"enabled": boolean}, "#cloud-config vendor_data", notes)
