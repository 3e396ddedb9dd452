"""The deadline bounds the whole metadata search, in the middle of a response too.

requests' timeout is per socket read; these servers answer a byte or a line
at a time, each well within it, for ever.  Real sockets on loopback (unit
level) and the real agent against 169.254.169.254 in a namespace.
"""

import os
import socket
import sys
import threading
import time

import pytest

from guestagent.datasources import Unreachable
from guestagent.datasources.http import MetadataClient

from support import EXAMPLES, REPO
from support.marks import needs_root

STARTS = {
    "status line": b"HTT",
    "headers": b"HTTP/1.1 200 OK\r\nX-Slow: ",
    "header lines": b"HTTP/1.1 200 OK\r\n",
    "body": b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n{",
    "chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
    "body to close": b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{",
}
DRIPS = {"status line": b"P", "headers": b"x", "header lines": b"X-A: b\r\n", "body": b" ",
         "chunked": b"1\r\n \r\n", "body to close": b" "}


class Trickler:
    """Answers every connection with STARTS[how], then DRIPS[how] every ``every`` s."""

    def __init__(self, how, every):
        self.how, self.every = how, every
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn):
        try:
            conn.recv(65536)
            conn.sendall(STARTS[self.how])
            while not self.stop.wait(self.every):
                conn.sendall(DRIPS[self.how])
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.stop.set()
        self.sock.close()


@pytest.mark.parametrize("how", sorted(STARTS))
@pytest.mark.parametrize("every", [0.2, 0.9])
def test_a_trickling_answer_ends_at_the_deadline(how, every):
    server = Trickler(how, every)
    deadline = 2.0
    outcome = {}

    def fetch():
        client = MetadataClient(f"http://127.0.0.1:{server.port}", time.monotonic() + deadline,
                                timeout=1.0)
        try:
            client.get("openstack/latest/meta_data.json")
            outcome["result"] = "answered"
        except Unreachable as e:
            outcome["result"] = str(e)
        except Exception as e:
            outcome["result"] = f"{type(e).__name__}: {e}"
        finally:
            client.close()
            outcome["t"] = time.monotonic()

    t0 = time.monotonic()
    th = threading.Thread(target=fetch, daemon=True)
    th.start()
    th.join(deadline + 4)
    server.close()
    assert not th.is_alive(), f"{how}: still reading {deadline + 4:.0f} s after starting"
    assert outcome["t"] - t0 < deadline + 0.8, outcome
    assert "deadline" in outcome["result"], outcome


@needs_root
@pytest.mark.root
@pytest.mark.parametrize("how", ["headers", "body", "chunked", "lines"])
def test_the_agent_gives_up_at_its_deadline_on_a_trickling_service(tmp_path, root, how):
    from support.netns import Netns
    conf = tmp_path / "net.conf"
    conf.write_text("[main]\ndatasources = openstack, ec2\ndeadline = 4\nrequest_timeout = 2\n"
                    "default_user = debian\n")
    with Netns() as ns:
        ns.start_server(os.path.join(EXAMPLES, "configdrive"), "--mode", "openstack",
                        "--trickle", f"openstack/latest/meta_data.json={how}",
                        "--trickle-every", "0.3")
        t0 = time.monotonic()
        res = ns.run([sys.executable, "-m", "guestagent", "--once", "--root", str(root),
                      "--config", str(conf)], env=dict(os.environ, PYTHONPATH=REPO),
                     capture_output=True, text=True, timeout=60)
        took = time.monotonic() - t0
    assert res.returncode == 3, res.stderr
    assert took < 4 + 2.5, f"{how}: the agent took {took:.1f} s with a 4 s deadline"
    assert "deadline" in res.stderr
