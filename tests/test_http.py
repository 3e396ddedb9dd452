"""HTTP handling of the metadata client (requests mocked by `responses`)."""

import pytest
import requests
import responses

from guestagent.datasources import Unreachable
from guestagent.datasources.http import MetadataClient, Refused

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
    # exponential backoff with jitter, starting small
    assert 0.05 <= clock.sleeps[0] <= 0.1
    assert clock.sleeps[1] <= 0.2 and clock.sleeps[2] <= 0.4


@responses.activate
def test_backoff_is_capped():
    url = f"{BASE}/x"
    for _ in range(12):
        responses.add(responses.GET, url, body=requests.ConnectionError("refused"))
    responses.add(responses.GET, url, body=b"ok")
    c, clock = client(deadline=100)
    assert c.get("x").status == 200
    assert max(clock.sleeps) <= 2.0


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
    responses.add(responses.GET, f"{BASE}/x", body=requests.ConnectionError("refused"))
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
