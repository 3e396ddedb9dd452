"""Find the instance's metadata: what the machine holds, then the network.

Each datasource module has NEEDS_NETWORK and ``fetch(ctx) -> Metadata``,
raising NotFound when it is definitely not there; NAMES lists them all (a
name's module is the name with ``-`` made ``_``).  The network sources share
one deadline.

Before the first network request the search decides, from local evidence
only (evidence.py: DMI, the kernel command line), as cloud-init's
ds-identify does: the network sources with evidence are the only ones asked,
with the whole deadline; with no evidence at all every network source gets
a short probe ([main] probe_deadline), after which the agent stands aside
and says so in one line.  ``[main] assume_cloud = yes`` gives the whole
deadline without evidence, for clouds that hide their DMI.
"""

import logging
import os
import time

log = logging.getLogger(__name__)

# Every datasource, in the order they are tried by default ([main] datasources).
NAMES = ("configdrive", "nocloud", "nocloud-net", "hetzner", "openstack", "ec2")


class NotFound(Exception):
    """This source is not present (a definite answer, not a failure)."""


class NoDatasource(Exception):
    """No source gave metadata before the deadline.  ``stand_aside`` is the
    one line to show when nothing said this machine is in a cloud."""

    def __init__(self, message, stand_aside=""):
        super().__init__(message)
        self.stand_aside = stand_aside


class Unreachable(Exception):
    """The deadline passed without an answer (only errors worth retrying)."""


class SearchContext:
    def __init__(self, config, system, deadline_at):
        self.config = config
        self.system = system
        self.deadline_at = deadline_at
        self._client = None
        self._others = []

    def client(self):
        """The shared HTTP client (imports requests on first use)."""
        if self._client is None:
            from .http import MetadataClient
            from .linklocal import ipv6_urls
            url = self.config.get("main", "metadata_url").strip()
            self._client = MetadataClient(
                url, self.deadline_at,
                timeout=self.config.getfloat("main", "request_timeout"),
                max_bytes=self.config.getint("main", "max_response_bytes"),
                on_first_failure=lambda why: _explain_wait(url, why, self.deadline_at),
                alternates=ipv6_urls(url))
        return self._client

    def client_for(self, base_url):
        """A client for another base URL (a NoCloud seed), under the same
        deadline, timeout and size cap."""
        from .http import MetadataClient
        client = MetadataClient(
            base_url, self.deadline_at,
            timeout=self.config.getfloat("main", "request_timeout"),
            max_bytes=self.config.getint("main", "max_response_bytes"),
            on_first_failure=lambda why: _explain_wait(base_url, why, self.deadline_at))
        self._others.append(client)
        return client

    @property
    def requests_made(self):
        return sum(c.requests_made for c in self._clients())

    def requests_record(self):
        """{"requests": N, "retried": {why: count}} for the run's status, or {}."""
        if not self.requests_made:
            return {}
        retried = {}
        for c in self._clients():
            for why, n in c.retried.items():
                retried[why] = retried.get(why, 0) + n
        return {"requests": self.requests_made, "retries": sum(retried.values()),
                "retried": retried}

    def _clients(self):
        return ([self._client] if self._client else []) + self._others

    def close(self):
        for c in self._clients():
            c.close()


def _explain_wait(url, why, deadline_at):
    from urllib.parse import urlsplit

    from .netstate import describe
    host = urlsplit(url).hostname or url
    left = max(0, deadline_at - time.monotonic())
    log.info("metadata service %s: %s; %s; retrying for up to %.0f s more",
             url, why, describe(host), left)


def _module(name):
    from .. import named_module
    return named_module(f"{__name__}.{name.replace('-', '_')}")


def needs_network(name):
    """Does datasource ``name`` need the network (the local stage tries only those that do not)?"""
    return _module(name).NEEDS_NETWORK


