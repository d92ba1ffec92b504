//! Thin wrappers around the Linux/libc calls rtlat needs.
//!
//! Every `unsafe` block is a single FFI call (or the zero-initialisation of a
//! plain C struct) whose pointer arguments are references to live, correctly
//! typed local values; each carries a `// SAFETY:` comment saying why.

use crate::options::{Clock, Policy};
use crate::time::Ts;
use rt_utils::sched;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by SIGINT/SIGTERM (and by a thread whose `-D` duration has elapsed):
/// every measuring thread and the main loop stop when they see it.
pub static STOP: AtomicBool = AtomicBool::new(false);

/// The libc clock id for a [`Clock`].
pub fn clock_id(c: Clock) -> libc::clockid_t {
    match c {
        Clock::Monotonic => libc::CLOCK_MONOTONIC,
        Clock::Realtime => libc::CLOCK_REALTIME,
    }
}

fn to_timespec(t: &Ts) -> libc::timespec {
    // On 32-bit glibc targets time_t/c_long are 32 bits wide. The libc crate
    // binds the classic symbols, which glibc >= 2.34 implements on top of the
    // 64-bit-time syscalls (clock_nanosleep_time64, clock_gettime64).
    libc::timespec {
        tv_sec: t.sec as libc::time_t,
        tv_nsec: t.nsec as _,
    }
}

// time_t and c_long are 32 bits on armv7 and 64 bits on x86-64: the casts
// are needed on one of them.
#[allow(clippy::unnecessary_cast)]
fn from_timespec(ts: &libc::timespec) -> Ts {
    // The kernel returns normalised values.
    Ts {
        sec: ts.tv_sec as i64,
        nsec: ts.tv_nsec as i64,
    }
}

/// `clock_gettime(clock)`. Errors are returned as errno values.
#[inline]
pub fn clock_gettime(clock: libc::clockid_t) -> Result<Ts, i32> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec owned by this frame; the call
    // writes only into it.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    if rc == 0 {
        Ok(from_timespec(&ts))
    } else {
        Err(io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EINVAL))
    }
}

/// `clock_nanosleep(clock, TIMER_ABSTIME, until)`. Returns 0 or the error
/// number (`EINTR` when a signal handler ran).
#[inline]
pub fn clock_nanosleep_abs(clock: libc::clockid_t, until: &Ts) -> i32 {
    let ts = to_timespec(until);
    // SAFETY: `ts` is a valid timespec that outlives the call; the remaining
    // time pointer may be NULL (it is unused with TIMER_ABSTIME).
    unsafe { libc::clock_nanosleep(clock, libc::TIMER_ABSTIME, &ts, std::ptr::null_mut()) }
}

/// `write(2)` of all of `buf` to `fd`, retried after a signal (EINTR) and
/// after a short write. Allocates nothing (errors are plain OS codes).
#[inline]
pub fn write_all(fd: std::os::fd::RawFd, buf: &[u8]) -> io::Result<()> {
    crate::action::write_all_with(buf, |b| write(fd, b))
}

/// One `write(2)` of `buf` to `fd`: the bytes written, or the error
/// (EINTR included; `crate::action::write_all_with` retries). Allocates
/// nothing (errors are plain OS codes).
#[inline]
pub fn write(fd: std::os::fd::RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a live slice readable for `buf.len()` bytes for the
    // whole call; write() only reads from it. `fd` is a plain integer: a
    // descriptor that is not open gives EBADF, no memory is touched.
    let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// A pipe, both ends close-on-exec: (read end, write end).
pub fn pipe() -> io::Result<(std::fs::File, std::fs::File)> {
    use std::os::fd::FromRawFd;
    let mut fds = [-1 as libc::c_int; 2];
    // SAFETY: `fds` is a writable array of two c_ints, as pipe2 requires.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both descriptors are open and owned by
    // nothing else; each is wrapped (and later closed) exactly once.
    Ok(unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    })
}

