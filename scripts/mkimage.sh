#!/bin/bash
# Make the board's SD card image with genimage.
#
#   mkimage.sh --config GENIMAGE_CFG --out DIR [--input FILE]...
#
# The input files are copied into genimage's input directory under their
# own names; the image is written to DIR/sdcard.img, padded to a
# power-of-two size (QEMU's SD card model requires it; harmless on a real
# card), with a .bmap for bmaptool when bmaptool is installed.
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
usage="usage: $0 --config GENIMAGE_CFG --out DIR [--input FILE]..."
cfg='' out='' inputs=()
while [ $# -gt 0 ]; do
	case "$1" in --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}" ;; esac
	case "$1" in
	--config) opt_value "$@"; cfg=$2; shift 2 ;;
	--out) opt_value "$@"; out=$2; shift 2 ;;
	--input) opt_value "$@"; inputs+=("$2"); shift 2 ;;
	-h | --help) echo "$usage"; exit 0 ;;
	*) usage_error "unknown argument '$1'" ;;
	esac
done
require_options cfg out
[ -f "$cfg" ] || usage_error "--config $cfg does not exist"
need genimage "Run 'make deps' (or: apt-get install genimage dosfstools mtools)."

work="$out/genimage"
rm -rf "$work" && mkdir -p "$work/input" "$work/root" "$work/tmp"
for f in "${inputs[@]}"; do
	cp "$f" "$work/input/"
done
genimage --config "$cfg" --inputpath "$work/input" --outputpath "$work" \
	--rootpath "$work/root" --tmppath "$work/tmp" >"$work/genimage.log" 2>&1 || {
	cat "$work/genimage.log" >&2
	die "genimage failed for $cfg"
}
size=$(stat -c %s "$work/sdcard.img")
pow=$((1 << 20))
while [ "$pow" -lt "$size" ]; do pow=$((pow * 2)); done
truncate -s "$pow" "$work/sdcard.img"
mv "$work/sdcard.img" "$out/sdcard.img"
if command -v bmaptool >/dev/null 2>&1; then
	bmaptool create -o "$out/sdcard.img.bmap" "$out/sdcard.img"
fi
rtflex_log "SD card image: $out/sdcard.img ($((pow >> 20)) MiB)"
