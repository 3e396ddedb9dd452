"""The agent against the project's metadata server at 169.254.169.254, in a netns."""

import json
import os
import re
import subprocess
import time

import pytest

from guestagent.datasources import retry

from support import EXAMPLES, REPO, agent_argv
from support.marks import needs_root
from support.netns import Netns

pytestmark = [needs_root, pytest.mark.root]
TREE = os.path.join(EXAMPLES, "configdrive")
META = json.load(open(os.path.join(TREE, "openstack/latest/meta_data.json")))


def _conf(tmp_path, text="", deadline=20):
    f = tmp_path / "agent.conf"
    f.write_text(f"[main]\ndatasources = openstack, ec2\ndeadline = {deadline}\n{text}")
    return f


def _expected_keys():
    keys = []
    for k in list(META["public_keys"].values()) + [k["data"] for k in META["keys"]]:
        if k.strip() not in keys:
            keys.append(k.strip())
    return keys


def _query(run_agent, root, conf):
    res = run_agent("query", "--json", "--root", root, "--config", conf, check=True)
    return json.loads(res.stdout)


def test_openstack_service_five_requests_at_most(tmp_path, root, run_agent):
    log = tmp_path / "requests.log"
    conf = _conf(tmp_path)
    with Netns() as ns:
        ns.start_server(TREE, "--mode", "openstack", log=log)
        res = run_agent("--once", "--root", root, "--config", conf, netns=ns)
    assert res.returncode == 0, res.stderr
    lines = log.read_text().splitlines()
    assert len(lines) <= 5, lines
    q = _query(run_agent, root, conf)
    assert q["instance_id"] == META["uuid"]
    assert q["hostname"] == META["hostname"]
    assert q["public_keys"] == _expected_keys()
    assert q["dns_nameservers"] == ["192.0.2.53", "198.51.100.53"]
    assert q["source"].startswith("openstack")
    text = json.dumps(q)
    assert META["random_seed"] not in text
    assert "user-data script ran" not in text


def test_ec2_service_that_requires_imdsv2_tokens(tmp_path, root, run_agent):
    log = tmp_path / "requests.log"
    conf = _conf(tmp_path)
    with Netns() as ns:
        ns.start_server(TREE, "--mode", "ec2", "--imdsv2", "required", log=log)
        res = run_agent("--once", "--root", root, "--config", conf, netns=ns)
    assert res.returncode == 0, res.stderr
    assert any(line.startswith("PUT /latest/api/token 200") for line in
               log.read_text().splitlines())
    q = _query(run_agent, root, conf)
    assert q["instance_id"] == META["uuid"]
    assert q["hostname"] == META["hostname"]
    assert q["public_keys"] == [META["public_keys"]["mykey"].strip()]
    assert q["source"].startswith("ec2")


@pytest.mark.parametrize("fault", [
    ["--fail-first", "3"],
    ["--reset-first", "3"],
    ["--stall-first", "1", "--stall", "5"],
])
def test_faults_that_clear_are_retried(tmp_path, root, run_agent, fault):
    conf = _conf(tmp_path, "request_timeout = 1\n")
    with Netns() as ns:
        ns.start_server(TREE, "--mode", "openstack", *fault)
        res = run_agent("--once", "--root", root, "--config", conf, netns=ns)
    assert res.returncode == 0, res.stderr
    assert _query(run_agent, root, conf)["instance_id"] == META["uuid"]


def test_a_flapping_service_answers_503_and_hangs_then_serves(tmp_path, root, run_agent):
    """--flap-for (the e2e flapping boot's fault): from the first request on,
    503 and a hang in turn; the agent gets through once it ends."""
    log = tmp_path / "requests.log"
    conf = _conf(tmp_path, "request_timeout = 1\n")
    with Netns() as ns:
        ns.start_server(TREE, "--mode", "openstack", "--flap-for", "4", log=log)
        t0 = time.monotonic()
        res = run_agent("--once", "--root", root, "--config", conf, netns=ns)
    assert res.returncode == 0, res.stderr
    assert time.monotonic() - t0 >= 4
    statuses = [line.split()[2] for line in log.read_text().splitlines()]
    assert statuses[:2] == ["503", "HANG"], statuses
    assert "200" in statuses and statuses.index("200") > statuses.index("HANG")
    assert _query(run_agent, root, conf)["instance_id"] == META["uuid"]


