"""HTTP handling of the metadata client (requests mocked by `responses`)."""

import errno
import random
import socket

import pytest
import requests
import responses
import urllib3

from guestagent.datasources import Unreachable, retry
from guestagent.datasources.http import MetadataClient, Refused, failure_kind

BASE = "http://169.254.169.254"


class FakeClock:
    def __init__(self):
        self.t = 0.0
        self.sleeps = []

    def __call__(self):
        return self.t

    def sleep(self, s):
        self.sleeps.append(s)
        self.t += s


def client(deadline=10.0, **kw):
    clock = FakeClock()
    return MetadataClient(BASE, deadline, clock=clock, sleep=clock.sleep, **kw), clock


@responses.activate
def test_retries_5xx_and_429_then_answers():
    url = f"{BASE}/openstack/latest/meta_data.json"
    responses.add(responses.GET, url, status=503)
    responses.add(responses.GET, url, status=429)
    responses.add(responses.GET, url, status=500)
    responses.add(responses.GET, url, body=b'{"uuid": "x"}')
    c, clock = client()
    r = c.get("openstack/latest/meta_data.json")
    assert r.status == 200 and r.body == b'{"uuid": "x"}'
    assert c.requests_made == 4
    # load: exponential backoff with full jitter, starting small
    assert len(clock.sleeps) == 3
    for n, s in enumerate(clock.sleeps):
        assert 0 <= s <= retry.LOAD_FIRST * 2 ** n


@responses.activate
def test_load_backoff_grows_exponentially_to_its_cap(monkeypatch):
    monkeypatch.setattr(random, "random", lambda: 1.0)  # the top of every jitter range
    url = f"{BASE}/x"
    for _ in range(12):
        responses.add(responses.GET, url, status=503)
    responses.add(responses.GET, url, body=b"ok")
    c, clock = client(deadline=1000)
    assert c.get("x").status == 200
    expected = [min(retry.LOAD_MAX, retry.LOAD_FIRST * 2 ** n) for n in range(12)]
    assert clock.sleeps == pytest.approx(expected)


@responses.activate
def test_load_backoff_has_full_jitter(monkeypatch):
    monkeypatch.setattr(random, "random", lambda: 0.0)  # the bottom of every jitter range
    url = f"{BASE}/x"
    for _ in range(5):
        responses.add(responses.GET, url, status=429)
    responses.add(responses.GET, url, body=b"ok")
    c, clock = client()
    c.get("x")
    assert clock.sleeps == [0.0] * 5


@responses.activate
def test_retry_after_is_a_floor_with_a_little_jitter_above_it():
    url = f"{BASE}/x"
    responses.add(responses.GET, url, status=503, headers={"Retry-After": "4"})
    responses.add(responses.GET, url, status=429, headers={"Retry-After": "1"})
    responses.add(responses.GET, url, body=b"ok")
    c, clock = client(deadline=100)
    assert c.get("x").body == b"ok"
    assert 4.0 <= clock.sleeps[0] <= 4.4
    assert 1.0 <= clock.sleeps[1] <= 1.1


@responses.activate
def test_retry_after_past_the_deadline_gives_up_at_the_deadline():
    url = f"{BASE}/x"
    responses.add(responses.GET, url, status=503, headers={"Retry-After": "60"})
    c, clock = client(deadline=5.0)
    with pytest.raises(Unreachable, match="HTTP 503"):
        c.get("x")
    assert clock.t == pytest.approx(5.0)
    assert c.requests_made == 1


def _refused():
    # what requests raises, with urllib3's wrapping, for a refused connect()
    inner = urllib3.exceptions.NewConnectionError(
        None, "Failed to establish a new connection: [Errno 111] Connection refused")
    inner.__cause__ = ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
    return requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/x", inner))


def _unreachable():
    inner = urllib3.exceptions.NewConnectionError(
        None, "Failed to establish a new connection: [Errno 101] Network is unreachable")
    inner.__cause__ = OSError(errno.ENETUNREACH, "Network is unreachable")
    return requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/x", inner))


@responses.activate
def test_refused_connections_are_retried_quickly():
    url = f"{BASE}/x"
    for _ in range(30):
        responses.add(responses.GET, url, body=_refused())
    responses.add(responses.GET, url, body=b"ok")
    c, clock = client(deadline=100)
    assert c.get("x").status == 200
    assert len(clock.sleeps) == 30
    assert max(clock.sleeps) <= retry.REFUSED_MAX
    assert clock.sleeps[0] <= retry.REFUSED_FIRST


