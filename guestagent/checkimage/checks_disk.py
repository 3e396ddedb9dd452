"""Disk checks: can the image grow into a bigger flavor's disk, and does it boot.

The guide: the image's partition table and filesystem describe the image's
original size, and at boot the root partition (or, with LVM, a new PV) and
the root filesystem must grow into the flavor's disk; one ext3/ext4 (or
XFS) partition without LVM is recommended, LVM where no growpart exists.
"""

import os
import re

from ..system.filesystems import GROWERS, NOT_ON_A_DISK
from .finding import failed, passed, warned

# mount points that may live on their own partition without blocking growth
_SIDE_MOUNTS = {"/boot", "/boot/efi", "/efi"}
_PARTITION_SPEC = re.compile(
    r"(UUID|PARTUUID|LABEL|PARTLABEL)=|/dev/(sd|vd|xvd|hd|nvme|mmcblk|disk/)")


def root_entry(image):
    """(spec, fstype, where) for ``/``: the live mount table, else /etc/fstab."""
    live = image.root_mount()
    if live:
        return live[0], live[1], "the mount table"
    for spec, mnt, fstype, _opts in image.fstab():
        if mnt == "/":
            return spec, fstype, "/etc/fstab"
    return None


def _fstab_root_spec(image):
    return next((spec for spec, mnt, _t, _o in image.fstab() if mnt == "/"), None)


def _is_lvm(spec):
    if spec.startswith("/dev/mapper/"):
        return True
    # /dev/VG/LV, but not /dev/disk/by-*/X
    return bool(re.fullmatch(r"/dev/[^/]+/[^/]+", spec)) and not spec.startswith("/dev/disk/")


def check_growpart(image):
    prog = image.program("growpart")
    if prog:
        return passed("growpart", f"growpart is installed in the image ({prog})")
    return failed("growpart",
                  "growpart is not in the image: the root partition cannot grow into a "
                  "bigger disk at boot",
                  f"install it: {image.install_cmd('growpart')}")


def check_resize_tools(image):
    entry = root_entry(image)
    fstype = entry[1] if entry else ""
    needed = [GROWERS[fstype][0]] if fstype in GROWERS else ["resize2fs"]
    if entry and _is_lvm(entry[0]):
        needed += ["pvresize", "lvextend", "parted"]
    missing = [p for p in needed if not image.program(p)]
    what = f"the {fstype} root" if fstype in GROWERS else "an ext root (root type unknown)"
    if missing:
        return failed("resize-tools",
                      f"missing in the image to grow {what}: {', '.join(missing)}",
                      f"install them: {image.install_cmd(*missing)}")
    return passed("resize-tools", f"{', '.join(needed)} present to grow {what}")


def check_root_filesystem(image):
    entry = root_entry(image)
    if entry is None:
        return warned("root-filesystem",
                      "no / entry in /etc/fstab: cannot tell the root filesystem's type "
                      "or layout (the kernel's root= alone decides)",
                      "add a / line to /etc/fstab, e.g. "
                      "'UUID=<uuid> / ext4 errors=remount-ro 0 1' (blkid shows the UUID)")
    spec, fstype, where = entry
    if image.live and fstype in NOT_ON_A_DISK:
        return warned("root-filesystem",
                      f"/ is {fstype} ({spec}) per {where}: not a disk image's root "
                      "(a container?); nothing to grow",
                      "run check-image on the image itself: mount it and use --root DIR")
    lvm = _is_lvm(spec)
    layout = "on LVM (grown by adding a partition as a new PV)" if lvm else "on a partition"
    if fstype not in GROWERS:
        return failed("root-filesystem",
                      f"/ is {fstype} on {spec} per {where}: the image guide expects one "
                      "ext3/ext4 (or XFS) root that can be grown at boot",
                      "rebuild the image with a single ext4 (or XFS) root partition, "
                      "or LVM with an ext4/XFS root LV")
    if fstype == "btrfs":
        return warned("root-filesystem",
                      f"/ is btrfs on {spec}: guestagent grows it, but the guide recommends "
                      "ext3/ext4 (Xen's auto_disk_config handles only ext3/ext4)",
                      "use ext4 or XFS if the image must also work with Xen's auto_disk_config")
    named = spec if where == "/etc/fstab" else _fstab_root_spec(image)
    if named and not lvm and re.match(r"/dev/(sd|vd|xvd|hd)[a-z]", named):
        return warned("root-filesystem",
                      f"/ is {fstype} on {named} per /etc/fstab: the device name depends on the "
                      "hypervisor's disk bus (vda on virtio, sda on SCSI, xvda on Xen)",
                      "refer to the root by UUID= or LABEL= in /etc/fstab and in the "
                      "boot loader (blkid shows them)")
    return passed("root-filesystem", f"/ is {fstype} {layout} ({spec}, per {where})")


