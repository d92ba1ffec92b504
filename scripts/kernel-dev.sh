#!/bin/bash
# Work on the kernel patch series as git commits.
#
#   kernel-dev.sh init --version V --hash-file F --debian-package P
#                      --debian-suite S --mirror URL --download-dir DIR
#                                    (called by `make kernel-dev`)
#       unpack the pristine kernel (get-kernel-source.sh's options, without
#       patches) into build/kernel-dev/linux, commit it as
#       the base, and apply kernel/patches/linux/*.patch with `git am`: one
#       commit per patch. Edit, build and commit there as usual.
#   kernel-dev.sh export             (called by `make kernel-export`)
#       write the commits on top of the base back to kernel/patches/linux/
#       with `git format-patch` (the old *.patch files are replaced).
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
top=$(dirname "$here")
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
dev="$top/build/kernel-dev/linux"
patches="$top/kernel/patches/linux"

case "${1:-}" in
init)
	shift
	[ ! -e "$dev" ] || die "$dev exists: remove it first (or export your work with 'make kernel-export')"
	empty=$(mktemp -d)
	"$here/get-kernel-source.sh" "$@" --patch-dir "$empty" --out "$dev"
	rmdir "$empty"
	cd "$dev"
	version=$(make -s kernelversion)
	git init -q
	# -f: Debian's tree ignores everything at its top level (/* in
	# .gitignore); add new files with 'git add -f' there too.
	git add -A -f
	git -c user.name=rtflex -c user.email=rtflex@localhost commit -q -m "Linux $version (pristine)"
	git tag rtflex-base
	shopt -s nullglob
	for p in "$patches"/*.patch; do
		git am -q "$p" || die "git am $(basename "$p") failed in $dev"
	done
	rtflex_log "kernel tree for development: $dev (base tag: rtflex-base)"
	if grep -qx '/\*' .gitignore; then
		rtflex_log "note: this tree's .gitignore ignores new top-level paths: use 'git add -f' for new files"
	fi
	;;
export)
	cd "$dev" || die "no $dev: run 'make kernel-dev' first"
	rm -f "$patches"/*.patch
	git format-patch -q -N --no-signature -o "$patches" rtflex-base..HEAD
	rtflex_log "exported $(git rev-list --count rtflex-base..HEAD) patches to kernel/patches/linux/"
	;;
*)
	die "usage: $0 init --version V --hash-file F --debian-package P --debian-suite S --mirror URL --download-dir DIR | export"
	;;
esac
