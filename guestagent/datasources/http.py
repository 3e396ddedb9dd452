"""HTTP to the metadata service: retries, one deadline, size cap, no redirects.

How long to wait between tries is retry.py's business; this module says what
failed (a refused connection, no network, or load).

Only this module imports requests, and only the network datasources import
this module, so a config-drive boot never pays for it.
"""

import errno
import logging
import re
import socket
import threading
import time
import weakref

import requests

from . import Unreachable
from .retry import (
    LOAD,
    NO_NETWORK,
    Backoff,
    NetworkWatch,
    kind_of_errno,
    parse_retry_after,
)

log = logging.getLogger(__name__)

RETRY_STATUS = {429, 500, 502, 503, 504}


class Refused(Exception):
    """The service answered in a way retrying cannot fix (redirect, oversize)."""


class Response:
    def __init__(self, status, body, headers):
        self.status = status
        self.body = body
        self.headers = headers

    @property
    def ok(self):
        return 200 <= self.status < 300

    def text(self):
        return self.body.decode("utf-8", "replace")


class MetadataClient:
    """A session against one base URL, sharing one deadline across requests.

    ``alternates`` are other base URLs for the same service (Nova's IPv6
    address on each interface): a connection that cannot be made moves to
    the next one, within the same retries and deadline; the first base that
    answers is kept.
    """

    def __init__(self, base_url, deadline_at, timeout=3.0, max_bytes=4 << 20,
                 on_first_failure=None, clock=time.monotonic, sleep=time.sleep,
                 network_watch=NetworkWatch, alternates=()):
        self.base = base_url.rstrip("/")
        self._primary = self.base
        self._bases = [self.base] + [a.rstrip("/") for a in alternates]
        self._answered = False
        self.deadline_at = deadline_at
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.on_first_failure = on_first_failure
        self.requests_made = 0
        # what was retried, and why: {"HTTP 503": 3, "timed out": 2} (status)
        self.retried = {}
        self._failed_once = False
        self._clock = clock
        self._sleep = sleep
        self._network_watch = network_watch
        self._session = requests.Session()
        self._session.trust_env = False  # a proxy must never see metadata
        self._watchdog = None
        if clock is time.monotonic:
            self._watchdog = _DeadlineWatchdog(deadline_at)
            self._watchdog.mount(self._session)
        if len(self._bases) > 1:
            self._session.mount("http://[fe80:", _WatchedZonedAdapter(
                self._watchdog.register if self._watchdog else None))

    def close(self):
        if self._watchdog is not None:
            self._watchdog.cancel()
        self._session.close()

    def get_optional(self, paths):
        """{path: body} of the documents that are there: a 404 is an answer
        (not there), a refused one or another status is named and left out."""
        found = {}
        for path in paths:
            try:
                r = self.get(path)
            except Refused as e:
                log.warning("ignoring %s: %s", path, e)
                continue
            if r.status == 404:
                continue
            if r.status != 200:
                log.warning("ignoring %s from %s: HTTP %d", path, self.base, r.status)
                continue
            found[path] = r.body
        return found

    def get(self, path, headers=None, method="GET"):
        """One document; retried on connection errors, timeouts, 429 and 5xx.

        Returns a Response for any other answer (a 404 is an answer).
        Raises Unreachable at the deadline, Refused for redirects and bodies
        over the size cap.
        """
        backoff = Backoff(self._sleep, self._clock, self._network_watch)
        last = "no attempt"
        try:
            while True:
                url = f"{self.base}/{path.lstrip('/')}"
                remaining = self.deadline_at - self._clock()
                if remaining <= 0:
                    raise Unreachable(f"{url}: gave up at the deadline ({last})")
                retry_after = None
                try:
                    resp = self._once(method, url, headers,
                                      min(self.timeout, max(remaining, 0.05)))
                    self._answered = True
                    if resp.status not in RETRY_STATUS:
                        return resp
                    last, kind = f"HTTP {resp.status}", LOAD
                    retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                except (requests.ConnectionError, requests.Timeout) as e:
                    last, kind = _describe(e), failure_kind(e)
                    self._check_cut(url, last)
                    if self._next_base(kind):
                        log.debug("%s: %s; trying %s", url, last, self.base)
                        continue  # another address of the same service: at once
                except _Truncated as e:
                    last, kind = str(e), LOAD
                    self._check_cut(url, last)
                if not self._failed_once:
                    self._failed_once = True
                    if self.on_first_failure:
                        self.on_first_failure(last)
                reason = last if last.startswith("HTTP ") else kind
                self.retried[reason] = self.retried.get(reason, 0) + 1
                how = backoff.pause(kind, self.deadline_at, retry_after)
                log.debug("%s: %s (%s); %s, retrying", url, last, kind, how)
        finally:
            backoff.close()

    def _next_base(self, kind):
        """After a failed connection, move to the next base URL; True when
        that is an alternate to try at once.

        The configured one is left only when it cannot be reached at all
        (no route: no IPv4 address); a refused connection or a timeout means
        the service is there but not ready, and is retried where it is.
        """
        if self._answered or len(self._bases) < 2:
            return False
        if self.base == self._primary and kind != NO_NETWORK:
            return False
        self._bases.append(self._bases.pop(0))
        self.base = self._bases[0]
        return self.base != self._primary

    def _check_cut(self, url, last):
        if self._watchdog is not None and self._watchdog.fired:
            raise Unreachable(f"{url}: gave up at the deadline in the middle of a response "
                              f"({last})")

    def _once(self, method, url, headers, timeout):
        self.requests_made += 1
        if self._watchdog is not None:
            self._watchdog.arm()
        with self._session.request(method, url, headers=headers, timeout=timeout,
                                   allow_redirects=False, stream=True) as r:
            if 300 <= r.status_code < 400:
                raise Refused(f"{url}: refusing to follow a redirect "
                              f"(HTTP {r.status_code} to {r.headers.get('Location', '?')})")
            length = r.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > self.max_bytes:
                raise Refused(f"{url}: response of {length} bytes is over the "
                              f"{self.max_bytes}-byte limit")
            chunks, size = [], 0
            try:
                for chunk in r.iter_content(65536):
                    if self._clock() > self.deadline_at:
                        raise Unreachable(f"{url}: gave up at the deadline in the middle of "
                                          f"the body ({size} bytes read)")
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise Refused(f"{url}: response is over the {self.max_bytes}-byte limit")
                    chunks.append(chunk)
            except (requests.exceptions.ChunkedEncodingError,
                    requests.exceptions.ContentDecodingError) as e:
                raise _Truncated(f"truncated body ({type(e).__name__})") from None
            body = b"".join(chunks)
            # a cut at the deadline can look like the end of the headers or
            # of a body without a length: never take that for an answer
            self._check_cut(url, "cut off")
            if length and length.isdigit() and len(body) < int(length):
                raise _Truncated(f"truncated body ({len(body)} of {length} bytes)")
            return Response(r.status_code, body, r.headers)


