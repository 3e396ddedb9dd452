#!/usr/bin/env python3
"""The project's own metadata server, for tests, the e2e boots and the benchmark.

Serves a config-drive-shaped tree (openstack/latest/meta_data.json, ...) as the
OpenStack metadata service and as an EC2 2009-04-04 tree, with IMDSv2 tokens
and fault injection; and, beside it, a NoCloud seed directory (its files at
/meta-data, /user-data, ...: ``--nocloud DIR``) and Hetzner's two documents
(/hetzner/v1/metadata and /hetzner/v1/userdata from DIR/metadata and
DIR/userdata: ``--hetzner DIR``).  Every request is appended to --log as
"METHOD PATH STATUS UNIXTIME" so tests and the benchmark can count and time them.

    metadata_server.py --tree examples/configdrive --port 80 --bind 169.254.169.254
"""

import argparse
import json
import os
import socket
import struct
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Faults:
    def __init__(self, args):
        self.fail_first = args.fail_first
        self.reset_first = args.reset_first
        self.stall_first = args.stall_first
        self.stall = args.stall
        self.truncate = set(args.truncate or [])
        self.huge = set(args.huge or [])
        self.redirect = set(args.redirect or [])
        self.trickle = dict(t.split("=", 1) for t in getattr(args, "trickle", None) or [])
        self.trickle_every = getattr(args, "trickle_every", 0.5)
        self.flap_for = getattr(args, "flap_for", 0)
        self.flap_started = None
        self.count = 0
        self.lock = threading.Lock()
        # every body a byte at a time, at this many bytes a second (0: at once)
        self.drip = getattr(args, "drip", 0)

    def next(self):
        with self.lock:
            self.count += 1
            return self.count


def load_tree(tree):
    base = os.path.join(tree, "openstack", "latest")
    docs = {}
    for name in ("meta_data.json", "network_data.json", "vendor_data.json", "vendor_data2.json",
                 "user_data"):
        p = os.path.join(base, name)
        if os.path.exists(p):
            with open(p, "rb") as f:
                docs[name] = f.read()
    return docs


def load_static(nocloud=None, hetzner=None, nocloud_at=""):
    """{URL path: body} for the NoCloud seed (under the path ``nocloud_at``)
    and the Hetzner documents given."""
    static = {}
    at = nocloud_at.strip("/") + "/" if nocloud_at.strip("/") else ""
    for top, names, prefix in ((nocloud, ("meta-data", "user-data", "vendor-data",
                                          "network-config"), at),
                               (hetzner, ("metadata", "userdata"), "hetzner/v1/")):
        for name in names if top else ():
            p = os.path.join(top, name)
            if os.path.exists(p):
                with open(p, "rb") as f:
                    static[prefix + name] = f.read()
    return static


