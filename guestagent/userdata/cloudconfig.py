"""The #cloud-config keys guestagent knows: one table, one entry per key.

Steps read ``ctx.cloud_config`` and can trust it: only keys a step acts on
are there, each checked by its validator.  Every top-level key a user may
write gets exactly one entry in `KEYS`:

    "chpasswd": Acts("passwords", "check_chpasswd"),   # step + its validator
    "hostname": Acts("hostname", checks.string),       # a shared type check
    "network":  Ignored("..."),                        # ignored by design, said plainly
    "chef":     Unsupported("..."),                    # known, not done here, and why

A validator named by a string lives in the step's own module
(``guestagent.steps.<step>``), beside the code that acts on the key, and is
imported only when a document uses the key.  Keys not in the table are
reported as unsupported (cloud-init acts on them, guestagent does not) or
unknown (cloud-init does not know them either: a typo?).  The boot and
``guestagent check-userdata`` both go through `load_all`, so they cannot
disagree.  Nothing here raises.
"""

import importlib
import re

from . import checks
from .checks import IGNORED, INVALID, PROBLEMS, UNSUPPORTED, Bad, Note, describe, named
from .merging import BadMerge, merge_part, parse
from .vendor import check_vendor_data

MAX_DEPTH = 50
_TOP_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]{0,63})\s*:")
_VALUE = re.compile(r"^\s*(?:-\s+)?(?:[^:#'\"]+:\s+)?([*&])")

# What check-userdata says about a key.
DO = "do"            # a step acts on it
PARTLY = "partly"    # a step acts on it, but some entries or fields are dropped (notes say which)


class Acts:
    """A step acts on the key; ``check`` validates it (a callable, or a name in the step)."""

    def __init__(self, step, check, after=None, what=None):
        self.step = step  # None: the user-data reading itself acts on it
        self.check = check
        self.after = after  # name in the step: (merged config, notes) -> None, cross-key checks
        self.what = what or "how the parts merge"

    def validator(self):
        if callable(self.check):
            return self.check
        return getattr(importlib.import_module(f"guestagent.steps.{self.step}"), self.check)


class Ignored:
    """Ignored by design: cloud-init ignores it in user-data too, or it changes nothing."""

    def __init__(self, why):
        self.why = why


class Unsupported:
    """A key cloud-init acts on that guestagent does not, and why."""

    def __init__(self, why):
        self.why = why


_NOT_USER_DATA = ("belongs to the datasource's metadata, not #cloud-config; cloud-init "
                  "ignores it in user-data too")

