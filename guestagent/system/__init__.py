"""The one seam through which steps change the machine.

Every file a step reads or writes goes through `System` paths relative to a
root directory (``/`` on a real boot, a scratch tree under ``--root``):
guestagent/system/root_files.py, which finds them through guestagent/system/root_paths.py.
Every command goes through `System.run` (or `System.start`, for one that
runs on without us waiting): guestagent/system/commands.py.  Tests point the root
elsewhere.

Callers import the seam's errors from here, with `System`.
"""

from .commands import CommandFailed, CommandMissing, Commands, CommandTimedOut, output_tail
from .root_files import RootFiles
from .root_paths import UnsafePathError

__all__ = ["System", "CommandFailed", "CommandMissing", "CommandTimedOut", "UnsafePathError",
           "output_tail"]


class System(RootFiles, Commands):
    """Files under ``root`` and commands on the host: what steps touch."""

    def kernel_cmdline(self):
        """The kernel command line as this root sees it: /proc/cmdline inside
        the root (the running kernel's on a real boot; under ``--root`` the
        tree's own, so never the host's), '' when there is none or it cannot
        be read.  Every reader of the command line comes here."""
        try:
            return self.read_text("/proc/cmdline")
        except (OSError, ValueError):
            return ""
