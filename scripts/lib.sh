# Shared helpers for rtflex build scripts (sourced, not executed).
# shellcheck shell=bash

rtflex_log() { printf '\033[1m[rtflex]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[rtflex] error:\033[0m %s\n' "$*" >&2; exit 1; }

# need TOOL HOW: stop with a message saying what to do when TOOL is missing.
need() {
	command -v "$1" >/dev/null 2>&1 || die "'$1' not found. $2"
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
