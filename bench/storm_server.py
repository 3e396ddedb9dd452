#!/usr/bin/env python3
"""A metadata proxy under load, shaped like Neutron's haproxy in front of Nova.

    storm_server.py --tree examples/configdrive --log FILE [--capacity 50] [--queue 100]

- Per source address, Neutron's ``[metadata_rate_limiting]`` defaults as its
  haproxy configures them: a stick table counts every request of the last
  10 s (refused ones too: haproxy tracks before it denies), and over 10 the
  answer is 429 with no Retry-After, at once, without reaching the backend.
- Behind that, one backend (Nova's metadata API) that serves ``--capacity``
  requests a second, first come first served: a request waits its turn, so
  answers slow down as the queue grows, and when ``--queue`` requests already
  wait, the answer is 503 at once (haproxy's full queue).
- HTTP/1.1 keep-alive, as requests' session uses it.

Every request is logged as one JSON line: source, path, status, arrival and
answer times (unix), so bench/storm can count and plot them per agent.
"""

import argparse
import asyncio
import collections
import json
import os
import sys
import time

DOCS = ("meta_data.json", "network_data.json", "vendor_data.json", "user_data")


class Proxy:
    def __init__(self, docs, capacity, queue_limit, rate_limit, window, log):
        self.docs = docs
        self.service_time = 1.0 / capacity
        self.queue_limit = queue_limit
        self.rate_limit = rate_limit
        self.window = window
        self.log = log
        self.seen = collections.defaultdict(collections.deque)  # source -> arrival times
        self.waiting = 0
        self.backend = asyncio.Lock()  # one request served at a time, in arrival order

    def over_rate(self, source, now):
        times = self.seen[source]
        times.append(now)
        while times and times[0] <= now - self.window:
            times.popleft()
        return len(times) > self.rate_limit

    async def answer(self, source, path):
        arrived = time.time()
        if self.over_rate(source, arrived):
            return self.record(source, path, 429, arrived, b"Too Many Requests\n")
        if self.waiting >= self.queue_limit:
            return self.record(source, path, 503, arrived, b"Service Unavailable\n")
        self.waiting += 1
        try:
            async with self.backend:  # asyncio.Lock wakes waiters first in, first out
                await asyncio.sleep(self.service_time)
        finally:
            self.waiting -= 1
        name = path[len("/openstack/latest/"):] if path.startswith("/openstack/latest/") else None
        if name in self.docs:
            return self.record(source, path, 200, arrived, self.docs[name])
        return self.record(source, path, 404, arrived, b"Not Found\n")

    def record(self, source, path, status, arrived, body):
        self.log.write(json.dumps({"src": source, "path": path, "status": status,
                                   "arrived": round(arrived, 6),
                                   "answered": round(time.time(), 6)}) + "\n")
        return status, body

    async def connection(self, reader, writer):
        source = writer.get_extra_info("peername")[0]
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                line = head.split(b"\r\n", 1)[0].decode("latin-1").split()
                if len(line) != 3:
                    break
                status, body = await self.answer(source, line[1])
                reason = {200: "OK", 404: "Not Found", 429: "Too Many Requests",
                          503: "Service Unavailable"}[status]
                writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Length: {len(body)}\r\n"
                             "Content-Type: application/octet-stream\r\n\r\n".encode()
                             + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()


def load_docs(tree):
    docs = {}
    for name in DOCS:
        p = os.path.join(tree, "openstack", "latest", name)
        if os.path.exists(p):
            with open(p, "rb") as f:
                docs[name] = f.read()
    return docs


async def serve(args):
    with open(args.log, "w", buffering=1) as log:
        proxy = Proxy(load_docs(args.tree), args.capacity, args.queue, args.rate_limit,
                      args.window, log)
        server = await asyncio.start_server(proxy.connection, args.bind, args.port,
                                            backlog=1024)
        if args.ready_file:
            with open(args.ready_file, "w") as f:
                f.write(f"{time.time():.6f}\n")
        async with server:
            await server.serve_forever()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tree", required=True)
    p.add_argument("--bind", default="169.254.169.254")
    p.add_argument("--port", type=int, default=80)
    p.add_argument("--capacity", type=float, default=50.0, help="requests/s the backend serves")
    p.add_argument("--queue", type=int, default=100,
                   help="requests that may wait for the backend; more get 503")
    p.add_argument("--rate-limit", type=int, default=10, help="requests per source per window")
    p.add_argument("--window", type=float, default=10.0, help="the rate limit's window (s)")
    p.add_argument("--log", required=True, help="one JSON line per request")
    p.add_argument("--ready-file", help="the unix time it began listening is written here")
    args = p.parse_args(argv)
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
