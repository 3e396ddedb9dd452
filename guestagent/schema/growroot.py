"""#cloud-config keys of the growroot step: their validators (see guestagent/schema)."""

from .checks import Bad, boolean, fields, str_list


def check_resize_rootfs(value, notes):
    if value == "noblock":
        return True  # resizing is quick here; there is nothing to background
    return boolean(value)


def _growpart_mode(value):
    if value is False or isinstance(value, str):
        return value
    raise Bad("a mode string (auto, growpart, off) or false")


def check_growpart(value, notes):
    if not isinstance(value, dict):
        raise Bad("a mapping")
    return fields(value, {"mode": _growpart_mode, "devices": str_list,
                          "ignore_growroot_disabled": boolean},
                  "#cloud-config growpart", notes)
