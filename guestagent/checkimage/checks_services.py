"""Service checks: SSH reachable with a key, no firewall, a first-boot agent, ACPI.

The guide: an SSH server installed and started at boot; the firewall off
(security groups do that job, and an in-guest firewall makes "cannot
connect" impossible to debug); public keys fetched from the metadata at boot
by cloud-init or an equivalent; and (Nova's soft reboot and stop are ACPI
power-button presses) something in the guest that acts on them.
"""

import fnmatch
import os
import re

from ..accounts.shadow import SHADOW, password_state
from ..accounts.shadow import entry as shadow_entry
from ..system.sshd_config import include_patterns, line_words
from . import units
from .finding import failed, passed, warned
from .tree import parse_shell_vars

SSH_UNITS = ("ssh.service", "sshd.service", "ssh.socket", "sshd.socket")
FIREWALL_UNITS = ("firewalld", "ufw", "iptables", "ip6tables", "nftables",
                  "netfilter-persistent", "shorewall")
AGENT_UNIT_RX = r"guestagent[-_.@a-zA-Z0-9]*\.(service|socket|timer|target)"
CLOUD_INIT_DISABLED = "/etc/cloud/cloud-init.disabled"


def _service_state(image, names):
    """Which of ``names`` (without .service) start at boot, by whatever init runs."""
    if image.uses_systemd():
        found = []
        for n in names:
            unit = n if "." in n else f"{n}.service"
            if units.is_enabled(image, unit):
                found.append(unit)
            elif "." not in n and not units.unit_path(image, unit) \
                    and units.sysv_enabled(image, [n]):
                found.append(f"{n} (init script)")  # systemd-sysv-generator starts it
        return found
    bare = [n.split(".")[0] for n in names]
    return units.sysv_enabled(image, bare) + units.openrc_enabled(image, bare)


def check_ssh_installed(image):
    prog = image.program("sshd") or image.program("dropbear")
    if prog:
        return passed("ssh-server-installed", f"SSH server in the image: {prog}")
    return failed("ssh-server-installed",
                  "no SSH server (sshd) in the image: nobody can log in to an instance",
                  f"install it: {image.install_cmd('sshd')}")


def check_ssh_enabled(image):
    running = _service_state(image, list(SSH_UNITS) + ["dropbear"])
    masked = [u for u in SSH_UNITS if units.is_masked(image, u)]
    if running and not masked:
        return passed("ssh-server-enabled", f"SSH starts at boot ({', '.join(running)})")
    if masked:
        return failed("ssh-server-enabled", f"{', '.join(masked)} masked (-> /dev/null)",
                      f"unmask: {units.enable_hint(image, masked).replace('enable', 'unmask')}")
    unit = next((u for u in ("ssh.service", "sshd.service") if units.unit_path(image, u)), None)
    if unit and image.uses_systemd():
        return failed("ssh-server-enabled", f"{unit} is installed but not enabled",
                      f"{units.enable_hint(image, [unit])}",
                      repair=lambda img: units.enable(img, unit))
    sysv = [n for n in ("ssh", "sshd") if image.is_file(f"/etc/init.d/{n}")]
    if sysv:
        return failed("ssh-server-enabled", f"/etc/init.d/{sysv[0]} has no start link",
                      f"update-rc.d {sysv[0]} defaults (or chkconfig {sysv[0]} on)")
    return failed("ssh-server-enabled", "no SSH service unit or init script found",
                  f"install openssh-server: {image.install_cmd('sshd')}")


def sshd_settings(image):
    """The effective global sshd settings: first value wins, Includes expanded;
    each line split as the agent's passwords step splits it (as sshd does)."""
    settings = {}

    def read(path, depth):
        if depth > 8:
            return
        for line in (image.read(path, "") or "").splitlines():
            words = line_words(line)
            if len(words) < 2:
                continue
            key, arguments = words[0], words[1:]
            if key == "match":
                return "match"
            if key == "include":
                for pattern in include_patterns(arguments):
                    folder, name = os.path.split(pattern)
                    for n in fnmatch.filter(image.listdir(folder), name):
                        if read(f"{folder}/{n}", depth + 1) == "match":
                            return "match"
                continue
            settings.setdefault(key, " ".join(arguments))

    read("/etc/ssh/sshd_config", 0)
    return settings


