#!/usr/bin/env python3
"""Boot-time benchmark: the agent's cost against references timed in the same run.

    sudo bench/benchmark [--rounds N] [--json FILE]

This machine is shared and noisy, so every budget is a ratio against
references timed alternately with the agent, in the same run:
  P = `python -c pass`            (interpreter start-up)
  R = `python -c "import requests"`
Everything runs inside a network namespace the benchmark makes, with the
project's metadata server (tests/support/metadata_server.py) at 169.254.169.254 on
its loopback, against scratch roots under /tmp (never this machine's /etc).
Medians over --rounds.  Not a test: it reports, and exits 0 unless --strict.
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests"))
sys.path.insert(0, REPO)

from guestagent.steps import ALL_STEPS  # noqa: E402

from support.netns import Netns  # noqa: E402

EXAMPLE_ROOT = os.path.join(REPO, "examples", "root")
TREE = os.path.join(REPO, "examples", "configdrive")
PY = sys.executable
SLOW_STEPS = {"hostkeys", "scripts", "runcmd"}  # reported separately
CONFIG_STEPS = ",".join(s for s in ALL_STEPS if s not in SLOW_STEPS)


def enter_netns(name):
    """Move this process (and so every child it starts) into netns ``name``.

    Starting each child through `ip netns exec` would add an exec to the
    agent's time but not to the references'; entering once keeps it fair.
    """
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, 0x40000000) != 0:  # CLONE_NEWNET
            raise OSError(ctypes.get_errno(), "setns failed")
    finally:
        os.close(fd)


def _setns_fd(fd):
    import ctypes
    ctypes.CDLL(None, use_errno=True).setns(fd, 0x40000000)


def timed(argv, env=None):
    """Wall time (s) and peak RSS (MB) of one child process."""
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    err = p.stderr.read().decode("utf-8", "replace")
    p.stderr.close()
    return wall, usage.ru_maxrss / 1024.0, p.returncode, err


class Bench:
    def __init__(self, work, rounds):
        self.work = work
        self.rounds = rounds
        self.env = dict(os.environ, PYTHONPATH=REPO, PYTHONDONTWRITEBYTECODE="")
        self.samples = {}

    def add(self, name, value):
        self.samples.setdefault(name, []).append(value)

    def fresh_root(self, name):
        root = os.path.join(self.work, name)
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(EXAMPLE_ROOT, root, symlinks=True)
        # The agent syncs the root's filesystem before it marks a step done
        # (guestagent/state/done_markers.py); what this copy and anything
        # else on the host left dirty is not the agent's to pay for.
        os.sync()
        return root

    def conf(self, name, text):
        path = os.path.join(self.work, name + ".conf")
        with open(path, "w") as f:
            f.write(text)
        return path

    def agent(self, *args):
        return timed([PY, "-m", "guestagent"] + [str(a) for a in args], env=self.env)

    def references(self):
        self.add("P", timed([PY, "-c", "pass"], env=self.env)[0])
        self.add("R", timed([PY, "-c", "import requests"], env=self.env)[0])


def run(args):
    work = tempfile.mkdtemp(prefix="guestagent-bench-")
    b = Bench(work, args.rounds)
    md_conf = b.conf("md", "[main]\ndatasources = openstack, ec2\ndeadline = 30\n")
    cd_conf = b.conf("cd", f"[main]\ndatasources = configdrive\n[configdrive]\npath = {TREE}\n")
    dmi_conf = b.conf("dmi", "[main]\ndatasources = configdrive, openstack\ndeadline = 30\n"
                             "metadata_url = http://127.0.0.1:9\n")
    req_log = os.path.join(work, "requests.log")
    nods_deadline = 3.0
    nods_conf = b.conf("nods", f"[main]\ndatasources = openstack, ec2\n"
                               f"deadline = {nods_deadline}\n")
    notes = {}
    host_ns = os.open("/proc/self/ns/net", os.O_RDONLY)
    try:
        with Netns() as ns:
            server = ns.start_server(TREE, "--mode", "openstack", log=req_log)
            enter_netns(ns.name)
            for _round in range(args.rounds):
                b.references()
                # first boot from the metadata service
                root = b.fresh_root("md")
                if os.path.exists(req_log):
                    os.unlink(req_log)
                wall, rss, code, err = b.agent("--once", "--only", CONFIG_STEPS, "--root", root,
                                               "--config", md_conf)
                _check(code, err, "metadata first boot")
                b.add("md_first", wall)
                b.add("rss", rss)
                with open(req_log) as f:
                    b.add("md_requests", len(f.readlines()))
                b.references()
                # host keys and user scripts, on the same instance, separately
                wall, rss, code, err = b.agent("--once", "--only", "hostkeys", "--root", root,
                                               "--config", md_conf)
                b.add("hostkeys", wall)
                wall, rss, code, err = b.agent("--once", "--only", "scripts", "--root", root,
                                               "--config", md_conf)
                b.add("scripts", wall)
                # first boot from a config drive, then a later boot of it
                root = b.fresh_root("cd")
                wall, rss, code, err = b.agent("--once", "--only", CONFIG_STEPS, "--root", root,
                                               "--config", cd_conf)
                _check(code, err, "config drive first boot")
                b.add("cd_first", wall)
                b.add("rss", rss)
                b.add("cd_imports_requests", int(_imports_requests(b, root, cd_conf)))
                b.references()
                wall, rss, code, err = b.agent("--once", "--root", root, "--config", cd_conf)
                b.add("cd_later", wall)
                # a later boot confirmed by the DMI system UUID (no drive, no network)
                with open(os.path.join(root, "var/lib/guestagent/instance-id")) as f:
                    iid = f.read().strip()
                os.makedirs(os.path.join(root, "sys/class/dmi/id"), exist_ok=True)
                with open(os.path.join(root, "sys/class/dmi/id/product_uuid"), "w") as f:
                    f.write(iid.upper() + "\n")
                wall, rss, code, err = b.agent("--once", "--root", root, "--config", dmi_conf)
                _check(code, err, "DMI later boot")
                b.add("dmi_later", wall)
                b.add("rss", rss)
            server.kill()
            server.wait()

            # a service that starts listening 3 s late: how long after it began
            # accepting connections was the agent done?
            for _round in range(min(args.rounds, 5)):
                root = b.fresh_root("late")
                server = ns.start_server(TREE, "--mode", "openstack", "--start-after", "3",
                                         wait=False)
                wall, rss, code, err = b.agent("--once", "--only", CONFIG_STEPS, "--root", root,
                                               "--config", md_conf)
                done = time.time()
                _check(code, err, "late service")
                with open(server.ready_file) as f:
                    listening_since = float(f.read())
                os.unlink(server.ready_file)
                b.add("late_after_listening", done - listening_since)
                for p in ns.procs:
                    if p.poll() is None:
                        p.kill()
                        p.wait()
            # no datasource at all: nothing listens any more
            root = b.fresh_root("nods")
            wall, rss, code, err = b.agent("--once", "--root", root, "--config", nods_conf)
            b.add("no_datasource", wall)
            notes["no_datasource_exit"] = code
            _setns_fd(host_ns)
    finally:
        os.close(host_ns)
        shutil.rmtree(work, ignore_errors=True)
    return b, nods_deadline, notes


def _imports_requests(b, root, conf):
    """Does the config-drive path import an HTTP library? (-X importtime)"""
    res = subprocess.run([PY, "-X", "importtime", "-m", "guestagent", "--once", "--root", root,
                          "--config", conf], capture_output=True, text=True, env=b.env)
    mods = {line.split("|")[-1].strip() for line in res.stderr.splitlines()
            if line.startswith("import time:")}
    return bool(mods & {"requests", "urllib3", "http.client"})


def _check(code, err, what):
    if code not in (0,):
        tail = "\n".join(err.strip().splitlines()[-5:])
        raise SystemExit(f"benchmark: {what}: the agent exited {code}:\n{tail}")


def report(b, deadline, notes):
    med = {k: statistics.median(v) for k, v in b.samples.items()}
    P, R = med["P"], med["R"]
    rows = [
        ("first boot, metadata service", med["md_first"], f"{med['md_first'] / R:.2f} x R",
         "<= 1.5 x R", med["md_first"] <= 1.5 * R),
        ("first boot, config drive", med["cd_first"], f"{med['cd_first'] / P:.2f} x P",
         "<= 6 x P", med["cd_first"] <= 6 * P),
        ("  HTTP library imported on that path", None,
         "yes" if max(b.samples["cd_imports_requests"]) else "no", "no",
         not max(b.samples["cd_imports_requests"])),
        ("later boot, config drive", med["cd_later"], f"{med['cd_later'] / P:.2f} x P",
         "<= 3 x P", med["cd_later"] <= 3 * P),
        ("later boot, DMI UUID matches", med["dmi_later"], f"{med['dmi_later'] / P:.2f} x P",
         "<= 3 x P", med["dmi_later"] <= 3 * P),
        ("metadata requests, first boot", None, f"{max(b.samples['md_requests'])}", "<= 5",
         max(b.samples["md_requests"]) <= 5),
        ("service listening 3 s late: done after it did", med["late_after_listening"],
         f"{med['late_after_listening']:.3f} s", "<= 0.5 s",
         med["late_after_listening"] <= 0.5),
        ("peak RSS (largest run)", None, f"{max(b.samples['rss']):.1f} MB", "< 40 MB",
         max(b.samples["rss"]) < 40),
        (f"no datasource, deadline {deadline:.0f} s", med["no_datasource"],
         f"{med['no_datasource']:.2f} s (exit {notes['no_datasource_exit']})",
         f"<= deadline + P ({deadline + P:.2f} s)",
         med["no_datasource"] <= deadline + P),
        ("host-key generation (reported separately)", med["hostkeys"],
         f"{med['hostkeys']:.2f} s", "-", True),
        ("user scripts (reported separately)", med["scripts"], f"{med['scripts']:.2f} s", "-",
         True),
    ]
    print(f"\nguestagent benchmark, {b.rounds} rounds, medians; "
          f"P = {P * 1000:.0f} ms, R = {R * 1000:.0f} ms "
          f"({platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()})\n")
    print(f"{'measure':48} {'median':>9}  {'ratio/value':>24}  {'budget':>24}  ok")
    for name, secs, value, budget, ok in rows:
        s = f"{secs * 1000:7.0f} ms" if secs is not None else " " * 10
        print(f"{name:48} {s:>9}  {value:>24}  {budget:>24}  {'yes' if ok else 'NO'}")
    return {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": _commit(),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "rounds": b.rounds,
        "medians_s": med,
        "samples": b.samples,
        "budgets": [{"measure": n, "value": v, "budget": bud, "ok": ok}
                    for n, _, v, bud, ok in rows],
    }, all(r[4] for r in rows)


def _commit():
    try:
        return subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--json", default=os.path.join(REPO, "bench", "results", "latest.json"))
    p.add_argument("--strict", action="store_true", help="exit 1 when a budget is missed")
    args = p.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("benchmark: needs root (network namespaces)")
    b, deadline, notes = run(args)
    result, ok = report(b, deadline, notes)
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(result, f, indent=1, sort_keys=True)
    print(f"\nwrote {args.json}")
    return 1 if (args.strict and not ok) else 0


if __name__ == "__main__":
    sys.exit(main())
