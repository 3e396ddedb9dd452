"""Per-instance state under /var/lib/guestagent (inside the root).

    instance-id                    the instance the last run configured
    instances/<id>/metadata.json   the normalised metadata (0600: secrets)
    instances/<id>/cloud-config.json  the parsed #cloud-config (0600), so a
                                   later boot never imports YAML
    instances/<id>/done/<step>     per-instance steps that have completed
    instances/<id>/scripts/        user scripts, runcmd, bootcmd as run
    status.json                    this boot's runs, step by step (no secrets)
    format                         the layout's version (FORMAT); absent: 1

An agent that finds a newer format than it knows (a package downgraded under
a newer agent's state) leaves the state alone and says so in one line.

The directory is root-only (0700).  Instance ids become directory names, so
anything but a plain id is hashed first.
"""

import json
import logging
import re

from ..metadata import Metadata

log = logging.getLogger(__name__)

STATE_DIR = "/var/lib/guestagent"
# The stored layout's version: bumped when an older agent would misread what
# a newer one stores.  State from before the file existed is format 1.
FORMAT = 1
FORMAT_FILE = STATE_DIR + "/format"
# What the agent itself wrote is far smaller; a bigger file is not ours.
MAX_STATE_FILE = 64 << 20
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def safe_id(instance_id):
    if _SAFE_ID.fullmatch(instance_id) and instance_id not in (".", ".."):
        return instance_id
    import hashlib  # only for odd ids; it loads OpenSSL, ~15 ms at boot

    return "id-" + hashlib.sha256(instance_id.encode("utf-8", "replace")).hexdigest()[:32]


class State:
    def __init__(self, system):
        self.system = system

    def _p(self, *parts):
        return "/".join((STATE_DIR,) + parts)

    def ensure(self):
        # through the System seam: a symlinked /var/lib/guestagent in an
        # image tree resolves inside the root, never on the host
        self.system.makedirs(STATE_DIR, mode=0o700)
        self.system.chmod_dir(STATE_DIR, 0o700)
        if not self.system.exists(FORMAT_FILE):
            self.system.write_file(FORMAT_FILE, f"{FORMAT}\n", mode=0o644)

    # -- format ----------------------------------------------------------
    def stored_format(self):
        """The format the stored state says it is in (1 when it does not say;
        None when the marker is damaged)."""
        try:
            text = self.system.read_bytes(FORMAT_FILE, limit=64)
        except OSError:
            return 1
        text = text.decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None

    def newer_format(self):
        """One line saying why this agent must leave the stored state alone, or ''."""
        found = self.stored_format()
        if found is None:
            log.warning("%s is damaged (not a number); taking the state for format %d",
                        FORMAT_FILE, FORMAT)
            return ""
        if found <= FORMAT:
            return ""
        from .. import __version__
        return (f"the state in {STATE_DIR} is format {found}, written by a newer guestagent; "
                f"this one ({__version__}) knows format {FORMAT} and leaves it alone: "
                f"reinstall the newer package, or remove {STATE_DIR} to configure this "
                f"instance again from scratch")

    # -- instance ------------------------------------------------------
    def previous_instance_id(self):
        try:
            return self.system.read_bytes(self._p("instance-id"), limit=4096).decode(
                "utf-8", "replace").strip()
        except OSError:
            return ""

    def set_instance(self, md):
        """Record ``md`` as the current instance; return True when it is new."""
        self.ensure()
        new = self.previous_instance_id() != md.instance_id
        d = self._p("instances", safe_id(md.instance_id))
        self.system.makedirs(d, mode=0o700)
        self.system.write_file(d + "/metadata.json",
                               json.dumps(md.to_dict(), indent=1, sort_keys=True), mode=0o600)
        if new:
            self.system.write_file(self._p("instance-id"), md.instance_id + "\n", mode=0o600)
        return new

    def stored_metadata(self, instance_id=None):
        iid = instance_id or self.previous_instance_id()
        if not iid:
            return None
        path = self._p("instances", safe_id(iid), "metadata.json")
        try:
            raw = self.system.read_bytes(path, limit=MAX_STATE_FILE)
        except OSError:
            return None
        try:
            return Metadata.from_dict(json.loads(raw))
        except (ValueError, KeyError, TypeError, RecursionError) as e:
            log.warning("ignoring the stored metadata %s: it is not what this agent "
                        "writes (%s)", path, e)
            return None

    def instance_dir(self, instance_id):
        """The instance's own directory (inside the root)."""
        return self._p("instances", safe_id(instance_id))

    # -- the parsed #cloud-config -------------------------------------------
    def stored_cloud_config(self, instance_id, key):
        """The #cloud-config parsed earlier from the user-data ``key`` names, or None."""
        try:
            doc = json.loads(self.system.read_bytes(
                self._p("instances", safe_id(instance_id), "cloud-config.json")))
        except (OSError, ValueError):
            return None
        cc = doc.get("cloud_config") if isinstance(doc, dict) else None
        return cc if doc.get("key") == key and isinstance(cc, dict) else None

    def store_cloud_config(self, instance_id, key, cc):
        """Keep ``cc`` when JSON holds it exactly (YAML can make dates, sets...)."""
        try:
            text = json.dumps({"key": key, "cloud_config": cc}, sort_keys=True)
            if json.loads(text)["cloud_config"] != cc:
                return False
            self.system.write_file(
                self._p("instances", safe_id(instance_id), "cloud-config.json"), text,
                mode=0o600, dir_mode=0o700)
        except (TypeError, ValueError, OSError):
            return False
        return True

    # -- per-instance markers ---------------------------------------------
    def done(self, instance_id, step):
        return self.system.exists(self._p("instances", safe_id(instance_id), "done", step))

    def mark_done(self, instance_id, step):
        self.system.write_file(self._p("instances", safe_id(instance_id), "done", step),
                               b"", mode=0o600, dir_mode=0o700)

    def started(self, instance_id, step):
        return self.system.exists(self._p("instances", safe_id(instance_id), "started", step))

    def mark_started(self, instance_id, step):
        self.system.write_file(self._p("instances", safe_id(instance_id), "started", step),
                               b"", mode=0o600, dir_mode=0o700)

    # -- status ----------------------------------------------------------
    def read_status(self):
        """This boot's record, or None; a damaged file is ignored with a warning.

        Runs that are not objects are dropped, so readers may trust the shape
        {"boot_id": str, "runs": [dict...], "last": dict}."""
        path = self._p("status.json")
        try:
            raw = self.system.read_bytes(path, limit=MAX_STATE_FILE)
        except OSError:
            return None
        try:
            status = json.loads(raw)
        except (ValueError, RecursionError) as e:
            log.warning("ignoring %s: not valid JSON (%s)", path, e)
            return None
        if not isinstance(status, dict):
            log.warning("ignoring %s: not a JSON object", path)
            return None
        runs = status.get("runs")
        status["runs"] = [r for r in runs if isinstance(r, dict)] if isinstance(runs, list) else []
        if not isinstance(status.get("boot_id"), str):
            status["boot_id"] = ""
        if not isinstance(status.get("last"), dict):
            status.pop("last", None)
        return status

    def write_status(self, status):
        self.ensure()
        self.system.write_file(self._p("status.json"),
                               json.dumps(status, indent=1, sort_keys=True) + "\n", mode=0o644)

    def boot_id(self):
        """The kernel's boot id; runs in one boot share it (unknown under a bare --root)."""
        try:
            return self.system.read_text("/proc/sys/kernel/random/boot_id").strip()
        except OSError:
            return ""
