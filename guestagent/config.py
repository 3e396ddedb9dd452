"""Configuration: /etc/guestagent/guestagent.conf (INI) plus .conf.d drop-ins.

DEFAULTS is the one list of known keys; conf/guestagent.conf ships each of
them commented with this default (a test keeps the two in step).
"""

import configparser
import logging
import os

from .datasources import NAMES as DATASOURCES

log = logging.getLogger(__name__)

DEFAULT_PATH = "/etc/guestagent/guestagent.conf"

# The network stacks `[network] renderer` may name besides ``auto``: the one
# list of them.  Each is written by guestagent/steps/network/render_NAME.py.
NETWORK_RENDERERS = ("ifupdown", "networkd", "networkmanager", "ifcfg", "netplan")

DEFAULTS = {
    "main": {
        "datasources": ", ".join(DATASOURCES),
        "default_user": "",  # empty: the distro's customary account
        "metadata_url": "http://169.254.169.254",
        "deadline": "120",
        "assume_cloud": "no",
        "probe_deadline": "10",
        "ssh_wait": "30",
        "request_timeout": "3",
        "max_response_bytes": "4194304",
        "log_file": "/var/log/guestagent.log",
        "new_machine_id": "yes",
    },
    "configdrive": {
        "path": "",  # empty: look for a filesystem labelled config-2
    },
    "growroot": {
        "enabled": "yes",
        "devices": "/",
    },
    "users": {
        "groups": "",
        "sudo": "yes",
        "shell": "/bin/bash",
        "remove_previous_instance_keys": "yes",
    },
    "ssh": {
        "regenerate_host_keys": "yes",
        "host_key_types": "",  # empty: the types sshd_config names, else rsa, ecdsa, ed25519
        "rsa_in_background": "yes",
    },
    "hostname": {
        "enabled": "yes",
        "manage_hosts": "yes",
    },
    "resolv_conf": {
        "enabled": "yes",
    },
    "network": {
        "enabled": "yes",
        "renderer": "auto",  # auto: the stack the image uses
    },
    "files": {
        "mode": "0644",
    },
    "userdata": {
        "enabled": "yes",
        "script_timeout": "0",
        "max_bytes": "16777216",
        "vendor_data": "yes",
    },
}


class ConfigError(Exception):
    """Bad configuration: the CLI reports it and exits 2."""


class Config:
    def __init__(self, parser, files):
        self._p = parser
        self.files = files  # the files read, in order
        self.base_dir = os.path.dirname(files[0]) if files else "/"

    def get(self, section, key):
        return self._p.get(section, key)

    def getbool(self, section, key):
        value = self.get(section, key).strip().lower()
        if value in ("1", "yes", "true", "on"):
            return True
        if value in ("0", "no", "false", "off"):
            return False
        raise ConfigError(f"[{section}] {key} = {value!r}: expected yes or no")

    def getint(self, section, key):
        value = self.get(section, key).strip()
        try:
            return int(value, 0) if value.startswith("0o") else int(value)
        except ValueError:
            raise ConfigError(f"[{section}] {key} = {value!r}: expected a whole number") from None

    def getfloat(self, section, key):
        value = self.get(section, key).strip()
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"[{section}] {key} = {value!r}: expected a number") from None

    def getlist(self, section, key):
        return [v.strip() for v in self.get(section, key).replace("\n", ",").split(",")
                if v.strip()]

    def getpath(self, section, key):
        """A path; relative ones are relative to the main config file's folder."""
        value = self.get(section, key).strip()
        if value and not os.path.isabs(value):
            value = os.path.normpath(os.path.join(self.base_dir, value))
        return value


