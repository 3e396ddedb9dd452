"""`guestagent status --wait` (guestagent/status/wait.py): blocks until this
boot's agent work is over, then reports, with cloud-init status --wait's exit
codes; returns at once on a boot the agent will not run.

Every run here is the real agent on a --root tree (examples/root plus a
kernel boot id), started as a child process, and the waiting command is the
real CLI in another: nothing about the runs is faked.
"""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from support import EXAMPLES, REPO, agent_argv

TREE = os.path.join(EXAMPLES, "configdrive")
ENV = dict(os.environ, PYTHONPATH=REPO)


def new_boot(root, n=[0]):  # noqa: B006 - a counter across calls
    """A reboot of the tree: /run emptied, a new kernel boot id."""
    shutil.rmtree(root / "run", ignore_errors=True)
    n[0] += 1
    (root / "proc/sys/kernel/random").mkdir(parents=True, exist_ok=True)
    (root / "proc/sys/kernel/random/boot_id").write_text(f"wait-boot-{n[0]}\n")


@pytest.fixture
def instance(tmp_path, root):
    """``make(user_data)``: a config-drive instance under ``root`` with no
    warnings to give (bash and sudo present, no NIC in network_data.json);
    returns the config file's path."""
    def make(user_data=None):
        tree = tmp_path / "drive"
        shutil.copytree(TREE, tree)
        ud = tree / "openstack/latest/user_data"
        if user_data is None:
            ud.unlink()
        else:
            ud.write_text(user_data)
        (tree / "openstack/latest/network_data.json").write_text(
            json.dumps({"links": [], "networks": [], "services": []}))
        (root / "bin").mkdir(exist_ok=True)
        (root / "bin/bash").write_text("")
        (root / "bin/bash").chmod(0o755)
        (root / "etc/sudoers").write_text("@includedir /etc/sudoers.d\n")
        conf = tmp_path / "agent.conf"
        conf.write_text(f"[main]\ndatasources = configdrive\ndefault_user = debian\n"
                        f"[configdrive]\npath = {tree}\n[ssh]\nregenerate_host_keys = no\n")
        new_boot(root)
        return conf
    return make


