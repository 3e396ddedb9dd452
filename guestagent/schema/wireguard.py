"""#cloud-config keys of the wireguard step: their validators (see guestagent/schema)."""

import re

from .checks import INVALID, NOTICE, Bad, Note, absolute_path, describe, known_fields, named

# wg-quick's own rule for an interface name (and so the unit's instance name)
_IFNAME = re.compile(r"^[a-zA-Z0-9_=+.-]{1,15}$")


def check_wireguard(value, notes=None):
    known_fields(value, "wireguard", ("interfaces", "readinessprobe"), notes)
    interfaces = value.get("interfaces")
    if not isinstance(interfaces, list) or not interfaces:
        raise Bad("a mapping with an 'interfaces' list")
    out = {"interfaces": [], "readinessprobe": []}
    names = set()
    for n, item in enumerate(interfaces, 1):
        where = f"#cloud-config wireguard interfaces entry {n}"
        if not isinstance(item, dict):
            notes.append(Note(f"{where} is {describe(item)}, not a mapping; skipped", INVALID))
            continue
        missing = [f for f in ("name", "config_path", "content")
                   if not isinstance(item.get(f), str) or not item[f].strip()]
        if missing:
            notes.append(Note(f"{where}: {', '.join(missing)} missing or not text; skipped",
                              INVALID))
            continue
        name = item["name"].strip()
        if not _IFNAME.match(name):
            notes.append(Note(f"{where}: name is not an interface name (1-15 letters, "
                              "digits and _=+.-); skipped", INVALID))
            continue
        if name in names:
            notes.append(Note(f"{where}: interface {name} is given twice; skipped", INVALID))
            continue
        try:
            path = absolute_path(item["config_path"].strip(), "config_path")
        except Bad as e:
            notes.append(Note(f"{where}: config_path should be {e}; skipped", INVALID))
            continue
        extra = [k for k in item if k not in ("name", "config_path", "content")]
        if extra:
            notes.append(Note(f"{where}: fields neither guestagent nor cloud-init knows, "
                              "ignored: " + named(extra), INVALID))
        if path != f"/etc/wireguard/{name}.conf":
            notes.append(Note(f"{where}: wg-quick@{name} reads /etc/wireguard/{name}.conf; "
                              f"the file is written at {path} as asked, and the service "
                              "starts only if that file exists too", NOTICE))
        names.add(name)
        out["interfaces"].append({"name": name, "config_path": path,
                                  "content": item["content"]})
    probes = value.get("readinessprobe")
    if probes is not None:
        if not isinstance(probes, list):
            notes.append(Note("#cloud-config wireguard: readinessprobe should be a list of "
                              f"command lines, not {describe(probes)}; ignored", INVALID))
        else:
            for n, probe in enumerate(probes, 1):
                if isinstance(probe, str) and probe.strip():
                    out["readinessprobe"].append(probe)
                else:
                    notes.append(Note(f"#cloud-config wireguard readinessprobe entry {n} is "
                                      f"{describe(probe)}, not a command line; skipped",
                                      INVALID))
    if not out["interfaces"]:
        raise Bad("at least one usable interface {name, config_path, content}")
    return out
