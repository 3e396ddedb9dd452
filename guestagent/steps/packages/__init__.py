"""#cloud-config packages, package_update, package_upgrade,
package_reboot_if_required (and the old apt_update, apt_upgrade,
apt_reboot_if_required), once per instance.

As in cloud-init: with apt, installing or upgrading refreshes the package
lists first; the upgrade is a dist-upgrade; `[name, version]` pins a version
(apt name=version, dnf/yum name-version); `{apt: [...], snap: [...]}` entries
go to apt (only where the image uses apt) and to snap (only where snapd is
installed); otherwise a warning names them and the rest goes on.  It runs in the final stage,
before user scripts and runcmd (which usually need the packages), so no SSH
login waits for it.  A list refresh that reaches only some sources (apt-get
update exits 0 then) is logged and the install goes on: a repository the
user added may be all that is reachable.  When the upgrade or the install
left /run/reboot-required and package_reboot_if_required is set, the
machine reboots once the final stage is done (cloud-init reboots on the
spot and runs runcmd on the next boot; here runcmd runs first).
"""

import logging

from ...system.power import Request
from .. import PER_INSTANCE, Outcome, Skip

log = logging.getLogger(__name__)

FREQUENCY = PER_INSTANCE
REBOOT_FLAGS = ("/run/reboot-required", "/var/run/reboot-required", "/run/reboot-needed")


def wanted(cc):
    """(update, upgrade, reboot_if_required, packages) from the #cloud-config."""
    return (bool(cc.get("package_update") or cc.get("apt_update")),
            bool(cc.get("package_upgrade") or cc.get("apt_upgrade")),
            bool(cc.get("package_reboot_if_required") or cc.get("apt_reboot_if_required")),
            list(cc.get("packages") or []))


def pending(ctx):
    update, upgrade, _, pkgs = wanted(ctx.cloud_config)
    return bool(update or upgrade or pkgs)


def run(ctx):
    update, upgrade, reboot_if_required, pkgs = wanted(ctx.cloud_config)
    if not (update or upgrade or pkgs):
        raise Skip("no packages, package_update or package_upgrade in #cloud-config")
    from . import managers
    manager = managers.find(ctx.system)
    if manager is None:
        raise RuntimeError("no package manager in this image (looked for "
                           + ", ".join(n for n, _ in managers.MANAGERS) + ")")
    native, snaps, problems = [], [], []
    for p in pkgs:
        if p["via"] == "snap":
            snaps.append((p["name"], p["version"]))
        elif p["via"] == "apt" and not isinstance(manager, managers.Apt):
            log.warning("packages: %s is listed under apt: but this image uses %s; "
                        "not installed", p["name"], manager.name)
        else:
            native.append(manager.spec(p["name"], p["version"]))

    changes = []
    if isinstance(manager, managers.Apt):
        try:
            if manager.finish_interrupted():
                changes.append("finished the package changes an earlier boot's dpkg left "
                               "half done (dpkg --configure -a)")
        except managers.PackageError as e:
            problems.append(str(e))  # apt says the same below, naming what it refuses
    if update or ((upgrade or native) and isinstance(manager, managers.Apt)):
        try:
            output = manager.update()
        except managers.PackageError as e:
            if not (upgrade or native):
                raise
            problems.append(str(e))  # the install may still work from what is cached
        else:
            unreachable = managers.fetch_failures(output)
            for line in unreachable:
                log.warning("packages: %s", line)
            changes.append("refreshed the package lists" + (
                f" ({len(unreachable)} source(s) unreachable, see the log)"
                if unreachable else ""))
    if upgrade:
        try:
            manager.upgrade()
            changes.append(f"upgraded the installed packages ({manager.name})")
        except managers.PackageError as e:
            problems.append(str(e))
    if native:
        try:
            manager.install(native)
            changes.append(f"installed {', '.join(native)} ({manager.name})")
        except managers.PackageError as e:
            problems.append(str(e))
    if snaps:
        snap = managers.find_snap(ctx.system)
        if snap is None:
            log.warning("packages: snaps %s not installed: snapd is not in this image",
                        ", ".join(n for n, _ in snaps))
        else:
            try:
                snap.install(snaps)
                changes.append(f"installed the snaps {', '.join(n for n, _ in snaps)}")
            except managers.PackageError as e:
                problems.append(str(e))

    if reboot_if_required and (upgrade or native):
        flag = next((f for f in REBOOT_FLAGS if ctx.system.exists(f)), None)
        if flag:
            ctx.power_requests.append(Request("reboot", reason=f"packages: {flag} exists"))
            changes.append(f"reboot after the final stage: {flag} exists")
    # once per instance even where something failed: a reboot must not retry a
    # failing install
    return Outcome(changes, problems)
