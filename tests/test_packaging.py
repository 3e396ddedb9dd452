"""Packages: packaging/build-deb and packaging/build-rpm from a clean copy of the tree.

The builds run for real (dpkg-buildpackage, rpmbuild) in a scratch git
repository holding this tree's files, so the checkout's own dist/ is left
alone; then the packages are read back with dpkg-deb and rpm, linted, and
their payload is run.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from guestagent import __version__

from support import REPO
from support.marks import needs_root
from support.package_tree import bump_version, clean_copy

UNIT_NAMES = ("guestagent-local.service", "guestagent.service", "guestagent-final.service")
MAIN_UNIT = "guestagent-main.service"  # static: the stage units pull it in
DEB_DEPENDS = ("python3-requests", "python3-pyroute2", "python3-yaml", "python3-psutil",
               "cloud-guest-utils", "e2fsprogs", "parted")
RPM_REQUIRES = ("python3-requests", "python3-pyroute2", "python3-pyyaml", "python3-psutil",
                "cloud-utils-growpart", "e2fsprogs", "parted", "/usr/bin/flock")
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


def sh(*argv, **kw):
    kw.setdefault("timeout", 600)
    res = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                         env=dict(os.environ, PATH=SYSTEM_PATH, LC_ALL="C.UTF-8"), **kw)
    assert res.returncode == 0, f"{argv} exited {res.returncode}:\n{res.stdout}\n{res.stderr}"
    return res.stdout


# ---- versions and declared dependencies (no build) -----------------------------------------

def test_debian_changelog_matches_the_version():
    first = open(os.path.join(REPO, "packaging/debian/changelog")).readline()
    assert re.match(r"^guestagent \(([^)]+)\)", first).group(1) == __version__


def test_rpm_spec_matches_the_version():
    spec = open(os.path.join(REPO, "packaging/rpm/guestagent.spec")).read()
    assert re.search(r"^Version:\s*(\S+)$", spec, re.M).group(1) == __version__


def test_debian_install_list_names_real_files():
    for line in open(os.path.join(REPO, "packaging/debian/guestagent.install")):
        if line.strip():
            src = line.split()[0]
            assert os.path.exists(os.path.join(REPO, src)), src
    init = os.path.join(REPO, "packaging/debian/guestagent.init")
    assert os.path.realpath(init) == os.path.join(REPO, "units/guestagent.init")


# ---- the builds -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("the build scripts install their build dependencies as root")
    return Path(clean_copy(tmp_path_factory.mktemp("pkg") / "guestagent"))


@pytest.fixture(scope="module")
def deb(tree):
    out = sh(tree / "packaging/build-deb")
    path = out.strip().splitlines()[-1]
    assert path == str(tree / f"dist/guestagent_{__version__}_all.deb")
    assert os.path.isfile(path)
    return path


@pytest.fixture(scope="module")
def rpm(tree):
    out = sh(tree / "packaging/build-rpm")
    path = out.strip().splitlines()[-1]
    assert path == str(tree / f"dist/guestagent-{__version__}-1.noarch.rpm")
    assert os.path.isfile(path)
    return path


def mark_root(fn):
    return needs_root(pytest.mark.root(fn))


# ---- the .deb ---------------------------------------------------------------------------------

@mark_root
def test_deb_contains_command_units_config_and_man_page(deb):
    listing = sh("dpkg-deb", "-c", deb)
    names = {line.split()[-1].lstrip(".") for line in listing.splitlines()}
    expected = {"/usr/bin/guestagent", "/etc/guestagent/guestagent.conf",
                "/etc/init.d/guestagent", "/usr/share/man/man1/guestagent.1.gz",
                "/usr/lib/python3/dist-packages/guestagent/cli.py",
                "/usr/share/doc/guestagent/rc.local.snippet",
                "/usr/libexec/guestagent/guestagent-unchanged",
                "/usr/libexec/guestagent/guestagent-local-source",
                "/usr/libexec/guestagent/guestagent-stage"}
    expected |= {f"/lib/systemd/system/{u}" for u in UNIT_NAMES + (MAIN_UNIT,)}
    assert expected <= names, expected - names
    assert sh("dpkg-deb", "-f", deb, "Version").strip() == __version__
    assert sh("dpkg-deb", "-f", deb, "Architecture").strip() == "all"
    depends = sh("dpkg-deb", "-f", deb, "Depends")
    for dep in DEB_DEPENDS:
        assert re.search(rf"(^|, ){re.escape(dep)}\b", depends), f"{dep} not in Depends"
    assert "python3 (>= 3.9)" in depends
    assert {"lvm2", "openssh-server", "python3-jinja2", "xfsprogs"} <= set(
        sh("dpkg-deb", "-f", deb, "Recommends").replace(",", " ").split())


@mark_root
def test_deb_config_is_a_conffile_and_install_never_runs_the_agent(deb, tmp_path):
    sh("dpkg-deb", "-e", deb, tmp_path / "control")
    conffiles = (tmp_path / "control/conffiles").read_text().split()
    assert "/etc/guestagent/guestagent.conf" in conffiles
    postinst = (tmp_path / "control/postinst").read_text()
    for unit in UNIT_NAMES:
        assert f"deb-systemd-helper enable '{unit}'" in postinst
    assert "update-rc.d guestagent defaults" in postinst
    # Starting the agent on install would take a live machine for a new
    # instance (new host keys): enabled for the next boot only.
    for script in ("postinst", "prerm", "postrm", "preinst"):
        text = (tmp_path / "control" / script).read_text()
        assert "deb-systemd-invoke start" not in text
        assert "deb-systemd-invoke restart" not in text
        assert "invoke-rc.d guestagent start" not in text
        assert "invoke-rc.d --skip-systemd-native guestagent start" not in text


@mark_root
def test_deb_is_lintian_clean(deb, tree):
    res = subprocess.run(["lintian", "--fail-on", "error", deb,
                          str(tree / f"dist/guestagent_{__version__}.dsc")],
                         capture_output=True, text=True, timeout=600,
                         env=dict(os.environ, PATH=SYSTEM_PATH))
    assert res.returncode == 0, res.stdout + res.stderr
    tags = [line for line in res.stdout.splitlines() if re.match(r"^[EW]: ", line)]
    assert tags == [], "\n".join(tags)


@mark_root
def test_deb_payload_runs(deb, tmp_path):
    sh("dpkg-deb", "-x", deb, tmp_path)
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "usr/lib/python3/dist-packages"),
               PATH=SYSTEM_PATH)
    out = subprocess.run(["/usr/bin/python3", tmp_path / "usr/bin/guestagent", "--version"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"guestagent {__version__}"
    helped = subprocess.run(["/usr/bin/python3", tmp_path / "usr/bin/guestagent", "--help"],
                            capture_output=True, text=True, env=env, timeout=60)
    assert "--stage {local,network,final,all}" in helped.stdout
    page = tmp_path / "usr/share/man/man1/guestagent.1.gz"
    man = subprocess.run(["man", "-l", "--warnings", page], capture_output=True, text=True,
                         env=dict(env, MANWIDTH="80"), timeout=60)
    assert man.returncode == 0, man.stderr
    assert "first-boot agent for Linux cloud images" in man.stdout and man.stderr == ""


@mark_root
def test_deb_units_verify_as_installed(deb, tmp_path):
    """The units as the package installs them, checked by systemd against the
    package's own /usr/bin/guestagent."""
    if not (shutil.which("systemd-analyze") and os.path.isdir("/usr/lib/systemd/system")):
        pytest.skip("needs systemd-analyze")
    root = tmp_path / "root"
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    sh("dpkg-deb", "-x", deb, root)
    res = subprocess.run(["systemd-analyze", "--man=no", f"--root={root}", "verify"]
                         + [str(root / "lib/systemd/system" / u)
                            for u in UNIT_NAMES + (MAIN_UNIT,)],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stderr == "", res.stderr


# ---- the .rpm ---------------------------------------------------------------------------------

@mark_root
def test_rpm_contains_command_units_config(rpm, tree):
    files = set(sh("rpm", "-qlp", rpm).split())
    expected = {"/usr/bin/guestagent", "/etc/guestagent/guestagent.conf",
                "/usr/share/man/man1/guestagent.1.gz",
                "/usr/lib/systemd/system-preset/80-guestagent.preset",
                "/usr/libexec/guestagent/guestagent-unchanged",
                "/usr/libexec/guestagent/guestagent-local-source",
                "/usr/libexec/guestagent/guestagent-stage"}
    expected |= {f"/usr/lib/systemd/system/{u}" for u in UNIT_NAMES + (MAIN_UNIT,)}
    assert expected <= files, expected - files
    assert any(f.endswith("/site-packages/guestagent/cli.py") for f in files)
    assert sh("rpm", "-qp", "--configfiles", rpm).split() == ["/etc/guestagent/guestagent.conf"]
    assert os.path.isfile(tree / f"dist/guestagent-{__version__}-1.src.rpm")
    assert sh("rpm", "-qp", "--qf", "%{VERSION} %{ARCH}", rpm) == f"{__version__} noarch"


@mark_root
def test_rpm_requires_and_scriptlets(rpm):
    requires = sh("rpm", "-qp", "--requires", rpm).splitlines()
    for dep in RPM_REQUIRES:
        assert dep in requires, f"{dep} not in Requires"
    assert "python3 >= 3.9" in requires
    recommends = sh("rpm", "-qp", "--recommends", rpm).split()
    assert {"lvm2", "openssh-server", "python3-jinja2", "xfsprogs"} <= set(recommends)
    scripts = sh("rpm", "-qp", "--scripts", rpm)
    assert "preset " + " ".join(UNIT_NAMES) in scripts   # enabled, by preset
    assert "disable " + " ".join(UNIT_NAMES) in scripts  # on erase
    commands = [line for line in scripts.splitlines() if not line.lstrip().startswith("#")]
    assert not re.search(r"\b(start|restart|try-restart)\b", "\n".join(commands))


@mark_root
def test_rpm_is_rpmlint_clean(rpm, tree):
    res = subprocess.run(["rpmlint", "-c", str(tree / "packaging/rpm/rpmlint.toml"), rpm,
                          str(tree / f"dist/guestagent-{__version__}-1.src.rpm"),
                          str(tree / "packaging/rpm/guestagent.spec")],
                         capture_output=True, text=True, timeout=600,
                         env=dict(os.environ, PATH=SYSTEM_PATH))
    assert re.search(r"checked; 0 errors, 0 warnings", res.stdout), res.stdout + res.stderr


@mark_root
def test_rpm_payload_runs(rpm, tmp_path):
    cpio = subprocess.run(["rpm2cpio", rpm], capture_output=True, check=True).stdout
    subprocess.run(["cpio", "-idm", "--quiet"], input=cpio, cwd=tmp_path, check=True)
    sitelib = [d for d in (tmp_path / "usr/lib").glob("python3*/site-packages")]
    assert len(sitelib) == 1
    out = subprocess.run(["/usr/bin/python3", tmp_path / "usr/bin/guestagent", "--version"],
                         capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=str(sitelib[0]), PATH=SYSTEM_PATH))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"guestagent {__version__}"


