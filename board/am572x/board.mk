# TI AM572x (2x Cortex-A15): BeagleBoard-X15, AM572x EVM, AM572x IDK. No
# QEMU model of the SoC: image only (qemu-vexpress-a15 runs the same CPU).
BOARD_DESCRIPTION := TI AM572x BeagleBoard-X15 / EVM / IDK (SD card image)
# U-Boot picks the device tree by board EEPROM ($fdtfile); all candidates
# are on the boot partition.
BOARD_DTBS := ti/omap/am57xx-beagle-x15.dtb ti/omap/am57xx-beagle-x15-revb1.dtb \
	ti/omap/am57xx-beagle-x15-revc.dtb ti/omap/am572x-idk.dtb
BOARD_DTB := ti/omap/am57xx-beagle-x15.dtb
# Debian's U-Boot for the AM57xx EVM family (also the X15): the boot ROM
# loads MLO from the FAT boot partition, MLO loads u-boot.img.
BOARD_UBOOT_PACKAGE := u-boot-omap
BOARD_UBOOT_FILES := usr/lib/u-boot/am57xx_evm/MLO usr/lib/u-boot/am57xx_evm/u-boot.img
# Serial console: UART3, ttyS2 at 115200 8N1 (X15: the 6-pin FTDI header).
BOARD_CONSOLE := ttyS2
BOARD_ROOT_DEVICE := PARTUUID=7274666c-02
# LAVA device type of the board (its board-farm job: docs/lava.md).
BOARD_LAVA_DEVICE_TYPE := am57xx-beagle-x15
