"""`clean --network`: the build instance's network files out, the image's back.

The network step marks every file it writes with its header (plan.MARK,
in the first lines) and moves the image's own files it replaces to
/var/lib/guestagent/network-replaced/<path> (a second move of one path gets
a time suffix).  Here the marked files go, and each moved-aside file is put
back where it was when nothing has taken its place since: its path is free
(or about to be, being one of the agent's files), or holds exactly the
agent's rewrite of it (ifupdown's /etc/network/interfaces without the
described NICs' stanzas).  A copy that cannot go back stays where it is,
and says so.  Copies of the agent's own earlier files go.
"""

import re

from ..steps.network import own_dirs
from ..steps.network.apply import ASIDE_DIR
from ..steps.network.image_files import IFUPDOWN_MAIN, stale, without_stanzas
from ..steps.network.plan import MARK, Plan
from . import Action
from .targets import Refusal

_SUFFIX = re.compile(r"\.\d{8}T\d{6}$")


def find(system):
    ours = stale(system, own_dirs(), Plan(None))
    actions = [Action("network", "remove", p, lambda p=p: system.remove(p),
                      "written by the agent for this instance's NICs") for p in ours]
    copies = {}
    for aside in _walk(system, ASIDE_DIR):
        original = _SUFFIX.sub("", aside[len(ASIDE_DIR):])
        copies.setdefault(original, []).append(aside)
    for original, asides in sorted(copies.items()):
        first = f"{ASIDE_DIR}{original}"
        for aside in sorted(asides):
            text = _text(system, aside)
            if MARK in text[:400]:  # whichever document it came from
                actions.append(Action("network", "remove", aside, _remover(system, aside),
                                      "a copy of the agent's own file for an earlier instance"))
            elif aside != first:
                actions.append(Refusal("network", aside, f"a later copy of {original}; the "
                                       f"first one goes back"))
            elif _free(system, original, ours, text):
                actions.append(Action("network", "restore", original,
                                      _restorer(system, aside, original),
                                      f"the image's own file, from {aside}"))
            else:
                actions.append(Refusal("network", aside, f"{original} changed since the agent "
                                       f"replaced it; the image's copy stays here"))
    if system.exists(ASIDE_DIR) and not any(a.refusal for a in actions):
        actions.append(Action("network", "remove", ASIDE_DIR,
                              lambda: system.remove_tree(ASIDE_DIR),
                              "left empty: every file in it went back or went"))
    return actions


def _remover(system, path):
    return lambda: system.remove(path)


def _restorer(system, aside, original):
    def restore():
        st = system.lstat(aside)
        system.write_file(original, system.read_bytes(aside), mode=st.st_mode & 0o7777)
        system.remove(aside)
    return restore


def _free(system, original, ours, image_text):
    """May the image's copy go back to ``original``?"""
    if original in ours or not system.exists(original):
        return True
    if original != IFUPDOWN_MAIN:
        return False
    current = _text(system, original)
    names = _ifaces(image_text) - _ifaces(current)
    rewrite, _ = without_stanzas(image_text, names)
    with_source = rewrite.rstrip("\n") + "\n\nsource /etc/network/interfaces.d/*\n"
    return current in (rewrite, with_source)


def _ifaces(text):
    """The interface names ifupdown stanzas in ``text`` name."""
    names = set()
    for line in text.splitlines():
        w = line.split()
        if len(w) > 1 and w[0] == "iface":
            names.add(w[1])
        elif w and (w[0] == "auto" or w[0].startswith("allow-")):
            names.update(w[1:])
    return names


def _text(system, path):
    try:
        return system.read_bytes(path).decode("utf-8", "replace")
    except OSError:
        return ""


def _walk(system, directory):
    """Every regular file under ``directory`` (links are not followed)."""
    import stat
    out = []
    for name in system.listdir(directory):
        path = f"{directory}/{name}"
        try:
            mode = system.lstat(path).st_mode
        except OSError:
            continue
        if stat.S_ISDIR(mode):
            out += _walk(system, path)
        elif stat.S_ISREG(mode):
            out.append(path)
    return out
