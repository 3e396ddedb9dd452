"""Boot integration: the systemd units, the SysV init script, the rc.local snippet.

The units are checked by systemd itself (`systemd-analyze verify` on a
scratch root holding this machine's systemd units and a stand-in
/usr/bin/guestagent) and enabled with `systemctl --root`; their ordering is
read from the files.  The init script and the snippet run for real against a
stand-in agent (mounted over /usr/bin in a private mount namespace for the
init script) that records how it was called.
"""

import os
import shutil
import subprocess
import sys
import time

import pytest

from guestagent import arguments
from guestagent.arguments import main_parser
from guestagent.stages import STAGES

from support import REPO
from support.marks import needs_root

UNITS = os.path.join(REPO, "units")
# the stage units (enabled), and the boot's one process they pull in (static)
UNIT_NAMES = ("guestagent-local.service", "guestagent.service", "guestagent-final.service")
MAIN = "guestagent-main.service"
GUARDS = ("guestagent-unchanged", "guestagent-local-source")  # the local unit's ExecConditions
SCRIPTS = GUARDS + ("guestagent-stage",)  # /usr/libexec/guestagent
HOST_UNIT_DIR = "/usr/lib/systemd/system"
LOGIN_UNITS = {"ssh.service", "sshd.service", "systemd-user-sessions.service",
               "getty.target", "getty@.service", "serial-getty@.service"}


def parse_unit(path):
    """{section: {key: [values...]}}: repeated keys and list values accumulate, as in systemd."""
    sections, cur = {}, None
    with open(path) as f:
        for raw in f:
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("[") and line.endswith("]"):
                cur = sections.setdefault(line[1:-1], {})
                continue
            key, _, value = line.partition("=")
            cur.setdefault(key.strip(), []).append(value.strip())
    return sections


def words(unit, section, key):
    return [w for v in unit.get(section, {}).get(key, []) for w in v.split()]


def one(unit, section, key):
    values = unit.get(section, {}).get(key, [])
    assert len(values) == 1, f"[{section}] {key}: expected one value, got {values}"
    return values[0]


@pytest.fixture(scope="module")
def units():
    return {name: parse_unit(os.path.join(UNITS, name)) for name in UNIT_NAMES + (MAIN,)}


# ---- systemd's own checks ---------------------------------------------------------------

needs_systemd = pytest.mark.skipif(
    not (shutil.which("systemd-analyze") and os.path.isdir(HOST_UNIT_DIR)),
    reason="needs systemd-analyze and this machine's systemd units")


