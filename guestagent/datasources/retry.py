"""How long to wait before asking the metadata service again, by what failed.

Three kinds of failure, three answers:

- ``REFUSED``: the address is there but nothing listens yet.  A refused
  connection costs the service nothing, so retry quickly (tens of ms) and be
  done soon after it starts accepting connections.
- ``NO_NETWORK``: no route or no source address yet.  Nothing will change
  until the kernel's network does, so wait for the kernel to say it changed
  (an rtnetlink notice of a link, address or route), with a short poll where
  netlink cannot be had.
- ``LOAD``: a timeout, a reset, a truncated body, 429 or 5xx.  The service
  is there and busy: back off exponentially with full jitter (so a crowd of
  agents spreads out instead of coming back in waves), and never sooner than
  its Retry-After.

Only the standard library: this sits on the metadata path's start-up.
"""

import errno
import random
import select
import socket

REFUSED = "refused"
NO_NETWORK = "no network"
LOAD = "load"

REFUSED_FIRST = 0.02      # s; doubles per refusal ...
REFUSED_MAX = 0.2         # ... up to this, so a late service waits at most this long
NETWORK_WAIT_MAX = 2.0    # s without a kernel notice before trying anyway
NETWORK_POLL = 0.2        # s between tries where netlink is not available
NETWORK_SETTLE = 0.02     # s after a notice, so an address and its route arrive together
LOAD_FIRST = 0.2          # s; the ceiling doubles per failure ...
LOAD_MAX = 10.0           # ... up to this (a per-address rate limit's window is ~10 s)
RETRY_AFTER_MAX = 300.0   # s; larger values are taken as this (the deadline still rules)

_NO_NETWORK_ERRNOS = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL,
                      errno.ENETDOWN}

# rtnetlink multicast groups: links, IPv4/IPv6 addresses and routes
_RTMGRP = 0x1 | 0x10 | 0x40 | 0x100 | 0x400


def kind_of_errno(code):
    """REFUSED, NO_NETWORK or LOAD for an errno from connect() or a read."""
    if code == errno.ECONNREFUSED:
        return REFUSED
    if code in _NO_NETWORK_ERRNOS:
        return NO_NETWORK
    return LOAD


def load_delay(failures, retry_after=None, rand=random.random):
    """Seconds to wait after the ``failures``-th load failure in a row (1, 2, ...).

    Full jitter: uniform in [0, min(LOAD_MAX, LOAD_FIRST * 2**(failures-1))].
    A Retry-After from the service is a floor, plus up to a tenth more so the
    clients it told the same thing do not all come back in the same instant.
    """
    ceiling = min(LOAD_MAX, LOAD_FIRST * 2 ** min(failures - 1, 30))
    delay = ceiling * rand()
    if retry_after is not None:
        floor = min(retry_after, RETRY_AFTER_MAX)
        delay = max(delay, floor * (1 + 0.1 * rand()))
    return delay


def refused_delay(failures, rand=random.random):
    """Seconds to wait after the ``failures``-th refused connection in a row."""
    ceiling = min(REFUSED_MAX, REFUSED_FIRST * 2 ** min(failures - 1, 30))
    return ceiling * (0.5 + 0.5 * rand())


def parse_retry_after(value):
    """Retry-After as seconds (delta-seconds or an HTTP date); None if absent or bad."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        from datetime import datetime, timezone
        from email.utils import parsedate_to_datetime
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


class NetworkWatch:
    """Kernel notices of link, address and route changes (rtnetlink).

    Opened on the first "no route" and kept open, so a change that happens
    while a request is being tried is still waiting in the socket afterwards.
    """

    def __init__(self):
        self._sock = None
        try:
            s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        except (AttributeError, OSError):
            return
        try:
            s.bind((0, _RTMGRP))
            s.setblocking(False)
        except OSError:
            s.close()
            return
        self._sock = s

    @property
    def available(self):
        return self._sock is not None

    def wait(self, timeout, sleep):
        """Wait up to ``timeout`` s; True when the kernel reported a change.

        Without netlink, sleeps a short poll interval instead and returns False.
        """
        if self._sock is None:
            sleep(min(timeout, NETWORK_POLL))
            return False
        try:
            ready, _, _ = select.select([self._sock], [], [], max(0.0, timeout))
        except (OSError, ValueError):
            sleep(min(timeout, NETWORK_POLL))
            return False
        if not ready:
            return False
        sleep(min(timeout, NETWORK_SETTLE))
        self._drain()
        return True

    def _drain(self):
        while True:
            try:
                if not self._sock.recv(65536):
                    return
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # ENOBUFS: notices were lost, which says enough
                return

    def close(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class Backoff:
    """The waits of one request's retries.  ``pause(kind, ...)`` sleeps and
    returns a few words on what it waited for (for the debug log)."""

    def __init__(self, sleep, clock, watch_factory=NetworkWatch, rand=None):
        self._sleep = sleep
        self._clock = clock
        self._watch_factory = watch_factory
        self._rand = rand or random.random
        self._watch = None
        self.failures = {REFUSED: 0, NO_NETWORK: 0, LOAD: 0}

    def pause(self, kind, deadline_at, retry_after=None):
        self.failures[kind] += 1
        n = self.failures[kind]
        left = max(0.0, deadline_at - self._clock())
        if kind == NO_NETWORK:
            if self._watch is None:
                # Listen first, then try again at once: a change between the
                # failure and the subscription would otherwise go unseen.
                self._watch = self._watch_factory()
                return "watching the kernel for network changes"
            t0 = self._clock()
            woke = self._watch.wait(min(NETWORK_WAIT_MAX, left), self._sleep)
            waited = self._clock() - t0
            return (f"the kernel reported a network change after {waited:.2f} s" if woke
                    else f"waited {waited:.2f} s for the network")
        if kind == REFUSED:
            delay = refused_delay(n, self._rand)
        else:
            delay = load_delay(n, retry_after, self._rand)
        delay = min(delay, left)
        self._sleep(delay)
        return f"waited {delay:.2f} s"

    def close(self):
        if self._watch is not None:
            self._watch.close()
            self._watch = None
