#!/bin/bash
# Cross-build the rt-apps workspace for the boards and stage it for the
# root file system:
#   STAGING/usr/bin/<binary>                  every binary of the workspace
#   STAGING/usr/lib/rtflex/kml/<binary>       the static Kernel Mode Linux
#                                             programs (rt-apps/kml/static-bins)
#   STAGING/usr/lib/rtflex/tests/<test>       guest test executables
#                                             (rt-apps/guest-tests, --features guest)
#   STAGING/etc/rtflex/plant.conf             plant-sim's parameters: the plant
#                                             crate's own file (rt-apps/plant/plant.conf)
#
#   build-rt-apps.sh --target TRIPLE --staging DIR [--linux-version VERSION]
#
# --linux-version: the kernel release the guest tests expect to run on
# (RTFLEX_LINUX_VERSION at compile time, rt-apps/guest-tests).
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
usage="usage: $0 --target TRIPLE --staging DIR [--linux-version VERSION]"
target='' staging=''
while [ $# -gt 0 ]; do
	case "$1" in --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}" ;; esac
	case "$1" in
	--target) opt_value "$@"; target=$2; shift 2 ;;
	--staging) opt_value "$@"; staging=$2; shift 2 ;;
	--linux-version) opt_value "$@"; export RTFLEX_LINUX_VERSION=$2; shift 2 ;;
	-h | --help) echo "$usage"; exit 0 ;;
	*) usage_error "unknown argument '$1'" ;;
	esac
done
require_options target staging
need cargo "Install Rust with rustup (https://rustup.rs), then run 'make deps'."
need arm-linux-gnueabihf-gcc "Run 'make deps' (or: apt-get install gcc-arm-linux-gnueabihf)."
rustup target list --installed 2>/dev/null | grep -qx "$target" ||
	die "Rust target $target missing: run 'make deps' (or: rustup target add $target)"

# Executables from cargo's JSON messages: "bin" or "test".
executables() {
	python3 -c '
import json, sys
kind = sys.argv[1]
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") != "compiler-artifact" or not m.get("executable"):
        continue
    is_test = m["profile"]["test"]
    if (kind == "test") == is_test:
        print(m["target"]["name"], m["executable"])
' "$1"
}

rm -rf "$staging"
mkdir -p "$staging/usr/bin" "$staging/usr/lib/rtflex/tests"
rtflex_log "rt-apps: building for $target"
cargo build --release --locked --target "$target" --workspace --bins \
	--message-format=json-render-diagnostics >"$staging.bins.json"
while read -r name exe; do
	install -m 0755 "$exe" "$staging/usr/bin/$name"
done < <(executables bin <"$staging.bins.json")
# Kernel Mode Linux programs: linked statically (the kernel runs no trusted
# program with an ELF interpreter: a dynamic loader and shared libraries
# would run in SYS mode too), in their own target directory so the other
# binaries keep their cached dynamic build. Installed in /usr/bin (USR mode)
# and in /usr/lib/rtflex/kml/, root-owned, mode 0755 (the image is
# assembled under fakeroot): /trusted stays empty; a test or benchmark that
# needs one in SYS mode copies it into /trusted for its run.
static_pkg=kml
mapfile -t static_bins < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$(dirname "$here")/rt-apps/$static_pkg/static-bins")
[ ${#static_bins[@]} -gt 0 ] || die "rt-apps/$static_pkg/static-bins lists no binary"
static_dir="$(dirname "$here")/target/static"
rtflex_log "rt-apps: building ${static_bins[*]} statically"
RUSTFLAGS="-C target-feature=+crt-static" CARGO_TARGET_DIR="$static_dir" \
	cargo build --release --locked --target "$target" --workspace "${static_bins[@]/#/--bin=}"
mkdir -p "$staging/usr/lib/rtflex/kml"
for name in "${static_bins[@]}"; do
	exe="$static_dir/$target/release/$name"
	[ -f "$exe" ] || die "$name was not built (rt-apps/$static_pkg/static-bins)"
	! arm-linux-gnueabihf-readelf -l "$exe" | grep -q INTERP || die "$exe is not statically linked"
	install -m 0755 "$exe" "$staging/usr/bin/$name"
	install -m 0755 "$exe" "$staging/usr/lib/rtflex/kml/$name"
done

rtflex_log "rt-apps: building guest tests"
cargo test --release --locked --target "$target" -p guest-tests --features guest --test '*' --no-run \
	--message-format=json-render-diagnostics >"$staging.tests.json"
while read -r name exe; do
	install -m 0755 "$exe" "$staging/usr/lib/rtflex/tests/$name"
done < <(executables test <"$staging.tests.json")
rm -f "$staging.bins.json" "$staging.tests.json"
install -D -m 0644 "$(dirname "$here")/rt-apps/plant/plant.conf" "$staging/etc/rtflex/plant.conf"
rtflex_log "rt-apps: $(cd "$staging/usr/bin" && echo *) | tests: $(cd "$staging/usr/lib/rtflex/tests" && echo *)"
