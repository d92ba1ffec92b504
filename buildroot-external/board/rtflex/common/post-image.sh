#!/usr/bin/env bash
# Post-image script of every rtflex defconfig: the SD card image of one
# board, from the files shared with the quick path (make):
#   ../board/<board>/board.mk        DTBs, console, QEMU machine
#   ../board/<board>/genimage.cfg    SD card layout (or BOARD_GENIMAGE)
#   ../board/<board>/extlinux.conf   U-Boot distro boot, if the board has one
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
board_dir=$top/board/$board
board_mk=$board_dir/board.mk
[ -f "$board_mk" ] || die "no board '$board' ($board_mk missing); boards: $(cd "$top/board" && echo *)"

# board_var NAME: the value of "NAME := ..." in board.mk (continuation
# lines joined, $(TOP) replaced by the repository top).
board_var() {
	awk -v name="$1" '
		{ while (/\\$/) { sub(/\\$/, ""); line = $0; if ((getline next_line) <= 0) break; $0 = line next_line } }
		$1 == name && $2 == ":=" { sub(/^[^:]*:= */, ""); print; exit }
	' "$board_mk" | sed "s|\$(TOP)|$top|g"
}

genimage_cfg=$(board_var BOARD_GENIMAGE)
genimage_cfg=${genimage_cfg:-$board_dir/genimage.cfg}
[ -f "$genimage_cfg" ] || die "$genimage_cfg missing"

# Device trees: Buildroot installs them without their directory
# (BR2_LINUX_KERNEL_DTB_KEEP_DIRNAME is off), the names genimage.cfg uses.
for dtb in $(board_var BOARD_DTBS); do
	[ -f "$binaries/${dtb##*/}" ] || die "${dtb##*/} missing in $binaries: BR2_LINUX_KERNEL_INTREE_DTS_NAME must list every DTB of BOARD_DTBS in $board_mk"
done

if [ -f "$board_dir/extlinux.conf" ]; then
	install -m 0644 "$board_dir/extlinux.conf" "$binaries/extlinux.conf"
fi

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
# defconfigs have (with the system's qemu-system-arm).
qemu_machine=$(board_var BOARD_QEMU_MACHINE)
if [ -n "$qemu_machine" ]; then
	qemu_args=$(board_var BOARD_QEMU_ARGS)
	dtb=$(board_var BOARD_DTB)
	console=$(board_var BOARD_CONSOLE)
	root=$(board_var BOARD_ROOT_DEVICE)
	sd_device=$(board_var BOARD_QEMU_SD_DEVICE)
	if [ -n "$sd_device" ]; then
		sd="-drive if=none,id=sdcard,format=raw,file=sdcard.img -device $sd_device,drive=sdcard"
	else
		sd="-drive if=sd,format=raw,file=sdcard.img"
	fi
	case "$(board_var BOARD_QEMU_CONSOLE_SERIAL)" in
	2) serial="-display none -serial null -serial mon:stdio" ;;
	*) serial="-nographic" ;;
	esac
	cat >"$binaries/start-qemu.sh" <<EOF
#!/bin/sh
# Boot the rtflex $board image in QEMU (written by the rtflex post-image
# script). Quit with Ctrl-a x. Extra arguments go to qemu-system-arm, e.g.
# -icount shift=3,sleep=off for repeatable latency numbers.
cd "\$(dirname "\$0")" || exit 1
exec qemu-system-arm $qemu_args \\
	-kernel zImage -dtb ${dtb##*/} \\
	$sd \\
	-append "console=$console,115200 root=$root rootwait rw" \\
	$serial "\$@"
EOF
	chmod 0755 "$binaries/start-qemu.sh"
fi