KEYS = {
    # key                    what acts on it
    "users":                 Acts("users", "check_users"),
    "user":                  Acts("users", "check_user"),
    "system_info":           Acts("users", "check_system_info"),
    "groups":                Acts("users", "check_groups"),
    "ssh_authorized_keys":   Acts("users", checks.str_list),
    "ssh_import_id":         Acts("users", "check_import_ids"),
    "disable_root":          Acts("users", "check_disable_root"),
    "disable_root_opts":     Acts("users", "check_disable_root_opts"),
    "password":              Acts("passwords", "check_password"),
    "chpasswd":              Acts("passwords", "check_chpasswd"),
    "ssh_pwauth":            Acts("passwords", "check_ssh_pwauth"),
    "hostname":              Acts("hostname", "check_name"),
    "fqdn":                  Acts("hostname", "check_name"),
    "preserve_hostname":     Acts("hostname", checks.cfg_bool),
    "prefer_fqdn_over_hostname": Acts("hostname", checks.boolean),
    "manage_etc_hosts":      Acts("hostname", "check_manage_etc_hosts"),
    "write_files":           Acts("write_files", "check_write_files"),
    "runcmd":                Acts("runcmd", checks.commands),
    "bootcmd":               Acts("bootcmd", checks.commands),
    "manage_resolv_conf":    Acts("resolv_conf", checks.cfg_bool),
    "resolv_conf":           Acts("resolv_conf", "check_resolv_conf",
                                  after="resolv_conf_needs_manage"),
    "growpart":              Acts("growroot", "check_growpart"),
    "resize_rootfs":         Acts("growroot", "check_resize_rootfs"),
    "ssh_genkeytypes":       Acts("hostkeys", "check_genkeytypes"),
    "ssh_deletekeys":        Acts("hostkeys", checks.boolean),
    "final_message":         Acts("final_message", "check_final_message"),
    "output":                Acts("scripts", "check_output"),
    "vendor_data":           Acts(None, check_vendor_data, what="whether vendor data applies"),
    "timezone":              Acts("timezone", "check_timezone"),
    "disk_setup":            Acts("disk_setup", "check_disk_setup"),
    "fs_setup":              Acts("disk_setup", "check_fs_setup"),
    "mounts":                Acts("mounts", "check_mounts"),
    "mount_default_fields":  Acts("mounts", "check_mount_default_fields"),
    "swap":                  Acts("mounts", "check_swap"),
    "locale":                Acts("locale", "check_locale"),
    "locale_configfile":     Acts("locale", "check_locale_configfile"),
    "keyboard":              Acts("keyboard", "check_keyboard"),
    "ntp":                   Acts("ntp", "check_ntp"),
    "yum_repos":             Acts("yum_repos", "check_yum_repos"),
    "yum_repo_dir":          Acts("yum_repos", "check_yum_repo_dir"),
    "apt":                   Acts("apt_configure", "check_apt"),
    "apt_sources":           Acts("apt_configure", "check_apt_sources"),
    "apt_proxy":             Acts("apt_configure", checks.string),
    "apt_http_proxy":        Acts("apt_configure", checks.string),
    "apt_https_proxy":       Acts("apt_configure", checks.string),
    "apt_ftp_proxy":         Acts("apt_configure", checks.string),
    "apt_mirror":            Acts("apt_configure", checks.string),
    "apt_mirror_search":     Acts("apt_configure", "check_apt_mirror_search"),
    "apt_mirror_search_dns": Acts("apt_configure", "check_apt_mirror_search_dns"),
    "apt_preserve_sources_list": Acts("apt_configure", checks.boolean),
    "packages":              Acts("packages", "check_packages"),
    "package_update":        Acts("packages", checks.cfg_bool),
    "package_upgrade":       Acts("packages", checks.cfg_bool),
    "package_reboot_if_required": Acts("packages", checks.cfg_bool),
    "apt_update":            Acts("packages", checks.cfg_bool),
    "apt_upgrade":           Acts("packages", checks.cfg_bool),
    "apt_reboot_if_required": Acts("packages", checks.cfg_bool),
    "power_state":           Acts("power_state", "check_power_state"),
    "wireguard":             Acts("wireguard", "check_wireguard"),
    "snap":                  Acts("snap", "check_snap"),
    "merge_how":             Acts(None, "merge"),
    "merge_type":            Acts(None, "merge"),
    # ignored by design
    "network":               Ignored("network configuration comes from the metadata "
                                     "(network_data.json, or a NoCloud or Hetzner "
                                     "network-config); cloud-init ignores it in "
                                     "user-data too"),
    "datasource":            Ignored("chooses cloud-init's datasource; guestagent's are set "
                                     "in [main] datasources, and cloud-init ignores it in "
                                     "user-data too"),
    "instance-id":           Ignored("the instance id " + _NOT_USER_DATA),
    "local-hostname":        Ignored("the host name " + _NOT_USER_DATA
                                     + " (use hostname: in #cloud-config)"),
    "autoinstall":           Ignored("Ubuntu's live-server installer (subiquity) reads it "
                                     "while it installs; on an installed system cloud-init "
                                     "skips it too"),
    # known, not done, and why
    "byobu_by_default":      Unsupported("byobu is an interactive terminal setting: install "
                                         "byobu and run byobu-enable from runcmd"),
    "ssh_keys":              Unsupported("host keys handed in through user-data are not "
                                         "installed: each instance gets its own"),
}

