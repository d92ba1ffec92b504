################################################################################
#
# rtflex-rust-src
#
################################################################################

# The Rust standard library sources ("rust-src") that the kernel compiles
# core and alloc from (RUST_LIB_SRC). They must be of exactly the rustc
# release Buildroot provides, so take them from the very tarball
# package/rust builds rustc from, with the same hash.
RTFLEX_RUST_SRC_VERSION = $(RUST_VERSION)
RTFLEX_RUST_SRC_SITE = $(RUST_SITE)
RTFLEX_RUST_SRC_SOURCE = rustc-$(RTFLEX_RUST_SRC_VERSION)-src.tar.xz
# Shared with package/rust: one download for both.
RTFLEX_RUST_SRC_DL_SUBDIR = rust
RTFLEX_RUST_SRC_LICENSE = Apache-2.0 or MIT
RTFLEX_RUST_SRC_LICENSE_FILES = LICENSE-APACHE LICENSE-MIT

# Only to check below that rustc is the same release.
HOST_RTFLEX_RUST_SRC_DEPENDENCIES = host-rustc

# The tarball is large (the whole compiler): unpack only library/ and the
# licenses.
define HOST_RTFLEX_RUST_SRC_EXTRACT_CMDS
	$(call suitable-extractor,$(RTFLEX_RUST_SRC_SOURCE)) \
		$(HOST_RTFLEX_RUST_SRC_DL_DIR)/$(RTFLEX_RUST_SRC_SOURCE) | \
		$(TAR) --strip-components=1 -C $(@D) $(TAR_OPTIONS) - \
			rustc-$(RTFLEX_RUST_SRC_VERSION)-src/library \
			rustc-$(RTFLEX_RUST_SRC_VERSION)-src/LICENSE-APACHE \
			rustc-$(RTFLEX_RUST_SRC_VERSION)-src/LICENSE-MIT
endef

# Where rustup's rust-src component puts it too: the kernel's default
# RUST_LIB_SRC is $(rustc --print sysroot)/lib/rustlib/src/rust/library,
# and host-rustc's sysroot is $(HOST_DIR).
define HOST_RTFLEX_RUST_SRC_INSTALL_CMDS
	rm -rf $(HOST_DIR)/lib/rustlib/src/rust/library
	mkdir -p $(HOST_DIR)/lib/rustlib/src/rust
	cp -a $(@D)/library $(HOST_DIR)/lib/rustlib/src/rust/library
endef

define HOST_RTFLEX_RUST_SRC_CHECK_RUSTC_VERSION
	$(Q)$(HOST_DIR)/bin/rustc --version | grep -q '^rustc $(RTFLEX_RUST_SRC_VERSION) ' || { \
		echo "rust-src $(RTFLEX_RUST_SRC_VERSION) does not match $$($(HOST_DIR)/bin/rustc --version)" >&2; \
		exit 1; }
endef
HOST_RTFLEX_RUST_SRC_POST_INSTALL_HOOKS += HOST_RTFLEX_RUST_SRC_CHECK_RUSTC_VERSION

$(eval $(host-generic-package))
