"""Instance data: cloud-init's instance-data.json, made from the normalised metadata.

cloud-init publishes what it knows of the instance for templates and
scripts; guestagent publishes the same shape, for the same uses:

    /run/guestagent/instance-data.json            secrets redacted, world-readable (0644)
    /run/guestagent/instance-data-sensitive.json  everything, root only (0600)

(cloud-init's names, in the agent's own directory).  Each run that finds
metadata writes them, and a copy of each under /var/lib/guestagent, which
the reboot guard (units/guestagent-unchanged) puts back in /run on a reboot
where no Python starts.  `## template: jinja` user-data renders from the
sensitive one's content, as cloud-init's does, and `guestagent query`
shows its ``v1``, ``ds`` and ``sys_info`` beside the metadata.

    {"v1": {instance_id, local_hostname, availability_zone, region,
            cloud_name, cloud_id, platform, subplatform, public_ssh_keys,
            distro, distro_version, distro_release, variant, kernel_release,
            machine, python_version, system_platform (and the dashed
            spellings cloud-init also gives: instance-id, local-hostname,
            availability-zone, cloud-name)},
     "ds": {"meta_data": the datasource's own metadata document},
     "sys_info": {dist, platform, python, release, system, uname, variant},
     "base64_encoded_keys": [], "sensitive_keys": [...]}

Steps never read it: they read `Metadata`.  Only cloud_name, platform and
subplatform say which datasource spoke, as cloud-init's do.
"""

import copy
import json
import logging
import os
import re
import sys

from ..system.distro import os_release
from . import _SECRET_DOC_KEYS

log = logging.getLogger(__name__)

RUN_DIR = "/run/guestagent"
PUBLIC = RUN_DIR + "/instance-data.json"
SENSITIVE = RUN_DIR + "/instance-data-sensitive.json"
KEPT_DIR = "/var/lib/guestagent"  # the copies the reboot guard puts back
REDACTED = "redacted for non-root user"  # cloud-init's words, so scripts agree
# datasource -> (cloud_name and platform, what subplatform says it read)
_SOURCES = {
    "configdrive": ("openstack", "config-disk"),
    "openstack": ("openstack", "metadata"),
    "ec2": ("ec2", "metadata"),
    "nocloud": ("nocloud", "seed-dir"),
}
_META_DOCUMENTS = ("meta_data.json", "meta-data", "meta_data")


def build(md, system):
    """The full instance data (secrets included) for ``md``."""
    kind, _, detail = (md.source or "").partition(" ")
    cloud, sub = _SOURCES.get(kind, (kind or "unknown", kind or "unknown"))
    subplatform = f"{sub} {detail}" if detail else sub
    meta = next((md.raw[n] for n in _META_DOCUMENTS if isinstance(md.raw.get(n), dict)), {})
    rel = os_release(system)
    uname = os.uname()
    libc = (os.confstr("CS_GNU_LIBC_VERSION") or "") if hasattr(os, "confstr") else ""
    system_platform = f"{uname.sysname}-{uname.release}-{uname.machine}" + (
        f"-with-{libc.replace(' ', '')}" if libc else "")
    python = ".".join(str(n) for n in sys.version_info[:3])
    region = meta.get("region") if isinstance(meta.get("region"), str) else None
    az = md.availability_zone or None
    v1 = {
        "availability_zone": az, "availability-zone": az,
        "cloud_id": cloud, "cloud_name": cloud, "cloud-name": cloud,
        "distro": rel.get("ID", ""), "distro_release": rel.get("VERSION_CODENAME", ""),
        "distro_version": rel.get("VERSION_ID", ""),
        "instance_id": md.instance_id, "instance-id": md.instance_id,
        "kernel_release": uname.release,
        "local_hostname": md.hostname, "local-hostname": md.hostname,
        "machine": uname.machine, "platform": cloud,
        "public_ssh_keys": list(md.public_keys), "python_version": python,
        "region": region, "subplatform": subplatform,
        "system_platform": system_platform, "variant": rel.get("ID", ""),
    }
    return {
        "_doc": "guestagent's instance data, in the shape of cloud-init's "
                "instance-data.json (see docs/user-data.md)",
        "base64_encoded_keys": [],
        "ds": {"meta_data": meta},
        "sensitive_keys": [],
        "sys_info": {
            "dist": [rel.get("ID", ""), rel.get("VERSION_ID", ""),
                     rel.get("VERSION_CODENAME", "")],
            "platform": system_platform, "python": python, "release": uname.release,
            "system": uname.sysname, "uname": list(uname) + [""],
            "variant": rel.get("ID", ""),
        },
        "v1": v1,
    }


