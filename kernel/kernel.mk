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
# fragments, merged in this order (later ones win). The Buildroot
# defconfigs (buildroot-external/configs/) repeat LINUX_VERSION,
# LINUX_DEFCONFIG and LINUX_FRAGMENTS, written from here by
# `make update-defconfigs`; `make test` fails while they differ.
LINUX_DEFCONFIG := multi_v7_defconfig
LINUX_FRAGMENTS := \
	$(RTFLEX_KERNEL_DIR)/configs/multi_v7-boards.config \
	$(RTFLEX_KERNEL_DIR)/configs/rt.config \
	$(RTFLEX_KERNEL_DIR)/configs/rust.config \
	$(RTFLEX_KERNEL_DIR)/configs/rtflex.config

# Kernel variants for testing (make KERNEL_VARIANT=<name> ...;
# docs/debug-kernel.md): the same sources and patches, these fragments
# merged after LINUX_FRAGMENTS, built in build/kernel-<name>/ with their
# own root file system and board outputs (build/<board>-<name>/). The
# quick path only; Buildroot builds the normal kernel.
#   debug  lockdep, atomic-sleep, DEBUG_VM, kmemleak, KFENCE, SLUB debug,
#          UBSAN, debug objects; Rust and FlexSC kept: the whole suite
#   kasan  debug + KASAN; without Rust (ARM cannot have both), so without
#          FlexSC and the Rust test module: their guest tests are skipped
KERNEL_VARIANTS := debug kasan
LINUX_VARIANT_FRAGMENTS_debug := $(RTFLEX_KERNEL_DIR)/configs/debug.config
LINUX_VARIANT_FRAGMENTS_kasan := $(LINUX_VARIANT_FRAGMENTS_debug) $(RTFLEX_KERNEL_DIR)/configs/kasan.config
# Guest tests a variant cannot run, counted as skipped (rtflex.skip syntax:
# a test binary name or shell pattern, or binary::test): every FlexSC test
# binary (flexsc*), the io_uring rows (uring: flexsc-bench, which stops on
# a kernel without FlexSC) and the Rust tests of tests/kernel.rs. Neither runs the
# latency comparison (rtlat): lockdep and the other checkers put their own
# latencies into it (seen: cyclictest's maximum beyond the 400 us
# histogram on the debug kernel), so it would measure the checkers.
# Nor the board smoke test (smoke): it probes FlexSC (absent on kasan),
# and its nested test run scans and clears kmemleak, which would hide the
# leaks of the tests before it. Nor servo's three tests that compare its
# control or its log with the simulated plant's motion (step response,
# direction reversal, every telemetry path): they need plant-sim to keep
# real time, and on these kernels one plant-sim step takes 1.1-1.4 ms of
# CPU (measured, its ten sysfs reads and edge writes; up to 0.96 s when
# io_uring ran beside it), so the encoder falls hundreds of counts behind
# the motor, a late step jumps the home window, and servo rightly faults
# or the plant's trace has too few commands to compare. servo's other
# tests run there (outputs safe after SIGTERM, a panic, encoder loss; bad
# input); the log paths' kernel side runs in the lab test (io_uring) and,
# on debug, the flexsc tests.
LINUX_VARIANT_SERVO_SKIP := servo::step_response_reaches_the_setpoint_and_settles_with_bounded_overshoot \
	servo::direction_reversal_reaches_both_targets \
	servo::every_log_path_gives_complete_ordered_records_that_match_the_plant
LINUX_VARIANT_GUEST_SKIP_debug := rtlat smoke $(LINUX_VARIANT_SERVO_SKIP)
LINUX_VARIANT_GUEST_SKIP_kasan := rtlat smoke flexsc* uring kernel::rust_module_loads_and_unloads kernel::kernel_has_rust \
	$(LINUX_VARIANT_SERVO_SKIP)
# Extra kernel command line for guest runs: every KASAN report, not only
# the first (by default KASAN reports once, so a boot-time report would
# hide the ones the tests cause).
LINUX_VARIANT_CMDLINE_kasan := kasan_multi_shot
# Guest run timeout factor (scripts/rtflex test --timeout-factor), see
# docs/debug-kernel.md: generic KASAN alone is "~x3" (its Kconfig help),
# lockdep, kmemleak, SLUB debugging and UBSAN add to it on the same
# kernel-bound paths, and QEMU -icount runs guest instructions in
# proportion; 4 x the normal 900 s still leaves a wide margin over the
# measured normal run (30-40 s) slowed down tenfold.
LINUX_VARIANT_TIMEOUT_FACTOR_debug := 4
LINUX_VARIANT_TIMEOUT_FACTOR_kasan := 4

# The LLVM toolchain the kernel (C and Rust) is built with.
LINUX_LLVM_SUFFIX := -19
