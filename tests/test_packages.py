"""packages, package_update/upgrade/reboot_if_required and apt sources.

The schema and command lines are checked against cloud-init's documented
examples; apt-get itself runs for real, chrooted into an overlay of this
machine's Debian system, installing a package the test builds with dpkg-deb
from a `[trusted=yes]` file repository added through `apt: sources:`.
"""

import os
import sys
import textwrap

import pytest

from guestagent.steps import Skip
from guestagent.steps import packages as step
from guestagent.steps.packages import managers
from guestagent.userdata import decode

from support.aptrepo import make_repo
from support.overlay_root import OverlayRoot, available
from support.step_context import StepContext

CLOUD_INIT_EXAMPLE = """\
#cloud-config
package_reboot_if_required: true
package_update: true
package_upgrade: true
packages:
  - pwgen
  - pastebinit
  - [libpython3.8, 3.8.10-0ubuntu1~20.04.2]
  - snap:
    - certbot
    - [juju, --edge]
    - [lxd, --channel=5.15/stable]
  - apt: [mg]
"""


def test_cloud_init_documented_example_is_understood():
    ud = decode(CLOUD_INIT_EXAMPLE.encode(), 1 << 20)
    cc = ud.cloud_config
    assert ud.warnings == []
    assert (cc["package_update"], cc["package_upgrade"], cc["package_reboot_if_required"]) \
        == (True, True, True)
    assert cc["packages"] == [
        {"name": "pwgen", "version": None, "via": "any"},
        {"name": "pastebinit", "version": None, "via": "any"},
        {"name": "libpython3.8", "version": "3.8.10-0ubuntu1~20.04.2", "via": "any"},
        {"name": "certbot", "version": None, "via": "snap"},
        {"name": "juju", "version": "--edge", "via": "snap"},
        {"name": "lxd", "version": "--channel=5.15/stable", "via": "snap"},
        {"name": "mg", "version": None, "via": "apt"},
    ]


def test_old_apt_names_and_bad_entries():
    ud = decode(b"#cloud-config\napt_update: true\napt_upgrade: false\n"
                b"apt_reboot_if_required: true\n"
                b"packages: [ok, '--force-yes', 'two words', [a, b, c], {yum: [x]}, 7]\n",
                1 << 20)
    assert step.wanted(ud.cloud_config) == (True, False, True,
                                            [{"name": "ok", "version": None, "via": "any"}])
    text = " ".join(ud.warnings)
    assert "packages entry 2" in text and "packages entry 3" in text
    assert "packages entry 4" in text and "'yum' is not apt or snap" in text
    assert "packages entry 6" in text


def test_wrong_type_is_a_warning_not_a_crash():
    ud = decode(b"#cloud-config\npackage_update: yes please\npackages: {a: b}\n", 1 << 20)
    assert "package_update" not in ud.cloud_config
    assert any("'package_update': expected true or false" in w for w in ud.warnings)


@pytest.mark.parametrize("cls, update, upgrade, install", [
    (managers.Apt, "update", "dist-upgrade", ["install", "--", "pwgen", "libc6=2.36"]),
    (managers.Dnf, ["dnf", "-y", "makecache"], ["dnf", "-y", "upgrade"],
     ["dnf", "-y", "install", "--", "pwgen", "libc6-2.36"]),
    (managers.Yum, ["yum", "-y", "makecache"], ["yum", "-y", "upgrade"],
     ["yum", "-y", "install", "--", "pwgen", "libc6-2.36"]),
    (managers.Zypper, ["zypper", "--non-interactive", "refresh"],
     ["zypper", "--non-interactive", "update"],
     ["zypper", "--non-interactive", "install", "--auto-agree-with-licenses", "--", "pwgen",
      "libc6=2.36"]),
    (managers.Apk, ["apk", "update"], ["apk", "upgrade"],
     ["apk", "add", "--", "pwgen", "libc6=2.36"]),
])
def test_each_manager_runs_without_prompts(cls, update, upgrade, install, root):
    m = cls(StepContext(root).system, "/usr/bin/x")
    specs = [m.spec("pwgen", None), m.spec("libc6", "2.36")]
    if cls is managers.Apt:
        base = m.update_argv()[:-1]
        assert "--assume-yes" in base and "--option=Dpkg::Options::=--force-confold" in base
        assert m.env["DEBIAN_FRONTEND"] == "noninteractive"
        assert m.update_argv()[-1] == update and m.upgrade_argv()[-1] == upgrade
        assert m.install_argv(specs)[len(base):] == install
    else:
        assert (m.update_argv(), m.upgrade_argv(), m.install_argv(specs)) == \
            (update, upgrade, install)


