"""The #cloud-config subset guestagent understands, type-checked.

Steps read ``ctx.cloud_config`` and can trust it: only the keys below are
present, each of the documented type.  A value of the wrong type is dropped
with a warning naming the key and what was expected; keys guestagent does
not know are named together in one warning.  Nothing here raises.

    users                list of "default" or {name, sudo, shell, groups,
                         lock_passwd, ssh_authorized_keys}
    ssh_authorized_keys  list of strings
    hostname, fqdn       strings;  preserve_hostname: bool
    write_files          list of {path, content, encoding, permissions,
                         owner, append, defer}
    runcmd, bootcmd      list of command strings (sh -c) or argv lists
    manage_resolv_conf   bool;  resolv_conf: {nameservers, searchdomains,
                         domain, options}
    growpart             {mode: str or false, devices};  resize_rootfs: bool
"""

import re

# Keys whose lists add up when several #cloud-config parts give them.
APPENDED = ("users", "ssh_authorized_keys", "write_files", "runcmd", "bootcmd")
ENCODINGS = ("b64", "base64", "gzip", "gz", "gz+b64", "gzip+base64", "text")
_PERMISSIONS = re.compile(r"^(0o)?[0-7]{1,4}$")
_MAX_NAMED = 20
MAX_DEPTH = 50


class _Bad(Exception):
    """The value is not of the expected type; the message says what was expected."""


Bad = _Bad  # raised by the checks that live beside their steps (STEP_CHECKS)


def load_all(docs, warnings):
    """Parse each (part index, YAML text) and merge them into one checked dict."""
    merged, unknown = {}, []
    for index, text in docs:
        where = "#cloud-config" if len(docs) == 1 else f"#cloud-config (part {index})"
        data = _load_yaml(text, where, warnings)
        if data is None:
            continue
        if not isinstance(data, dict):
            warnings.append(f"{where} is {_a(data)}, not a mapping of keys; ignored")
            continue
        for key, value in data.items():
            check = _check_for(key) if isinstance(key, str) else None
            if check is None:
                unknown.append(str(key)[:64])
                continue
            if value is None:  # "runcmd:" with nothing under it
                continue
            try:
                value = check(value, key, warnings)
            except _Bad as e:
                warnings.append(f"#cloud-config key {key!r}: expected {e}, got {_a(value)}; "
                                "ignored")
                continue
            if key in APPENDED and key in merged:
                merged[key] = merged[key] + value
            else:
                merged[key] = value
    if unknown:
        names = sorted(set(unknown))
        more = f" and {len(names) - _MAX_NAMED} more" if len(names) > _MAX_NAMED else ""
        warnings.append("#cloud-config keys guestagent does not support, ignored: "
                        + ", ".join(names[:_MAX_NAMED]) + more)
    return merged


def _load_yaml(text, where, warnings):
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
                    warnings.append(f"{where} nests lists and mappings more than "
                                    f"{MAX_DEPTH} deep; ignored")
                    return None
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                depth -= 1
        return yaml.load(text, Loader=loader)  # noqa: S506 -- a SafeLoader
    except yaml.MarkedYAMLError as e:
        # the problem and the place, never the text around it (user-data is secret)
        mark = e.problem_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        warnings.append(f"{where} is not valid YAML ({e.problem or 'syntax error'}{at}); "
                        "ignored")
    except Exception as e:
        warnings.append(f"{where} cannot be read as YAML ({type(e).__name__}); ignored")
    return None


def _a(value):
    names = {str: "a string", bool: "true/false", int: "a number", float: "a number",
             list: "a list", dict: "a mapping", bytes: "binary data"}
    return names.get(type(value), type(value).__name__)


# -- scalar checks ------------------------------------------------------------

def _str(value, key=None, warnings=None):
    if not isinstance(value, str):
        raise _Bad("a string")
    return value


def _bool(value, key=None, warnings=None):
    if not isinstance(value, bool):
        raise _Bad("true or false")
    return value