def search(config, system, names, state=None, deadline=None, requests=None):
    """Try ``names`` in order; return Metadata or raise NoDatasource.
    ``requests``: a dict filled with the HTTP requests made and the retries,
    by reason (for the run's status).

    Before any network source, a stored copy is used when the DMI system
    UUID shows this is still the instance that stored it (Nova sets the
    SMBIOS UUID to the instance UUID), so a reboot needs no network.
    """
    if deadline is None:
        deadline = config.getfloat("main", "deadline")
    # The deadline counts from the agent's start, not from here, so the
    # boot waits for the agent no longer than configured.
    ctx = SearchContext(config, system, time.monotonic() + max(0.0, deadline - process_age()))
    reasons = []
    plan = None
    try:
        for name in names:
            mod = _module(name)
            if mod.NEEDS_NETWORK:
                if state is not None:
                    cached = _same_instance_by_dmi(system, state)
                    if cached is not None:
                        return cached
                    state = None  # check once
                if plan is None:
                    plan = _Plan(config, system, names, ctx)
                if name not in plan.names:
                    reasons.append(f"{name}: no evidence of it")
                    continue
            try:
                md = mod.fetch(ctx)
            except NotFound as e:
                log.debug("%s: %s", name, e)
                reasons.append(f"{name}: {e}")
                continue
            except Unreachable as e:
                reasons.append(f"{name}: {e}")
                break  # the deadline has passed; the others share it
            except Exception as e:  # one broken source must not stop the others
                log.warning("%s: %s", name, e)
                log.debug("%s failed", name, exc_info=True)
                reasons.append(f"{name}: {e}")
                continue
            log.info("found instance %s from %s", md.instance_id, md.source)
            if ctx.requests_made:
                log.debug("metadata requests made: %d", ctx.requests_made)
            return md
        if state is not None:  # only local sources were named
            cached = _same_instance_by_dmi(system, state)
            if cached is not None:
                return cached
    finally:
        if requests is not None:
            requests.update(ctx.requests_record())
        ctx.close()
    message = "; ".join(reasons) or "no datasource configured"
    raise NoDatasource(message, plan.stand_aside_line() if plan is not None else "")


class _Plan:
    """Which network sources to ask, and for how long (see the module's doc)."""

    def __init__(self, config, system, names, ctx):
        from .evidence import describe_machine, gather
        network = [n for n in names if _module(n).NEEDS_NETWORK]
        found = {n: why for n, why in gather(system).items() if n in network}
        self.probing = False
        if found:
            self.names = [n for n in network if n in found]
            log.info("evidence of %s: %s", ", ".join(found),
                     "; ".join(sorted(set(found.values()))))
        elif config.getbool("main", "assume_cloud"):
            self.names = network
            log.info("no evidence of a cloud, but [main] assume_cloud is set: asking %s "
                     "for the whole deadline", ", ".join(network))
        else:
            self.names = network
            self.machine = describe_machine(system)
            left = max(0.0, ctx.deadline_at - time.monotonic())
            self.probe = min(config.getfloat("main", "probe_deadline"), left)
            ctx.deadline_at = time.monotonic() + self.probe
            log.info("no evidence of a cloud (no config drive, no NoCloud seed, %s): a "
                     "%.0f s probe of %s", self.machine, self.probe, ", ".join(network))
            self.probing = True

    def stand_aside_line(self):
        if not self.probing:
            return ""
        return (f"no datasource found: no config drive, no NoCloud seed, {self.machine}, "
                f"and nothing answered a {self.probe:.0f} s probe; standing aside "
                f"([main] assume_cloud = yes waits the whole deadline)")


# The boot's one process (boot_process.py) starts early and waits for each
# stage's unit: there the deadline and [main] ssh_wait count from the
# stage's signal, as they count from a `--once` process's start.
_stage_started = None


def count_from_now():
    """From now on `process_age` counts from here (the stage's signal)."""
    global _stage_started
    _stage_started = time.monotonic()


def process_age():
    """Seconds since this process started, or since `count_from_now` (0 when
    /proc cannot tell): what the deadline and ssh_wait count from."""
    if _stage_started is not None:
        return max(0.0, time.monotonic() - _stage_started)
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        with open("/proc/uptime", "rb") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


def _same_instance_by_dmi(system, state):
    try:
        uuid = system.read_text("/sys/class/dmi/id/product_uuid").strip().lower()
    except OSError:
        return None
    prev = state.previous_instance_id()
    if not uuid or prev.lower() != uuid:
        return None
    md = state.stored_metadata(prev)
    if md is not None:
        log.info("same instance as last boot (DMI system UUID %s); using its stored "
                 "metadata from %s, no network needed", uuid, md.source)
    return md
