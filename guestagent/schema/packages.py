"""The #cloud-config keys the packages step reads, type-checked.

    packages                    list of: "name", [name, version], or a mapping
                                {apt: [...], snap: [...]} of such lists
    package_update              true/false   (old name: apt_update)
    package_upgrade             true/false   (old name: apt_upgrade)
    package_reboot_if_required  true/false   (old name: apt_reboot_if_required)

A snap's second field may be an option for `snap install` (`[juju, --edge]`,
`[lxd, --channel=5.15/stable]`, as cloud-init documents) or a channel.
`packages` becomes a list of {"name", "version", "via"}: ``via`` is "any"
(the image's package manager), "apt" or "snap".  Entries of the wrong shape
are dropped with a warning naming their position; the rest stay.
"""

import re

from .checks import Bad

_SNAP_OPTION = re.compile(r"^--[a-z][a-z-]*(=[A-Za-z0-9._/-]+)?$")

_VIAS = ("apt", "snap")


def boolean(value, notes=None):
    if not isinstance(value, bool):
        raise Bad("true or false")
    return value


def packages(value, notes):
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise Bad("a list of packages")
    out = []
    for n, item in enumerate(value, 1):
        where = f"#cloud-config packages entry {n}"
        if isinstance(item, dict):
            for via, names in item.items():
                if via not in _VIAS:
                    notes.append(f"{where}: {str(via)[:32]!r} is not apt or snap; ignored")
                    continue
                if not isinstance(names, list):
                    notes.append(f"{where}: {via} should be a list of packages; ignored")
                    continue
                for m, sub in enumerate(names, 1):
                    _one(sub, via, f"{where} ({via} entry {m})", out, notes)
        else:
            _one(item, "any", where, out, notes)
    return out


def _one(item, via, where, out, warnings):
    version = None
    if isinstance(item, list) and len(item) == 2 and isinstance(item[0], str) \
            and isinstance(item[1], (str, int, float)) and not isinstance(item[1], bool):
        item, version = item[0], str(item[1])
    elif isinstance(item, list) and len(item) == 1 and isinstance(item[0], str):
        item = item[0]
    if via == "snap" and version is not None and _SNAP_OPTION.match(version):
        pass  # cloud-init's [juju, --edge]: an option for snap install
    elif version is not None and not _plausible(version):
        item = None
    if not isinstance(item, str) or not _plausible(item):
        warnings.append(f"{where} is not a package name or a [name, version] pair; skipped")
        return
    out.append({"name": item.strip(), "version": version, "via": via})


def _plausible(text):
    """A package name or version: no spaces, no shell or option syntax."""
    text = text.strip()
    return (bool(text) and not text.startswith("-") and len(text) <= 200
            and all(c.isalnum() or c in "+-.:~_@/=*" for c in text))
