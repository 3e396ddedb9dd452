"""#cloud-config keys of the vendor_data step: their validators (see guestagent/schema)."""

from .checks import Bad, boolean, fields


def check_vendor_data(value, notes):
    if not isinstance(value, dict):
        raise Bad("a mapping like {enabled: false}")
    return fields(value, {"enabled": boolean}, "#cloud-config vendor_data", notes)
