"""Network namespaces for tests: 169.254.169.254 on the namespace's own loopback.

The agent and the metadata server both run inside the namespace the test
made, so no test traffic ever leaves it.
"""

import os
import shutil
import subprocess
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "metadata_server.py")
METADATA_IP = "169.254.169.254"


def available():
    return os.geteuid() == 0 and shutil.which("ip") is not None


class Netns:
    def __init__(self, with_address=True):
        self.name = "ga-test-" + uuid.uuid4().hex[:8]
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        self.run(["ip", "link", "set", "lo", "up"], check=True)
        if with_address:
            self.run(["ip", "addr", "add", f"{METADATA_IP}/32", "dev", "lo"], check=True)
        self.procs = []

    def prefix(self):
        return ["ip", "netns", "exec", self.name]

    def run(self, argv, **kw):
        return subprocess.run(self.prefix() + list(argv), **kw)

    def popen(self, argv, **kw):
        p = subprocess.Popen(self.prefix() + list(argv), **kw)
        self.procs.append(p)
        return p

    def start_server(self, tree, *extra, log=None, wait=True):
        """Start tests/support/metadata_server.py in the namespace; wait until it listens.

        With wait=False, the returned process's ``ready_file`` gets the unix
        time the server began accepting connections, once it does.
        """
        ready = os.path.join("/tmp", f"{self.name}-{len(self.procs)}.ready")
        argv = [sys.executable, SERVER, "--tree", str(tree), "--ready-file", ready]
        if log:
            argv += ["--log", str(log)]
        argv += [str(a) for a in extra]
        p = self.popen(argv, stderr=subprocess.DEVNULL)
        p.ready_file = ready
        if wait:
            deadline = time.monotonic() + 10
            while not os.path.exists(ready):
                if p.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("metadata server did not start")
                time.sleep(0.02)
            os.unlink(ready)
        return p

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        subprocess.run(["ip", "netns", "delete", self.name], check=False)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
