#!/bin/bash
# Assemble the rtflex root file system and its ext4 image, offline from
# Debian armhf packages (no maintainer scripts run, nothing executed for the
# target except the static busybox under qemu-user to list its applets).
#
#   build-rootfs.sh --image FILE --size SIZE --suite SUITE --arch ARCH
#                   --mirror URL --packages FILE --download-dir DIR
#                   --overlay DIR --permissions FILE [--staging DIR]...
#
# --packages lists the Debian packages (one a line, '#' comments); the
# overlay and then each --staging directory (rt-apps, kernel modules) are
# copied on top, in order. --permissions is a permission table in
# Buildroot's makedevs format (rootfs/permissions.txt): owners and modes
# set last. SIZE is mkfs.ext4's (e.g. 384M).
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

usage="usage: $0 --image FILE --size SIZE --suite SUITE --arch ARCH --mirror URL --packages FILE --download-dir DIR --overlay DIR --permissions FILE [--staging DIR]..."
all_args=("$@")
image='' size='' suite='' arch='' mirror='' packages='' download_dir='' overlay='' permissions=''
staging=()
while [ $# -gt 0 ]; do
	case "$1" in --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}" ;; esac
	case "$1" in
	--image) opt_value "$@"; image=$2; shift 2 ;;
	--size) opt_value "$@"; size=$2; shift 2 ;;
	--suite) opt_value "$@"; suite=$2; shift 2 ;;
	--arch) opt_value "$@"; arch=$2; shift 2 ;;
	--mirror) opt_value "$@"; mirror=$2; shift 2 ;;
	--packages) opt_value "$@"; packages=$2; shift 2 ;;
	--download-dir) opt_value "$@"; download_dir=$2; shift 2 ;;
	--overlay) opt_value "$@"; overlay=$2; shift 2 ;;
	--permissions) opt_value "$@"; permissions=$2; shift 2 ;;
	--staging) opt_value "$@"; staging+=("$2"); shift 2 ;;
	-h | --help) echo "$usage"; exit 0 ;;
	*) usage_error "unknown argument '$1'" ;;
	esac
done
require_options image size suite arch mirror packages download_dir overlay permissions
[ -f "$permissions" ] || die "permission table $permissions missing"
[ -f "$packages" ] || die "package list $packages missing"
[ -d "$overlay" ] || die "overlay directory $overlay missing"
mkdir -p "$download_dir" "$(dirname "$image")"
img=$(readlink -f "$image") dldir=$(readlink -f "$download_dir") permissions=$(readlink -f "$permissions")
pkgfile=$packages

# Files must be owned by root in the image: run under fakeroot when needed.
if [ "$(id -u)" -ne 0 ] && [ -z "${FAKEROOTKEY:-}" ]; then
	need fakeroot "Run 'make deps' (or: apt-get install fakeroot)."
	exec fakeroot -- "$0" "${all_args[@]}"
fi
need qemu-arm "Run 'make deps' (or: apt-get install qemu-user)."
need mkfs.ext4 "Run 'make deps' (or: apt-get install e2fsprogs)."

mapfile -t wanted < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$pkgfile")
aptdir="$dldir/apt-$suite-$arch"
apt_private_init "$aptdir" "$suite" "$arch" "$mirror"
mapfile -t opts < <(apt_private_opts "$aptdir")
opts+=(-o "APT::Architecture=$arch" -o "APT::Architectures=$arch" -o "APT::Install-Recommends=false")
rtflex_log "rootfs: resolving ${wanted[*]} in Debian $suite/$arch"
apt-get "${opts[@]}" -qq update || die "apt-get update for Debian $suite/$arch failed (no network?)"
# The exact package set (dependencies included) for an empty system.
mapfile -t inst < <(apt-get "${opts[@]}" -s install "${wanted[@]}" | sed -n 's/^Inst \([^ ]*\) (\([^ ]*\) .*/\1 \2/p')
[ ${#inst[@]} -gt 0 ] || die "apt resolved no packages for: ${wanted[*]}"
apt-get "${opts[@]}" -qq -y --download-only install "${wanted[@]}" >/dev/null ||
	die "downloading the rootfs packages failed"

root="$img.d"
rm -rf "$root" && mkdir -p "$root"
# Merged /usr, as a Debian bookworm system installed by debootstrap.
mkdir -p "$root/usr/bin" "$root/usr/sbin" "$root/usr/lib"
ln -s usr/bin "$root/bin"
ln -s usr/sbin "$root/sbin"
ln -s usr/lib "$root/lib"
manifest="$img.manifest"
: > "$manifest"
for entry in "${inst[@]}"; do
	name=${entry% *} ver=${entry#* }
	debver=${ver//:/%3a}
	debs=("$aptdir/cache/archives/${name}_${debver}_"*.deb)
	deb=${debs[0]}
	[ -f "$deb" ] || die "package file for $name $ver missing from $aptdir/cache/archives"
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$root" --keep-directory-symlink --no-same-owner --numeric-owner
	echo "$name $ver" >> "$manifest"
done
rm -rf "$root/usr/share/doc" "$root/usr/share/man" "$root/usr/share/info" "$root/usr/share/locale" "$root/usr/share/lintian"
rtflex_log "rootfs: unpacked ${#inst[@]} packages (list in $manifest)"

# busybox applets for everything the packages did not provide.
bb="$root/usr/bin/busybox"
[ -x "$bb" ] || bb="$root/bin/busybox"
while IFS= read -r applet; do
	[ -e "$root/$applet" ] || [ -L "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done < <(qemu-arm "$bb" --list-full | sed 's|^/||')

# The overlay and staged outputs last: they win.
cp -a --no-preserve=ownership "$overlay/." "$root/"
for s in "${staging[@]}"; do
	if [ -d "$s" ]; then cp -a --no-preserve=ownership "$s/." "$root/"; fi
done
mkdir -p "$root"/{dev,proc,sys,tmp,run,root,var/log,mnt}
chmod 1777 "$root/tmp"
# The permission table, as Buildroot's makedevs applies it (directories are
# created if missing); only the d and f types are used here.
while read -r name type mode uid gid _; do
	case "$type" in
	d) mkdir -p "$root$name" ;;
	f) [ -f "$root$name" ] || die "$permissions: $name is not a file in the root file system" ;;
	*) die "$permissions: type '$type' of $name is not supported (d or f)" ;;
	esac
	chown "$uid:$gid" "$root$name"
	chmod "$mode" "$root$name"
done < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$permissions")

rm -f "$img"
# No lazy inode-table/journal init: it would zero them in the background
# after the first mount, disk and interrupt load that disturbs latency runs.
mkfs.ext4 -q -F -L rootfs -E lazy_itable_init=0,lazy_journal_init=0 -d "$root" "$img" "$size" || die "mkfs.ext4 failed (is $size large enough?)"
rtflex_log "rootfs image: $img ($size)"
