"""The image's own files for the interfaces the document describes.

Each stack keeps its configuration differently, so each has its own rule
for what the agent's files replace:

- ifupdown: stanzas (``auto``/``allow-*`` lines, ``iface`` blocks) naming a
  described interface are taken out of /etc/network/interfaces and
  interfaces.d/*, and the file is rewritten without them; a ``source`` line
  for interfaces.d is added where the image has none.
- ifcfg: ifcfg-NAME (and files whose DEVICE= names it) are replaced.
- NetworkManager: keyfiles bound to a described NIC (interface-name= or
  mac-address=) are replaced.
- systemd-networkd: the agent's files sort first; nothing of the image's
  needs to move.
- netplan: a file that only describes NICs the document describes is
  replaced; a file that also describes others is kept, and the NICs it
  shares with the document are left as the image has them (netplan merges
  definitions across files, so half of a file cannot be taken away).

Everything replaced is moved aside (see `apply`), never deleted.  Files
the agent wrote for an earlier instance (they start with its header, from
whichever document) are
moved aside too when the new plan does not write them again.
"""

import configparser
import logging
import re

from .plan import MARK

log = logging.getLogger(__name__)

IFUPDOWN_MAIN = "/etc/network/interfaces"
IFUPDOWN_DIR = "/etc/network/interfaces.d"
_STANZA_START = re.compile(r"^(iface|mapping|auto|allow-\S+|source|source-directory|"
                           r"rename|no-auto-down|no-scripts)\b")


def _listdir(system, d):
    try:
        return system.listdir(d)
    except OSError:
        return []


def _text(system, path):
    try:
        return system.read_text(path, default="")
    except OSError:
        return ""


def stale(system, dirs, plan):
    """Files the agent wrote earlier (its header) that this plan does not write."""
    out = []
    for d in dirs:
        for name in _listdir(system, d):
            path = f"{d}/{name}"
            if path in plan.files or not system.is_file(path):
                continue
            if MARK in _text(system, path)[:400]:
                out.append(path)
    return out


# -- ifupdown ------------------------------------------------------------------

def ifupdown(system, names, plan, our_path):
    files = [IFUPDOWN_MAIN] + [f"{IFUPDOWN_DIR}/{n}" for n in _listdir(system, IFUPDOWN_DIR)
                               if f"{IFUPDOWN_DIR}/{n}" != our_path]
    sources_dir = False
    for path in files:
        text = _text(system, path)
        if not text:
            continue
        new, removed = without_stanzas(text, names)
        if path == IFUPDOWN_MAIN:
            sources_dir = _sources(new)
            if not sources_dir:
                new = new.rstrip("\n") + "\n\nsource /etc/network/interfaces.d/*\n"
        if new != text:
            plan.replace(path)
            if new.strip():
                plan.add(path, new, what="the image's stanzas for "
                         + (", ".join(removed) if removed else "interfaces.d") + " taken out")
            log.info("%s: taking out the stanzas for %s (the original is kept)",
                     path, ", ".join(removed) or "none")
    if not system.exists(IFUPDOWN_MAIN):
        plan.add(IFUPDOWN_MAIN, "auto lo\niface lo inet loopback\n\n"
                 "source /etc/network/interfaces.d/*\n", what="loopback, interfaces.d")


def _sources(text):
    for line in text.splitlines():
        w = line.split()
        if len(w) >= 2 and w[0] in ("source", "source-directory") and \
                "interfaces.d" in w[1]:
            return True
    return False


def without_stanzas(text, names):
    """(text without the stanzas naming ``names``, the names found)."""
    out, removed, skipping = [], [], False
    for line in text.splitlines():
        words = line.split()
        if words and _STANZA_START.match(words[0]):
            skipping = False
            if words[0] == "iface" and len(words) > 1 and words[1] in names:
                skipping = True
                removed.append(words[1])
                continue
            if words[0] == "auto" or words[0].startswith("allow-"):
                kept = [w for w in words[1:] if w not in names]
                removed += [w for w in words[1:] if w in names]
                if len(kept) != len(words) - 1:
                    if kept:
                        out.append(" ".join([words[0]] + kept))
                    continue
        elif skipping and (not words or line[:1].isspace() or words[0].startswith("#")):
            if words:
                continue
            skipping = False
        out.append(line)
    return "\n".join(out) + ("\n" if out else ""), list(dict.fromkeys(removed))


# -- ifcfg ---------------------------------------------------------------------

def ifcfg(system, ifaces, plan, scripts_dir):
    names = {it.name for it in ifaces}
    for name in _listdir(system, scripts_dir):
        if not name.startswith(("ifcfg-", "route-", "route6-")):
            continue
        path = f"{scripts_dir}/{name}"
        device = name.split("-", 1)[1]
        if device not in names and name.startswith("ifcfg-"):
            m = re.search(r"^DEVICE=\"?([^\"\s]+)", _text(system, path), re.M)
            device = m.group(1) if m else device
        if device in names and (path not in plan.files
                                or MARK not in _text(system, path)[:400]):
            plan.replace(path)


# -- NetworkManager -------------------------------------------------------------

def networkmanager(system, ifaces, plan, keyfile_dir):
    names = {it.name for it in ifaces}
    macs = {it.mac.upper() for it in ifaces if it.mac}
    for name in _listdir(system, keyfile_dir):
        path = f"{keyfile_dir}/{name}"
        if path in plan.files:
            continue
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            parser.read_string(_text(system, path), source=path)
        except configparser.Error:
            continue
        bound_name = parser.get("connection", "interface-name", fallback="")
        bound_mac = parser.get("ethernet", "mac-address", fallback="").upper()
        if bound_name in names or bound_mac in macs:
            plan.replace(path)


# -- netplan -------------------------------------------------------------------

def netplan(system, ifaces, our_path, netplan_dir):
    """(names to leave alone, files to move aside): files wholly about described
    NICs go aside; a file that also describes others keeps its NICs."""
    left, aside = set(), []
    for name in _listdir(system, netplan_dir):
        path = f"{netplan_dir}/{name}"
        if path == our_path or not name.endswith((".yaml", ".yml")):
            continue
        try:
            import yaml
            doc = yaml.safe_load(_text(system, path)) or {}
        except Exception as e:  # noqa: BLE001 - any unreadable file is left alone
            log.warning("%s: cannot read it (%s); leaving it as it is", path, e)
            continue
        defs = {}
        net = doc.get("network") if isinstance(doc, dict) else None
        for kind, entries in (net or {}).items():
            if isinstance(entries, dict) and kind != "version":
                defs.update({k: v for k, v in entries.items()})
        matched_defs, matched_names = set(), set()
        for key, d in defs.items():
            match = d.get("match") if isinstance(d, dict) else None
            match = match if isinstance(match, dict) else {}
            for it in ifaces:
                if key == it.name or match.get("name") == it.name or \
                        (it.mac and str(match.get("macaddress", "")).lower() == it.mac):
                    matched_defs.add(key)
                    matched_names.add(it.name)
        if not matched_defs:
            continue
        if matched_defs == set(defs):
            aside.append(path)
        else:
            log.warning("%s also describes interfaces the document does not (%s); "
                        "leaving %s as the image configures them", path,
                        ", ".join(sorted(set(defs) - matched_defs)),
                        ", ".join(sorted(matched_names)))
            left |= matched_names
    return left, aside