class _ZonedAdapter(requests.adapters.HTTPAdapter):
    """requests 2.32 and later hand urllib3 an IPv6 link-local host with its
    zone still percent-encoded and unbracketed (``fe80::a9fe:a9fe%25eth0``,
    from RFC 6874's URL form), which urllib3 cannot use; it wants
    ``[fe80::a9fe:a9fe%eth0]``.  Older requests never call this and pass the
    URL's host through correctly."""

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host, pool = super().build_connection_pool_key_attributes(request, verify, cert)
        name = (host.get("host") or "").replace("%25", "%")
        host["host"] = f"[{name}]" if ":" in name and not name.startswith("[") else name
        return host, pool


class _Truncated(Exception):
    pass


class _DeadlineWatchdog:
    """Bounds every request by the search's deadline, mid-response included.

    requests' timeout is per socket read: a server that trickles its headers
    or body (a byte a second) never trips it.  Every socket the session
    opens is remembered, and at the deadline a timer shuts them all down, so
    a read blocked in the middle of a response returns at once.
    """

    def __init__(self, deadline_at):
        self.deadline_at = deadline_at
        self.fired = False
        self._socks = weakref.WeakSet()
        self._lock = threading.Lock()
        self._timer = None

    def mount(self, session):
        adapter = _WatchedAdapter(self.register)
        session.mount("http://", adapter)
        session.mount("https://", adapter)

    def register(self, sock):
        with self._lock:
            self._socks.add(sock)
            if self.fired:
                _shut(sock)

    def arm(self):
        """Start the timer on the first request (no thread on a config-drive boot)."""
        if self._timer is None:
            self._timer = threading.Timer(max(0.0, self.deadline_at - time.monotonic()),
                                          self._fire)
            self._timer.daemon = True
            self._timer.start()

    def _fire(self):
        with self._lock:
            self.fired = True
            socks = list(self._socks)
        for sock in socks:
            _shut(sock)

    def cancel(self):
        if self._timer is not None:
            self._timer.cancel()


def _shut(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed


class _WatchedAdapter(requests.adapters.HTTPAdapter):
    """An adapter whose connections report each new socket to ``register``
    (None: a plain adapter)."""

    def __init__(self, register=None):
        self._register = register
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        if self._register is None:
            return
        import urllib3
        register = self._register

        class Conn(urllib3.connection.HTTPConnection):
            def _new_conn(self):
                sock = super()._new_conn()
                register(sock)
                return sock

        class TLSConn(urllib3.connection.HTTPSConnection):
            def _new_conn(self):
                sock = super()._new_conn()
                register(sock)
                return sock

        class Pool(urllib3.HTTPConnectionPool):
            ConnectionCls = Conn

        class TLSPool(urllib3.HTTPSConnectionPool):
            ConnectionCls = TLSConn

        self.poolmanager.pool_classes_by_scheme = {"http": Pool, "https": TLSPool}


def failure_kind(e):
    """REFUSED, NO_NETWORK or LOAD for a requests exception.

    requests wraps the socket error two or three levels deep (urllib3's
    MaxRetryError, NewConnectionError); the errno is found by walking the
    chain, or read from the message where only the text survived.
    """
    if isinstance(e, requests.Timeout):
        return LOAD
    seen = set()
    todo = [e]
    while todo:
        x = todo.pop()
        if x is None or id(x) in seen:
            continue
        seen.add(id(x))
        if isinstance(x, OSError) and isinstance(x.errno, int) and x.errno:
            return kind_of_errno(x.errno)
        if isinstance(x, BaseException):
            todo += [x.__cause__, x.__context__, getattr(x, "reason", None)]
            todo += [a for a in x.args if isinstance(a, BaseException)]
    m = re.search(r"\[Errno (\d+)\]", str(e))
    if m:
        return kind_of_errno(int(m.group(1)))
    text = str(e)
    if "Connection refused" in text:
        return kind_of_errno(errno.ECONNREFUSED)
    if "Network is unreachable" in text or "No route to host" in text:
        return kind_of_errno(errno.ENETUNREACH)
    return LOAD


def _describe(e):
    if isinstance(e, requests.Timeout):
        return "timed out"
    text = str(e)
    for marker in ("Connection refused", "Network is unreachable", "No route to host",
                   "Connection reset", "RemoteDisconnected", "Name or service not known"):
        if marker in text:
            return marker.lower()
    return type(e).__name__


class _WatchedZonedAdapter(_ZonedAdapter, _WatchedAdapter):
    """Link-local IPv6 bases: zone fixed up, and sockets watched."""
