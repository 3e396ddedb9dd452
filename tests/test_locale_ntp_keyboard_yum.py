"""locale, keyboard, ntp and yum_repos with cloud-init's documented examples."""

import pytest

from guestagent.steps import Skip, keyboard, locale, ntp, yum_repos
from guestagent.userdata import decode

from support.marks import needs_root
from support.step_context import StepContext


def cc(text):
    ud = decode(text.encode(), 1 << 20)
    assert ud.warnings == []
    return ud.cloud_config


# -- yum_repos --------------------------------------------------------------------

YUM_EXAMPLE = """#cloud-config
yum_repos:
  epel-testing:
    baseurl: https://download.example/pub/epel/testing/5/$basearch
    enabled: false
    failovermethod: priority
    gpgcheck: true
    gpgkey: file:///etc/pki/rpm-gpg/RPM-GPG-KEY-EPEL
    name: Extra Packages for Enterprise Linux 5 - Testing
  my repo:
    name: no url
"""


def test_yum_repos_documented_example(root):
    ctx = StepContext(root, cloud_config=cc(YUM_EXAMPLE))
    out = yum_repos.run(ctx)
    assert "my_repo: it has no baseurl" in out.error
    assert out.changes == ["wrote /etc/yum.repos.d/epel-testing.repo"]
    assert (root / "etc/yum.repos.d/epel-testing.repo").read_text() == (
        "# written by guestagent from #cloud-config yum_repos\n"
        "[epel-testing]\n"
        "baseurl=https://download.example/pub/epel/testing/5/$basearch\n"
        "enabled=0\nfailovermethod=priority\ngpgcheck=1\n"
        "gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-EPEL\n"
        "name=Extra Packages for Enterprise Linux 5 - Testing\n")
    assert not (root / "etc/yum.repos.d/my_repo.repo").exists()


def test_yum_repo_file_of_the_image_is_kept(root):
    (root / "etc/yum.repos.d").mkdir(parents=True)
    (root / "etc/yum.repos.d/base.repo").write_text("[base]\nbaseurl=http://image/\n")
    with pytest.raises(Skip, match="exists already"):
        yum_repos.run(StepContext(root, cloud_config={"yum_repos": {
            "base": {"baseurl": "http://other/"}}}))
    assert "http://image/" in (root / "etc/yum.repos.d/base.repo").read_text()


def test_yum_repo_value_spanning_lines_is_refused(root):
    assert "spans lines" in yum_repos.run(StepContext(root, cloud_config={"yum_repos": {
        "x": {"baseurl": "http://x/\n[evil]\nbaseurl=http://evil/"}}})).error


# -- locale -----------------------------------------------------------------------

def test_locale_without_locale_gen_is_named_and_lang_unchanged(root):
    (root / "etc/debian_version").write_text("12\n")
    with pytest.raises(RuntimeError, match="no locale-gen"):
        locale.run(StepContext(root, cloud_config=cc("#cloud-config\nlocale: ja_JP.utf8\n")))
    assert not (root / "etc/default/locale").exists()


@needs_root
@pytest.mark.root
def test_failing_locale_gen_is_named_with_its_own_message(root):
    """The error names the command that failed, its exit code and the last
    line it printed (here chroot's: the tree has no shell to run the tool)."""
    (root / "etc/debian_version").write_text("12\n")
    (root / "usr/share/i18n").mkdir(parents=True)
    (root / "usr/share/i18n/SUPPORTED").write_text("ja_JP.UTF-8 UTF-8\n")
    (root / "usr/sbin").mkdir(parents=True)
    (root / "usr/sbin/locale-gen").write_text("#!/bin/sh\nexit 3\n")
    (root / "usr/sbin/locale-gen").chmod(0o755)
    with pytest.raises(RuntimeError) as e:
        locale.run(StepContext(root, cloud_config={"locale": "ja_JP.UTF-8"}))
    msg = str(e.value)
    assert msg.startswith(f"cannot generate locale ja_JP.UTF-8: chroot {root} locale-gen "
                          "failed (exit 127): chroot: failed to run command"), msg
    assert not (root / "etc/default/locale").exists()


def test_builtin_locale_needs_no_generation(root):
    (root / "etc/debian_version").write_text("12\n")
    locale.run(StepContext(root, cloud_config={"locale": "C.UTF-8"}))
    assert (root / "etc/default/locale").read_text() == "LANG=C.UTF-8\n"


def test_other_distros_write_locale_conf(root):
    (root / "etc/locale.conf").write_text("LANG=en_US.UTF-8\nLC_TIME=C\n")
    locale.run(StepContext(root, cloud_config={"locale": "de_DE.UTF-8"}))
    assert (root / "etc/locale.conf").read_text() == "LANG=de_DE.UTF-8\nLC_TIME=C\n"