# The top-level keys cloud-init acts on (its schema-cloud-config-v1.json, plus the
# legacy apt_* keys cc_apt_configure still converts).  A key outside both this
# set and KEYS is unknown to both programs: most likely a typo.
CLOUD_INIT_KEYS = frozenset("""
allow_public_ssh_keys ansible apk_repos apt apt_pipelining apt_reboot_if_required
apt_update apt_upgrade authkey_hash autoinstall bootcmd byobu_by_default ca-certs
ca_certs chef chpasswd cloud_config_modules cloud_final_modules cloud_init_modules
create_hostname_file device_aliases disable_ec2_metadata disable_root disable_root_opts
disk_setup drivers fan final_message fqdn fs_setup groups growpart grub-dpkg grub_dpkg
hostname keyboard landscape launch-index locale locale_configfile lxd manage_etc_hosts
manage_resolv_conf mcollective merge_how merge_type migrate mount_default_fields mounts
no_ssh_fingerprints ntp output package_reboot_if_required package_update package_upgrade
packages password phone_home power_state prefer_fqdn_over_hostname preserve_hostname
puppet random_seed reporting resize_rootfs resolv_conf rh_subscription rpi rsyslog
runcmd salt_minion snap spacewalk ssh ssh_authorized_keys ssh_deletekeys
ssh_fp_console_blacklist ssh_genkeytypes ssh_import_id ssh_key_console_blacklist
ssh_keys ssh_publish_hostkeys ssh_pwauth ssh_quiet_keygen swap system_info timezone
ubuntu_advantage ubuntu_pro updates user users vendor_data version wireguard write_files
yum_repo_dir yum_repos zypper
apt_sources apt_proxy apt_http_proxy apt_https_proxy apt_ftp_proxy apt_mirror
apt_mirror_search apt_mirror_search_dns apt_preserve_sources_list add_apt_repo_match
""".split())


class KeyReport:
    """What happens to one top-level key of one part (for check-userdata)."""

    def __init__(self, part, key, verdict, step=None, why="", notes=(), what=None):
        self.part = part
        self.key = key
        self.verdict = verdict
        self.step = step
        self.why = why
        self.notes = list(notes)
        self.what = what  # for a key the reading itself acts on (merge_how, vendor_data)

    def as_dict(self):
        return {"part": self.part, "key": self.key, "verdict": self.verdict,
                "step": self.step, "why": self.why, "notes": [str(n) for n in self.notes]}


def entry(key):
    """The table's entry for ``key``: Acts, Ignored or Unsupported (never None)."""
    found = KEYS.get(key) if isinstance(key, str) else None
    if found is not None:
        return found
    if isinstance(key, str) and key in CLOUD_INIT_KEYS:
        return Unsupported("cloud-init acts on this key; guestagent does not (yet)")
    return Unsupported("neither guestagent nor cloud-init knows this key (a typo?)")


def load_all(docs, warnings, reports=None):
    """Parse each part and merge them into one checked dict.

    ``docs``: [(part index, YAML text)] or [(part index, YAML text, Merge-Type
    header)].  Problems go to ``warnings`` as `Note`s; ``reports``, when given,
    gets one `KeyReport` per key per part.
    """
    merged = {}
    unsupported = []
    acted = {}  # key -> Acts, for the cross-key checks after merging
    for doc in docs:
        index, text = doc[0], doc[1]
        header_how = doc[2] if len(doc) > 2 else None
        where = "#cloud-config" if len(docs) == 1 else f"#cloud-config (part {index})"
        data = _load_yaml(text, where, warnings, index)
        if data is None:
            continue
        if not isinstance(data, dict):
            warnings.append(Note(f"{where} is {describe(data)}, not a mapping of keys; "
                                 "ignored", INVALID, part=index))
            continue
        part, how = {}, None
        for key, value in data.items():
            report = _check_key(index, where, key, value, part, warnings)
            if reports is not None:
                reports.append(report)
            if report.verdict == UNSUPPORTED:
                unsupported.append(str(key)[:64])
            if report.key in part and isinstance(KEYS.get(report.key), Acts):
                acted[report.key] = KEYS[report.key]
        for key in ("merge_how", "merge_type"):
            if key in part:
                how = part.pop(key)
                break
        if how is None and header_how:
            try:
                how = parse(header_how)
            except BadMerge as e:
                warnings.append(Note(f"{where}: Merge-Type header: {e}; ignored", INVALID,
                                     key="merge_how", part=index))
        merge_part(merged, part, how, warnings, where)
    for key, act in acted.items():
        if act.after and key in merged:
            getattr(importlib.import_module(f"guestagent.steps.{act.step}"), act.after)(
                merged, warnings)
    unknown = [k for k in unsupported if k not in CLOUD_INIT_KEYS]
    known = [k for k in unsupported if k in CLOUD_INIT_KEYS]
    if known:
        warnings.append(Note("#cloud-config keys guestagent does not support, ignored: "
                             + named(known), UNSUPPORTED))
    if unknown:
        warnings.append(Note("#cloud-config keys neither guestagent nor cloud-init knows "
                             "(a typo?), ignored: " + named(unknown), UNSUPPORTED))
    return merged