def systemd_tree(tmp_path, agent=True):
    """A scratch root for `systemd-analyze --root`: the host's units plus ours.

    `verify` resolves units and ExecStart= binaries inside the root, so this
    machine's /usr/bin is never touched."""
    root = tmp_path / "sysroot"
    unit_dir = root / "usr/lib/systemd/system"
    shutil.copytree(HOST_UNIT_DIR, unit_dir, symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    if agent:
        (root / "usr/bin").mkdir(parents=True)
        stub = root / "usr/bin/guestagent"
        stub.write_text("#!/bin/sh\nexit 0\n")
        stub.chmod(0o755)
        (root / "usr/libexec/guestagent").mkdir(parents=True)
        for script in SCRIPTS:
            shutil.copy(os.path.join(UNITS, script), root / "usr/libexec/guestagent" / script)
    for name in UNIT_NAMES + (MAIN,):
        shutil.copy(os.path.join(UNITS, name), unit_dir / name)
    return root


def verify(root, names=UNIT_NAMES + (MAIN,)):
    # --man=no: Documentation=man:guestagent(1) is in the package, not on this machine.
    unit_dir = root / "usr/lib/systemd/system"
    return subprocess.run(["systemd-analyze", "--man=no", f"--root={root}", "verify"]
                          + [str(unit_dir / n) for n in names],
                          capture_output=True, text=True, timeout=60)


@needs_systemd
def test_units_verify_clean(tmp_path):
    res = verify(systemd_tree(tmp_path))
    assert res.returncode == 0, res.stderr
    assert res.stderr.strip() == "" and res.stdout.strip() == "", res.stderr + res.stdout


@needs_systemd
def test_verify_catches_a_missing_command_and_a_bad_directive(tmp_path):
    """The harness above can fail: systemd-analyze reports what is wrong."""
    res = verify(systemd_tree(tmp_path, agent=False))
    assert res.returncode != 0
    assert "/usr/bin/guestagent is not executable" in res.stderr

    root = systemd_tree(tmp_path / "bad")
    unit = root / "usr/lib/systemd/system/guestagent-main.service"
    unit.write_text(unit.read_text().replace("Type=notify", "Type=notifyy"))
    res = verify(root)
    assert "notifyy" in res.stderr


@needs_systemd
def test_units_enable_into_multi_user_target(tmp_path):
    root = systemd_tree(tmp_path)
    res = subprocess.run(["systemctl", f"--root={root}", "enable", *UNIT_NAMES],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    wants = root / "etc/systemd/system/multi-user.target.wants"
    assert sorted(os.listdir(wants)) == sorted(UNIT_NAMES)
    for name in UNIT_NAMES:
        assert os.readlink(wants / name).endswith("/" + name)
    # the boot's process has nothing to enable: the stage units pull it in
    res = subprocess.run(["systemctl", f"--root={root}", "is-enabled", MAIN],
                         capture_output=True, text=True, timeout=60)
    assert res.stdout.strip() == "static", res.stdout + res.stderr


def enabled_boot(root):
    """Our units enabled along with sshd and a getty, as on a real image."""
    extra = [u for u in ("ssh.service", "getty@tty1.service")
             if os.path.exists(root / "usr/lib/systemd/system" / u.replace("@tty1", "@"))]
    res = subprocess.run(["systemctl", f"--root={root}", "enable", *UNIT_NAMES, *extra],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return extra


@needs_systemd
def test_whole_boot_transaction_has_no_ordering_cycle(tmp_path):
    """Starting multi-user.target with everything enabled: systemd finds no
    ordering cycle.  Targets order themselves after what they want, so a
    final stage that a login unit waited for would close a loop through
    multi-user.target; the second half shows systemd reports exactly that."""
    root = systemd_tree(tmp_path)
    assert "ssh.service" in enabled_boot(root)
    res = subprocess.run(["systemd-analyze", "--man=no", f"--root={root}", "verify",
                          "multi-user.target"], capture_output=True, text=True, timeout=60)
    assert "ordering cycle" not in res.stderr, res.stderr
    assert res.returncode == 0, res.stderr

    final = root / "usr/lib/systemd/system/guestagent-final.service"
    final.write_text(final.read_text().replace("[Service]", "Before=ssh.service\n\n[Service]"))
    res = subprocess.run(["systemd-analyze", "--man=no", f"--root={root}", "verify",
                          "multi-user.target"], capture_output=True, text=True, timeout=60)
    assert "Found ordering cycle" in res.stderr and "guestagent-final.service" in res.stderr



def test_the_stage_table_says_what_the_units_order_and_condition_on(units):
    """guestagent/stages.py and units/ describe the same stages: a flag a
    stage leaves is read by another stage's unit (LOCAL_DONE keeps the unit of
    the stage that does nothing once configured from starting; FINAL_PENDING
    starts the stage that reads the stored metadata), and a stage runs with the
    network up exactly when its unit is ordered after network-online.target."""
    by_unit = {s.unit: s for s in STAGES.values() if s.unit}
    assert sorted(by_unit) == sorted(UNIT_NAMES)
    left = {flag: [s for s in STAGES.values() if flag in s.flags]
            for s in STAGES.values() for flag in s.flags}
    read = set()
    for name in UNIT_NAMES:
        u, stage = units[name], by_unit[name]
        for cond in u["Unit"].get("ConditionPathExists", []):
            flag = cond.lstrip("!")
            if flag not in left:
                continue
            read.add(flag)
            assert stage not in left[flag], (name, flag)  # left for a later unit
            if cond.startswith("!"):
                assert stage.once, (name, cond)  # configured already: nothing to do
            else:
                assert not stage.configures, (name, cond)  # runs on what was stored
        after = words(u, "Unit", "After")
        assert stage.network_up == ("network-online.target" in after), name
        assert ("network-pre.target" in words(u, "Unit", "Before")) == (not stage.network_up)
    assert read == set(left)  # every flag the table leaves, a unit reads


# ---- what the units run -----------------------------------------------------------------

@pytest.mark.parametrize("name,stage", [("guestagent-local.service", "local"),
                                        ("guestagent.service", "network"),
                                        ("guestagent-final.service", "final")])
def test_each_unit_runs_one_stage_once(units, name, stage):
    u = units[name]
    argv = one(u, "Service", "ExecStart").split()
    assert argv == ["/usr/libexec/guestagent/guestagent-stage", stage]
    assert STAGES[stage].unit == name
    # what the script runs when the boot's process is not there: the real
    # CLI accepts exactly this
    script = open(os.path.join(UNITS, "guestagent-stage")).read()
    assert 'exec /usr/bin/guestagent --once --stage "$stage"' in script
    args = main_parser().parse_args(["--once", "--stage", stage])
    assert args.once and args.stage == stage
    # the script ends when the boot's process says a login may start (the
    # readiness READY=1 gave), while growroot goes on in that process
    assert one(u, "Service", "Type") == "oneshot"
    assert one(u, "Service", "RemainAfterExit") == "yes"
    assert MAIN in words(u, "Unit", "Wants") and MAIN in words(u, "Unit", "After")
    assert one(u, "Service", "StandardOutput") == "journal+console"
    assert "!/etc/guestagent/disabled" in u["Unit"]["ConditionPathExists"]
    assert "!guestagent=disabled" in u["Unit"]["ConditionKernelCommandLine"]
    assert words(u, "Install", "WantedBy") == ["multi-user.target"]


def seconds(value):
    value = value.strip()
    if value in ("infinity", "0"):
        return float("inf")
    units = {"min": 60, "s": 1, "": 1}
    for suffix in ("min", "s", ""):
        if value.endswith(suffix) and value[:len(value) - len(suffix)].isdigit():
            return int(value[:len(value) - len(suffix)]) * units[suffix]
    raise AssertionError(f"unparsed time span {value!r}")


def test_timeouts_leave_room_for_the_metadata_deadline(units):
    from guestagent.config import DEFAULTS
    deadline = int(DEFAULTS["main"]["deadline"])
    network = seconds(one(units["guestagent.service"], "Service", "TimeoutStartSec"))
    assert network >= deadline + 120
    assert seconds(one(units["guestagent-final.service"], "Service",
                       "TimeoutStartSec")) == float("inf")


# ---- ordering -----------------------------------------------------------------------------

def test_local_stage_runs_before_the_network_and_needs_none(units):
    u = units["guestagent-local.service"]
    assert one(u, "Unit", "DefaultDependencies") == "no"
    after = words(u, "Unit", "After")
    assert "local-fs.target" in after and "systemd-remount-fs.service" in after
    assert "network-pre.target" in words(u, "Unit", "Before")
    assert "network-pre.target" in words(u, "Unit", "Wants")
    network_units = {"network.target", "network-online.target", "networking.service",
                     "systemd-networkd.service", "NetworkManager.service"}
    assert not network_units & set(after + words(u, "Unit", "Wants")
                                   + words(u, "Unit", "Requires"))
    assert "shutdown.target" in words(u, "Unit", "Conflicts")


def test_keys_and_hostname_land_before_logins(units):
    for name in ("guestagent-local.service", "guestagent.service"):
        before = words(units[name], "Unit", "Before")
        for login in ("ssh.service", "sshd.service", "systemd-user-sessions.service"):
            assert login in before, f"{name} must be ordered before {login}"
    u = units["guestagent.service"]
    after = words(u, "Unit", "After")
    assert "network-online.target" in after and "guestagent-local.service" in after
    assert "network-online.target" in words(u, "Unit", "Wants")


def test_user_scripts_never_hold_up_a_login(units):
    u = units["guestagent-final.service"]
    after = words(u, "Unit", "After")
    assert {"guestagent.service", "multi-user.target", "network-online.target"} <= set(after)
    # Nothing is ordered after the final stage, ...
    assert words(u, "Unit", "Before") == []
    assert one(u, "Service", "KillMode") == "process"
    # ... and no login unit on this machine or in ours waits for it.
    for name in UNIT_NAMES:
        if name != "guestagent-final.service":
            assert "guestagent-final.service" not in words(units[name], "Unit", "After")
    for login in LOGIN_UNITS:
        path = os.path.join(HOST_UNIT_DIR, login)
        if os.path.exists(path):
            assert "guestagent-final.service" not in open(path).read()
    assert not set(after) & LOGIN_UNITS - {"getty.target"}


# ---- SysV init script -------------------------------------------------------------------

INIT = os.path.join(UNITS, "guestagent.init")
SNIPPET = os.path.join(UNITS, "rc.local.snippet")


def lsb_header(path):
    fields, inside, last = {}, False, None
    for line in open(path):
        line = line.rstrip("\n")
        if line == "### BEGIN INIT INFO":
            inside = True
            continue
        if line == "### END INIT INFO":
            return fields
        if inside:
            assert line.startswith("#"), f"not a comment inside the LSB header: {line!r}"
            body = line[1:]
            if body.startswith(("\t", "  ")) and last:  # continuation (Description)
                fields[last] += " " + body.strip()
                continue
            key, sep, value = body.strip().partition(":")
            assert sep, f"malformed LSB header line: {line!r}"
            fields[key] = value.strip()
            last = key
    raise AssertionError("no LSB header")


def test_init_script_lsb_header():
    h = lsb_header(INIT)
    assert h["Provides"] == "guestagent"
    assert {"$local_fs", "$network"} <= set(h["Required-Start"].split())
    assert {"ssh", "sshd"} <= set(h["X-Start-Before"].split())
    assert h["Default-Start"].split() == ["2", "3", "4", "5"]
    assert h["Default-Stop"] == ""
    assert h["Short-Description"] and len(h["Description"]) > 40
    assert os.access(INIT, os.X_OK)


@pytest.mark.parametrize("path", [INIT, SNIPPET] + [os.path.join(UNITS, g) for g in GUARDS])
def test_shell_is_posix(tmp_path, path):
    for shell in ("sh", "dash", "bash"):
        if shutil.which(shell):
            res = subprocess.run([shell, "-n", path], capture_output=True, text=True)
            assert res.returncode == 0, f"{shell} -n {path}: {res.stderr}"
    if not shutil.which("checkbashisms"):
        pytest.skip("checkbashisms (devscripts) not installed")
    res = subprocess.run(["checkbashisms", "--force", "--posix", path],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    bashy = tmp_path / "bashy"
    bashy.write_text("#!/bin/sh\n[[ -x /usr/bin/guestagent ]] && echo $RANDOM\n")
    assert subprocess.run(["checkbashisms", str(bashy)], capture_output=True).returncode != 0


FAKE_AGENT = """#!/bin/sh
# Stand-in agent: records each call; the final stage is slow, the network
# stage fails (exit 3: no datasource), as on a cloud with no metadata, after
# leaving (or not) the flag the real one leaves when scripts wait to run.
log={log}
echo "start $* stdin=$(readlink /proc/self/fd/0)" >>"$log"
case "$*" in
    *"--stage final"*) sleep {final_secs}; echo "end final" >>"$log" ;;
    *"--stage network"*)
        if [ {pending} = yes ]; then
            mkdir -p /run/guestagent && echo scripts >/run/guestagent/final-pending
        fi
        exit 3 ;;
esac
"""


def fake_agent(dirpath, log, final_secs=2, pending=True):
    dirpath.mkdir(parents=True, exist_ok=True)
    agent = dirpath / "guestagent"
    agent.write_text(FAKE_AGENT.format(log=log, final_secs=final_secs,
                                       pending="yes" if pending else "no"))
    agent.chmod(0o755)
    return agent


# /run of this machine is never touched: the scripts run in a private mount
# namespace with a tmpfs of their own on /run.
PRIVATE_RUN = "mount -t tmpfs tmpfs /run && "


def in_private_mounts(script, **kw):
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                           PRIVATE_RUN + script], capture_output=True, text=True, **kw)


def wait_for(predicate, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@needs_root
@pytest.mark.root
def test_rc_local_snippet_configures_in_foreground_scripts_in_background(tmp_path):
    log = tmp_path / "calls.log"
    fake_agent(tmp_path / "bin", log)
    rc_local = tmp_path / "rc.local"
    rc_local.write_text("#!/bin/sh -e\n" + open(SNIPPET).read() + "echo rc.local went on\nexit 0\n")
    env = dict(os.environ, PATH=f"{tmp_path / 'bin'}:/usr/bin:/bin")
    t0 = time.monotonic()
    res = in_private_mounts(f"sh -e {rc_local}", env=env, timeout=30)
    took = time.monotonic() - t0
    # A failing agent does not stop a "sh -e" rc.local, and rc.local does not
    # wait for the user scripts.
    assert res.returncode == 0, res.stderr
    assert "rc.local went on" in res.stdout
    assert took < 1.5, f"rc.local waited {took:.1f} s for the final stage"
    assert wait_for(lambda: "end final" in log.read_text())
    calls = log.read_text().splitlines()
    assert calls[0].startswith("start --once --stage network")
    assert calls[1] == "start --once --stage final stdin=/dev/null"


@needs_root
@pytest.mark.root
def test_rc_local_snippet_starts_no_final_stage_with_nothing_pending(tmp_path):
    """A reboot (scripts done) or a first boot without scripts: no Python
    starts for the final stage, as guestagent-final.service's condition."""
    log = tmp_path / "calls.log"
    fake_agent(tmp_path / "bin", log, pending=False)
    env = dict(os.environ, PATH=f"{tmp_path / 'bin'}:/usr/bin:/bin")
    res = in_private_mounts(f"sh -e {SNIPPET}; sleep 0.5", env=env, timeout=30)
    assert res.returncode == 0, res.stderr
    assert [c.split(" stdin=")[0] for c in log.read_text().splitlines()] == \
        ["start --once --stage network"]


def test_rc_local_snippet_without_the_agent_is_a_no_op(tmp_path):
    res = subprocess.run(["/bin/sh", "-e", SNIPPET], capture_output=True, text=True,
                         env=dict(os.environ, PATH="/nonexistent"), timeout=30)
    assert res.returncode == 0 and res.stdout == "" and res.stderr == ""


@needs_root
@pytest.mark.root
def test_init_script_start_runs_config_then_scripts_in_background(tmp_path):
    """/etc/init.d/guestagent start with a stand-in /usr/bin/guestagent, layered
    over this machine's /usr/bin in a private mount namespace only."""
    if os.path.isdir("/run/systemd/system"):
        pytest.skip("systemd runs here: init-functions would hand over to systemctl")
    log = tmp_path / "calls.log"
    fake_agent(tmp_path / "bin", log)
    script = (f"mount -t overlay overlay -o lowerdir={tmp_path / 'bin'}:/usr/bin /usr/bin && "
              f"sh {INIT} start && echo status-next && sh {INIT} stop")
    t0 = time.monotonic()
    res = in_private_mounts(script, timeout=30)
    took = time.monotonic() - t0
    assert res.returncode == 0, res.stderr
    assert "status-next" in res.stdout
    assert took < 1.5, f"the init script waited {took:.1f} s for the final stage"
    assert wait_for(lambda: log.exists() and "end final" in log.read_text())
    calls = log.read_text().splitlines()
    assert calls[0].startswith("start --once --stage network")
    assert calls[1] == "start --once --stage final stdin=/dev/null"
    assert not os.path.exists("/usr/bin/guestagent")  # the host's /usr/bin is untouched


@needs_root
@pytest.mark.root
def test_init_script_starts_no_final_stage_with_nothing_pending(tmp_path):
    """A reboot of a SysV image (scripts done): only the config stage runs."""
    if os.path.isdir("/run/systemd/system"):
        pytest.skip("systemd runs here: init-functions would hand over to systemctl")
    log = tmp_path / "calls.log"
    fake_agent(tmp_path / "bin", log, pending=False)
    script = (f"mount -t overlay overlay -o lowerdir={tmp_path / 'bin'}:/usr/bin /usr/bin && "
              f"sh {INIT} start; sleep 0.5")
    res = in_private_mounts(script, timeout=30)
    assert res.returncode == 0, res.stderr
    assert [c.split(" stdin=")[0] for c in log.read_text().splitlines()] == \
        ["start --once --stage network"]


def test_init_script_without_the_agent_exits_quietly():
    if os.path.exists("/usr/bin/guestagent"):
        pytest.skip("an agent is installed on this machine")
    res = subprocess.run(["sh", INIT, "start"], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0 and res.stdout == ""


def test_local_unit_skips_python_when_nothing_changed(units):
    """The reboot shortcut is the boot process's ExecCondition (no Python
    starts at all), and again, reading its verdict, the local unit's, before
    the no-local-source one (their logic: test_boot_guard, test_local_source)."""
    assert units[MAIN]["Service"]["ExecCondition"] == [
        "/usr/libexec/guestagent/guestagent-unchanged"]
    u = units["guestagent-local.service"]
    assert u["Service"]["ExecCondition"] == [f"/usr/libexec/guestagent/{g}" for g in GUARDS]
    for script in SCRIPTS:
        assert os.access(os.path.join(UNITS, script), os.X_OK)
    for name in ("guestagent.service", "guestagent-final.service"):
        assert "ExecCondition" not in units[name]["Service"]


def test_the_boot_process_starts_early_and_before_every_stage(units):
    """guestagent-main.service: early boot (no basic.target, no file systems
    but its own state's, no network, no udev settle), up before any stage
    unit starts, Type=notify, and it keeps the scripts' daemons on exit."""
    u = units[MAIN]
    assert one(u, "Unit", "DefaultDependencies") == "no"
    after = set(words(u, "Unit", "After"))
    assert after == {"systemd-remount-fs.service", "systemd-udev-trigger.service"}
    assert words(u, "Unit", "RequiresMountsFor") == ["/var/lib/guestagent"]
    assert set(UNIT_NAMES) <= set(words(u, "Unit", "Before"))
    assert one(u, "Service", "Type") == "notify"
    assert one(u, "Service", "ExecStart") == "/usr/bin/guestagent --boot"
    assert main_parser().parse_args(["--boot"]).boot
    assert one(u, "Service", "KillMode") == "process"
    assert one(u, "Service", "StandardOutput") == "journal+console"
    assert "!/etc/guestagent/disabled" in u["Unit"]["ConditionPathExists"]
    assert "!guestagent=disabled" in u["Unit"]["ConditionKernelCommandLine"]
    assert "Install" not in u, "static: pulled in by the stage units' Wants="


def test_units_command_line_is_read_without_argparse():
    """The units' exact argv takes a path without argparse (and gettext): the
    same arguments argparse would give, and nothing else is taken that way."""
    code = ("import sys\n"
            "from guestagent import cli\n"
            "seen = []\n"
            "cli._run_once = lambda a, *_: seen.append((a.once, a.stage, a.root, a.config,"
            " a.verbose, a.only)) or 0\n"
            "assert cli.main(['--once', '--stage', 'network']) == 0\n"
            "assert 'argparse' not in sys.modules, 'argparse imported'\n"
            "print(seen)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=REPO), timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[(True, 'network', '/', None, False, None)]"
    parsed = main_parser().parse_args(["--once", "--stage", "network"])
    assert (parsed.once, parsed.stage, parsed.root, parsed.config, parsed.verbose,
            parsed.only) == (True, "network", "/", None, False, None)
    for argv in (["--once", "--stage", "bogus"], ["--once", "--stage", "local", "-v"],
                 ["--once"], ["--stage", "local", "--once"]):
        assert arguments.unit_args(argv) is None, argv
    boot = arguments.unit_args(["--boot"])
    parsed = main_parser().parse_args(["--boot"])
    assert (boot.boot, boot.once, boot.root, boot.config) == \
        (parsed.boot, parsed.once, parsed.root, parsed.config) == (True, False, "/", None)
    code = ("import sys\n"
            "from guestagent import boot_process, cli\n"
            "boot_process.run_boot = lambda a: print('boot', a.root, a.config) or 0\n"
            "assert cli.main(['--boot']) == 0\n"
            "assert 'argparse' not in sys.modules, 'argparse imported'\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=REPO), timeout=60)
    assert res.returncode == 0 and res.stdout.strip() == "boot / None", res.stderr