# ---- the .rpm installed: rpm --root into a scratch tree ------------------------------------

FAKE_SYSTEMCTL = "#!/bin/sh\necho \"$*\" >>/var/log/systemctl.calls\n"


def scratch_root(root):
    """An empty tree rpm can install into and run scriptlets in: an rpm
    database, /dev/null, a /bin/sh (this machine's dash and its libc) and a
    systemctl that only records how it was called."""
    for d in ("bin", "usr/bin", "dev", "var/log", "lib64", "lib/x86_64-linux-gnu"):
        (root / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2("/bin/dash", root / "bin/sh")
    for lib in ("/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"):
        shutil.copy2(os.path.realpath(lib), root / lib.lstrip("/"))
    (root / "usr/bin/systemctl").write_text(FAKE_SYSTEMCTL)
    (root / "usr/bin/systemctl").chmod(0o755)
    subprocess.run(["mknod", "-m", "666", root / "dev/null", "c", "1", "3"], check=True)
    sh("rpm", "--root", root, "--initdb")
    return root


def systemctl_calls(root):
    path = root / "var/log/systemctl.calls"
    calls = path.read_text().splitlines() if path.exists() else []
    path.unlink(missing_ok=True)
    return calls


@mark_root
def test_rpm_installs_upgrades_and_erases_in_a_scratch_root(rpm, tmp_path):
    """What %post/%preun/%postun do when rpm really runs them (chrooted into
    the scratch root), against what Fedora's %systemd_post, %systemd_preun
    and %systemd_postun do: preset on the first install only, disable on the
    last erase only, a daemon-reload after, and never a start or restart."""
    root = scratch_root(tmp_path / "root")
    units = " ".join(UNIT_NAMES)

    sh("rpm", "--root", root, "-i", "--nodeps", rpm)
    assert systemctl_calls(root) == [f"--no-reload preset {units}"]
    # every file as the package says (digest, mode, owner, size): nothing the
    # scriptlets or the install changed behind rpm's back
    assert sh("rpm", "--root", root, "-V", "--nodeps", "guestagent") == ""
    modes = {}
    for line in sh("rpm", "--root", root, "-ql", "--dump", "guestagent").splitlines():
        path, _size, _mtime, _digest, mode, owner, group = line.split()[:7]
        modes[path] = (int(mode, 8) & 0o7777, owner, group)
        assert (owner, group) == ("root", "root"), line
    assert modes["/usr/bin/guestagent"][0] == 0o755
    assert modes["/usr/libexec/guestagent/guestagent-unchanged"][0] == 0o755  # the reboot guard
    assert modes["/usr/libexec/guestagent/guestagent-local-source"][0] == 0o755
    assert modes["/usr/libexec/guestagent/guestagent-stage"][0] == 0o755  # the units' ExecStart
    assert modes["/etc/guestagent/guestagent.conf"][0] == 0o644
    assert modes["/etc/guestagent"][0] == 0o755
    for unit in UNIT_NAMES + (MAIN_UNIT,):
        assert modes[f"/usr/lib/systemd/system/{unit}"][0] == 0o644
    assert not [p for p, (m, _, _) in modes.items() if m & 0o022 or m & 0o6000], \
        "group/world-writable or setuid/setgid files"
    outside = [p for p in modes if not p.startswith((
        "/usr/bin/guestagent", "/etc/guestagent", "/usr/lib/systemd/system/guestagent",
        "/usr/lib/systemd/system-preset/80-guestagent.preset", "/usr/share/man/man1/",
        "/usr/share/doc/guestagent", "/usr/lib/python3", "/usr/libexec/guestagent"))]
    assert not outside, f"files outside the package's own places: {outside}"
    assert all("/site-packages/guestagent" in p for p in modes if p.startswith("/usr/lib/py"))
    preset = (root / "usr/lib/systemd/system-preset/80-guestagent.preset").read_text()
    assert preset.splitlines() == [f"enable {u}" for u in UNIT_NAMES]
    assert (root / "usr/bin/guestagent").read_text().startswith("#!/usr/bin/python3")

    # An upgrade (the same build again) must not preset again: that would
    # re-enable units an administrator disabled.
    sh("rpm", "--root", root, "-U", "--nodeps", "--replacepkgs", rpm)
    # (the old package's %postun: a daemon-reload, no restart)
    assert systemctl_calls(root) == ["daemon-reload"]

    # Erasing: disable, then a daemon-reload; an edited config survives as .rpmsave.
    conf = root / "etc/guestagent/guestagent.conf"
    conf.write_text(conf.read_text() + "\n[main]\ndeadline = 30\n")
    sh("rpm", "--root", root, "-e", "--nodeps", "guestagent")
    assert systemctl_calls(root) == [f"--no-reload disable {units}", "daemon-reload"]
    assert not (root / "usr/bin/guestagent").exists()
    assert not (root / "usr/lib/systemd/system/guestagent.service").exists()
    assert "deadline = 30" in (root / "etc/guestagent/guestagent.conf.rpmsave").read_text()


@mark_root
def test_rpm_rebuilds_from_its_source_rpm_in_a_clean_tree(rpm, tree, tmp_path):
    """The src.rpm alone (no checkout, a clean environment, a fresh _topdir)
    builds the same package: what a Fedora/RHEL user does with rpmbuild
    --rebuild or mock."""
    srpm = tree / f"dist/guestagent-{__version__}-1.src.rpm"
    top = tmp_path / "rpmbuild"
    res = subprocess.run(["rpmbuild", "--rebuild", "--nodeps", "--define", f"_topdir {top}",
                          srpm], capture_output=True, text=True, timeout=600, cwd=tmp_path,
                         env={"PATH": SYSTEM_PATH, "HOME": str(tmp_path), "LC_ALL": "C.UTF-8"})
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    rebuilt = top / f"RPMS/noarch/guestagent-{__version__}-1.noarch.rpm"
    assert rebuilt.is_file(), list(top.rglob("*.rpm"))
    for query in (["-qlp"], ["-qp", "--requires"], ["-qp", "--recommends"],
                  ["-qp", "--scripts"], ["-qp", "--configfiles"]):
        assert sh("rpm", *query, rebuilt) == sh("rpm", *query, rpm), query


# ---- the .deb over a configured instance: upgrade, remove, purge --------------------------

@pytest.fixture(scope="module")
def next_deb(tmp_path_factory):
    """The .deb of the next release (the tree with its version bumped)."""
    nxt = clean_copy(tmp_path_factory.mktemp("pkg-next") / "guestagent")
    version = bump_version(nxt)
    path = sh(os.path.join(nxt, "packaging/build-deb")).strip().splitlines()[-1]
    assert path.endswith(f"/guestagent_{version}_all.deb"), path
    return path, version


# Records every call; unit-file work (what enables the units) is done by the
# real systemctl, offline as in any chroot; anything that would act on a
# running system (start, restart, daemon-reload) only leaves its record.
RECORDING_SYSTEMCTL = """#!/bin/sh
echo "$*" >>/var/log/systemctl.calls
for arg; do
    case $arg in
    preset|enable|disable|reenable|is-enabled|mask|unmask) exec /usr/bin/systemctl.real "$@" ;;
    esac
done
exit 0
"""


class Chroot:
    """The e2e base tree (Debian 12 with the agent's dependencies, cached by
    tests/e2e/build-image) under an overlay, so the cache stays as it is:
    each ``sh`` mounts it (and /proc) in a mount namespace of its own, which
    takes the mounts away when it ends.  systemd looks like PID 1 to the
    maintainer scripts (/run/systemd/system exists) and systemctl only
    records how it was called, so a start or restart would show."""

    def __init__(self, lower, top):
        self.lower, self.upper = lower, top / "upper"
        self.work, self.merged = top / "work", top / "merged"
        for d in (self.upper, self.work, self.merged):
            d.mkdir(parents=True)
        self.sh("mkdir -p $M/run/systemd/system && "
                "mv $M/usr/bin/systemctl $M/usr/bin/systemctl.real && "
                "cat >$M/usr/bin/systemctl && chmod 755 $M/usr/bin/systemctl",
                input=RECORDING_SYSTEMCTL)

    def sh(self, script, input=None):
        mount = (f"mount -t overlay overlay -o lowerdir={self.lower},upperdir={self.upper},"
                 f"workdir={self.work} {self.merged} && mount -t proc proc {self.merged}/proc")
        res = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-ec",
                              f"{mount}\nM={self.merged}\n{script}"],
                             input=input, capture_output=True, text=True, timeout=600,
                             env=dict(os.environ, PATH=SYSTEM_PATH, LC_ALL="C.UTF-8"))
        assert res.returncode == 0, \
            f"{script}\nexited {res.returncode}:\n{res.stdout}\n{res.stderr}"
        return res.stdout

    def dpkg(self, *args):
        return self.sh("chroot $M env DEBIAN_FRONTEND=noninteractive dpkg " + " ".join(args))

    def systemctl_calls(self):
        return self.sh("cat $M/var/log/systemctl.calls 2>/dev/null; "
                       "rm -f $M/var/log/systemctl.calls").splitlines()

    def fingerprint(self, *paths):
        """{path: sha256 of a file, '-> target' of a link} under ``paths``."""
        code = ("import hashlib, json, os, sys\n"
                "top = sys.argv[1]; found = {}\n"
                "for p in sys.argv[2:]:\n"
                "    for d, dirs, files in os.walk(top + p):\n"
                "        for n in dirs + files:\n"
                "            f = os.path.join(d, n); rel = f[len(top):]\n"
                "            if os.path.islink(f): found[rel] = '-> ' + os.readlink(f)\n"
                "            elif os.path.isfile(f):\n"
                "                found[rel] = hashlib.sha256(open(f, 'rb').read()).hexdigest()\n"
                "    if os.path.isfile(top + p): found[p] = hashlib.sha256("
                "open(top + p, 'rb').read()).hexdigest()\n"
                "print(json.dumps(found))\n")
        return json.loads(self.sh(f"/usr/bin/python3 - $M {' '.join(paths)}", input=code))


