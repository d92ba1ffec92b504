#!/bin/bash
# Runs shellcheck on every shell script in the repository (make test runs it):
#
#   check-shell.sh [--list]
#
# A shell script is a file git knows (tracked, or new and not ignored)
# whose first line is a #! of sh, bash or dash, or that says which shell
# it is written for in a "# shellcheck shell=..." line near its top (the
# sourced ones: scripts/lib.sh, the overlay's results.sh, /etc/profile).
# Every finding counts, notes and style ones too; a deliberate exception
# is a "# shellcheck disable=SCnnnn" line with a comment saying why.
# --list prints the scripts and checks nothing. Exit status: 0 clean,
# 1 findings, 2 shellcheck missing.
set -euo pipefail
top=$(dirname "$(dirname "$(readlink -f "$0")")")
cd "$top"

is_shell_script() {
	local first
	first=$(head -n 1 "$1" 2>/dev/null | tr -d '\0') || return 1
	case "$first" in
	'#!'*/sh | '#!'*/bash | '#!'*/dash | '#!'*'env sh' | '#!'*'env bash' | '#!'*/sh\ * | '#!'*/bash\ *) return 0 ;;
	esac
	head -n 5 "$1" | grep -q '^# shellcheck shell=' 2>/dev/null
}

scripts=()
while IFS= read -r -d '' f; do
	[ -f "$f" ] && [ ! -L "$f" ] && is_shell_script "$f" && scripts+=("$f")
done < <(git ls-files -z --cached --others --exclude-standard)

if [ "${1:-}" = --list ]; then
	printf '%s\n' "${scripts[@]}"
	exit 0
fi
command -v shellcheck >/dev/null || {
	echo "check-shell: shellcheck not found: run 'make deps' (or: apt-get install shellcheck)" >&2
	exit 2
}
# -x follows the files a script sources (named with "# shellcheck
# source=" where the path is only known at run time).
if shellcheck -x --severity=style "${scripts[@]}"; then
	echo "shellcheck: ${#scripts[@]} shell scripts, no findings"
else
	# Once more, one line per finding (what make test's summary shows).
	shellcheck -x --severity=style -f gcc "${scripts[@]}" | sed 's/^/error: shellcheck: /' >&2 || true
	exit 1
fi
