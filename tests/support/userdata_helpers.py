"""A config drive with chosen user-data, and the agent run against it."""

import json
import os
import shutil

from support import EXAMPLES


class Drive:
    """examples/configdrive copied under tmp, with its own user_data and config file."""

    def __init__(self, tmp_path, run_agent, root):
        self.dir = tmp_path / "configdrive"
        shutil.copytree(os.path.join(EXAMPLES, "configdrive"), self.dir)
        self.conf = tmp_path / "guestagent.conf"
        self.root = root
        self._run_agent = run_agent
        self.settings = {}
        self.set_instance_id("iid-userdata-1")

    @property
    def latest(self):
        return self.dir / "openstack" / "latest"

    def user_data(self, data):
        if isinstance(data, str):
            data = data.encode()
        (self.latest / "user_data").write_bytes(data)

    def set_instance_id(self, iid):
        md = json.loads((self.latest / "meta_data.json").read_text())
        md["uuid"] = iid
        (self.latest / "meta_data.json").write_text(json.dumps(md))

    def run(self, *extra, userdata=None):
        lines = ["[main]", "datasources = configdrive", "default_user = debian",
                 "[configdrive]", f"path = {self.dir}", "[userdata]"]
        lines += [f"{k} = {v}" for k, v in (userdata or {}).items()]
        self.conf.write_text("\n".join(lines) + "\n")
        return self._run_agent("--once", "--root", self.root, "--config", self.conf, *extra)

    def status(self):
        res = self._run_agent("status", "--json", "--root", self.root)
        return json.loads(res.stdout)

    def step(self, name):
        for s in self.status()["last"]["steps"]:
            if s["name"] == name:
                return s
        raise AssertionError(f"step {name} did not run")

    @property
    def log(self):
        p = self.root / "var/log/guestagent-user-data.log"
        return p.read_text() if p.exists() else ""
