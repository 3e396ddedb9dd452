"""Filesystem types: which ones grow in place and with which tool, and which
never live on a disk of ours.  One table for the growroot step and for
check-image, so what the image is checked for is what the boot does.
"""

# Filesystems that live on no block device of ours or cannot grow in place.
NOT_ON_A_DISK = {"overlay", "tmpfs", "ramfs", "rootfs", "squashfs", "erofs", "nfs",
                 "nfs4", "cifs", "smb3", "9p", "virtiofs", "fuse", "fuseblk", "iso9660",
                 "zfs", "aufs", "devtmpfs", "proc", "sysfs"}
# fstype -> (tool, how to run it: on the device or on the mount point)
GROWERS = {
    "ext2": ("resize2fs", lambda dev, mp: ["resize2fs", dev]),
    "ext3": ("resize2fs", lambda dev, mp: ["resize2fs", dev]),
    "ext4": ("resize2fs", lambda dev, mp: ["resize2fs", dev]),
    "xfs": ("xfs_growfs", lambda dev, mp: ["xfs_growfs", mp]),
    "btrfs": ("btrfs", lambda dev, mp: ["btrfs", "filesystem", "resize", "max", mp]),
}
