#!/usr/bin/env python3
"""Compare guestagent with cloud-init on a real first boot in QEMU.

    sudo bench/compare-boot [--suite bookworm|trixie] [--rounds 3] [--json FILE]

Three images from the end-to-end tests' cached Debian tree (tests/e2e/build-image;
bookworm: cloud-init 22.4.2, four processes a boot; trixie: cloud-init 25.1,
one process and thin stage units), each booted with the e2e config drive (ISO label
config-2, gzipped #cloud-config) on a fresh overlay, so every boot is a new
instance's first boot:

  guestagent  the .deb from packaging/build-deb, exactly the e2e image
  cloud-init  Debian's cloud-init package instead, datasource_list limited to
              [ConfigDrive, None] (what a fair image builder sets)
  floor       neither: user debian and its key planted at image build

Rounds interleave guestagent, cloud-init, floor, guestagent, ... because TCG
boots on a shared 2-core machine are noisy.  Per boot: time to SSH (QEMU start
to the first SSH login as debian with the key, as tests/e2e/harness.py
measures it) and, once the boot has finished, the agent's units from
`systemd-analyze blame`.  A benchmark, not a test: it reports and exits 0
unless a boot fails (or --strict and a target is missed).
"""

import argparse
import datetime
import hashlib
import inspect
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
E2E = os.path.join(REPO, "tests", "e2e")
sys.path.insert(0, E2E)

import test_boot  # noqa: E402  (the e2e config drive: write_instance, CLOUD_CONFIG)

import harness  # noqa: E402

CACHE = os.environ.get("GUESTAGENT_E2E_CACHE", "/var/cache/guestagent-e2e")
DISK = "3G"
KINDS = ("guestagent", "cloud-init", "floor")
# Every unit of each agent, on either suite; one that does not exist or did
# not start costs 0.  The *-main units are the one process per boot of
# guestagent (since issue 30) and of cloud-init 24.3+ (trixie's 25.1, whose
# network stage is cloud-init-network.service): up once their imports are
# done, so their unit time is the interpreter's start.
UNITS = {
    "guestagent": ("guestagent-local.service", "guestagent.service",
                   "guestagent-final.service", "guestagent-main.service"),
    "cloud-init": ("cloud-init-local.service", "cloud-init.service",
                   "cloud-init-network.service", "cloud-config.service",
                   "cloud-final.service", "cloud-init-main.service"),
    "floor": (),
}
# The unit a first boot's `systemd-analyze blame` must list before it is read
FIRST_UNIT = {"guestagent": "guestagent-main.service",
              "cloud-init": "cloud-init-local.service"}
SUITES = ("bookworm", "trixie")  # Debian 12 (cloud-init 22.4.2), 13 (25.1)
SUITE = SUITES[0]
FLOOR_SLACK_S = 10.0   # target: guestagent within 10 s of the floor
SSHD_SLACK_S = 2.0     # target: sshd active within 2 s of the floor's (guest clock)
UNIT_RATIO_MAX = 0.1   # target: guestagent's units at most a tenth of cloud-init's
# The three boots measured: a config-drive first boot, a metadata-service
# first boot, and a reboot of the config-drive instance (same disk).
BOOTS = ("configdrive", "metadata", "reboot")
PROBE_TRIES = 6        # an SSH probe that fails is retried, never counted as 0

# What a fair image builder does: probe only the datasources this cloud has
# (OpenStack too when the metadata-service boot is measured).
CLOUD_INIT_CFG = "datasource_list: [ConfigDrive, None]\n"
CLOUD_INIT_CFG_MD = "datasource_list: [ConfigDrive, OpenStack, None]\n"
FLOOR_SUDOERS = "debian ALL=(ALL) NOPASSWD:ALL\n"


def log(msg):
    print(f"[compare-boot] {msg}", flush=True)


def sh(argv, **kw):
    return subprocess.run(argv, check=True, **kw)


# -- images ----------------------------------------------------------------------
def _suite_args():
    return [] if SUITE == SUITES[0] else ["--suite", SUITE]


def _cache_name(name):
    """bench-cloud-init-HASH (bookworm, as before), bench-cloud-init@trixie-HASH."""
    return name if SUITE == SUITES[0] else f"{name}@{SUITE}"


def derived_cache(name, recipe):
    """A cache dir laid out like build-image's ($CACHE/base-KEY/tree + done), so
    `build-image disk` run with GUESTAGENT_E2E_CACHE pointing at it makes the
    disk from our tree with exactly the e2e disk layout."""
    key = subprocess.run([harness.BUILD_IMAGE] + _suite_args() + ["key"],
                         capture_output=True, text=True, check=True).stdout.strip()
    digest = hashlib.sha256((key + "\n" + recipe).encode()).hexdigest()[:12]
    cache = os.path.join(CACHE, f"bench-{_cache_name(name)}-{digest}")
    return cache, os.path.join(cache, f"base-{key}")


