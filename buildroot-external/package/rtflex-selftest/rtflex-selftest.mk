################################################################################
#
# rtflex-selftest
#
################################################################################

RTFLEX_SELFTEST_VERSION = 0.1.0
RTFLEX_SELFTEST_SITE = $(BR2_EXTERNAL_RTFLEX_PATH)/../kernel/modules/rtflex_selftest
RTFLEX_SELFTEST_SITE_METHOD = local
RTFLEX_SELFTEST_LICENSE = GPL-2.0

# Built with the kernel's make flags, so with LLVM and Rust as the kernel
# (linux/linux-ext-rtflex-rust.mk). The guest tests load it from extra/.
RTFLEX_SELFTEST_MODULE_MAKE_OPTS = INSTALL_MOD_DIR=extra

$(eval $(kernel-module))
$(eval $(generic-package))
