# shellcheck shell=sh
# The rtflex guest-to-host result protocol: its specification and its one
# emitter. Every guest script that reports to the host sources this file
# (/usr/libexec/rtflex/run-*) and writes only through the functions below;
# the host parses the stream with tools/rtflex/protocol.py, which follows
# this specification.
#
# TRANSPORT. The results port is the tty named by rtflex.results=<tty> on
# the kernel command line (the board's results tty, a second UART; the
# console when none is named), set raw without echo. QEMU writes it to
# build/<board>/<mode>-results.log. The host reads it as UTF-8 (invalid
# bytes replaced) and drops every CR.
#
# GRAMMAR. The stream is a sequence of lines. A frame is a line
#
#     rtflex-guest: KEYWORD[ ARGUMENTS]
#
# (the prefix, a space, a keyword; arguments separated by single spaces;
# NAME and WHEN are one word). Frames, in the order a script sends them:
#
#     begin RELEASE          first frame: the guest kernel (uname -r)
#     cpus N                 the guest's online CPUs (bench)
#     args ARGS...           the parameters both tools of a comparison ran
#                            with (compare)
#     rtlat-args ARGS...     the rtlat parameters common to every bench run
#     debug-locks WHEN STATE lockdep's debug_locks (1 on, 0 off) at WHEN,
#                            begin or end of the tests (debug kernels)
#     skip NAME              test binary NAME, or single test BINARY::TEST,
#                            is not run here (rtflex.skip=); counted skipped
#     run NAME [COMMAND...]  program NAME starts (COMMAND: what runs, for
#                            reports); opens a block holding its output when
#                            it is streamed (run_streamed), else empty
#     exit NAME STATUS       closes run NAME's block: its exit status
#                            (decimal; 0 is success, 128+N killed by signal N)
#     file NAME              opens a block holding the content of file NAME
#     endfile NAME           closes it
#     error TEXT             a step of the script failed; the host fails the
#                            run with TEXT
#     end                    last frame: the script is done; power-off follows
#
# BLOCKS. The lines between an opening frame (run, file) and its closing
# frame (the exit or endfile with the same NAME) are payload, never parsed
# as frames: only that closing frame ends the block. The emitter ends each
# block's payload with one line break of its own, so the closing frame
# starts a line even after output without a final newline; the receiver
# drops that one line break (a file arrives byte for byte). Outside blocks,
# every line must be a frame with a keyword above; anything else, a block
# left open at the end, or a stream without "end" is a protocol error
# (a guest that stopped early) and fails the run.
#
# NAMES. Bench, compare and fuzz runs are named by their guest script;
# the host learns them from the run frames (and a run's COMMAND) and keeps
# no list of its own. Files a run writes are sent as NAME.txt (its output)
# and NAME.json (its --json report, when written).
#
# KERNEL LOG MARKER. Before the first test, run-guest-tests writes the
# line in TESTS_BEGIN_MARKER into the kernel log (/dev/kmsg): console lines
# above it are from boot (the host and the kernel_log guest test split the
# log there; rt-apps/guest-tests/src/lib.rs has the same text).
# shellcheck disable=SC2034 # used by run-guest-tests
TESTS_BEGIN_MARKER="rtflex-guest: tests begin"

# kernel_param NAME: the value of the last NAME=VALUE on the kernel command
# line, or nothing.
kernel_param() {
	read -r _cmdline </proc/cmdline
	_value=
	for _arg in $_cmdline; do
		case "$_arg" in
		"$1"=*) _value=${_arg#"$1"=} ;;
		esac
	done
	echo "$_value"
}

# RTFLEX_RESULTS_FILE (a path) replaces the port: the host's tests of this
# emitter (tools/rtflex/tests/test_protocol.py) write into a file.
if [ -n "${RTFLEX_RESULTS_FILE:-}" ]; then
	exec 3>"$RTFLEX_RESULTS_FILE"
else
	results=$(kernel_param rtflex.results)
	results=${results:-console}
	stty -F "/dev/$results" raw -echo 2>/dev/null
	exec 3>"/dev/$results"
fi

# frame KEYWORD [ARGUMENTS...]: send one frame; a keyword outside the
# grammar above is refused (and reported to the host as an error frame).
frame() {
	case "$1" in
	begin | cpus | args | rtlat-args | debug-locks | skip | run | exit | file | endfile | error | end) ;;
	*)
		echo "rtflex-guest: error results.sh: unknown frame keyword '$1'" >&3
		return 1
		;;
	esac
	echo "rtflex-guest: $*" >&3
}

# send_file NAME PATH: the content of PATH as file NAME.
send_file() {
	frame file "$1"
	cat "$2" >&3
	echo >&3
	frame endfile "$1"
}

# run_streamed NAME COMMAND...: run COMMAND with its output (stdout and
# stderr) streamed to the host inside run NAME's block. Returns its status.
run_streamed() {
	_name=$1
	shift
	frame run "$_name" "$@"
	"$@" >&3 2>&1
	_rc=$?
	echo >&3
	frame exit "$_name" "$_rc"
	return "$_rc"
}

# run_captured NAME COMMAND...: run COMMAND with its output into
# /tmp/NAME.txt, then send its status, NAME.txt and, if COMMAND wrote it,
# /tmp/NAME.json as NAME.json (give COMMAND --json=/tmp/NAME.json).
# Returns its status.
run_captured() {
	_name=$1
	shift
	rm -f "/tmp/$_name.json"
	frame run "$_name" "$@"
	"$@" >"/tmp/$_name.txt" 2>&1
	_rc=$?
	echo >&3
	frame exit "$_name" "$_rc"
	send_file "$_name.txt" "/tmp/$_name.txt"
	if [ -f "/tmp/$_name.json" ]; then
		send_file "$_name.json" "/tmp/$_name.json"
	fi
	return "$_rc"
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
