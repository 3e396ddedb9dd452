"""Boot checks: the kernel logs to the serial console, so `nova console-log` shows the boot.

The guide asks for ``console=tty0 console=ttyS0,115200n8`` set in
``GRUB_CMDLINE_LINUX_DEFAULT`` of /etc/default/grub (never grub.cfg by hand,
it is generated).  The last ``console=`` becomes /dev/console, where systemd
and the agent write, so ttyS0 must come last.
"""

import re
import shlex

from .finding import failed, passed, warned

DEFAULT_GRUB = "/etc/default/grub"
GRUB_D = "/etc/default/grub.d"
WANTED = ("console=tty0", "console=ttyS0,115200n8")
_GRUB_CFGS = ("/boot/grub/grub.cfg", "/boot/grub2/grub.cfg")
_LEGACY = ("/boot/grub/grub.conf", "/boot/grub/menu.lst", "/boot/extlinux/extlinux.conf",
           "/boot/syslinux/syslinux.cfg", "/etc/kernel/cmdline")
_VAR_LINE = re.compile(r"^\s*(GRUB_CMDLINE_LINUX(?:_DEFAULT)?)=(.*)$")


def _grub_files(image):
    files = [DEFAULT_GRUB] if image.is_file(DEFAULT_GRUB) else []
    files += [f"{GRUB_D}/{n}" for n in image.listdir(GRUB_D) if n.endswith(".cfg")]
    return files


def grub_defaults(image):
    """{var: value} after sourcing the grub defaults, and {var: file that set it last}."""
    values = {"GRUB_CMDLINE_LINUX": "", "GRUB_CMDLINE_LINUX_DEFAULT": ""}
    setter = {}
    for path in _grub_files(image):
        for line in image.read(path, "").splitlines():
            m = _VAR_LINE.match(line)
            if not m:
                continue
            name, raw = m.groups()
            try:
                words = shlex.split(raw, comments=True)
            except ValueError:
                words = raw.strip("\"'").split()
            value = " ".join(words)
            # GRUB_CMDLINE_LINUX_DEFAULT="$GRUB_CMDLINE_LINUX_DEFAULT ..." extends it
            value = re.sub(r"\$\{?(GRUB_CMDLINE_LINUX(?:_DEFAULT)?)\}?",
                           lambda v: values.get(v.group(1), ""), value).strip()
            values[name] = value
            setter[name] = path
    return values, setter


def _consoles(args):
    return [a for a in args.split() if a.startswith("console=")]


def _judge(args, where):
    """(status, detail) of a kernel command line."""
    consoles = _consoles(args)
    serial = [c for c in consoles if c.startswith("console=ttyS0")]
    missing = [w for w, ok in ((WANTED[0], "console=tty0" in consoles), (WANTED[1], serial))
               if not ok]
    if missing:
        return "fail", (f"{where} lacks {' '.join(missing)}: the boot log never reaches the "
                        "serial console, so `nova console-log` stays empty")
    if consoles[-1] != serial[-1]:
        return "warn", (f"{where} lists {consoles[-1]} after ttyS0: init and systemd write "
                        "to the last console=, so their messages miss the console log")
    return "pass", f"{where} has {' '.join(consoles)}"


def _regen_hint(image):
    cmd = "update-grub" if image.family == "debian" else "grub2-mkconfig -o /boot/grub2/grub.cfg"
    return cmd if image.live else f"chroot {image.root} {cmd}"


