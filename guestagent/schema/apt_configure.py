"""The #cloud-config keys the apt_configure step reads, type-checked.

    apt:  preserve_sources_list  bool
          sources_list           string (a sources.list template)
          primary, security      list of {arches, uri, search, search_dns}
          sources                {name: {source, key, keyid, keyserver, filename,
                                  append}}
          conf                   string (apt.conf text)
          proxy, http_proxy, https_proxy, ftp_proxy   strings
          debconf_selections     {name: "debconf-set-selections line(s)"}
          disable_suites         list of suite names ($RELEASE allowed)
    apt_sources                  (old) list of {source, filename, key, keyid, keyserver}
    apt_proxy, apt_http_proxy, apt_https_proxy, apt_ftp_proxy   (old) strings
    apt_mirror                   (old) string: the primary mirror
    apt_mirror_search            (old) list of mirror URLs: the first is used
    apt_mirror_search_dns        (old) bool: true is warned about (no DNS lookup)
    apt_preserve_sources_list    (old) bool

The old keys are folded into the `apt` form by the step.
"""

from .checks import Bad, boolean, str_list, string

_SOURCE_FIELDS = ("source", "key", "keyid", "keyserver", "filename", "append")
_MIRROR_FIELDS = ("arches", "uri", "search", "search_dns")


def apt(value, notes):
    if not isinstance(value, dict):
        raise Bad("a mapping")
    out = {}
    for field, v in value.items():
        where = f"#cloud-config apt: {str(field)[:40]}"
        try:
            if field == "preserve_sources_list":
                out[field] = boolean(v)
            elif field in ("sources_list", "conf", "proxy", "http_proxy", "https_proxy",
                           "ftp_proxy"):
                out[field] = string(v)
            elif field in ("primary", "security"):
                out[field] = _mirrors(v, where, notes)
            elif field == "sources":
                out[field] = _sources(v, where, notes)
            elif field == "debconf_selections":
                if not isinstance(v, dict) or not all(isinstance(x, str) for x in v.values()):
                    raise Bad("a mapping of names to debconf-set-selections lines")
                out[field] = dict(v)
            elif field == "disable_suites":
                if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                    raise Bad("a list of suite names")
                out[field] = list(v)
            else:
                notes.append(f"#cloud-config apt: field {str(field)[:40]!r} is not "
                                "supported; ignored")
        except Bad as e:
            notes.append(f"{where} should be {e}; ignored")
    return out


def _mirrors(value, where, warnings):
    if not isinstance(value, list):
        raise Bad("a list of {arches, uri}")
    out = []
    for n, item in _mappings(value, where, warnings):
        entry = {}
        for field, v in item.items():
            if field not in _MIRROR_FIELDS:
                warnings.append(f"{where} entry {n}: field {str(field)[:40]!r} is not "
                                "supported; ignored")
            elif field in ("arches", "search"):
                if isinstance(v, str):
                    v = [v]
                if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                    warnings.append(f"{where} entry {n}: {field} should be a list; ignored")
                    continue
                entry[field] = list(v)
            elif field == "uri" and isinstance(v, str):
                entry[field] = v.strip()
            elif field == "search_dns" and isinstance(v, bool):
                entry[field] = v
            else:
                warnings.append(f"{where} entry {n}: {field} has the wrong type; ignored")
        out.append(entry)
    return out


def _sources(value, where, warnings):
    if not isinstance(value, dict):
        raise Bad("a mapping of source names to {source, key, ...}")
    out = {}
    for name, item in value.items():
        if not isinstance(name, str) or not name.strip():
            warnings.append(f"{where}: a source without a name; skipped")
            continue
        if not isinstance(item, dict):
            warnings.append(f"{where} {name[:40]!r} is not a mapping; skipped")
            continue
        out[name] = _source(item, f"{where} {name[:40]!r}", warnings)
    return out


def _source(item, where, warnings):
    entry = {}
    for field, v in item.items():
        if field not in _SOURCE_FIELDS:
            warnings.append(f"{where}: field {str(field)[:40]!r} is not supported; ignored")
        elif field == "append":
            if isinstance(v, bool):
                entry[field] = v
            else:
                warnings.append(f"{where}: append should be true or false; ignored")
        elif isinstance(v, str):
            entry[field] = v
        elif field == "keyid" and isinstance(v, int) and not isinstance(v, bool):
            entry[field] = f"{v:X}"  # an unquoted all-digit key id
        else:
            warnings.append(f"{where}: {field} should be a string; ignored")
    return entry


def string_list(value, notes=None):
    """apt_mirror_search: one URL or a list of them."""
    try:
        return str_list(value)
    except Bad:
        raise Bad("a list of URLs") from None


def search_dns(value, notes):
    value = boolean(value)
    if value:
        notes.append("#cloud-config apt_mirror_search_dns: looking mirrors up in DNS is "
                        "not done; the image's mirror stays")
    return value


def apt_sources(value, notes):
    """The old list form: [{source, filename, key, keyid, keyserver}]."""
    if not isinstance(value, list):
        raise Bad("a list of {source, filename, key, ...}")
    return [_source(item, f"#cloud-config apt_sources entry {n}", notes)
            for n, item in _mappings(value, "#cloud-config apt_sources", notes)]


def _mappings(entries, where, warnings):
    """(n, entry) for each mapping in the list ``entries``, counting from 1; any
    other entry is skipped with a warning, in turn with what the caller notes."""
    for n, item in enumerate(entries, 1):
        if isinstance(item, dict):
            yield n, item
        else:
            warnings.append(f"{where} entry {n} is not a mapping; skipped")
