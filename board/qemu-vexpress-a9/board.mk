# QEMU Versatile Express with a Cortex-A9 MPCore tile (qemu-system-arm -M vexpress-a9).
BOARD_DESCRIPTION := QEMU vexpress-a9 (Cortex-A9 MPCore, SD card root)
# Device trees on the boot partition (both vexpress boards share the SD
# card layout); BOARD_DTB is the one QEMU boots with (-dtb).
BOARD_DTBS := arm/vexpress-v2p-ca9.dtb arm/vexpress-v2p-ca15-tc1.dtb
BOARD_DTB := arm/vexpress-v2p-ca9.dtb
BOARD_CONSOLE := ttyAMA0
# Second UART: the guest test runner streams results to the host over it.
BOARD_RESULTS_TTY := ttyAMA1
BOARD_ROOT_DEVICE := /dev/mmcblk0p2
BOARD_QEMU_MACHINE := vexpress-a9
BOARD_QEMU_ARGS := -smp 1 -m 512M
# vCPU counts for `make bench`. Only 1: the vexpress_defconfig kernel we
# used before could not start a second Cortex-A9 under QEMU ("CPU1: failed
# to boot: -38"; not retried with the multi_v7 kernel). SMP runs on
# imx6q-sabrelite (-smp 4).
BOARD_BENCH_SMP := 1
