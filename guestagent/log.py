"""Logging: console (journal via stdout/stderr) and /var/log/guestagent.log.

Lines are plain sentences an operator can read in `nova console-log`.  A
filter scrubs every secret value the metadata carried, as a second line of
defence: the code never formats secrets into messages in the first place.
"""

import logging
import sys

_secrets = set()
REDACTED = "<redacted>"


class _Scrub(logging.Filter):
    def filter(self, record):
        if _secrets:
            msg = record.getMessage()
            for s in _secrets:
                if s in msg:
                    msg = msg.replace(s, REDACTED)
            record.msg, record.args = msg, None
        return True


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


def setup(verbose=False, quiet=False):
    root = logging.getLogger()
    root.handlers[:] = []
    root.setLevel(logging.DEBUG)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.DEBUG if verbose else (logging.WARNING if quiet else logging.INFO))
    console.setFormatter(logging.Formatter("guestagent: %(message)s"))
    console.addFilter(_Scrub())
    root.addHandler(console)


def add_file(system, path):
    """Also log to ``path`` inside the root (0600: it may name users and hosts)."""
    try:
        system.append_file(path, b"", mode=0o600)
        handler = logging.FileHandler(system.path(path), encoding="utf-8")
    except OSError as e:
        logging.getLogger(__name__).warning("cannot write the log file %s: %s", path, e)
        return
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_Scrub())
    logging.getLogger().addHandler(handler)