class Chroot:
    """/proc, /sys, /dev/pts and the host's resolver inside a tree, undone on exit
    even when interrupted (SIGTERM is turned into an exception in main)."""

    def __init__(self, tree):
        self.tree = tree
        self.mounts = []

    def __enter__(self):
        self.saved_resolv = None
        try:
            return self._enter()
        except BaseException:
            self.__exit__()
            raise

    def _enter(self):
        for fstype, src, dst in (("proc", "proc", "proc"), ("sysfs", "sys", "sys"),
                                 ("devpts", "devpts", "dev/pts")):
            path = os.path.join(self.tree, dst)
            os.makedirs(path, exist_ok=True)
            sh(["mount", "-t", fstype, src, path])
            self.mounts.append(path)
        resolv = os.path.join(self.tree, "etc/resolv.conf")
        self.saved_resolv = open(resolv, "rb").read() if os.path.exists(resolv) else None
        shutil.copy("/etc/resolv.conf", resolv)
        policy = os.path.join(self.tree, "usr/sbin/policy-rc.d")
        with open(policy, "w") as f:
            f.write("#!/bin/sh\nexit 101\n")  # no daemons start in the chroot
        os.chmod(policy, 0o755)
        return self

    def run(self, *argv, **kw):
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive",
               "LC_ALL": "C"}
        return sh(["chroot", self.tree] + list(argv), env=env, **kw)

    def __exit__(self, *exc):
        for path in reversed(self.mounts):
            subprocess.run(["umount", "-l", path])
        policy = os.path.join(self.tree, "usr/sbin/policy-rc.d")
        if os.path.exists(policy):
            os.unlink(policy)
        resolv = os.path.join(self.tree, "etc/resolv.conf")
        if self.saved_resolv is not None:
            with open(resolv, "wb") as f:
                f.write(self.saved_resolv)


def install_cloud_init(tree, logf):
    with Chroot(tree) as c:
        c.run("apt-get", "update", stdout=logf, stderr=subprocess.STDOUT)
        # Recommends too (cloud-guest-utils, eatmydata, sudo): the package as Debian
        # ships it in its own cloud images.
        c.run("apt-get", "install", "-y", "cloud-init", stdout=logf, stderr=subprocess.STDOUT)
        c.run("apt-get", "clean")
        # A Debian cloud image ships with its locale generated; without it cloud-init's
        # locale module runs locale-gen at boot and fails (minbase has no en_US.UTF-8),
        # failing cloud-config.service and adding seconds a real image would not spend.
        c.run("sed", "-i", "s/^# *en_US.UTF-8 UTF-8/en_US.UTF-8 UTF-8/", "/etc/locale.gen")
        c.run("locale-gen", stdout=logf, stderr=subprocess.STDOUT)
        c.run("update-locale", "LANG=en_US.UTF-8")
    shutil.rmtree(os.path.join(tree, "var/lib/apt/lists"), ignore_errors=True)
    os.makedirs(os.path.join(tree, "var/lib/apt/lists/partial"), exist_ok=True)
    if CLOUD_INIT_CFG:
        with open(os.path.join(tree, "etc/cloud/cloud.cfg.d/99-bench-datasource.cfg"),
                  "w") as f:
            f.write(CLOUD_INIT_CFG)


def plant_floor_user(tree, pubkey, logf):
    with Chroot(tree) as c:
        c.run("useradd", "-m", "-s", "/bin/bash", "debian", stdout=logf,
              stderr=subprocess.STDOUT)
    home = os.path.join(tree, "home/debian")
    ssh_dir = os.path.join(home, ".ssh")
    os.makedirs(ssh_dir, mode=0o700, exist_ok=True)
    with open(os.path.join(ssh_dir, "authorized_keys"), "w") as f:
        f.write(pubkey + "\n")
    os.chmod(os.path.join(ssh_dir, "authorized_keys"), 0o600)
    st = os.stat(home)
    for p in (ssh_dir, os.path.join(ssh_dir, "authorized_keys")):
        os.chown(p, st.st_uid, st.st_gid)
    with open(os.path.join(tree, "etc/sudoers.d/90-debian"), "w") as f:
        f.write(FLOOR_SUDOERS)
    os.chmod(os.path.join(tree, "etc/sudoers.d/90-debian"), 0o440)


