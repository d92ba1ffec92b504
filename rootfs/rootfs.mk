# Root file system: Debian armhf packages + rootfs/overlay + rt-apps.
ROOTFS_DEBIAN_SUITE := bookworm
ROOTFS_DEBIAN_ARCH := armhf
ROOTFS_DEBIAN_MIRROR := http://deb.debian.org/debian
ROOTFS_PACKAGES_FILE := $(TOP)/rootfs/debian-packages.txt
ROOTFS_OVERLAY := $(TOP)/rootfs/overlay
# Owners and modes set last (Buildroot makedevs format; Buildroot's
# defconfigs use the same file as a BR2_ROOTFS_DEVICE_TABLE).
ROOTFS_PERMISSIONS := $(TOP)/rootfs/permissions.txt
# ext4 root partition size; the SD image is rounded up to a power of two.
# (ROOTFS_OVERLAY, ROOTFS_PERMISSIONS and ROOTFS_SIZE are in the Buildroot
# defconfigs too, written from here by `make update-defconfigs`.)
ROOTFS_SIZE := 384M
