################################################################################
#
# rtflex-selftest
#
################################################################################

RTFLEX_SELFTEST_VERSION = 0.1.0
# The repository top, of which only the module and the license are copied.
RTFLEX_SELFTEST_SITE = $(BR2_EXTERNAL_RTFLEX_PATH)/..
RTFLEX_SELFTEST_SITE_METHOD = local
RTFLEX_SELFTEST_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = \
	--include=/kernel/ \
	--include=/kernel/modules/ \
	--include=/kernel/modules/rtflex_selftest/*** \
	--include=/LICENSE \
	--include=/LICENSES/*** \
	--exclude=*
RTFLEX_SELFTEST_MODULE_SUBDIRS = kernel/modules/rtflex_selftest
# ../LICENSE: SPDX GPL-2.0-only OR MIT (Buildroot writes "or").
RTFLEX_SELFTEST_LICENSE = GPL-2.0-only or MIT
RTFLEX_SELFTEST_LICENSE_FILES = LICENSE LICENSES/GPL-2.0-only.txt LICENSES/MIT.txt

# Built with the kernel's make flags, so with LLVM and Rust as the kernel
# (linux/linux-ext-rtflex-rust.mk). The guest tests load it from extra/.
RTFLEX_SELFTEST_MODULE_MAKE_OPTS = INSTALL_MOD_DIR=extra

$(eval $(kernel-module))
$(eval $(generic-package))