def derived_tree(name, recipe, customize):
    """The e2e base tree plus ``customize(tree, logf)``, cached by base key + recipe;
    returns the GUESTAGENT_E2E_CACHE value that makes build-image use it."""
    cache, base = derived_cache(name, recipe)
    if os.path.exists(os.path.join(base, "done")):
        return cache
    src = harness.build_base(suite=None if SUITE == SUITES[0] else SUITE)
    shutil.rmtree(cache, ignore_errors=True)
    tmp = base + ".tmp"
    os.makedirs(tmp)
    tree = os.path.join(tmp, "tree")
    log(f"{name}: copying the base tree and customising it (cached afterwards)")
    sh(["cp", "-a", src, tree])
    logpath = os.path.join(tmp, "build.log")
    try:
        with open(logpath, "w") as logf:
            customize(tree, logf)
    except subprocess.CalledProcessError:
        with open(logpath) as f:
            sys.stderr.write(f.read()[-4000:])
        raise
    open(os.path.join(tmp, "done"), "w").close()
    os.rename(tmp, base)
    # Older derived trees (another base key or recipe) are dead weight.
    for old in os.listdir(CACHE):
        full = os.path.join(CACHE, old)
        if old.startswith(f"bench-{_cache_name(name)}-") and full != cache:
            shutil.rmtree(full, ignore_errors=True)
    return cache


def build_images(work, deb, keys):
    debug_pub = keys["debug"] + ".pub"
    images = {}
    log("image guestagent: the e2e image (build-image disk with the .deb)")
    suite = None if SUITE == SUITES[0] else SUITE
    images["guestagent"] = harness.build_image(os.path.join(work, "img-guestagent"), deb,
                                               root_key=debug_pub, suite=suite)
    # Cached by what builds them: the functions' source (like build-image's key).
    ci_cache = derived_tree("cloud-init", inspect.getsource(Chroot)
                            + inspect.getsource(install_cloud_init) + CLOUD_INIT_CFG,
                            install_cloud_init)
    pub = harness.public_key(keys["user"])
    floor_cache = derived_tree("floor", inspect.getsource(plant_floor_user) + pub
                               + FLOOR_SUDOERS, lambda t, f: plant_floor_user(t, pub, f))
    for kind, cache in (("cloud-init", ci_cache), ("floor", floor_cache)):
        log(f"image {kind}: build-image disk from {cache}")
        saved = os.environ.get("GUESTAGENT_E2E_CACHE")
        os.environ["GUESTAGENT_E2E_CACHE"] = cache
        try:
            images[kind] = harness.build_image(os.path.join(work, f"img-{kind}"), "-",
                                               root_key=debug_pub, suite=suite)
        finally:
            if saved is None:
                os.environ.pop("GUESTAGENT_E2E_CACHE")
            else:
                os.environ["GUESTAGENT_E2E_CACHE"] = saved
    return images


def config_drive(work, keys):
    """The e2e test's config drive: scenario a's metadata and gzipped #cloud-config."""
    d = os.path.join(work, "drive")
    shutil.rmtree(d, ignore_errors=True)
    shutil.rmtree(d + "-md", ignore_errors=True)
    import pathlib
    u = str(uuid.uuid4())
    cc = test_boot.CLOUD_CONFIG.format(extra_key=harness.public_key(keys["extra"]))
    tree = test_boot.write_instance(pathlib.Path(d), u, "meta-name.novalocal",
                                    [harness.public_key(keys["user"])],
                                    user_data=harness.gzip_bytes(cc.encode()))
    md = test_boot.write_instance(pathlib.Path(d + "-md"), u, "meta-name.novalocal",
                                  [harness.public_key(keys["user"])],
                                  user_data=harness.gzip_bytes(cc.encode()))
    return harness.config_drive_iso(tree, os.path.join(work, "config-2.iso")), u, md


