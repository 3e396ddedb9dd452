"""How several #cloud-config parts add up: cloud-init's `merge_how` / `merge_type`.

A part may say how it merges into the parts before it, in its own
``merge_how`` (or ``merge_type``) key or a ``Merge-Type`` MIME header, as a
string ``list(append)+dict(recurse_array)+str()`` or a list of
``{name: list, settings: [append]}``.  The three mergers behave as
cloud-init's (cloudinit/mergers/m_dict.py, m_list.py, m_str.py):

- ``dict``: ``replace`` or ``no_replace`` (the default) for a key both sides
  have; with ``no_replace``, nested mappings merge, and lists or strings too
  with ``recurse_array`` / ``recurse_list`` / ``recurse_str``;
  ``allow_delete``: a key given as empty removes it.
- ``list``: ``append``, ``prepend``, ``replace`` (the default: items replaced
  index by index), ``no_replace``.
- ``str``: ``append`` or replace.

A type with no merger keeps the earlier value, as in cloud-init (so a
``merge_how`` without ``dict(...)`` merges nothing from its part; said in a
note).  Without any merge_how guestagent keeps its own rule: later parts
win for a key, and the list keys in `APPENDED` add up.
"""

import re

from ..schema.checks import INVALID, Note

APPENDED = ("users", "ssh_authorized_keys", "write_files", "runcmd", "bootcmd")
_SPEC = re.compile(r"^([a-z_][a-z0-9_]*)\((.*?)\)$")
_KNOWN = {"dict", "list", "str"}


class BadMerge(ValueError):
    pass


def parse(how):
    """{merger name: set of options} from a merge_how value; BadMerge if unreadable."""
    out = {}
    if isinstance(how, str):
        for item in how.split("+"):
            item = item.strip().lower().replace("-", "_")
            if not item:
                continue
            m = _SPEC.match(item)
            if not m:
                raise BadMerge(f"{item[:40]!r} is not NAME(OPTIONS)")
            out[m.group(1)] = {o.strip() for o in m.group(2).split(",") if o.strip()}
    elif isinstance(how, list):
        for item in how:
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                settings = item.get("settings") or []
                if not isinstance(settings, list) or not all(
                        isinstance(s, str) for s in settings):
                    raise BadMerge("'settings' must be a list of words")
                out[item["name"].replace("-", "_").strip().lower()] = {
                    s.strip().lower() for s in settings}
            elif isinstance(item, list) and item and all(isinstance(s, str) for s in item):
                out[item[0].strip().lower()] = {s.strip().lower() for s in item[1:]}
            else:
                raise BadMerge("each entry must be {name: ..., settings: [...]}")
    else:
        raise BadMerge("expected a string like 'list(append)+dict(recurse_array)+str()' "
                       "or a list of {name, settings}")
    unknown = sorted(set(out) - _KNOWN)
    if unknown:
        raise BadMerge(f"unknown merger {unknown[0][:20]!r} (dict, list and str exist)")
    return out


def merge_part(merged, part, how, notes, where):
    """Merge one checked part into ``merged`` (in place) the way ``how`` says."""
    if how is None:
        for key, value in part.items():
            if key in APPENDED and key in merged:
                merged[key] = merged[key] + value
            else:
                merged[key] = value
        return
    if "dict" not in how:
        notes.append(Note(f"{where}: merge_how names no dict(...) merger, so nothing in "
                          "this part is merged (as in cloud-init)", INVALID, key="merge_how"))
        return
    result = _merge(merged, part, how)
    merged.clear()
    merged.update(result)


def _merge(old, new, how):
    if isinstance(old, dict):
        return _dict(old, new, how) if "dict" in how else old
    if isinstance(old, list):
        return _list(old, new, how) if "list" in how else old
    if isinstance(old, str):
        if "str" not in how:
            return old
        return old + new if "append" in how["str"] and isinstance(new, str) else new
    return old


def _dict(old, new, how):
    if not isinstance(new, dict):
        return old
    opts = how["dict"]
    replace = "replace" in opts
    out = dict(old)
    for k, v in new.items():
        if k not in out:
            out[k] = v
        elif v is None and "allow_delete" in opts:
            out.pop(k)
        elif replace:
            out[k] = v
        elif isinstance(v, list) and ({"recurse_array", "recurse_list"} & opts):
            out[k] = _merge(out[k], v, how)
        elif isinstance(v, str) and "recurse_str" in opts:
            out[k] = _merge(out[k], v, how)
        elif isinstance(v, dict):
            out[k] = _merge(out[k], v, how)
    return out


def _list(old, new, how):
    opts = how["list"]
    if not isinstance(new, list):
        return new if not ({"append", "prepend", "no_replace"} & opts) else old
    if "prepend" in opts:
        return new + old
    if "append" in opts:
        return old + new
    out = list(old)
    if "no_replace" in opts:
        return out
    for i in range(min(len(out), len(new))):
        v = new[i]
        if ((isinstance(v, list) and ({"recurse_array", "recurse_list"} & opts))
                or (isinstance(v, str) and "recurse_str" in opts)
                or (isinstance(v, dict) and "recurse_dict" in opts)):
            out[i] = _merge(out[i], v, how)
        else:
            out[i] = v
    return out
