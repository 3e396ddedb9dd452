"""DNS servers and search domains, handed to whoever owns /etc/resolv.conf.

`owners` finds the owner (systemd-resolved, NetworkManager,
resolvconf, openresolv, or the file itself with the image's DHCP clients)
and configures it so the settings outlast every DHCP lease and renewal.
"changed" means exactly that; where no owner can be configured the step is
skipped with the reason and nothing is written.

Runs every boot (the write is skipped when nothing would change).  When the
instance's metadata names no DNS settings, the agent's own configuration
from an earlier instance is taken back out, so DHCP's servers return.
``[resolv_conf] enabled = no`` turns it off.
"""

import logging

from .. import PER_BOOT, Skip
from . import owners
from .dhclient import DHCLIENT_HOOK, DHCLIENT_HOOK_FILE
from .dhcpcd import DHCPCD_CONF
from .networkmanager import NM_CONF, NM_DROPIN
from .resolv_file import RESOLV_CONF
from .resolvconf import OPENRESOLV_CONF, RESOLVCONF_HEAD
from .resolved import RESOLVED_DROPIN
from .settings import from_context, summary

log = logging.getLogger(__name__)

FREQUENCY = PER_BOOT


def run(ctx):
    if not ctx.config.getbool("resolv_conf", "enabled"):
        raise Skip("[resolv_conf] enabled = no")
    dns = from_context(ctx)
    if dns.empty():
        changes = owners.release(ctx.system)
        if changes:
            return changes
        raise Skip("the metadata names no DNS servers or search domains")
    try:
        return owners.persist(ctx.system, dns)
    except owners.WontLast as e:
        log.warning("not changing the DNS settings (%s): %s", summary(dns), e)
        raise Skip(f"the DNS settings would not last: {e}") from None


def unchanged_inputs(ctx):
    """What decides the next boot's resolv_conf step (see boot_guard): every
    file the resolver may write for any owner, as it is now (absent ones are
    left out).  /etc/resolv.conf only when it is a file: a symlink's target
    in /run is made later in the boot, after the guard has looked."""
    if not ctx.config.getbool("resolv_conf", "enabled"):
        return []
    files = [RESOLVED_DROPIN, NM_CONF, NM_DROPIN, RESOLVCONF_HEAD, OPENRESOLV_CONF,
             DHCLIENT_HOOK, DHCLIENT_HOOK_FILE, DHCPCD_CONF]
    if ctx.system.readlink(RESOLV_CONF) is None:
        files.insert(0, RESOLV_CONF)
    return files


# -- #cloud-config `resolv_conf`, checked before anything acts on it ------------------