def _check_key(index, where, key, value, part, warnings):
    """Check one key's value into ``part``; returns its KeyReport."""
    found = entry(key)
    name = str(key)[:64]
    if isinstance(found, Ignored):
        note = Note(f"{where} key {name!r} is ignored: {found.why}", IGNORED, key=name,
                    part=index)
        warnings.append(note)
        return KeyReport(index, name, IGNORED, why=found.why)
    if isinstance(found, Unsupported):
        return KeyReport(index, name, UNSUPPORTED, why=found.why)
    if value is None:  # "runcmd:" with nothing under it: nothing asked, nothing lost
        return KeyReport(index, name, DO, found.step, "empty: nothing to do",
                         what=found.what if found.step is None else None)
    notes = []
    try:
        if found.check == "merge":
            checked = parse(value)
        else:
            checked = found.validator()(value, key, notes)
    except (Bad, BadMerge) as e:
        expected = f"expected {e}, got {describe(value)}" if isinstance(e, Bad) else str(e)
        note = Note(f"#cloud-config key {name!r}: {expected}; ignored", INVALID, key=name,
                    part=index)
        warnings.append(note)
        return KeyReport(index, name, INVALID, found.step, expected, [note])
    for n in notes:
        if isinstance(n, Note):
            n.key, n.part = n.key or name, index
        else:
            n = Note(n, INVALID, key=name, part=index)
        warnings.append(n)
    part[key] = checked
    problems = [n for n in notes if checks.kind_of(n) in PROBLEMS]
    return KeyReport(index, name, PARTLY if problems else DO, found.step, notes=notes,
                     what=found.what if found.step is None else None)


def _load_yaml(text, where, warnings, index=None):
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
                    warnings.append(Note(f"{where} nests lists and mappings more than "
                                         f"{MAX_DEPTH} deep; ignored", INVALID, part=index))
                    return None
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                depth -= 1
        return yaml.load(text, Loader=loader)  # noqa: S506 -- a SafeLoader
    except yaml.MarkedYAMLError as e:
        # the problem and the place, never the text around it (user-data is secret)
        mark = e.problem_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        context = _yaml_error_context(text, mark.line) if mark else ""
        warnings.append(Note(f"{where} is not valid YAML ({e.problem or 'syntax error'}{at})"
                             f"{context}; ignored", INVALID, part=index))
    except Exception as e:
        warnings.append(Note(f"{where} cannot be read as YAML ({type(e).__name__}); ignored",
                             INVALID, part=index))
    return None


def _yaml_error_context(text, line):
    """', in key 'write_files'; line 12 holds template syntax (%{...}) ...' or ''.

    The top-level key the broken line belongs to, and whether that line (or
    the one before, where YAML often notices late) holds template syntax
    that was never rendered.  Key names and the kind of syntax only, never
    the text (user-data is secret).
    """
    lines = text.splitlines()
    said = []
    for ln in reversed(lines[:line + 1]):
        m = _TOP_KEY.match(ln)
        if m:
            said.append(f"in key {m.group(1)!r}")
            break
    for n in (line, line - 1):
        shape = checks.template_syntax(lines[n]) if 0 <= n < len(lines) else None
        if shape:
            said.append(f"line {n + 1} holds template syntax ({shape}): the template was "
                        "not rendered before it reached the instance")
            break
    else:
        value = _VALUE.match(lines[line]) if line < len(lines) else None
        if value and value.group(1) in "*&":
            said.append(f"the value on line {line + 1} starts with {value.group(1)!r}, which "
                        "YAML reads as an alias or anchor: quote the value")
    return "".join(f", {s}" for s in said)