def make_handler(docs, mode, imdsv2, faults, logfile, static=None):
    static = static or {}
    meta = json.loads(docs["meta_data.json"]) if "meta_data.json" in docs else {}
    tokens = set()

    ec2 = {
        "meta-data/instance-id": meta.get("uuid", ""),
        "meta-data/local-hostname": meta.get("hostname", ""),
        "meta-data/hostname": meta.get("hostname", ""),
    }
    keys = list((meta.get("public_keys") or {}).items())
    ec2["meta-data/public-keys/"] = "\n".join(f"{i}={n}" for i, (n, _) in enumerate(keys))
    for i, (_, k) in enumerate(keys):
        ec2[f"meta-data/public-keys/{i}/openssh-key"] = k
    if "user_data" in docs:
        ec2["user-data"] = docs["user_data"]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # else each keep-alive reply waits ~40 ms for an ACK

        def log_message(self, *a):
            pass

        def _log(self, status):
            if logfile:
                with open(logfile, "a") as f:
                    f.write(f"{self.command} {self.path} {status} {time.time():.6f}\n")

        def _send(self, status, body=b"", headers=None, lie_length=None):
            if isinstance(body, str):
                body = body.encode()
            self._log(status)
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(lie_length or len(body)))
            self.end_headers()
            if faults.drip:
                return self._drip(body)
            self.wfile.write(body)
            if lie_length:
                self.wfile.flush()
                self.close_connection = True

        def _faults(self):
            n = faults.next()
            if faults.flap_for and self._flap(n):
                return True
            if n <= faults.reset_first:
                self._log("RESET")
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
                self.connection.close()
                self.close_connection = True
                return True
            if n <= faults.stall_first:
                time.sleep(faults.stall)
            if n <= faults.fail_first:
                self._send(503, "unavailable", {"Connection": "close"})
                self.close_connection = True
                return True
            return False

        def _drip(self, body):
            """The whole body, one byte every 1/--drip seconds (a service on
            its knees that still answers)."""
            self.wfile.flush()
            try:
                for i in range(len(body)):
                    time.sleep(1.0 / faults.drip)
                    self.wfile.write(body[i:i + 1])
                    self.wfile.flush()
            except OSError:
                self.close_connection = True

        def _flap(self, n):
            """The first --flap-for seconds from the first request: 503 and a
            hang (no answer until the time is up) in turn."""
            now = time.monotonic()
            with faults.lock:
                if faults.flap_started is None:
                    faults.flap_started = now
            left = faults.flap_started + faults.flap_for - now
            if left <= 0:
                return False
            if n % 2:
                self._send(503, "unavailable", {"Connection": "close"})
            else:
                self._log("HANG")
                time.sleep(left)
                self.connection.close()
            self.close_connection = True
            return True

        def _trickle(self, what, every):
            """A byte (headers, body) or a line (lines) at a time, for ever."""
            self._log(f"TRICKLE-{what}")
            try:
                if what == "headers":
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                elif what == "body":
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n{")
                elif what == "chunked":
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                else:  # lines: one header line at a time
                    self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                self.wfile.flush()
                for i in range(100000):
                    time.sleep(every)
                    if what == "chunked":
                        self.wfile.write(b"1\r\n \r\n")
                    elif what == "lines":
                        self.wfile.write(b"X-Line-%d: x\r\n" % i)
                    else:
                        self.wfile.write(b" ")
                    self.wfile.flush()
            except OSError:
                pass
            self.close_connection = True

        def do_PUT(self):
            if self._faults():
                return
            path = self.path.lstrip("/")
            if path == "latest/api/token" and imdsv2 != "off" and mode in ("ec2", "both"):
                if not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                    return self._send(400, "missing ttl")
                t = uuid.uuid4().hex
                tokens.add(t)
                return self._send(200, t)
            self._send(405 if mode != "ec2" else 404, "no")

        def do_GET(self):
            if self._faults():
                return
            path = self.path.lstrip("/")
            if path in faults.trickle:
                return self._trickle(faults.trickle[path], faults.trickle_every)
            if path in faults.redirect:
                return self._send(302, "", {"Location": "http://192.0.2.1/evil"})
            if path in faults.huge:
                self._log(200)
                self.send_response(200)
                self.send_header("Content-Length", str(64 << 20))
                self.end_headers()
                try:
                    chunk = b"x" * 65536
                    for _ in range(1024):
                        self.wfile.write(chunk)
                except OSError:
                    pass
                self.close_connection = True
                return
            if path in static:
                return self._send(200, static[path])
            if path in ("openstack", "openstack/") and mode in ("openstack", "both"):
                # Nova's version list; cloud-init's OpenStack datasource asks for
                # it first and gives up on a 404.  Only "latest" is served, so
                # that is the one version listed (cloud-init then uses it).
                return self._send(200, "latest")
            if path.startswith("openstack/"):
                if mode not in ("openstack", "both"):
                    return self._send(404, "not found")
                name = path[len("openstack/latest/"):] if path.startswith("openstack/latest/") \
                    else None
                if name is None or name not in docs:
                    return self._send(404, "not found")
                body = docs[name]
                if path in faults.truncate:
                    return self._send(200, body[: len(body) // 2], lie_length=len(body))
                return self._send(200, body)
            if path.startswith("2009-04-04/") or path.startswith("latest/"):
                if mode not in ("ec2", "both"):
                    return self._send(404, "not found")
                if imdsv2 == "required" and self.headers.get("X-aws-ec2-metadata-token") \
                        not in tokens:
                    return self._send(401, "token required")
                rel = path.split("/", 1)[1]
                if rel in ec2:
                    return self._send(200, ec2[rel])
                return self._send(404, "not found")
            self._send(404, "not found")

    return Handler


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tree", help="config-drive-shaped tree to serve")
    p.add_argument("--nocloud", help="NoCloud seed directory to serve (at --nocloud-at)")
    p.add_argument("--nocloud-at", default="/", help="URL path of the NoCloud seed")
    p.add_argument("--hetzner", help="directory with Hetzner's metadata and userdata")
    p.add_argument("--bind", default="169.254.169.254")
    p.add_argument("--port", type=int, default=80)
    p.add_argument("--mode", choices=("openstack", "ec2", "both"), default="both")
    p.add_argument("--imdsv2", choices=("off", "optional", "required"), default="optional")
    p.add_argument("--start-after", type=float, default=0, help="seconds before listening")
    p.add_argument("--fail-first", type=int, default=0, help="answer 503 to the first N")
    p.add_argument("--reset-first", type=int, default=0, help="reset the first N connections")
    p.add_argument("--stall-first", type=int, default=0, help="stall the first N requests")
    p.add_argument("--stall", type=float, default=10.0, help="seconds a stall lasts")
    p.add_argument("--truncate", action="append", help="path served with a short body")
    p.add_argument("--huge", action="append", help="path served with a 64 MiB body")
    p.add_argument("--redirect", action="append", help="path answered with a redirect")
    p.add_argument("--trickle", action="append", metavar="PATH=HOW",
                   help="answer PATH slowly for ever: HOW is headers, body, chunked or lines")
    p.add_argument("--trickle-every", type=float, default=0.5,
                   help="seconds between the trickled bytes or lines")
    p.add_argument("--flap-for", type=float, default=0, metavar="SECONDS",
                   help="from the first request on, for SECONDS: answer 503 and hang in turn")
    p.add_argument("--log", help="append 'METHOD PATH STATUS UNIXTIME' per request here")
    p.add_argument("--ready-file", help="write the unix time it began listening here")
    p.add_argument("--drip", type=float, default=0, metavar="BYTES_PER_S",
                   help="send every response body a byte at a time, at this rate")
    args = p.parse_args(argv)
    docs = load_tree(args.tree) if args.tree else {}
    if args.start_after:
        time.sleep(args.start_after)
    handler = make_handler(docs, args.mode, args.imdsv2, Faults(args), args.log,
                           load_static(args.nocloud, args.hetzner, args.nocloud_at))
    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer.daemon_threads = True
    server_class = ThreadingHTTPServer
    if ":" in args.bind:  # IPv6 (Nova's fe80::a9fe:a9fe): "::" takes link-local too
        server_class = type("ThreadingHTTPServer6", (ThreadingHTTPServer,),
                            {"address_family": socket.AF_INET6})
    srv = server_class((args.bind, args.port), handler)
    if args.ready_file:  # listening since the line above: the time it began accepting
        with open(args.ready_file, "w") as f:
            f.write(f"{time.time():.6f}\n")
    print(f"metadata server on {args.bind}:{args.port} ({args.mode}, imdsv2 {args.imdsv2})",
          file=sys.stderr, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
