# QEMU Versatile Express with a Cortex-A15 tile (qemu-system-arm -M
# vexpress-a15): the AM572x's CPU core, with PXN and the Spectre-BHB vector
# loop, on the same kernel, SD card layout and root file system as
# qemu-vexpress-a9.
BOARD_DESCRIPTION := QEMU vexpress-a15 (Cortex-A15, SD card root)
# Device trees on the boot partition (both vexpress boards share the SD
# card layout); BOARD_DTB is the one QEMU boots with (-dtb).
BOARD_DTBS := arm/vexpress-v2p-ca9.dtb arm/vexpress-v2p-ca15-tc1.dtb
BOARD_DTB := arm/vexpress-v2p-ca15-tc1.dtb
BOARD_GENIMAGE := $(TOP)/board/qemu-vexpress-a9/genimage.cfg.in
BOARD_CONSOLE := ttyAMA0
# Second UART: the guest test runner streams results to the host over it.
BOARD_RESULTS_TTY := ttyAMA1
BOARD_ROOT_DEVICE := /dev/mmcblk0p2
BOARD_QEMU_MACHINE := vexpress-a15
BOARD_QEMU_ARGS := -smp 1 -m 512M
# vCPU counts for `make bench` (2 vCPUs not tried yet with this kernel).
BOARD_BENCH_SMP := 1