def check_ssh_key_login(image):
    if not image.is_file("/etc/ssh/sshd_config"):
        return passed("ssh-key-login", "no /etc/ssh/sshd_config: sshd's defaults accept keys")
    s = sshd_settings(image)
    if s.get("pubkeyauthentication", "yes").lower() == "no":
        return failed("ssh-key-login", "PubkeyAuthentication no in sshd_config: the key pair "
                      "given at boot cannot log in",
                      "set PubkeyAuthentication yes in /etc/ssh/sshd_config")
    files = s.get("authorizedkeysfile", ".ssh/authorized_keys .ssh/authorized_keys2").split()
    if not any(f in (".ssh/authorized_keys", "%h/.ssh/authorized_keys") for f in files):
        return failed("ssh-key-login",
                      f"AuthorizedKeysFile {' '.join(files)}: sshd does not read "
                      "~/.ssh/authorized_keys, where the boot-time keys go",
                      "add .ssh/authorized_keys to AuthorizedKeysFile in /etc/ssh/sshd_config")
    root_login = s.get("permitrootlogin", "prohibit-password").lower()
    password = s.get("passwordauthentication", "yes").lower()
    if root_login == "yes" and password != "no":
        return warned("ssh-key-login",
                      "PermitRootLogin yes with password logins on: every instance accepts "
                      "root passwords over SSH",
                      "set PermitRootLogin prohibit-password (or no) and "
                      "PasswordAuthentication no in /etc/ssh/sshd_config")
    return passed("ssh-key-login", f"public key logins on (PermitRootLogin {root_login}, "
                                   f"PasswordAuthentication {password})")


def check_root_password(image):
    text = image.read(SHADOW, None)
    if text is None:
        return passed("root-password", "no /etc/shadow in the image")
    fields = shadow_entry(text, "root")
    if fields is None:
        return passed("root-password", "no root entry in /etc/shadow")
    state = password_state(fields[1])
    if state == "none":
        return failed("root-password", "root has an empty password in /etc/shadow",
                      "lock it: passwd -l root (or usermod -R ROOT -L root)")
    if state == "locked":
        return passed("root-password", "root's password is locked")
    return warned("root-password",
                  "root has a password set: every instance of the image shares it",
                  "lock it (keys and the cloud user's sudo suffice): "
                  f"usermod{'' if image.live else f' -R {image.root}'} -L root")


def check_firewall(image):
    on = _service_state(image, FIREWALL_UNITS)
    ufw_conf = parse_shell_vars(image.read("/etc/ufw/ufw.conf", "") or "")
    if any(u.startswith("ufw") for u in on) and ufw_conf.get("ENABLED", "no").lower() != "yes":
        on = [u for u in on if not u.startswith("ufw")]  # the unit runs, but ufw stays off
    if ufw_conf.get("ENABLED", "").lower() == "yes" and not any(u.startswith("ufw") for u in on):
        on.append("ufw (ENABLED=yes in /etc/ufw/ufw.conf)")
    if not on:
        return passed("firewall-disabled", "no firewall service starts at boot")
    names = [u.split(" ")[0] for u in on]
    fix = (f"{units.disable_hint(image, names)}" if image.uses_systemd()
           else "remove the S links of " + ", ".join(names) + " from /etc/rc?.d")
    if any(u.startswith("ufw") for u in on):
        fix += "; set ENABLED=no in /etc/ufw/ufw.conf"
    return failed("firewall-disabled",
                  f"firewall enabled: {', '.join(on)}: use security groups instead, an "
                  "in-guest firewall makes unreachable instances hard to debug",
                  fix + " (not done by --fix: it changes the image's security on purpose)")


def agent_units(image):
    return [u for u in units.unit_files(image, AGENT_UNIT_RX) if not u.endswith("@.service")]


def check_agent_enabled(image):
    off = _agent_switched_off(image)
    if off:
        return failed("agent-enabled", f"guestagent is switched off: {off}",
                      f"remove it if the image should run guestagent ({off.split(' ')[0]})")
    if image.uses_systemd():
        found = agent_units(image)
        if not found:
            return failed("agent-enabled",
                          "guestagent's systemd units are not in the image: nothing fetches "
                          "the SSH keys or runs user-data at boot",
                          "install the guestagent package into the image "
                          "(apt install ./guestagent_*.deb, dnf install ./guestagent-*.rpm)")
        wanted = [u for u in found if units.install_section(image, u)]
        off = [u for u in wanted if not units.is_enabled(image, u)]
        if off:
            return failed("agent-enabled", f"not enabled: {', '.join(off)}",
                          units.enable_hint(image, off),
                          repair=lambda img: [c for u in off for c in units.enable(img, u)])
        return passed("agent-enabled", f"enabled: {', '.join(wanted or found)}")
    if _sysv_agent(image):
        return passed("agent-enabled", _sysv_agent(image))
    return failed("agent-enabled",
                  "no systemd in the image, and neither /etc/rc.local nor an enabled "
                  "/etc/init.d/guestagent starts guestagent",
                  "install the package's rc.local snippet or init script "
                  "(update-rc.d guestagent defaults)")


def _agent_switched_off(image):
    """The agent's own off switches (off_switches.disabled_reason), as baked into the image."""
    if image.lexists("/etc/guestagent/disabled"):
        return "/etc/guestagent/disabled exists"
    if "guestagent=disabled" in _grub_args(image):
        return "guestagent=disabled in the grub defaults' kernel command line"
    return ""


