#!/bin/bash
# Unpack the pinned Linux release and apply the rtflex patch series.
#
#   get-kernel-source.sh --version VERSION --hash-file FILE
#                        --debian-package NAME --debian-suite SUITE
#                        --mirror URL --patch-dir DIR --download-dir DIR
#                        --out DIR
#
# Source, in order of preference:
#  1. DLDIR/linux-VERSION.tar.xz from kernel.org, if present (put it there
#     yourself when you are online), checked against its line in HASHFILE;
#  2. Debian's DEBIAN_PACKAGE (the offline path), downloaded with a private apt
#     state (the host's apt sources are not touched) into DLDIR and unpacked;
#     its upstream version must be VERSION (any Debian revision).
# Then every patch listed in PATCHDIR/series (or PATCHDIR/*.patch in order) is
# applied with `patch -p1`, the same series Buildroot applies from
# BR2_GLOBAL_PATCH_DIR.
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

usage="usage: $0 --version VERSION --hash-file FILE --debian-package NAME --debian-suite SUITE --mirror URL --patch-dir DIR --download-dir DIR --out DIR"
version='' hash_file='' debian_package='' debian_suite='' mirror='' patch_dir='' download_dir='' out=''
while [ $# -gt 0 ]; do
	case "$1" in --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}" ;; esac
	case "$1" in
	--version) opt_value "$@"; version=$2; shift 2 ;;
	--hash-file) opt_value "$@"; hash_file=$2; shift 2 ;;
	--debian-package) opt_value "$@"; debian_package=$2; shift 2 ;;
	--debian-suite) opt_value "$@"; debian_suite=$2; shift 2 ;;
	--mirror) opt_value "$@"; mirror=$2; shift 2 ;;
	--patch-dir) opt_value "$@"; patch_dir=$2; shift 2 ;;
	--download-dir) opt_value "$@"; download_dir=$2; shift 2 ;;
	--out) opt_value "$@"; out=$2; shift 2 ;;
	-h | --help) echo "$usage"; exit 0 ;;
	*) usage_error "unknown argument '$1'" ;;
	esac
done
require_options version hash_file debian_package debian_suite mirror patch_dir download_dir out
[ -d "$patch_dir" ] || usage_error "--patch-dir $patch_dir is not a directory"
hashfile=$hash_file debpkg=$debian_package suite=$debian_suite patchdir=$patch_dir dldir=$download_dir

mkdir -p "$dldir"
dldir=$(readlink -f "$dldir")
tmp="$out.tmp"
rm -rf "$tmp" && mkdir -p "$tmp"

tarball="$dldir/linux-$version.tar.xz"
if [ -f "$tarball" ]; then
	rtflex_log "kernel source: $tarball (kernel.org)"
	sha256=$(awk -v f="linux-$version.tar.xz" '$1 == "sha256" && $3 == f {print $2}' "$hashfile")
	[ -n "$sha256" ] || die "no sha256 for linux-$version.tar.xz in $hashfile: add the line from kernel.org's sha256sums.asc (or remove $tarball to use the Debian package)"
	echo "$sha256  $tarball" | sha256sum -c --quiet - ||
		die "$tarball does not match its sha256 in $hashfile; delete it or fix the download"
	tar -xf "$tarball" -C "$tmp"
	src="$tmp/linux-$version"
else
	# The newest Debian revision of the pinned release already downloaded.
	debs=("$dldir"/"${debpkg}_${version}"-*_all.deb)
	deb=${debs[-1]}
	if [ ! -f "$deb" ]; then
		rtflex_log "kernel source: downloading Debian package $debpkg ($suite) with a private apt state"
		need apt-get "Install apt (Debian/Ubuntu host) or put linux-$version.tar.xz from kernel.org into $dldir/."
		aptdir="$dldir/apt-$suite"
		apt_private_init "$aptdir" "$suite" amd64 "$mirror"
		mapfile -t opts < <(apt_private_opts "$aptdir")
		apt-get "${opts[@]}" -qq update ||
			die "apt-get update for Debian $suite failed (no network?). Put linux-$version.tar.xz from kernel.org into $dldir/ instead."
		# Any Debian revision of the pinned upstream release; nothing else.
		avail=$(apt-cache "${opts[@]}" madison "$debpkg" | awk '{print $3}')
		debver=$(printf '%s\n' "$avail" | grep -E "^${version//./\\.}-" | head -n 1 || true)
		[ -n "$debver" ] || die "Debian $suite has $debpkg ${avail:-<none>}, not upstream $version as pinned in kernel/kernel.mk. Put linux-$version.tar.xz from kernel.org into $dldir/ (and its sha256 into $hashfile), or move the pin."
		(cd "$dldir" && apt-get "${opts[@]}" -qq download "$debpkg=$debver") ||
			die "could not download $debpkg $debver from Debian $suite"
		debs=("$dldir"/"${debpkg}_${version}"-*_all.deb)
		deb=${debs[-1]}
		[ -f "$deb" ] || die "apt-get download left no ${debpkg}_${version}-*_all.deb in $dldir"
	fi
	rtflex_log "kernel source: $deb (Debian)"
	debver=$(dpkg-deb -f "$deb" Version)
	case "$debver" in
	"$version"-*) ;;
	*) die "$deb is Debian version $debver, but rtflex pins upstream $version (kernel/kernel.mk). Remove it from $dldir so the right one is downloaded, or put linux-$version.tar.xz from kernel.org into $dldir/." ;;
	esac
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --wildcards './usr/src/linux-source-*.tar.xz'
	tar -xf "$tmp"/usr/src/linux-source-*.tar.xz -C "$tmp"
	rm -rf "${tmp:?}/usr"
	src=$(echo "$tmp"/linux-source-*)
fi

# Refuse anything that is not the pinned upstream release.
mk() { sed -n "s/^$1 = \(.*\)/\1/p" "$src/Makefile" | head -n 1; }
have="$(mk VERSION).$(mk PATCHLEVEL).$(mk SUBLEVEL)$(mk EXTRAVERSION)"
[ "$have" = "$version" ] || die "kernel source is $have, rtflex pins $version"

if [ -f "$patchdir/series" ]; then
	mapfile -t patches < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$patchdir/series" | sed "s|^|$patchdir/|")
else
	mapfile -t patches < <(ls "$patchdir"/*.patch 2>/dev/null || true)
fi
for p in "${patches[@]}"; do
	rtflex_log "applying $(basename "$p")"
	patch -d "$src" -p1 --forward --batch --quiet < "$p" || die "patch $(basename "$p") does not apply to linux $version"
done

if [ -d "$out" ] && command -v rsync >/dev/null 2>&1; then
	# Update in place: files whose content did not change keep their
	# timestamps, so an incremental kernel build stays incremental. Changed
	# files get the current time (no -t), never an older one.
	rsync -rlpD --checksum --delete "$src/" "$out/"
else
	rm -rf "$out"
	mv "$src" "$out"
fi
rm -rf "$tmp"
rtflex_log "kernel source ready: $out (${#patches[@]} patches)"
