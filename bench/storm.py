#!/usr/bin/env python3
"""Boot storm: many agents at once against one metadata proxy under load.

    sudo bench/storm [--agents 200] [--capacity 50] [--queue 100] [--json FILE]

Each agent has its own network namespace and source address: a veth pair
from its namespace to a bridge in a "proxy" namespace, which holds
169.254.169.254 and bench/storm_server.py (Neutron's per-address rate limit,
429 without Retry-After; a backend of limited capacity with a queue, 503 when
it is full).  All agents start at the same instant and fetch the OpenStack
documents with the agent's own code (guestagent.datasources.openstack and its
MetadataClient, retry policy included).

The agents are threads of this one process, each moved into its namespace
(setns is per thread): on this 2-core machine, 200 Python start-ups would
measure the CPU, not the protocol.  What a storm is about (requests, 429s,
503s, waves, time to done) is the same; the first-failure network diagnosis
(pyroute2) is left out.

Every namespace and veth it made is deleted at the end (and any left over by
an interrupted run, at the start).  A benchmark, not a test.
"""

import argparse
import collections
import ctypes
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from guestagent.datasources import Unreachable, openstack  # noqa: E402
from guestagent.datasources.http import MetadataClient  # noqa: E402

TREE = os.path.join(REPO, "examples", "configdrive")
SERVER = os.path.join(REPO, "bench", "storm_server.py")
PREFIX = "ga-storm-"
PROXY_NS = PREFIX + "proxy"
METADATA_IP = "169.254.169.254"
GATEWAY = "10.201.0.1"
CLONE_NEWNET = 0x40000000


def agent_ns(i):
    return f"{PREFIX}a{i}"


def agent_ip(i):
    return f"10.201.{1 + i // 250}.{1 + i % 250}"


def ip_batch(lines, netns=None, check=True):
    argv = ["ip"] + (["-n", netns] if netns else []) + ["-force", "-batch", "-"]
    res = subprocess.run(argv, input="\n".join(lines) + "\n", text=True,
                         capture_output=True, timeout=120)
    if check and res.returncode != 0:
        raise RuntimeError(f"ip -batch failed: {res.stderr.strip()[:500]}")
    return res


def leftover_namespaces():
    res = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    return [line.split()[0] for line in res.stdout.splitlines()
            if line.startswith(PREFIX)]


def cleanup():
    """Delete every namespace this benchmark makes (their veths go with them)."""
    names = leftover_namespaces()
    if names:
        ip_batch([f"netns delete {n}" for n in names], check=False)
    return len(names)


def build_network(n):
    ip_batch([f"netns add {PROXY_NS}"] + [f"netns add {agent_ns(i)}" for i in range(n)])
    proxy = ["link set lo up", f"addr add {METADATA_IP}/32 dev lo",
             "link add br0 type bridge", f"addr add {GATEWAY}/16 dev br0", "link set br0 up"]
    for i in range(n):
        proxy += [f"link add p{i} type veth peer name eth0 netns {agent_ns(i)}",
                  f"link set p{i} master br0", f"link set p{i} up"]
    ip_batch(proxy, netns=PROXY_NS)
    for i in range(n):
        ip_batch(["link set lo up", f"addr add {agent_ip(i)}/16 dev eth0",
                  "link set eth0 up", f"route add {METADATA_IP}/32 via {GATEWAY}"],
                 netns=agent_ns(i))


def setns(name):
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {name}")
    finally:
        os.close(fd)


class AgentContext:
    """What openstack.fetch needs from the agent's SearchContext: its client."""

    def __init__(self, deadline_at, timeout):
        self._client = MetadataClient(f"http://{METADATA_IP}", deadline_at, timeout=timeout)

    def client(self):
        return self._client


def run_agent(i, start, results, deadline, timeout):
    setns(agent_ns(i))  # this thread only: its sockets live in the agent's namespace
    start.wait()
    t0 = time.time()
    ctx = AgentContext(time.monotonic() + deadline, timeout)
    try:
        md = openstack.fetch(ctx)
        outcome = "done" if md.instance_id else "no instance id"
    except Unreachable as e:
        outcome = f"gave up: {e}"
    except Exception as e:  # noqa: BLE001 - reported per agent
        outcome = f"error: {type(e).__name__}: {e}"
    finally:
        ctx.client().close()
    results[i] = {"agent": i, "src": agent_ip(i), "start": t0, "end": time.time(),
                  "outcome": outcome, "requests_made": ctx.client().requests_made}


