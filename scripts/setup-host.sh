#!/bin/bash
# Install everything rtflex needs on a Debian 12 (bookworm) x86_64 host:
# apt packages, the Rust armv7 target and rust-src, and bindgen.
# Idempotent: installs only what is missing. Run as root or with sudo.
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
	# shellcheck of every shell script (scripts/check-shell.sh)
	shellcheck
	# root file system and SD image
	fakeroot e2fsprogs dosfstools mtools genimage bmap-tools
	# boot (fdtput: the rtflex tool adapts a DTB to what QEMU models)
	qemu-system-arm device-tree-compiler
	# tests of the host tool (tools/rtflex/tests, run with pytest-3)
	python3-pytest
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	command -v apt-get >/dev/null || die "not a Debian-like host: install these yourself: ${missing[*]}"
	rtflex_log "installing Debian packages: ${missing[*]}"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
		die "apt-get install failed; run it yourself: apt-get install ${missing[*]}"
fi

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
