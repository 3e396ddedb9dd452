"""What a #cloud-config value check is made of: notes, the Bad exception, shared types.

Each key's validator lives in guestagent/schema (see the table in
`guestagent.schema.keys`) and is built from these pieces; every one has
the same signature::

    def check_thing(value, notes):
        ...                 # raise Bad("what was expected") to drop the whole key
        notes.append(Note("...", UNSUPPORTED))   # a field or entry that will not happen
        return checked_value

A validator never raises anything but `Bad`, never logs and never looks at
the system: `guestagent check-userdata` runs the same validators on a file,
with no side effects, so the check and the boot cannot disagree.  Notes name
keys and fields, never values (user-data is a secret), except where a value
is the problem and is shown escaped (`log.shown`).
"""

# What a note says about the user's request.
INVALID = "invalid"          # the value is wrong: it will not be acted on
UNSUPPORTED = "unsupported"  # valid, but guestagent does not do it
IGNORED = "ignored"          # ignored by design (cloud-init ignores it too); nothing lost
NOTICE = "notice"            # acted on, with a condition worth knowing (needs network...)
PROBLEMS = (INVALID, UNSUPPORTED)
MAX_NAMED = 20


class Note(str):
    """One sentence about the user-data, for the log and for check-userdata.

    A str, so callers that only print or search warnings need nothing more;
    ``kind`` says whether something the user asked for will not happen.
    """

    def __new__(cls, text, kind=INVALID, key=None, part=None):
        self = super().__new__(cls, text)
        self.kind = kind
        self.key = key
        self.part = part
        return self


def kind_of(note):
    """A note's kind; a plain string from older code counts as invalid."""
    return getattr(note, "kind", INVALID)


class Bad(Exception):
    """The value is not of the expected type; the message says what was expected."""


class Refused(Bad):
    """The value is of the right type but hostile or unusable; the message says why."""


_NAMES = {str: "a string", bool: "true/false", int: "a number", float: "a number",
          list: "a list", dict: "a mapping", bytes: "binary data", type(None): "empty"}


def describe(value):
    """What kind of YAML value this is, in words ("a list", "true/false").

    A list with an entry that is not a string says which entry, so a key
    list holding a bare `-` reads "a list whose entry 1 is empty".  A
    string that is an unfilled template placeholder says so.
    """
    if isinstance(value, list):
        for n, item in enumerate(value, 1):
            if not isinstance(item, str):
                return f"a list whose entry {n} is {describe(item)}"
    what = _NAMES.get(type(value), type(value).__name__)
    hint = placeholder(value)
    return f"{what} that {hint}" if hint else what


# Template syntax that reaches an instance only when the template was never
# rendered (Terraform, Jinja, Go, ERB) or a placeholder was never replaced.
_PLACEHOLDERS = (
    ("${", "}", "${...}"), ("%{", "}", "%{...}"), ("{{", "}}", "{{ ... }}"),
    ("{%", "%}", "{% ... %}"), ("<%", "%>", "<% ... %>"), ("<<", ">>", "<< ... >>"),
)


