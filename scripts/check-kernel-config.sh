#!/bin/bash
# Check that every option the kernel config fragments ask for survived
# olddefconfig (or Buildroot's merge_config.sh + olddefconfig): Kconfig
# silently drops an option whose dependencies are not met, e.g.
# CONFIG_RUST=y when rustc or bindgen were not usable at configure time.
#
#   check-kernel-config.sh DOTCONFIG FRAGMENT...
#
# For each line of each fragment:
#   CONFIG_FOO=value          .config must have exactly CONFIG_FOO=value
#   # CONFIG_FOO is not set   .config must have it unset or absent
# Other lines (comments, blank lines) are ignored. Fragments are merged in
# the order given and a later one wins, as in the kernel's merge (e.g.
# debug.config turns on CONFIG_PROVE_LOCKING, which rt.config turns off):
# an option is checked against the last fragment that names it. Exits 0
# when everything survived; otherwise prints each missing option to stderr
# and exits 1. Exit status 2: bad usage or unreadable file.
set -euo pipefail

if [ $# -lt 2 ]; then
	echo "usage: $0 DOTCONFIG FRAGMENT..." >&2
	exit 2
fi
dotconfig=$1
shift
for f in "$dotconfig" "$@"; do
	if [ ! -r "$f" ]; then
		echo "$0: cannot read $f" >&2
		exit 2
	fi
done

# What each option must be: the line of the last fragment that names it.
declare -A want from
order=()
for fragment in "$@"; do
	while IFS= read -r line || [ -n "$line" ]; do
		case "$line" in
		CONFIG_*=*)
			opt=${line%%=*}
			value=$line
			;;
		"# CONFIG_"*" is not set")
			opt=${line#\# }
			opt=${opt%% *}
			value=""
			;;
		*) continue ;;
		esac
		[ -n "${from[$opt]+set}" ] || order+=("$opt")
		want[$opt]=$value
		from[$opt]=${fragment##*/}
	done <"$fragment"
done

missing=()
for opt in "${order[@]}"; do
	got=$(grep -E "^($opt=|# $opt is not set)" "$dotconfig" || true)
	if [ -z "${want[$opt]}" ]; then
		case "$got" in
		"" | "# $opt is not set") ;;
		*) missing+=("$opt: wanted unset, got '$got' (${from[$opt]})") ;;
		esac
	elif [ "$got" != "${want[$opt]}" ]; then
		missing+=("${want[$opt]}: got '${got:-<absent: dependencies not met>}' (${from[$opt]})")
	fi
done

if [ ${#missing[@]} -gt 0 ]; then
	printf 'error: %d kernel option(s) from the fragments did not survive in %s:\n' \
		"${#missing[@]}" "$dotconfig" >&2
	printf '    %s\n' "${missing[@]}" >&2
	exit 1
fi
echo "kernel config checked: all ${#order[@]} options of $# fragment(s) survived in $dotconfig"
