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

# fstype -> what to run on the mount point once it has grown, so that the grow
# is on the disk in place and not only in the filesystem's log.  XFS logs a
# growfs and writes the new primary superblock in place only later; a power
# cut before then makes the next mount recover the growfs together with what
# followed it in the new allocation groups, which Linux got wrong before 6.12
# ("fix recovery of allocator ops after a growfs", linux-xfs, October 2024).
# On Debian 12's 6.1 the sweep's seed 12 xfs-cut1 left "imap claims in-use
# inode ... is free" twice (docs/e2e.md).  A freeze writes everything in place
# and empties the log, so no later recovery meets the growfs; the thaw follows
# at once in the same process, so no path leaves the root frozen.
SETTLE_AFTER_GROWING = {
    "xfs": ("xfs_io", lambda mp: ["xfs_io", "-x", "-c", "freeze", "-c", "thaw", mp]),
}
