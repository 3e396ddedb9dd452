"""Files injected through the config drive (``nova boot --file``), once per instance.

Only absolute, already-normalised paths are written: a relative path, a
'..' component, a NUL or control character, or a path that normalises to
something else is refused, and so is anything under /proc, /sys or /dev.
Writes go through `System.write_file`, which refuses a symlink in place of
the file and directories someone other than root could redirect.  Files are
owned by root with ``[files] mode`` (0644); missing parent directories are
made 0755.  The log names each path and size, never the content.
"""

import logging
import posixpath

from ..log import shown
from ..system import UnsafePathError
from . import PER_INSTANCE, Outcome, Skip

log = logging.getLogger(__name__)

FREQUENCY = PER_INSTANCE

FORBIDDEN_TREES = ("/proc", "/sys", "/dev")


class BadPath(ValueError):
    pass


def run(ctx):
    files = ctx.metadata.files
    if not files:
        raise Skip("the metadata has no injected files")
    mode = file_mode(ctx.config.get("files", "mode"))
    changes, failed = [], []
    for f in files:
        try:
            path = check_path(f.path)
        except BadPath as e:
            log.warning("refusing injected file %s: %s", shown(f.path, 200), e)
            continue
        try:
            ctx.system.write_file(path, f.content, mode=mode, uid=0, gid=0, dir_mode=0o755)
        except UnsafePathError as e:
            log.warning("refusing injected file %s: %s", path, e.strerror or e)
            continue
        except OSError as e:
            log.error("cannot write injected file %s: %s", path, e.strerror or e)
            failed.append(path)
            continue
        changes.append(f"wrote {path} ({len(f.content)} bytes, mode {mode:04o})")
    # Not marked done where one failed, so the next boot tries again; what was
    # written stays written (and is told beside the failure)
    problems = [f"could not write {len(failed)} injected file(s): {', '.join(failed)}; "
                f"wrote {len(changes)}"] if failed else []
    return Outcome(changes, problems, retry=True)


def check_path(path):
    """``path`` when it is safe to write as an injected file, else BadPath."""
    if not isinstance(path, str):
        raise BadPath(f"the path is a {type(path).__name__}, not a string")
    if "\0" in path:
        raise BadPath("the path contains a NUL byte")
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        raise BadPath("the path contains control characters")
    if not path.startswith("/"):
        raise BadPath("the path is not absolute")
    if ".." in path.split("/"):
        raise BadPath("the path contains a '..' component")
    if posixpath.normpath(path) != path or path.startswith("//"):
        raise BadPath(f"the path is not in normal form ({posixpath.normpath(path)!r})")
    if path == "/":
        raise BadPath("the path is the root directory")
    for tree in FORBIDDEN_TREES:
        if path == tree or path.startswith(tree + "/"):
            raise BadPath(f"the path is under {tree}, a kernel file system")
    return path


def file_mode(value):
    """``[files] mode`` as a number: octal like 0644, no set-id or sticky bits."""
    text = value.strip()
    try:
        mode = int(text[2:] if text.lower().startswith("0o") else text, 8)
    except ValueError:
        raise ValueError(f"[files] mode = {value!r}: expected an octal mode like 0644") \
            from None
    if not 0 <= mode <= 0o777:
        raise ValueError(f"[files] mode = {value!r}: only permission bits (0000 to 0777) "
                         "are allowed")
    return mode
