"""#cloud-config locale (and locale_configfile), once per instance, in the final
stage (generating a locale takes seconds).

Debian and Ubuntu: the locale is enabled in /etc/locale.gen (the line from
/usr/share/i18n/SUPPORTED, so `ja_JP.utf8` finds `ja_JP.UTF-8 UTF-8`),
locale-gen builds it, and /etc/default/locale gets LANG=.  An image without
locale-gen (no `locales` package) cannot generate one: the step fails with
that reason and leaves LANG as it was (C, C.UTF-8 and POSIX need nothing).
Other distros: /etc/locale.conf LANG= (their langpacks hold the locales).
"""


from ..system import CommandFailed
from . import PER_INSTANCE, Skip, asked_for

FREQUENCY = PER_INSTANCE
BUILTIN = ("C", "C.UTF-8", "C.utf8", "POSIX")


def pending(ctx):
    return bool(ctx.cloud_config.get("locale"))


def run(ctx):
    name = asked_for(ctx, "locale")
    system = ctx.system
    debian = system.exists("/etc/debian_version")
    conf = ctx.cloud_config.get("locale_configfile") or (
        "/etc/default/locale" if debian else "/etc/locale.conf")
    changes = []
    if debian and name not in BUILTIN:
        changes += _generate(ctx, name)
    text = system.read_text(conf, default="")
    lines = [ln for ln in text.splitlines() if not ln.startswith("LANG=")]
    new = "\n".join([f"LANG={name}"] + lines) + "\n"
    if new != text:
        system.write_file(conf, new, mode=0o644)
        changes.append(f"LANG={name} in {conf}")
    if not changes:
        raise Skip(f"the locale is already {name}")
    return changes


def _norm(name):
    return name.lower().replace("utf-8", "utf8")


def _generate(ctx, name):
    system = ctx.system
    supported = system.read_text("/usr/share/i18n/SUPPORTED", default="")
    line = next((ln.strip() for ln in supported.splitlines()
                 if ln.split() and _norm(ln.split()[0]) == _norm(name)), None)
    if not system.exists("/usr/sbin/locale-gen") or not supported:
        raise RuntimeError(f"cannot generate locale {name}: this image has no locale-gen "
                           "(the locales package); LANG is unchanged")
    if line is None:
        raise RuntimeError(f"locale {name} is not in /usr/share/i18n/SUPPORTED; "
                           "LANG is unchanged")
    gen = system.read_text("/etc/locale.gen", default="")
    enabled = [ln.strip() for ln in gen.splitlines() if not ln.lstrip().startswith("#")]
    changes = []
    if line not in enabled:
        system.write_file("/etc/locale.gen", gen + ("" if gen.endswith("\n") or not gen
                                                    else "\n") + line + "\n")
        changes.append(f"enabled {line} in /etc/locale.gen")
    argv = ["locale-gen"] if system.live else ["chroot", system.root, "locale-gen"]
    try:
        system.run(argv, timeout=600, check=True)
    except CommandFailed as e:
        raise RuntimeError(f"cannot generate locale {name}: {e}") from None
    changes.append(f"generated {line.split()[0]}")
    return changes
