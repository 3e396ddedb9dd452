"""#cloud-config keys of the write_files step: their validators (see guestagent/schema)."""

import re

from .checks import INVALID, Bad, Note, cfg_bool, describe, fields, string

ENCODINGS = ("b64", "base64", "gzip", "gz", "gz+b64", "gzip+base64", "text")


_PERMISSIONS = re.compile(r"^(0o)?[0-7]{1,4}$")


def _check_content(value):
    if value is None:
        return ""
    if isinstance(value, (str, bytes)):  # bytes: YAML !!binary
        return value
    raise Bad("a string")


def _check_encoding(value):
    if isinstance(value, str) and value.strip().lower() in ENCODINGS:
        return value.strip().lower()
    raise Bad("one of " + ", ".join(ENCODINGS))


def _check_permissions(value):
    if isinstance(value, bool):
        raise Bad("an octal mode like '0644'")
    if isinstance(value, int) and 0 <= value <= 0o7777:
        return value
    if isinstance(value, str) and _PERMISSIONS.match(value.strip()):
        return value.strip()
    raise Bad("an octal mode like '0644'")


def _check_path(value):
    if not isinstance(value, str) or not value.strip():
        raise Bad("a path")
    return value.strip()


FILE_FIELDS = {"path": _check_path, "content": _check_content, "encoding": _check_encoding,
               "permissions": _check_permissions, "owner": string, "append": cfg_bool,
               "defer": cfg_bool}


# What users write for `permissions`; cloud-init ignores these and writes 0644.
_MISTAKEN = dict.fromkeys(("mode", "permission", "perms", "chmod"),
                          "the default mode applies (0644 for a new file); the field is "
                          "'permissions'")


def check_write_files(value, notes):
    if not isinstance(value, list):
        raise Bad("a list of files")
    out = []
    for n, item in enumerate(value, 1):
        where = f"#cloud-config write_files entry {n}"
        if not isinstance(item, dict):
            notes.append(Note(f"{where} is {describe(item)}, not a mapping; skipped", INVALID))
            continue
        try:
            out.append(fields(item, FILE_FIELDS, where, notes, required=("path",),
                              mistaken=_MISTAKEN))
        except Bad:
            notes.append(Note(f"{where} has no path; skipped", INVALID))
    return out
