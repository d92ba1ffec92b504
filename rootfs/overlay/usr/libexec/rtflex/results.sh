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
