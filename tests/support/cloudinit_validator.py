"""cloud-init's own schema validator, from Debian 13's package, never installed.

    tree = unpacked()                     # fetches once, then reuses the cache
    verdicts = validate(tree, [path...])  # {path: {"valid": bool, "output": str}}

The package comes through a private apt configuration (debian_download.py):
the machine's own apt sources, lists and cache stay as they are.  The
.deb is unpacked with `dpkg-deb -x` into CACHE (outside the agent's paths),
so CI pays the download once per machine.  Verdicts are cached too, keyed
by the file's hash and the package version.

cloud-init runs from the unpacked tree with this interpreter (its Python
dependencies come from the test extra in pyproject.toml), over many files
in one process (cloudinit_schema_batch.py), so the corpus takes seconds.
"""

import fcntl
import hashlib
import json
import os
import subprocess
import sys

from .debian_download import download

SERIES = "25.1."        # the release the corpus target is measured against
SUITE = "trixie"        # Debian 13
# a test cache outside the agent's own paths (a user who is not root: their own)
CACHE = ("/var/cache" if os.geteuid() == 0 else os.path.expanduser("~/.cache")) \
    + "/guestagent-test/cloud-init-25.1"
BATCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cloudinit_schema_batch.py")


def _locked(func):
    """Run under CACHE/.lock: several test runs on one machine share the cache."""
    def locked(*args):
        os.makedirs(CACHE, exist_ok=True)
        with open(os.path.join(CACHE, ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            return func(*args)
    return locked


@_locked
def unpacked():
    """The unpacked cloud-init tree (CACHE/tree), fetched and unpacked on first use."""
    tree = os.path.join(CACHE, "tree")
    if os.path.exists(os.path.join(CACHE, "version")):
        return tree
    deb = download("cloud-init", SUITE, os.path.join(CACHE, "apt"))
    version = subprocess.run(["dpkg-deb", "-f", deb, "Version"], capture_output=True,
                             text=True, check=True).stdout.strip()
    if not version.startswith(SERIES):
        raise RuntimeError(f"Debian {SUITE} now has cloud-init {version}, not {SERIES}x: "
                           "the corpus target is measured against 25.1")
    subprocess.run(["rm", "-rf", tree], check=True)
    subprocess.run(["dpkg-deb", "-x", deb, tree], check=True)
    with open(os.path.join(CACHE, "version"), "w") as f:  # last: marks the cache complete
        f.write(version + "\n")
    return tree


def version():
    with open(os.path.join(CACHE, "version"), encoding="utf-8") as f:
        return f.read().strip()


@_locked
def validate(tree, paths):
    """{path: {"valid": bool, "output": str}}: `cloud-init schema --config-file`'s verdicts."""
    cache_path = os.path.join(CACHE, "verdicts.json")
    try:
        with open(cache_path, encoding="utf-8") as f:
            cached = json.load(f)
    except (OSError, ValueError):
        cached = {}
    keys = {}
    for path in paths:
        with open(path, "rb") as f:
            keys[path] = version() + ":" + hashlib.sha256(f.read()).hexdigest()
    todo = [p for p in paths if keys[p] not in cached]
    if todo:
        env = dict(os.environ, PYTHONPATH=os.path.join(tree, "usr/lib/python3/dist-packages"))
        res = subprocess.run([sys.executable, BATCH] + todo, capture_output=True, text=True,
                             env=env, timeout=600)
        if res.returncode != 0:
            raise RuntimeError(f"cloud-init's validator did not run:\n{res.stderr[-3000:]}")
        for path, verdict in json.loads(res.stdout).items():
            cached[keys[path]] = verdict
        tmp = cache_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(cached, f)
        os.replace(tmp, cache_path)
    return {p: cached[keys[p]] for p in paths}
