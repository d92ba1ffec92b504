#!/bin/bash
# Configure and build the rtflex kernel out of tree, with LLVM and ccache.
#
#   build-kernel.sh SRC OBJ DEFCONFIG "FRAGMENTS..." "DTBS..." MODULE_DIRS...
#
# Config = DEFCONFIG + every fragment (later ones win), resolved with
# olddefconfig; then every option a fragment asks for must have survived,
# or the build stops naming the ones that did not. With CONFIG_ONLY=1 in
# the environment it stops there (make kernel-config).
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

[ $# -ge 5 ] || die "usage: $0 SRC OBJ DEFCONFIG FRAGMENTS DTBS [MODULE_DIR...]"
src=$1 obj=$2 defconfig=$3 fragments=$4 dtbs=$5
shift 5
llvm=${LLVM_SUFFIX:--19}
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

mkdir -p "$obj"
kmake -s rustavailable >/dev/null 2>&1 || {
	kmake rustavailable || true
	die "the kernel cannot use this Rust toolchain (see above). Run 'make deps'."
}

rtflex_log "configuring: $defconfig + $(for f in $fragments; do basename "$f"; done | tr '\n' ' ')"
kmake -s "$defconfig"
# shellcheck disable=SC2086
cat $fragments >> "$obj/.config"
kmake -s olddefconfig

# Every option a fragment asks for must have survived olddefconfig (the
# same check runs after Buildroot's kernel configure step).
# shellcheck disable=SC2086
"$here/check-kernel-config.sh" "$obj/.config" $fragments ||
	die "fix the fragments under kernel/configs/ or the base defconfig ($obj/.config)"
if [ -n "${CONFIG_ONLY:-}" ]; then
	rtflex_log "configured and checked (CONFIG_ONLY: nothing built): $obj/.config"
	exit 0
fi

rtflex_log "building zImage, DTBs and modules (-j$jobs)"
# shellcheck disable=SC2086
kmake zImage modules $dtbs
rm -rf "$obj/modules-install"
kmake -s INSTALL_MOD_PATH="$obj/modules-install" INSTALL_MOD_STRIP=1 modules_install

# Our out-of-tree modules (e.g. the Rust self-test module), built against
# this exact kernel; outputs go to $obj/extmod/<name>, not into the source.
# A Rust module needs CONFIG_RUST: a kernel variant without Rust (kasan:
# KASAN and Rust exclude each other on ARM) builds none, says so, and its
# image checks and guest tests expect none (kernel/kernel.mk).
mkdir -p "$obj/extmod"
for m in "$@"; do
	name=$(basename "$m")
	if [ -n "$(find "$m" -name '*.rs' -print -quit)" ] && ! grep -qx 'CONFIG_RUST=y' "$obj/.config"; then
		rtflex_log "module $name is Rust and this kernel has no CONFIG_RUST: not built"
		continue
	fi
	rtflex_log "building module $name"
	make -C "$obj" ARCH=arm LLVM="$llvm" CC="$cc" M="$(readlink -f "$m")" MO="$obj/extmod/$name" -j"$jobs" modules
done
rtflex_log "kernel $(cat "$obj/include/config/kernel.release") ready in $obj"
