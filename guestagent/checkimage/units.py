"""Service state in an image: enabled, masked, and enabling without systemctl.

`systemctl enable` on an image tree is a set of symlinks: for each
``WantedBy=T`` of the unit's [Install] section, ``/etc/systemd/system/T.wants/
UNIT -> /path/of/UNIT``, and one more link for each ``Alias=``.  Making them
ourselves means nothing from the image (nor the host's systemctl, which would
act on the host's own units when used carelessly) ever runs.
"""

import errno
import os
import re

UNIT_DIRS = ("/etc/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system")
_LOCAL_DIR = "/etc/systemd/system"
_SYSV_RUNLEVELS = "2345"


def unit_path(image, unit):
    """Root path of the unit file (the first in systemd's search order), or None."""
    for d in UNIT_DIRS:
        p = f"{d}/{unit}"
        if image.is_file(p):
            return p
    return None


def unit_files(image, pattern):
    """Names of unit files matching ``pattern`` (a regex) in any unit dir."""
    rx = re.compile(pattern)
    names = set()
    for d in UNIT_DIRS:
        for name in image.listdir(d):
            target = image.link_target(f"{d}/{name}")
            if target and os.path.basename(target) != name:
                continue  # an Alias= link, not a unit of its own
            if rx.fullmatch(name) and image.is_file(f"{d}/{name}"):
                names.add(name)
    return sorted(names)


def install_section(image, unit):
    """{key: [values]} of the unit's [Install] section ({} when it has none)."""
    path = unit_path(image, unit)
    text = image.read(path, "") if path else ""
    out = {}
    section = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        if section != "Install":
            continue
        key, sep, value = line.partition("=")
        if sep:
            out.setdefault(key.strip(), []).extend(value.split())
    return out


def is_masked(image, unit):
    target = image.link_target(f"{_LOCAL_DIR}/{unit}")
    if target == "/dev/null":
        return True
    host = image.resolve(f"{_LOCAL_DIR}/{unit}")
    return host is not None and os.path.isfile(host) and os.path.getsize(host) == 0


def enabled_links(image, unit):
    """Root paths of the .wants/.requires links that enable ``unit``."""
    found = []
    for d in UNIT_DIRS:
        for sub in image.listdir(d):
            if sub.endswith((".wants", ".requires")) and image.lexists(f"{d}/{sub}/{unit}"):
                found.append(f"{d}/{sub}/{unit}")
    return found


def is_enabled(image, unit):
    return bool(enabled_links(image, unit)) and not is_masked(image, unit)


def enable(image, unit, _seen=None):
    """Make the links `systemctl enable` would; returns what was changed."""
    seen = _seen if _seen is not None else set()
    if unit in seen:
        return []
    seen.add(unit)
    path = unit_path(image, unit)
    if path is None:
        raise FileNotFoundError(errno.ENOENT, "no such unit file", unit)
    install = install_section(image, unit)
    changes = []
    for key, suffix in (("WantedBy", ".wants"), ("RequiredBy", ".requires")):
        for target in install.get(key, []):
            link = f"{_LOCAL_DIR}/{target}{suffix}/{unit}"
            if _symlink(image, path, link):
                changes.append(f"enabled {unit}: {link} -> {path}")
    for alias in install.get("Alias", []):
        link = f"{_LOCAL_DIR}/{alias}"
        if _symlink(image, path, link):
            changes.append(f"linked alias {link} -> {path}")
    for also in install.get("Also", []):
        if unit_path(image, also):
            changes.extend(enable(image, also, seen))
    return changes


def disable_hint(image, units):
    root = "" if image.live else f" --root={image.root}"
    return f"systemctl{root} disable {' '.join(units)}"


def enable_hint(image, units):
    root = "" if image.live else f" --root={image.root}"
    return f"systemctl{root} enable {' '.join(units)}"


def _symlink(image, target, link):
    """Create ``link -> target`` inside the root; False when it is already there.

    The parent is opened through System.open_dir, which refuses untrusted
    symlinks on the way, so the link cannot land outside the root.
    """
    parent, name = os.path.split(link)
    dfd = image.system.open_dir(parent, create=True)
    try:
        try:
            current = os.readlink(name, dir_fd=dfd)
        except FileNotFoundError:
            current = None
        except OSError as e:
            if e.errno == errno.EINVAL:  # a regular file of that name: leave it
                return False
            raise
        if current is not None:
            return False
        os.symlink(target, name, dir_fd=dfd)
        return True
    finally:
        os.close(dfd)


def sysv_enabled(image, names):
    """Names among ``names`` with an S link in /etc/rc[2-5].d (SysV init)."""
    found = []
    for name in names:
        for level in _SYSV_RUNLEVELS:
            if any(re.fullmatch(rf"S\d\d{re.escape(name)}", e)
                   for e in image.listdir(f"/etc/rc{level}.d")):
                found.append(name)
                break
    return found


def openrc_enabled(image, names):
    return [n for n in names
            if any(image.lexists(f"/etc/runlevels/{lvl}/{n}") for lvl in ("default", "boot"))]
