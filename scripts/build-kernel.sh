#!/bin/bash
# Configure and build the rtflex kernel out of tree, with LLVM and ccache.
#
#   build-kernel.sh --src DIR --obj DIR --defconfig NAME --llvm-suffix SUFFIX
#                   [--fragment FILE]... [--dtbs TARGET]... [--module DIR]...
#                   [--config-only]
#
# Config = the defconfig + every --fragment (later ones win), resolved with
# olddefconfig; then every option a fragment asks for must have survived,
# or the build stops naming the ones that did not. --config-only stops
# there (make kernel-config). Otherwise it builds zImage, the modules and
# the device tree targets (--dtbs, default: dtbs, all of them), installs
# the modules into OBJ/modules-install and builds each out-of-tree --module
# against this kernel into OBJ/extmod/<name>. JOBS in the environment sets
# the parallel jobs (default: CPUs + 1).
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

usage="usage: $0 --src DIR --obj DIR --defconfig NAME --llvm-suffix SUFFIX [--fragment FILE]... [--dtbs TARGET]... [--module DIR]... [--config-only]"
src='' obj='' defconfig='' llvm_suffix='' config_only=''
fragments=() dtbs=() modules=()
while [ $# -gt 0 ]; do
	case "$1" in --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}" ;; esac
	case "$1" in
	--src) opt_value "$@"; src=$2; shift 2 ;;
	--obj) opt_value "$@"; obj=$2; shift 2 ;;
	--defconfig) opt_value "$@"; defconfig=$2; shift 2 ;;
	--llvm-suffix) opt_value "$@"; llvm_suffix=$2; shift 2 ;;
	--fragment) opt_value "$@"; fragments+=("$2"); shift 2 ;;
	--dtbs) opt_value "$@"; dtbs+=("$2"); shift 2 ;;
	--module) opt_value "$@"; modules+=("$2"); shift 2 ;;
	--config-only) config_only=1; shift ;;
	-h | --help) echo "$usage"; exit 0 ;;
	*) usage_error "unknown argument '$1'" ;;
	esac
done
require_options src obj defconfig llvm_suffix
[ ${#dtbs[@]} -gt 0 ] || dtbs=(dtbs)
for f in "${fragments[@]}"; do
	[ -f "$f" ] || usage_error "fragment $f does not exist"
done
llvm=$llvm_suffix
jobs=${JOBS:-$(($(nproc) + 1))}

need "clang$llvm" "Run 'make deps' (or: apt-get install clang${llvm} lld${llvm} llvm${llvm})."
need "ld.lld$llvm" "Run 'make deps' (or: apt-get install lld${llvm})."
need bindgen "Run 'make deps' (or: cargo install --locked bindgen-cli --version 0.72.1)."
need rustc "Install Rust with rustup (https://rustup.rs), then run 'make deps'."

cc="clang$llvm"
if command -v ccache >/dev/null 2>&1; then
	cc="ccache clang$llvm"
else
	rtflex_log "ccache not found: building without it (make deps installs it)"
fi
# Reproducible version string, and better ccache hits.
export KBUILD_BUILD_USER=rtflex KBUILD_BUILD_HOST=rtflex
export KBUILD_BUILD_TIMESTAMP=${KBUILD_BUILD_TIMESTAMP:-$(date -u -d "@${SOURCE_DATE_EPOCH:-0}" 2>/dev/null || echo "Thu Jan  1 00:00:00 UTC 1970")}
kmake() { make -C "$src" O="$obj" ARCH=arm LLVM="$llvm" CC="$cc" -j"$jobs" "$@"; }

# A first build of a tree takes about 1.7 GiB (objects, modules, the Rust
# crates), ccache up to its limit beside it; a rebuild only what changed.
if [ -e "$obj/vmlinux" ]; then
	need_space "$obj" 1 "rebuilding the kernel in $obj"
else
	need_space "$obj" 3 "a kernel build in $obj"
fi
mkdir -p "$obj"
kmake -s rustavailable >/dev/null 2>&1 || {
	kmake rustavailable || true
	die "the kernel cannot use this Rust toolchain (see above). Run 'make deps'."
}

rtflex_log "configuring: $defconfig + $(for f in "${fragments[@]}"; do basename "$f"; done | tr '\n' ' ')"
kmake -s "$defconfig"
if [ ${#fragments[@]} -gt 0 ]; then
	cat "${fragments[@]}" >>"$obj/.config"
fi
kmake -s olddefconfig

# Every option a fragment asks for must have survived olddefconfig (the
# same check runs after Buildroot's kernel configure step).
"$here/check-kernel-config.sh" "$obj/.config" "${fragments[@]}" ||
	die "fix the fragments under kernel/configs/ or the base defconfig ($obj/.config)"
if [ -n "$config_only" ]; then
	rtflex_log "configured and checked (--config-only: nothing built): $obj/.config"
	exit 0
fi

rtflex_log "building zImage, DTBs and modules (-j$jobs)"
kmake zImage modules "${dtbs[@]}"
rm -rf "$obj/modules-install"
kmake -s INSTALL_MOD_PATH="$obj/modules-install" INSTALL_MOD_STRIP=1 modules_install

# Our out-of-tree modules (e.g. the Rust self-test module), built against
# this exact kernel; outputs go to $obj/extmod/<name>, not into the source.
# A Rust module needs CONFIG_RUST: a kernel variant without Rust (kasan:
# KASAN and Rust exclude each other on ARM) builds none, says so, and its
# image checks and guest tests expect none (kernel/kernel.mk).
mkdir -p "$obj/extmod"
for m in "${modules[@]}"; do
	name=$(basename "$m")
	if [ -n "$(find "$m" -name '*.rs' -print -quit)" ] && ! grep -qx 'CONFIG_RUST=y' "$obj/.config"; then
		rtflex_log "module $name is Rust and this kernel has no CONFIG_RUST: not built"
		continue
	fi
	rtflex_log "building module $name"
	make -C "$obj" ARCH=arm LLVM="$llvm" CC="$cc" M="$(readlink -f "$m")" MO="$obj/extmod/$name" -j"$jobs" modules
done
rtflex_log "kernel $(cat "$obj/include/config/kernel.release") ready in $obj"
