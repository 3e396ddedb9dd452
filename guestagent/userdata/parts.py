"""Split raw user-data into parts: gzip, MIME multipart, and what each part is.

A part is a script (it starts with ``#!``), a #cloud-config document, a
`## template: jinja` part rendered into one of those (userdata/jinja.py,
with the instance data the caller hands in), or something guestagent does
not handle (#include, boothooks, part handlers...), which is named in a
warning and skipped.  Sizes are
checked after every decompression, so a small gzip bomb cannot inflate past
[userdata] max_bytes.  The work is capped too: every byte decompressed or
split at any depth counts against one budget of [userdata] max_bytes, and
at most MAX_PARTS MIME parts are looked at in all, so nested gzip and MIME
cannot multiply the work.  A refusal is reported once, with a count.
"""

import re
import zlib

from ..schema.checks import INVALID, UNSUPPORTED, Note

GZIP_MAGIC = b"\x1f\x8b"
MAX_PARTS = 500
MAX_NESTING = 4  # gzip inside MIME inside gzip...

SCRIPT = "text/x-shellscript"
CLOUD_CONFIG = "text/cloud-config"
JINJA = "text/jinja2"
# Parts whose content type says nothing: their first line decides (as in cloud-init).
_GUESSED = {"text/plain", "text/x-not-multipart", "application/octet-stream"}
_GZIP_TYPES = {"application/gzip", "application/x-gzip", "application/x-gzip-compressed"}

# First line -> the part type it announces; longer prefixes first.
_STARTS = (
    ("#!", SCRIPT),
    ("#cloud-config-archive", "text/cloud-config-archive"),
    ("#cloud-config-jsonp", "text/cloud-config-jsonp"),
    ("#cloud-config", CLOUD_CONFIG),
    ("#include-once", "text/x-include-once-url"),
    ("#include", "text/x-include-url"),
    ("#cloud-boothook", "text/cloud-boothook"),
    ("#upstart-job", "text/upstart-job"),
    ("#part-handler", "text/part-handler"),
    ("## template: jinja", JINJA),
)
# What to call each unsupported type in a warning, beside its MIME type.
_KNOWN_NAMES = {
    "text/x-include-url": "#include",
    "text/x-include-once-url": "#include-once",
    "text/cloud-boothook": "#cloud-boothook",
    "text/upstart-job": "#upstart-job",
    "text/part-handler": "#part-handler",
    "text/cloud-config-archive": "#cloud-config-archive",
    "text/cloud-config-jsonp": "#cloud-config-jsonp",
}
_MIME_START = re.compile(rb"\s*(content-type|mime-version)\s*:", re.I)
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class Script:
    """One user-data script: ``content`` starts with #!; ``index`` is its part number."""

    def __init__(self, name, content, index):
        self.name = name
        self.content = content
        self.index = index

    def __repr__(self):
        return f"<Script {self.name!r} part {self.index}, {len(self.content)} bytes>"


class Part:
    """One leaf part as found: its number, what it is, and what becomes of it."""

    def __init__(self, index, kind, what):
        self.index = index
        self.kind = kind  # SCRIPT, CLOUD_CONFIG, or the MIME type of a part not used
        self.what = what  # for check-userdata: "script 'part-001'", "#cloud-config"...

    def as_dict(self):
        return {"part": self.index, "type": self.kind, "what": self.what}


class Parts:
    def __init__(self, max_bytes=0, jinja=None):
        self.max_bytes = max_bytes
        # () -> (instance data as Jinja names, True when they are only an example)
        self.jinja = jinja
        self.scripts = []
        self.cloud_configs = []  # [(part index, text, Merge-Type header or None)]
        self.found = []  # [Part] in order, for check-userdata
        self.warnings = []
        self.count = 0  # leaf parts seen, for numbering
        self.total = 0  # bytes of decoded part content so far
        self.work = 0   # bytes decompressed or split at any depth
        self.seen = 0   # MIME parts looked at, at any depth
        self.stopped = False  # the work budget ran out: nothing more is looked at
        self._repeats = {}

    def warn_once(self, kind, message):
        """``message``, or a count when a warning of ``kind`` was given already."""
        if kind in self._repeats:
            self._repeats[kind][1] += 1
            return
        self._repeats[kind] = [len(self.warnings), 0]
        self.warnings.append(message)

    def finish(self):
        for i, more in self._repeats.values():
            if more:
                self.warnings[i] += f" (and {more} more like it)"


class TooBig(ValueError):
    pass