def pct(values, q):
    values = sorted(values)
    if not values:
        return None
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def analyse(args, results, log_path, t_start):
    per_src = collections.defaultdict(collections.Counter)
    arrivals = []
    with open(log_path) as f:
        for line in f:
            r = json.loads(line)
            per_src[r["src"]][r["status"]] += 1
            if r["answered"] - r["arrived"] >= args.request_timeout:
                per_src[r["src"]]["late"] += 1  # the agent had given up on it
            arrivals.append(r["arrived"] - t_start)
    agents = []
    for r in results:
        c = per_src.get(r["src"], collections.Counter())
        agents.append({
            "agent": r["agent"], "src": r["src"], "outcome": r["outcome"],
            "requests_made": r["requests_made"],
            "http_200": c[200], "http_404": c[404], "http_429": c[429], "http_503": c[503],
            "timeouts": c["late"],
            "never_arrived": r["requests_made"] - (c[200] + c[404] + c[429] + c[503]),
            "done_after_s": round(r["end"] - t_start, 3)})
    done = [a["done_after_s"] for a in agents if a["outcome"] == "done"]
    once = args.agents * 4 / args.capacity
    refused = [a for a in agents if a["http_429"] or a["http_503"]]
    over5 = [a for a in agents if a["requests_made"] > 5]
    over5_unrefused = [a for a in over5 if not (a["http_429"] or a["http_503"]
                                                or a["timeouts"] > 0)]
    bin_s = 0.5
    end = max(arrivals) if arrivals else 0
    bins = [0] * (int(end / bin_s) + 1)
    for t in arrivals:
        bins[int(max(t, 0) / bin_s)] += 1
    # waves: a synchronized retry wave is a half-second far busier than the
    # ones around it; after the start (everyone's first request, 2 s), the
    # largest ratio of a bin to the mean of its four neighbours
    peaks = []
    for k in range(int(2.0 / bin_s), len(bins) - 2):
        around = statistics.mean(bins[k - 2:k] + bins[k + 1:k + 3])
        if around >= 10:  # fewer, and Poisson noise alone makes ratios of 2
            peaks.append((bins[k] / around, k * bin_s))
    peak = max(peaks) if peaks else (None, None)
    summary = {
        "agents": args.agents,
        "done": len(done),
        "gave_up_or_failed": [a for a in agents if a["outcome"] != "done"],
        "time_to_done_s": {"p50": pct(done, 0.5), "p99": pct(done, 0.99),
                           "max": max(done) if done else None},
        "server_answers_everyone_once_s": once,
        "p99_within_3x_once": bool(done) and pct(done, 0.99) <= 3 * once,
        "requests_total": len(arrivals),
        "requests_per_agent": {"median": statistics.median(a["requests_made"] for a in agents),
                               "max": max(a["requests_made"] for a in agents)},
        "http_429_total": sum(a["http_429"] for a in agents),
        "http_503_total": sum(a["http_503"] for a in agents),
        "timeouts_total": sum(a["timeouts"] for a in agents),
        "agents_refused_at_least_once": len(refused),
        "agents_over_5_requests": len(over5),
        "agents_over_5_requests_never_refused": len(over5_unrefused),
        "histogram_bin_s": bin_s,
        "histogram": bins,
        "wave_peak_vs_neighbours": round(peak[0], 2) if peak[0] is not None else None,
        "wave_peak_at_s": peak[1],
    }
    return summary, agents


