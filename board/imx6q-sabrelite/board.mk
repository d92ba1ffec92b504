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
BOARD_ROOT_DEVICE := PARTUUID=7274666c-02
BOARD_QEMU_MACHINE := sabrelite
# The SD card goes to the third SD controller (usdhc3, the board's SD slot).
BOARD_QEMU_SD_INDEX := 2
BOARD_QEMU_ARGS := -M sabrelite -smp 4 -m 1G
BOARD_BENCH_SMP := 1
