"""#cloud-config `password`, `chpasswd`, `ssh_pwauth`, checked before anything acts.

The values are normalised for the step: ``chpasswd`` becomes
``{expire: bool, users: [{name, password, type}]}`` whichever form it came
in (``users`` or the older ``list``), and ``ssh_pwauth`` becomes true,
false or "unchanged".  Notes name users and fields, never a password.
"""

from .. import accounts
from ..accounts import shadow
from ..log import shown
from .checks import INVALID, UNSUPPORTED, Bad, Note, describe, placeholder

TYPES = ("hash", "text", "RANDOM")
_TRUE = ("true", "yes", "on", "1", "y")
_FALSE = ("false", "no", "off", "0", "n")


def check_password(value, notes):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)  # `password: 123456` is a YAML number
    if not isinstance(value, str):
        raise Bad("a password")
    why = shadow.problem(value)
    if why:
        raise Bad(f"a usable password ({why})")
    return value


def check_ssh_pwauth(value, notes):
    """true/false as cloud-init reads them (yes/no, 1/0 too), or "unchanged"."""
    answer = _yes_no(value)
    if answer is not None:
        return answer
    if isinstance(value, str) and value.strip().lower() == "unchanged":
        return "unchanged"
    raise Bad("true, false or \"unchanged\"")


def _expire(value):
    answer = _yes_no(value)
    if answer is None:
        raise Bad("true or false")
    return answer


def _yes_no(value):
    """True or False as cloud-init reads a boolean (yes/no, on/off, 1/0 too), else None."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, (str, int)) else None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


def check_chpasswd(value, notes):
    if not isinstance(value, dict):
        raise Bad("a mapping (users, list, expire)")
    unknown = [str(k) for k in value if k not in ("users", "list", "expire")]
    if unknown:
        notes.append(Note("#cloud-config chpasswd: fields guestagent does not support, "
                          "ignored: " + ", ".join(sorted(unknown)), UNSUPPORTED))
    out = {"expire": True, "users": []}
    if "expire" in value:
        try:
            out["expire"] = _expire(value["expire"])
        except Bad as e:
            notes.append(Note(f"#cloud-config chpasswd: 'expire' should be {e}, not "
                              f"{describe(value['expire'])}; passwords expire (the default)",
                              INVALID))
    users = value.get("users")
    if users is not None:
        if not isinstance(users, list):
            notes.append(Note("#cloud-config chpasswd: 'users' should be a list of "
                              "{name, password, type}; ignored", INVALID))
        else:
            for n, item in enumerate(users, 1):
                entry = _user_item(item, f"#cloud-config chpasswd users entry {n}", notes)
                if entry:
                    out["users"].append(entry)
    lines = value.get("list")
    if lines is not None:
        if isinstance(lines, str):
            lines = lines.splitlines()
        if not isinstance(lines, list):
            notes.append(Note("#cloud-config chpasswd: 'list' should be user:password "
                              "lines; ignored", INVALID))
            lines = []
        for n, line in enumerate(lines, 1):
            if isinstance(line, str) and not line.strip():
                continue
            entry = _list_line(line, f"#cloud-config chpasswd list entry {n}", notes)
            if entry:
                out["users"].append(entry)
    return out


def _user_item(item, where, notes):
    if not isinstance(item, dict):
        notes.append(Note(f"{where} is {describe(item)}, not {{name, password, type}}; "
                          "skipped", INVALID))
        return None
    name = item.get("name")
    if not accounts.valid_name(name):
        notes.append(Note(f"{where}: user name {shown(name)} is not a valid account name"
                          f"{_hint(name)}; skipped", INVALID))
        return None
    kind = item.get("type", "hash")
    if kind not in TYPES:
        notes.append(Note(f"{where} ({name}): 'type' should be hash, text or RANDOM, not "
                          f"{shown(kind)}; skipped", INVALID))
        return None
    unknown = [str(k) for k in item if k not in ("name", "password", "type")]
    if unknown:
        notes.append(Note(f"{where} ({name}): fields guestagent does not support, ignored: "
                          + ", ".join(sorted(unknown)), UNSUPPORTED))
    password = item.get("password")
    if isinstance(password, (int, float)) and not isinstance(password, bool):
        password = str(password)
    return _entry(name, password, kind, where, notes)


def _list_line(line, where, notes):
    if not isinstance(line, str) or ":" not in line:
        notes.append(Note(f"{where} is not user:password; skipped", INVALID))
        return None
    name, password = line.split(":", 1)
    name = name.strip()
    if not accounts.valid_name(name):
        notes.append(Note(f"{where}: user name {shown(name)} is not a valid account name"
                          f"{_hint(name)}; skipped", INVALID))
        return None
    if password in ("R", "RANDOM"):
        kind = "RANDOM"
    else:
        kind = "hash" if shadow.is_hash(password) else "text"
    return _entry(name, password, kind, where, notes)


def _entry(name, password, kind, where, notes):
    """One user's {name, password, type} (a RANDOM one has no password yet), or
    None with a note where the password cannot be used."""
    if kind == "RANDOM":
        return {"name": name, "password": None, "type": kind}
    why = shadow.problem(password, hashed=(kind == "hash"))
    if why:
        notes.append(Note(f"{where} ({name}): the password is unusable ({why}); skipped",
                          INVALID))
        return None
    return {"name": name, "password": password, "type": kind}


def _hint(name):
    hint = placeholder(name)
    return f" (it {hint})" if hint else ""