def test_service_that_starts_late(tmp_path, root, run_agent):
    conf = _conf(tmp_path)
    with Netns() as ns:
        agent = subprocess.Popen(
            ns.prefix() + agent_argv() + ["--once", "--verbose", "--root", str(root),
                                          "--config", str(conf)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=dict(os.environ, PYTHONPATH=REPO))
        seen = []
        for line in agent.stderr:  # the agent is being refused: nothing listens yet
            seen.append(line)
            if "connection refused (refused)" in line:
                break
        time.sleep(1.0)
        ns.start_server(TREE, "--mode", "openstack")
        _, rest = agent.communicate(timeout=60)
        err = "".join(seen) + rest
    assert agent.returncode == 0, err
    assert "retrying" in err
    # a refused connection is retried quickly (not on the load backoff): a
    # second of refusals makes several short waits, none over REFUSED_MAX
    waits = [float(w) for w in re.findall(r"connection refused \(refused\); waited ([\d.]+) s",
                                          err)]
    assert len(waits) >= 3, err
    assert max(waits) <= retry.REFUSED_MAX
    assert "pyroute2" not in err and "marshal" not in err  # no library chatter
    assert _query(run_agent, root, conf)["instance_id"] == META["uuid"]


def test_network_that_comes_up_late_is_noticed_by_the_kernel(tmp_path, root, run_agent):
    """No route at first: the agent waits on netlink notices, not a timer."""
    conf = _conf(tmp_path)
    with Netns(with_address=False) as ns:
        agent = subprocess.Popen(
            ns.prefix() + agent_argv() + ["--once", "--verbose", "--root", str(root),
                                          "--config", str(conf)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=dict(os.environ, PYTHONPATH=REPO))
        # Wait until the agent has found no route and subscribed to the
        # kernel's notices; it then tries once more at once and waits on
        # them (up to retry.NETWORK_WAIT_MAX): bring the network up inside
        # that wait.
        seen = []
        for line in agent.stderr:
            seen.append(line)
            if "watching the kernel for network changes" in line:
                break
        time.sleep(retry.NETWORK_WAIT_MAX / 2)
        ns.run(["ip", "addr", "add", "169.254.169.254/32", "dev", "lo"], check=True)
        ns.run(["ip", "link", "set", "lo", "up"], check=True)
        ns.start_server(TREE, "--mode", "openstack")
        _, rest = agent.communicate(timeout=60)
        err = "".join(seen) + rest
    assert agent.returncode == 0, err
    assert "no network yet" in err
    assert "(no network); watching the kernel for network changes" in err
    assert "the kernel reported a network change" in err
    assert _query(run_agent, root, conf)["instance_id"] == META["uuid"]


def test_no_service_gives_up_at_the_deadline_with_exit_3(tmp_path, root, run_agent):
    conf = _conf(tmp_path, deadline=3)
    with Netns() as ns:
        t0 = time.monotonic()
        res = run_agent("--once", "--root", root, "--config", conf, netns=ns)
        took = time.monotonic() - t0
    assert res.returncode == 3, res.stderr
    assert "no datasource found" in res.stderr
    assert took < 3 + 5  # interpreter start-up and the netns on top of the deadline


def test_network_down_is_told_apart_from_no_service(tmp_path, root, run_agent):
    # the deadline counts from the agent's start: on a loaded machine a
    # 1 s deadline can pass before the first request is even made
    conf = _conf(tmp_path, deadline=3)
    with Netns(with_address=False) as ns:
        ns.run(["ip", "link", "set", "lo", "down"])
        res = run_agent("--once", "--root", root, "--config", conf, netns=ns)
    assert res.returncode == 3
    assert "no network yet" in res.stderr
    with Netns() as ns:
        res = run_agent("--once", "--root", root, "--config", conf, netns=ns)
    assert "network is up" in res.stderr and "does not answer" in res.stderr


def test_truncated_and_huge_bodies_never_hang_or_crash(tmp_path, root, run_agent):
    conf = _conf(tmp_path, "max_response_bytes = 1048576\n", deadline=4)
    with Netns() as ns:
        ns.start_server(TREE, "--mode", "openstack",
                        "--huge", "openstack/latest/meta_data.json")
        res = run_agent("--once", "--root", root, "--config", conf, netns=ns, timeout=30)
    assert res.returncode == 3
    assert "limit" in res.stderr
    assert "Traceback" not in res.stderr
    with Netns() as ns:
        ns.start_server(TREE, "--mode", "openstack",
                        "--truncate", "openstack/latest/meta_data.json")
        res = run_agent("--once", "--root", root, "--config", conf, netns=ns, timeout=30)
    assert res.returncode == 3
    assert "truncated" in res.stderr
    assert "Traceback" not in res.stderr


def test_redirect_off_the_metadata_address_is_refused(tmp_path, root, run_agent):
    log = tmp_path / "requests.log"
    conf = _conf(tmp_path, deadline=3)
    with Netns() as ns:
        ns.start_server(TREE, "--mode", "openstack",
                        "--redirect", "openstack/latest/meta_data.json", log=log)
        res = run_agent("--once", "--root", root, "--config", conf, netns=ns)
    assert "refusing to follow a redirect" in res.stderr
    assert res.returncode == 3


@pytest.mark.parametrize("verbose", [False, True])
def test_library_debug_lines_stay_out_of_the_log_unless_verbose(tmp_path, root, run_agent,
                                                                verbose):
    """After a 500 the agent asks pyroute2 about the network and urllib3 retries:
    their debug lines are for --verbose, the agent's own always go to the file."""
    conf = _conf(tmp_path)
    with Netns() as ns:
        ns.start_server(TREE, "--mode", "openstack", "--fail-first", "1")
        res = run_agent("--once", "--root", root, "--config", conf,
                        *(["--verbose"] if verbose else []), netns=ns)
    assert res.returncode == 0, res.stderr
    text = (root / "var/log/guestagent.log").read_text()
    names = {line.split()[3].rstrip(":") for line in text.splitlines()
             if len(line.split()) > 3}
    foreign = sorted(n for n in names if not n.startswith("guestagent"))
    assert "DEBUG guestagent." in text  # the agent's own detail stays
    if verbose:
        assert any(n.startswith(("urllib3", "pyroute2")) for n in foreign), foreign
    else:
        assert foreign == [], foreign