@pytest.mark.parametrize("binary, name", [("apt-get", "apt-get"), ("dnf", "dnf"),
                                          ("yum", "yum"), ("zypper", "zypper"),
                                          ("apk", "apk")])
def test_the_manager_is_found_in_the_image(root, binary, name):
    for d in ("usr/bin", "sbin"):
        for f in (root / d).glob("*") if (root / d).is_dir() else []:
            if f.name in ("apt-get", "dnf", "yum", "zypper", "apk"):
                f.unlink()
    (root / "usr/bin").mkdir(parents=True, exist_ok=True)
    p = root / "usr/bin" / binary
    p.write_text("#!/bin/sh\n")
    p.chmod(0o755)
    assert managers.find(StepContext(root).system).name == name


def test_no_package_manager_is_named(root):
    for d in ("usr/bin", "usr/sbin", "bin", "sbin"):
        for n in ("apt-get", "dnf", "yum", "zypper", "apk"):
            p = root / d / n
            if p.exists() and not p.is_symlink():
                p.unlink()
    ctx = StepContext(root, cloud_config={"packages": [{"name": "x", "version": None,
                                                       "via": "any"}]})
    if managers.find(ctx.system) is not None:
        pytest.skip("the scratch root reaches a package manager through a symlink")
    with pytest.raises(RuntimeError, match="no package manager in this image"):
        step.run(ctx)


def test_nothing_asked_is_a_skip(root):
    with pytest.raises(Skip):
        step.run(StepContext(root, cloud_config={"package_update": False}))


def test_last_error_is_the_managers_own_words():
    out = "Reading package lists...\nE: Unable to locate package nosuch\n"
    assert managers.last_error(out) == "E: Unable to locate package nosuch"
    assert managers.fetch_failures("Err:1 http://x bookworm InRelease\n  Could not resolve\n"
                                   "W: Failed to fetch http://x/dists/bookworm/InRelease\n") \
        == ["Err:1 http://x bookworm InRelease",
            "W: Failed to fetch http://x/dists/bookworm/InRelease"]


# -- apt-get for real ----------------------------------------------------------------

needs_overlay = pytest.mark.skipif(not available(), reason="needs root, unshare, overlayfs "
                                   "and apt-get")


def _drive(tmp_path, user_data):
    from support.userdata_helpers import Drive
    d = Drive.__new__(Drive)  # only the config drive tree and the config file
    import shutil

    from support import EXAMPLES
    d.dir = tmp_path / "configdrive"
    shutil.copytree(os.path.join(EXAMPLES, "configdrive"), d.dir)
    d.conf = tmp_path / "guestagent.conf"
    d.set_instance_id("iid-packages-1")
    d.user_data(user_data)
    d.conf.write_text(f"[main]\ndatasources = configdrive\ndefault_user = debian\n"
                      f"[configdrive]\npath = {d.dir}\n")
    return d


LOCAL_REPO_SOURCE = """\
#cloud-config
apt:
  preserve_sources_list: true
  sources:
    ga-local:
      source: "deb [trusted=yes] file:/srv/ga-repo ./"
"""


def _drive_with_local_repo(tmp_path, rest):
    """The test's own apt repository (ga-hello 1.0, bound at /srv/ga-repo in an
    overlay root) and a config drive whose #cloud-config adds it as a source,
    then says ``rest``; returns (drive, overlay)."""
    repo = make_repo(tmp_path / "repo", "ga-hello", "1.0", 'echo "hello from ga-hello"')
    d = _drive(tmp_path, LOCAL_REPO_SOURCE + textwrap.dedent(rest))
    ov = OverlayRoot(tmp_path / "ov")
    ov.bind(repo, "/srv/ga-repo")
    return d, ov


