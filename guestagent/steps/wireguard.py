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


from . import PER_INSTANCE, Outcome, Skip

FREQUENCY = PER_INSTANCE
WG_QUICK = ("/usr/bin/wg-quick", "/bin/wg-quick", "/usr/sbin/wg-quick")
CONFIG_MODE = 0o600
PROBE_TIMEOUT = 120
SERVICE_TIMEOUT = 90


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