# -- one boot ----------------------------------------------------------------------
# Read in one login once the boot finished: did the agent do the config drive's work?
PROBE = ("sudo -n systemctl is-system-running --wait >/dev/null 2>&1; "
         "echo state=$(sudo -n systemctl is-system-running); "
         # When sshd was up, on the guest's own clock (µs since the kernel started): the
         # harness's SSH polling has a resolution of about 5 s, this one does not.
         "echo sshd_us=$(sudo -n systemctl show ssh.service -p ActiveEnterTimestampMonotonic "
         "--value); "
         "echo hostname=$(hostname); "
         "echo runcmd=$(cat /var/tmp/e2e-runcmd 2>/dev/null | tr '\\n' ,); "
         "echo extra=$(id -u extra 2>/dev/null); "
         "echo analyze=$(sudo -n systemd-analyze time --no-pager 2>/dev/null | head -1); "
         "echo failed=$(sudo -n systemctl --failed --no-legend --plain | awk '{print $1}' "
         "| tr '\\n' ,); "
         # Where the agents' time went, by their own accounts (not part of the measure).
         "echo detail=$(sudo -n journalctl -b -o cat -t guestagent 2>/dev/null "
         "| grep -E 'stage finished in|generated new host keys|growroot: grew partition' "
         "| tr '\\n' ';'); "
         "command -v cloud-init >/dev/null && echo detail=$(sudo -n cloud-init analyze blame "
         "2>/dev/null | grep -E '^ +[0-9]' | head -6 | tr -s ' \\n' ' '); "
         # The profile: what sshd waited for, and when each agent unit started
         # and said its first line (monotonic, s since the kernel started).
         "echo chain=$(sudo -n systemd-analyze critical-chain ssh.service --no-pager "
         "2>/dev/null | tail -n +3 | tr -s ' ' | tr '\\n' ';'); "
         # When each unit began and became active (µs since the kernel started; 0:
         # never): whether the agent's process starts before local-fs.target, where
         # a stage unit of its own would have started its interpreter.  As root:
         # the images have no D-Bus, so a user's systemctl answers nothing.
         "echo marks=$(for u in local-fs.target guestagent-main.service "
         "guestagent-local.service guestagent.service cloud-init-main.service "
         "cloud-init-local.service ssh.service; do echo $u $(sudo -n systemctl show -p "
         "InactiveExitTimestampMonotonic --value $u) $(sudo -n systemctl show -p "
         "ActiveEnterTimestampMonotonic --value $u); done | tr '\\n' ';'); "
         "echo journal=$(sudo -n journalctl -b -o short-monotonic --no-pager "
         "-u 'guestagent*' -u 'cloud-init*' -u cloud-config.service -u cloud-final.service "
         "2>/dev/null | grep -E 'Starting|Started|Finished|Condition|guestagent:|cloud-init\\[' "
         "| head -30 | tr '\\n' ';')")
# The agent's own start, import by import: the local stage run once more after
# the measured boots (a later boot's path), with python3 -X importtime.
IMPORTTIME = ("sudo -n python3 -X importtime /usr/bin/guestagent --once --stage local "
              "2>&1 >/dev/null | grep '^import time' | sort -t'|' -k2 -n | tail -25")

# What the interpreter's own start costs in the guest, and what -I / -I -S
# would save (candidates for the units' command line): 5 starts of each,
# interleaved, wall time in ms per start.
STARTUP = ("for v in plain I IS; do eval t_$v=0; done; "
           "for i in 1 2 3 4 5; do for v in plain I IS; do "
           "case $v in plain) f=;; I) f=-I;; IS) f='-I -S';; esac; "
           "s=$(date +%s%N); python3 $f -c pass; e=$(date +%s%N); "
           "eval t_$v=\\$\\(\\( t_$v + e - s \\)\\); done; done; "
           "for v in plain I IS; do eval echo $v=\\$\\(\\( t_$v / 5000000 \\)\\); done")


def probe_guest(g, want_unit):
    """PROBE and `systemd-analyze blame`, retried until they answer: a login that
    fails (sshd restarting, a slow guest) must not count as 0 unit time."""
    probe, blame = {}, {}
    for attempt in range(1, PROBE_TRIES + 1):
        res = g.ssh(PROBE, check=False, timeout=600)
        probe = {}
        for line in res.stdout.splitlines():
            k, _, v = line.partition("=")
            probe[k] = v.strip().rstrip(",;")
        blame = g.unit_times()
        if res.returncode == 0 and probe.get("state") and blame and (
                want_unit is None or want_unit in blame):
            return probe, blame, attempt, True
        log(f"probe attempt {attempt} incomplete (ssh exit {res.returncode}, "
            f"{len(blame)} units in blame); retrying")
        time.sleep(5)
    return probe, blame, PROBE_TRIES, False


def unit_marks(text):
    """{unit: [began, active]} in s since the kernel started, from PROBE's marks
    (None where the unit never got there, or is not on the image)."""
    marks = {}
    for entry in text.split(";"):
        parts = entry.split()
        if len(parts) != 3:
            continue
        try:
            marks[parts[0]] = [round(int(p) / 1e6, 3) or None for p in parts[1:]]
        except ValueError:
            continue
    return marks


