# Sourced by the rtflex guest scripts: fd 3 is the results port to the host.
results=console
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	rtflex.results=*) results=${arg#rtflex.results=} ;;
	esac
done
stty -F "/dev/$results" raw -echo 2>/dev/null
exec 3>"/dev/$results"
emit() { echo "$*" >&3; }
# emit_file NAME PATH: send a file's contents, framed.
emit_file() {
	emit "rtflex-guest: file $1"
	cat "$2" >&3
	emit ""
	emit "rtflex-guest: endfile $1"
}

# settle: wait until boot-time deferred work is over before measuring
# latencies. The largest is the driver core's deferred-probe timeout, 10 s
# after boot, which prints a warning per device left unprobed (vexpress has
# several) and put a 1-2 ms outlier into whichever latency run was going on
# then. Under QEMU -icount sleep=off the idle wait costs no host time.
SETTLE_UPTIME=15
settle() {
	while [ "$(cut -d. -f1 /proc/uptime)" -lt "$SETTLE_UPTIME" ]; do
		sleep 1
	done
}