AGENT_STATE = ("/var/lib/guestagent", "/var/log/guestagent.log",
               "/var/log/guestagent-user-data.log")
ENABLEMENT = ("/etc/systemd/system", "/etc/rc2.d", "/etc/rc3.d", "/etc/rc4.d", "/etc/rc5.d",
              "/var/lib/systemd/deb-systemd-helper-enabled")
INSTANCE = ("/home/debian/.ssh", "/etc/ssh", "/etc/hostname", "/etc/passwd", "/etc/shadow")


@mark_root
def test_deb_upgrade_over_a_configured_instance_then_purge(deb, next_deb, tmp_path):
    """Installing the next release over an instance the agent configured
    starts and reruns nothing and leaves the state, the log and the units'
    enablement as they were; `dpkg --remove` keeps the state, `--purge`
    removes it, the log and the enablement, and leaves the users, their keys
    and the host keys alone."""
    import harness
    next_path, next_version = next_deb
    root = Chroot(harness.build_base(), tmp_path)
    root.sh(f"cp {deb} $M/tmp/old.deb && cp {next_path} $M/tmp/next.deb")
    root.dpkg("-i", "/tmp/old.deb")
    calls = root.systemctl_calls()
    assert any("preset" in c for c in calls), calls  # the real scripts did run
    assert not [c for c in calls if re.search(r"\b(start|restart)\b", c)], calls
    enabled = root.fingerprint(*ENABLEMENT)
    assert {"/etc/systemd/system/multi-user.target.wants/" + u for u in UNIT_NAMES} <= set(enabled)

    # the instance, configured by the agent (from outside, on the tree: a
    # live run in a chroot would set this machine's host name)
    drive = tmp_path / "drive"
    shutil.copytree(os.path.join(REPO, "examples/configdrive"), drive)
    conf = tmp_path / "agent.conf"
    conf.write_text(f"[main]\ndatasources = configdrive\ndefault_user = debian\n"
                    f"[configdrive]\npath = {drive}\n")
    root.sh(f"PYTHONPATH={REPO} {sys.executable} -m guestagent --once --root $M "
            f"--config {conf} >/dev/null 2>&1")
    state = root.fingerprint(*AGENT_STATE)
    assert {"/var/lib/guestagent/status.json", "/var/log/guestagent.log",
            "/var/log/guestagent-user-data.log"} <= set(state)
    instance = root.fingerprint(*INSTANCE)
    assert "/home/debian/.ssh/authorized_keys" in instance

    root.dpkg("-i", "/tmp/next.deb")
    assert root.sh("chroot $M dpkg-query -W -f '${Version}' guestagent") == next_version
    calls = root.systemctl_calls()
    assert not [c for c in calls if re.search(r"\b(start|restart|try-restart|stop)\b", c)], calls
    assert root.fingerprint(*AGENT_STATE) == state, "the upgrade changed the agent's state"
    assert root.fingerprint(*ENABLEMENT) == enabled, "the upgrade changed the units' enablement"
    assert root.fingerprint(*INSTANCE) == instance

    root.dpkg("--remove", "guestagent")
    assert root.fingerprint(*AGENT_STATE) == state, "a plain remove dropped the state"
    root.dpkg("--purge", "guestagent")
    assert root.fingerprint(*AGENT_STATE) == {}, "purge left the agent's state or log"
    left = [p for p in root.fingerprint(*ENABLEMENT) if "guestagent" in p]
    assert left == [], f"purge left the units enabled: {left}"
    assert root.fingerprint(*INSTANCE) == instance, "purge touched users, keys or host keys"


