"""The Nova network fixtures (tests/fixtures/nova/, made by Nova's own code),
NICs for them in a scratch root's /sys/class/net, and a renderer's plan."""

import json
import os

from support import TESTS

NOVA = os.path.join(TESTS, "fixtures", "nova")


def nova_doc(name):
    with open(os.path.join(NOVA, f"{name}.json")) as f:
        return json.load(f)


def make_nics(root, macs):
    """NICs in the root's /sys/class/net: {name: mac}."""
    for name, mac in macs.items():
        d = os.path.join(str(root), "sys", "class", "net", name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "address"), "w") as f:
            f.write(mac + "\n")


def nics_for(config):
    """eth0, eth1, ... for the document's NICs, in document order."""
    from guestagent.metadata import netconfig as nc
    return {f"eth{i}": link.mac for i, link in
            enumerate(x for x in config.links if x.kind == nc.PHY)}


def render(tmp_path, renderer, fixture):
    """The plan ``renderer`` makes for ``fixture`` on a scratch root with its NICs."""
    from guestagent.datasources.network_data import parse
    from guestagent.steps.network import build_plan
    from guestagent.steps.network.interfaces import resolve
    from guestagent.system import System
    root = tmp_path / f"{renderer}-{fixture}"
    config = parse(nova_doc(fixture))
    make_nics(root, nics_for(config))
    system = System(str(root))
    plan, _ifaces = build_plan(system, renderer, resolve(config, system))
    return plan
