"""apt source lines: the image's mirrors, cloud-init's substitutions, signed-by.

Substitutions, as cloud-init documents them, in `source` lines and in a
`sources_list` template: $RELEASE (the codename in /etc/os-release),
$MIRROR and $PRIMARY (the primary mirror), $SECURITY (the security mirror),
$KEY_FILE (the keyring written for that source's key).
"""

import re

from ...system.distro import os_release

SOURCES_LIST = "/etc/apt/sources.list"
DEB822_FILES = ("/etc/apt/sources.list.d/debian.sources",
                "/etc/apt/sources.list.d/ubuntu.sources")
_SAFE = re.compile(r"[^A-Za-z0-9._-]")
_DEFAULT_MIRRORS = {"debian": ("http://deb.debian.org/debian",
                               "http://deb.debian.org/debian-security"),
                    "ubuntu": ("http://archive.ubuntu.com/ubuntu",
                               "http://security.ubuntu.com/ubuntu")}


def release(system):
    rel = os_release(system)
    m = re.search(r"\(([a-z]+)\)", rel.get("VERSION", ""))  # VERSION="12 (bookworm)"
    return rel.get("VERSION_CODENAME") or rel.get("UBUNTU_CODENAME") or (
        m.group(1) if m else "")


def current_mirrors(system):
    """(primary, security) URIs the image's own sources use (or the distro's defaults)."""
    primary = security = None
    for uri, suite in _image_sources(system):
        if _is_security(uri, suite):
            security = security or uri
        else:
            primary = primary or uri
    rel = os_release(system)
    default = _DEFAULT_MIRRORS.get(rel.get("ID"), _DEFAULT_MIRRORS["debian"])
    return primary or default[0], security or default[1]


def _image_sources(system):
    for line in system.read_text(SOURCES_LIST, default="").splitlines():
        f = _strip_options(line.split("#", 1)[0]).split()
        if len(f) >= 3 and f[0] in ("deb", "deb-src"):
            yield f[1], f[2]
    for path in DEB822_FILES:
        uris, suites = [], []
        for line in system.read_text(path, default="").splitlines():
            if line.startswith("URIs:"):
                uris = line.split()[1:]
            elif line.startswith("Suites:"):
                suites = line.split()[1:]
            elif not line.strip() and uris:
                for u in uris:
                    yield u, suites[0] if suites else ""
                uris, suites = [], []
        for u in uris:
            yield u, suites[0] if suites else ""


def _strip_options(text):
    """'deb [arch=amd64] uri suite' -> 'deb uri suite'."""
    return re.sub(r"\[[^\]]*\]", " ", text)


def _is_security(uri, suite):
    return suite.endswith(("-security", "/updates")) or "security" in uri


def pick_mirror(entries, arch):
    """The uri of the first {arches, uri} entry for ``arch`` (or "default")."""
    for wanted in (arch, "default"):
        for e in entries or ():
            if wanted in e.get("arches", ["default"]):
                uri = e.get("uri") or next(iter(e.get("search") or ()), None)
                if uri:
                    return uri
    return None


def substitute(text, values):
    """$NAME and ${NAME} for the names in ``values``; anything else is kept."""
    def repl(m):
        name = m.group(1) or m.group(2)
        return values.get(name, m.group(0))
    return re.sub(r"\$\{([A-Z_]+)\}|\$([A-Z_]+)", repl, text)


def with_signed_by(line, keyring):
    """Add signed-by=KEYRING to a one-line source that names no keyring itself."""
    if "signed-by=" in line:
        return line
    m = re.match(r"^(\s*deb(?:-src)?\s+)(\[([^\]]*)\]\s*)?(.*)$", line)
    if not m:
        return line
    options = (m.group(3) or "").strip()
    options = f"{options} signed-by={keyring}".strip()
    return f"{m.group(1)}[{options}] {m.group(4)}"


def rewrite_mirrors(text, old_primary, new_primary, old_security, new_security):
    """sources.list (or deb822) text with the old mirror URIs replaced."""
    out = []
    for line in text.splitlines():
        body = line.lstrip()
        if body.startswith(("deb ", "deb-src ", "deb\t", "URIs:")):
            if new_security and old_security and old_security in line:
                line = line.replace(old_security, new_security)
            elif new_primary and old_primary and old_primary in line:
                line = line.replace(old_primary, new_primary)
        out.append(line)
    return "\n".join(out) + ("\n" if out else "")


def disable_suites(text, suites):
    """Comment out the one-line sources whose suite is in ``suites``."""
    out = []
    for line in text.splitlines():
        f = _strip_options(line).split()
        if len(f) >= 3 and f[0] in ("deb", "deb-src") and f[2] in suites:
            line = "# suite disabled by guestagent (apt: disable_suites): " + line
        out.append(line)
    return "\n".join(out) + ("\n" if out else "")


def list_file(name, filename=None):
    """/etc/apt/sources.list.d/<name>.list (cloud-init's file naming)."""
    base = _SAFE.sub("_", (filename or name).strip().rsplit("/", 1)[-1]) or "guestagent"
    if not base.endswith((".list", ".sources")):
        base += ".list"
    return f"/etc/apt/sources.list.d/{base}"


def keyring_file(name, armored=True):
    base = _SAFE.sub("_", name.strip())
    for suffix in (".list", ".sources"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    return f"/etc/apt/keyrings/{base or 'guestagent'}.{'asc' if armored else 'gpg'}"
