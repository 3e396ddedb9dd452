"""JSON (and YAML) documents from a datasource, made safe for everything downstream.

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


def load_yaml(data, name):
    """Parse ``data`` (bytes or str) as the YAML (or JSON) document ``name``,
    as `load_json` does; BadDocument if unusable.

    Safe loading only.  Nesting is measured on the event stream before any
    node is built (libyaml builds them recursively in C), and what YAML
    types JSON has not (dates, binary, non-text keys) becomes text, so the
    document can be stored and shown like a JSON one.
    """
    import yaml
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        depth = 0
        for event in yaml.parse(data, Loader=loader):
            if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    raise BadDocument(f"{name} nests lists and mappings more than "
                                      f"{MAX_DEPTH} deep")
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                depth -= 1
        doc = yaml.load(data, Loader=loader)  # noqa: S506 -- a SafeLoader
    except yaml.MarkedYAMLError as e:
        # the problem and the place, never the text (a seed may hold secrets)
        mark = e.problem_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise BadDocument(f"{name} is not valid YAML ({e.problem or 'syntax error'}{at})") \
            from None
    except yaml.YAMLError as e:
        raise BadDocument(f"{name} cannot be read as YAML ({type(e).__name__})") from None
    budget = [MAX_YAML_NODES]
    try:
        return tame(_plain(doc, budget), name)
    except _TooBig:
        # aliases make a small text a huge tree ("billion laughs")
        raise BadDocument(f"{name} expands to more than {MAX_YAML_NODES} values "
                          f"(through YAML aliases)") from None


MAX_YAML_NODES = 200000


class _TooBig(Exception):
    pass


def _plain(value, budget):
    """``value`` with only JSON's types (depth already bounded)."""
    budget[0] -= 1
    if budget[0] < 0:
        raise _TooBig()
    if isinstance(value, dict):
        return {k if isinstance(k, str) else str(k): _plain(v, budget)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, budget) for v in value]
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) \
            else str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


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