def measure(kind, boot, g, tts, n, load):
    # The unit each first boot must show (a reboot may skip all of the agent's).
    want = None if boot == "reboot" or kind == "floor" else FIRST_UNIT[kind]
    if kind == "cloud-init":
        want = FIRST_UNIT[kind]
    probe, blame, attempts, ok = probe_guest(g, want)
    # A unit absent from blame did not start (a Condition was false: guestagent.service
    # when the local stage already configured the boot): it cost nothing, counted as 0.
    units = {u: blame.get(u) for u in UNITS[kind]}
    try:
        sshd_active = round(int(probe.get("sshd_us", "")) / 1e6, 2) or None
    except ValueError:
        sshd_active = None
    missing = [u for u, t in units.items() if t is None]
    sample = {
        "round": n, "boot": boot, "time_to_ssh_s": round(tts, 2),
        "sshd_active_s": sshd_active, "host_loadavg_1min_at_start": load,
        "probe_ok": ok, "probe_attempts": attempts,
        "unit_time_s": round(sum(t for t in units.values() if t), 3) if UNITS[kind] else 0.0,
        "units_s": units, "missing_units": missing,
        "state": probe.get("state"), "hostname": probe.get("hostname"),
        "runcmd": probe.get("runcmd"), "extra_user_uid": probe.get("extra"),
        "systemd_analyze_time": probe.get("analyze"), "failed_units": probe.get("failed"),
        "agent_detail": probe.get("detail"),
        "critical_chain_ssh": [x.strip() for x in probe.get("chain", "").split(";") if x.strip()],
        "agent_journal": [x.strip() for x in probe.get("journal", "").split(";") if x.strip()],
        "unit_marks_s": unit_marks(probe.get("marks", "")),
    }
    shown = ", ".join(f"{u} {'not started' if t is None else t}" for u, t in units.items())
    log(f"round {n} {boot} {kind}: time to SSH {tts:.1f} s, sshd up {sshd_active} s, units "
        f"{sample['unit_time_s']:.1f} s ({shown or 'none'}); state {sample['state']}, "
        f"hostname {sample['hostname']}, runcmd {sample['runcmd'] or '-'}"
        + ("" if ok else f"; PROBE FAILED after {attempts} attempts (left out of medians)"))
    return sample


def boot_once(kind, images, work, keys, iso, md_tree, instance_uuid, n, boots, profile):
    """The boots of one kind in one round: the config-drive first boot (then its
    reboot), the metadata-service first boot."""
    out = []
    if "configdrive" in boots or "reboot" in boots:
        g = harness.Guest(images[kind], os.path.join(work, f"vm-{kind}"), f"bench-{kind}",
                          key=keys["user"], root_key=keys["debug"], config_drive=iso,
                          disk_size=DISK, instance_uuid=instance_uuid)
        load = round(os.getloadavg()[0], 2)  # other work on the host skews TCG boots
        with g:
            tts = wait_login(g, kind, "configdrive", n, load, out)
            if tts is not None:
                configdrive_then_reboot(g, kind, tts, n, load, boots, profile, out)
    if "metadata" in boots:
        g = harness.Guest(images[kind], os.path.join(work, f"vm-md-{kind}"), f"bench-md-{kind}",
                          key=keys["user"], root_key=keys["debug"], metadata_tree=md_tree,
                          disk_size=DISK, instance_uuid=instance_uuid)
        load = round(os.getloadavg()[0], 2)
        with g:
            tts = wait_login(g, kind, "metadata", n, load, out)
            if tts is not None:
                out.append(measure(kind, "metadata", g, tts, n, load))
    return out


def configdrive_then_reboot(g, kind, tts, n, load, boots, profile, out):
    s = measure(kind, "configdrive", g, tts, n, load)
    if "configdrive" in boots:
        out.append(s)
    if "reboot" in boots:
        load = round(os.getloadavg()[0], 2)
        if wait_login(g, kind, "reboot", n, load, out, login=g.reboot) is None:
            return
        out.append(measure(kind, "reboot", g, g.time_to_ssh, n, load))
    if profile and kind == "guestagent":
        res = g.ssh(IMPORTTIME, check=False, timeout=600)
        out[-1]["importtime_local_stage"] = res.stdout.splitlines()
        res = g.ssh(STARTUP, check=False, timeout=600)
        out[-1]["python_start_ms"] = dict(
            ln.split("=", 1) for ln in res.stdout.splitlines() if "=" in ln)


def wait_login(g, kind, boot, n, load, out, login=None):
    """Seconds to the first SSH login; a guest that never lets the user in is
    recorded as such (left out of the medians) and the run goes on."""
    try:
        if login is not None:
            login()
            return g.time_to_ssh
        return g.wait_ssh()
    except harness.GuestError as e:
        log(f"round {n} {boot} {kind}: NO LOGIN ({str(e).splitlines()[0]}); recorded, "
            f"left out of the medians")
        out.append({"round": n, "boot": boot, "login_ok": False, "probe_ok": False,
                    "time_to_ssh_s": None, "unit_time_s": None,
                    "host_loadavg_1min_at_start": load, "error": str(e)[-3000:]})
        return None


