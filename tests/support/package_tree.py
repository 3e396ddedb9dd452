"""The source tree as a fresh clone has it, for package builds, and the same
tree as the next release (an upgrade to install over an older package).

Standard library only: the e2e harness uses it outside pytest."""

import os
import re
import shutil
import subprocess

from . import REPO


def clean_copy(dest):
    """The tree as a fresh clone would have it (tracked files plus new,
    unignored ones), committed into a scratch repository at ``dest``."""
    files = subprocess.run(["git", "-C", REPO, "ls-files", "-z", "--cached", "--others",
                            "--exclude-standard"], capture_output=True, check=True).stdout
    os.makedirs(dest)
    for rel in filter(None, files.decode().split("\0")):
        src = os.path.join(REPO, rel)
        if not os.path.lexists(src):
            continue  # deleted in the working tree, not yet committed
        os.makedirs(os.path.join(dest, os.path.dirname(rel)), exist_ok=True)
        if os.path.islink(src):
            os.symlink(os.readlink(src), os.path.join(dest, rel))
        else:
            shutil.copy2(src, os.path.join(dest, rel))
    commit(dest, "snapshot")
    return dest


def commit(tree, message):
    git = ["git", "-C", str(tree), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    if not os.path.isdir(os.path.join(tree, ".git")):
        subprocess.run(git + ["init", "-q"], check=True)
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-q", "-m", message], check=True)


def next_version(version):
    """0.1.0 -> 0.1.1: what dpkg and rpm both order after ``version``."""
    head, last = re.match(r"^(.*?)(\d+)$", version).groups()
    return f"{head}{int(last) + 1}"


def bump_version(tree):
    """Make ``tree`` the next release: the package's __version__, a Debian
    changelog entry and the RPM spec's Version.  Returns the new version."""
    init = os.path.join(tree, "guestagent", "__init__.py")
    text = open(init).read()
    old = re.search(r'^__version__ = "(.*)"$', text, re.M).group(1)
    new = next_version(old)
    with open(init, "w") as f:
        f.write(text.replace(f'__version__ = "{old}"', f'__version__ = "{new}"'))
    changelog = os.path.join(tree, "packaging", "debian", "changelog")
    text = open(changelog).read()
    with open(changelog, "w") as f:
        f.write(f"guestagent ({new}) unstable; urgency=medium\n\n"
                f"  * Test build: the release after {old}, to upgrade to.\n\n"
                " -- guestagent maintainers <maintainers@users.noreply.r-seed-9489d84d.example>"
                "  Mon, 07 Dec 2026 00:00:00 +0000\n\n" + text)
    spec = os.path.join(tree, "packaging", "rpm", "guestagent.spec")
    text = open(spec).read()
    with open(spec, "w") as f:
        f.write(re.sub(r"^(Version:\s*)\S+$", rf"\g<1>{new}", text, count=1, flags=re.M))
    commit(tree, f"release {new}")
    return new