def start_run(root, conf, *extra):
    return subprocess.Popen(agent_argv() + ["--once", "--root", str(root), "--config", str(conf),
                                            *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)


def run(root, conf, *extra):
    p = start_run(root, conf, *extra)
    out, err = p.communicate(timeout=120)
    return p.returncode, err


def start_wait(root, *extra):
    return subprocess.Popen(agent_argv() + ["status", "--wait", "--root", str(root), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)


def finish(p, timeout=120):
    """(exit code, stdout, stderr, CPU seconds the process used)."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        assert time.monotonic() < deadline, "status --wait did not return"
        time.sleep(0.05)
    p.returncode = os.waitstatus_to_exitcode(status)
    out, err = p.stdout.read(), p.stderr.read()
    p.stdout.close()
    p.stderr.close()
    return p.returncode, out, err, usage.ru_utime + usage.ru_stime


def wait_json(root, *extra, timeout=60):
    code, out, err, _ = finish(start_wait(root, "--json", *extra), timeout)
    return code, json.loads(out), err


def lock_held(root):
    import fcntl
    try:
        fd = os.open(root / "var/lib/guestagent/lock", os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def test_waits_for_a_run_holding_the_lock_then_reports_it_at_no_cpu_cost(root, instance):
    conf = instance("#!/bin/sh\nsleep 4\n")
    agent = start_run(root, conf)
    deadline = time.monotonic() + 60
    while not lock_held(root):
        assert agent.poll() is None, agent.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    t0 = time.monotonic()
    waiter = start_wait(root)
    code, out, err, cpu = finish(waiter)
    waited = time.monotonic() - t0
    # it returned only once the run was over, and reports that run (the run's
    # record is written last; the process may still be in its exit, whose
    # lock goes before the kernel reports it gone, so its end is waited for)
    assert agent.wait(timeout=10) == 0, agent.communicate()[1]
    agent.communicate()
    assert code == 0, (out, err)
    assert "stage all: exit 0" in out and "scripts" in out and "changed" in out
    assert waited > 1.5
    # blocked in flock(), not polling: the interpreter's start-up and one
    # look at the processes, far below the seconds it waited
    assert cpu < min(0.8, waited / 3), f"{cpu:.2f} s of CPU over a {waited:.1f} s wait"


def reinstance(conf, uuid, user_data=None, network=None):
    """The config drive of ``conf`` as a new instance ``uuid``: its
    per-instance steps run again on the next run."""
    drive = conf.read_text().split("path = ")[1].split("\n")[0]
    latest = os.path.join(drive, "openstack/latest")
    with open(os.path.join(latest, "meta_data.json")) as f:
        meta = json.load(f)
    meta["uuid"] = uuid
    with open(os.path.join(latest, "meta_data.json"), "w") as f:
        json.dump(meta, f)
    if user_data is not None:
        with open(os.path.join(latest, "user_data"), "w") as f:
            f.write(user_data)
    if network is not None:
        with open(os.path.join(latest, "network_data.json"), "w") as f:
            json.dump(network, f)


def test_exit_codes_done_failed_and_recoverable(root, instance):
    conf = instance("#!/bin/sh\nexit 0\n")
    assert run(root, conf)[0] == 0
    code, doc, _ = wait_json(root)
    assert (code, doc["this_boot"]["state"], doc["this_boot"]["exit_code"]) == (0, "done", 0)
    assert doc["runs"][0]["stage"] == "all" and "warnings" not in doc["runs"][0]

    # a warning (a NIC the document names is not here) is a recoverable problem: 2
    new_boot(root)
    reinstance(conf, "b9c4a7f6-0000-4000-8000-000000000001",
               network={"links": [{"id": "tap0", "type": "phy",
                                   "ethernet_mac_address": "fa:16:3e:00:00:99"}],
                        "networks": [], "services": []})
    assert run(root, conf)[0] == 0
    code, doc, _ = wait_json(root)
    assert code == 2, doc["this_boot"]
    assert doc["this_boot"]["detail"] == "done, with 1 warning(s)"
    assert any("no interface here has MAC fa:16:3e:00:00:99" in w
               for w in doc["runs"][0]["warnings"])
    code, out, _, _ = finish(start_wait(root))
    assert code == 2 and "  warning: network_data.json link 'tap0': no interface" in out

    # a failed step: 1
    new_boot(root)
    reinstance(conf, "b9c4a7f6-0000-4000-8000-000000000002", user_data="#!/bin/sh\nexit 7\n",
               network={"links": [], "networks": [], "services": []})
    assert run(root, conf)[0] == 1
    code, doc, _ = wait_json(root)
    assert code == 1 and doc["this_boot"]["detail"] == "the all stage exited 1", doc


def test_a_run_of_an_earlier_boot_does_not_count(root, instance):
    """After a reboot, the status on disk is the last boot's: this boot's work
    has not started, so --wait waits (here until its timeout: exit 3)."""
    conf = instance()
    assert run(root, conf)[0] == 0
    new_boot(root)
    t0 = time.monotonic()
    code, doc, err = wait_json(root, "--timeout", "1.5")
    assert code == 3 and doc["this_boot"]["state"] == "not-started", doc
    assert 1.4 < time.monotonic() - t0 < 20
    code, out, err, cpu = finish(start_wait(root, "--timeout", "2"))
    assert code == 3 and "not done after 2 s: no guestagent run yet in this boot" in err
    assert cpu < 0.8, f"{cpu:.2f} s of CPU polling for 2 s"


def test_timeout_while_a_run_goes_on(root, instance):
    conf = instance("#!/bin/sh\nsleep 6\n")
    agent = start_run(root, conf)
    try:
        deadline = time.monotonic() + 60
        while not lock_held(root):
            assert time.monotonic() < deadline and agent.poll() is None
            time.sleep(0.02)
        code, doc, _ = wait_json(root, "--timeout", "1")
        assert code == 3, doc
        assert doc["this_boot"]["state"] == "running"
        assert f"pid {agent.pid}" in doc["this_boot"]["detail"]
    finally:
        agent.communicate(timeout=60)


def test_waits_for_the_final_stage_the_config_stage_left_work_for(root, instance):
    """Config drive: the local stage configures and leaves user scripts for
    the final stage; --wait returns only once that stage has run."""
    conf = instance("#!/bin/sh\necho from the final stage\n")
    assert run(root, conf, "--stage", "local")[0] == 0
    assert (root / "run/guestagent/final-pending").exists()
    waiter = start_wait(root, "--json")
    time.sleep(1.5)
    assert waiter.poll() is None, "returned before the final stage ran"
    assert run(root, conf, "--stage", "final")[0] == 0
    code, out, err, _ = finish(waiter)
    doc = json.loads(out)
    assert code == 0, (doc["this_boot"], err)
    assert [r["stage"] for r in doc["runs"]] == ["local", "final"]


def test_waits_for_the_network_stage_when_the_local_one_found_nothing(root, instance,
                                                                      tmp_path):
    conf = instance()
    none = tmp_path / "nothing-local.conf"
    none.write_text("[main]\ndatasources = configdrive\n[configdrive]\npath = /nonexistent\n")
    assert run(root, none, "--stage", "local")[0] == 0
    code, doc, _ = wait_json(root, "--timeout", "1")
    assert code == 3 and "the network stage has not run yet" in doc["this_boot"]["detail"]
    assert run(root, conf, "--stage", "network")[0] == 0
    code, doc, _ = wait_json(root, "--timeout", "5")
    assert code == 0 and [r["stage"] for r in doc["runs"]] == ["local", "network"], doc


@pytest.mark.parametrize("switch", ["file", "cmdline", "cloud-init"])
def test_returns_at_once_when_the_agent_will_not_run(root, instance, switch):
    instance()
    if switch == "file":
        (root / "etc/guestagent").mkdir(parents=True, exist_ok=True)
        (root / "etc/guestagent/disabled").write_text("")
    elif switch == "cmdline":
        (root / "proc/cmdline").write_text("root=/dev/vda1 ro guestagent=disabled quiet\n")
    else:
        (root / "usr/bin").mkdir(parents=True, exist_ok=True)
        (root / "usr/bin/cloud-init").write_text("")
    t0 = time.monotonic()
    code, out, err, _ = finish(start_wait(root, "--timeout", "30"))
    assert code == 0 and time.monotonic() - t0 < 10
    assert out.startswith("this boot: the agent will not run: "), out
    code, doc, _ = wait_json(root)
    assert doc["this_boot"]["state"] == "disabled" and doc["runs"] == []


def test_returns_at_once_when_the_reboot_guard_skipped_the_boot(root, instance):
    conf = instance()
    assert run(root, conf)[0] == 0
    new_boot(root)
    # what units/guestagent-unchanged leaves when it skips the local unit
    (root / "run/guestagent").mkdir(parents=True)
    (root / "run/guestagent/unchanged").write_text("")
    (root / "run/guestagent/local-configured").write_text("")
    code, out, err, _ = finish(start_wait(root, "--timeout", "30"))
    assert code == 0, err
    assert out.startswith("this boot: the agent did not start"), out
    assert "stage all: exit 0" in out  # the last runs, from the boot that configured it
    code, doc, _ = wait_json(root)
    assert doc["this_boot"]["state"] == "skipped"


def test_only_runs_on_the_same_root_count(root, instance, tmp_path):
    """A run on another tree (another test, an image build) is not this boot's."""
    from guestagent.status.wait import agent_runs
    from guestagent.system import System
    conf = instance("#!/bin/sh\nsleep 3\n")
    other = tmp_path / "other"
    shutil.copytree(root, other, symlinks=True)
    agent = start_run(other, conf)
    try:
        deadline = time.monotonic() + 30
        while agent.pid not in agent_runs(System(str(other))):
            assert time.monotonic() < deadline and agent.poll() is None
            time.sleep(0.05)
        assert agent.pid not in agent_runs(System(str(root)))
    finally:
        agent.communicate(timeout=60)


def test_the_wait_path_imports_psutil_and_plain_status_does_not(root, instance):
    conf = instance()
    assert run(root, conf)[0] == 0
    probe = ("import sys; from guestagent import cli; code = cli.main({argv!r}); "
             "print('psutil' in sys.modules, 'guestagent.runner' in sys.modules, code)")
    for argv, psutil_loaded in ((["status", "--root", str(root)], False),
                                (["status", "--wait", "--root", str(root)], True)):
        res = subprocess.run([sys.executable, "-c", probe.format(argv=argv)], env=ENV,
                             capture_output=True, text=True, timeout=60)
        assert res.stdout.split()[-3:] == [str(psutil_loaded), "False", "0"], res.stderr


def test_timeout_needs_wait(root):
    res = subprocess.run(agent_argv() + ["status", "--timeout", "3", "--root", str(root)],
                         capture_output=True, text=True, env=ENV, timeout=60)
    assert res.returncode == 2 and "--timeout takes --wait" in res.stderr


def test_without_psutil_wait_says_what_is_missing_instead_of_a_traceback(tmp_path, root):
    """A package installed without its dependency (or an old venv): one line
    naming the missing library, exit 1, never a traceback or a false 'done'."""
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "psutil.py").write_text("raise ImportError('psutil is not installed here')\n")
    res = subprocess.run(agent_argv() + ["status", "--wait", "--timeout", "2", "--root",
                                         str(root)],
                         capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=f"{blocker}:{REPO}"))
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr
    assert "status --wait needs psutil" in res.stderr
    assert res.stdout == ""