# ---- an upgrade from the release before the boot's one process (issue 30) ----------------

# The last commit whose package ran each stage in its own interpreter (three
# units, no guestagent-main.service, no guestagent-stage): what an image built
# before issue 30 carries.
BEFORE_BOOT_PROCESS = "6210e5c672914eed282f0c3dc68eec859182e876"


@pytest.fixture(scope="module")
def previous_layout_deb(tmp_path_factory):
    """The .deb of BEFORE_BOOT_PROCESS, built as packaging/build-deb builds it."""
    tree = tmp_path_factory.mktemp("pkg-before") / "guestagent"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", REPO, "archive", BEFORE_BOOT_PROCESS],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    from support.package_tree import commit
    commit(tree, "the release before the boot process")
    path = sh(os.path.join(tree, "packaging/build-deb")).strip().splitlines()[-1]
    assert path.endswith(f"/guestagent_{__version__}_all.deb"), path
    return path


@mark_root
def test_deb_upgrade_from_the_release_before_the_boot_process(previous_layout_deb, next_deb,
                                                             tmp_path):
    """Installing this design over the release that had three interpreters:
    the new unit and script arrive, the stage units stay enabled exactly as
    they were and nothing more is enabled (guestagent-main.service is static,
    pulled in by the stage units' Wants=), nothing starts or stops, and the
    installed units verify."""
    import harness
    next_path, _ = next_deb
    root = Chroot(harness.build_base(), tmp_path)
    root.sh(f"cp {previous_layout_deb} $M/tmp/prev.deb && cp {next_path} $M/tmp/next.deb")
    root.dpkg("-i", "/tmp/prev.deb")
    assert root.sh("test -e $M/lib/systemd/system/guestagent-main.service && echo yes "
                   "|| echo no").strip() == "no", "the earlier release already had it"
    enabled = root.fingerprint(*ENABLEMENT)
    assert {"/etc/systemd/system/multi-user.target.wants/" + u for u in UNIT_NAMES} <= set(enabled)
    root.systemctl_calls()  # (read and cleared: the next read is the upgrade's)

    root.dpkg("-i", "/tmp/next.deb")
    calls = root.systemctl_calls()
    assert not [c for c in calls if re.search(r"\b(start|restart|try-restart|stop)\b", c)], calls
    assert root.fingerprint(*ENABLEMENT) == enabled, "the upgrade changed the units' enablement"
    state = root.sh(f"systemctl --root=$M is-enabled {MAIN_UNIT} 2>&1 || true").strip()
    assert state == "static", state
    assert root.sh("test -x $M/usr/libexec/guestagent/guestagent-stage && echo yes").strip() == \
        "yes"
    for unit in UNIT_NAMES:
        text = root.sh(f"cat $M/lib/systemd/system/{unit}")
        assert re.search(rf"^Wants=.*\b{re.escape(MAIN_UNIT)}\b", text, re.M), unit
        assert "ExecStart=/usr/libexec/guestagent/guestagent-stage " in text, unit
    if shutil.which("systemd-analyze"):
        units = " ".join(f"$M/lib/systemd/system/{u}" for u in UNIT_NAMES + (MAIN_UNIT,))
        out = root.sh(f"systemd-analyze --man=no --root=$M verify {units} 2>&1; echo exit=$?")
        assert out.strip().endswith("exit=0"), out
        assert not [ln for ln in out.splitlines() if "guestagent" in ln], out
