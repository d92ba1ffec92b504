# rtflex: PREEMPT_RT Linux 7.2 images for ARM boards, built offline.
#
#   make                  build everything for $(BOARD), boot it in QEMU and
#                         compare rtlat with cyclictest
#   make test             host tests + guest tests in the booted image
#   make qemu             boot the image with an interactive console
#   make help             everything else
#
# BOARD selects a directory under board/ (default: qemu-vexpress-a9).
# KERNEL_VARIANT=debug or kasan builds and tests a debug kernel instead
# (docs/debug-kernel.md), with its own outputs.

BOARD ?= qemu-vexpress-a9
TOP := $(CURDIR)
BUILD := $(TOP)/build
DL := $(TOP)/dl

BOARDS := $(sort $(patsubst board/%/board.mk,%,$(wildcard board/*/board.mk)))
ifeq ($(filter $(BOARD),$(BOARDS)),)
$(error Unknown BOARD '$(BOARD)'. Known boards: $(BOARDS). Example: make BOARD=$(firstword $(BOARDS)))
endif
BOARD_DIR := $(TOP)/board/$(BOARD)
include $(BOARD_DIR)/board.mk
include $(TOP)/kernel/kernel.mk
include $(TOP)/kernel/lab-variants.mk

export PATH := $(HOME)/.cargo/bin:$(PATH)
SHELL := /bin/bash

RUST_TARGET := armv7-unknown-linux-gnueabihf
# Debian's cross compiler for C user space (cargo links with it too,
# .cargo/config.toml): rtla.
CROSS_TRIPLE := arm-linux-gnueabihf
CARGO ?= cargo

# Kernel variant (kernel/kernel.mk KERNEL_VARIANTS): empty for the normal
# kernel. A variant has its own kernel build, root file system (its
# modules) and board outputs, all suffixed -<variant>, so the normal and
# the variant builds never rebuild or overwrite each other.
KERNEL_VARIANT ?=
ifneq ($(KERNEL_VARIANT),)
ifeq ($(filter $(KERNEL_VARIANT),$(KERNEL_VARIANTS)),)
$(error Unknown KERNEL_VARIANT '$(KERNEL_VARIANT)'. Known variants: $(KERNEL_VARIANTS) (or none: the normal kernel))
endif
VARIANT_SUFFIX := -$(KERNEL_VARIANT)
endif
KERNEL_FRAGMENTS := $(LINUX_FRAGMENTS) $(LINUX_VARIANT_FRAGMENTS_$(KERNEL_VARIANT))

B := $(BUILD)/$(BOARD)$(VARIANT_SUFFIX)
LINUX_SRC := $(BUILD)/linux-$(LINUX_VERSION)
# One kernel build for every board (kernel/kernel.mk).
LINUX_OBJ := $(BUILD)/kernel$(VARIANT_SUFFIX)
LINUX_PATCHES := $(sort $(wildcard kernel/patches/linux/*.patch)) $(wildcard kernel/patches/linux/series)
KERNEL_MODULES := $(sort $(wildcard kernel/modules/*))
ZIMAGE := $(LINUX_OBJ)/arch/arm/boot/zImage
DTB := $(LINUX_OBJ)/arch/arm/boot/dts/$(BOARD_DTB)
# One root file system for every board (build/rootfs/): the same recipe for
# a kernel variant, with that kernel's modules, in build/rootfs-<variant>/.
ROOTFS_DIR := $(BUILD)/rootfs$(VARIANT_SUFFIX)
ROOTFS_IMG := $(ROOTFS_DIR)/rootfs.ext4
# The host tool (tools/rtflex): board facts, generated files, checks.
PYTHON_TOOLS := PYTHONPATH=$(TOP)/tools python3
# Generated from board.mk (tools/rtflex/generate.py): genimage.cfg (the SD
# card layout, from the board's genimage.cfg.in) and, for boards with
# U-Boot, extlinux.conf.
BOOT_CONFIG := $(B)/boot-config
IMAGE_DTBS := $(addprefix $(LINUX_OBJ)/arch/arm/boot/dts/,$(BOARD_DTBS))
SDCARD := $(B)/sdcard.img
RT_APPS_OUT := $(TOP)/target/$(RUST_TARGET)/release
# The host tool (tools/rtflex, scripts/rtflex): guest runs, image checks.
RTFLEX := scripts/rtflex
# (No --dtb for a board QEMU boots through U-Boot: it has no BOARD_DTB.)
GUEST_ARGS := --board $(BOARD) --build-dir $(B) --kernel $(ZIMAGE) $(if $(BOARD_DTB),--dtb $(DTB)) --sdcard $(SDCARD)
TEST_ARGS :=
ifneq ($(KERNEL_VARIANT),)
# Debug kernels: more time and the variant's command line; for the tests,
# boot-time reports are a baseline, kmemleak and lockdep must be working,
# and the variant's skips.
GUEST_ARGS += --timeout-factor $(or $(LINUX_VARIANT_TIMEOUT_FACTOR_$(KERNEL_VARIANT)),1) \
	$(addprefix --append ,$(LINUX_VARIANT_CMDLINE_$(KERNEL_VARIANT)))
TEST_ARGS += --debug-kernel $(foreach s,$(LINUX_VARIANT_GUEST_SKIP_$(KERNEL_VARIANT)),--skip '$(s)')
endif
# Host test log of `make test` (one per kernel variant).
HOST_LOG := $(BUILD)/host-test$(VARIANT_SUFFIX).log
HOST_RC := $(BUILD)/host-test$(VARIANT_SUFFIX).rc
# Tests of the host tool (tools/rtflex/tests, pytest: Debian's pytest-3,
# installed by make deps), and the check that the committed Buildroot
# defconfigs hold the board and kernel facts (tools/rtflex/generate.py).
TOOL_TESTS := pytest-3 -p no:cacheprovider tools/rtflex/tests
GENERATED_CHECK := $(PYTHON_TOOLS) -m rtflex.generate check
# shellcheck of every shell script.
CHECK_SHELL := scripts/check-shell.sh

.PHONY: all
all: image compare

.PHONY: help
help:
	@sed -n 's/^#   \{0,1\}//p' Makefile | head -n 12
	@echo
	@echo "Other targets:"
	@echo "  deps          install host dependencies (apt packages, Rust target, bindgen)"
	@echo "  kernel        configure and build the kernel ($(LINUX_VERSION), $(LINUX_DEFCONFIG) + kernel/configs/*)"
	@echo "  kernel-config configure the kernel and check the fragments survived, no build (seconds)"
	@echo "  KERNEL_VARIANT=debug|kasan <target>  the same targets (test, guest-test, image, kernel, qemu)"
	@echo "                on a debug kernel: lockdep, KASAN (kasan: without Rust/FlexSC), kmemleak, UBSAN, ...;"
	@echo "                outputs in build/kernel-<variant>, build/<board>-<variant> (docs/debug-kernel.md);"
	@echo "                run 'make KERNEL_VARIANT=debug test' and '... kasan test' before every kernel change"
	@echo "  rt-apps       cross-build the Rust apps and guest test binaries"
	@echo "  rtla          cross-build rtla (timerlat) from the kernel source against Debian's libtracefs"
	@echo "  rootfs        assemble the Debian armhf root file system"
	@echo "  image         make $(SDCARD:$(TOP)/%=%)"
	@echo "  compare       boot, run rtlat and cyclictest, print the comparison"
	@echo "  bench         boot with 1 and 2 vCPUs: svc vs the KML trampoline (kml-bench),"
	@echo "                FlexSC vs direct syscalls (flexsc-bench, rtlat with I/O per cycle);"
	@echo "                report in build/$(BOARD)/bench/report.md (several vCPUs run without"
	@echo "                -icount, host-timed, unless BENCH_ICOUNT=on)"
	@echo "  profile       instructions per call of a FlexSC batch, by function (two boots with"
	@echo "                the tbcount QEMU plugin; PROFILE_PROTOCOL, PROFILE_BATCH, PROFILE_CALLS)"
	@echo "  bench-control the control app (servo) at 1 kHz against plant-sim per --log-via,"
	@echo "                idle, with an SD-card writer and with hackbench;"
	@echo "                report in build/$(BOARD)/bench-control/report.md"
	@echo "  lab           the latency lab (docs/latency-lab.md): per kernel variant (LAB_VARIANTS,"
	@echo "                default rt rt-nofeatures nonrt rt-tuned) boot under -icount and run every"
	@echo "                load x tool cell (LAB_LOADS, LAB_TOOLS; LAB_DURATION=s or LAB_LOOPS=n per"
	@echo "                cell, LAB_SMP=n vCPUs (more than 1: no -icount unless LAB_ICOUNT=on);"
	@echo "                LAB_JOBS=n variants at once, default one per host"
	@echo "                CPU); bundles and report in build/$(BOARD)/lab/"
	@echo "  lab-report    BUNDLE='bundle or directory ...': the lab report (Markdown, HTML, plots)"
	@echo "  lava-jobs     LAVA_BASE_URL=<url>: the LAVA job of every board (board farms, docs/lava.md)"
	@echo "                into build/lava/jobs/ (LAVA_LAB_OPTIONS: the lab's options, default --quick)"
	@echo "  lava-run      the board's LAVA job end to end here with Debian's lava-dispatcher (root;"
	@echo "                QEMU boards; LAVA_RUN_OPTIONS); log and bundle in build/$(BOARD)/lava/"
	@echo "  fuzz          boot and run the system call fuzzer (472-474, FlexSC pages, the KML"
	@echo "                entry) for FUZZ_SECONDS (default 600; FUZZ_SEED=<seed> repeats a run)"
	@echo "  host-test     cargo test (armv7 binaries under qemu-user), unit tests of scripts/"
	@echo "  guest-test    boot in test mode and run the guest tests"
	@echo "  image-test    SD card layout checks of the board's image"
	@echo "  test-all      what CI runs: make test on qemu-vexpress-a9, image-test on every"
	@echo "                board, guest-test on every other board QEMU boots"
	@echo "  check-patches checkpatch and commit-message checks of kernel/patches/linux"
	@echo "  check-uapi    rt-apps/rtflex-uapi against the patched kernel's headers and syscall table"
	@echo "  check-kml-lockdown  Kconfig: the lockdown LSM turns Kernel Mode Linux off"
	@echo "  kernel-clippy the kernel's Rust (kernel crates, FlexSC, kernel/modules) built with CLIPPY=1"
	@echo "  lint          cargo clippy -D warnings: armv7 with the test features, and the build host"
	@echo "  check-buildroot BUILDROOT=<dir>  Buildroot's checks of buildroot-external/"
	@echo "  check-shell   shellcheck of every shell script"
	@echo "  update-defconfigs  write board.mk/kernel.mk/rootfs.mk facts into the Buildroot defconfigs"
	@echo "  kernel-dev    the kernel with our patches as git commits, in build/kernel-dev/linux"
	@echo "  kernel-export write those commits back to kernel/patches/linux (git format-patch)"
	@echo "  boards        list the boards"
	@echo "  clean         remove build/ and target/ (keeps dl/ downloads)"
	@echo
	@echo "Boards: $(BOARDS)   (current: $(BOARD))"

.PHONY: boards
boards:
	@$(PYTHON_TOOLS) -m rtflex.board list

# ---- host dependencies -------------------------------------------------------
# setup-host.sh also installs the host packages boards name in board.mk
# (e.g. BOARD_QEMU_UBOOT_PACKAGE), so a change to either re-runs it.
DEPS_INPUTS := scripts/setup-host.sh $(wildcard board/*/board.mk)
DEPS_STAMP := $(BUILD)/.deps-$(shell cat $(DEPS_INPUTS) | cksum | cut -d' ' -f1)
$(DEPS_STAMP): $(DEPS_INPUTS)
	scripts/setup-host.sh
	@mkdir -p $(BUILD) && rm -f $(BUILD)/.deps-* && touch $@
.PHONY: deps
deps:
	scripts/setup-host.sh

# ---- kernel ------------------------------------------------------------------
$(LINUX_SRC)/.rtflex-stamp: $(LINUX_HASH_FILE) $(LINUX_PATCHES) scripts/get-kernel-source.sh | $(DEPS_STAMP)
	scripts/get-kernel-source.sh --version $(LINUX_VERSION) --hash-file $(LINUX_HASH_FILE) \
		--debian-package $(LINUX_DEBIAN_PACKAGE) --debian-suite $(LINUX_DEBIAN_SUITE) \
		--mirror $(LINUX_DEBIAN_MIRROR) --patch-dir $(TOP)/kernel/patches/linux --download-dir $(DL) \
		--out $(LINUX_SRC)
	touch $@
.PHONY: kernel-source
kernel-source: $(LINUX_SRC)/.rtflex-stamp

KERNEL_STAMP := $(LINUX_OBJ)/.rtflex-stamp
BUILD_KERNEL_ARGS := --src $(LINUX_SRC) --obj $(LINUX_OBJ) --defconfig $(LINUX_DEFCONFIG) \
	--llvm-suffix $(LINUX_LLVM_SUFFIX) $(addprefix --fragment ,$(KERNEL_FRAGMENTS))
$(KERNEL_STAMP): $(LINUX_SRC)/.rtflex-stamp $(KERNEL_FRAGMENTS) kernel/kernel.mk \
		scripts/build-kernel.sh scripts/check-kernel-config.sh $(shell find kernel/modules -type f)
	scripts/build-kernel.sh $(BUILD_KERNEL_ARGS) $(addprefix --module ,$(KERNEL_MODULES))
	touch $@
.PHONY: kernel
kernel: $(KERNEL_STAMP)
# Configuration only (seconds): defconfig + fragments, olddefconfig, and the
# check that every fragment option survived; nothing is compiled.
.PHONY: kernel-config
kernel-config: $(LINUX_SRC)/.rtflex-stamp
	scripts/build-kernel.sh $(BUILD_KERNEL_ARGS) --config-only

# ---- user space --------------------------------------------------------------
APPS_STAGING := $(ROOTFS_DIR)/staging/apps
.PHONY: rt-apps
rt-apps: | $(DEPS_STAMP)
	scripts/build-rt-apps.sh --target $(RUST_TARGET) --staging $(APPS_STAGING) --linux-version $(LINUX_VERSION)

# rtla (timerlat, osnoise): the kernel's own tools/tracing/rtla, read from
# the patched source tree, cross-built against Debian's libtracefs and
# libtraceevent (scripts/build-rtla.sh); the root file system has their
# libraries (rootfs/debian-packages.txt). Needs the kernel source only,
# never a kernel build.
RTLA_DIR := $(BUILD)/rtla
RTLA_STAGING := $(RTLA_DIR)/staging
RTLA_STAMP := $(RTLA_DIR)/.rtflex-stamp
$(RTLA_STAMP): $(LINUX_SRC)/.rtflex-stamp scripts/build-rtla.sh scripts/lib.sh rootfs/rootfs.mk | $(DEPS_STAMP)
	scripts/build-rtla.sh --src $(LINUX_SRC) --version $(LINUX_VERSION) --cross $(CROSS_TRIPLE) \
		--suite $(ROOTFS_DEBIAN_SUITE) --arch $(ROOTFS_DEBIAN_ARCH) --mirror $(ROOTFS_DEBIAN_MIRROR) \
		--download-dir $(DL) --out $(RTLA_DIR) --staging $(RTLA_STAGING)
	touch $@
.PHONY: rtla
rtla: $(RTLA_STAMP)

# Kernel modules (in-tree and ours) for the root file system, merged /usr.
MODULES_STAGING := $(ROOTFS_DIR)/staging/modules
.PHONY: modules-staging
modules-staging: $(KERNEL_STAMP)
	rm -rf $(MODULES_STAGING) && mkdir -p $(MODULES_STAGING)/usr/lib
	rel=$$(cat $(LINUX_OBJ)/include/config/kernel.release) && \
	if [ -d $(LINUX_OBJ)/modules-install/lib/modules ]; then \
		cp -a $(LINUX_OBJ)/modules-install/lib/modules $(MODULES_STAGING)/usr/lib/; fi && \
	mkdir -p $(MODULES_STAGING)/usr/lib/modules/$$rel/extra && \
	find $(LINUX_OBJ)/extmod -name '*.ko' -exec install -m 0644 {} $(MODULES_STAGING)/usr/lib/modules/$$rel/extra/ \; && \
	rm -f $(MODULES_STAGING)/usr/lib/modules/$$rel/build $(MODULES_STAGING)/usr/lib/modules/$$rel/source && \
	/sbin/depmod -b $(MODULES_STAGING)/usr $$rel

# ---- root file system and SD card image --------------------------------------
include rootfs/rootfs.mk
.PHONY: rootfs
rootfs: $(ROOTFS_IMG)
# Rebuilt when the kernel, the apps' sources, the overlay or the package
# list change (so that `make BOARD=...` for every board assembles it once).
ROOTFS_INPUTS := $(KERNEL_STAMP) $(RTLA_STAMP) Cargo.toml Cargo.lock rootfs/rootfs.mk \
	scripts/build-rootfs.sh scripts/build-rt-apps.sh \
	$(shell find rootfs rt-apps -type f -not -path '*/target/*' 2>/dev/null)
$(ROOTFS_IMG): $(ROOTFS_INPUTS) | $(DEPS_STAMP)
	$(MAKE) --no-print-directory rt-apps modules-staging
	scripts/build-rootfs.sh --image $(ROOTFS_IMG) --size $(ROOTFS_SIZE) --suite $(ROOTFS_DEBIAN_SUITE) \
		--arch $(ROOTFS_DEBIAN_ARCH) --mirror $(ROOTFS_DEBIAN_MIRROR) --packages $(ROOTFS_PACKAGES_FILE) \
		--download-dir $(DL) --overlay $(ROOTFS_OVERLAY) --permissions $(ROOTFS_PERMISSIONS) \
		--staging $(APPS_STAGING) --staging $(MODULES_STAGING) --staging $(RTLA_STAGING)

# The board's boot loader: files from a Debian armhf package
# (BOARD_UBOOT_PACKAGE, BOARD_UBOOT_FILES), or, for boards Debian has no
# boot loader for, the files the user supplies in UBOOT_DIR.
# From Debian 13 (trixie), U-Boot 2025.01: bookworm's 2023.01 numbers the
# SABRE Lite's SD slots mmc 2 and 3 while its distro boot scans mmc 0 and 1
# only (its default environment; seen under QEMU), so it would not boot
# the card by itself. 2025.01 numbers them 0 and 1.
UBOOT_DIR ?=
BOOTLOADER_DEBIAN_SUITE := trixie
BOOTLOADER_DIR := $(B)/bootloader
.PHONY: bootloader
bootloader: | $(DEPS_STAMP)
	scripts/get-bootloader.sh --out $(BOOTLOADER_DIR) --download-dir $(DL) --suite $(BOOTLOADER_DEBIAN_SUITE) \
		--arch $(ROOTFS_DEBIAN_ARCH) --mirror $(ROOTFS_DEBIAN_MIRROR) \
		$(if $(BOARD_UBOOT_PACKAGE),--package $(BOARD_UBOOT_PACKAGE)) $(addprefix --file ,$(BOARD_UBOOT_FILES)) \
		$(addprefix --user-file ,$(BOARD_UBOOT_USER_FILES)) \
		$(if $(BOARD_UBOOT_USER_FILES),$(if $(UBOOT_DIR),--uboot-dir $(UBOOT_DIR)))

.PHONY: boot-config
boot-config:
	$(PYTHON_TOOLS) -m rtflex.generate boot-config --board $(BOARD) --output-dir $(BOOT_CONFIG)

.PHONY: image
image: kernel rootfs bootloader boot-config
	scripts/mkimage.sh --config $(BOOT_CONFIG)/genimage.cfg --out $(B) \
		$(addprefix --input ,$(ZIMAGE) $(IMAGE_DTBS) $(ROOTFS_IMG) \
			$(wildcard $(BOOT_CONFIG)/extlinux.conf) $(wildcard $(BOOTLOADER_DIR)/*))

# Rewrite the board and kernel facts in the Buildroot defconfigs after
# changing board.mk, kernel/kernel.mk or rootfs/rootfs.mk (make test checks
# that they agree).
.PHONY: update-defconfigs
update-defconfigs:
	$(PYTHON_TOOLS) -m rtflex.generate update-defconfigs

# SD card layout checks (partition table, boot loader, boot files, rootfs).
CHECK_IMAGE := $(RTFLEX) check-image --board $(BOARD) --sdcard $(SDCARD) --kernel-obj $(LINUX_OBJ) \
		--bootloader-dir $(BOOTLOADER_DIR) --build-dir $(B)
.PHONY: image-test
image-test: image
	$(CHECK_IMAGE)

# ---- boot and test -----------------------------------------------------------
.PHONY: compare
compare: image
	$(RTFLEX) compare $(GUEST_ARGS)

# FlexSC benchmark with 1 and 2 vCPUs (docs/flexsc-bench.md), or the vCPU
# counts the board lists in BOARD_BENCH_SMP: one vCPU under -icount, several
# without it (host-timed) unless BENCH_ICOUNT=on (auto, on, off).
BENCH_SMP := $(or $(BOARD_BENCH_SMP),1 2)
BENCH_ICOUNT ?= auto
.PHONY: bench
# Every run happens; the target fails afterwards if one did.
bench: image
	@rm -f $(B)/bench/report*.md
	rc=0; for n in $(BENCH_SMP); do $(RTFLEX) bench $(GUEST_ARGS) --smp $$n --icount $(BENCH_ICOUNT) || rc=1; done; \
	{ echo "# Kernel Mode Linux and FlexSC benchmarks ($(BOARD))"; echo; \
	  for n in $(BENCH_SMP); do cat $(B)/bench/report-smp$$n.md; done; } > $(B)/bench/report.md || rc=1; \
	echo "[rtflex] benchmark report: $(B)/bench/report.md"; exit $$rc

# Where the instructions of a FlexSC batch go (docs/flexsc-bench.md): two
# boots under -icount with the tbcount QEMU plugin, one with FlexSC and one
# with --direct-only; the difference per function. PROFILE_PROTOCOL (batch,
# original, run-on-wait), PROFILE_BATCH, PROFILE_CALLS.
PROFILE_PROTOCOL ?= run-on-wait
PROFILE_BATCH ?= 64
PROFILE_CALLS ?= 1000000
TBCOUNT_PLUGIN := $(BUILD)/tools/tbcount.so
$(TBCOUNT_PLUGIN): tools/qemu-plugins/tbcount.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	gcc -O2 -Wall -shared -fPIC -o $@ $< $$(pkg-config --cflags --libs glib-2.0)
.PHONY: profile
profile: image $(TBCOUNT_PLUGIN)
	$(RTFLEX) profile $(GUEST_ARGS) --plugin $(TBCOUNT_PLUGIN) --rootfs $(BUILD)/rootfs/rootfs.ext4.d \
		--protocol $(PROFILE_PROTOCOL) --batch $(PROFILE_BATCH) --calls $(PROFILE_CALLS)

# The control-loop benchmark (docs/control-app-bench.md): servo at 1 kHz
# against plant-sim for each --log-via, idle, with an SD-card writer and with
# hackbench (guest script run-bench-control, kernel command line
# rtflex.bench=control); report in build/$(BOARD)/bench-control/report.md.
BENCH_CONTROL_SMP := 1
.PHONY: bench-control
bench-control: image
	@rm -f $(B)/bench-control/bench/report*.md
	rc=0; for n in $(BENCH_CONTROL_SMP); do $(RTFLEX) bench $(GUEST_ARGS) --build-dir $(B)/bench-control \
		--smp $$n --append rtflex.bench=control --timeout 7200 || rc=1; done; \
	{ echo "# Control-loop benchmark ($(BOARD))"; echo; \
	  for n in $(BENCH_CONTROL_SMP); do cat $(B)/bench-control/bench/report-smp$$n.md; done; } \
		> $(B)/bench-control/report.md || rc=1; \
	echo "[rtflex] benchmark report: $(B)/bench-control/report.md"; exit $$rc

# The latency lab (docs/latency-lab.md): each variant of LAB_VARIANTS booted
# under -icount runs the lab's runner (/usr/libexec/rtflex/lab) in the
# image; its result bundle lands in $(LAB_DIR)/<variant>/bundles/, the
# report of them all in $(LAB_DIR)/report/. Variants: rt (the image's
# kernel), rt-tuned (the same with the tuning profile, rtflex.tune),
# rt-nofeatures and nonrt (kernel variants of kernel/kernel.mk, each built
# here if needed, booted with the image's SD card). Every variant runs; the
# target fails afterwards if one did.
LAB_VARIANTS ?= rt rt-nofeatures nonrt rt-tuned
LAB_DURATION ?=
LAB_LOOPS ?=
LAB_LOADS ?=
LAB_TOOLS ?=
LAB_SMP ?=
LAB_ICOUNT ?=
LAB_DIR := $(BUILD)/$(BOARD)/lab
LAB_REPORT_DIR ?= $(LAB_DIR)/report
LAB_ARGS := $(if $(LAB_DURATION),--duration $(LAB_DURATION)) $(if $(LAB_LOOPS),--loops $(LAB_LOOPS)) \
	$(if $(LAB_LOADS),--loads $(LAB_LOADS)) $(if $(LAB_TOOLS),--tools $(LAB_TOOLS)) $(if $(LAB_SMP),--smp $(LAB_SMP)) \
	$(if $(LAB_ICOUNT),--icount $(LAB_ICOUNT))
# The report's plots need Debian's python3 and its python3-matplotlib.
LAB_PYTHON := PYTHONPATH=$(TOP)/tools /usr/bin/python3
# The variants: the image's kernel without and with the tuning profile, and
# the kernel variants of kernel/lab-variants.mk.
LAB_IMAGE_KERNEL_VARIANTS := rt rt-tuned
LAB_ALL_VARIANTS := $(LAB_IMAGE_KERNEL_VARIANTS) rt-nofeatures nonrt
LAB_KERNEL_VARIANTS := $(filter-out $(LAB_IMAGE_KERNEL_VARIANTS),$(LAB_VARIANTS))
# The variant kernels are built first, one after the other; then LAB_JOBS
# variants boot side by side (default: one per host CPU). Under -icount the
# guest's clock counts instructions, so a busy host changes a run's
# wall-clock time, not its numbers (except the sd load's, whose block I/O
# QEMU does in host time; docs/latency-lab.md). With several vCPUs a lab
# runs without -icount, host-timed: one at a time.
LAB_JOBS ?= $(if $(filter-out 1,$(LAB_SMP)),1,$(shell nproc))
.PHONY: lab
lab: image
	@[ -z "$(KERNEL_VARIANT)" ] || { echo "make lab: no KERNEL_VARIANT; choose kernels with LAB_VARIANTS" >&2; exit 2; }
	@[ -z "$(filter-out $(LAB_ALL_VARIANTS),$(LAB_VARIANTS))" ] || { echo "make lab: unknown variant" \
		"'$(filter-out $(LAB_ALL_VARIANTS),$(LAB_VARIANTS))' in LAB_VARIANTS ($(LAB_ALL_VARIANTS))" >&2; exit 2; }
	rc=0; for kv in $(LAB_KERNEL_VARIANTS); do \
		$(MAKE) --no-print-directory KERNEL_VARIANT=$$kv kernel || rc=1; \
	done; \
	$(MAKE) --no-print-directory -k -j$(LAB_JOBS) -Oline $(addprefix lab-variant-,$(LAB_VARIANTS)) || rc=1; \
	$(LAB_PYTHON) -m rtflex.lab_report --out $(LAB_REPORT_DIR) \
		$(foreach v,$(LAB_VARIANTS),$(LAB_DIR)/$(v)/bundles) || rc=1; \
	exit $$rc

# One variant's matrix (make lab runs these; its kernel must be built).
LAB_VARIANT_TARGETS := $(addprefix lab-variant-,$(LAB_ALL_VARIANTS))
.PHONY: $(LAB_VARIANT_TARGETS)
$(LAB_VARIANT_TARGETS): lab-variant-%:
	kv=$(filter-out $(LAB_IMAGE_KERNEL_VARIANTS),$*); obj=$(BUILD)/kernel$${kv:+-$$kv}; \
	[ -e $$obj/arch/arm/boot/zImage ] || { echo "make lab: no kernel for variant $* in $$obj (make lab builds it)" >&2; exit 1; }; \
	$(RTFLEX) lab --board $(BOARD) --build-dir $(LAB_DIR)/$* --kernel $$obj/arch/arm/boot/zImage \
		$(if $(BOARD_DTB),--dtb $$obj/arch/arm/boot/dts/$(BOARD_DTB)) --sdcard $(SDCARD) \
		--variant $* $(if $(filter rt-tuned,$*),--tune) $(LAB_ARGS)

# The report of any lab bundles (from make lab or a board): BUNDLE is a
# bundle (directory or .tar.gz) or a directory holding bundles, or several.
BUNDLE ?= $(LAB_DIR)
.PHONY: lab-report
lab-report: | $(DEPS_STAMP)
	$(LAB_PYTHON) -m rtflex.lab_report --out $(LAB_REPORT_DIR) $(BUNDLE)

# ---- board farms (LAVA, docs/lava.md) ----------------------------------------
# lava-jobs: the LAVA job of every board (python3 -m rtflex.lava jobs), into
# build/lava/jobs/; LAVA_BASE_URL is where the farm downloads a board's files
# ({board} stands for the board's name). make test checks every board's job
# against Debian's lava-common schema (tools/rtflex/tests/test_lava.py).
LAVA_BASE_URL ?=
LAVA_LAB_OPTIONS ?= --quick
.PHONY: lava-jobs
lava-jobs: | $(DEPS_STAMP)
	@[ -n "$(LAVA_BASE_URL)" ] || { echo "make lava-jobs: set LAVA_BASE_URL=<where the farm finds each board's files," \
		"{board} for the board's name> (docs/lava.md)" >&2; exit 2; }
	$(LAB_PYTHON) -m rtflex.lava jobs --base-url '$(LAVA_BASE_URL)' --out-dir $(BUILD)/lava/jobs \
		--lab-options='$(LAVA_LAB_OPTIONS)'

# lava-run: the board's job end to end on this machine with Debian's
# lava-dispatcher (lava-run, as root; scripts/setup-host.sh --lava installs
# it), on a copy of the image; log, job and bundle in build/<board>/lava/.
# QEMU boards only. Then lava-run --validate builds the pipeline of every
# U-Boot board's job on a minimal device (lava/devices/u-boot-validate.yaml).
# Not part of make test.
LAVA_RUN_OPTIONS ?= --duration=2 --loads=idle,hackbench --tools=cyclictest,rtlat
.PHONY: lava-run
lava-run: image
	scripts/setup-host.sh --lava
	rc=0; $(LAB_PYTHON) -m rtflex.lava run --board $(BOARD) --kernel $(ZIMAGE) \
		--dtb $(LINUX_OBJ)/arch/arm/boot/dts/$(BOARD_DTB) --sdcard $(SDCARD) --work-dir $(B)/lava \
		--lab-options='$(LAVA_RUN_OPTIONS)' || rc=1; \
	$(LAB_PYTHON) -m rtflex.lava pipelines --work-dir $(BUILD)/lava/pipelines || rc=1; \
	exit $$rc

# The system call fuzzer (rt-apps/sysfuzz) for FUZZ_SECONDS of guest time;
# FUZZ_SEED=<seed printed by an earlier run> repeats its random choices.
# (make test runs a short fuzz as a guest test.)
FUZZ_SECONDS ?= 600
FUZZ_SEED ?=
.PHONY: fuzz
fuzz: image
	$(RTFLEX) fuzz $(GUEST_ARGS) --seconds $(FUZZ_SECONDS) $(if $(FUZZ_SEED),--seed $(FUZZ_SEED))

.PHONY: host-test
host-test: | $(DEPS_STAMP)
	cargo test --locked --target $(RUST_TARGET) --workspace 2>&1 | tee $(BUILD)/host-test.log; \
		rc=$${PIPESTATUS[0]}; $(TOOL_TESTS) || rc=1; $(GENERATED_CHECK) || rc=1; $(CHECK_SHELL) || rc=1; \
		exit $$rc

# The patch series as git commits, for kernel development (see README).
.PHONY: kernel-dev kernel-export
kernel-dev: | $(DEPS_STAMP)
	scripts/kernel-dev.sh init --version $(LINUX_VERSION) --hash-file $(LINUX_HASH_FILE) \
		--debian-package $(LINUX_DEBIAN_PACKAGE) --debian-suite $(LINUX_DEBIAN_SUITE) \
		--mirror $(LINUX_DEBIAN_MIRROR) --download-dir $(DL)
kernel-export:
	scripts/kernel-dev.sh export

# checkpatch and commit-message checks of the kernel series.
.PHONY: check-patches
CHECK_PATCHES := scripts/check-patches.sh --src $(LINUX_SRC) --patch-dir $(TOP)/kernel/patches/linux
check-patches: $(LINUX_SRC)/.rtflex-stamp
	$(CHECK_PATCHES)

# Kernel Mode Linux's threat model says it cannot be built with the lockdown
# LSM: the image's kernel configuration, in a temporary directory, with and
# without the lockdown LSM (Kconfig only: seconds, no kernel build).
CHECK_KML_LOCKDOWN := scripts/check-kml-lockdown.sh --src $(LINUX_SRC) --defconfig $(LINUX_DEFCONFIG) \
	--llvm-suffix $(LINUX_LLVM_SUFFIX) $(addprefix --fragment ,$(LINUX_FRAGMENTS))
.PHONY: check-kml-lockdown
check-kml-lockdown: $(LINUX_SRC)/.rtflex-stamp
	$(CHECK_KML_LOCKDOWN)

# rt-apps/rtflex-uapi against the patched kernel: UAPI headers, system call
# table and FlexSC allow-list (seconds; no kernel build needed).
CHECK_UAPI := rt-apps/rtflex-uapi/check-kernel-headers.py --linux-src $(LINUX_SRC)
.PHONY: check-uapi
check-uapi: $(LINUX_SRC)/.rtflex-stamp
	$(CHECK_UAPI)

# The kernel's Rust built with Clippy (CLIPPY=1, the kernel's own lints,
# every warning an error): the kernel crates and our in-tree Rust in
# build/kernel-clippy (Clippy may change code generation, so never in the
# kernel's own object directory), kernel/modules/* against the kernel.
# In make test: 45 s from a fresh build/kernel-clippy, seconds after that.
KERNEL_CLIPPY := LLVM_SUFFIX=$(LINUX_LLVM_SUFFIX) scripts/kernel-clippy.sh --src $(LINUX_SRC) \
	--kernel-obj $(LINUX_OBJ) --out $(BUILD)/kernel-clippy$(VARIANT_SUFFIX) \
	--patches $(TOP)/kernel/patches/linux $(addprefix --module ,$(KERNEL_MODULES))
.PHONY: kernel-clippy
kernel-clippy: $(KERNEL_STAMP)
	$(KERNEL_CLIPPY)

# clippy with -D warnings on every crate and target (the lints are
# [workspace.lints] in Cargo.toml): the boards' target with the test
# features (guest tests, the FlexSC emulator), the emulated variant of the
# guest tests, and the build host (what a plain `cargo test` builds).
LINT_FEATURES := --features guest-tests/guest,flexsc/testing
.PHONY: lint
lint: | $(DEPS_STAMP)
	cargo clippy --locked --workspace --all-targets $(LINT_FEATURES) --target $(RUST_TARGET) -- -D warnings
	cargo clippy --locked -p guest-tests --all-targets --features guest,emulate --target $(RUST_TARGET) -- -D warnings
	cargo clippy --locked --workspace --all-targets $(LINT_FEATURES) -- -D warnings

.PHONY: guest-test
guest-test: image
	$(RTFLEX) test $(GUEST_ARGS) $(TEST_ARGS)

# Host tests first (fast), then the image layout checks, then the guest;
# one closing line for all (boards without a QEMU model: no guest part).
.PHONY: test
test: image
	@mkdir -p $(BUILD)
	-cargo test --locked --target $(RUST_TARGET) --workspace > $(HOST_LOG) 2>&1; \
		rc=$$?; $(TOOL_TESTS) >> $(HOST_LOG) 2>&1 || rc=1; \
		$(GENERATED_CHECK) >> $(HOST_LOG) 2>&1 || rc=1; \
		$(CHECK_SHELL) >> $(HOST_LOG) 2>&1 || rc=1; \
		$(CHECK_PATCHES) >> $(HOST_LOG) 2>&1 || rc=1; \
		$(CHECK_UAPI) >> $(HOST_LOG) 2>&1 || rc=1; \
		$(CHECK_KML_LOCKDOWN) >> $(HOST_LOG) 2>&1 || rc=1; \
		$(KERNEL_CLIPPY) >> $(HOST_LOG) 2>&1 || rc=1; \
		$(MAKE) --no-print-directory lint >> $(HOST_LOG) 2>&1 || rc=1; \
		$(CHECK_IMAGE) >> $(HOST_LOG) 2>&1 || rc=1; \
		echo $$rc > $(HOST_RC)
	@grep -E -B2 -A20 '(FAILED|^error)' $(HOST_LOG) || true
	@grep '^test layout::' $(HOST_LOG) || true
ifneq ($(BOARD_QEMU_MACHINE),)
	$(RTFLEX) test $(GUEST_ARGS) $(TEST_ARGS) --host-log $(HOST_LOG) --host-rc $$(cat $(HOST_RC))
else
	@$(RTFLEX) summary --host-log $(HOST_LOG) --host-rc $$(cat $(HOST_RC))
endif

# Everything CI runs: `make test` on qemu-vexpress-a9, the layout checks of
# every other board's image, and the guest tests on the other boards QEMU
# can boot (qemu-vexpress-a15, imx6q-sabrelite, and qemu-virt, booted
# through U-Boot). Stops at the end if any part failed.
QEMU_BOARDS = $(shell $(PYTHON_TOOLS) -m rtflex.board names --qemu)
.PHONY: test-all
test-all:
	rc=0; $(MAKE) --no-print-directory BOARD=qemu-vexpress-a9 test || rc=1; \
	for b in $(filter-out qemu-vexpress-a9,$(BOARDS)); do \
		$(MAKE) --no-print-directory BOARD=$$b image-test || rc=1; done; \
	for b in $(filter-out qemu-vexpress-a9,$(QEMU_BOARDS)); do \
		$(MAKE) --no-print-directory BOARD=$$b guest-test || rc=1; done; \
	exit $$rc

# shellcheck of every shell script in the repository (make test runs it).
.PHONY: check-shell
check-shell: | $(DEPS_STAMP)
	$(CHECK_SHELL)

# The Buildroot external tree checked with Buildroot's own tooling, given a
# checkout of the pinned release (nothing is downloaded or built).
.PHONY: check-buildroot
check-buildroot:
	@[ -n "$(BUILDROOT)" ] || { echo "usage: make check-buildroot BUILDROOT=/path/to/buildroot (release: see buildroot-external/external.mk)" >&2; exit 2; }
	scripts/check-buildroot.sh $(BUILDROOT)

.PHONY: qemu
qemu: image
	$(RTFLEX) shell $(GUEST_ARGS)

.PHONY: clean
clean:
	rm -rf $(BUILD) $(TOP)/target
