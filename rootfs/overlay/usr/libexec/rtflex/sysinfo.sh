# shellcheck shell=sh
# The facts of the running system as JSON, for result bundles
# (docs/result-bundle.md, header.json). Sourced by the latency lab's runner
# (/usr/libexec/rtflex/lab); busybox ash and any POSIX shell.
#
#   header_json KIND VERSION OPTIONS_JSON   print header.json (the system's
#                                           facts; OPTIONS_JSON: the
#                                           writer's options object)
# and the helpers below (json_str, json_lines, read_file, cmdline_param,
# cpu_count, emulation).

read -r cmdline </proc/cmdline

# json_str TEXT: TEXT as a JSON string (line breaks and tabs become
# spaces, other control and non-ASCII bytes are dropped).
json_str() {
	printf '"%s"' "$(printf '%s' "$1" | tr '\n\t' '  ' | tr -cd ' -~' | sed 's/[\\"]/\\&/g')"
}

# json_lines TEXT: the non-empty lines of TEXT as a JSON array of strings.
json_lines() {
	_out='' _sep=''
	while IFS= read -r _line; do
		[ -n "$_line" ] || continue
		_out="$_out$_sep$(json_str "$_line")"
		_sep=", "
	done <<EOF
$1
EOF
	printf '[%s]' "$_out"
}

# cmdline_param NAME: the value of the last NAME=VALUE (or bare NAME: empty)
# on the kernel command line; status 1 if there is none.
cmdline_param() {
	_found=1 _value=
	set -f
	for _arg in $cmdline; do
		case "$_arg" in
		"$1"=*) _found=0 _value=${_arg#"$1"=} ;;
		"$1") _found=0 _value= ;;
		esac
	done
	set +f
	printf '%s' "$_value"
	return $_found
}

# json_param NAME: the kernel command line parameter NAME as a JSON
# string, or null if it is not there.
json_param() {
	if _v=$(cmdline_param "$1"); then json_str "$_v"; else printf null; fi
}

# read_file PATH: the file's content (one line, NUL bytes dropped), or
# nothing if it cannot be read.
read_file() {
	[ -r "$1" ] || return 0
	tr -d '\0' <"$1" | tr '\n' ' ' | sed 's/ *$//'
}

# json_file PATH: read_file PATH as a JSON string, or null if unreadable.
json_file() {
	if [ -r "$1" ]; then json_str "$(read_file "$1")"; else printf null; fi
}

# cpu_count LIST: the number of CPUs in a list such as 0-3,6.
cpu_count() {
	echo "$1" | awk -F, '{ for (i = 1; i <= NF; i++) { n = split($i, r, "-"); c += (n == 2 ? r[2] - r[1] + 1 : 1) } } END { print c + 0 }'
}

# emulation: evidence that this is not a real board, one finding per line
# (nothing found: a board, as far as these signs tell).
emulation() {
	_compatible=$(tr '\0' ' ' </proc/device-tree/compatible 2>/dev/null | sed 's/ *$//')
	# QEMU's SD card model calls every card "QEMU!" (product name, CID).
	for _f in /sys/bus/mmc/devices/*/name; do
		[ -r "$_f" ] && [ "$(cat "$_f")" = "QEMU!" ] &&
			echo "MMC card ${_f%/name} is named QEMU! (QEMU's SD card model)"
	done
	# virtio devices of QEMU: vendor 0x554d4551 ("QEMU").
	for _f in /sys/bus/virtio/devices/*/vendor; do
		[ -r "$_f" ] && [ "$(cat "$_f")" = 0x554d4551 ] &&
			echo "virtio device ${_f%/vendor} has QEMU's vendor id"
	done
	# The device tree QEMU's virt machine generates, and its fw-cfg device.
	case " $_compatible " in
	*" linux,dummy-virt "*) echo "device tree compatible linux,dummy-virt (QEMU virt machine)" ;;
	esac
	for _f in /proc/device-tree/fw-cfg@*/compatible; do
		[ -r "$_f" ] && [ "$(read_file "$_f")" = qemu,fw-cfg-mmio ] &&
			echo "device tree has QEMU's fw-cfg device"
	done
	# A hypervisor (KVM, Xen) announced in the device tree or in DMI.
	[ -e /proc/device-tree/hypervisor ] &&
		echo "device tree has a /hypervisor node ($(read_file /proc/device-tree/hypervisor/compatible))"
	case "$(read_file /sys/class/dmi/id/sys_vendor)" in
	QEMU* | *KVM* | Xen*) echo "DMI system vendor $(read_file /sys/class/dmi/id/sys_vendor)" ;;
	esac
	return 0
}

# header_json KIND VERSION OPTIONS_JSON: header.json of a bundle written now.
header_json() {
	_cpu_list=$(read_file /sys/devices/system/cpu/online)
	_sha=
	[ -r /proc/config.gz ] && _sha=$(sha256sum /proc/config.gz | cut -d ' ' -f 1)
	_evidence=$(emulation)
	_emulated=false
	[ -z "$_evidence" ] || _emulated=true
	cat <<EOF
{
  "format": "rtflex-result-bundle",
  "version": $2,
  "kind": "$1",
  "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "hostname": $(json_str "$(hostname)"),
  "kernel_release": $(json_str "$(uname -r)"),
  "kernel_version": $(json_str "$(uname -v)"),
  "machine": $(json_str "$(uname -m)"),
  "config_gz_sha256": $(if [ -n "$_sha" ]; then json_str "$_sha"; else printf null; fi),
  "cmdline": $(json_str "$cmdline"),
  "clocksource": $(json_file /sys/devices/system/clocksource/clocksource0/current_clocksource),
  "clocksources_available": $(json_file /sys/devices/system/clocksource/clocksource0/available_clocksource),
  "cpus_online": $(cpu_count "$_cpu_list"),
  "cpu_list": $(json_str "$_cpu_list"),
  "cpu_model": $(json_str "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"),
  "isolation": {
    "isolcpus": $(json_param isolcpus),
    "nohz_full": $(json_param nohz_full),
    "rcu_nocbs": $(json_param rcu_nocbs),
    "irqaffinity": $(json_param irqaffinity),
    "isolated_cpus": $(json_file /sys/devices/system/cpu/isolated),
    "nohz_full_cpus": $(json_file /sys/devices/system/cpu/nohz_full)
  },
  "sched_rt_runtime_us": $(json_file /proc/sys/kernel/sched_rt_runtime_us),
  "board_model": $(json_file /proc/device-tree/model),
  "board_compatible": $(json_str "$(tr '\0' ' ' </proc/device-tree/compatible 2>/dev/null | sed 's/ *$//')"),
  "emulated": $_emulated,
  "emulation_evidence": $(json_lines "$_evidence"),
  "options": $3
}
EOF
}
