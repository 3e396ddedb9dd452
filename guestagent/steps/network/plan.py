"""What a renderer produces: files to write, and files to move out of the way.

A plan is glean's file map plus the image's own files the agent replaces:
every path is absolute inside the root; nothing is written until `apply`.
"""

from ...metadata import netconfig as nc

HEADER = ("Written by guestagent from the instance's network_data.json; "
          "replaced when a new instance boots from this disk.")
# what every file the agent writes starts with, whichever document it came from
MARK = "Written by guestagent from the instance's "


def header_for(source):
    """HEADER naming ``source`` (network_data.json, network-config v1 or v2)."""
    return HEADER.replace(nc.NETWORK_DATA, source)


BOND_OPTIONS = ("miimon", "xmit_hash_policy", "lacp_rate")  # the ones a bond may carry


def bond_option_lines(it, formats):
    """The bond options the metadata gives, one line each in a stack's words
    and in a fixed order: ``formats`` maps each of BOND_OPTIONS to a format
    string that takes the value."""
    return [formats[key].format(it.bond_options[key])
            for key in BOND_OPTIONS if key in it.bond_options]


class Plan:
    def __init__(self, stack):
        self.stack = stack
        self.files = {}        # path -> (text, mode, what it configures)
        self.move_aside = []   # paths of the image's files this plan replaces
        self.summary = {}      # interface name -> what it gets

    def add(self, path, text, mode=0o644, what=""):
        self.files[path] = (text, mode, what)

    def retitle(self, source):
        """Name ``source`` in the files' headers instead of network_data.json."""
        if source == nc.NETWORK_DATA:
            return
        for path, (text, mode, what) in self.files.items():
            self.files[path] = (text.replace(HEADER, header_for(source), 1), mode, what)

    def replace(self, path):
        if path not in self.move_aside:
            self.move_aside.append(path)

    def __repr__(self):
        return f"Plan({self.stack}, {sorted(self.files)}, aside={self.move_aside})"

    def described(self):
        return "; ".join(f"{name}: {what}" for name, what in self.summary.items())
