"""#cloud-config wireguard, once per instance, in the final stage (cc_wireguard's keys).

    wireguard:
      interfaces:
        - name: wg0                         (the interface, and wg-quick@wg0)
          config_path: /etc/wireguard/wg0.conf
          content: |                        (wg-quick's configuration)
            [Interface] ...
      readinessprobe:                       (sh command lines, run after every
        - 'ping -c1 -W5 10.10.0.1'           interface is up; optional)

Each config file is written 0600 (it holds the private key) and
`wg-quick@NAME` is enabled and (re)started through systemd, as cloud-init
does; then the readiness probes run, each with at most PROBE_TIMEOUT
seconds, and the step fails naming every probe that failed.  Under --root
the files are written and the units enabled in the tree (`systemctl
--root`), nothing is started and no probe runs.

wireguard-tools must be in the image (or installed by `packages:`, which
runs before this step): cloud-init installs it itself, guestagent fails the
step saying so and writes nothing, so the next boot tries again.  The
kernel module is loaded by `ip link add ... type wireguard` (wg-quick's own
first command).
"""

import re

from . import PER_INSTANCE, Outcome, Skip

FREQUENCY = PER_INSTANCE
WG_QUICK = ("/usr/bin/wg-quick", "/bin/wg-quick", "/usr/sbin/wg-quick")
CONFIG_MODE = 0o600
PROBE_TIMEOUT = 120
SERVICE_TIMEOUT = 90
# wg-quick's own rule for an interface name (and so the unit's instance name)
_IFNAME = re.compile(r"^[a-zA-Z0-9_=+.-]{1,15}$")


def check_wireguard(value, key=None, notes=None):
    from ..userdata.checks import INVALID, NOTICE, Bad, Note, absolute_path, describe, named
    if not isinstance(value, dict):
        raise Bad("a mapping {interfaces, readinessprobe}")
    unknown = [k for k in value if k not in ("interfaces", "readinessprobe")]
    if unknown:
        notes.append(Note("#cloud-config wireguard: fields neither guestagent nor cloud-init "
                          "knows, ignored: " + named(unknown), INVALID))
    interfaces = value.get("interfaces")
    if not isinstance(interfaces, list) or not interfaces:
        raise Bad("a mapping with an 'interfaces' list")
    out = {"interfaces": [], "readinessprobe": []}
    names = set()
    for n, item in enumerate(interfaces, 1):
        where = f"#cloud-config wireguard interfaces entry {n}"
        if not isinstance(item, dict):
            notes.append(Note(f"{where} is {describe(item)}, not a mapping; skipped", INVALID))
            continue
        missing = [f for f in ("name", "config_path", "content")
                   if not isinstance(item.get(f), str) or not item[f].strip()]
        if missing:
            notes.append(Note(f"{where}: {', '.join(missing)} missing or not text; skipped",
                              INVALID))
            continue
        name = item["name"].strip()
        if not _IFNAME.match(name):
            notes.append(Note(f"{where}: name is not an interface name (1-15 letters, "
                              "digits and _=+.-); skipped", INVALID))
            continue
        if name in names:
            notes.append(Note(f"{where}: interface {name} is given twice; skipped", INVALID))
            continue
        try:
            path = absolute_path(item["config_path"].strip(), "config_path")
        except Bad as e:
            notes.append(Note(f"{where}: config_path should be {e}; skipped", INVALID))
            continue
        extra = [k for k in item if k not in ("name", "config_path", "content")]
        if extra:
            notes.append(Note(f"{where}: fields neither guestagent nor cloud-init knows, "
                              "ignored: " + named(extra), INVALID))
        if path != f"/etc/wireguard/{name}.conf":
            notes.append(Note(f"{where}: wg-quick@{name} reads /etc/wireguard/{name}.conf; "
                              f"the file is written at {path} as asked, and the service "
                              "starts only if that file exists too", NOTICE))
        names.add(name)
        out["interfaces"].append({"name": name, "config_path": path,
                                  "content": item["content"]})
    probes = value.get("readinessprobe")
    if probes is not None:
        if not isinstance(probes, list):
            notes.append(Note("#cloud-config wireguard: readinessprobe should be a list of "
                              f"command lines, not {describe(probes)}; ignored", INVALID))
        else:
            for n, probe in enumerate(probes, 1):
                if isinstance(probe, str) and probe.strip():
                    out["readinessprobe"].append(probe)
                else:
                    notes.append(Note(f"#cloud-config wireguard readinessprobe entry {n} is "
                                      f"{describe(probe)}, not a command line; skipped",
                                      INVALID))
    if not out["interfaces"]:
        raise Bad("at least one usable interface {name, config_path, content}")
    return out


