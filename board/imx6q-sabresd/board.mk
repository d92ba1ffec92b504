# NXP i.MX6Q SABRE Smart Device (MCIMX6Q-SDB), the board the original
# Kernel Mode Linux ARM work was evaluated on. No QEMU model: image only.
BOARD_DESCRIPTION := i.MX6Q SABRE SD (SD card image; no QEMU model)
BOARD_DTBS := nxp/imx/imx6q-sabresd.dtb
BOARD_DTB := nxp/imx/imx6q-sabresd.dtb
# Debian has no U-Boot for this board. Mainline U-Boot's
# mx6sabresd_defconfig makes SPL (raw at 1 KiB) and u-boot-dtb.img (raw at
# 69 KiB); give their directory as UBOOT_DIR=..., or the image has none.
BOARD_UBOOT_USER_FILES := SPL u-boot-dtb.img
# Serial console: UART1 on the micro-USB debug port, ttymxc0 at 115200 8N1.
BOARD_CONSOLE := ttymxc0
BOARD_ROOT_DEVICE := PARTUUID=7274666c-02
# LAVA device type of the board (its board-farm job: docs/lava.md).
BOARD_LAVA_DEVICE_TYPE := imx6q-sabresd
