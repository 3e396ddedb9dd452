"""Read the #cloud-config parts into one checked dict, against the key table.

The table of keys and every validator are the schema (guestagent/schema,
below both this package and the steps): this module parses each part,
runs each key's validator, merges the parts and reports what happens to
each key.  Steps read ``ctx.cloud_config`` and can trust it: only keys a
step acts on are there, each checked.  The boot and ``guestagent
check-userdata`` both go through `load_all`, so they cannot disagree.
Nothing here raises.
"""

import re

from ..schema import checks
from ..schema.checks import IGNORED, INVALID, PROBLEMS, UNSUPPORTED, Bad, Note, describe, named
from ..schema.keys import CLOUD_INIT_KEYS, KEYS, MERGE, Acts, Ignored, Unsupported, entry
from .merging import BadMerge, merge_part, parse

MAX_DEPTH = 50
_TOP_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]{0,63})\s*:")
_VALUE = re.compile(r"^\s*(?:-\s+)?(?:[^:#'\"]+:\s+)?([*&])")

# What check-userdata says about a key.
DO = "do"            # a step acts on it
PARTLY = "partly"    # a step acts on it, but some entries or fields are dropped (notes say which)


class KeyReport:
    """What happens to one top-level key of one part (for check-userdata)."""

    def __init__(self, part, key, verdict, step=None, why="", notes=(), what=None):
        self.part = part
        self.key = key
        self.verdict = verdict
        self.step = step
        self.why = why
        self.notes = list(notes)
        self.what = what  # for a key the reading itself acts on (merge_how, vendor_data)

    def as_dict(self):
        return {"part": self.part, "key": self.key, "verdict": self.verdict,
                "step": self.step, "why": self.why, "notes": [str(n) for n in self.notes]}


def load_all(docs, warnings, reports=None):
    """Parse each part and merge them into one checked dict.

    ``docs``: [(part index, YAML text)] or [(part index, YAML text, Merge-Type
    header)].  Problems go to ``warnings`` as `Note`s; ``reports``, when given,
    gets one `KeyReport` per key per part.
    """
    merged = {}
    unsupported = []
    acted = {}  # key -> Acts, for the cross-key checks after merging
    for doc in docs:
        index, text = doc[0], doc[1]
        header_how = doc[2] if len(doc) > 2 else None
        where = "#cloud-config" if len(docs) == 1 else f"#cloud-config (part {index})"
        data = _load_yaml(text, where, warnings, index)
        if data is None:
            continue
        if not isinstance(data, dict):
            warnings.append(Note(f"{where} is {describe(data)}, not a mapping of keys; "
                                 "ignored", INVALID, part=index))
            continue
        part, how = {}, None
        for key, value in data.items():
            report = _check_key(index, where, key, value, part, warnings)
            if reports is not None:
                reports.append(report)
            if report.verdict == UNSUPPORTED:
                unsupported.append(str(key)[:64])
            if report.key in part and isinstance(KEYS.get(report.key), Acts):
                acted[report.key] = KEYS[report.key]
        for key in ("merge_how", "merge_type"):
            if key in part:
                how = part.pop(key)
                break
        if how is None and header_how:
            try:
                how = parse(header_how)
            except BadMerge as e:
                warnings.append(Note(f"{where}: Merge-Type header: {e}; ignored", INVALID,
                                     key="merge_how", part=index))
        merge_part(merged, part, how, warnings, where)
    for key, act in acted.items():
        if act.after and key in merged:
            act.after(merged, warnings)
    unknown = [k for k in unsupported if k not in CLOUD_INIT_KEYS]
    known = [k for k in unsupported if k in CLOUD_INIT_KEYS]
    if known:
        warnings.append(Note("#cloud-config keys guestagent does not support, ignored: "
                             + named(known), UNSUPPORTED))
    if unknown:
        warnings.append(Note("#cloud-config keys neither guestagent nor cloud-init knows "
                             "(a typo?), ignored: " + named(unknown), UNSUPPORTED))
    return merged