# -- report ----------------------------------------------------------------------
def med(xs):
    xs = [x for x in xs if x is not None]
    return round(statistics.median(xs), 2) if xs else None


def summarise(samples):
    """Medians and comparisons over one boot type's samples ({kind: [sample]});
    samples whose probe never answered are left out (they are in the JSON)."""
    samples = {k: [x for x in v if x.get("probe_ok", True)] for k, v in samples.items()}
    s = {}
    for kind in KINDS:
        ks = samples[kind]
        s[kind] = {"boots": len(ks),
                   "time_to_ssh_median_s": med([x["time_to_ssh_s"] for x in ks]),
                   "time_to_ssh_min_s": min((x["time_to_ssh_s"] for x in ks), default=None),
                   "time_to_ssh_max_s": max((x["time_to_ssh_s"] for x in ks), default=None),
                   "sshd_active_median_s": med([x.get("sshd_active_s") for x in ks]),
                   "unit_time_median_s": med([x["unit_time_s"] for x in ks])}
    ga, ci, fl = (s[k] for k in KINDS)
    if not all(x["boots"] for x in (ga, ci, fl)):
        s["comparison"] = {"incomplete": True}
        return s
    over_floor = round(ga["time_to_ssh_median_s"] - fl["time_to_ssh_median_s"], 2)
    ci_over_floor = round(ci["time_to_ssh_median_s"] - fl["time_to_ssh_median_s"], 2)
    ratio = (round(ga["unit_time_median_s"] / ci["unit_time_median_s"], 3)
             if ci["unit_time_median_s"] else None)
    # Per-round differences too: a round's three boots share the machine's mood.
    def same_round(a_kind, b_kind):
        b = {x["round"]: x for x in samples[b_kind]}
        return [(x, b[x["round"]]) for x in samples[a_kind] if x["round"] in b]
    per_round = [round(a["time_to_ssh_s"] - f["time_to_ssh_s"], 2)
                 for a, f in same_round("guestagent", "floor")]
    unit_ratios = [round(a["unit_time_s"] / c["unit_time_s"], 3)
                   for a, c in same_round("guestagent", "cloud-init") if c["unit_time_s"]]
    sshd_per_round = [round(a["sshd_active_s"] - f["sshd_active_s"], 2)
                      for a, f in same_round("guestagent", "floor")
                      if a.get("sshd_active_s") and f.get("sshd_active_s")]
    sshd_over_floor = (round(ga["sshd_active_median_s"] - fl["sshd_active_median_s"], 2)
                       if ga["sshd_active_median_s"] and fl["sshd_active_median_s"] else None)
    s["comparison"] = {
        "guestagent_sshd_active_minus_floor_s": sshd_over_floor,
        "guestagent_sshd_active_minus_floor_per_round_s": sshd_per_round,
        "target_sshd_minus_floor_max_s": SSHD_SLACK_S,
        "meets_sshd_target": sshd_over_floor is not None and sshd_over_floor <= SSHD_SLACK_S,
        "cloud_init_sshd_active_minus_floor_s": (
            round(ci["sshd_active_median_s"] - fl["sshd_active_median_s"], 2)
            if ci["sshd_active_median_s"] and fl["sshd_active_median_s"] else None),
        "guestagent_time_to_ssh_minus_floor_s": over_floor,
        "guestagent_minus_floor_per_round_s": per_round,
        "cloud_init_time_to_ssh_minus_floor_s": ci_over_floor,
        "guestagent_over_cloud_init_time_to_ssh": round(
            ga["time_to_ssh_median_s"] / ci["time_to_ssh_median_s"], 3),
        "guestagent_over_cloud_init_unit_time": ratio,
        "guestagent_over_cloud_init_unit_time_per_round": unit_ratios,
        "target_minus_floor_max_s": FLOOR_SLACK_S,
        "target_unit_ratio_max": UNIT_RATIO_MAX,
        "meets_floor_target": over_floor <= FLOOR_SLACK_S,
        "meets_unit_ratio_target": ratio is not None and ratio <= UNIT_RATIO_MAX,
    }
    return s


