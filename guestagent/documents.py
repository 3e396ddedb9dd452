"""JSON documents from a datasource, made safe for everything downstream.

A document is parsed once here, and every later reader (the metadata
object, `query`, the stored copy) can then trust two things: nothing is
nested deeper than MAX_DEPTH, and no string holds a lone surrogate (which
Python's JSON parser accepts as ``"\\ud800"`` but no file, console or log
can encode).  A value nested too deep is dropped by name, with a warning;
the rest of the document is kept.
"""

import json
import logging
import re

log = logging.getLogger(__name__)

# Nova's documents are a few levels deep; user `meta` is flat key/value.
MAX_DEPTH = 32
_SURROGATE = re.compile("[\ud800-\udfff]")
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.S)


class BadDocument(ValueError):
    """The document cannot be used at all; the message says why."""


def load_json(data, name):
    """Parse ``data`` (bytes or str) as the document ``name``; BadDocument if unusable."""
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    try:
        doc = json.loads(data)
    except RecursionError:
        # nested deeper than the parser itself can go: cut the deep values
        # out of the text, so the rest of the document still counts
        try:
            doc = json.loads(_cut_deep(data))
        except (ValueError, RecursionError) as e:
            raise BadDocument(f"{name} is not valid JSON: {e}") from None
        log.warning("%s: dropped values nested more than %d levels deep", name, MAX_DEPTH)
    except ValueError as e:
        raise BadDocument(f"{name} is not valid JSON: {e}") from None
    return tame(doc, name)


def tame(doc, name):
    """``doc`` with values deeper than MAX_DEPTH dropped and surrogates replaced."""
    problems = {"deep": [], "surrogates": 0}
    out = _walk(doc, 0, name, problems)
    if problems["deep"]:
        shown = ", ".join(problems["deep"][:3]) + (
            f" and {len(problems['deep']) - 3} more" if len(problems["deep"]) > 3 else "")
        log.warning("%s: dropped values nested more than %d levels deep: %s",
                    name, MAX_DEPTH, shown)
    if problems["surrogates"]:
        log.warning("%s: replaced %d invalid characters (lone UTF-16 surrogates) with U+FFFD",
                    name, problems["surrogates"])
    return out


def _walk(value, depth, where, problems):
    # recursion is bounded: nothing goes below MAX_DEPTH
    if isinstance(value, str):
        return _fix_text(value, problems)
    if not isinstance(value, (dict, list)):
        return value
    if depth >= MAX_DEPTH:
        top = "/".join(where.split("/")[:2])  # the field, not the whole way down
        if _where(top) not in problems["deep"]:
            problems["deep"].append(_where(top))
        return None
    if isinstance(value, list):
        return [_walk(v, depth + 1, f"{where}[{i}]", problems) for i, v in enumerate(value)]
    out = {}
    for k, v in value.items():
        k = _fix_text(k, problems)
        out[k] = _walk(v, depth + 1, f"{where}/{k}", problems)
    return out


def _fix_text(s, problems):
    if _SURROGATE.search(s) is None:
        return s
    fixed, n = _SURROGATE.subn("\ufffd", s)
    problems["surrogates"] += n
    return fixed


def _where(where):
    return ascii(where if len(where) <= 80 else where[:77] + "...")


def _cut_deep(text):
    """``text`` with every array or object that opens deeper than MAX_DEPTH
    replaced by null (strings are skipped whole, so brackets in them count
    for nothing)."""
    out = []
    depth = 0
    cut_from = None
    last = 0
    for m in _TOKEN.finditer(text):
        tok = m.group()
        if tok[0] == '"':
            continue
        if tok in "[{":
            depth += 1
            if depth == MAX_DEPTH + 1 and cut_from is None:
                cut_from = m.start()
        else:
            if depth == MAX_DEPTH + 1 and cut_from is not None:
                out.append(text[last:cut_from])
                out.append("null")
                last = m.end()
                cut_from = None
            depth -= 1
    out.append(text[last:])
    return "".join(out)