def _str_list(value, key=None, warnings=None):
    """A list of strings; one string is taken as a list of one."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _Bad("a list of strings")
    return list(value)


def _comma_list(value, key=None, warnings=None):
    """A list of strings, or one comma-separated string."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return _str_list(value)


def _resize_rootfs(value, key=None, warnings=None):
    if value == "noblock":
        return True  # resizing is quick here; there is nothing to background
    return _bool(value)


# -- structured keys ------------------------------------------------------------

def _fields(item, spec, where, warnings, required=()):
    """Check a mapping against {field: check}; drops bad fields, returns the good ones."""
    out = {}
    unknown = [str(k)[:64] for k in item if k not in spec]
    if unknown:
        warnings.append(f"{where}: fields guestagent does not support, ignored: "
                        + ", ".join(sorted(unknown)[:_MAX_NAMED]))
    for field, check in spec.items():
        if field not in item:
            continue
        value = item[field]
        try:
            out[field] = check(value)
        except _Bad as e:
            if field in required:
                raise
            warnings.append(f"{where}: {field!r} should be {e}, not {_a(value)}; ignored")
    for field in required:
        if field not in out:
            raise _Bad(f"a {field!r}")
    return out


def _sudo(value):
    if value is None or value is False:
        return False
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise _Bad("a sudoers rule, a list of rules, or false")


def _name(value):
    if not isinstance(value, str) or not value.strip():
        raise _Bad("a user name")
    return value.strip()


_USER_FIELDS = {"name": _name, "sudo": _sudo, "shell": _str, "groups": _comma_list,
                "lock_passwd": _bool, "ssh_authorized_keys": _str_list}


def _users(value, key, warnings):
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list):
        raise _Bad("a list of users")
    out = []
    for n, item in enumerate(value, 1):
        if item == "default":
            out.append("default")
        elif isinstance(item, str) and item.strip():
            out.append({"name": item.strip()})
        elif isinstance(item, dict):
            where = f"#cloud-config users entry {n}"
            if isinstance(item.get("name"), str):
                where += f" ({item['name'][:32]!r})"
            try:
                out.append(_fields(item, _USER_FIELDS, where, warnings, required=("name",)))
            except _Bad:
                warnings.append(f"{where} has no user name; skipped")
        else:
            warnings.append(f"#cloud-config users entry {n} is {_a(item)}, not \"default\" "
                            "or a user mapping; skipped")
    return out


def _content(value):
    if value is None:
        return ""
    if isinstance(value, (str, bytes)):  # bytes: YAML !!binary
        return value
    raise _Bad("a string")


def _encoding(value):
    if isinstance(value, str) and value.strip().lower() in ENCODINGS:
        return value.strip().lower()
    raise _Bad("one of " + ", ".join(ENCODINGS))


def _permissions(value):
    if isinstance(value, bool):
        raise _Bad("an octal mode like '0644'")
    if isinstance(value, int) and 0 <= value <= 0o7777:
        return value
    if isinstance(value, str) and _PERMISSIONS.match(value.strip()):
        return value.strip()
    raise _Bad("an octal mode like '0644'")


def _path(value):
    if not isinstance(value, str) or not value.strip():
        raise _Bad("a path")
    return value.strip()


_FILE_FIELDS = {"path": _path, "content": _content, "encoding": _encoding,
                "permissions": _permissions, "owner": _str, "append": _bool, "defer": _bool}


def _write_files(value, key, warnings):
    if not isinstance(value, list):
        raise _Bad("a list of files")
    out = []
    for n, item in enumerate(value, 1):
        where = f"#cloud-config write_files entry {n}"
        if not isinstance(item, dict):
            warnings.append(f"{where} is {_a(item)}, not a mapping; skipped")
            continue
        try:
            out.append(_fields(item, _FILE_FIELDS, where, warnings, required=("path",)))
        except _Bad:
            warnings.append(f"{where} has no path; skipped")
    return out


