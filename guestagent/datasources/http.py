"""HTTP to the metadata service: retries, one deadline, size cap, no redirects.

Only this module imports requests, and only the network datasources import
this module, so a config-drive boot never pays for it.
"""

import logging
import random
import time

import requests

from . import Unreachable

log = logging.getLogger(__name__)

RETRY_STATUS = {429, 500, 502, 503, 504}
_NO_ROUTE = ("network is unreachable", "no route to host")
FIRST_DELAY = 0.1
MAX_DELAY = 2.0


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
                 alternates=()):
        self.base = base_url.rstrip("/")
        self._primary = self.base
        self._bases = [self.base] + [a.rstrip("/") for a in alternates]
        self._answered = False
        self.deadline_at = deadline_at
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.on_first_failure = on_first_failure
        self.requests_made = 0
        self._failed_once = False
        self._clock = clock
        self._sleep = sleep
        self._session = requests.Session()
        self._session.trust_env = False  # a proxy must never see metadata
        if len(self._bases) > 1:
            self._session.mount("http://[fe80:", _ZonedAdapter())

    def close(self):
        self._session.close()

    def get(self, path, headers=None, method="GET"):
        """One document; retried on connection errors, timeouts, 429 and 5xx.

        Returns a Response for any other answer (a 404 is an answer).
        Raises Unreachable at the deadline, Refused for redirects and bodies
        over the size cap.
        """
        delay = FIRST_DELAY
        last = "no attempt"
        while True:
            url = f"{self.base}/{path.lstrip('/')}"
            remaining = self.deadline_at - self._clock()
            if remaining <= 0:
                raise Unreachable(f"{url}: gave up at the deadline ({last})")
            try:
                resp = self._once(method, url, headers, min(self.timeout, max(remaining, 0.05)))
                self._answered = True
                if resp.status not in RETRY_STATUS:
                    return resp
                last = f"HTTP {resp.status}"
                wait = _retry_after(resp.headers.get("Retry-After"))
                if wait is not None:
                    delay = min(max(delay, wait), MAX_DELAY)
            except (requests.ConnectionError, requests.Timeout) as e:
                last = _describe(e)
                self._next_base(last)
            except _Truncated as e:
                last = str(e)
            log.debug("%s: %s, retrying", url, last)
            if not self._failed_once:
                self._failed_once = True
                if self.on_first_failure:
                    self.on_first_failure(last)
            pause = min(delay * random.uniform(0.5, 1.0), max(self.deadline_at - self._clock(), 0))
            self._sleep(pause)
            delay = min(delay * 2, MAX_DELAY)

    def _next_base(self, failure):
        """After a failed connection, try the next base URL, if there is one.

        The configured one is left only when it cannot be reached at all (no
        route: no IPv4 address yet); a refused connection or a timeout means
        the service is there but not ready, and is retried where it is.
        """
        if self._answered or len(self._bases) < 2:
            return
        if self.base == self._primary and failure not in _NO_ROUTE:
            return
        self._bases.append(self._bases.pop(0))
        self.base = self._bases[0]

    def _once(self, method, url, headers, timeout):
        self.requests_made += 1
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
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise Refused(f"{url}: response is over the {self.max_bytes}-byte limit")
                    chunks.append(chunk)
            except (requests.exceptions.ChunkedEncodingError,
                    requests.exceptions.ContentDecodingError) as e:
                raise _Truncated(f"truncated body ({type(e).__name__})") from None
            body = b"".join(chunks)
            if length and length.isdigit() and len(body) < int(length):
                raise _Truncated(f"truncated body ({len(body)} of {length} bytes)")
            return Response(r.status_code, body, r.headers)


class _ZonedAdapter(requests.adapters.HTTPAdapter):
    """requests 2.32 and later hand urllib3 an IPv6 link-local host with its
    zone still percent-encoded and unbracketed (``fe80::a9fe:a9fe%25eth0``,
    from RFC 6874's URL form), which urllib3 cannot use; it wants
    ``[fe80::a9fe:a9fe%eth0]``.  (Older
    requests never call this and pass the URL's host through correctly.)"""

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host, pool = super().build_connection_pool_key_attributes(request, verify, cert)
        name = (host.get("host") or "").replace("%25", "%")
        host["host"] = f"[{name}]" if ":" in name and not name.startswith("[") else name
        return host, pool


class _Truncated(Exception):
    pass


def _retry_after(value):
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _describe(e):
    if isinstance(e, requests.Timeout):
        return "timed out"
    text = str(e)
    for marker in ("Connection refused", "Network is unreachable", "No route to host",
                   "Connection reset", "RemoteDisconnected", "Name or service not known"):
        if marker in text:
            return marker.lower()
    return type(e).__name__