/// `clock_getres(clock)`.
pub fn clock_getres(clock: libc::clockid_t) -> Option<Ts> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec owned by this frame.
    let rc = unsafe { libc::clock_getres(clock, &mut ts) };
    (rc == 0).then(|| from_timespec(&ts))
}

fn raw_policy(p: Policy) -> libc::c_int {
    match p {
        Policy::Other => libc::SCHED_OTHER,
        Policy::Fifo => libc::SCHED_FIFO,
        Policy::Rr => libc::SCHED_RR,
        Policy::Batch => libc::SCHED_BATCH,
        Policy::Idle => libc::SCHED_IDLE,
    }
}

/// Sets the calling thread's policy and priority (`sched_setscheduler(0, …)`
/// acts on the calling thread on Linux). Like cyclictest, on EPERM the soft
/// RLIMIT_RTPRIO is raised up to the hard limit and the call retried once.
pub fn set_scheduler(policy: Policy, priority: i32) -> io::Result<()> {
    let policy = raw_policy(policy);
    match sched::set_scheduler(policy, priority) {
        Err(e)
            if e.raw_os_error() == Some(libc::EPERM)
                && sched::raise_rtprio_limit(policy, priority) =>
        {
            sched::set_scheduler(policy, priority).map_err(|_| e)
        }
        r => r,
    }
}

/// Whether the kernel has NUMA support, decided like libnuma's
/// `numa_available()`: `get_mempolicy()` failing with ENOSYS or EPERM means no.
pub fn numa_available() -> bool {
    // SAFETY: with NULL policy/nodemask pointers, maxnode 0, addr NULL and
    // flags 0, get_mempolicy reads and writes no user memory.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_get_mempolicy,
            std::ptr::null_mut::<libc::c_int>(),
            std::ptr::null_mut::<libc::c_ulong>(),
            0 as libc::c_ulong,
            std::ptr::null_mut::<libc::c_void>(),
            0 as libc::c_ulong,
        )
    };
    if rc == 0 {
        return true;
    }
    !matches!(
        io::Error::last_os_error().raw_os_error(),
        Some(libc::ENOSYS) | Some(libc::EPERM)
    )
}

/// NUMA node of `cpu` from sysfs (`/sys/devices/system/cpu/cpuN/nodeM`), or
/// -1 if unknown.
pub fn node_of_cpu(cpu: usize) -> i32 {
    let dir = format!("/sys/devices/system/cpu/cpu{cpu}");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return -1;
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name();
            name.to_str()?.strip_prefix("node")?.parse::<i32>().ok()
        })
        .min()
        .unwrap_or(-1)
}

extern "C" fn on_stop_signal(_sig: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    STOP.store(true, Ordering::SeqCst);
}