def split(data, max_bytes, jinja=None):
    """Split ``data`` into Parts; problems become warnings, never exceptions.

    ``jinja``: () -> (variables, example), asked only when a template part
    exists; None renders templates with no variables, as an example."""
    out = Parts(max_bytes, jinja)
    if len(data) > max_bytes:
        out.warnings.append(f"user-data is {len(data)} bytes, more than [userdata] max_bytes "
                            f"= {max_bytes}; none of it is used")
        return out
    _process(data, "", None, out, max_bytes, 0, "user-data")
    out.finish()
    return out


def gunzip(data, max_bytes):
    """Decompress gzip (several members allowed), never producing more than max_bytes."""
    out = bytearray()
    rest = data
    while rest[:2] == GZIP_MAGIC:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        chunk = rest
        while not d.eof:
            # max_length is at least 1 here: 0 would mean "no limit"
            piece = d.decompress(chunk, max_bytes + 1 - len(out))
            chunk = d.unconsumed_tail
            out += piece
            if len(out) > max_bytes:
                raise TooBig(f"decompresses to more than [userdata] max_bytes = {max_bytes}")
            if not piece and not chunk and not d.eof:
                raise ValueError("the gzip data is truncated")
        rest = d.unused_data
    return bytes(out)


def _process(data, ctype, filename, out, max_bytes, depth, where, merge=None):
    """One blob: gunzip it, split it if MIME, else classify it as one part."""
    if out.stopped:
        return
    if depth > MAX_NESTING:
        out.warn_once("nesting", f"{where}: compressed or MIME parts nested more than "
                                 f"{MAX_NESTING} deep; skipped")
        return
    if data[:2] == GZIP_MAGIC or ctype in _GZIP_TYPES:
        budget = max_bytes - max(out.total, out.work)
        try:
            data = gunzip(data, max(budget, 0))
        except TooBig:
            _stop(out, where, max_bytes)
            return
        except (zlib.error, ValueError) as e:
            out.warn_once("gzip", f"{where}: cannot decompress gzip data ({e}); skipped")
            return
        out.work += len(data)
        if ctype in _GZIP_TYPES:
            ctype = ""  # what is inside decides
    if not ctype and _MIME_START.match(data[:256]):
        if depth:
            out.work += len(data)  # a nested message is parsed again, whole
            if out.work > max_bytes:
                _stop(out, where, max_bytes)
                return
        _split_mime(data, out, max_bytes, depth, where)
        return
    out.count += 1
    out.total += len(data)
    if out.total > max_bytes:
        out.warnings.append(f"user-data parts add up to more than [userdata] max_bytes "
                            f"= {max_bytes}; part {out.count} and later are not used")
        return
    _classify(out.count, ctype, filename, data, out, where, merge)


def _stop(out, where, max_bytes):
    out.stopped = True
    out.warnings.append(f"{where}: decompressing and splitting the user-data would handle "
                        f"more than [userdata] max_bytes = {max_bytes} bytes; it and "
                        f"every later part are not used")


def _split_mime(data, out, max_bytes, depth, where):
    import email
    msg = email.message_from_bytes(data)
    for part in msg.walk():
        if out.stopped:
            return
        out.seen += 1
        if part.is_multipart():
            continue
        if out.count >= MAX_PARTS or out.seen > MAX_PARTS * 2:
            out.stopped = True
            out.warnings.append(f"{where}: more than {MAX_PARTS} MIME parts; the rest "
                                "are skipped")
            return
        try:
            ctype = part.get_content_type().lower()
            payload = part.get_payload(decode=True)
            filename = part.get_filename()
            merge = part.get("Merge-Type") or part.get("X-Merge-Type")
        except Exception as e:  # a malformed header must not lose the other parts
            out.count += 1
            out.warnings.append(f"user-data part {out.count}: unreadable MIME part "
                                f"({type(e).__name__}); skipped")
            continue
        if ctype.startswith("multipart/"):
            out.count += 1
            out.warnings.append(f"user-data part {out.count}: {ctype} with no readable parts "
                                "(missing or wrong boundary?); skipped")
            continue
        if not isinstance(payload, bytes):
            payload = b""
        _process(payload, ctype or "text/plain", filename, out, max_bytes, depth + 1,
                 f"user-data part {out.count + 1}", str(merge) if merge else None)


