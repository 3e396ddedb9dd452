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
    """A session against one base URL, sharing one deadline across requests."""

    def __init__(self, base_url, deadline_at, timeout=3.0, max_bytes=4 << 20,
                 on_first_failure=None, clock=time.monotonic, sleep=time.sleep):
        self.base = base_url.rstrip("/")
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

    def close(self):
        self._session.close()

    def get(self, path, headers=None, method="GET"):
        """One document; retried on connection errors, timeouts, 429 and 5xx.

        Returns a Response for any other answer (a 404 is an answer).
        Raises Unreachable at the deadline, Refused for redirects and bodies
        over the size cap.
        """
        url = f"{self.base}/{path.lstrip('/')}"
        delay = FIRST_DELAY
        last = "no attempt"
        while True:
            remaining = self.deadline_at - self._clock()
            if remaining <= 0:
                raise Unreachable(f"{url}: gave up at the deadline ({last})")
            try:
                resp = self._once(method, url, headers, min(self.timeout, max(remaining, 0.05)))
                if resp.status not in RETRY_STATUS:
                    return resp
                last = f"HTTP {resp.status}"
                wait = _retry_after(resp.headers.get("Retry-After"))
                if wait is not None:
                    delay = min(max(delay, wait), MAX_DELAY)
            except (requests.ConnectionError, requests.Timeout) as e:
                last = _describe(e)
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
