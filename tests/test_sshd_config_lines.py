"""sshd_config lines read one way (system/sshd_config.line_words) by the passwords
step and by check-image, and that way is sshd's: each configuration here is
also given to the real sshd (``sshd -T -f``) and the two readings compared.
"""

import pytest

from guestagent.checkimage.checks_services import sshd_settings as effective
from guestagent.checkimage.tree import Image
from guestagent.steps.passwords import sshd_settings
from guestagent.system import System, sshd_config

from support.marks import needs_root
from support.sshd import available, sshd_t

pytestmark = [needs_root, pytest.mark.root,
              pytest.mark.skipif(not available(), reason="needs openssh-server")]

KEYS = ("passwordauthentication", "pubkeyauthentication", "permitrootlogin",
        "authorizedkeysfile")

CONFIGS = {
    "plain": "PasswordAuthentication no\nPermitRootLogin yes\n",
    "equals-and-trailing-comments": ("PasswordAuthentication=no # managed by hand\n"
                                     "PermitRootLogin = yes\n"
                                     "PubkeyAuthentication  no  #x\n"),
    "hash-inside-a-word": "AuthorizedKeysFile a#b .ssh/authorized_keys\n",
    "quotes-and-escapes": ('AuthorizedKeysFile "/srv/keys dir/%u" .ssh/authorized_keys #old\n'
                           "PermitRootLogin 'no'\n"),
    "case-and-tabs": "  passwordauthentication\tNo\n\tPUBKEYAUTHENTICATION yes\n",
    "first-value-wins": ("#PasswordAuthentication no\nPasswordAuthentication yes\n"
                         "PasswordAuthentication no\n"),
    "include-first": ("Include /etc/ssh/sshd_config.d/*.conf\nPasswordAuthentication yes\n"
                      "Match User bob\n  PasswordAuthentication no\n"),
}
DROPIN = "PasswordAuthentication=no # from the image\nPermitRootLogin no\n"
# (configuration, value) where a line of sshd_config already says it, in its own spelling
ALREADY = {("plain", "no"), ("equals-and-trailing-comments", "no"), ("first-value-wins", "yes")}


def ssh_root(tmp_path, config):
    root = tmp_path / "root"
    (root / "etc/ssh/sshd_config.d").mkdir(parents=True)
    (root / "etc/ssh/sshd_config").write_text(config)
    (root / "etc/ssh/sshd_config.d/50-image.conf").write_text(DROPIN)
    return root


def test_a_line_in_words():
    words = sshd_config.line_words
    assert words("PasswordAuthentication=no # managed") == ["passwordauthentication", "no"]
    assert words("  AuthorizedKeysFile 'a b' c\\ d e#f #g") == [
        "authorizedkeysfile", "a b", "c d", "e#f"]
    assert words("# PasswordAuthentication no") == words("   ") == []
    assert words("Match") == ["match"]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_check_image_reads_sshd_config_as_sshd_does(tmp_path, name):
    root = ssh_root(tmp_path, CONFIGS[name])
    ours = effective(Image(System(str(root))))
    theirs = sshd_t(root)
    assert ours, "the configuration sets something"
    for key in KEYS:
        if key in ours:
            assert ours[key].lower() == theirs[key], key


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("value", ["yes", "no"])
def test_the_passwords_step_sets_what_sshd_then_uses(tmp_path, name, value):
    root = ssh_root(tmp_path, CONFIGS[name])
    system = System(str(root))
    before = {p: p.read_text() for p in (root / "etc/ssh").rglob("*.conf")}
    before[root / "etc/ssh/sshd_config"] = CONFIGS[name]
    changed = sshd_settings.set_option(system, "PasswordAuthentication", value)
    assert sshd_t(root)["passwordauthentication"] == value
    if (name, value) in ALREADY:
        assert changed is None
        assert {p: p.read_text() for p in before} == before
    else:
        assert changed is not None
    assert sshd_settings.set_option(system, "PasswordAuthentication", value) is None
