"""A real Debian package and a flat apt repository holding it, made by the test.

    repo = make_repo(tmp / "repo", "ga-hello", "1.0", 'echo "hello from ga-hello"')
    # deb [trusted=yes] file:/path/to/repo ./       (or served over HTTP)

The package is built with dpkg-deb and installs /usr/bin/<name>, a shell
script.  The repository has a Packages index and a Release file with its
checksum, which is all apt needs for a `[trusted=yes]` flat repository.
"""

import gzip
import hashlib
import os
import subprocess


def build_deb(workdir, name, version, script_body, arch="all"):
    """Build NAME_VERSION_ARCH.deb with dpkg-deb; returns its path."""
    tree = os.path.join(str(workdir), f"{name}-tree")
    os.makedirs(os.path.join(tree, "DEBIAN"), exist_ok=True)
    os.makedirs(os.path.join(tree, "usr", "bin"), exist_ok=True)
    with open(os.path.join(tree, "DEBIAN", "control"), "w") as f:
        f.write(f"Package: {name}\nVersion: {version}\nArchitecture: {arch}\n"
                "Maintainer: guestagent tests <tests@example.invalid>\n"
                "Description: a package built by the guestagent tests\n")
    prog = os.path.join(tree, "usr", "bin", name)
    with open(prog, "w") as f:
        f.write("#!/bin/sh\n" + script_body + "\n")
    os.chmod(prog, 0o755)
    deb = os.path.join(str(workdir), f"{name}_{version}_{arch}.deb")
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", tree, deb],
                   check=True, capture_output=True)
    return deb


def make_repo(repo, name, version, script_body, more_debs=()):
    """A flat repository in ``repo`` with one package built here, and the
    ``more_debs`` (paths of real .debs, copied in); returns the directory."""
    import shutil
    repo = str(repo)
    os.makedirs(repo, exist_ok=True)
    debs = [build_deb(repo, name, version, script_body)]
    for extra in more_debs:
        debs.append(shutil.copy(extra, repo))
    packages = b""
    for deb in debs:
        with open(deb, "rb") as f:
            data = f.read()
        fields = subprocess.run(["dpkg-deb", "--field", deb], check=True,
                                capture_output=True, text=True).stdout.strip()
        packages += (f"{fields}\nFilename: ./{os.path.basename(deb)}\nSize: {len(data)}\n"
                     f"SHA256: {hashlib.sha256(data).hexdigest()}\n\n").encode()
    with open(os.path.join(repo, "Packages"), "wb") as f:
        f.write(packages)
    with open(os.path.join(repo, "Packages.gz"), "wb") as f:
        f.write(gzip.compress(packages, mtime=0))
    lines = ["Origin: guestagent-tests", "Label: guestagent-tests", "Suite: ./",
             "SHA256:"]
    for fname in ("Packages", "Packages.gz"):
        with open(os.path.join(repo, fname), "rb") as f:
            body = f.read()
        lines.append(f" {hashlib.sha256(body).hexdigest()} {len(body)} {fname}")
    with open(os.path.join(repo, "Release"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return repo


def served_in_netns(repo, port, log):
    """An ``on_netns`` hook for a guest (tests/e2e/harness.Guest): serves
    ``repo`` over HTTP on 127.0.0.1:``port`` inside the guest's network
    namespace (the guest reaches it at 10.0.2.2), and returns once it answers."""
    import sys

    def start(ns):
        ns.popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                  "--directory", str(repo)], stdout=log, stderr=subprocess.STDOUT)
        probe = ("import socket,time\nfor _ in range(100):\n  try:\n"
                 f"    socket.create_connection(('127.0.0.1', {port}), 1); break\n"
                 "  except OSError: time.sleep(0.1)\nelse: raise SystemExit(1)\n")
        ns.run([sys.executable, "-c", probe], check=True)
    return start
