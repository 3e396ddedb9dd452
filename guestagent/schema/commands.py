"""#cloud-config runcmd and bootcmd: their validators (see guestagent/schema)."""

from .checks import INVALID, Bad, Note, describe


def runcmd(value, notes):
    return _commands(value, "runcmd", notes)


def bootcmd(value, notes):
    return _commands(value, "bootcmd", notes)


def _commands(value, key, notes):
    """Command strings (sh lines) or argv lists; bad entries dropped."""
    if not isinstance(value, list):
        raise Bad("a list of commands")
    out = []
    for n, item in enumerate(value, 1):
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, list) and item and all(
                isinstance(a, (str, int, float)) and not isinstance(a, bool) for a in item):
            out.append([a if isinstance(a, str) else str(a) for a in item])  # [sleep, 5]
        else:
            notes.append(Note(f"#cloud-config {key} entry {n} is {describe(item)}, not a "
                              "command string or a list of arguments; skipped", INVALID))
    return out