def _classify(index, ctype, filename, data, out, where, merge=None, rendered=""):
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]  # a UTF-8 byte order mark from a Windows editor
    if not data.strip():
        return
    guessed = _guess(data)
    if not ctype or ctype in _GUESSED:
        if guessed is None:
            what = _describe_unknown(data)
            out.warnings.append(Note(f"{where} is {what}; not a script (no #!), "
                                     "#cloud-config or MIME multipart; ignored, nothing run",
                                     INVALID, part=index))
            out.found.append(Part(index, ctype or "text/plain", f"{what}, not used"))
            return
        ctype = guessed
    if ctype == SCRIPT:
        if guessed != SCRIPT:
            out.warnings.append(Note(f"{where} is {SCRIPT} but does not start with #!; "
                                     "not run", INVALID, part=index))
            out.found.append(Part(index, ctype, "a script without #!, not run"))
            return
        # cloud-init finds the #! after leading blank lines too; exec needs it first
        data = data.lstrip()
        name = _script_name(filename, index)
        out.scripts.append(Script(name, data, index))
        out.found.append(Part(index, ctype, f"{rendered}script {name!r}: run once per "
                                            "instance, in the final stage"))
    elif ctype == CLOUD_CONFIG:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            out.warnings.append(Note(f"{where}: #cloud-config is not valid UTF-8; ignored",
                                     INVALID, part=index))
            out.found.append(Part(index, ctype, "#cloud-config that is not UTF-8, not used"))
            return
        out.cloud_configs.append((index, text, merge))
        out.found.append(Part(index, ctype, f"{rendered}#cloud-config"))
    elif ctype == JINJA and not rendered:
        _render(index, filename, data, out, where, merge)
    else:
        name = _KNOWN_NAMES.get(ctype)
        kind = f"{name} ({ctype})" if name else ctype
        out.warnings.append(Note(f"{where} is {kind}, which guestagent does not support; "
                                 "skipped", UNSUPPORTED, part=index))
        out.found.append(Part(index, ctype, f"{kind}: not supported, skipped"))


def _render(index, filename, data, out, where, merge):
    """A `## template: jinja` part: rendered, then read by its new first line."""
    from .jinja import HEADER, render
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        out.warnings.append(Note(f"{where}: the jinja template is not valid UTF-8; ignored",
                                 INVALID, part=index))
        out.found.append(Part(index, JINJA, "jinja template that is not UTF-8, not used"))
        return
    text = text.lstrip()
    if not HEADER.match(text.split("\n", 1)[0].rstrip("\r")):
        out.warnings.append(Note(f"{where} is {JINJA} but does not start with "
                                 "'## template: jinja'; ignored", INVALID, part=index))
        out.found.append(Part(index, JINJA, "jinja part without its header, not used"))
        return
    try:
        variables, example = out.jinja() if out.jinja else ({}, True)
    except Exception as e:  # the instance data could not be made: render without it
        out.warnings.append(Note(f"{where}: no instance data for the jinja template "
                                 f"({type(e).__name__}); its variables are all missing",
                                 INVALID, part=index))
        variables, example = {}, False
    result, notes = render(text, variables, out.max_bytes - out.total, where, example)
    for n in notes:
        n.part = index
        out.warnings.append(n)
    if result is None:
        out.found.append(Part(index, JINJA, "jinja template: not rendered, skipped"))
        return
    rendered = result.encode("utf-8", "surrogateescape")
    out.total += len(rendered)
    kind = _guess(rendered)
    if kind not in (SCRIPT, CLOUD_CONFIG):
        name = "another jinja template" if kind == JINJA else (
            _KNOWN_NAMES.get(kind, "none of #cloud-config or a #! script"))
        out.warnings.append(Note(f"{where}: the jinja template renders to {name}, which "
                                 "guestagent does not read from a template; skipped",
                                 UNSUPPORTED if kind else INVALID, part=index))
        out.found.append(Part(index, JINJA, f"jinja template rendered to {name}: skipped"))
        return
    _classify(index, kind, filename, rendered, out, where, merge,
              rendered="jinja template, rendered: ")


def _guess(data):
    """The part type its first line announces, found as cloud-init does: after
    leading whitespace, in any case."""
    first = data[:1024].decode("utf-8", "replace").lstrip()[:64].lower()
    for prefix, ctype in _STARTS:
        if first.startswith(prefix):
            return ctype
    return None


def _describe_unknown(data):
    head = data[:4096]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "UTF-16 text (save it as UTF-8)"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 4:  # not just a character cut at the 4096 mark
            return "binary data"
        text = head[:e.start].decode("utf-8")
    if "\0" in text or sum(c < " " and c not in "\t\r\n\f" for c in text) > len(text) // 20:
        return "binary data"
    return "plain text"


def _script_name(filename, index):
    """A safe file name for the script: its MIME filename if it has one, else part-NNN."""
    if filename:
        name = _SAFE_NAME.sub("_", filename.replace("/", "_")).strip("._")[:64]
        if name:
            return name
    return f"part-{index:03d}"
