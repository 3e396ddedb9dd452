"""mounts, mount_default_fields and swap, type-checked.

    mounts                 list of [fs_spec, fs_file, fs_vfstype, fs_mntops, fs_freq,
                           fs_passno]; later fields may be left out; [spec] or
                           [spec, null] removes that spec's mount
    mount_default_fields   the six fields that fill what an entry leaves out
    swap                   {filename, size, maxsize}: size/maxsize a number of bytes,
                           "auto", or a size with a unit ("2G", "512M")
"""

import re

from .checks import Bad

_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?)(i?B)?\s*$", re.I)


def _field(v):
    if v is None:
        return None
    if isinstance(v, bool):
        raise Bad("fstab fields as strings")
    if isinstance(v, (str, int, float)):
        return str(v)
    raise Bad("fstab fields as strings")


def mounts(value, notes):
    if not isinstance(value, list):
        raise Bad("a list of fstab entries")
    out = []
    for n, item in enumerate(value, 1):
        if isinstance(item, str):
            item = [item]
        if not isinstance(item, list) or not item or len(item) > 6:
            notes.append(f"#cloud-config mounts entry {n} is not a list of 1 to 6 fstab "
                            "fields; skipped")
            continue
        try:
            fields = [_field(v) for v in item]
        except Bad:
            notes.append(f"#cloud-config mounts entry {n} has a field that is not a "
                            "string; skipped")
            continue
        if not fields[0] or any(f and any(c.isspace() for c in f) for f in fields):
            notes.append(f"#cloud-config mounts entry {n}: fields must be non-empty "
                            "and without spaces; skipped")
            continue
        out.append(fields)
    return out


def default_fields(value, notes):
    if not isinstance(value, list) or len(value) != 6:
        raise Bad("a list of six fstab fields")
    return [_field(v) for v in value]


def swap(value, notes):
    if not isinstance(value, dict):
        raise Bad("a mapping {filename, size, maxsize}")
    out = {}
    for field, v in value.items():
        where = f"#cloud-config swap: {str(field)[:32]}"
        if field == "filename":
            if not isinstance(v, str) or not v.startswith("/") or ".." in v.split("/"):
                notes.append(f"{where} should be an absolute path; ignored")
                continue
            out["filename"] = v
        elif field in ("size", "maxsize"):
            size = parse_size(v, allow_auto=field == "size")
            if size is None:
                notes.append(f"{where} should be a number of bytes, a size like 2G"
                                + (" or auto" if field == "size" else "") + "; ignored")
                continue
            out[field] = size
        else:
            notes.append(f"{where} is not a swap field; ignored")
    return out


def parse_size(value, allow_auto=True):
    """Bytes (int), "auto", or None when the value is not a size."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) and value >= 0:
        return int(value)
    if isinstance(value, str):
        if value.strip().lower() == "auto":
            return "auto" if allow_auto else None
        m = _SIZE.match(value)
        if m:
            power = " KMGT".index((m.group(2) or " ").upper())
            return int(float(m.group(1)) * 1024 ** power)
    return None
