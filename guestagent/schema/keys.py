"""The #cloud-config keys guestagent knows: one table, one entry per key.

Steps read ``ctx.cloud_config`` and can trust it: only keys a step acts on
are there, each checked by its validator.  Every top-level key a user may
write gets exactly one entry in `KEYS`:

    "chpasswd": Acts("passwords", passwords.check_chpasswd),  # step + its validator
    "hostname": Acts("hostname", checks.string),              # a shared type check
    "network":  Ignored("..."),                               # ignored by design, said plainly
    "chef":     Unsupported("..."),                           # known, not done here, and why

The step is named, never imported: the table and its validators sit below
the steps (guestagent/userdata reads the table; the steps read the values
it let through).  Keys not in the table are reported as unsupported
(cloud-init acts on them, guestagent does not) or unknown (cloud-init does
not know them either: a typo?).
"""

from . import (
    apt_configure,
    checks,
    commands,
    disk_setup,
    final_message,
    growroot,
    hostkeys,
    hostname,
    keyboard,
    locale,
    mounts,
    ntp,
    packages,
    passwords,
    power_state,
    resolv_conf,
    scripts,
    snap,
    timezone,
    users,
    vendor_data,
    wireguard,
    write_files,
    yum_repos,
)

MERGE = "merge"  # merge_how, merge_type: parsed by the user-data reader (userdata/merging)


class Acts:
    """A step acts on the key; ``check`` validates it (a validator, or MERGE:
    the user-data reader parses it itself)."""

    def __init__(self, step, check, after=None, what=None):
        self.step = step  # None: the user-data reading itself acts on it
        self.check = check
        self.after = after  # (merged config, notes) -> None: cross-key checks
        self.what = what or "how the parts merge"


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
    "users":                 Acts("users", users.check_users),
    "user":                  Acts("users", users.check_user),
    "system_info":           Acts("users", users.check_system_info),
    "groups":                Acts("users", users.check_groups),
    "ssh_authorized_keys":   Acts("users", checks.str_list),
    "ssh_import_id":         Acts("users", users.check_import_ids),
    "disable_root":          Acts("users", users.check_disable_root),
    "disable_root_opts":     Acts("users", users.check_disable_root_opts),
    "password":              Acts("passwords", passwords.check_password),
    "chpasswd":              Acts("passwords", passwords.check_chpasswd),
    "ssh_pwauth":            Acts("passwords", passwords.check_ssh_pwauth),
    "hostname":              Acts("hostname", hostname.check_name),
    "fqdn":                  Acts("hostname", hostname.check_name),
    "preserve_hostname":     Acts("hostname", checks.cfg_bool),
    "prefer_fqdn_over_hostname": Acts("hostname", checks.boolean),
    "manage_etc_hosts":      Acts("hostname", hostname.check_manage_etc_hosts),
    "write_files":           Acts("write_files", write_files.check_write_files),
    "runcmd":                Acts("runcmd", commands.runcmd),
    "bootcmd":               Acts("bootcmd", commands.bootcmd),
    "manage_resolv_conf":    Acts("resolv_conf", checks.cfg_bool),
    "resolv_conf":           Acts("resolv_conf", resolv_conf.check_resolv_conf,
                                  after=resolv_conf.resolv_conf_needs_manage),
    "growpart":              Acts("growroot", growroot.check_growpart),
    "resize_rootfs":         Acts("growroot", growroot.check_resize_rootfs),
    "ssh_genkeytypes":       Acts("hostkeys", hostkeys.check_genkeytypes),
    "ssh_deletekeys":        Acts("hostkeys", checks.boolean),
    "final_message":         Acts("final_message", final_message.check_final_message),
    "output":                Acts("scripts", scripts.check_output),
    "vendor_data":           Acts(None, vendor_data.check_vendor_data,
                                  what="whether vendor data applies"),
    "timezone":              Acts("timezone", timezone.check_timezone),
    "disk_setup":            Acts("disk_setup", disk_setup.check_disk_setup),
    "fs_setup":              Acts("disk_setup", disk_setup.check_fs_setup),
    "mounts":                Acts("mounts", mounts.mounts),
    "mount_default_fields":  Acts("mounts", mounts.default_fields),
    "swap":                  Acts("mounts", mounts.swap),
    "locale":                Acts("locale", locale.check_locale),
    "locale_configfile":     Acts("locale", locale.check_locale_configfile),
    "keyboard":              Acts("keyboard", keyboard.check_keyboard),
    "ntp":                   Acts("ntp", ntp.check_ntp),
    "yum_repos":             Acts("yum_repos", yum_repos.check_yum_repos),
    "yum_repo_dir":          Acts("yum_repos", yum_repos.check_yum_repo_dir),
    "apt":                   Acts("apt_configure", apt_configure.apt),
    "apt_sources":           Acts("apt_configure", apt_configure.apt_sources),
    "apt_proxy":             Acts("apt_configure", checks.string),
    "apt_http_proxy":        Acts("apt_configure", checks.string),
    "apt_https_proxy":       Acts("apt_configure", checks.string),
    "apt_ftp_proxy":         Acts("apt_configure", checks.string),
    "apt_mirror":            Acts("apt_configure", checks.string),
    "apt_mirror_search":     Acts("apt_configure", apt_configure.string_list),
    "apt_mirror_search_dns": Acts("apt_configure", apt_configure.search_dns),
    "apt_preserve_sources_list": Acts("apt_configure", checks.boolean),
    "packages":              Acts("packages", packages.packages),
    "package_update":        Acts("packages", checks.cfg_bool),
    "package_upgrade":       Acts("packages", checks.cfg_bool),
    "package_reboot_if_required": Acts("packages", checks.cfg_bool),
    "apt_update":            Acts("packages", checks.cfg_bool),
    "apt_upgrade":           Acts("packages", checks.cfg_bool),
    "apt_reboot_if_required": Acts("packages", checks.cfg_bool),
    "power_state":           Acts("power_state", power_state.power_state),
    "wireguard":             Acts("wireguard", wireguard.check_wireguard),
    "snap":                  Acts("snap", snap.check_snap),
    "merge_how":             Acts(None, MERGE),
    "merge_type":            Acts(None, MERGE),
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


def entry(key):
    """The table's entry for ``key``: Acts, Ignored or Unsupported (never None)."""
    found = KEYS.get(key) if isinstance(key, str) else None
    if found is not None:
        return found
    if isinstance(key, str) and key in CLOUD_INIT_KEYS:
        return Unsupported("cloud-init acts on this key; guestagent does not (yet)")
    return Unsupported("neither guestagent nor cloud-init knows this key (a typo?)")