def pending(ctx):
    return bool((ctx.cloud_config.get("wireguard") or {}).get("interfaces"))


def run(ctx):
    cfg = ctx.cloud_config.get("wireguard")
    if not cfg or not cfg.get("interfaces"):
        raise Skip("no wireguard in #cloud-config")
    system = ctx.system
    if not any(system.exists(p) for p in WG_QUICK):
        raise RuntimeError("wireguard-tools is not installed in this image (no wg-quick): "
                           "install it in the image or list it under packages:; no "
                           "WireGuard interface was configured")
    changes, problems = [], []
    for wg in cfg["interfaces"]:
        name, path = wg["name"], wg["config_path"]
        content = wg["content"] if wg["content"].endswith("\n") else wg["content"] + "\n"
        try:
            system.write_file(path, content, mode=CONFIG_MODE, dir_mode=0o700)
        except OSError as e:
            problems.append(f"{name}: cannot write {path}: {e.strerror or e}")
            continue
        changes.append(f"{name}: configuration in {path} (0600)")
        started = _start(system, name)
        if started.startswith("!"):
            problems.append(f"{name}: {started[1:]}")
        else:
            changes.append(f"{name}: {started}")
    probes = cfg.get("readinessprobe") or []
    if probes and problems:
        changes.append("readiness probes not run: an interface did not come up")
    elif probes and not system.live:
        changes.append(f"{len(probes)} readiness probe(s) not run: not the live system")
    elif probes:
        failed = _probe(system, probes)
        problems.extend(failed)
        if not failed:
            changes.append(f"{len(probes)} readiness probe(s) passed")
    return Outcome(changes, problems)


def _start(system, name):
    """How wg-quick@NAME was brought up, or '!why not'."""
    from ..system import output_tail
    unit = f"wg-quick@{name}.service"
    if not system.which("systemctl"):
        return "!no systemctl: wg-quick@ cannot be enabled on this system"
    if not system.live:
        res = system.run(["systemctl", f"--root={system.root}", "enable", unit],
                         timeout=SERVICE_TIMEOUT)
        if res.returncode != 0:
            return f"!systemctl enable {unit} failed (exit {res.returncode}): " \
                + output_tail(res)
        return f"{unit} enabled in the tree (started at its first boot)"
    for action in ("enable", "restart"):
        res = system.run(["systemctl", action, unit], timeout=SERVICE_TIMEOUT)
        if res.returncode != 0:
            why = output_tail(res) or "see journalctl -u " + unit
            return f"!systemctl {action} {unit} failed (exit {res.returncode}): {why}"
    return f"{unit} enabled and started"


def _probe(system, probes):
    """The readiness probes that failed, each named by number with its last words."""
    from ..system import CommandTimedOut, output_tail
    failed = []
    for n, probe in enumerate(probes, 1):
        try:
            res = system.run(["sh", "-c", probe], timeout=PROBE_TIMEOUT)
        except CommandTimedOut:
            failed.append(f"readiness probe {n} did not finish within {PROBE_TIMEOUT} s")
            continue
        if res.returncode != 0:
            tail = output_tail(res)
            failed.append(f"readiness probe {n} failed (exit {res.returncode})"
                          + (f": {tail}" if tail else ""))
    return failed
