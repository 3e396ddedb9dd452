"""One package from a Debian release, fetched without touching the machine's apt setup.

    deb = download("cloud-init", "trixie", "/var/cache/guestagent-test/x/apt")

apt-get runs with a private configuration under the given directory: its
own sources list (one line: the suite's main, from the Debian mirror the
machine's own sources name, signed by Debian's archive keyring), its own
lists and cache.  The machine's sources, lists and cache are only read
(the mirror's address) and never changed; nothing is installed.
"""

import glob
import os
import re
import subprocess

KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
FALLBACK_MIRROR = "http://deb.debian.org/debian"


def debian_mirror():
    """The Debian archive URI the machine's own apt sources use (read, never changed)."""
    files = glob.glob("/etc/apt/sources.list.d/*.sources") + ["/etc/apt/sources.list"] \
        + glob.glob("/etc/apt/sources.list.d/*.list")
    for path in files:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError:
            continue
        uris = re.findall(r"^\s*URIs:\s*(\S+)", text, re.M) \
            + re.findall(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)", text, re.M)
        for uri in uris:
            if uri.rstrip("/").endswith("/debian"):
                return uri.rstrip("/")
    return FALLBACK_MIRROR


def _apt(args, aptdir):
    opts = ["-o", f"Dir::Etc::sourcelist={aptdir}/sources.list",
            "-o", "Dir::Etc::sourceparts=-",
            "-o", f"Dir::State::Lists={aptdir}/lists",
            "-o", f"Dir::Cache={aptdir}/cache",
            "-o", "APT::Sandbox::User=root",
            "-q"]
    res = subprocess.run(["apt-get"] + opts + args, cwd=aptdir, capture_output=True,
                         text=True, timeout=600)
    if res.returncode != 0:
        raise RuntimeError(f"apt-get {' '.join(args)} failed ({res.returncode}):\n"
                           f"{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
    return res


def download(package, suite, aptdir):
    """The path of ``package``'s .deb from Debian ``suite``, fetched into ``aptdir``."""
    for d in ("lists/partial", "cache/archives/partial"):
        os.makedirs(os.path.join(aptdir, d), exist_ok=True)
    with open(os.path.join(aptdir, "sources.list"), "w") as f:
        f.write(f"deb [signed-by={KEYRING}] {debian_mirror()} {suite} main\n")
    _apt(["update"], aptdir)
    for old in glob.glob(os.path.join(aptdir, f"{package}_*.deb")):
        os.unlink(old)
    _apt(["download", package], aptdir)
    deb, = glob.glob(os.path.join(aptdir, f"{package}_*.deb"))
    return deb
