################################################################################
#
# rtflex-rust: Rust for Linux toolchain for the kernel build
#
################################################################################

# Included by linux/linux.mk before the kernel package is evaluated, so the
# dependency lists below are still taken into account (external.mk comes
# too late for them). The variables are the kernel's (LINUX_*), hence the
# check-package exceptions.

# What the kernel build needs for LLVM and Rust.
RTFLEX_RUST_LINUX_DEPENDENCIES = \
	host-rustc \
	host-rust-bindgen \
	host-rtflex-rust-src \
	host-clang \
	host-lld \
	host-llvm

ifeq ($(BR2_LINUX_KERNEL_EXT_RTFLEX_RUST),y)

# The kernel needs the library sources of exactly the rustc it is built
# with; host-rtflex-rust-src takes them from the rustc-$(RUST_VERSION)
# source tarball (package/rust), so host-rust-bin must be the same release.
ifeq ($(BR2_PACKAGE_HOST_RUST_BIN),y)
ifneq ($(RUST_BIN_VERSION),$(RUST_VERSION))
$(error rtflex: host-rust-bin is $(RUST_BIN_VERSION) but package/rust is $(RUST_VERSION): rust-src would not match rustc)
endif
endif

# Kconfig runs scripts/rust_is_available.sh and probes the compiler and
# linker (CC_IS_CLANG, LD_IS_LLD, RUSTC_VERSION...): the tools must exist
# before the kernel is configured, not only before it is built.
# check-package disable TypoInPackageVariable
LINUX_KCONFIG_DEPENDENCIES += $(RTFLEX_RUST_LINUX_DEPENDENCIES)
# check-package disable TypoInPackageVariable
LINUX_DEPENDENCIES += $(RTFLEX_RUST_LINUX_DEPENDENCIES)

# LLVM=<dir>/ selects clang, ld.lld, llvm-ar, llvm-nm, llvm-objcopy...
# from $(HOST_DIR)/bin. CROSS_COMPILE is emptied (the last assignment on
# the make command line wins) so that clang gets the kernel's own
# --target=arm-linux-gnueabi, as in the quick path, instead of one derived
# from the Buildroot tuple. Buildroot's HOSTCC carries flags
# ("gcc -O2 -isystem ... -L..."), which the kernel passes to rustc as
# -Clinker=$(HOSTCC) for host Rust code (the macros proc-macro crate):
# give the kernel a bare HOSTCC and the flags in HOSTCFLAGS/HOSTLDFLAGS.
RTFLEX_RUST_LINUX_MAKE_FLAGS = \
	LLVM=$(HOST_DIR)/bin/ \
	CROSS_COMPILE= \
	HOSTCC="$(HOSTCC_NOCCACHE)" \
	HOSTCFLAGS="$(subst -I/,-isystem /,$(subst -I /,-isystem /,$(HOST_CFLAGS)))" \
	HOSTLDFLAGS="$(HOST_LDFLAGS)" \
	RUSTC=$(HOST_DIR)/bin/rustc \
	HOSTRUSTC=$(HOST_DIR)/bin/rustc \
	BINDGEN=$(HOST_DIR)/bin/bindgen \
	RUST_LIB_SRC=$(HOST_DIR)/lib/rustlib/src/rust/library

# Only builds in the kernel tree get them: the kernel itself and kernel
# modules (which must use the kernel's compiler). Packages that build user
# space programs from the kernel source (linux-tools: perf, rtla,
# selftests; ltp-testsuite, ...) take LINUX_MAKE_FLAGS too, and with LLVM=
# and an empty CROSS_COMPILE they would build for the host. So the flags
# are in LINUX_MAKE_FLAGS only where RTFLEX_KERNEL_TREE_BUILD is set:
# external.mk sets it, target-specific, on the build and install steps of
# linux and of the kernel module packages. Every Kconfig run (configure,
# olddefconfig, menuconfig...) goes through LINUX_KCONFIG_OPTS, which only
# the kernel uses: it gets them always (CONFIG_RUST and the compiler
# options are decided there).
# check-package disable TypoInPackageVariable
LINUX_MAKE_FLAGS += $(if $(RTFLEX_KERNEL_TREE_BUILD),$(RTFLEX_RUST_LINUX_MAKE_FLAGS))
# check-package disable TypoInPackageVariable
LINUX_KCONFIG_OPTS += $(RTFLEX_RUST_LINUX_MAKE_FLAGS)

# bindgen loads libclang at run time: use host-clang's. (Only kernel tree
# builds use LINUX_MAKE_ENV.)
# check-package disable TypoInPackageVariable
LINUX_MAKE_ENV += LIBCLANG_PATH=$(HOST_DIR)/lib

# linux.mk adds this gcc-only warning option to KCFLAGS when the (gcc)
# toolchain is gcc >= 8; clang rejects unknown warning options in the
# kernel's cc-option probes.
# check-package disable TypoInPackageVariable
LINUX_CFLAGS := $(filter-out -Wno-attribute-alias,$(LINUX_CFLAGS))

endif