@responses.activate
def test_no_route_waits_for_the_kernel_not_a_timer():
    url = f"{BASE}/x"
    for _ in range(3):
        responses.add(responses.GET, url, body=_unreachable())
    responses.add(responses.GET, url, body=b"ok")
    watches = []

    class Watch:
        def __init__(self):
            self.waits = []
            self.closed = False
            watches.append(self)

        def wait(self, timeout, sleep):
            self.waits.append(timeout)
            sleep(0.3)  # the kernel says an address came up 0.3 s later
            return True

        def close(self):
            self.closed = True

    c, clock = client(network_watch=Watch)
    assert c.get("x").status == 200
    assert len(watches) == 1 and watches[0].closed
    # first failure: subscribe and try again at once; then wait for notices
    assert watches[0].waits == [retry.NETWORK_WAIT_MAX, retry.NETWORK_WAIT_MAX]
    assert clock.sleeps == [0.3, 0.3]


@responses.activate
def test_kinds_are_counted_apart():
    # a refusal after load failures is retried quickly again
    url = f"{BASE}/x"
    for _ in range(6):
        responses.add(responses.GET, url, status=503)
    responses.add(responses.GET, url, body=_refused())
    responses.add(responses.GET, url, body=b"ok")
    c, clock = client(deadline=100)
    assert c.get("x").status == 200
    assert clock.sleeps[-1] <= retry.REFUSED_FIRST


@responses.activate
def test_timeouts_are_load():
    url = f"{BASE}/x"
    responses.add(responses.GET, url, body=requests.ConnectTimeout("timed out"))
    responses.add(responses.GET, url, body=requests.ReadTimeout("timed out"))
    responses.add(responses.GET, url, body=b"ok")
    c, clock = client()
    assert c.get("x").status == 200
    assert failure_kind(requests.ConnectTimeout("x")) == retry.LOAD
    assert failure_kind(requests.ReadTimeout("x")) == retry.LOAD


def test_failure_kind_from_the_errno_requests_wraps():
    assert failure_kind(_refused()) == retry.REFUSED
    assert failure_kind(_unreachable()) == retry.NO_NETWORK
    reset = requests.ConnectionError(ConnectionResetError(errno.ECONNRESET, "reset"))
    assert failure_kind(reset) == retry.LOAD
    # only the message survived
    assert failure_kind(requests.ConnectionError("[Errno 113] No route to host")) \
        == retry.NO_NETWORK
    assert failure_kind(requests.ConnectionError("Connection refused")) == retry.REFUSED
    assert failure_kind(requests.ConnectionError("something else")) == retry.LOAD


def test_failure_kind_of_a_real_refused_connection_on_loopback():
    # a real connect() to a closed port on this machine's loopback
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # bound, never listened: the port refuses
    with pytest.raises(requests.ConnectionError) as e:
        requests.get(f"http://127.0.0.1:{port}/", timeout=2)
    assert failure_kind(e.value) == retry.REFUSED


@responses.activate
def test_404_and_other_4xx_are_answers_not_retried():
    responses.add(responses.GET, f"{BASE}/a", status=404)
    responses.add(responses.GET, f"{BASE}/b", status=403)
    c, _ = client()
    assert c.get("a").status == 404
    assert c.get("b").status == 403
    assert c.requests_made == 2


@responses.activate
def test_gives_up_at_the_deadline_not_later():
    responses.add(responses.GET, f"{BASE}/x", body=_refused())
    c, clock = client(deadline=5.0)
    with pytest.raises(Unreachable, match="deadline"):
        c.get("x")
    assert clock.t <= 5.0 + 1e-9


@responses.activate
def test_redirects_are_refused_not_followed():
    responses.add(responses.GET, f"{BASE}/x", status=302,
                  headers={"Location": "http://192.0.2.1/evil"})
    c, _ = client()
    with pytest.raises(Refused, match="redirect"):
        c.get("x")
    assert len(responses.calls) == 1


@responses.activate
def test_body_over_the_cap_is_refused():
    responses.add(responses.GET, f"{BASE}/big", body=b"x" * 5000)
    c, _ = client(max_bytes=4096)
    with pytest.raises(Refused, match="limit"):
        c.get("big")


@responses.activate
def test_first_failure_is_reported_once():
    url = f"{BASE}/x"
    responses.add(responses.GET, url, status=503)
    responses.add(responses.GET, url, status=503)
    responses.add(responses.GET, url, body=b"ok")
    seen = []
    c, _ = client(on_first_failure=seen.append)
    c.get("x")
    assert seen == ["HTTP 503"]


@responses.activate
def test_ignores_proxy_environment(monkeypatch):
    monkeypatch.setenv("http_proxy", "http://192.0.2.99:3128")
    responses.add(responses.GET, f"{BASE}/x", body=b"ok")
    c, _ = client()
    assert c.get("x").body == b"ok"
