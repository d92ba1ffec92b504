#!/bin/bash
# Put the board's boot loader files into OUTDIR, for genimage.
#
#   get-bootloader.sh OUTDIR DLDIR SUITE ARCH MIRROR PACKAGE FILES USER_FILES UBOOT_DIR
#
# PACKAGE (e.g. u-boot-imx) is a Debian ARCH package of SUITE: FILES are
# paths inside it (usr/lib/u-boot/<board>/<file>), copied to OUTDIR under
# their base names. Boards Debian has no boot loader for name USER_FILES
# instead: taken from UBOOT_DIR when the user gives one; otherwise OUTDIR
# gets empty files of those names, the image's boot loader area stays
# zero, and a warning says how to supply one (README, "Flashing").
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

[ $# -eq 9 ] || die "usage: $0 OUTDIR DLDIR SUITE ARCH MIRROR PACKAGE FILES USER_FILES UBOOT_DIR"
out=$1 dldir=$2 suite=$3 arch=$4 mirror=$5 package=$6 files=$7 user_files=$8 uboot_dir=$9
rm -rf "$out" && mkdir -p "$out" "$dldir"
dldir=$(readlink -f "$dldir")

if [ -n "$package" ]; then
	need apt-get "Run on a Debian or Ubuntu host (apt-get downloads $package)."
	aptdir="$dldir/apt-$suite-$arch"
	apt_private_init "$aptdir" "$suite" "$arch" "$mirror"
	mapfile -t opts < <(apt_private_opts "$aptdir")
	opts+=(-o "APT::Architecture=$arch" -o "APT::Architectures=$arch")
	apt-get "${opts[@]}" -qq update || die "apt-get update for Debian $suite/$arch failed (no network?)"
	apt-get "${opts[@]}" -qq -y --download-only install "$package" >/dev/null ||
		die "downloading $package from Debian $suite/$arch failed"
	ver=$(apt-get "${opts[@]}" -s install "$package" | sed -n "s/^Inst $package (\([^ ]*\) .*/\1/p")
	deb=$(ls "$aptdir/cache/archives/${package}_${ver//:/%3a}_${arch}.deb" 2>/dev/null || true)
	[ -n "$deb" ] || die "$package $ver: package file missing from $aptdir/cache/archives"
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	dpkg-deb -x "$deb" "$tmp"
	for f in $files; do
		[ -f "$tmp/$f" ] || die "$package $ver has no $f (board.mk BOARD_UBOOT_FILES)"
		install -m 0644 "$tmp/$f" "$out/"
	done
	echo "$package $ver" > "$out.version"
	rtflex_log "boot loader: $package $ver ($(cd "$out" && echo *))"
fi

if [ -n "$user_files" ]; then
	if [ -n "$uboot_dir" ]; then
		for f in $user_files; do
			[ -f "$uboot_dir/$f" ] || die "UBOOT_DIR=$uboot_dir has no $f (this board needs: $user_files)"
			install -m 0644 "$uboot_dir/$f" "$out/"
		done
		echo "user-supplied from $uboot_dir" > "$out.version"
		rtflex_log "boot loader: $user_files from $uboot_dir"
	else
		for f in $user_files; do
			: > "$out/$f"
		done
		echo "none" > "$out.version"
		printf '\033[1;33m[rtflex] warning:\033[0m %s\n' \
			"Debian has no boot loader for this board: the SD image has none (its area is left zero)." \
			"Build U-Boot yourself (files: $user_files) and run make again with UBOOT_DIR=<dir>," \
			"or write them to the card afterwards: see README, \"Flashing\"." >&2
	fi
fi
