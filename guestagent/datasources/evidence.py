"""What the machine itself says about where it runs, read before any request.

As cloud-init's ds-identify does: the DMI strings clouds set (read under the
root, from /sys/class/dmi/id), the kernel command line, and NoCloud's
``ds=nocloud;...`` argument (kernel command line, else the DMI system serial
number, which Proxmox and libvirt set with ``-smbios type=1,serial=...``).
Filesystem labels and seed directories are the local datasources' own
business: they are tried first, and a network source is only considered
once they have all said "not here".

The evidence decides how long the search may wait (datasources.search):
evidence of a cloud gets the full deadline, no evidence a short probe.
"""

import re

DMI = "/sys/class/dmi/id"
# ds-identify's dscheck_OpenStack: Nova's product names, and the chassis
# asset tags of OpenStack clouds that rename the product
OPENSTACK_PRODUCTS = ("OpenStack Nova", "OpenStack Compute")
OPENSTACK_ASSET_TAGS = ("OpenTelekomCloud", "SAP CCloud VM", "HUAWEICLOUD")
HETZNER_VENDOR = "Hetzner"
# NoCloud's short keys (cloud-init's parse_cmdline_data)
_DS_KEYS = {"h": "local-hostname", "local-hostname": "local-hostname",
            "i": "instance-id", "instance-id": "instance-id",
            "s": "seedfrom", "seedfrom": "seedfrom"}
_DS = re.compile(r"(?:^|\s)ds=(nocloud(?:-net)?)(;\S*)?(?=\s|$)")


def dmi(system, field):
    """A DMI string ('' when absent or unreadable)."""
    try:
        return system.read_text(f"{DMI}/{field}").strip()
    except (OSError, ValueError):
        return ""


class NoCloudArgument:
    """``ds=nocloud[-net];key=value;...`` as given: ``name`` (nocloud or
    nocloud-net), ``seedfrom`` (a URL or path, '' when none), ``meta``
    (local-hostname and instance-id given on the line) and ``where`` (the
    kernel command line or the DMI serial number)."""

    def __init__(self, name, seedfrom, meta, where):
        self.name = name
        self.seedfrom = seedfrom
        self.meta = meta
        self.where = where

    @property
    def over_network(self):
        return self.seedfrom.lower().startswith(("http://", "https://"))


def parse_nocloud_argument(text, where):
    """The first ``ds=nocloud...`` in ``text`` as a NoCloudArgument, or None."""
    m = _DS.search(text or "")
    if not m:
        return None
    meta, seedfrom = {}, ""
    for pair in (m.group(2) or "").split(";"):
        key, sep, value = pair.partition("=")
        key = _DS_KEYS.get(key.strip())
        if not sep or key is None:
            continue
        if key == "seedfrom":
            seedfrom = value.strip()
        else:
            meta[key] = value.strip()
    return NoCloudArgument(m.group(1), seedfrom, meta, where)


def nocloud_argument(system):
    """NoCloud's argument from the kernel command line, else the DMI serial."""
    return (parse_nocloud_argument(system.kernel_cmdline(), "the kernel command line")
            or parse_nocloud_argument(dmi(system, "product_serial"),
                                      "the DMI system serial number"))


def gather(system):
    """{datasource name: why it may be there}, for the network datasources,
    from DMI and the kernel command line only (no device, no request)."""
    found = {}
    vendor = dmi(system, "sys_vendor")
    product = dmi(system, "product_name")
    tag = dmi(system, "chassis_asset_tag")
    if product in OPENSTACK_PRODUCTS or tag in OPENSTACK_ASSET_TAGS:
        why = (f"DMI product name {product!r}" if product in OPENSTACK_PRODUCTS
               else f"DMI chassis asset tag {tag!r}")
        found["openstack"] = why
        found["ec2"] = why + " (Nova serves the EC2 tree too)"
    if vendor == "Amazon EC2" or dmi(system, "product_uuid").lower().startswith("ec2"):
        found.setdefault("ec2", f"DMI system vendor {vendor!r}" if vendor == "Amazon EC2"
                         else "a DMI system UUID starting with ec2")
    if vendor == HETZNER_VENDOR:
        found["hetzner"] = f"DMI system vendor {vendor!r}"
    arg = nocloud_argument(system)
    if arg is not None and arg.over_network:
        found["nocloud-net"] = f"ds={arg.name} with a seed URL on {arg.where}"
    return found


def describe_machine(system):
    """A few words on what the DMI says, for the stand-aside line."""
    vendor = dmi(system, "sys_vendor")
    product = dmi(system, "product_name")
    if not vendor and not product:
        return "no DMI"
    return f"DMI vendor {vendor!r}, product {product!r}"
