#!/bin/bash
# Install everything rtflex needs on a Debian 12 (bookworm) x86_64 host:
# apt packages (the list below, then those the boards name in board.mk),
# the Rust armv7 target and rust-src, and bindgen.
# Idempotent: installs only what is missing. Run as root or with sudo.
# --lava: the apt packages and Debian's lava-dispatcher (make lava-run), no Rust parts.
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

BINDGEN_VERSION=0.72.1
RUST_TARGET=armv7-unknown-linux-gnueabihf

APT_PACKAGES=(
	# kernel build (C and Rust, LLVM)
	make bc bison flex libssl-dev libelf-dev cpio kmod xz-utils zstd python3 python3-ply python3-git perl rsync patch
	clang-19 lld-19 llvm-19 libclang-19-dev ccache
	# user space cross build and host unit tests under qemu-user
	gcc-arm-linux-gnueabihf libc6-dev-armhf-cross qemu-user
	# rtla's cross build finds Debian's armhf libtracefs with it (scripts/build-rtla.sh)
	pkg-config
	# shellcheck of every shell script (scripts/check-shell.sh)
	shellcheck
	# root file system and SD image
	fakeroot e2fsprogs dosfstools mtools genimage bmap-tools
	# boot (fdtput: the rtflex tool adapts a DTB to what QEMU models)
	qemu-system-arm device-tree-compiler
	# make profile: the tbcount QEMU plugin (tools/qemu-plugins) is built with GLib
	libglib2.0-dev
	# tests of the host tool (tools/rtflex/tests, run with pytest-3)
	python3-pytest
	# the latency lab's report (make lab-report: histograms with matplotlib)
	python3-matplotlib
	# board farms: make test checks every board's LAVA job against
	# lava-common's job schema (small: it and python3-voluptuous)
	lava-common python3-yaml python3-jinja2
)

# install_missing WHAT PACKAGE...: install the packages not installed yet
# (WHAT says what they are for).
install_missing() {
	local what=$1 p missing=() sudo=""
	shift
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	[ ${#missing[@]} -gt 0 ] || return 0
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	command -v apt-get >/dev/null || die "not a Debian-like host: install these yourself: ${missing[*]}"
	rtflex_log "installing Debian packages$what: ${missing[*]}"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
		die "apt-get install failed; run it yourself: apt-get install ${missing[*]}"
}
# Room for a whole build from a fresh clone (make test-all): the kernel
# source and objects (3.5 GiB), the Rust targets (5-7 GiB: cross, host
# tests, clippy), root file systems and every board's image (1.5 GiB),
# ccache's cache (up to its 5 GiB default, outside the checkout).
need_space "$here/.." 14 "a build from a fresh clone (make, make test-all)"
install_missing "" "${APT_PACKAGES[@]}"

# setup-host.sh --lava (make lava-run): Debian's LAVA dispatcher as well,
# for a board's LAVA job end to end on this machine. Heavy (about 150
# packages with QEMU x86, libguestfs and systemd), so only for that target.
if [ "${1:-}" = --lava ]; then
	install_missing " for make lava-run (Debian's LAVA dispatcher, lava-run: about 150 packages, once)" \
		lava-dispatcher
	rtflex_log "lava-dispatcher is in place ($(dpkg-query -W -f='${Version}' lava-dispatcher))"
	exit 0
fi

# Packages the boards name in their board.mk (BOARD_QEMU_UBOOT_PACKAGE: the
# U-Boot that QEMU runs as qemu-virt's firmware), read with the host tool
# now that make and python3 are here.
board_packages=$(PYTHONPATH="$here/../tools" python3 -m rtflex.board host-packages) ||
	die "cannot read the boards' host packages (python3 -m rtflex.board host-packages)"
while read -r package board; do
	[ -n "$package" ] || continue
	install_missing " for board $board" "$package"
done <<<"$board_packages"

export PATH="$HOME/.cargo/bin:$PATH"
need rustup "Install Rust with rustup (https://rustup.rs) and run 'make deps' again."
if ! rustup target list --installed | grep -qx "$RUST_TARGET"; then
	rtflex_log "adding Rust target $RUST_TARGET"
	rustup target add "$RUST_TARGET"
fi
if ! rustup component list --installed | grep -q '^rust-src'; then
	rtflex_log "adding rust-src (the kernel builds core and alloc from it)"
	rustup component add rust-src
fi
if ! rustup component list --installed | grep -q '^clippy'; then
	rtflex_log "adding clippy (make lint, part of make test)"
	rustup component add clippy
fi
if ! bindgen --version 2>/dev/null | grep -q "$BINDGEN_VERSION"; then
	rtflex_log "installing bindgen-cli $BINDGEN_VERSION (takes a few minutes once)"
	cargo install --locked --quiet bindgen-cli --version "$BINDGEN_VERSION"
fi
rtflex_log "host dependencies are in place"