@pytest.mark.root
@needs_overlay
def test_apt_installs_from_a_repository_added_by_apt_sources(tmp_path):
    d, ov = _drive_with_local_repo(tmp_path, """\
        package_update: true
        packages:
          - ga-hello
          - [ga-hello, "1.0"]
        runcmd:
          - chroot "$GUESTAGENT_ROOT" ga-hello > "$GUESTAGENT_ROOT/var/tmp/ga-hello.out"
        """)
    # another package manager holds dpkg's lock for the first seconds: apt waits
    res = ov.run(
        f"{_hold_lock('$ROOT/var/lib/dpkg/lock-frontend', 4)}\n"
        f"t0=$(date +%s)\n"
        f"{ov.agent('--once', '--root', ov.merged, '--config', d.conf, '--only', 'apt_configure,packages,runcmd')} || echo agent-exit=$?\n"  # noqa: E501
        f"echo took=$(( $(date +%s) - t0 ))\n"
        f"{ov.agent('status', '--json', '--root', ov.merged)}\n",
        env={"PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))})
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert "agent-exit" not in res.stdout, out
    assert ov.changed("/usr/bin/ga-hello"), out
    status = ov.changed("/var/lib/dpkg/status")
    assert "Package: ga-hello\nStatus: install ok installed" in open(status).read()
    with open(ov.changed("/etc/apt/sources.list.d/ga-local.list")) as f:
        assert f.read() == "deb [trusted=yes] file:/srv/ga-repo ./\n"
    with open(ov.changed("/var/tmp/ga-hello.out")) as f:
        assert f.read() == "hello from ga-hello\n"
    took = int(out.split("took=")[1].split()[0])
    assert took >= 4, "apt did not wait for the lock holder"
    with open(ov.changed("/var/log/guestagent-packages.log")) as f:
        log = f.read()
    assert "apt-get" in log and "ga-hello" in log
    assert '"name": "packages"' in out and '"result": "changed"' in out


@pytest.mark.root
@needs_overlay
def test_a_dpkg_run_cut_off_on_an_earlier_boot_is_finished_first(tmp_path):
    """The power went while dpkg installed (issue 29's sweep): its journal
    in /var/lib/dpkg/updates makes apt refuse every install until `dpkg
    --configure -a` has run.  The step finishes it, then installs."""
    d, ov = _drive_with_local_repo(tmp_path, """\
        packages: [ga-hello]
        """)
    # a dpkg journal entry as dpkg leaves it: a status stanza not yet merged
    journal = ("mkdir -p $ROOT/var/lib/dpkg/updates && "
               "chroot $ROOT dpkg-query -s base-files > $ROOT/var/lib/dpkg/updates/0000\n")
    apt_alone = "chroot $ROOT apt-get -q -y install ga-hello || echo apt-alone=$?\n"
    res = ov.run(journal + apt_alone
                 + f"{ov.agent('--once', '--root', ov.merged, '--config', d.conf, '--only', 'apt_configure,packages')} || echo agent-exit=$?\n"  # noqa: E501
                 + f"{ov.agent('status', '--json', '--root', ov.merged)}\n",
                 env={"PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))})
    out = res.stdout + res.stderr
    # without the agent's help apt refuses: the state the test made is the real one
    assert "dpkg was interrupted" in out and "apt-alone=100" in out, out
    assert "agent-exit" not in res.stdout, out
    assert "finished the package changes an earlier boot's dpkg left half done" in out, out
    status = ov.changed("/var/lib/dpkg/status")
    assert "Package: ga-hello\nStatus: install ok installed" in open(status).read()


@pytest.mark.root
@needs_overlay
def test_package_lists_a_cut_boot_left_full_of_nuls_are_fetched_again(tmp_path):
    """apt writes its lists without fsync: a power cut (issue 29's sweep, on
    XFS) leaves them holding NULs, and apt then refuses every update and
    install.  The step removes the lists once and fetches them again."""
    d, ov = _drive_with_local_repo(tmp_path, """\
        package_update: true
        packages: [ga-hello]
        """)
    agent = ov.agent('--once', '--root', ov.merged, '--config', d.conf, '--only',
                     'apt_configure,packages')
    # the lists as the cut boot left them: each file its size in NULs
    damage = ("echo 'deb [trusted=yes] file:/srv/ga-repo ./' > "
              "$ROOT/etc/apt/sources.list.d/ga-local.list\n"
              "chroot $ROOT apt-get -q update >/dev/null 2>&1 || true\n"
              "for f in $ROOT/var/lib/apt/lists/*_*; do\n"
              "  head -c $(stat -c %s \"$f\") /dev/zero > \"$f.z\" && mv \"$f.z\" \"$f\"; done\n"
              "chroot $ROOT apt-get -q install ga-hello || echo apt-alone=$?\n")
    res = ov.run(damage + f"{agent} || echo agent-exit=$?\n",
                 env={"PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))})
    out = res.stdout + res.stderr
    assert "could not be parsed or opened" in out and "apt-alone=100" in out, out
    assert "agent-exit" not in res.stdout, out
    assert "removed" in out and "fetching them again" in out, out
    status = ov.changed("/var/lib/dpkg/status")
    assert "Package: ga-hello\nStatus: install ok installed" in open(status).read()


@pytest.mark.root
@needs_overlay
def test_apt_failure_is_named_with_apts_own_message(tmp_path):
    d = _drive(tmp_path, "#cloud-config\npackages: [ga-no-such-package]\n")
    ov = OverlayRoot(tmp_path / "ov")
    res = ov.run(f"{ov.agent('--once', '--root', ov.merged, '--config', d.conf, '--only', 'packages')} "  # noqa: E501
                 f"|| echo agent-exit=$?\n"
                 f"{ov.agent('status', '--json', '--root', ov.merged)}\n")
    out = res.stdout + res.stderr
    assert "agent-exit=1" in out, out
    assert "Unable to locate package ga-no-such-package" in out
    assert "apt-get could not install ga-no-such-package" in out


def _hold_lock(path, seconds):
    """Shell: a background process holding an fcntl lock on ``path`` for a while."""
    code = (f"import fcntl,time,sys; f=open(sys.argv[1],'a'); fcntl.lockf(f, fcntl.LOCK_EX); "
            f"open(sys.argv[2],'w').close(); time.sleep({seconds})")
    return (f"{sys.executable} -c \"{code}\" {path} /tmp/ga-locked &\n"
            "while [ ! -e /tmp/ga-locked ]; do sleep 0.1; done")


def test_lock_message_is_recognised():
    assert managers._LOCKED.search("E: Could not get lock /var/lib/apt/lists/lock. It is "
                                   "held by process 123 (apt-get)")
    assert managers._LOCKED.search("Error: Failed to obtain the transaction lock")
    assert not managers._LOCKED.search("E: Unable to locate package x")


@pytest.mark.root
@needs_overlay
def test_snaps_without_snapd_are_a_warning_and_the_rest_installs(tmp_path):
    repo = make_repo(tmp_path / "repo", "ga-hello", "1.0", 'echo hi')
    d = _drive(tmp_path, textwrap.dedent("""\
        #cloud-config
        apt:
          sources:
            ga-local: {source: "deb [trusted=yes] file:/srv/ga-repo ./"}
        packages:
          - snap: [certbot]
          - apt: [ga-hello]
        """))
    ov = OverlayRoot(tmp_path / "ov")
    ov.bind(repo, "/srv/ga-repo")
    res = ov.run(ov.agent("--once", "--root", ov.merged, "--config", d.conf, "--only",
                          "apt_configure,packages") + "\n")
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    if os.path.exists("/usr/bin/snap"):
        pytest.skip("this machine has snapd")
    assert "snaps certbot not installed: snapd is not in this image" in out
    assert ov.changed("/usr/bin/ga-hello"), out
