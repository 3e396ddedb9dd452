"""The normalised metadata object every step reads.

Each datasource turns what it found into one `Metadata`; no step knows which
source spoke.  Values are checked for type here, once, so a wrong JSON type
in a document becomes a warning and an empty field, never a crash later.
"""

import base64
import logging

log = logging.getLogger(__name__)

MAX_INSTANCE_ID = 255  # Nova's are 36-character UUIDs, EC2's i-0123456789abcdef0

REDACTED = "<redacted>"


class InjectedFile:
    __slots__ = ("path", "content")

    def __init__(self, path, content):
        self.path = path
        self.content = content

    def __eq__(self, other):
        return isinstance(other, InjectedFile) and (self.path, self.content) == (
            other.path, other.content)

    def __repr__(self):
        return f"InjectedFile({self.path!r}, <{len(self.content)} bytes>)"


class Metadata:
    """What every datasource produces.  (A plain class: dataclasses would
    pull `inspect` into every boot's start-up.)"""

    def __init__(self, source, instance_id, hostname="", public_keys=None, user_data=b"",
                 vendor_data=None, admin_pass="", random_seed="", dns_nameservers=None,
                 dns_search=None, files=None, availability_zone="", name="", raw=None,
                 network=None, vendor_data2=None):
        self.source = source
        self.instance_id = clean_instance_id(instance_id)
        self.hostname = hostname
        self.public_keys = list(public_keys or [])
        self.user_data = user_data
        self.vendor_data = vendor_data  # vendor_data.json as parsed
        self.vendor_data2 = vendor_data2  # vendor_data2.json (Nova's dynamic vendor data)
        self.admin_pass = admin_pass
        self.random_seed = random_seed
        # A source that gives only a network model (network-config) lets its DNS
        # servers stand for the instance's: the resolv_conf step reads these.
        network_dns = network.dns() if network is not None else ([], [])
        self.dns_nameservers = list(network_dns[0] if dns_nameservers is None
                                    else dns_nameservers)
        self.dns_search = list(network_dns[1] if dns_search is None else dns_search)
        self.files = list(files or [])  # InjectedFile
        self.availability_zone = availability_zone
        self.name = name
        self.raw = raw or {}  # documents as served, for `query`
        self.network = network  # netconfig.NetworkConfig, or None when not described

    def __repr__(self):
        return f"Metadata(source={self.source!r}, instance_id={self.instance_id!r})"

    def to_dict(self):
        """Complete form for the root-only store."""
        d = self.public_dict()
        d["user_data"] = base64.b64encode(self.user_data).decode("ascii")
        d["vendor_data"] = self.vendor_data
        d["vendor_data2"] = self.vendor_data2
        d["admin_pass"] = self.admin_pass
        d["random_seed"] = self.random_seed
        d["files"] = [{"path": f.path, "content": base64.b64encode(f.content).decode("ascii")}
                      for f in self.files]
        d["raw"] = self.raw
        return d

    def public_dict(self):
        """What `query` shows: secrets replaced by a marker saying they exist."""
        return {
            "source": self.source,
            "instance_id": self.instance_id,
            "hostname": self.hostname,
            "public_keys": list(self.public_keys),
            "dns_nameservers": list(self.dns_nameservers),
            "dns_search": list(self.dns_search),
            "availability_zone": self.availability_zone,
            "name": self.name,
            "files": [{"path": f.path, "size": len(f.content)} for f in self.files],
            "network": self.network.to_dict() if self.network is not None else None,
            "user_data": REDACTED if self.user_data else None,
            "vendor_data": REDACTED if self.vendor_data not in (None, "", {}) else None,
            "vendor_data2": REDACTED if self.vendor_data2 not in (None, "", {}) else None,
            "admin_pass": REDACTED if self.admin_pass else None,
            "random_seed": REDACTED if self.random_seed else None,
            "raw": redact_documents(self.raw),
        }

    @classmethod
    def from_dict(cls, d):
        """The Metadata `to_dict` stored; ValueError when ``d`` is not that shape
        (a damaged or hand-edited file must not crash `query` or a later stage)."""
        if not isinstance(d, dict):
            raise ValueError("not a JSON object")

        def string(key):
            v = d.get(key)
            if v is None:
                return ""
            if not isinstance(v, str):
                raise ValueError(f"{key} is a {type(v).__name__}, not text")
            return v

        def strings(key):
            v = d.get(key) or []
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                raise ValueError(f"{key} is not a list of strings")
            return list(v)

        def b64(v, key):
            if not isinstance(v, str):
                raise ValueError(f"{key} is not base64 text")
            return base64.b64decode(v, validate=True)

        md = cls(source=string("source"), instance_id=string("instance_id"))
        md.hostname = string("hostname")
        md.public_keys = strings("public_keys")
        md.user_data = b64(d.get("user_data") or "", "user_data")
        md.vendor_data = d.get("vendor_data")
        md.vendor_data2 = d.get("vendor_data2")
        md.admin_pass = string("admin_pass")
        md.random_seed = string("random_seed")
        md.dns_nameservers = strings("dns_nameservers")
        md.dns_search = strings("dns_search")
        files = d.get("files") or []
        if not isinstance(files, list) or not all(
                isinstance(f, dict) and isinstance(f.get("path"), str) for f in files):
            raise ValueError("files is not a list of {path, content}")
        md.files = [InjectedFile(f["path"], b64(f.get("content"), "files.content"))
                    for f in files]
        md.availability_zone = string("availability_zone")
        md.name = string("name")
        raw = d.get("raw") or {}
        if not isinstance(raw, dict):
            raise ValueError("raw is not an object")
        md.raw = raw
        network = d.get("network")
        if network:
            if not isinstance(network, dict):
                raise ValueError("network is not an object")
            from .netconfig import NetworkConfig
            md.network = NetworkConfig.from_dict(network)
        return md

    def secrets(self):
        """Secret strings worth scrubbing from any text we emit."""
        out = [self.admin_pass, self.random_seed]
        if self.user_data:
            out.append(self.user_data.decode("utf-8", "replace"))
        for vd in (self.vendor_data, self.vendor_data2):
            if isinstance(vd, str):
                out.append(vd)
            elif isinstance(vd, dict) and isinstance(vd.get("cloud-init"), str):
                out.append(vd["cloud-init"])
        return [s for s in out if s and len(s) >= 4]


