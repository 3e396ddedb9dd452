"""Which SSH keys the agent installed, for which account and which instance.

/var/lib/guestagent/installed-keys.json (0600, in the root-only state
directory, replaced atomically) lists each key the agent itself added to an
authorized_keys file, from the instance's metadata or its #cloud-config:

    {"format": 1, "keys": [{"account": "debian", "type": "ssh-ed25519",
      "blob": "AAAA...", "instance_id": "...", "source": "metadata"}]}

A key that was already in the file when the agent came (baked in by the
image builder, added by a person) is never listed, so nothing here can make
the agent remove it.  The record spans instances: it is how a new instance
knows which keys an earlier one brought (`previous_keys`), and how
`guestagent clean --keys` knows which keys to take out of an image.
"""

import json
import logging

from ...state import MAX_STATE_FILE, STATE_DIR

log = logging.getLogger(__name__)

PATH = STATE_DIR + "/installed-keys.json"
FORMAT = 1


class KeyRecord:
    def __init__(self, entries=(), found=False):
        self.entries = [dict(e) for e in entries]
        self.found = found  # False: no record on disk (first boot, or an older agent's disk)
        self._saved = json.dumps(self.entries, sort_keys=True) if found else None

    @classmethod
    def load(cls, system):
        try:
            raw = system.read_bytes(PATH, limit=MAX_STATE_FILE)
        except FileNotFoundError:
            return cls()
        except OSError as e:
            log.warning("cannot read %s (%s): no key is treated as installed by an "
                        "earlier instance", PATH, e)
            return cls()
        try:
            doc = json.loads(raw)
            if doc.get("format") != FORMAT:
                raise ValueError(f"format {doc.get('format')!r}, this agent writes {FORMAT}")
            entries = [e for e in doc["keys"] if _valid(e)]
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
            log.warning("ignoring %s: it is not what this agent writes (%s); no key is "
                        "treated as installed by an earlier instance", PATH, e)
            return cls()
        return cls(entries, found=True)

    def find(self, account, ident):
        for e in self.entries:
            if e["account"] == account and (e["type"], e["blob"]) == ident:
                return e
        return None

    def add(self, account, key, instance_id, source):
        """The agent just added ``key`` (a parsed authorized_keys.Key) for ``account``."""
        entry = self.find(account, (key.keytype, key.blob))
        if entry is None:
            entry = {"account": account, "type": key.keytype, "blob": key.blob}
            self.entries.append(entry)
        entry.update(instance_id=instance_id, source=source)

    def drop(self, entry):
        self.entries = [e for e in self.entries if e is not entry]

    def save(self, system):
        """Write the record when it changed (atomically, 0600)."""
        text = json.dumps(self.entries, sort_keys=True)
        if text == self._saved:
            return False
        doc = {"format": FORMAT, "keys": self.entries}
        system.write_file(PATH, json.dumps(doc, indent=1, sort_keys=True) + "\n",
                          mode=0o600, dir_mode=0o700)
        self._saved = text
        self.found = True
        return True


def _valid(e):
    return isinstance(e, dict) and all(isinstance(e.get(k), str) and e.get(k)
                                       for k in ("account", "type", "blob")) and \
        isinstance(e.get("instance_id", ""), str)


def fingerprint(keytype, blob):
    """``ssh-ed25519 SHA256:...`` as ssh-keygen -lf names a key (from its blob)."""
    import base64
    import hashlib  # only when a key is named; it loads OpenSSL

    try:
        raw = base64.b64decode(blob, validate=True)
    except ValueError:
        return f"{keytype} (undecodable key data)"
    digest = base64.b64encode(hashlib.sha256(raw).digest()).decode().rstrip("=")
    return f"{keytype} SHA256:{digest}"