def print_table(samples, summary):
    print()
    print(f"{'image':<11} {'boots':>5} {'time to SSH (median, min-max)':>32} "
          f"{'sshd up (median)':>17} {'agent units (median)':>21}")
    for kind in KINDS:
        k = summary[kind]
        up = k.get("sshd_active_median_s")
        print(f"{kind:<11} {k['boots']:>5} {k['time_to_ssh_median_s']:>12.1f} s "
              f"({k['time_to_ssh_min_s']:.1f}-{k['time_to_ssh_max_s']:.1f} s) "
              f"{'-' if up is None else f'{up:.1f} s':>17} "
              f"{k['unit_time_median_s']:>19.1f} s")
    c = summary["comparison"]
    print()
    print(f"guestagent time to SSH - floor: {c['guestagent_time_to_ssh_minus_floor_s']:+.1f} s "
          f"(target <= {FLOOR_SLACK_S:.0f} s: "
          f"{'met' if c['meets_floor_target'] else 'MISSED'}); per round "
          f"{', '.join(f'{x:+.1f}' for x in c['guestagent_minus_floor_per_round_s'])}")
    print(f"cloud-init time to SSH - floor: {c['cloud_init_time_to_ssh_minus_floor_s']:+.1f} s")
    if c.get("guestagent_sshd_active_minus_floor_s") is not None:
        print(f"sshd up (guest clock) - floor: guestagent "
              f"{c['guestagent_sshd_active_minus_floor_s']:+.1f} s, cloud-init "
              f"{c['cloud_init_sshd_active_minus_floor_s']:+.1f} s")
    r = c["guestagent_over_cloud_init_unit_time"]
    print(f"guestagent units / cloud-init units: {r if r is None else f'{r:.3f}'} "
          f"(target <= {UNIT_RATIO_MAX}: {'met' if c['meets_unit_ratio_target'] else 'MISSED'}); "
          f"per round "
          f"{', '.join(f'{x:.2f}' for x in c['guestagent_over_cloud_init_unit_time_per_round'])}")


def machine():
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    qemu = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True,
                          text=True).stdout.splitlines()
    return {"nproc": os.cpu_count(), "cpu_model": model, "kernel": platform.release(),
            "qemu": qemu[0] if qemu else "", "accel": "tcg",
            "loadavg_at_start": os.getloadavg()}


def git_commit():
    res = subprocess.run(["git", "-C", REPO, "rev-parse", "HEAD"], capture_output=True,
                         text=True)
    dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--", "guestagent",
                            "units", "packaging"], capture_output=True, text=True).stdout
    return res.stdout.strip() + ("-dirty" if dirty.strip() else "")


def agent_tree(commit):
    """What the .deb is built from at ``commit`` (git tree ids), or None."""
    res = subprocess.run(["git", "-C", REPO, "rev-parse"]
                         + [f"{commit}:{d}" for d in ("guestagent", "units", "packaging")],
                         capture_output=True, text=True)
    return res.stdout.split() if res.returncode == 0 and "-dirty" not in commit else None


