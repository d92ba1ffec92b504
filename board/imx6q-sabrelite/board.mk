# Boundary Devices SABRE Lite (NXP i.MX6 Quad, 4x Cortex-A9, 1 GiB); QEMU
# emulates it as -M sabrelite.
BOARD_DESCRIPTION := i.MX6Q SABRE Lite (SD card; QEMU -M sabrelite)
BOARD_DTBS := nxp/imx/imx6q-sabrelite.dtb
BOARD_DTB := nxp/imx/imx6q-sabrelite.dtb
# Debian's U-Boot for this board, written raw at 1 KiB (genimage.cfg).
BOARD_UBOOT_PACKAGE := u-boot-imx
BOARD_UBOOT_FILES := usr/lib/u-boot/mx6qsabrelite/u-boot-dtb.imx
# The serial console is UART2 (the DB9 connector), ttymxc1 at 115200 8N1.
BOARD_CONSOLE := ttymxc1
# Under QEMU the guest tests stream results over UART1 (ttymxc0): QEMU's
# first -serial is UART1, the second the console (BOARD_QEMU_CONSOLE_SERIAL).
BOARD_RESULTS_TTY := ttymxc0
BOARD_QEMU_CONSOLE_SERIAL := 2
# QEMU has no SDMA model: the results port runs without DMA under QEMU
# (the host tool (tools/rtflex/qemu.py) boots a copy of the DTB without it; the image's is unchanged).
BOARD_QEMU_SERIAL_NO_DMA := serial0
BOARD_ROOT_DEVICE := PARTUUID=7274666c-02
BOARD_QEMU_MACHINE := sabrelite
# QEMU's sabrelite wires no "-drive if=sd": the card is an sd-card device.
# On the bus named sd-bus it lands on the last controller, usdhc4 (the
# board's microSD slot: mmc1 in Linux and in U-Boot, which scans both).
BOARD_QEMU_SD_DEVICE := sd-card,bus=sd-bus
# One vCPU for the guest tests: under -icount (which they use) a 4-vCPU
# sabrelite stalls after mounting the root file system (QEMU 10.0; seen
# twice). Without -icount, -smp 4 boots to the shell (README, "Booting
# it yourself").
BOARD_QEMU_ARGS := -smp 1 -m 1G
# The rtlat-vs-cyclictest latency comparison is not run here: on this
# emulated i.MX6 cyclictest itself (the oracle) saw a wake-up beyond the
# 400 us histogram, so the run says nothing about rtlat. It runs on the
# vexpress boards. Nor is the Kernel Mode Linux exec-race test, for the
# same reason: its SCHED_FIFO attacker against the exec on one vCPU made
# no progress for minutes here (a fresh-clone CI run, 2026-12-04), where
# 200 rounds take seconds on vexpress; it runs on both vexpress boards.
# Nor rtla timerlat's guest test, whose bound is relative to cyclictest's
# maximum (the same outliers); it runs on the other QEMU boards.
# Everything else runs.
BOARD_GUEST_TEST_SKIP := rtlat rtla kml::ptrace_attach_racing_exec_never_gets_a_sys_mode_tracee
BOARD_BENCH_SMP := 1
# LAVA device type of the board (its board-farm job: docs/lava.md).
BOARD_LAVA_DEVICE_TYPE := imx6q-sabrelite
