"""A real step Context on a scratch root, with #cloud-config given as a dict.

Only the user-data decoding is bypassed (tests/test_userdata.py covers it);
the step still reads and writes the scratch root through the real System.
A step reads values its keys' validators let through: `read_cloud_config`
makes the dict from #cloud-config text the way a boot does.
"""

import os

from guestagent import config as configmod
from guestagent.metadata import Metadata
from guestagent.stages import STAGES
from guestagent.state import State
from guestagent.steps.context import Context
from guestagent.system import System


class StepContext(Context):
    def __init__(self, root, metadata=None, cloud_config=None, new_instance=True,
                 conf_text="", live=False):
        system = System(str(root))
        system.live = live
        conf = None
        if conf_text:
            conf = os.path.join(str(root), "guestagent-test.conf")
            with open(conf, "w") as f:
                f.write(conf_text)
        cfg = configmod.load(conf, root=str(root))
        md = metadata if metadata is not None else Metadata(source="test", instance_id="i-1")
        super().__init__(system, cfg, State(system), md, new_instance, STAGES["all"])
        self._cc = cloud_config or {}

    @property
    def cloud_config(self):
        return self._cc


def read_cloud_config(text):
    """(the checked #cloud-config dict, the notes) from ``text``, as a boot reads it."""
    from guestagent.userdata.cloudconfig import load_all
    notes = []
    return load_all([(0, text)], notes), notes


def config_drive(top, meta, network_data=None, files=None, user_data=None):
    """Write a config drive tree under ``top``; ``files`` maps path -> bytes."""
    import json
    base = os.path.join(str(top), "openstack", "latest")
    os.makedirs(base, exist_ok=True)
    meta = dict(meta)
    meta.setdefault("uuid", "11111111-2222-3333-4444-555555555555")
    if files:
        os.makedirs(os.path.join(str(top), "openstack", "content"), exist_ok=True)
        entries = list(meta.get("files", []))
        for i, (path, content) in enumerate(files.items()):
            name = f"{i:04d}"
            with open(os.path.join(str(top), "openstack", "content", name), "wb") as f:
                f.write(content)
            entries.append({"path": path, "content_path": f"/content/{name}"})
        meta["files"] = entries
    with open(os.path.join(base, "meta_data.json"), "w") as f:
        json.dump(meta, f)
    if network_data is not None:
        with open(os.path.join(base, "network_data.json"), "w") as f:
            json.dump(network_data, f)
    if user_data is not None:
        with open(os.path.join(base, "user_data"), "wb") as f:
            f.write(user_data.encode() if isinstance(user_data, str) else user_data)
    return str(top)


def agent_conf(path, drive=None, extra=""):
    """A config file for the agent: the given config drive tree, or the metadata service."""
    with open(path, "w") as f:
        if drive:
            f.write(f"[main]\ndatasources = configdrive\n\n[configdrive]\npath = {drive}\n")
        else:
            f.write("[main]\ndatasources = openstack\ndeadline = 20\n")
        f.write(extra)
    return str(path)


def dns_services(*addresses, search=None):
    services = [{"type": "dns", "address": a} for a in addresses]
    if search is not None and services:
        services[0]["search"] = search
    return {"links": [], "networks": [], "services": services}