def _commands(value, key, warnings):
    if not isinstance(value, list):
        raise _Bad("a list of commands")
    out = []
    for n, item in enumerate(value, 1):
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, list) and item and all(
                isinstance(a, (str, int, float)) and not isinstance(a, bool) for a in item):
            out.append([a if isinstance(a, str) else str(a) for a in item])  # [sleep, 5]
        else:
            warnings.append(f"#cloud-config {key} entry {n} is {_a(item)}, not a command "
                            "string or a list of arguments; skipped")
    return out


def _options(value):
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise _Bad("a mapping of resolver options")
    return dict(value)


_RESOLV_FIELDS = {"nameservers": _str_list, "searchdomains": _str_list, "domain": _str,
                  "options": _options}


def _resolv_conf(value, key, warnings):
    if not isinstance(value, dict):
        raise _Bad("a mapping")
    return _fields(value, _RESOLV_FIELDS, "#cloud-config resolv_conf", warnings)


def _growpart_mode(value):
    if value is False or isinstance(value, str):
        return value
    raise _Bad("a mode string (auto, growpart, off) or false")


def _growpart(value, key, warnings):
    if not isinstance(value, dict):
        raise _Bad("a mapping")
    return _fields(value, {"mode": _growpart_mode, "devices": _str_list},
                   "#cloud-config growpart", warnings)


_CHECKS = {
    "users": _users,
    "ssh_authorized_keys": _str_list,
    "hostname": _str,
    "fqdn": _str,
    "preserve_hostname": _bool,
    "write_files": _write_files,
    "runcmd": _commands,
    "bootcmd": _commands,
    "manage_resolv_conf": _bool,
    "resolv_conf": _resolv_conf,
    "growpart": _growpart,
    "resize_rootfs": _resize_rootfs,
}

# Keys whose check lives beside the step that acts on it, as
# "module under guestagent.steps:function"; imported only when a document
# uses the key, so start-up stays lean.  A check is called as
# check(value, key, warnings) and raises Bad for a value of the wrong type.
STEP_CHECKS = {
    "packages": "packages.schema:packages",
    "package_update": "packages.schema:boolean",
    "package_upgrade": "packages.schema:boolean",
    "package_reboot_if_required": "packages.schema:boolean",
    "apt_update": "packages.schema:boolean",
    "apt_upgrade": "packages.schema:boolean",
    "apt_reboot_if_required": "packages.schema:boolean",
    "apt": "apt_configure.schema:apt",
    "apt_sources": "apt_configure.schema:apt_sources",
    "apt_proxy": "apt_configure.schema:string",
    "apt_http_proxy": "apt_configure.schema:string",
    "apt_https_proxy": "apt_configure.schema:string",
    "apt_ftp_proxy": "apt_configure.schema:string",
    "apt_mirror": "apt_configure.schema:string",
    "apt_mirror_search": "apt_configure.schema:string_list",
    "apt_mirror_search_dns": "apt_configure.schema:search_dns",
    "apt_preserve_sources_list": "apt_configure.schema:boolean",
    "timezone": "timezone:check",
    "mounts": "mounts.schema:mounts",
    "mount_default_fields": "mounts.schema:default_fields",
    "swap": "mounts.schema:swap",
    "disk_setup": "disk_setup:check_disks",
    "fs_setup": "disk_setup:check_filesystems",
    "power_state": "power_state.schema:power_state",
    "yum_repos": "yum_repos:check",
    "yum_repo_dir": "yum_repos:check_dir",
    "locale": "locale:check",
    "locale_configfile": "locale:check_file",
    "ntp": "ntp:check",
    "keyboard": "keyboard:check",
}


def _check_for(key):
    check = _CHECKS.get(key)
    if check is None and key in STEP_CHECKS:
        import importlib
        module, _, function = STEP_CHECKS[key].partition(":")
        check = getattr(importlib.import_module(f"guestagent.steps.{module}"), function)
    return check