def check_single_partition(image):
    others = []
    for spec, mnt, fstype, _opts in image.fstab():
        if mnt == "/" or mnt in _SIDE_MOUNTS or _is_lvm(spec):
            continue
        if _PARTITION_SPEC.match(spec):
            others.append(f"{mnt if fstype != 'swap' else 'swap'} ({spec})")
    if not others:
        what = "in /etc/fstab" if image.fstab() else "(/etc/fstab is empty or absent)"
        return passed("single-partition", f"no disk partition besides / and /boot {what}")
    return warned("single-partition",
                  f"other partitions in /etc/fstab: {', '.join(others)}; growpart grows "
                  "only into free space right after the root partition, so any partition "
                  "behind it blocks growth",
                  "keep / the last partition on the disk (swap in a file, or on LVM)")


def _kernel_versions(image):
    out = []
    for name in image.listdir("/boot"):
        m = re.fullmatch(r"(?:vmlinuz|vmlinux|bzImage|kernel)-(\S+)", name)
        if m:
            out.append(m.group(1))
    return out


def _older_than_3(version):
    m = re.match(r"(\d+)\.", version)
    return bool(m) and int(m.group(1)) < 3


def check_kernel(image):
    versions = _kernel_versions(image)
    if not versions and not image.exists("/vmlinuz") and not image.exists("/boot/vmlinuz"):
        return warned("kernel",
                      "no kernel in /boot: the image boots only with a kernel given "
                      "separately (a kernel_id / AKI image)",
                      f"install a kernel: {_kernel_install(image)}")
    old = [v for v in versions if _older_than_3(v)]
    if old:
        return warned("kernel",
                      f"kernel {', '.join(old)} predates Linux 3.0: on a paravirtual Xen "
                      "hypervisor it boots only if built with Xen (DomU) support",
                      "on Xen PV, use a kernel with Xen DomU support (or Linux 3.0 or newer)")
    shown = ", ".join(versions) if versions else "/vmlinuz"
    return passed("kernel", f"kernel in the image: {shown}")


def _kernel_install(image):
    if image.family == "rhel":
        return image.install_cmd("kernel")
    arch_pkg = "linux-image-cloud-amd64" if image.os_release.get("ID") == "debian" \
        else "linux-image-virtual"
    return image.install_cmd(arch_pkg)


# Below this much free space on / (what `df` shows), a first boot on a disk
# the image's own size runs out: systemd-random-seed and systemd-update-utmp
# write to / before any agent runs, then the agent's state, the user's home
# from /etc/skel, the host keys, the journal and logs.  Under LOW_SPACE
# (16 MiB) the agent grows the root before it writes anything: on a bigger
# disk that saves the boot, on a disk the image's size nothing does.
ROOT_SPACE_WARN = 64 << 20


def check_root_space(image):
    from ..system.disk_space import LOW_SPACE
    where = "/" if image.live else image.root
    if not image.live and not os.path.ismount(where):
        return passed("root-space", f"free space not measured: {image.root} is a directory, "
                      "not the image's root filesystem mounted there")
    try:
        st = os.statvfs(where)
    except OSError as e:
        return warned("root-space", f"cannot measure the free space on /: {e.strerror}",
                      "mount the image's root filesystem at DIR and check again")
    free = st.f_bavail * st.f_frsize
    shown = f"{free >> 20} MiB" if free >= 1 << 20 else f"{free >> 10} KiB"
    fix = (f"leave at least {ROOT_SPACE_WARN >> 20} MiB free on /: build the filesystem "
           "bigger, or remove what filled it")
    if st.f_files > 0 and st.f_favail == 0:
        return failed("root-space", "/ has no free inode: nothing can be created on a first "
                      "boot until the root grows", fix)
    if free < LOW_SPACE:
        return failed("root-space",
                      f"/ has only {shown} free: on a first boot systemd-random-seed and "
                      "systemd-update-utmp fail for want of space before the agent runs; "
                      "the agent grows the root before it writes anything, but on a disk "
                      "the image's own size nothing it writes fits (user, SSH key, host "
                      "keys)", fix)
    if free < ROOT_SPACE_WARN:
        return warned("root-space",
                      f"/ has only {shown} free: enough for a first boot that grows the "
                      "root into a bigger disk, tight on a disk the image's own size "
                      "(the journal, logs and packages fill it)", fix)
    return passed("root-space", f"/ has {shown} free")


CHECKS = [check_growpart, check_resize_tools, check_root_filesystem,
          check_single_partition, check_root_space, check_kernel]
