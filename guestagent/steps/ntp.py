"""#cloud-config ntp, once per instance, in the final stage: configure the NTP
client the image has (none is installed by the agent).

    ntp:
      enabled: true            (false: nothing is done)
      ntp_client: auto         (or chrony, systemd-timesyncd, ntp / ntpd / ntpsec)
      servers: [...]           (server lines)
      pools: [...]             (pool lines; with neither, the distro's
                                {0..3}.<distro>.pool.ntp.org pools, as cloud-init)

chrony and ntpd: the existing server/pool/peer lines in their config are
commented out and ours added, marked; systemd-timesyncd: a drop-in
/etc/systemd/timesyncd.conf.d/guestagent.conf.  The client is restarted on a
live system (`systemctl try-restart`).  No client at all fails the step
with that reason.
"""

import logging

from ..system.distro import os_release
from . import PER_INSTANCE, Skip

log = logging.getLogger(__name__)

FREQUENCY = PER_INSTANCE
MARK = "# added by guestagent from #cloud-config ntp"
TIMESYNCD_DROPIN = "/etc/systemd/timesyncd.conf.d/guestagent.conf"
# client -> (config files to look for, binaries that show it is installed, units)
CLIENTS = {
    "chrony": (("/etc/chrony/chrony.conf", "/etc/chrony.conf"),
               ("/usr/sbin/chronyd",), ("chrony.service", "chronyd.service")),
    "systemd-timesyncd": ((TIMESYNCD_DROPIN,),
                          ("/lib/systemd/systemd-timesyncd",
                           "/usr/lib/systemd/systemd-timesyncd"),
                          ("systemd-timesyncd.service",)),
    "ntp": (("/etc/ntpsec/ntp.conf", "/etc/ntp.conf"), ("/usr/sbin/ntpd",),
            ("ntpsec.service", "ntp.service", "ntpd.service")),
}
_ALIASES = {"ntpd": "ntp", "ntpsec": "ntp", "ntpdate": "ntp", "timesyncd": "systemd-timesyncd"}


def pending(ctx):
    cfg = ctx.cloud_config.get("ntp")
    return cfg is not None and cfg.get("enabled", True)


def run(ctx):
    cfg = ctx.cloud_config.get("ntp")
    if cfg is None:
        raise Skip("no ntp in #cloud-config")
    if not cfg.get("enabled", True):
        raise Skip("ntp: enabled is false")
    system = ctx.system
    client = _client(system, cfg.get("ntp_client", "auto"))
    servers, pools = cfg.get("servers", []), cfg.get("pools", [])
    if not servers and not pools:
        distro = os_release(system).get("ID", "debian") or "debian"
        pools = [f"{i}.{distro}.pool.ntp.org" for i in range(4)]
    if client == "systemd-timesyncd":
        path = TIMESYNCD_DROPIN
        system.write_file(path, f"{MARK}\n[Time]\nNTP={' '.join(servers + pools)}\n")
    else:
        path = next(p for p in CLIENTS[client][0] if system.exists(p)) \
            if any(system.exists(p) for p in CLIENTS[client][0]) else CLIENTS[client][0][0]
        system.write_file(path, _rewrite(system.read_text(path, default=""), servers, pools))
    changes = [f"{client}: {', '.join(servers + pools)} in {path}"]
    system.reload_service(CLIENTS[client][2], "the new NTP servers", restart=True)
    return changes


def _client(system, wanted):
    wanted = _ALIASES.get(wanted, wanted)
    installed = [c for c, (_, bins, _) in CLIENTS.items()
                 if any(system.exists(b) for b in bins)]
    if wanted in ("auto", ""):
        if not installed:
            raise RuntimeError("no NTP client in this image (looked for chrony, "
                               "systemd-timesyncd, ntpd); the clock is not configured")
        return installed[0]
    if wanted not in CLIENTS:
        raise RuntimeError(f"ntp_client {wanted[:40]!r} is not chrony, systemd-timesyncd "
                           "or ntp")
    if wanted not in installed:
        raise RuntimeError(f"ntp_client {wanted} is not installed in this image")
    return wanted


def _rewrite(text, servers, pools):
    out = []
    for line in text.splitlines():
        if line.split()[:1] and line.split()[0] in ("server", "pool", "peer") \
                and not line.startswith("#"):
            line = "# " + line + "  # replaced by guestagent"
        elif line == MARK or (out and out[-1] == MARK):
            continue
        out.append(line)
    ours = [f"server {s} iburst" for s in servers] + [f"pool {p} iburst" for p in pools]
    return "\n".join(out + [MARK] + ours) + "\n"
