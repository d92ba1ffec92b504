#!/bin/bash
# Assemble the rtflex root file system and its ext4 image, offline from
# Debian armhf packages (no maintainer scripts run, nothing executed for the
# target except the static busybox under qemu-user to list its applets).
#
#   build-rootfs.sh OUT_IMG SIZE SUITE ARCH MIRROR PACKAGES_FILE DLDIR OVERLAY PERMISSIONS STAGING...
#
# STAGING directories (rt-apps, kernel modules) are copied on top, in order.
# PERMISSIONS is a permission table in Buildroot's makedevs format
# (rootfs/permissions.txt): owners and modes set last.
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

[ $# -ge 9 ] || die "usage: $0 OUT_IMG SIZE SUITE ARCH MIRROR PACKAGES_FILE DLDIR OVERLAY PERMISSIONS [STAGING...]"
img=$1 size=$2 suite=$3 arch=$4 mirror=$5 pkgfile=$6 dldir=$7 overlay=$8 permissions=$9
[ -f "$permissions" ] || die "permission table $permissions missing"
mkdir -p "$7" "$(dirname "$1")"
img=$(readlink -f "$1") dldir=$(readlink -f "$7") permissions=$(readlink -f "$9")
shift 9

# Files must be owned by root in the image: run under fakeroot when needed.
if [ "$(id -u)" -ne 0 ] && [ -z "${FAKEROOTKEY:-}" ]; then
	need fakeroot "Run 'make deps' (or: apt-get install fakeroot)."
	exec fakeroot -- "$0" "$img" "$size" "$suite" "$arch" "$mirror" "$pkgfile" "$dldir" "$overlay" "$permissions" "$@"
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
	deb=$(ls "$aptdir/cache/archives/${name}_${debver}_"*.deb 2>/dev/null | head -n 1)
	[ -n "$deb" ] || die "package file for $name $ver missing from $aptdir/cache/archives"
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
for s in "$@"; do
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