def _check_key(index, where, key, value, part, warnings):
    """Check one key's value into ``part``; returns its KeyReport."""
    found = entry(key)
    name = str(key)[:64]
    if isinstance(found, Ignored):
        note = Note(f"{where} key {name!r} is ignored: {found.why}", IGNORED, key=name,
                    part=index)
        warnings.append(note)
        return KeyReport(index, name, IGNORED, why=found.why)
    if isinstance(found, Unsupported):
        return KeyReport(index, name, UNSUPPORTED, why=found.why)
    if value is None:  # "runcmd:" with nothing under it: nothing asked, nothing lost
        return KeyReport(index, name, DO, found.step, "empty: nothing to do",
                         what=found.what if found.step is None else None)
    notes = []
    try:
        checked = parse(value) if found.check == MERGE else found.check(value, notes)
    except (Bad, BadMerge) as e:
        expected = f"expected {e}, got {describe(value)}" if isinstance(e, Bad) else str(e)
        note = Note(f"#cloud-config key {name!r}: {expected}; ignored", INVALID, key=name,
                    part=index)
        warnings.append(note)
        return KeyReport(index, name, INVALID, found.step, expected, [note])
    for n in notes:
        if isinstance(n, Note):
            n.key, n.part = n.key or name, index
        else:
            n = Note(n, INVALID, key=name, part=index)
        warnings.append(n)
    part[key] = checked
    problems = [n for n in notes if checks.kind_of(n) in PROBLEMS]
    return KeyReport(index, name, PARTLY if problems else DO, found.step, notes=notes,
                     what=found.what if found.step is None else None)


def _load_yaml(text, where, warnings, index=None):
    import yaml
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        # libyaml builds nodes recursively in C: deep nesting would crash the
        # process, so the flat event stream is measured first
        depth = deepest = 0
        for event in yaml.parse(text, Loader=loader):
            if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                depth += 1
                deepest = max(deepest, depth)
                if deepest > MAX_DEPTH:
                    warnings.append(Note(f"{where} nests lists and mappings more than "
                                         f"{MAX_DEPTH} deep; ignored", INVALID, part=index))
                    return None
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                depth -= 1
        return yaml.load(text, Loader=loader)  # noqa: S506 -- a SafeLoader
    except yaml.MarkedYAMLError as e:
        # the problem and the place, never the text around it (user-data is secret)
        mark = e.problem_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        context = _yaml_error_context(text, mark.line) if mark else ""
        warnings.append(Note(f"{where} is not valid YAML ({e.problem or 'syntax error'}{at})"
                             f"{context}; ignored", INVALID, part=index))
    except Exception as e:
        warnings.append(Note(f"{where} cannot be read as YAML ({type(e).__name__}); ignored",
                             INVALID, part=index))
    return None


def _yaml_error_context(text, line):
    """', in key 'write_files'; line 12 holds template syntax (%{...}) ...' or ''.

    The top-level key the broken line belongs to, and whether that line (or
    the one before, where YAML often notices late) holds template syntax
    that was never rendered.  Key names and the kind of syntax only, never
    the text (user-data is secret).
    """
    lines = text.splitlines()
    said = []
    for ln in reversed(lines[:line + 1]):
        m = _TOP_KEY.match(ln)
        if m:
            said.append(f"in key {m.group(1)!r}")
            break
    for n in (line, line - 1):
        shape = checks.template_syntax(lines[n]) if 0 <= n < len(lines) else None
        if shape:
            said.append(f"line {n + 1} holds template syntax ({shape}): the template was "
                        "not rendered before it reached the instance")
            break
    else:
        value = _VALUE.match(lines[line]) if line < len(lines) else None
        if value and value.group(1) in "*&":
            said.append(f"the value on line {line + 1} starts with {value.group(1)!r}, which "
                        "YAML reads as an alias or anchor: quote the value")
    return "".join(f", {s}" for s in said)