def _terminate(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--suite", choices=SUITES, default=SUITES[0],
                    help="the Debian release of all three images: bookworm (cloud-init "
                         "22.4.2) or trixie (cloud-init 25.1, one process per boot)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", default=None,
                    help="default: bench/results/boot-compare.json (bookworm), "
                         "boot-compare-trixie.json (trixie)")
    ap.add_argument("--workdir", default=None, help="scratch dir (default: under /var/tmp)")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    ap.add_argument("--build-only", action="store_true",
                    help="build (and cache) the images, boot nothing: no QEMU slot needed")
    ap.add_argument("--boots", default=",".join(BOOTS),
                    help=f"which boots to measure, comma-separated (default {','.join(BOOTS)})")
    ap.add_argument("--cloud-init-config", choices=("configdrive", "default"),
                    default="configdrive",
                    help="configdrive: datasource_list limited to ConfigDrive (and OpenStack "
                         "for the metadata boot), None (a tuned image); default: Debian's "
                         "cloud.cfg as shipped "
                         "(the SPEC's incumbent)")
    ap.add_argument("--resume", action="store_true",
                    help="go on from the rounds already in --json (same commit, boots and "
                         "cloud-init config), e.g. after the QEMU slot was lent out")
    args = ap.parse_args()
    global SUITE
    SUITE = args.suite
    if args.json is None:
        name = "boot-compare.json" if SUITE == SUITES[0] else f"boot-compare-{SUITE}.json"
        args.json = os.path.join(HERE, "results", name)
    boots = [b for b in BOOTS if b in args.boots.split(",")]
    if not boots:
        sys.exit(f"compare-boot: --boots names none of {', '.join(BOOTS)}")
    global CLOUD_INIT_CFG
    if args.cloud_init_config == "default":
        CLOUD_INIT_CFG = ""
    elif "metadata" in boots:
        CLOUD_INIT_CFG = CLOUD_INIT_CFG_MD
    if os.geteuid() != 0:
        sys.exit("compare-boot needs root (chroot, network namespaces, build-image)")
    signal.signal(signal.SIGTERM, _terminate)
    started = datetime.datetime.now(datetime.timezone.utc)
    host = machine()
    commit = git_commit()  # what the .deb is built from, not what HEAD is by the end
    samples = {b: {k: [] for k in KINDS} for b in boots}
    first_round, resumed = 1, []
    if args.resume and os.path.exists(args.json):
        with open(args.json) as f:
            prior = json.load(f)
        same = {"boots": boots, "cloud_init_cfg": CLOUD_INIT_CFG,
                "suite": SUITE if SUITE != SUITES[0] else prior.get("suite", SUITE)}
        differ = [k for k, v in same.items() if prior.get(k) != v]
        # the same .deb: guestagent/, units/, packaging/ as committed then and now
        if commit.endswith("-dirty") or agent_tree(prior["git_commit"]) != agent_tree(commit):
            differ.append("the agent's code (guestagent/, units/, packaging/)")
        if differ:
            log(f"--resume: {args.json} was measured with other "
                f"{', '.join(differ)}: starting from round 1")
        else:
            first_round = prior.get("rounds_done", 0) + 1
            samples = prior["samples"]
            started = datetime.datetime.strptime(prior["date"], "%Y-%m-%dT%H:%M:%SZ").replace(
                tzinfo=datetime.timezone.utc)
            resumed = prior.get("resumed_at", []) + [
                datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")]
    work = args.workdir or tempfile.mkdtemp(prefix="guestagent-compare-boot-", dir="/var/tmp")
    os.makedirs(work, exist_ok=True)
    try:
        keydir = os.path.join(CACHE, "bench-keys")  # the floor tree bakes the user key in
        os.makedirs(keydir, exist_ok=True)
        keys = {n: harness.make_keypair(keydir, n) for n in ("user", "extra", "debug")}
        log("building the .deb")
        deb = harness.build_deb()
        images = build_images(work, deb, keys)
        if args.build_only:
            log("images built (--build-only): nothing booted")
            return 0
        iso, instance_uuid, md_tree = config_drive(work, keys)
        for n in range(first_round, args.rounds + 1):
            for kind in KINDS:
                for s in boot_once(kind, images, work, keys, iso, md_tree, instance_uuid, n,
                                   boots, profile=(n == 1)):
                    samples[s["boot"]][kind].append(s)
            # every round on disk as soon as it is done: an interrupted run keeps them
            write_result(args, started, commit, host, samples, boots, complete=False,
                         resumed=resumed)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    result = write_result(args, started, commit, host, samples, boots, complete=True,
                          resumed=resumed)
    for boot in boots:
        print(f"\n== {boot}")
        if result["by_boot"][boot]["comparison"].get("incomplete"):
            print("(not every image has a sample whose probe answered)")
            continue
        print_table(samples[boot], result["by_boot"][boot])
    c = result["summary"]["comparison"]
    if args.strict and not (c.get("meets_floor_target") and c.get("meets_unit_ratio_target")):
        return 1
    return 0


def write_result(args, started, commit, host, samples, boots, complete, resumed=()):
    by_boot = {b: summarise(samples[b]) for b in boots}
    summary = by_boot.get("configdrive") or next(iter(by_boot.values()))
    result = {
        "benchmark": "compare-boot",
        "suite": SUITE,
        "date": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "duration_s": round((datetime.datetime.now(datetime.timezone.utc)
                             - started).total_seconds()),
        "git_commit": commit,
        "machine": host,
        "qemu_guest": {"smp": 2, "memory_mib": 1024, "cpu": "max", "disk": DISK},
        "rounds": args.rounds,
        "rounds_done": max((x["round"] for b in samples.values() for k in b.values()
                            for x in k), default=0),
        "units": {k: list(v) for k, v in UNITS.items()},
        "units_note": "units_s null: the unit did not start in that boot (a Condition "
                      "was false), counted as 0 in unit_time_s",
        "cloud_init_cfg": CLOUD_INIT_CFG,
        "complete": complete,
        # when the run went on with --resume (duration_s then counts the gaps too)
        "resumed_at": list(resumed),
        "boots": list(boots),
        "summary": summary,
        "by_boot": by_boot,
        "samples": samples,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json + ".tmp", "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    os.replace(args.json + ".tmp", args.json)
    log(f"wrote {args.json}" + ("" if complete else " (rounds so far)"))
    return result


if __name__ == "__main__":
    sys.exit(main())
