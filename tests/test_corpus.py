"""The measure that counts: real users' #cloud-config, read by the agent's own checker.

../shared/corpus/cloud-config/ holds 120 #cloud-config documents from public
repositories (SOURCES.tsv names each origin).  They belong to their authors:
they are read from there, never copied into this repository, and the test is
skipped when the corpus is absent.

Each document goes through the same decoder as a boot (what `guestagent
check-userdata` prints); "fully handled" is its exit 0.  Documents whose
origin delivers them as a MIME part of type text/cloud-config (SOURCES.tsv
kind ``*-mime-part``: Terraform's cloudinit_config, Vagrant) are wrapped in
such a part first, as their tool does.

Two shares are printed and held:
- as published: the files as they are.  A template (Terraform ``%{ if }``,
  Jinja ``{{ }}``) that is not valid YAML is not fully handled;
- rendered: template syntax replaced by a stand-in renderer (directive
  lines dropped, every ``${..}`` / ``{{ .. }}`` replaced by the word
  ``templated``), the nearest thing to what the instance receives.
The project's target is 95% (issues 15 and 16 together).  The floors below
are ratchets: raise them when the agent learns more, never lower them.
"""

import collections
import csv
import os
import re
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import pytest

from guestagent.schema.checks import kind_of
from guestagent.schema.keys import KEYS, Acts, Ignored
from guestagent.userdata import decode
from guestagent.userdata.cloudconfig import DO
from guestagent.userdata.report import EXIT_ALL_HANDLED, exit_code

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.normpath(os.path.join(REPO, "..", "shared", "corpus", "cloud-config"))
MAX = 16 << 20
TARGET = 0.95
FLOOR_PUBLISHED = 79    # documents fully handled: ratchets, never lowered
FLOOR_RENDERED = 96

pytestmark = pytest.mark.skipif(
    not os.path.isdir(os.path.join(CORPUS, "userdata")),
    reason=f"the cloud-config corpus is not at {CORPUS} (it lives outside the repository)")


def _kinds():
    kinds = {}
    path = os.path.join(CORPUS, "SOURCES.tsv")
    if os.path.exists(path):
        with open(path, encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                kinds[row["file"]] = row.get("kind", "")
    return kinds


def _documents():
    names = sorted(n for n in os.listdir(os.path.join(CORPUS, "userdata"))
                   if n.endswith(".yaml"))
    kinds = _kinds()
    for name in names:
        with open(os.path.join(CORPUS, "userdata", name), "rb") as f:
            yield name, kinds.get(name, ""), f.read()


def _delivered(data, kind):
    """The bytes the instance gets: a MIME text/cloud-config part where the tool makes one."""
    if not kind.endswith("mime-part"):
        return data
    msg = MIMEMultipart()
    msg.attach(MIMEText(data.decode("utf-8", "replace"), "cloud-config", "utf-8"))
    return msg.as_bytes()


_DIRECTIVE_LINE = re.compile(r"^\s*(%\{.*\}|\{%.*%\}|\{#.*#\})\s*$")
_WHOLE_LINE = re.compile(r"^\s*(\$\{.*\}|\{\{.*\}\})\s*$")


def render_stand_in(text):
    """Template syntax out of the way, as a renderer would leave valid text."""
    lines = [ln for ln in text.splitlines()
             if not _DIRECTIVE_LINE.match(ln) and not _WHOLE_LINE.match(ln)]
    text = "\n".join(lines) + "\n"
    out, i = [], 0
    while i < len(text):
        if text.startswith("${", i):
            depth, j = 0, i + 1
            while j < len(text):
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                if depth == 0:
                    break
                j += 1
            out.append("templated")
            i = j + 1
        elif text.startswith("{{", i) and "}}" in text[i:]:
            out.append("templated")
            i = text.index("}}", i) + 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _measure(render):
    results = {}
    for name, kind, data in _documents():
        if render:
            data = render_stand_in(data.decode("utf-8", "replace")).encode()
        ud = decode(_delivered(data, kind), MAX, log_warnings=False)
        results[name] = ud
    return results


def _table(results):
    """key -> Counter of verdicts over the documents using it."""
    table = collections.defaultdict(collections.Counter)
    for ud in results.values():
        seen = {}
        for k in ud.keys:
            # a key in several parts counts once, with its worst verdict
            if seen.get(k.key, DO) == DO:
                seen[k.key] = k.verdict
        for key, verdict in seen.items():
            table[key][verdict] += 1
    return table


def _handling(key):
    entry = KEYS.get(key)
    if isinstance(entry, Acts):
        return f"acted on ({entry.step or 'merging'})"
    if isinstance(entry, Ignored):
        return "ignored by design"
    return "not handled"


def _print(title, results, table):
    n = len(results)
    full = sorted(name for name, ud in results.items() if exit_code(ud) == EXIT_ALL_HANDLED)
    lines = ["", f"== corpus, {title}: {len(full)}/{n} documents fully handled "
             f"({100.0 * len(full) / n:.1f}%; target {TARGET:.0%})",
             f"  {'key':<28} {'docs':>4}  {'handled?':<26} verdicts"]
    for key, counter in sorted(table.items(), key=lambda kv: (-sum(kv[1].values()), kv[0])):
        verdicts = ", ".join(f"{v} {c}" for v, c in sorted(counter.items()))
        lines.append(f"  {key:<28} {sum(counter.values()):>4}  {_handling(key):<26} "
                     f"{verdicts}")
    not_full = [name for name in sorted(results) if name not in full]
    lines.append("  not fully handled: " + (", ".join(not_full) or "none"))
    return "\n".join(lines), len(full)


@pytest.fixture(scope="module")
def published():
    return _measure(render=False)


@pytest.fixture(scope="module")
def rendered():
    return _measure(render=True)


def test_no_document_crashes_the_decoder(published, rendered):
    for results in (published, rendered):
        for name, ud in results.items():
            crashed = [w for w in ud.warnings if "could not be decoded" in w]
            assert not crashed, f"{name}: {crashed}"


def test_share_fully_handled_as_published(published, capsys):
    text, full = _print("as published", published, _table(published))
    with capsys.disabled():
        print(text)
    assert full >= FLOOR_PUBLISHED


def test_share_fully_handled_rendered(rendered, capsys):
    text, full = _print("templates rendered by a stand-in", rendered, _table(rendered))
    with capsys.disabled():
        print(text)
    assert full >= FLOOR_RENDERED


def test_every_note_has_a_kind(published):
    for ud in published.values():
        for w in ud.warnings:
            assert kind_of(w) in ("invalid", "unsupported", "ignored", "notice")