def placeholder(value):
    """'looks like an unfilled template placeholder (${...})', or None.

    Names the template syntax, never the text in it (user-data is secret).
    A whole value `<username>` counts; `a<b` does not.
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    for start, end, shape in _PLACEHOLDERS:
        i = text.find(start)
        if i >= 0 and text.find(end, i + len(start)) >= 0:
            return f"looks like an unfilled template placeholder ({shape})"
    if len(text) > 2 and text[0] == "<" and text[-1] == ">" and "<" not in text[1:-1]:
        return "looks like an unfilled placeholder (<...>)"
    return None


def template_syntax(line):
    """The template syntax a line of text holds ('%{...}'), or None."""
    for start, end, shape in _PLACEHOLDERS[:5]:
        i = line.find(start)
        if i >= 0 and (line.find(end, i + len(start)) >= 0 or start in ("%{", "{%")):
            return shape
    return None


def named(names):
    """'a, b, c' for at most MAX_NAMED names, then 'and N more'."""
    names = sorted(set(str(n)[:64] for n in names))
    more = f" and {len(names) - MAX_NAMED} more" if len(names) > MAX_NAMED else ""
    return ", ".join(names[:MAX_NAMED]) + more


# -- scalar types ---------------------------------------------------------------------

def string(value, notes=None):
    if not isinstance(value, str):
        raise Bad("a string")
    return value


def boolean(value, notes=None):
    if not isinstance(value, bool):
        raise Bad("true or false")
    return value


# cloud-init's util.TRUE_STRINGS / FALSE_STRINGS: what its get_cfg_option_bool
# reads from a string (`package_update: "true"` from a template that quoted it).
_TRUE_WORDS = ("true", "1", "on", "yes")
_FALSE_WORDS = ("false", "0", "off", "no")


def cfg_bool(value, notes=None):
    """true/false, or a string or 0/1 as cloud-init's get_cfg_option_bool reads it.

    For keys cloud-init reads through get_cfg_option_bool (package_update,
    preserve_hostname, write_files' append ...).  cloud-init takes any other
    string as false without a word; here it is refused by name instead.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS or word in _FALSE_WORDS:
            return word in _TRUE_WORDS
    raise Bad("true or false")


def str_list(value, notes=None):
    """A list of strings; one string is taken as a list of one."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Bad("a list of strings")
    return list(value)


def comma_list(value, notes=None):
    """A list of strings, or one comma-separated string."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return str_list(value)


def absolute_path(value, what="path"):
    """An absolute path with no '..' in it; Bad says "an absolute ``what``"."""
    if not isinstance(value, str) or not value.startswith("/") or ".." in value.split("/"):
        raise Bad(f"an absolute {what}")
    return value


def anything(value, notes=None):
    return value


# -- mappings ---------------------------------------------------------------------------

def mapping_of_mappings(value, what):
    """{name: {...}} (copied one level deep); Bad says ``what`` was expected."""
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, dict) for k, v in value.items()):
        raise Bad(what)
    return {k: dict(v) for k, v in value.items()}


def known_fields(value, key, names, notes):
    """``value`` must be a mapping of the fields ``names``; any other field is
    noted as unknown to both agents and left out (the caller reads only ``names``)."""
    if not isinstance(value, dict):
        raise Bad("a mapping {" + ", ".join(names) + "}")
    unknown = [k for k in value if k not in names]
    if unknown:
        notes.append(Note(f"#cloud-config {key}: fields neither guestagent nor cloud-init "
                          "knows, ignored: " + named(unknown), INVALID))


def fields(item, spec, where, notes, required=(), ignored=None, dashes=False, mistaken=None):
    """Check a mapping against {field: check}; drops bad fields, returns the good ones.

    ``ignored``: {field: why} accepted and left out with an IGNORED note.
    ``dashes``: ``ssh-authorized-keys`` is read as ``ssh_authorized_keys``, as
    cloud-init does for user entries.
    ``mistaken``: {field: what to write instead} for fields users write that
    cloud-init does not know either (`mode` for `permissions`): said with the
    right spelling, still not done.
    """
    ignored = ignored or {}
    mistaken = mistaken or {}
    if dashes:
        item = normalise_dashes(item, where, notes)
    out = {}
    for k in item:
        if k in mistaken and k not in spec:
            notes.append(Note(f"{where}: {k!r} is not a cloud-init field (cloud-init ignores "
                              f"it too): {mistaken[k]}", UNSUPPORTED))
    unknown = [k for k in item if k not in spec and k not in ignored and k not in mistaken]
    if unknown:
        notes.append(Note(f"{where}: fields guestagent does not support, ignored: "
                          + named(unknown), UNSUPPORTED))
    for field, why in ignored.items():
        if field in item:
            notes.append(Note(f"{where}: {field!r} {why}", IGNORED))
    for field, check in spec.items():
        if item.get(field) is None:  # "field:" with nothing after it asks for nothing
            continue
        value = item[field]
        try:
            out[field] = check(value)
        except Refused as e:
            if field in required:
                raise
            notes.append(Note(f"{where}: {field!r} refused: {e}; ignored", INVALID))
        except Bad as e:
            if field in required:
                raise
            notes.append(Note(f"{where}: {field!r} should be {e}, not {describe(value)}; "
                              "ignored", INVALID))
    for field in required:
        if field not in out:
            raise Bad(f"a {field!r}")
    return out


def normalise_dashes(item, where, notes):
    """A mapping with '-' in field names read as '_' (the underscore spelling wins)."""
    out = {}
    for k, v in item.items():
        name = k.replace("-", "_").strip() if isinstance(k, str) else k
        if name in out and name != k:
            notes.append(Note(f"{where}: both {name!r} and {k!r} given; using {name!r}",
                              INVALID))
            continue
        if name in out:  # 'a-b' came first, then 'a_b': the underscore spelling wins
            notes.append(Note(f"{where}: both {name!r} and a dashed spelling given; "
                              f"using {name!r}", INVALID))
        out[name] = v
    return out
