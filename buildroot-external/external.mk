# rtflex Buildroot external tree (name RTFLEX).
#
# Tested with exactly one Buildroot release: Rust, LLVM, U-Boot versions
# and the cargo package infrastructure change between releases.
RTFLEX_BUILDROOT_VERSION = 2026.05.1
ifneq ($(BR2_VERSION),$(RTFLEX_BUILDROOT_VERSION))
$(warning rtflex: this external tree is tested with Buildroot $(RTFLEX_BUILDROOT_VERSION), not $(BR2_VERSION); see $(BR2_EXTERNAL_RTFLEX_PATH)/README.md)
endif

include $(sort $(wildcard $(BR2_EXTERNAL_RTFLEX_PATH)/package/*/*.mk))

# Kernel config check, after Buildroot has merged the defconfig, our
# fragments and its own fixups: every line of every fragment listed in
# BR2_LINUX_KERNEL_CONFIG_FRAGMENT_FILES must be in the final .config, or
# the build stops naming the options that did not survive (Kconfig drops
# an option silently when its dependencies are not met, e.g. CONFIG_RUST
# when rustc or bindgen did not work at configure time). Hooks are expanded
# when the recipe runs, so adding one here (after linux.mk) works.
ifeq ($(BR2_LINUX_KERNEL),y)
ifneq ($(LINUX_KCONFIG_FRAGMENT_FILES),)
define RTFLEX_LINUX_CHECK_FRAGMENTS
	$(BR2_EXTERNAL_RTFLEX_PATH)/../scripts/check-kernel-config.sh \
		$(LINUX_DIR)/.config $(LINUX_KCONFIG_FRAGMENT_FILES)
endef
LINUX_POST_CONFIGURE_HOOKS += RTFLEX_LINUX_CHECK_FRAGMENTS
endif
endif

# The kernel's LLVM and Rust make flags (linux/linux-ext-rtflex-rust.mk)
# for the steps that build in the kernel tree: the kernel's build and
# installs, and those of every kernel module package (pkg-kernel-module
# adds <PKG>_KERNEL_MODULES_BUILD to its post-build hooks and builds the
# modules there and in a post-install hook). A target-specific value holds
# in these stamp files' recipes (and in those of their prerequisites, none
# of which builds from the kernel source); linux-tools and the other
# packages that reuse LINUX_MAKE_FLAGS for user space do not get it.
ifeq ($(BR2_LINUX_KERNEL_EXT_RTFLEX_RUST),y)
RTFLEX_KERNEL_TREE_PACKAGES = LINUX \
	$(foreach p,$(call UPPERCASE,$(PACKAGES)),$(if $(filter $(p)_KERNEL_MODULES_BUILD,$($(p)_POST_BUILD_HOOKS)),$(p)))
$(foreach p,$(RTFLEX_KERNEL_TREE_PACKAGES),$($(p)_TARGET_BUILD) $($(p)_TARGET_INSTALL_TARGET) $($(p)_TARGET_INSTALL_IMAGES)): \
	RTFLEX_KERNEL_TREE_BUILD = y
endif