_SECRET_DOC_KEYS = {"admin_pass", "random_seed", "password", "vendor_data"}
_SECRET_DOCS = {"user_data", "vendor_data.json", "vendor_data2.json", "user-data"}


def redact_documents(raw):
    out = {}
    for name, doc in (raw or {}).items():
        if name in _SECRET_DOCS:
            out[name] = REDACTED
        else:
            out[name] = _redact(doc)
    return out


def _redact(obj):
    if isinstance(obj, dict):
        return {k: (REDACTED if k in _SECRET_DOC_KEYS else _redact(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_redact(v) for v in obj]
    return obj


# -- value checks every datasource's parser uses -----------------------------

def clean_instance_id(value):
    """The instance id as it decides first boot: surrounding whitespace
    dropped (a trailing newline must not make every boot a new instance),
    lone surrogates replaced; ValueError when nothing usable is left."""
    if not isinstance(value, str):
        raise ValueError(f"the instance id is a {type(value).__name__}, not text")
    iid = value.strip()
    if any(0xD800 <= ord(c) < 0xE000 for c in iid):
        iid = "".join("\ufffd" if 0xD800 <= ord(c) < 0xE000 else c for c in iid)
    if not iid:
        raise ValueError("the instance id is empty")
    if len(iid) > MAX_INSTANCE_ID:
        raise ValueError(f"the instance id is {len(iid)} characters long "
                         f"(at most {MAX_INSTANCE_ID})")
    return iid


def text(value, what):
    """A string field, or '' with a warning when the document had another type."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    log.warning("ignoring %s: expected a string, got %s", what, type(value).__name__)
    return ""


def dedupe(items):
    seen = set()
    out = []
    for x in items:
        if x not in seen:
            seen.add(x)
            out.append(x)
    return out
