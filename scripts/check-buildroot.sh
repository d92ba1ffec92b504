#!/bin/bash
# Check the Buildroot external tree (buildroot-external/) with Buildroot's
# own tooling, offline, without building anything but Buildroot's Kconfig:
#
#   check-buildroot.sh [--any-version] BUILDROOT_DIR
#
# BUILDROOT_DIR is a checkout of the pinned Buildroot release (see
# RTFLEX_BUILDROOT_VERSION in buildroot-external/external.mk), e.g.
#   git clone -b 2026.05.1 https://gitlab.com/buildroot.org/buildroot.git
# This script never downloads or builds Buildroot itself. Another release
# is refused unless --any-version is given.
#
# 1. check-package on the external tree: `make check-package-external`
#    (it checks only files committed in the external's git repository, so
#    the tree as it is now, committed or not, is copied into a temporary
#    git repository first), and check-package on the kernel patches in
#    BR2_GLOBAL_PATCH_DIR (outside the external tree, so
#    check-package-external does not see them).
# 2. Every configs/*_defconfig loads (make <name>_defconfig) and every
#    symbol it sets is in the resulting .config with the same value:
#    unknown symbols, unmet dependencies or invalid values fail, listed.
# 3. The defconfigs' values that repeat a board, kernel or root file
#    system fact (DTBs, console, kernel version and fragments, ...) are the
#    ones tools/rtflex/generate.py derives from board.mk, kernel.mk and
#    rootfs.mk (`make test` checks the same).
#
# Needs python3 with flake8 and python-magic, and shellcheck (what
# check-package runs). Exit status: 0 all passed, 1 a check failed,
# 2 bad usage or missing prerequisites.
set -euo pipefail

here=$(dirname "$(readlink -f "$0")")
top=$(dirname "$here")
ext=$top/buildroot-external

usage() {
	echo "usage: $0 [--any-version] BUILDROOT_DIR" >&2
	exit 2
}
any_version=
[ "${1:-}" = --any-version ] && any_version=1 && shift
[ $# -eq 1 ] || usage
br=$1

pinned=$(sed -n 's/^RTFLEX_BUILDROOT_VERSION = //p' "$ext/external.mk")
[ -n "$pinned" ] || {
	echo "error: no RTFLEX_BUILDROOT_VERSION in $ext/external.mk" >&2
	exit 2
}
if [ ! -f "$br/Makefile" ] || [ ! -x "$br/utils/check-package" ]; then
	echo "error: '$br' is not a Buildroot source tree (no Makefile, utils/check-package)." >&2
	echo "       Check out Buildroot $pinned, e.g.: git clone -b $pinned https://gitlab.com/buildroot.org/buildroot.git" >&2
	exit 2
fi
br=$(cd "$br" && pwd)
version=$(sed -n 's/^export BR2_VERSION := //p' "$br/Makefile")
if [ "$version" != "$pinned" ]; then
	if [ -z "$any_version" ]; then
		echo "error: $br is Buildroot '$version'; this tree is pinned to $pinned." >&2
		echo "       Use a $pinned checkout (git -C $br checkout $pinned), or --any-version to try anyway." >&2
		exit 2
	fi
	echo "warning: $br is Buildroot '$version', not the pinned $pinned: results may differ" >&2
fi

missing_tools=()
command -v shellcheck >/dev/null || missing_tools+=("shellcheck (apt-get install shellcheck)")
python3 -c 'import magic' 2>/dev/null || missing_tools+=("python3 magic (pip install python-magic, or apt-get install python3-magic)")
python3 -m flake8 --version >/dev/null 2>&1 || missing_tools+=("python3 flake8 (pip install flake8, or apt-get install flake8)")
command -v git >/dev/null || missing_tools+=("git")
if [ ${#missing_tools[@]} -gt 0 ]; then
	printf 'error: check-package needs: %s\n' "${missing_tools[@]}" >&2
	exit 2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=()
step() { printf '\n=== %s\n' "$*"; }

# ---- 1. check-package --------------------------------------------------------
step "check-package-external (Buildroot $version)"
# The repository as it is in the work tree (tracked and new, not ignored
# files), committed in a throw-away repository: check-package-external
# runs on `git ls-tree HEAD` of the external tree.
copy=$tmp/repo
mkdir -p "$copy"
(cd "$top" && git ls-files -z --cached --others --exclude-standard -- buildroot-external |
	while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
	xargs -0 cp --parents -P -t "$copy")
git -C "$copy" init -q
git -C "$copy" add -A
git -C "$copy" -c user.name=check -c user.email=check@localhost commit -q -m check
if make -C "$br" O="$tmp/o-check" BR2_EXTERNAL="$copy/buildroot-external" check-package-external; then
	echo "check-package-external: clean"
else
	failed+=("check-package-external")
fi

step "check-package on the kernel patches (BR2_GLOBAL_PATCH_DIR/linux)"
patch_dir=$top/kernel/patches/linux
mapfile -t patch_files < <(find "$patch_dir" -maxdepth 1 -type f | sort)
if (cd "$br" && utils/check-package -b "${patch_files[@]}"); then
	echo "kernel patches: clean"
else
	failed+=("check-package on kernel/patches/linux")
fi

# ---- 2. defconfigs -----------------------------------------------------------
# defconfig_mismatches DEFCONFIG DOTCONFIG: every "BR2_X=v" line must be in
# the .config as is; every "# BR2_X is not set" must not be set there.
defconfig_mismatches() {
	local line opt got
	while IFS= read -r line || [ -n "$line" ]; do
		case "$line" in
		BR2_*=*)
			opt=${line%%=*}
			got=$(grep -E "^($opt=|# $opt is not set)" "$2" || true)
			[ "$got" = "$line" ] || echo "$line: got '${got:-<absent: unknown symbol or unmet dependency>}'"
			;;
		"# BR2_"*" is not set")
			opt=${line#\# }
			opt=${opt%% *}
			got=$(grep -E "^$opt=" "$2" || true)
			[ -z "$got" ] || echo "$opt: wanted unset, got '$got'"
			;;
		esac
	done <"$1"
}

for defconfig in "$ext"/configs/*_defconfig; do
	name=$(basename "$defconfig")
	step "$name"
	out=$tmp/o-$name
	if ! make -C "$br" O="$out" BR2_EXTERNAL="$ext" "$name" >"$out.log" 2>&1; then
		cat "$out.log"
		failed+=("$name: does not load")
		continue
	fi
	bad=$(defconfig_mismatches "$defconfig" "$out/.config")
	warnings=$(grep -i 'warning' "$out.log" || true)
	if [ -n "$bad" ] || [ -n "$warnings" ]; then
		[ -z "$bad" ] || printf 'dropped or changed:\n%s\n' "$bad"
		[ -z "$warnings" ] || printf 'Kconfig warnings:\n%s\n' "$warnings"
		failed+=("$name: symbols dropped or changed")
	else
		echo "loads: all $(grep -c '^BR2_\|^# BR2_' "$defconfig") symbols kept"
	fi
done

# ---- 3. board, kernel and root file system facts ---------------------------
step "defconfig values derived from board.mk, kernel.mk, rootfs.mk"
if ! PYTHONPATH=$top/tools python3 -m rtflex.generate check; then
	failed+=("defconfigs differ from the facts (make update-defconfigs)")
fi

step "summary"
if [ ${#failed[@]} -gt 0 ]; then
	printf 'FAILED: %s\n' "${failed[@]}"
	exit 1
fi
defconfigs=("$ext"/configs/*_defconfig)
echo "all checks passed (Buildroot $version, ${#defconfigs[@]} defconfigs)"