def check_serial_console(image):
    findings = []
    running = image.kernel_cmdline()
    if running is not None:
        status, detail = _judge(running, "the running kernel's command line (/proc/cmdline)")
        if status != "pass":
            findings.append((status, detail))
    if _grub_files(image):
        values, setter = grub_defaults(image)
        args = f"{values['GRUB_CMDLINE_LINUX']} {values['GRUB_CMDLINE_LINUX_DEFAULT']}"
        status, detail = _judge(args, "GRUB_CMDLINE_LINUX(_DEFAULT) in the grub defaults")
        fix = (f'set GRUB_CMDLINE_LINUX_DEFAULT="... {" ".join(WANTED)}" in '
               f"{setter.get('GRUB_CMDLINE_LINUX_DEFAULT', DEFAULT_GRUB)}, then regenerate "
               f"grub.cfg: {_regen_hint(image)}")
        repair = _add_console_args if status != "pass" else None
    else:
        legacy = [p for p in _LEGACY if image.is_file(p)]
        lines = [ln for p in legacy for ln in image.read(p, "").splitlines()
                 if re.match(r"\s*(kernel|linux|append|APPEND)\s", ln) or p.endswith("cmdline")]
        if legacy and lines:
            verdicts = [_judge(ln, f"a kernel line of {', '.join(legacy)}") for ln in lines]
            status, detail = max(verdicts, key=lambda v: ("pass", "warn", "fail").index(v[0]))
        elif legacy:
            status, detail = "fail", f"no kernel command line in {', '.join(legacy)}"
        else:
            status, detail = "warn", (f"no boot loader configuration ({DEFAULT_GRUB}, grub.conf, "
                                      "extlinux.conf, /etc/kernel/cmdline): if the image is "
                                      "booted with a separate kernel, pass the console there")
        fix = (f"add {' '.join(WANTED)} to the kernel command line (for a separate kernel: "
               "the image property os_command_line)")
        repair = None
    if status != "pass" or not findings:
        findings.append((status, detail))
    worst = max(findings, key=lambda f: ("pass", "warn", "fail").index(f[0]))[0]
    detail = "; ".join(d for _s, d in findings)
    if worst == "pass":
        return passed("serial-console", detail)
    if running is not None and any("running kernel" in d for _s, d in findings):
        fix += "; then reboot"
    make = failed if worst == "fail" else warned
    return make("serial-console", detail, fix, repair)


def _add_console_args(image):
    values, setter = grub_defaults(image)
    path = setter.get("GRUB_CMDLINE_LINUX_DEFAULT", DEFAULT_GRUB)
    text = image.read(path, "")
    lines = text.splitlines()

    def rewrite(line, add):
        name, raw = _VAR_LINE.match(line).groups()
        try:
            words = shlex.split(raw, comments=True)
        except ValueError:
            words = raw.strip("\"'").split()
        tokens = " ".join(words).split()
        kept = [t for t in tokens if t != "console=tty0" and not t.startswith("console=ttyS0")]
        return f'{name}="{" ".join(kept + (list(WANTED) if add else []))}"'

    changed = []
    idx = [i for i, ln in enumerate(lines) if _VAR_LINE.match(ln)
           and _VAR_LINE.match(ln).group(1) == "GRUB_CMDLINE_LINUX_DEFAULT"]
    if idx:
        lines[idx[-1]] = rewrite(lines[idx[-1]], True)
    else:
        lines.append(f'GRUB_CMDLINE_LINUX_DEFAULT="{" ".join(WANTED)}"')
    # console= in GRUB_CMDLINE_LINUX would come first and keep ttyS0 from being last
    for i, ln in enumerate(lines):
        m = _VAR_LINE.match(ln)
        if m and m.group(1) == "GRUB_CMDLINE_LINUX" and re.search(r"console=tty(0|S0)", ln):
            lines[i] = rewrite(ln, False)
            changed.append("moved the console= arguments out of GRUB_CMDLINE_LINUX")
    image.system.write_file(path, "\n".join(lines) + "\n")
    return ([f"added {' '.join(WANTED)} to GRUB_CMDLINE_LINUX_DEFAULT in {path}"] + changed
            + [f"grub.cfg must be regenerated for it to take effect: {_regen_hint(image)}"])


def _boot_entries(image):
    """(file, kernel line) of every generated boot entry (grub.cfg, BLS)."""
    out = []
    for cfg in _GRUB_CFGS:
        for ln in (image.read(cfg, "") or "").splitlines():
            if re.match(r"\s*linux(16|efi)?\s", ln):
                out.append((cfg, ln))
    entries = "/boot/loader/entries"
    env = image.read("/boot/grub2/grubenv", "") or ""
    kernelopts = re.search(r"^kernelopts=(.*)$", env, re.M)
    for n in image.listdir(entries):
        for ln in (image.read(f"{entries}/{n}", "") or "").splitlines():
            if ln.startswith("options"):
                if kernelopts:
                    ln = ln.replace("$kernelopts", kernelopts.group(1))
                out.append((f"{entries}/{n}", ln))
    return out


def check_grub_cfg_console(image):
    entries = _boot_entries(image)
    if not entries:
        return passed("boot-entries-console",
                      "not applicable: no generated grub.cfg or BLS entries in the image yet")
    stale = sorted({f for f, ln in entries if "console=ttyS0" not in ln})
    if not stale:
        return passed("boot-entries-console",
                      f"every boot entry passes console=ttyS0 ({len(entries)} checked)")
    return warned("boot-entries-console",
                  f"boot entries without console=ttyS0 in {', '.join(stale)}: they were "
                  "generated before the grub defaults were set",
                  f"regenerate them: {_regen_hint(image)}")


CHECKS = [check_serial_console, check_grub_cfg_console]