def redacted(data):
    """A copy for everyone: secret values replaced, their paths in sensitive_keys."""
    paths = []

    def walk(obj, path):
        if isinstance(obj, dict):
            out = {}
            for k, v in obj.items():
                if k in _SECRET_DOC_KEYS and v not in (None, ""):
                    out[k] = REDACTED
                    paths.append("/".join(path + [str(k)]))
                else:
                    out[k] = walk(v, path + [str(k)])
            return out
        if isinstance(obj, list):
            return [walk(v, path + [str(i)]) for i, v in enumerate(obj)]
        return obj

    out = walk({k: v for k, v in data.items() if k != "sensitive_keys"}, [])
    out["sensitive_keys"] = sorted(paths)
    return out


def publish(system, md):
    """Write both files (and the copies the reboot guard restores); never raises."""
    try:
        data = build(md, system)
        public = redacted(data)
        data["sensitive_keys"] = public["sensitive_keys"]
        files = ((SENSITIVE, data, 0o600), (PUBLIC, public, 0o644))
        for directory in (RUN_DIR, KEPT_DIR):
            for path, doc, mode in files:
                path = directory + path[len(RUN_DIR):]
                text = (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()
                if directory == KEPT_DIR and _same(system, path, text, mode):
                    continue  # a reboot: the kept copy is current, no write (no fsync)
                system.write_file(path, text, mode=mode)
    except (OSError, ValueError, TypeError) as e:
        log.warning("cannot write the instance data (%s): `## template: jinja` user-data "
                    "still renders, scripts reading %s will not find it", e, PUBLIC)


def _same(system, path, text, mode):
    try:
        return system.lstat(path).st_mode & 0o7777 == mode and \
            system.read_bytes(path, limit=len(text) + 1) == text
    except OSError:
        return False


def read(system, path=SENSITIVE):
    """The instance data a run wrote, or None."""
    try:
        data = json.loads(system.read_bytes(path, limit=16 << 20))
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None



def example(system):
    """Stand-in instance data, for `check-userdata` off an instance."""
    from . import Metadata
    iid = "00000000-0000-0000-0000-000000000000"
    md = Metadata(source="configdrive (/dev/sr0)", instance_id=iid, hostname="example-host",
                  availability_zone="nova", name="example-host",
                  public_keys=["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAexample example"],
                  raw={"meta_data.json": {"uuid": iid, "hostname": "example-host",
                                          "name": "example-host", "availability_zone": "nova",
                                          "project_id": "example-project", "meta": {}}})
    return build(md, system)


def for_check(system, path=None):
    """() -> (Jinja variables, example?) for `check-userdata`: the instance data
    in ``path``; without one, this instance's own (where readable), else the
    stand-in.  OSError/ValueError when ``path`` cannot be used."""
    data, is_example = None, False
    if path:
        with open(path, "rb") as f:
            data = json.loads(f.read(16 << 20))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
    else:
        data = read(system, SENSITIVE) or read(system, PUBLIC)
    if data is None:
        data, is_example = example(system), True

    def variables():
        return jinja_variables(data), is_example
    return variables


_OPERATORS = re.compile(r"[-.]")  # what cloud-init's aliases replace (jinja's operator_re)


def jinja_variables(data):
    """Instance data -> the names a template sees (cloud-init's conversion, with aliases)."""
    out = {}
    for key, value in sorted(data.items()):
        if isinstance(value, dict):
            out[key] = jinja_variables(value)
            if re.match(r"v\d+$", str(key)):
                for sub, subvalue in out[key].items():
                    out[sub] = copy.deepcopy(subvalue)
        else:
            out[key] = value
        alias = _OPERATORS.sub("_", key) if isinstance(key, str) else key
        if alias != key:
            out[alias] = copy.deepcopy(out[key])
    return out
