"""What the machine says about where it runs (datasources/evidence.py), read
from a scratch root's DMI files and kernel command line: which network
datasources it points at."""

import pytest

from guestagent.datasources.evidence import describe_machine, gather
from guestagent.system import System


def machine(root, cmdline=None, **dmi):
    d = root / "sys/class/dmi/id"
    d.mkdir(parents=True, exist_ok=True)
    for name, value in dmi.items():
        (d / name).write_text(value + "\n")
    if cmdline is not None:
        (root / "proc").mkdir(exist_ok=True)
        (root / "proc/cmdline").write_text(cmdline + "\n")
    return System(str(root))


@pytest.mark.parametrize("dmi, cmdline, found", [
    ({"sys_vendor": "OpenStack Foundation", "product_name": "OpenStack Nova"}, None,
     {"openstack", "ec2"}),
    ({"product_name": "OpenStack Compute"}, None, {"openstack", "ec2"}),
    ({"product_name": "KVM", "chassis_asset_tag": "OpenTelekomCloud"}, None,
     {"openstack", "ec2"}),
    ({"sys_vendor": "Amazon EC2", "product_name": "m5.large"}, None, {"ec2"}),
    ({"sys_vendor": "Xen", "product_uuid": "EC2E1916-9099-7CAF-FD21-012345ABCDEF"}, None,
     {"ec2"}),
    ({"sys_vendor": "Hetzner", "product_name": "vServer"}, None, {"hetzner"}),
    ({"sys_vendor": "QEMU", "product_serial": "ds=nocloud;s=http://10.0.2.2:8000/"}, None,
     {"nocloud-net"}),
    ({"sys_vendor": "QEMU"}, "root=/dev/vda1 ds=nocloud-net;s=https://seed.example/ quiet",
     {"nocloud-net"}),
    # a local seed is the local datasource's business, not a network source's
    ({"sys_vendor": "QEMU"}, "ds=nocloud;s=file:///srv/seed/", set()),
    ({"sys_vendor": "QEMU", "product_name": "Standard PC (Q35 + ICH9, 2009)"}, None, set()),
    ({"sys_vendor": "hetzner"}, None, set()),            # exactly as Hetzner writes it
    ({"product_name": "OpenStack Novae"}, None, set()),
    ({}, None, set()),
])
def test_evidence(root, dmi, cmdline, found):
    assert set(gather(machine(root, cmdline, **dmi))) == found


def test_no_dmi_at_all_is_said(root):
    assert describe_machine(System(str(root))) == "no DMI"
    assert describe_machine(machine(root, sys_vendor="QEMU", product_name="pc")) == \
        "DMI vendor 'QEMU', product 'pc'"
