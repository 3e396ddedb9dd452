"""#cloud-config keys of the disk_setup step: their validators (see guestagent/schema)."""

from .checks import Bad, mapping_of_mappings


def check_disk_setup(value, notes=None):
    return mapping_of_mappings(value, "a mapping of devices to {table_type, layout, overwrite}")


def check_fs_setup(value, notes=None):
    if not isinstance(value, list):
        raise Bad("a list of {label, filesystem, device, partition, overwrite}")
    out = []
    for n, item in enumerate(value, 1):
        if not isinstance(item, dict) or not isinstance(item.get("device"), str) \
                or not isinstance(item.get("filesystem"), str):
            notes.append(f"#cloud-config fs_setup entry {n} needs a device and a "
                            "filesystem; skipped")
            continue
        out.append(dict(item))
    return out
