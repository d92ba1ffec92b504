#!/bin/bash
# Cross-build rtla (the kernel's own tools/tracing/rtla: timerlat, osnoise)
# for the boards and stage it for the root file system:
#   STAGING/usr/bin/rtla
#
#   build-rtla.sh --src DIR --version VERSION --cross TRIPLE --suite SUITE
#                 --arch ARCH --mirror URL --download-dir DIR --out DIR
#                 --staging DIR
#
# --src is the patched kernel tree (build/linux-VERSION); it is only read:
# the parts rtla's build needs (tools/tracing/rtla, tools/build,
# tools/scripts, tools/include, tools/lib, tools/arch) are copied to
# OUT/src and built there into OUT/obj. rtla links against Debian's
# libtracefs and libtraceevent of SUITE/ARCH: their -dev packages and
# libraries are downloaded with the same private apt state as the root
# file system's packages (DIR/apt-SUITE-ARCH) and unpacked into
# OUT/sysroot; the root file system gets the libraries from its own
# package list (rootfs/debian-packages.txt: libtracefs1, libtraceevent1).
# Optional features of rtla stay off: BPF sample collection (no libbpf,
# bpftool or BPF clang here) and libcpupower (--deepest-idle-state).
# The compiler is Debian's cross gcc TRIPLE-gcc, the one cargo links the
# Rust apps with.
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

usage="usage: $0 --src DIR --version VERSION --cross TRIPLE --suite SUITE --arch ARCH --mirror URL --download-dir DIR --out DIR --staging DIR"
src='' version='' cross='' suite='' arch='' mirror='' download_dir='' out='' staging=''
while [ $# -gt 0 ]; do
	case "$1" in --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}" ;; esac
	case "$1" in
	--src) opt_value "$@"; src=$2; shift 2 ;;
	--version) opt_value "$@"; version=$2; shift 2 ;;
	--cross) opt_value "$@"; cross=$2; shift 2 ;;
	--suite) opt_value "$@"; suite=$2; shift 2 ;;
	--arch) opt_value "$@"; arch=$2; shift 2 ;;
	--mirror) opt_value "$@"; mirror=$2; shift 2 ;;
	--download-dir) opt_value "$@"; download_dir=$2; shift 2 ;;
	--out) opt_value "$@"; out=$2; shift 2 ;;
	--staging) opt_value "$@"; staging=$2; shift 2 ;;
	-h | --help) echo "$usage"; exit 0 ;;
	*) usage_error "unknown argument '$1'" ;;
	esac
done
require_options src version cross suite arch mirror download_dir out staging
[ -f "$src/tools/tracing/rtla/Makefile" ] ||
	die "$src/tools/tracing/rtla/Makefile missing: is $src a Linux source tree? (make kernel-source)"
need "$cross-gcc" "Run 'make deps' (or: apt-get install gcc-$cross)."
need pkg-config "Run 'make deps' (or: apt-get install pkg-config)."
need dpkg-deb "rtla's libraries come from Debian packages: run this on a Debian host."
need apt-get "rtla's libraries come from Debian packages: run this on a Debian host."

# The libraries rtla needs (the -dev packages and what they depend on of
# the trace libraries; libc comes with the cross compiler).
dev_packages=(libtracefs-dev libtraceevent-dev)
mkdir -p "$download_dir"
dldir=$(readlink -f "$download_dir")
aptdir="$dldir/apt-$suite-$arch"
apt_private_init "$aptdir" "$suite" "$arch" "$mirror"
mapfile -t opts < <(apt_private_opts "$aptdir")
opts+=(-o "APT::Architecture=$arch" -o "APT::Architectures=$arch" -o "APT::Install-Recommends=false")
rtflex_log "rtla: resolving ${dev_packages[*]} in Debian $suite/$arch"
apt-get "${opts[@]}" -qq update || die "apt-get update for Debian $suite/$arch failed (no network?)"
mapfile -t inst < <(apt-get "${opts[@]}" -s install "${dev_packages[@]}" |
	sed -n 's/^Inst \(libtrace[a-z]*[-0-9a-z]*\) (\([^ ]*\) .*/\1 \2/p')
[ ${#inst[@]} -ge 4 ] ||
	die "Debian $suite/$arch: expected libtracefs1, libtraceevent1 and their -dev packages, apt resolved: ${inst[*]:-nothing}"
apt-get "${opts[@]}" -qq -y --download-only install "${dev_packages[@]}" >/dev/null ||
	die "downloading ${dev_packages[*]} ($suite/$arch) failed"

out=$(mkdir -p "$out" && readlink -f "$out")
sysroot=$out/sysroot
rm -rf "$sysroot" && mkdir -p "$sysroot"
for entry in "${inst[@]}"; do
	name=${entry% *} ver=${entry#* }
	debs=("$aptdir/cache/archives/${name}_${ver//:/%3a}_"*.deb)
	[ -f "${debs[0]}" ] || die "package file for $name $ver missing from $aptdir/cache/archives"
	dpkg-deb -x "${debs[0]}" "$sysroot"
done
libdir=$sysroot/usr/lib/$cross
for pc in libtracefs libtraceevent; do
	[ -f "$libdir/pkgconfig/$pc.pc" ] || die "$pc.pc missing from the unpacked packages ($libdir/pkgconfig)"
done
rtflex_log "rtla: libraries of ${inst[*]}"

# A copy of the parts of the tree the build reads (it writes nothing into
# the source then), and a top-level Makefile that answers rtla's
# `make kernelversion`.
rm -rf "$out/src" "$out/obj"
mkdir -p "$out/src/tools" "$out/obj"
for d in tracing/rtla build scripts include lib arch; do
	mkdir -p "$out/src/tools/$(dirname "$d")"
	cp -a "$src/tools/$d" "$out/src/tools/$d"
done
printf 'kernelversion:\n\t@echo %s\n' "$version" >"$out/src/Makefile"

# pkg-config of the unpacked packages only; -rpath-link lets the linker
# find libtraceevent behind libtracefs.
rtflex_log "rtla: building rtla $version for $arch ($cross-gcc)"
if ! env PKG_CONFIG_SYSROOT_DIR="$sysroot" PKG_CONFIG_LIBDIR="$libdir/pkgconfig" PKG_CONFIG_PATH= \
	LDFLAGS="-Wl,-rpath-link=$libdir" \
	make -C "$out/src/tools/tracing/rtla" O="$out/obj" CROSS_COMPILE="$cross-" \
	LD="$cross-ld" AR="$cross-ar" BUILD_BPF_SKEL=0 >"$out/build.log" 2>&1; then
	tail -n 30 "$out/build.log" >&2
	die "rtla build failed (the whole log: $out/build.log)"
fi
for lib in libtracefs libtraceevent; do
	grep -q "$lib: .*on" "$out/build.log" || die "rtla's feature detection did not find $lib ($out/build.log)"
done

rm -rf "$staging"
mkdir -p "$staging/usr/bin"
"$cross-strip" -o "$staging/usr/bin/rtla" "$out/obj/rtla"
chmod 0755 "$staging/usr/bin/rtla"
# The libraries it needs at run time are the packages' (root file system).
needed=$("$cross-readelf" -d "$staging/usr/bin/rtla" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort | tr '\n' ' ')
rtflex_log "rtla: $staging/usr/bin/rtla (needs: $needed)"
