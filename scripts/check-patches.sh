#!/bin/bash
# Review checks for the kernel patch series, in libtest's output format so
# `make test` counts them with the host tests:
#  - every patch has a Subject, a commit message and a Signed-off-by;
#  - and what Buildroot's check-package asks of a patch in
#    BR2_GLOBAL_PATCH_DIR (this directory is one): an "Upstream:" trailer
#    and no "[PATCH n/m]" numbering (git format-patch -N);
#  - scripts/checkpatch.pl --strict reports no ERROR or WARNING (its CHECKs
#    are printed for the reviewer, not counted as failures).
#
#   check-patches.sh --src LINUX_SRC --patch-dir DIR
set -uo pipefail
here=$(dirname "$(readlink -f "$0")")
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
usage="usage: $0 --src LINUX_SRC --patch-dir DIR"
src='' patch_dir=''
while [ $# -gt 0 ]; do
	case "$1" in --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}" ;; esac
	case "$1" in
	--src) opt_value "$@"; src=$2; shift 2 ;;
	--patch-dir) opt_value "$@"; patch_dir=$2; shift 2 ;;
	-h | --help) echo "$usage"; exit 0 ;;
	*) usage_error "unknown argument '$1'" ;;
	esac
done
require_options src patch_dir
dir=$(readlink -f "$patch_dir")
[ -f "$src/scripts/checkpatch.pl" ] || { echo "check-patches.sh: no $src/scripts/checkpatch.pl" >&2; exit 1; }
passed=0 failed=0
shopt -s nullglob
for p in "$dir"/*.patch; do
	name=$(basename "$p" .patch)
	problems=""
	grep -q '^Subject: ' "$p" || problems+="no Subject; "
	grep -q '^Signed-off-by: .* <.*@.*>$' "$p" || problems+="no Signed-off-by; "
	grep -q '^Upstream: ' "$p" || problems+="no Upstream: trailer (Buildroot); "
	! grep -q '^Subject: \[PATCH [0-9]*/[0-9]*\]' "$p" || problems+="numbered subject (use git format-patch -N); "
	body=$(sed -n '/^Subject: /,/^---$/p' "$p" | sed '1d;$d' | grep -c -v -e '^Signed-off-by:' -e '^Upstream:' -e '^[[:space:]]*$')
	[ "$body" -ge 3 ] || problems+="commit message too short; "
	# Debian's python3 (with python3-ply) for checkpatch's spdxcheck.py,
	# not another python3 earlier in PATH.
	out=$(cd "$src" && PATH=/usr/bin:$PATH perl scripts/checkpatch.pl --strict --quiet --no-summary --show-types "$p" 2>&1)
	if grep -qE '^(ERROR|WARNING):|open failed' <<<"$out"; then
		problems+="checkpatch: $out"
	elif [ -n "$out" ]; then
		printf '%s\n' "$out" | sed "s/^/    $name: /"
	fi
	if [ -z "$problems" ]; then
		echo "test checkpatch::$name ... ok"
		passed=$((passed + 1))
	else
		echo "test checkpatch::$name ... FAILED"
		printf '%s\n' "$problems" | sed 's/^/    /'
		failed=$((failed + 1))
	fi
done
status=ok
[ "$failed" -eq 0 ] || status=FAILED
echo "test result: $status. $passed passed; $failed failed; 0 ignored; 0 measured; 0 filtered out"
[ "$failed" -eq 0 ]
