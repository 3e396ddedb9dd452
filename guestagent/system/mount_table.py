"""The live mount table, /proc/self/mountinfo, parsed in this one place.

Read by the growroot step (which device holds a mount point) and by
check-image (what / is on a running system).  mountinfo rather than
/proc/mounts: it also gives each mount's major:minor.
"""

import os

_ESCAPES = {"\\040": " ", "\\011": "\t", "\\012": "\n", "\\134": "\\"}


class Mount:
    """One line of /proc/self/mountinfo."""

    def __init__(self, mountpoint, major, minor, fstype, source, options):
        self.mountpoint = mountpoint
        self.major, self.minor = major, minor
        self.fstype = fstype
        self.source = source
        self.options = options  # per-mount and superblock options together

    @property
    def read_only(self):
        return "ro" in self.options

    def __repr__(self):
        return (f"<Mount {self.mountpoint} {self.fstype} {self.source} "
                f"{self.major}:{self.minor}>")


def unescape(field):
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    if "\\" not in field:
        return field
    for code, char in _ESCAPES.items():
        field = field.replace(code, char)
    return field


def parse_mountinfo(text):
    mounts = []
    for line in text.splitlines():
        fields = line.split(" ")
        try:
            sep = fields.index("-", 6)
            major, minor = (int(n) for n in fields[2].split(":"))
            fstype, source, superopts = fields[sep + 1], fields[sep + 2], fields[sep + 3]
        except (ValueError, IndexError):
            continue  # a line we do not understand is not ours to guess at
        options = set(fields[5].split(",")) | set(superopts.split(","))
        mounts.append(Mount(unescape(fields[4]), major, minor, fstype,
                            unescape(source), options))
    return mounts


def find_mount(mountpoint, mountinfo_path="/proc/self/mountinfo"):
    """The mount visible at ``mountpoint`` (the last one mounted there), or None."""
    with open(mountinfo_path, encoding="utf-8", errors="surrogateescape") as f:
        mounts = parse_mountinfo(f.read())
    want = os.path.normpath(mountpoint)
    found = None
    for m in mounts:
        if m.mountpoint == want:
            found = m
    return found