def _sysv_agent(image):
    if units.sysv_enabled(image, ["guestagent"]) or units.openrc_enabled(image, ["guestagent"]):
        return "the guestagent init script starts at boot"
    text = image.read("/etc/rc.local", "") or ""
    host = image.resolve("/etc/rc.local")
    if host and os.access(host, os.X_OK) and re.search(r"^[^#\n]*\bguestagent\b", text, re.M):
        return "/etc/rc.local runs guestagent"
    return ""


def check_cloud_init(image):
    prog = image.program("cloud-init")
    if not prog:
        return passed("cloud-init-disabled", "cloud-init is not installed")
    if image.lexists(CLOUD_INIT_DISABLED):
        return passed("cloud-init-disabled", f"cloud-init is installed but {CLOUD_INIT_DISABLED} "
                                             "turns it off")
    cmdline = " ".join(_grub_args(image)) + " " + (image.kernel_cmdline() or "")
    if "cloud-init=disabled" in cmdline.split():
        return passed("cloud-init-disabled", "cloud-init=disabled on the kernel command line")
    agent = agent_units(image) or _sysv_agent(image)
    fix = f"touch {CLOUD_INIT_DISABLED} (or remove cloud-init)"
    if not agent:
        return failed("cloud-init-disabled",
                      f"cloud-init ({prog}) is enabled; guestagent stands aside while it is "
                      "(and is not installed either)", fix + " once guestagent is installed")
    return failed("cloud-init-disabled",
                  f"cloud-init ({prog}) is enabled: guestagent stands aside while it is, and "
                  "the two would fight over first boot",
                  fix, repair=_disable_cloud_init)


def _disable_cloud_init(image):
    image.system.write_file(CLOUD_INIT_DISABLED,
                            "# guestagent check-image --fix: guestagent owns first boot\n")
    return [f"created {CLOUD_INIT_DISABLED}: cloud-init stays off, guestagent owns first boot"]


def _grub_args(image):
    from .checks_boot import grub_defaults
    values, _setter = grub_defaults(image)
    return values["GRUB_CMDLINE_LINUX"].split() + values["GRUB_CMDLINE_LINUX_DEFAULT"].split()


def check_acpi(image):
    logind = any(image.is_file(p) for p in ("/lib/systemd/systemd-logind",
                                            "/usr/lib/systemd/systemd-logind"))
    if image.uses_systemd() and logind and not units.is_masked(image, "systemd-logind.service"):
        conf = image.read("/etc/systemd/logind.conf", "") or ""
        for n in image.listdir("/etc/systemd/logind.conf.d"):
            conf += "\n" + (image.read(f"/etc/systemd/logind.conf.d/{n}", "") or "")
        key = re.findall(r"^\s*HandlePowerKey\s*=\s*(\S+)", conf, re.M)
        if key and key[-1] not in ("poweroff", "reboot", "halt"):
            return warned("acpi-shutdown",
                          f"HandlePowerKey={key[-1]} in logind.conf: Nova's soft reboot/stop "
                          "(an ACPI power button press) is ignored until its timeout",
                          "set HandlePowerKey=poweroff in /etc/systemd/logind.conf")
        return passed("acpi-shutdown", "systemd-logind powers off on the ACPI power button")
    if _service_state(image, ["acpid"]):
        return passed("acpi-shutdown", "acpid handles the ACPI power button")
    return warned("acpi-shutdown",
                  "nothing handles the ACPI power button (no systemd-logind, no acpid): "
                  "Nova's soft reboot and stop wait out their timeout, then pull the plug",
                  f"install acpid: {image.install_cmd('acpid')}")


NOCLOUD_SEED_DIRS = ("/var/lib/cloud/seed/nocloud", "/var/lib/cloud/seed/nocloud-net")


def check_nocloud_seed(image):
    """A NoCloud seed left in the image (guestagent/datasources/nocloud.py
    reads it before any cloud's own metadata): every instance made from the
    image would be that one instance, with its keys and user-data."""
    left = [d for d in NOCLOUD_SEED_DIRS if image.is_file(f"{d}/meta-data")]
    if not left:
        return passed("nocloud-seed", "no NoCloud seed directory with meta-data in the image")
    return failed("nocloud-seed",
                  f"NoCloud seed left in the image: {', '.join(left)}: every instance made "
                  "from it would take that seed's instance-id, keys and user-data instead of "
                  "its cloud's",
                  "remove it unless the image is meant for that one machine: "
                  + "; ".join(f"rm -r {image.host(d)}" for d in left)
                  + " (not done by --fix: no file is deleted)")


CHECKS = [check_ssh_installed, check_ssh_enabled, check_ssh_key_login, check_root_password,
          check_firewall, check_agent_enabled, check_cloud_init, check_nocloud_seed,
          check_acpi]
