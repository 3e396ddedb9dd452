"""`guestagent check-userdata FILE`: what the agent will do with a user-data file.

The file is decoded by the same code as the boot (`guestagent.userdata.decode`:
gzip, MIME multipart, part types, #cloud-config validators), and the result
is said part by part and key by key.  Nothing is run, written or fetched.

Exit codes: 0 when everything in the file will be acted on or is ignored by
design, 1 when something the user asked for will not happen (unsupported,
invalid, dropped), 2 when the file cannot be read.
"""

import json

from ..schema.checks import IGNORED, INVALID, NOTICE, PROBLEMS, UNSUPPORTED, kind_of
from .cloudconfig import DO, PARTLY

EXIT_ALL_HANDLED, EXIT_NOT_ALL, EXIT_UNREADABLE = 0, 1, 2

_WORDS = {DO: "will do", PARTLY: "partly", IGNORED: "ignored", UNSUPPORTED: "unsupported",
          INVALID: "invalid", NOTICE: "note"}


def problems(ud):
    """The notes that mean something asked for will not happen."""
    return [w for w in ud.warnings if kind_of(w) in PROBLEMS]


def exit_code(ud):
    return EXIT_NOT_ALL if problems(ud) else EXIT_ALL_HANDLED


def as_dict(ud, size):
    return {
        "bytes": size,
        "parts": [p.as_dict() for p in ud.parts],
        "keys": [k.as_dict() for k in ud.keys],
        "notes": [{"kind": kind_of(w), "key": getattr(w, "key", None),
                   "part": getattr(w, "part", None), "text": str(w)} for w in ud.warnings],
        "scripts": [s.name for s in ud.scripts],
        "fully_handled": not problems(ud),
        "exit_code": exit_code(ud),
    }


def text(ud, size, name, step_when=None):
    """The report as lines for a terminal.

    ``step_when``: step -> when it runs (", once per instance, final stage"),
    from `guestagent.steps.when_they_run` (user-data sits below the steps and
    does not import them).
    """
    lines = [f"{name}: {size} bytes, {len(ud.parts)} part(s)"]
    steps = step_when or {}
    keys_by_part = {}
    for k in ud.keys:
        keys_by_part.setdefault(k.part, []).append(k)
    shown_notes = set()
    for part in ud.parts:
        lines.append(f"part {part.index}: {part.what}")
        for k in keys_by_part.get(part.index, []):
            lines.append(f"  {k.key:<28} {_WORDS[k.verdict]:<12} {_why(k, steps)}")
            for n in k.notes:
                shown_notes.add(id(n))
                lines.append(f"      {_WORDS.get(kind_of(n), kind_of(n))}: {n}")
    rest = [w for w in ud.warnings if id(w) not in shown_notes
            and not (getattr(w, "key", None) and kind_of(w) == IGNORED)
            and not str(w).startswith("#cloud-config keys guestagent does not support")]
    if rest:
        lines.append("notes:")
        for w in rest:
            lines.append(f"  {_WORDS.get(kind_of(w), kind_of(w))}: {w}")
    if problems(ud):
        bad_keys = sorted({k.key for k in ud.keys if k.verdict not in (DO, IGNORED)})
        lines.append("not fully handled (exit 1): "
                     + (f"keys not fully acted on: {', '.join(bad_keys)}" if bad_keys
                        else "see the notes above"))
    else:
        lines.append("fully handled: everything is acted on or ignored by design (exit 0)")
    return lines


def _why(k, steps):
    if k.verdict in (DO, PARTLY):
        if k.step is None:
            return k.what or "how the parts merge"
        when = steps.get(k.step, "")
        return f"step {k.step}{when}" + (f" ({k.why})" if k.why else "")
    return k.why


def main(path, as_json, max_bytes, step_when=None, jinja=None):
    import sys

    from . import decode
    try:  # check-userdata's FILE: a host path from the command line, no root involved
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as e:
        print(f"guestagent: cannot read {path}: {e.strerror or e}", file=sys.stderr)
        return EXIT_UNREADABLE
    ud = decode(data, max_bytes, log_warnings=False, jinja=jinja)
    if as_json:
        print(json.dumps(as_dict(ud, len(data)), indent=2, sort_keys=True))
    else:
        print("\n".join(text(ud, len(data), path, step_when)))
    return exit_code(ud)
