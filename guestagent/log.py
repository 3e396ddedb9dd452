"""Logging: console (journal via stdout/stderr) and /var/log/guestagent.log.

Lines are plain sentences an operator can read in `nova console-log`.  A
filter scrubs every secret value the metadata carried, as a second line of
defence: the code never formats secrets into messages in the first place.

Every line is escaped before any handler sees it: metadata strings (an
instance id, a host name, a key comment) may hold CR, LF or terminal escape
sequences, and one such value must not be able to print a line of its own,
such as a forged host key fingerprint block, on the console, in the journal
or in the log file.  Control characters, Unicode line separators and lone
surrogates become backslash escapes; a message is always one line.

The file gets the agent's own debug lines always; the libraries' (urllib3's
connection lines, pyroute2's netlink dumps) only with --verbose: they are
for someone debugging, not for the record of every boot.
"""

import logging
import os
import re
import sys

_secrets = set()
REDACTED = "<redacted>"
OWN_LOGGER = "guestagent"
_verbose = False
# This process's WARNING lines (scrubbed and escaped), for the run's status:
# `guestagent status --wait` exits 2 (done, with a recoverable problem) on them
_warnings = []
MAX_WARNINGS = 50


# C0 (tab aside), DEL, C1, the Unicode line and paragraph separators, the
# bidirectional overrides that can reorder what a terminal shows, and lone
# surrogates (which cannot even be encoded for the console).
_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e"
                     "\u2066-\u2069\ud800-\udfff]")


def escape(text):
    """``text`` with every character that could start a line or move the
    cursor written as a backslash escape (``\\n``, ``\\x1b``, ``\\ud800``)."""
    if not isinstance(text, str):
        text = str(text)
    return _UNSAFE.sub(_escape_one, text)


def _escape_one(m):
    c = m.group()
    return {"\n": "\\n", "\r": "\\r"}.get(c) or (
        f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")


class _Scrub(logging.Filter):
    """Redact secrets and escape the message: runs once per record, before
    every handler (installed on the root logger's handlers and idempotent)."""

    def filter(self, record):
        if getattr(record, "_guestagent_clean", False):
            return True
        msg = record.getMessage()
        for s in _secrets:
            if s in msg:
                msg = msg.replace(s, REDACTED)
        record.msg, record.args = escape(msg), None
        if record.exc_info and not record.exc_text:
            # a traceback keeps its lines; what an exception message carries
            # (a metadata value) does not get to start lines of its own
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = "\n".join(escape(line) for line in text.split("\n"))
        record._guestagent_clean = True
        return True


class _OwnDetailOnly(logging.Filter):
    """Below WARNING, only the agent's own records (unless --verbose)."""

    def filter(self, record):
        if _verbose or record.levelno >= logging.WARNING:
            return True
        return record.name == OWN_LOGGER or record.name.startswith(OWN_LOGGER + ".")


class _CollectWarnings(logging.Handler):
    def emit(self, record):
        if record.levelno == logging.WARNING and len(_warnings) < MAX_WARNINGS:
            _warnings.append(record.getMessage())


def warnings_mark():
    """Where this process's warnings stand now (for `warnings_since`)."""
    return len(_warnings)


def warnings_since(mark):
    """The warnings logged since ``mark`` (at most MAX_WARNINGS in all)."""
    return list(_warnings[mark:])


def shown(value, limit=64):
    """A safe, bounded rendering of an untrusted value for a log line."""
    if isinstance(value, str):
        return ascii(value[:limit]) + ("..." if len(value) > limit else "")
    text = ascii(value)
    return text[:limit] + ("..." if len(text) > limit else "")


def add_secrets(values):
    for v in values:
        if v and len(v) >= 4:
            _secrets.add(v)


def debug_asked(system):
    """``guestagent.debug`` on the kernel command line: the console (and so
    the journal and `nova console-log`) shows each step and command as it
    starts, for one boot, without changing the image."""
    return "guestagent.debug" in system.read_text("/proc/cmdline", default="").split()


def setup(verbose=False, quiet=False, debug_console=False):
    """``debug_console``: the console also shows the agent's own debug lines
    (the libraries' only with ``verbose``), as ``guestagent.debug`` on the
    kernel command line asks: which step and which command a boot was in."""
    global _verbose
    _verbose = verbose
    root = logging.getLogger()
    root.handlers[:] = []
    root.setLevel(logging.DEBUG)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.DEBUG if verbose or debug_console
                     else (logging.WARNING if quiet else logging.INFO))
    console.setFormatter(logging.Formatter("guestagent: %(message)s"))
    console.addFilter(_OwnDetailOnly())
    console.addFilter(_Scrub())
    root.addHandler(console)
    collect = _CollectWarnings(logging.WARNING)
    collect.addFilter(_Scrub())
    root.addHandler(collect)


class _FileHandler(logging.StreamHandler):
    """The log file, given up at its first failed write (a full disk): one
    line on the other handlers says so, instead of a traceback per record."""

    def __init__(self, stream, system, path):
        super().__init__(stream)
        self.system, self.path = system, path

    def emit(self, record):
        try:
            msg = self.format(record)
            self.stream.write(msg + self.terminator)
            self.stream.flush()
        except OSError as e:
            self._give_up(e)

    def _give_up(self, e):
        logging.getLogger().removeHandler(self)
        _files_given_up.append((self.system, self.path))
        try:
            self.stream.close()
        except OSError:
            pass  # the buffered line cannot reach the disk either
        from .system.disk_space import NO_SPACE_ERRNOS, NoSpaceError, mount_point
        if e.errno in NO_SPACE_ERRNOS:
            e = NoSpaceError("write", self.path, mount_point(self.system, self.path), e.errno)
        logging.getLogger(__name__).warning(
            "stopped writing the log file: %s; the rest of this run is logged on the "
            "console and in the journal only", e)


_files_given_up = []


def resume_file():
    """Write the log file again after it was given up (the root had no
    space, and growroot has made some)."""
    while _files_given_up:
        system, path = _files_given_up.pop()
        add_file(system, path)


def add_file(system, path, later=False):
    """Also log to ``path`` inside the root (0600: it may name users and hosts);
    ``later``: not before `resume_file` (the root is full and grows first).

    Opened through the System seam: a symlinked /var/log in an image tree
    resolves inside the root, and a FIFO or a link planted at the log's
    name is refused instead of followed or waited on.
    """
    if later:
        _files_given_up.append((system, path))
        return
    try:
        fd = system.open_append(path, mode=0o600)
        os.fchmod(fd, 0o600)
        stream = os.fdopen(fd, "a", encoding="utf-8", errors="backslashreplace")
    except OSError as e:
        logging.getLogger(__name__).warning(
            "not writing the log file %s: %s; this run is logged on the console and "
            "in the journal only", path, e.strerror or e)
        return
    handler = _FileHandler(stream, system, path)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_OwnDetailOnly())
    handler.addFilter(_Scrub())
    logging.getLogger().addHandler(handler)
