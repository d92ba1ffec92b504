#!/bin/bash
# The lockdown claim of Kernel Mode Linux's threat model (kernel patch 0004,
# Documentation/arch/arm/kernel-mode-linux.rst): KML cannot be built into a
# kernel with the lockdown LSM, whose promise is that not even root changes
# the running kernel (a trusted program is root-installed code at PL1). The
# claim rests on a Kconfig dependency (depends on !SECURITY_LOCKDOWN_LSM);
# this shows that it holds for the image's own configuration:
#
#  1. the image's kernel configuration (defconfig + fragments, olddefconfig),
#     made in a temporary directory, has CONFIG_KERNEL_MODE_LINUX=y: the
#     control, without which step 2 would prove nothing;
#  2. the same with the lockdown LSM asked for on top (enabled early, in
#     confidentiality mode) has the lockdown LSM and no KML, although
#     rtflex.config still asks for it.
#
# Only Kconfig runs (its host tool is built in the temporary directory):
# seconds, no lock needed, the kernel source is only read. Output in
# libtest's format, so `make test` counts the two checks with the host tests.
#
#   check-kml-lockdown.sh --src LINUX_SRC --defconfig NAME --llvm-suffix SUFFIX
#                         [--fragment FILE]...
set -uo pipefail
here=$(dirname "$(readlink -f "$0")")
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
usage="usage: $0 --src LINUX_SRC --defconfig NAME --llvm-suffix SUFFIX [--fragment FILE]..."
src='' defconfig='' llvm_suffix=''
fragments=()
while [ $# -gt 0 ]; do
	case "$1" in --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}" ;; esac
	case "$1" in
	--src) opt_value "$@"; src=$2; shift 2 ;;
	--defconfig) opt_value "$@"; defconfig=$2; shift 2 ;;
	--llvm-suffix) opt_value "$@"; llvm_suffix=$2; shift 2 ;;
	--fragment) opt_value "$@"; fragments+=("$2"); shift 2 ;;
	-h | --help) echo "$usage"; exit 0 ;;
	*) usage_error "unknown argument '$1'" ;;
	esac
done
require_options src defconfig llvm_suffix
[ -f "$src/Makefile" ] || die "no kernel source at $src (make kernel-source)"
for f in "${fragments[@]}"; do
	[ -f "$f" ] || usage_error "fragment $f does not exist"
done
grep -q 'config KERNEL_MODE_LINUX' "$src/arch/arm/Kconfig" ||
	die "$src has no CONFIG_KERNEL_MODE_LINUX: not the patched tree"

obj=$(mktemp -d "${TMPDIR:-/tmp}/rtflex-kml-lockdown.XXXXXX")
trap 'rm -rf "$obj"' EXIT
log="$obj/kconfig.log"
kmake() { make -s -C "$src" O="$obj" ARCH=arm LLVM="$llvm_suffix" "$@" >>"$log" 2>&1; }
# The value of option $1 in the configuration: y, m, a string, or "unset".
value() {
	local line
	line=$(grep -E "^$1=" "$obj/.config") || { echo unset; return; }
	echo "${line#*=}"
}

passed=0 failed=0
# result NAME PROBLEMS: one libtest line.
result() {
	if [ -z "$2" ]; then
		echo "test kml-lockdown::$1 ... ok"
		passed=$((passed + 1))
	else
		echo "test kml-lockdown::$1 ... FAILED"
		printf '    %s\n' "${2%; }"
		failed=$((failed + 1))
	fi
}

# 1. The image's configuration.
problems=''
if kmake "$defconfig" && { [ ${#fragments[@]} -eq 0 ] || cat "${fragments[@]}" >>"$obj/.config"; } &&
	kmake olddefconfig; then
	kml=$(value CONFIG_KERNEL_MODE_LINUX)
	lsm=$(value CONFIG_SECURITY_LOCKDOWN_LSM)
	[ "$kml" = y ] || problems+="CONFIG_KERNEL_MODE_LINUX is $kml in the image's configuration (the control needs y); "
	[ "$lsm" = unset ] || problems+="CONFIG_SECURITY_LOCKDOWN_LSM is $lsm in the image's configuration; "
else
	problems="Kconfig failed: $(tail -5 "$log")"
fi
result image_configuration_has_kml "$problems"

# 2. The same, with the lockdown LSM asked for.
problems=''
cat >>"$obj/.config" <<'EOF'
CONFIG_SECURITY=y
CONFIG_SECURITY_LOCKDOWN_LSM=y
CONFIG_SECURITY_LOCKDOWN_LSM_EARLY=y
CONFIG_LOCK_DOWN_KERNEL_FORCE_CONFIDENTIALITY=y
EOF
if kmake olddefconfig; then
	for opt in CONFIG_SECURITY_LOCKDOWN_LSM CONFIG_SECURITY_LOCKDOWN_LSM_EARLY \
		CONFIG_LOCK_DOWN_KERNEL_FORCE_CONFIDENTIALITY; do
		v=$(value "$opt")
		[ "$v" = y ] || problems+="$opt is $v: the lockdown LSM was not configured, the check proves nothing; "
	done
	grep -qx 'CONFIG_KERNEL_MODE_LINUX=y' "${fragments[@]}" /dev/null ||
		problems+="no fragment asks for CONFIG_KERNEL_MODE_LINUX=y; "
	kml=$(value CONFIG_KERNEL_MODE_LINUX)
	[ "$kml" = unset ] || problems+="CONFIG_KERNEL_MODE_LINUX is $kml with the lockdown LSM (must be unset); "
else
	problems="Kconfig failed: $(tail -5 "$log")"
fi
result lockdown_lsm_excludes_kml "$problems"

status=ok
[ "$failed" -eq 0 ] || status=FAILED
echo "test result: $status. $passed passed; $failed failed; 0 ignored; 0 measured; 0 filtered out"
[ "$failed" -eq 0 ]