def load(path=None, root="/"):
    """Read the config file (and its .conf.d drop-ins).

    ``path`` is a host path given on the command line; without it the file
    is the one inside ``root``.  A missing default file means all defaults.
    """
    explicit = path is not None
    if path is None:
        path = os.path.join(root, DEFAULT_PATH.lstrip("/"))
    parser = configparser.ConfigParser(interpolation=None, default_section="__none__")
    parser.read_dict(DEFAULTS)
    files = []
    candidates = [path]
    dropins = path + ".d" if not path.endswith(".conf") else path[:-5] + ".conf.d"
    # the agent's own config, read before System exists; --config names a host file
    if os.path.isdir(dropins):
        candidates += sorted(os.path.join(dropins, f) for f in os.listdir(dropins)
                             if f.endswith(".conf"))
    for i, f in enumerate(candidates):
        if not os.path.exists(f):
            if i == 0 and explicit:
                raise ConfigError(f"{f}: no such config file")
            continue
        _read_one(parser, f)
        files.append(f)
    cfg = Config(parser, files or [os.path.abspath(path)])
    cfg.base_dir = os.path.dirname(os.path.abspath(path))
    try:
        _validate(cfg)
    except ConfigError as e:
        raise ConfigError(f"{', '.join(files) or path}: {e}") from None
    return cfg


def _read_one(parser, f):
    try:
        with open(f, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{f}: cannot read: {e}") from None
    check = configparser.ConfigParser(interpolation=None, default_section="__none__")
    try:
        check.read_string(text, source=f)
    except configparser.Error as e:
        raise ConfigError(_describe(e, f)) from None
    for section in check.sections():
        if section not in DEFAULTS:
            log.warning("%s: unknown section [%s] ignored", f, section)
            continue
        for key, value in check.items(section):
            if key not in DEFAULTS[section]:
                log.warning("%s: unknown key %r in [%s] ignored", f, key, section)
                continue
            parser.set(section, key, value)


def _describe(e, f):
    line = getattr(e, "lineno", None)
    if isinstance(e, configparser.MissingSectionHeaderError):
        return f"{f}, line {e.lineno}: a setting before any [section] header: {e.line.strip()!r}"
    if isinstance(e, configparser.ParsingError):
        lines = ", ".join(f"line {n}: {t.strip()!r}" for n, t in e.errors[:3])
        return f"{f}: cannot parse {lines}"
    if isinstance(e, (configparser.DuplicateOptionError, configparser.DuplicateSectionError)):
        return f"{f}, line {line}: {e.message if hasattr(e, 'message') else e}"
    return f"{f}: {e}"


def _validate(cfg):
    """Check typed keys now, so a typo fails at start with exit 2."""
    for section, key in (("main", "deadline"), ("main", "request_timeout"),
                         ("main", "probe_deadline")):
        if cfg.getfloat(section, key) < 0:
            raise ConfigError(f"[{section}] {key} must not be negative")
    cfg.getint("main", "max_response_bytes")
    cfg.getint("userdata", "max_bytes")
    cfg.getfloat("userdata", "script_timeout")
    for section, key in (("main", "assume_cloud"), ("growroot", "enabled"), ("users", "sudo"),
                         ("ssh", "regenerate_host_keys"), ("ssh", "rsa_in_background"),
                         ("hostname", "enabled"),
                         ("hostname", "manage_hosts"), ("resolv_conf", "enabled"),
                         ("network", "enabled"),
                         ("userdata", "enabled")):
        cfg.getbool(section, key)
    renderers = ("auto",) + NETWORK_RENDERERS
    renderer = cfg.get("network", "renderer").strip()
    if renderer not in renderers:
        raise ConfigError(f"[network] renderer = {renderer!r}: expected one of "
                          f"{', '.join(renderers)}")
    for ds in cfg.getlist("main", "datasources"):
        if ds not in DATASOURCES:
            raise ConfigError(f"[main] datasources: unknown datasource {ds!r} "
                              f"(known: {', '.join(sorted(DATASOURCES))})")
    url = cfg.get("main", "metadata_url").strip()
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"[main] metadata_url = {url!r}: expected an http:// URL")