/// Installs the SIGINT/SIGTERM handler that sets [`STOP`]. No SA_RESTART: a
/// measuring thread blocked in clock_nanosleep returns EINTR and notices.
pub fn install_stop_handler() -> io::Result<()> {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: sigaction is a plain C struct for which all-zero is a valid
        // (empty mask, no flags) value; the handler is set below.
        let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
        sa.sa_sigaction = on_stop_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SAFETY: `sa.sa_mask` is a valid sigset_t inside `sa`.
        unsafe { libc::sigemptyset(&mut sa.sa_mask) };
        // SAFETY: `sa` is fully initialised and outlives the call; the handler
        // is an `extern "C" fn(c_int)` that only performs an atomic store.
        if unsafe { libc::sigaction(sig, &sa, std::ptr::null_mut()) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Interrupts a blocked measuring thread by sending it SIGTERM (handled by
/// [`install_stop_handler`]'s handler, so the process is not terminated).
pub fn interrupt_thread(thread: libc::pthread_t) {
    // SAFETY: the caller passes the pthread_t of a thread it has not joined
    // yet, so the handle is valid; SIGTERM has a handler installed.
    unsafe {
        libc::pthread_kill(thread, libc::SIGTERM);
    }
}

/// `uname()` fields used in the JSON `sysinfo` object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Uname {
    pub sysname: String,
    pub nodename: String,
    pub release: String,
    pub version: String,
    pub machine: String,
}

// c_char is u8 on ARM and i8 on x86: the cast is needed on one of them.
#[allow(clippy::unnecessary_cast)]
fn field(f: &[libc::c_char]) -> String {
    let bytes: Vec<u8> = f
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// `uname()`.
pub fn uname() -> io::Result<Uname> {
    // SAFETY: utsname is a plain C struct of char arrays; all-zero is valid.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable utsname owned by this frame.
    if unsafe { libc::uname(&mut u) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Uname {
        sysname: field(&u.sysname),
        nodename: field(&u.nodename),
        release: field(&u.release),
        version: field(&u.version),
        machine: field(&u.machine),
    })
}

/// Local time in cyclictest's RFC 2822 format: `Sun, 22 Nov 2026 04:05:05 +0000`.
pub fn timestamp() -> String {
    // SAFETY: time() with a NULL argument only returns the time.
    let now = unsafe { libc::time(std::ptr::null_mut()) };
    // SAFETY: tm is a plain C struct; all-zero is valid.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are to valid, live values of the right types.
    if unsafe { libc::localtime_r(&now, &mut tm) }.is_null() {
        return String::new();
    }
    let mut buf = [0u8; 64];
    let fmt = c"%a, %d %b %Y %T %z";
    // SAFETY: `buf` is writable for `buf.len()` bytes, `fmt` is NUL-terminated,
    // `tm` was filled by localtime_r; strftime writes at most `buf.len()` bytes.
    let n = unsafe { libc::strftime(buf.as_mut_ptr().cast(), buf.len(), fmt.as_ptr(), &tm) };
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// `/sys/kernel/realtime` starts with `1` (PREEMPT_RT kernel).
pub fn kernel_is_realtime() -> bool {
    std::fs::read("/sys/kernel/realtime").is_ok_and(|b| b.first() == Some(&b'1'))
}

/// Contents of `/proc/loadavg` without the trailing newline.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.trim_end_matches('\n').to_string())
        .unwrap_or_default()
}

/// Open `/dev/cpu_dma_latency` holding a PM QoS request; dropping it (at
/// exit) releases the request.
pub struct DmaLatency {
    _file: std::fs::File,
}

/// Writes `value` (µs) to `/dev/cpu_dma_latency` and keeps it open
/// (cyclictest's `set_latency_target()`).
pub fn set_dma_latency(value: i32) -> io::Result<DmaLatency> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/cpu_dma_latency")?;
    f.write_all(&value.to_ne_bytes())?;
    Ok(DmaLatency { _file: f })
}

/// Text for an errno value.
pub fn strerror(errno: i32) -> String {
    io::Error::from_raw_os_error(errno).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_work() {
        let c = clock_id(Clock::Monotonic);
        let a = clock_gettime(c).unwrap();
        let target = a + Ts::from_us(200);
        assert_eq!(clock_nanosleep_abs(c, &target), 0);
        let b = clock_gettime(c).unwrap();
        assert!(!target.is_after(&b), "woke before the target");
        assert!(clock_getres(c).is_some());
        assert!(clock_gettime(clock_id(Clock::Realtime)).unwrap().sec > 1_600_000_000);
    }

    #[test]
    fn uname_and_timestamp() {
        let u = uname().unwrap();
        assert_eq!(u.sysname, "Linux");
        assert!(!u.machine.is_empty());
        let ts = timestamp();
        // e.g. "Sun, 22 Nov 2026 04:05:05 +0000"
        assert_eq!(ts.len(), 31, "{ts}");
        assert_eq!(&ts[3..5], ", ");
        assert!(ts.ends_with(|c: char| c.is_ascii_digit()));
    }

    #[test]
    fn scheduler_other_is_always_allowed() {
        set_scheduler(Policy::Other, 0).unwrap();
        assert!(set_scheduler(Policy::Other, 5).is_err());
    }

    #[test]
    fn strerror_is_readable() {
        assert!(strerror(libc::EPERM).contains("not permitted"));
    }
}
