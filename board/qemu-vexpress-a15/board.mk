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
# The device tree describes the CoreTile's two Cortex-A15s; QEMU boots a
# copy that describes only the vCPUs it has. With the DT's second CPU
# possible, the kernel (the A15 being a multiprocessor core) raises IPIs,
# hard irq_work's self-IPI too, through the GIC's CPU map, and QEMU's GIC
# for one CPU reads its target registers as zero ("GIC CPU mask not found"
# at boot): every IPI went to no CPU, gpio-sim never delivered an edge
# event and removing its chip spun forever (found by the plant_sim guest
# test, 2026-12-05). With one CPU possible the GIC driver sends IPIs to
# itself. (nr_cpus=1 instead warns at boot: more DT CPUs than nr_cpus;
# -smp 2 under -icount gave no console output in 90 s with QEMU 7.2.)
BOARD_QEMU_DT_CPUS_FROM_SMP := yes
# vCPU counts for `make bench` (2 vCPUs not tried yet with this kernel).
BOARD_BENCH_SMP := 1