@pytest.mark.root
def test_locale_generated_for_real_in_this_machines_debian(tmp_path):
    import os

    from test_packages import _drive

    from support.overlay_root import OverlayRoot, available
    if not available() or not os.path.exists("/usr/sbin/locale-gen"):
        pytest.skip("needs root, overlayfs and the locales package")
    d = _drive(tmp_path, "#cloud-config\nlocale: ja_JP.utf8\n")
    ov = OverlayRoot(tmp_path / "ov")
    res = ov.run(ov.agent("--once", "--root", ov.merged, "--config", d.conf, "--only",
                          "locale") + "\n")
    assert res.returncode == 0, res.stdout + res.stderr
    with open(ov.changed("/etc/default/locale")) as f:
        assert f.read().startswith("LANG=ja_JP.utf8\n")
    with open(ov.changed("/etc/locale.gen")) as f:
        assert "ja_JP.UTF-8 UTF-8" in f.read().splitlines()
    assert ov.changed("/usr/lib/locale/locale-archive")


# -- ntp --------------------------------------------------------------------------

def _chrony(root):
    (root / "usr/sbin").mkdir(parents=True, exist_ok=True)
    (root / "usr/sbin/chronyd").write_text("")
    (root / "etc/chrony").mkdir(parents=True)
    (root / "etc/chrony/chrony.conf").write_text(
        "pool 2.debian.pool.ntp.org iburst\nkeyfile /etc/chrony/chrony.keys\n")


def test_ntp_servers_for_chrony(root):
    _chrony(root)
    changes = ntp.run(StepContext(root, cloud_config=cc(
        "#cloud-config\nntp:\n  servers:\n    - fr.pool.ntp.org\n")))
    assert (root / "etc/chrony/chrony.conf").read_text() == (
        "# pool 2.debian.pool.ntp.org iburst  # replaced by guestagent\n"
        "keyfile /etc/chrony/chrony.keys\n"
        f"{ntp.MARK}\nserver fr.pool.ntp.org iburst\n")
    assert changes == ["chrony: fr.pool.ntp.org in /etc/chrony/chrony.conf"]


def test_ntp_enabled_only_uses_the_distro_pools_and_timesyncd(root):
    (root / "usr/lib/systemd").mkdir(parents=True)
    (root / "usr/lib/systemd/systemd-timesyncd").write_text("")
    ntp.run(StepContext(root, cloud_config=cc("#cloud-config\nntp:\n  enabled: true\n")))
    assert (root / "etc/systemd/timesyncd.conf.d/guestagent.conf").read_text() == (
        f"{ntp.MARK}\n[Time]\nNTP=0.debian.pool.ntp.org 1.debian.pool.ntp.org "
        "2.debian.pool.ntp.org 3.debian.pool.ntp.org\n")


def test_ntp_without_a_client_or_the_wrong_one(root):
    with pytest.raises(RuntimeError, match="no NTP client in this image"):
        ntp.run(StepContext(root, cloud_config={"ntp": {"enabled": True}}))
    _chrony(root)
    with pytest.raises(RuntimeError, match="ntpd|ntp is not installed"):
        ntp.run(StepContext(root, cloud_config={"ntp": {"ntp_client": "ntpd"}}))
    with pytest.raises(Skip):
        ntp.run(StepContext(root, cloud_config={"ntp": {"enabled": False}}))


# -- keyboard ---------------------------------------------------------------------

def test_keyboard_documented_example(root):
    (root / "etc/debian_version").write_text("12\n")
    keyboard.run(StepContext(root, cloud_config=cc(
        "#cloud-config\nkeyboard:\n  layout: de\n  model: pc105\n  variant: nodeadkeys\n"
        "  options: compose:rwin\n")))
    assert (root / "etc/default/keyboard").read_text().splitlines()[1:] == [
        'XKBMODEL="pc105"', 'XKBLAYOUT="de"', 'XKBVARIANT="nodeadkeys"',
        'XKBOPTIONS="compose:rwin"', 'BACKSPACE="guess"']


def test_keyboard_layout_only_and_bad_values():
    assert cc("#cloud-config\nkeyboard:\n  layout: se\n")["keyboard"] == \
        {"layout": "se", "model": "pc105", "variant": "", "options": ""}
    ud = decode(b'#cloud-config\nkeyboard: {layout: "de\\"; rm"}\n', 1 << 20)
    assert "keyboard" not in ud.cloud_config
