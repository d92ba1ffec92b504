#!/bin/bash
# The kernel's Rust built with Clippy (CLIPPY=1, Documentation/rust/
# general-information.rst): the kernel crates (rust/), every kernel
# directory our patches put Rust into, and our out-of-tree Rust modules.
# Fails, listing them, on any warning or error. Prints its verdict in
# libtest's format (a kernel without Rust: ignored).
#
# Clippy may change code generation, so the kernel's own objects are
# never built with it: the in-tree Rust is built in a separate object
# directory (--out) with the kernel's configuration, and each module is
# compiled against the built kernel (--kernel-obj) into a directory of
# its own under --out.
#
#   kernel-clippy.sh --src LINUX_SRC --kernel-obj LINUX_OBJ --out DIR \
#       --patches PATCHDIR [--module DIR]...
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

usage() {
	die "usage: $0 --src LINUX_SRC --kernel-obj LINUX_OBJ --out DIR --patches PATCHDIR [--module DIR]..."
}
src="" kobj="" out="" patches="" modules=()
while [ $# -gt 0 ]; do
	case "$1" in
	--src) src=$(readlink -f "${2:?}"); shift 2 ;;
	--kernel-obj) kobj=$(readlink -f "${2:?}"); shift 2 ;;
	--out) out=$(readlink -m "${2:?}"); shift 2 ;;
	--patches) patches=$(readlink -f "${2:?}"); shift 2 ;;
	--module) modules+=("$(readlink -f "${2:?}")"); shift 2 ;;
	*) usage ;;
	esac
done
if [ -z "$src" ] || [ -z "$kobj" ] || [ -z "$out" ] || [ -z "$patches" ]; then
	usage
fi
[ -f "$kobj/.config" ] || die "no $kobj/.config: build the kernel first (make kernel)"
if ! grep -qx 'CONFIG_RUST=y' "$kobj/.config"; then
	# A kernel variant without Rust (kasan) has nothing to check.
	echo "test kernel_clippy ... ignored, $kobj/.config has no CONFIG_RUST"
	echo "test result: ok. 0 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out"
	exit 0
fi
need clippy-driver "Install it with: rustup component add clippy"

llvm=${LLVM_SUFFIX:--19}
jobs=${JOBS:-$(($(nproc) + 1))}
cc="clang$llvm"
command -v ccache >/dev/null 2>&1 && cc="ccache clang$llvm"
export KBUILD_BUILD_USER=rtflex KBUILD_BUILD_HOST=rtflex
# Every warning is an error: an object with a finding is not written, so a
# second run builds it again and reports it again.
lint=(CLIPPY=1 KRUSTFLAGS=-Dwarnings HOSTRUSTFLAGS=-Dwarnings)

# The in-tree directories with our Rust: those of the .rs files the patches
# add or change (anything under rust/ is built by rust/ itself).
dirs=$(sed -n 's|^+++ b/\(.*\)/[^/]*\.rs$|\1|p' "$patches"/*.patch | sed 's|^rust\(/.*\)\?$|rust|' | sort -u)
targets=(rust/)
for d in $dirs; do
	[ "$d" = rust ] || targets+=("$d/")
done

obj="$out/kernel"
mkdir -p "$obj"
log="$out/clippy.log"
start=$(date +%s)
rc=0
{
	cmp -s "$kobj/.config" "$obj/.config" || cp "$kobj/.config" "$obj/.config"
	make -C "$src" O="$obj" ARCH=arm LLVM="$llvm" CC="$cc" -s olddefconfig
	# The same configuration as the kernel's, or this checks something else.
	grep -qx 'CONFIG_RUST=y' "$obj/.config" || die "$obj/.config lost CONFIG_RUST"
	rtflex_log "CLIPPY=1 build of ${targets[*]} in $obj (-j$jobs)"
	make -C "$src" O="$obj" ARCH=arm LLVM="$llvm" CC="$cc" -j"$jobs" "${lint[@]}" "${targets[@]}"
	for m in "${modules[@]}"; do
		name=$(basename "$m")
		rtflex_log "CLIPPY=1 build of module $name against $kobj"
		make -C "$kobj" ARCH=arm LLVM="$llvm" CC="$cc" M="$m" MO="$out/extmod/$name" \
			-j"$jobs" "${lint[@]}" modules
	done
} 2>&1 | tee "$log" || rc=$?
rtflex_log "Clippy build took $(($(date +%s) - start)) s (log: $log)"
# rustc and Clippy diagnostics start with "warning" or "error" at the
# beginning of a line ("warning: ...", "error[E0308]: ...").
# The verdict in libtest's format, so `make test` counts it with the host
# tests.
findings=$(grep -cE '^(warning|error)(\[[^]]*\])?:' "$log" || true)
if [ "$rc" -ne 0 ] || [ "$findings" -ne 0 ]; then
	echo "test kernel_clippy ... FAILED"
	grep -E -A12 '^(warning|error)(\[[^]]*\])?:' "$log" | head -200 || true
	echo "    the kernel's Rust is not Clippy-clean: $findings diagnostics, build exit status $rc (see $log)"
	echo "test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out"
	exit 1
fi
echo "test kernel_clippy ... ok"
echo "test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out"
