"""What a renderer produces: files to write, and files to move out of the way.

A plan is glean's file map plus the image's own files the agent replaces:
every path is absolute inside the root; nothing is written until `apply`.
"""

HEADER = ("Written by guestagent from the instance's network_data.json; "
          "replaced when a new instance boots from this disk.")


class Plan:
    def __init__(self, stack):
        self.stack = stack
        self.files = {}        # path -> (text, mode, what it configures)
        self.move_aside = []   # paths of the image's files this plan replaces
        self.ours = []         # glob-like prefixes of files the agent owns: (dir, prefix)
        self.left_alone = []   # interface names the plan leaves as the image had them
        self.summary = {}      # interface name -> what it gets

    def add(self, path, text, mode=0o644, what=""):
        self.files[path] = (text, mode, what)

    def replace(self, path):
        if path not in self.move_aside:
            self.move_aside.append(path)

    def __repr__(self):
        return f"Plan({self.stack}, {sorted(self.files)}, aside={self.move_aside})"

    def described(self):
        return "; ".join(f"{name}: {what}" for name, what in self.summary.items())
