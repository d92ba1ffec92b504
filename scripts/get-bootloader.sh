#!/bin/bash
# Put the board's boot loader files into OUTDIR, for genimage.
#
#   get-bootloader.sh --out DIR --download-dir DIR --suite SUITE --arch ARCH
#                     --mirror URL [--package NAME [--file PATH]...]
#                     [--user-file NAME]... [--uboot-dir DIR]
#
# --package (e.g. u-boot-imx) is a Debian ARCH package of SUITE: each --file
# is a path inside it (usr/lib/u-boot/<board>/<file>), copied to DIR under
# its base name. Boards Debian has no boot loader for name --user-file(s)
# instead: taken from --uboot-dir when the user gives one; otherwise DIR
# gets empty files of those names, the image's boot loader area stays
# zero, and a warning says how to supply one (README, "Flashing"). Without
# --package and --user-file (QEMU boards) DIR is left empty.
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

usage="usage: $0 --out DIR --download-dir DIR --suite SUITE --arch ARCH --mirror URL [--package NAME [--file PATH]...] [--user-file NAME]... [--uboot-dir DIR]"
out='' download_dir='' suite='' arch='' mirror='' package='' uboot_dir=''
files=() user_files=()
while [ $# -gt 0 ]; do
	case "$1" in --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}" ;; esac
	case "$1" in
	--out) opt_value "$@"; out=$2; shift 2 ;;
	--download-dir) opt_value "$@"; download_dir=$2; shift 2 ;;
	--suite) opt_value "$@"; suite=$2; shift 2 ;;
	--arch) opt_value "$@"; arch=$2; shift 2 ;;
	--mirror) opt_value "$@"; mirror=$2; shift 2 ;;
	--package) opt_value "$@"; package=$2; shift 2 ;;
	--file) opt_value "$@"; files+=("$2"); shift 2 ;;
	--user-file) opt_value "$@"; user_files+=("$2"); shift 2 ;;
	--uboot-dir) opt_value "$@"; uboot_dir=$2; shift 2 ;;
	-h | --help) echo "$usage"; exit 0 ;;
	*) usage_error "unknown argument '$1'" ;;
	esac
done
require_options out download_dir suite arch mirror
[ ${#files[@]} -eq 0 ] || [ -n "$package" ] || usage_error "--file needs --package"
[ -z "$package" ] || [ ${#files[@]} -gt 0 ] || usage_error "--package needs at least one --file"
[ -z "$uboot_dir" ] || [ ${#user_files[@]} -gt 0 ] || usage_error "--uboot-dir without --user-file: this board's boot loader comes from Debian"
rm -rf "$out" && mkdir -p "$out" "$download_dir"
dldir=$(readlink -f "$download_dir")

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
	for f in "${files[@]}"; do
		[ -f "$tmp/$f" ] || die "$package $ver has no $f (board.mk BOARD_UBOOT_FILES)"
		install -m 0644 "$tmp/$f" "$out/"
	done
	echo "$package $ver" > "$out.version"
	rtflex_log "boot loader: $package $ver ($(cd "$out" && echo *))"
fi

if [ ${#user_files[@]} -gt 0 ]; then
	if [ -n "$uboot_dir" ]; then
		for f in "${user_files[@]}"; do
			[ -f "$uboot_dir/$f" ] || die "UBOOT_DIR=$uboot_dir has no $f (this board needs: ${user_files[*]})"
			install -m 0644 "$uboot_dir/$f" "$out/"
		done
		echo "user-supplied from $uboot_dir" > "$out.version"
		rtflex_log "boot loader: ${user_files[*]} from $uboot_dir"
	else
		for f in "${user_files[@]}"; do
			: > "$out/$f"
		done
		echo "none" > "$out.version"
		printf '\033[1;33m[rtflex] warning:\033[0m %s\n' \
			"Debian has no boot loader for this board: the SD image has none (its area is left zero)." \
			"Build U-Boot yourself (files: ${user_files[*]}) and run make again with UBOOT_DIR=<dir>," \
			"or write them to the card afterwards: see README, \"Flashing\"." >&2
	fi
fi
