"""/etc/shadow read one way (shadow.entry, shadow.password_state) by the users
step and by check-image, and that way is the shadow tools': each password
field here is also given to ``passwd -S`` (shadow-utils) in the same root.
"""

import shutil
import subprocess

import pytest

from guestagent.accounts import shadow
from guestagent.checkimage.checks_services import check_root_password
from guestagent.checkimage.tree import Image
from guestagent.system import System

from support.marks import needs_root

FIELDS = {  # user -> password field
    "hashed": "$6$saltsalt$abcdefghijklmnop",
    "yescrypt": "$y$j9T$salt$hash",
    "bang": "!$6$saltsalt$abcdefghijklmnop",
    "bangbang": "!!",
    "star": "*",
    "solaris": "*LK*",
    "empty": "",
}
PASSWD_S = {"L": "locked", "P": "set", "NP": "none"}
# check-image's verdict on root's password, by what the field lets in
VERDICT = {"locked": "pass", "set": "warn", "none": "fail"}


def shadow_root(tmp_path, fields):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    # passwd -R looks its caller (uid 0) up inside the root
    (root / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n" + "".join(
        f"{user}:x:{1000 + i}:{1000 + i}::/home/{user}:/bin/sh\n"
        for i, user in enumerate(fields) if user != "root"))
    (root / "etc/shadow").write_text("".join(
        f"{user}:{field}:19700:0:99999:7:::\n" for user, field in fields.items()))
    return root


@needs_root
@pytest.mark.root
@pytest.mark.skipif(not shutil.which("passwd"), reason="needs passwd (shadow-utils)")
def test_password_state_is_what_passwd_s_says(tmp_path):
    root = shadow_root(tmp_path, FIELDS)
    system = System(str(root))
    for user in FIELDS:
        res = subprocess.run(["passwd", "-R", str(root), "-S", user],
                             capture_output=True, text=True, check=True)
        assert res.stdout.split()[:2] == [user, next(
            k for k, v in PASSWD_S.items() if v == shadow.status(system, user))], user


@pytest.mark.parametrize("user", sorted(FIELDS))
def test_check_image_judges_roots_password_by_the_same_reading(tmp_path, user):
    root = shadow_root(tmp_path, {"root": FIELDS[user]})
    state = shadow.password_state(FIELDS[user])
    assert shadow.status(System(str(root)), "root") == state
    assert check_root_password(Image(System(str(root)))).status == VERDICT[state]


def test_a_line_without_its_first_three_fields_is_no_entry(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/shadow").write_text("root:\ndaemon:*:19700:0:99999:7:::\n")
    assert shadow.entry((root / "etc/shadow").read_text(), "root") is None
    assert shadow.status(System(str(root)), "root") == "missing"
    finding = check_root_password(Image(System(str(root))))
    assert (finding.status, finding.detail) == ("pass", "no root entry in /etc/shadow")
