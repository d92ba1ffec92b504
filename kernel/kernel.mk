# The one place where rtflex pins its kernel.
#
# Upstream release. Both build paths build exactly this release:
#  - offline (make): Debian's linux-source-<series> package (authenticated by
#    apt against Debian's signed archive), whose upstream version must be
#    LINUX_VERSION: any Debian revision of it is accepted, another release is
#    refused;
#  - kernel.org (Buildroot, or make with dl/linux-<version>.tar.xz present):
#    checked against kernel/patches/linux/linux.hash, the Buildroot-format
#    hash file that BR2_GLOBAL_PATCH_DIR makes Buildroot use too.
LINUX_VERSION := 7.2.13
LINUX_SERIES := $(word 1,$(subst ., ,$(LINUX_VERSION))).$(word 2,$(subst ., ,$(LINUX_VERSION)))

RTFLEX_KERNEL_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
LINUX_HASH_FILE := $(RTFLEX_KERNEL_DIR)/patches/linux/linux.hash
LINUX_TARBALL := linux-$(LINUX_VERSION).tar.xz

# Offline source: Debian's kernel source package (7.2.13 plus Debian's own
# patches), fetched with a private apt state from this suite.
LINUX_DEBIAN_PACKAGE := linux-source-$(LINUX_SERIES)
LINUX_DEBIAN_SUITE := sid
LINUX_DEBIAN_MIRROR := http://deb.debian.org/debian

# One kernel for every board (board/*): one zImage, each board boots it
# with its own device tree. Configuration = LINUX_DEFCONFIG + these
# fragments, merged in this order (later ones win); the Buildroot tree
# (buildroot-external/) uses the same defconfig and fragments.
LINUX_DEFCONFIG := multi_v7_defconfig
LINUX_FRAGMENTS := \
	$(RTFLEX_KERNEL_DIR)/configs/multi_v7-boards.config \
	$(RTFLEX_KERNEL_DIR)/configs/rt.config \
	$(RTFLEX_KERNEL_DIR)/configs/rust.config \
	$(RTFLEX_KERNEL_DIR)/configs/rtflex.config

# The LLVM toolchain the kernel (C and Rust) is built with.
LINUX_LLVM_SUFFIX := -19
