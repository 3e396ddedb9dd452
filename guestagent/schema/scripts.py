"""#cloud-config keys of the scripts step: their validators (see guestagent/schema)."""

import re

from .checks import UNSUPPORTED, Bad, Note

_STAGES = ("all", "final", "config", "init")


_TARGET = re.compile(r"^\s*(?:>>|>|\|\s*tee(?:\s+-a)?)\s+(/[^\s;|&<>`$'\"\\]+)\s*$")


def check_output(value, notes):
    """cloud-init's output: {all: ">> FILE"} and the like.

    guestagent's user-data output always goes to its own log and the
    console; a file named here gets a copy of every script's, runcmd's and
    bootcmd's output as well (appended, 0600).  Pipes to other commands are
    not run.
    """
    if not isinstance(value, dict):
        raise Bad("a mapping of all/init/config/final to '>> FILE' or '| tee -a FILE'")
    files = {}
    for stage, spec in value.items():
        if stage not in _STAGES:
            notes.append(Note(f"#cloud-config output: unknown stage {str(stage)[:20]!r}; "
                              "ignored", UNSUPPORTED))
            continue
        if isinstance(spec, list) and spec:
            spec = spec[0]  # [stdout, stderr]: stderr goes where stdout goes here
        elif isinstance(spec, dict):
            spec = spec.get("output")
        m = _TARGET.match(spec) if isinstance(spec, str) else None
        if m is None or "/../" in m.group(1) + "/":
            notes.append(Note(f"#cloud-config output {stage}: only '>> FILE', '> FILE' and "
                              "'| tee -a FILE' are supported; ignored", UNSUPPORTED))
            continue
        files[stage] = m.group(1)
    chosen = next((files[s] for s in _STAGES if s in files), None)
    if chosen is None:
        raise Bad("'>> FILE' or '| tee -a FILE' for all, init, config or final")
    others = sorted({f for f in files.values() if f != chosen})
    if others:
        notes.append(Note(f"#cloud-config output: one file gets the copy ({chosen}); "
                          f"not also {', '.join(others)}", UNSUPPORTED))
    return {"file": chosen}
