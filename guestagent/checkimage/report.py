"""Showing the findings: a table for people, a JSON list for scripts."""

import json
import shutil
import textwrap

from .finding import FAIL, ORDER, PASS, WARN


def ordered(findings):
    """Failures first, then warnings, then passes; check order kept within each."""
    return sorted(findings, key=lambda f: ORDER[f.status])


def as_json(findings, with_changes=False):
    return json.dumps([f.as_dict(with_changes) for f in ordered(findings)], indent=2)


def as_table(findings):
    findings = ordered(findings)
    width = max(60, shutil.get_terminal_size((100, 24)).columns)
    id_w = max([len("CHECK")] + [len(f.id) for f in findings])
    indent = " " * (6 + 2 + id_w + 2)
    lines = [f"{'STATUS':<6}  {'CHECK':<{id_w}}  DETAIL"]
    for f in findings:
        wrapped = textwrap.wrap(f.detail, width - len(indent)) or [""]
        lines.append(f"{f.status.upper():<6}  {f.id:<{id_w}}  {wrapped[0]}")
        lines += [indent + w for w in wrapped[1:]]
        if f.status != PASS and f.fix:
            lines += textwrap.wrap("fix: " + f.fix, width, initial_indent=indent,
                                   subsequent_indent=indent + "     ")
    counts = {s: sum(1 for f in findings if f.status == s) for s in (FAIL, WARN, PASS)}
    lines.append("")
    lines.append(f"{counts[FAIL]} failed, {counts[WARN]} warnings, {counts[PASS]} passed")
    return "\n".join(lines)
