"""A metadata service that drips its answers (issue 29, part 3): the agent
against the project's server (``--drip``) at 169.254.169.254 in a netns.
The real boots are tests/e2e/test_metadata_faults.py."""

import os
import time

import pytest

from support import EXAMPLES
from support.marks import needs_root
from support.netns import Netns

pytestmark = [needs_root, pytest.mark.root]
TREE = os.path.join(EXAMPLES, "configdrive")


def _conf(tmp_path, deadline):
    f = tmp_path / "agent.conf"
    # assume_cloud: as on a Nova guest (its DMI says so), the whole deadline
    f.write_text(f"[main]\ndatasources = openstack\ndeadline = {deadline}\nassume_cloud = yes\n")
    return f


def test_a_service_dripping_10_bytes_a_second_is_given_up_at_the_deadline(
        tmp_path, root, run_agent):
    """Each byte comes before any per-read timeout runs out, so only the one
    deadline can end the search: it does, mid-response, and the run goes on
    with the steps that need no metadata (exit 3, one line why)."""
    log = tmp_path / "requests.log"
    deadline = 6
    with Netns() as ns:
        ns.start_server(TREE, "--mode", "openstack", "--drip", "10", log=log)
        t0 = time.monotonic()
        res = run_agent("--once", "--root", root, "--config", _conf(tmp_path, deadline),
                        netns=ns, timeout=60)
        took = time.monotonic() - t0
    err = res.stderr
    assert res.returncode == 3, err
    assert "Traceback" not in err
    assert took < deadline + 5, took  # start-up and the netns on top of the deadline
    assert "gave up at the deadline in the middle of" in err, err
    why = [ln for ln in err.splitlines() if "no datasource found" in ln]
    assert len(why) == 1 and "no SSH keys" in why[0] and "gave up at the deadline" in why[0], err
    assert "growroot" in err  # the steps that need no metadata still ran
    assert log.read_text().splitlines(), "the server saw no request"


def test_a_service_dripping_fast_enough_is_waited_for(tmp_path, root, run_agent):
    """The same drip, fast enough to end inside the deadline: every document
    is read whole, byte by byte."""
    with Netns() as ns:
        ns.start_server(TREE, "--mode", "openstack", "--drip", "2000")
        res = run_agent("--once", "--root", root, "--config", _conf(tmp_path, 60),
                        netns=ns, timeout=120)
    assert res.returncode in (0, 1), res.stderr
    assert "found instance 83679162-1378-4288-a2d4-70e13ec132aa" in res.stderr, res.stderr
    assert (root / "home/debian/.ssh/authorized_keys").exists() or "users" in res.stderr


def test_retries_are_counted_in_status(tmp_path, root, run_agent):
    """A service that answers 503 three times, then serves: the run's status
    counts the requests and the retries, by reason, and `status` says so."""
    import json
    with Netns() as ns:
        ns.start_server(TREE, "--mode", "openstack", "--fail-first", "3")
        res = run_agent("--once", "--root", root, "--config", _conf(tmp_path, 60),
                        netns=ns, timeout=120)
    assert "found instance" in res.stderr, res.stderr
    st = json.loads(run_agent("status", "--json", "--root", root, check=True).stdout)
    asked = st["last"]["metadata_requests"]
    assert asked["retries"] == 3 and asked["retried"] == {"HTTP 503": 3}, asked
    assert asked["requests"] >= 4, asked
    text = run_agent("status", "--root", root).stdout
    assert f"metadata requests: {asked['requests']}, retried 3 (HTTP 503 x3)" in text, text


def test_a_run_without_http_records_no_requests(tmp_path, root, run_agent):
    import json
    conf = tmp_path / "cd.conf"
    conf.write_text(f"[main]\ndatasources = configdrive\n[configdrive]\npath = {TREE}\n")
    run_agent("--once", "--root", root, "--config", conf, timeout=120)
    st = json.loads(run_agent("status", "--json", "--root", root, check=True).stdout)
    assert "metadata_requests" not in st["last"], st["last"]
