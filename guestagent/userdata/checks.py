"""What a #cloud-config value check is made of: notes, the Bad exception, shared types.

Each key's validator lives beside the step that acts on the key (see the
table in `cloudconfig`) and is built from these pieces::

    def check_thing(value, key, notes):
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


def describe(value):
    """What kind of YAML value this is, in words ("a list", "true/false")."""
    names = {str: "a string", bool: "true/false", int: "a number", float: "a number",
             list: "a list", dict: "a mapping", bytes: "binary data", type(None): "empty"}
    return names.get(type(value), type(value).__name__)


def named(names):
    """'a, b, c' for at most MAX_NAMED names, then 'and N more'."""
    names = sorted(set(str(n)[:64] for n in names))
    more = f" and {len(names) - MAX_NAMED} more" if len(names) > MAX_NAMED else ""
    return ", ".join(names[:MAX_NAMED]) + more


# -- scalar types ---------------------------------------------------------------------

def string(value, key=None, notes=None):
    if not isinstance(value, str):
        raise Bad("a string")
    return value


def boolean(value, key=None, notes=None):
    if not isinstance(value, bool):
        raise Bad("true or false")
    return value


def str_list(value, key=None, notes=None):
    """A list of strings; one string is taken as a list of one."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Bad("a list of strings")
    return list(value)


def comma_list(value, key=None, notes=None):
    """A list of strings, or one comma-separated string."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return str_list(value)


def absolute_path(value, what="path"):
    """An absolute path with no '..' in it; Bad says "an absolute ``what``"."""
    if not isinstance(value, str) or not value.startswith("/") or ".." in value.split("/"):
        raise Bad(f"an absolute {what}")
    return value


def anything(value, key=None, notes=None):
    return value


# -- mappings ---------------------------------------------------------------------------

def mapping_of_mappings(value, what):
    """{name: {...}} (copied one level deep); Bad says ``what`` was expected."""
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, dict) for k, v in value.items()):
        raise Bad(what)
    return {k: dict(v) for k, v in value.items()}


def fields(item, spec, where, notes, required=(), ignored=None, dashes=False):
    """Check a mapping against {field: check}; drops bad fields, returns the good ones.

    ``ignored``: {field: why} accepted and left out with an IGNORED note.
    ``dashes``: ``ssh-authorized-keys`` is read as ``ssh_authorized_keys``, as
    cloud-init does for user entries.
    """
    ignored = ignored or {}
    if dashes:
        item = normalise_dashes(item, where, notes)
    out = {}
    unknown = [k for k in item if k not in spec and k not in ignored]
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


def commands(value, key, notes):
    """runcmd / bootcmd: command strings (sh lines) or argv lists; bad entries dropped."""
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
