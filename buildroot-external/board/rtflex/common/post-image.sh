#!/usr/bin/env bash
# Post-image script of every rtflex defconfig: the SD card image of one
# board, from the files shared with the quick path (make):
#   ../board/<board>/board.mk          DTBs, console, QEMU machine
#   ../board/<board>/genimage.cfg.in   SD card layout template (or BOARD_GENIMAGE)
# through the rtflex host tool (../tools/rtflex, python3 and make), which
# reads board.mk and generates genimage.cfg and, for boards with U-Boot,
# extlinux.conf, as it does for the quick path.
#
# Called by Buildroot as: post-image.sh BINARIES_DIR BOARD
# (BOARD from BR2_ROOTFS_POST_SCRIPT_ARGS), with the current directory the
# Buildroot source tree and BR2_CONFIG, HOST_DIR, BUILD_DIR,
# BR2_EXTERNAL_RTFLEX_PATH in the environment.
#
# Writes BINARIES_DIR/sdcard.img (padded to a power-of-two size, which
# QEMU's SD card model requires and a real card does not mind, as
# scripts/mkimage.sh does), sdcard.img.bmap, and for boards with a QEMU
# model start-qemu.sh.
set -euo pipefail

die() {
	echo "rtflex post-image: error: $*" >&2
	exit 1
}

[ $# -ge 2 ] || die "usage: $0 BINARIES_DIR BOARD (set BR2_ROOTFS_POST_SCRIPT_ARGS to the board name)"
binaries=$1
board=$2
top=$(cd "${BR2_EXTERNAL_RTFLEX_PATH:?}/.." && pwd)
board_mk=$top/board/$board/board.mk

# rtflex_tool MODULE ARGS...: the host tool (it stops with a clear message
# for an unknown board or a wrong board.mk).
rtflex_tool() {
	PYTHONPATH=$top/tools python3 -m "$@"
}
# board_fact FACT: one fact of the board (rtflex.board; lists space-separated).
board_fact() {
	rtflex_tool rtflex.board get "$board" "$1"
}
board_fact description >/dev/null || die "cannot read board '$board' (BR2_ROOTFS_POST_SCRIPT_ARGS)"

# genimage.cfg (and extlinux.conf for boards with U-Boot), generated.
boot_config=${BUILD_DIR:?}/rtflex-boot-config
rtflex_tool rtflex.generate boot-config --board "$board" --output-dir "$boot_config" >/dev/null ||
	die "cannot generate the boot configuration of $board"
genimage_cfg=$boot_config/genimage.cfg
if [ -f "$boot_config/extlinux.conf" ]; then
	install -m 0644 "$boot_config/extlinux.conf" "$binaries/extlinux.conf"
fi

# Device trees: Buildroot installs them without their directory
# (BR2_LINUX_KERNEL_DTB_KEEP_DIRNAME is off), the names genimage.cfg uses.
for dtb in $(board_fact dtb_names); do
	[ -f "$binaries/$dtb" ] || die "$dtb missing in $binaries: BR2_LINUX_KERNEL_INTREE_DTS_NAME must list every DTB of BOARD_DTBS in $board_mk (make update-defconfigs)"
done

# Every input file genimage.cfg names (image = "..." and files = {...})
# that is not an image genimage makes itself must be here: say which one
# is missing, and which Buildroot option makes it, before genimage does.
made=$(sed -n 's/^image \([^ ]*\) {.*/\1/p' "$genimage_cfg")
inputs=$(sed -e 's/#.*//' "$genimage_cfg" |
	tr '\n' ' ' |
	grep -o -e 'image = "[^"]*"' -e 'files = {[^}]*}' |
	grep -o '"[^"]*"' | tr -d '"' | sort -u)
for f in $inputs; do
	if ! grep -qx -e "$f" <<<"$made" && [ ! -e "$binaries/$f" ]; then
		case "$f" in
		SPL | MLO) hint="BR2_TARGET_UBOOT_SPL=y, BR2_TARGET_UBOOT_SPL_NAME=\"$f\"" ;;
		u-boot-dtb.img) hint="BR2_TARGET_UBOOT_FORMAT_DTB_IMG=y" ;;
		u-boot-dtb.imx) hint="BR2_TARGET_UBOOT_FORMAT_DTB_IMX=y" ;;
		u-boot.img) hint="BR2_TARGET_UBOOT_FORMAT_IMG=y" ;;
		rootfs.ext4) hint="BR2_TARGET_ROOTFS_EXT2=y, BR2_TARGET_ROOTFS_EXT2_4=y" ;;
		*) hint="the kernel, U-Boot or rootfs options of the defconfig" ;;
		esac
		die "$genimage_cfg needs $f, which is not in $binaries ($hint)"
	fi
done

support/scripts/genimage.sh -c "$genimage_cfg"

img=$binaries/sdcard.img
size=$(stat -c %s "$img")
pow=$((1 << 20))
while [ "$pow" -lt "$size" ]; do pow=$((pow * 2)); done
truncate -s "$pow" "$img"
rm -f "$img.bmap"
if [ -x "$HOST_DIR/bin/bmaptool" ]; then
	"$HOST_DIR/bin/bmaptool" create -o "$img.bmap" "$img"
fi
echo "rtflex post-image: $img ($((pow >> 20)) MiB) for $board"

# QEMU boards: a start script next to the images, as Buildroot's own QEMU
# defconfigs have (with the system's qemu-system-arm). The command line is
# the host tool's (`rtflex qemu-command`, what `make qemu` runs), with the
# files named relative to the images directory; boards whose facts change
# the DTB for QEMU (e.g. vexpress-a15: only the CPUs QEMU has) get that
# copy next to the images (qemu-<dtb>).
# A board QEMU boots through U-Boot (BOARD_QEMU_UBOOT) has no DTB for QEMU:
# U-Boot, QEMU's firmware, boots sdcard.img and hands on QEMU's device tree.
if [ "$(board_fact has_qemu)" = True ]; then
	dtb=$(board_fact dtb)
	qemu=$(cd "$binaries" && rtflex_tool rtflex qemu-command --board "$board" --kernel zImage \
		${dtb:+--dtb "${dtb##*/}" --dtb-dir .} --sdcard sdcard.img) ||
		die "cannot make the QEMU command line of $board"
	firmware=$(board_fact qemu_uboot)
	[ -z "$firmware" ] || firmware="
# U-Boot, QEMU's firmware, boots sdcard.img: $firmware from the host's
# Debian package $(board_fact qemu_uboot_package), or your own U-Boot
# (qemu_arm_defconfig) with -bios FILE after this script's name."
	cat >"$binaries/start-qemu.sh" <<EOF
#!/bin/sh
# Boot the rtflex $board image in QEMU (written by the rtflex post-image
# script). Quit with Ctrl-a x. Extra arguments go to qemu-system-arm, e.g.
# -icount shift=3,sleep=off for repeatable latency numbers.$firmware
cd "\$(dirname "\$0")" || exit 1
exec $qemu "\$@"
EOF
	chmod 0755 "$binaries/start-qemu.sh"
fi