def report(args, summary, agents):
    s = summary
    t = s["time_to_done_s"]
    out = [f"bench/storm: {args.agents} agents, proxy capacity {args.capacity:g} req/s, "
           f"queue {args.queue}, rate limit {args.rate_limit}/{args.window:g} s per address "
           f"(429 without Retry-After)",
           f"machine: {platform.node()}, {os.cpu_count()} cores, Python "
           f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f} at the end",
           "",
           f"done: {s['done']} of {s['agents']}; gave up or failed: "
           f"{len(s['gave_up_or_failed'])}",
           f"time to done: p50 {t['p50']:.1f} s, p99 {t['p99']:.1f} s, max {t['max']:.1f} s "
           f"(the server needs {s['server_answers_everyone_once_s']:.1f} s to answer everyone "
           f"once; p99 within 3x: {'yes' if s['p99_within_3x_once'] else 'NO'})",
           f"requests: {s['requests_total']} in all, per agent median "
           f"{s['requests_per_agent']['median']:g}, max {s['requests_per_agent']['max']}; "
           f"429s {s['http_429_total']}, 503s {s['http_503_total']}, "
           f"timeouts {s['timeouts_total']}",
           f"agents over 5 requests: {s['agents_over_5_requests']} "
           f"(never refused or timed out: {s['agents_over_5_requests_never_refused']})",
           f"retry waves: the busiest half-second after the first 2 s has "
           f"{s['wave_peak_vs_neighbours']} x the mean of the four around it "
           f"(at {s['wave_peak_at_s']} s; a synchronized wave would stand well above 2)",
           "", "requests arriving per 0.5 s (one # = 5 requests):"]
    for k, b in enumerate(s["histogram"]):
        out.append(f"{k * s['histogram_bin_s']:6.1f} s {b:4d} {'#' * round(b / 5)}")
    worst = sorted(agents, key=lambda a: -a["done_after_s"])[:5]
    out += ["", "slowest agents: " + "; ".join(
        f"{a['src']} {a['done_after_s']:.1f} s, {a['requests_made']} requests "
        f"({a['http_429']}x429, {a['http_503']}x503, {a['timeouts']} timeouts)" for a in worst)]
    return "\n".join(out)


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--agents", type=int, default=200)
    p.add_argument("--capacity", type=float, default=50.0, help="proxy backend, requests/s")
    p.add_argument("--queue", type=int, default=100, help="requests that may wait; more: 503")
    p.add_argument("--rate-limit", type=int, default=10)
    p.add_argument("--window", type=float, default=10.0)
    p.add_argument("--deadline", type=float, default=120.0, help="each agent's deadline (s)")
    p.add_argument("--request-timeout", type=float, default=3.0)
    p.add_argument("--json", default=os.path.join(REPO, "bench", "results", "storm.json"))
    args = p.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench/storm: needs root (network namespaces)")
    if not 1 <= args.agents <= 2000:
        raise SystemExit("bench/storm: --agents must be 1..2000")
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    work = tempfile.mkdtemp(prefix="guestagent-storm-")
    log_path = os.path.join(work, "requests.jsonl")
    ready = os.path.join(work, "ready")
    server = None
    left = cleanup()
    if left:
        print(f"bench/storm: deleted {left} namespaces left by an earlier run", file=sys.stderr)
    try:
        t = time.monotonic()
        build_network(args.agents)
        print(f"network: {args.agents} namespaces and veths in {time.monotonic() - t:.1f} s",
              file=sys.stderr)
        server = subprocess.Popen(
            ["ip", "netns", "exec", PROXY_NS, sys.executable, SERVER, "--tree", TREE,
             "--log", log_path, "--ready-file", ready, "--capacity", str(args.capacity),
             "--queue", str(args.queue), "--rate-limit", str(args.rate_limit),
             "--window", str(args.window)])
        until = time.monotonic() + 20
        while not os.path.exists(ready):
            if server.poll() is not None or time.monotonic() > until:
                raise SystemExit("bench/storm: the proxy did not start")
            time.sleep(0.05)
        results = [None] * args.agents
        t_start = [0.0]
        start = threading.Barrier(args.agents + 1,
                                  action=lambda: t_start.__setitem__(0, time.time()))
        threads = [threading.Thread(target=run_agent, daemon=True,
                                    args=(i, start, results, args.deadline,
                                          args.request_timeout))
                   for i in range(args.agents)]
        threading.stack_size(512 * 1024)
        for th in threads:
            th.start()
        start.wait()
        for th in threads:
            th.join(args.deadline + 30)
        missing = [i for i, r in enumerate(results) if r is None]
        for i in missing:
            results[i] = {"agent": i, "src": agent_ip(i), "start": t_start[0],
                          "end": time.time(), "outcome": "still running", "requests_made": 0}
        server.terminate()
        server.wait(10)
        summary, agents = analyse(args, results, log_path, t_start[0])
        text = report(args, summary, agents)
        result = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "commit": _commit(), "args": vars(args),
                  "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
                  "summary": summary, "agents": agents}
        os.makedirs(os.path.dirname(args.json), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1, sort_keys=True)
        with open(os.path.splitext(args.json)[0] + ".txt", "w") as f:
            f.write(text + "\n")
        print(text)
        print(f"\nwrote {args.json}", file=sys.stderr)
    finally:
        if server is not None and server.poll() is None:
            server.kill()
            server.wait()
        t = time.monotonic()
        n = cleanup()
        print(f"cleanup: deleted {n} namespaces in {time.monotonic() - t:.1f} s"
              + (f"; still there: {leftover_namespaces()}" if leftover_namespaces() else ""),
              file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _commit():
    try:
        return subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


if __name__ == "__main__":
    sys.exit(main())
