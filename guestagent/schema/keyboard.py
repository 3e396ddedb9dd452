"""#cloud-config keys of the keyboard step: their validators (see guestagent/schema)."""

import re

from .checks import Bad

_VALUE = re.compile(r"^[A-Za-z0-9_:,()+-]*$")


def check_keyboard(value, notes=None):
    if not isinstance(value, dict) or not isinstance(value.get("layout"), str):
        raise Bad("a mapping with a layout")
    out = {"layout": value["layout"], "model": "pc105", "variant": "", "options": ""}
    for field, v in value.items():
        if field not in out or not isinstance(v, str) or not _VALUE.match(v):
            notes.append(f"#cloud-config keyboard: {str(field)[:32]} is not supported or "
                            "not a plain keyboard name; ignored")
            if field == "layout":
                raise Bad("a mapping with a plain layout name")
            continue
        out[field] = v
    return out
