"""DNS servers and search domains, handed to whoever owns /etc/resolv.conf.

`guestagent.resolver` finds the owner (systemd-resolved, NetworkManager,
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

from ... import resolver
from .. import PER_BOOT, Skip
from .settings import from_context

log = logging.getLogger(__name__)

FREQUENCY = PER_BOOT


def run(ctx):
    if not ctx.config.getbool("resolv_conf", "enabled"):
        raise Skip("[resolv_conf] enabled = no")
    dns = from_context(ctx)
    if dns.empty():
        changes = resolver.release(ctx.system)
        if changes:
            return changes
        raise Skip("the metadata names no DNS servers or search domains")
    try:
        return resolver.persist(ctx.system, dns)
    except resolver.WontLast as e:
        log.warning("not changing the DNS settings (%s): %s", resolver.summary(dns), e)
        raise Skip(f"the DNS settings would not last: {e}") from None
