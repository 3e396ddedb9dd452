"""The retry policy's arithmetic (guestagent/datasources/retry.py)."""

import email.utils
import errno
import time

import pytest

from guestagent.datasources import retry


def test_errnos_sort_into_three_kinds():
    assert retry.kind_of_errno(errno.ECONNREFUSED) == retry.REFUSED
    for code in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL, errno.ENETDOWN):
        assert retry.kind_of_errno(code) == retry.NO_NETWORK
    for code in (errno.ECONNRESET, errno.ETIMEDOUT, errno.EPIPE):
        assert retry.kind_of_errno(code) == retry.LOAD


def test_load_delay_ceiling_doubles_then_caps():
    top = [retry.load_delay(n, rand=lambda: 1.0) for n in range(1, 15)]
    assert top[0] == retry.LOAD_FIRST
    assert all(b == min(2 * a, retry.LOAD_MAX) for a, b in zip(top, top[1:]))
    assert max(top) == retry.LOAD_MAX
    assert retry.load_delay(400, rand=lambda: 1.0) == retry.LOAD_MAX  # no overflow


def test_load_delay_is_full_jitter():
    assert retry.load_delay(6, rand=lambda: 0.0) == 0.0
    assert retry.load_delay(6, rand=lambda: 0.5) == pytest.approx(retry.LOAD_FIRST * 2 ** 5 / 2)


def test_retry_after_is_honoured_as_a_floor():
    assert retry.load_delay(1, retry_after=7, rand=lambda: 0.0) == 7
    assert retry.load_delay(1, retry_after=7, rand=lambda: 1.0) == pytest.approx(7.7)
    # a backoff already longer than Retry-After stays
    assert retry.load_delay(9, retry_after=1, rand=lambda: 1.0) == retry.LOAD_MAX
    assert retry.load_delay(1, retry_after=10 ** 9, rand=lambda: 0.0) == retry.RETRY_AFTER_MAX


def test_refused_delay_is_short_and_never_zero():
    delays = [retry.refused_delay(n, rand=r) for n in range(1, 20) for r in (lambda: 0.0,
                                                                               lambda: 1.0)]
    assert min(delays) == retry.REFUSED_FIRST / 2
    assert max(delays) == retry.REFUSED_MAX
    assert retry.REFUSED_MAX <= 0.25  # a late service is answered within 0.5 s


def test_parse_retry_after():
    assert retry.parse_retry_after(None) is None
    assert retry.parse_retry_after("120") == 120.0
    assert retry.parse_retry_after(" 3 ") == 3.0
    assert retry.parse_retry_after("soon") is None
    assert retry.parse_retry_after("-5") is None
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= retry.parse_retry_after(later) <= 31
    past = email.utils.formatdate(time.time() - 30, usegmt=True)
    assert retry.parse_retry_after(past) == 0.0


def test_network_watch_without_netlink_polls(monkeypatch):
    def no_netlink(*a):
        raise OSError(errno.EAFNOSUPPORT, "no netlink")
    monkeypatch.setattr(retry.socket, "socket", no_netlink)
    w = retry.NetworkWatch()
    slept = []
    assert not w.available
    assert w.wait(5.0, slept.append) is False
    assert slept == [retry.NETWORK_POLL]
    w.close()

