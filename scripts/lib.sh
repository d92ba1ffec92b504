# Shared helpers for rtflex build scripts (sourced, not executed).
# shellcheck shell=bash

rtflex_log() { printf '\033[1m[rtflex]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[rtflex] error:\033[0m %s\n' "$*" >&2; exit 1; }

# need TOOL HOW: stop with a message saying what to do when TOOL is missing.
need() {
	command -v "$1" >/dev/null 2>&1 || die "'$1' not found. $2"
}

# need_space DIR GB WHAT: stop before a build fills the disk (the tools'
# own errors then are "No space left on device" halfway through) when the
# file system of DIR (or its nearest existing parent) has less than GB GiB
# free; WHAT says what needs the room.
need_space() {
	local dir=$1 gb=$2 what=$3 avail
	while [ ! -d "$dir" ]; do dir=$(dirname "$dir"); done
	avail=$(df -Pk "$dir" | awk 'NR == 2 { print int($4 / 1048576) }')
	[ "$avail" -ge "$gb" ] ||
		die "$what needs about $gb GiB free in $dir; only $avail GiB are free there. Free some space (build outputs of other checkouts, /tmp) and run make again."
}

# Private apt configuration: Debian package downloads that do not touch the
# host's apt sources or state. Usage: apt_private DIR SUITE ARCH
apt_private_opts() {
	local dir=$1
	printf '%s\n' \
		-o "Dir::Etc::SourceList=$dir/sources.list" \
		-o "Dir::Etc::SourceParts=/dev/null" \
		-o "Dir::Etc::Preferences=/dev/null" \
		-o "Dir::Etc::PreferencesParts=/dev/null" \
		-o "Dir::State=$dir/state" \
		-o "Dir::State::Lists=$dir/state/lists" \
		-o "Dir::State::status=$dir/state/status" \
		-o "Dir::Cache=$dir/cache" \
		-o "Debug::NoLocking=1" \
		-o "APT::Sandbox::User=root"
}
apt_private_init() {
	local dir=$1 suite=$2 arch=$3 mirror=${4:-http://deb.debian.org/debian}
	mkdir -p "$dir/state/lists/partial" "$dir/cache/archives/partial"
	: > "$dir/state/status"
	printf 'deb [arch=%s signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s main\n' \
		"$arch" "$mirror" "$suite" > "$dir/sources.list"
}

# Named options. A script sets `usage` (its synopsis) and parses "$@" with
#   while [ $# -gt 0 ]; do
#       case "$1" in --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}" ;; esac
#       case "$1" in
#       --src) opt_value "$@"; src=$2; shift 2 ;;
#       -h | --help) echo "$usage"; exit 0 ;;
#       *) usage_error "unknown argument '$1'" ;;
#       esac
#   done
#   require_options src ...
# (--name=value works too). Bad arguments stop with the usage, status 2.
usage_error() {
	printf '\033[1;31m[rtflex] error:\033[0m %s: %s\n%s\n' "$(basename "$0")" "$1" "${usage:?}" >&2
	exit 2
}
# opt_value "$@": the option in $1 has a value in $2.
opt_value() {
	[ $# -ge 2 ] || usage_error "$1 needs a value"
	case "$2" in
	--*) usage_error "$1 needs a value, not the option '$2'" ;;
	esac
}
# require_options VAR...: each variable is set (non-empty); its option is
# --VAR with dashes for underscores.
require_options() {
	local v
	for v in "$@"; do
		[ -n "${!v:-}" ] || usage_error "--${v//_/-} is required"
	done
}
