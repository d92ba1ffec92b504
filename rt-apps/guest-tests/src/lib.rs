//! Helpers for the rtflex guest tests (`tests/*.rs`).
//!
//! The tests run inside the booted rtflex image, as root, under the guest
//! test runner (`/usr/libexec/rtflex/run-guest-tests`). They are built with
//! `--features guest`; see the README ("How the tests work").

use std::collections::BTreeSet;
use std::process::{Command, Output};

/// Upstream kernel version the image was built from, as pinned in
/// `kernel/patches/linux/linux.hash` (passed in by the Makefile).
pub const LINUX_VERSION: Option<&str> = option_env!("RTFLEX_LINUX_VERSION");

/// uid and gid of the unprivileged user of the image (`nobody` in
/// rootfs/overlay/etc/passwd and group `nogroup`).
pub const NOBODY: u32 = 65534;

/// The debug kernel variant that runs (docs/debug-kernel.md): `"debug"` or
/// `"kasan"` when the kernel release ends in `-debug` or `-kasan` (their
/// `LOCALVERSION`), `None` on the normal kernel. Those kernels execute
/// several times more instructions for the same work, and under QEMU's
/// `-icount` guest time is instruction count: the machine is slower.
pub fn debug_kernel_variant() -> Option<&'static str> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_else(|e| panic!("/proc/sys/kernel/osrelease: {e}"));
    ["debug", "kasan"]
        .into_iter()
        .find(|v| release.trim_end().ends_with(&format!("-{v}")))
}

/// The period (us) the guest tests give the latency lab's runner
/// (`--interval`): 1 ms, its default, on the image's kernel; 10 ms on the
/// debug variants, where at 1 ms the measuring itself overloads the one
/// vCPU (KASAN: the timerlat tracer's interrupt and tracing took the whole
/// period, rtla's tracer switch waited over 6 min in synchronize_rcu();
/// rtlat's io_uring path dropped 7 of 392 records with every write in
/// flight while the thread woke up to 87 ms late).
pub fn lab_interval_us() -> u64 {
    if debug_kernel_variant().is_some() {
        10_000
    } else {
        1000
    }
}

/// A `/proc/.../stat` file as its command name and its fields from field 3
/// (the state) on: field N (proc(5)'s numbering) is `fields[N - 3]`.
/// `None` if it cannot be read (the task has gone).
pub fn proc_stat(path: &str) -> Option<(String, Vec<String>)> {
    let stat = std::fs::read_to_string(path).ok()?;
    let (head, rest) = stat.rsplit_once(") ")?;
    let name = head.split_once(" (").map_or("?", |(_, n)| n).to_string();
    Some((name, rest.split_whitespace().map(String::from).collect()))
}

/// Run a program and return its output, panicking with a clear message
/// if it cannot be started.
pub fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

/// Run a program that must succeed and return its stdout as text.
pub fn run_ok(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The kernel log, as `dmesg` prints it.
pub fn kernel_log() -> String {
    run_ok("dmesg", &[])
}

/// The kernel-problem patterns: `kernel-problems.txt` beside this crate's
/// `Cargo.toml`, the one list the host side (`tools/rtflex/problems.py`) reads too.
const KERNEL_PROBLEM_LIST: &str = include_str!("../kernel-problems.txt");

/// The patterns of `kernel-problems.txt`: literal substrings, one per line,
/// without its comments and blank lines.
pub fn kernel_problem_patterns() -> impl Iterator<Item = &'static str> {
    KERNEL_PROBLEM_LIST
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
}

/// Whether a kernel log line reports a problem: it contains one of the
/// [`kernel_problem_patterns`].
pub fn is_kernel_problem(line: &str) -> bool {
    kernel_problem_patterns().any(|p| line.contains(p))
}

/// Kernel log lines that report a kernel bug: oopses, BUG and WARNING
/// splats, panics, RCU stalls, hung tasks, lockdep, sleeping-in-atomic,
/// KASAN, SLUB, UBSAN, kmemleak and debug-objects reports
/// (`kernel-problems.txt`).
pub fn kernel_problems(log: &str) -> Vec<&str> {
    log.lines().filter(|l| is_kernel_problem(l)).collect()
}

/// The line the guest test runner (`/usr/libexec/rtflex/run-guest-tests`)
/// writes into the kernel log before the first test: kernel reports above
/// it happened at boot (`tools/rtflex/problems.py` splits the console there too).
pub const TESTS_BEGIN_MARKER: &str = "rtflex-guest: tests begin";

/// The part of a kernel log after the [`TESTS_BEGIN_MARKER`] line, or all
/// of it without that line (a run outside the runner, or a log that wrapped
/// around: then nothing from boot is left in it either).
pub fn since_tests_began(log: &str) -> &str {
    let Some(at) = log.find(TESTS_BEGIN_MARKER) else {
        return log;
    };
    match log[at..].find('\n') {
        Some(end) => &log[at + end + 1..],
        None => "",
    }
}

/// The set of key paths of a JSON document: `a`, `a.b`, ... Object keys
/// that are numbers (thread indices, histogram buckets) are replaced by `#`
/// so two reports of different runs compare by structure.
pub fn json_key_paths(v: &serde_json::Value) -> BTreeSet<String> {
    fn walk(v: &serde_json::Value, prefix: &str, out: &mut BTreeSet<String>) {
        if let serde_json::Value::Object(map) = v {
            for (k, child) in map {
                let k = if !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()) {
                    "#"
                } else {
                    k.as_str()
                };
                let path = if prefix.is_empty() {
                    k.to_string()
                } else {
                    format!("{prefix}.{k}")
                };
                walk(child, &path, out);
                out.insert(path);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(v, "", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_are_found_and_clean_lines_are_not() {
        let log = "[    0.000000] Booting Linux\n\
                   [    1.0] WARNING: CPU: 0 PID: 1 at kernel/foo.c:1 bar\n\
                   [    2.0] rtflex_selftest: loaded\n\
                   [    3.0] Internal error: Oops: 5 [#1] PREEMPT_RT ARM\n";
        let p = kernel_problems(log);
        assert_eq!(p.len(), 2);
        assert!(p[0].contains("WARNING"));
        assert!(p[1].contains("Oops"));
        assert!(kernel_problems("[ 0.1] all fine\n").is_empty());
    }

    #[test]
    fn problem_list_has_patterns_and_no_comments() {
        let patterns: Vec<&str> = kernel_problem_patterns().collect();
        assert!(patterns.len() >= 20, "{patterns:?}");
        assert!(patterns
            .iter()
            .all(|p| !p.starts_with('#') && !p.trim().is_empty()));
        for p in [
            "BUG:",
            "WARNING:",
            "UBSAN:",
            "ODEBUG:",
            "unreferenced object",
        ] {
            assert!(patterns.contains(&p), "{p} not in kernel-problems.txt");
        }
    }

    #[test]
    fn debug_kernel_reports_are_problems() {
        // First lines of real reports of each kind (as in Linux 7.2).
        let reports = [
            "[   20.1] BUG: KASAN: slab-use-after-free in flexsc_release+0x40/0x90",
            "[   20.1] BUG: KFENCE: out-of-bounds read in foo+0x10/0x20",
            "[   20.1] WARNING: possible circular locking dependency detected",
            "[   20.1] WARNING: inconsistent lock state",
            "[   20.1] WARNING: possible recursive locking detected",
            "[   20.1] WARNING: suspicious RCU usage",
            "[   20.1] [ BUG: Invalid wait context ]",
            "[   20.1] BUG: sleeping function called from invalid context at kernel/locking/spinlock_rt.c:48",
            "[   20.1] UBSAN: array-index-out-of-bounds in kernel/flexsc/glue.c:120:9",
            "[   20.1] ODEBUG: free active (active state 0) object: c3a0 object type: hrtimer hint: x",
            "[   20.1] =============================================================================",
            "unreferenced object 0xc3a4b000 (size 64):",
            "[  150.0] INFO: task flexsc-12-0:13 blocked for more than 122 seconds.",
            "[   30.0] rcu: INFO: rcu_preempt self-detected stall on CPU",
        ];
        for r in reports {
            assert!(is_kernel_problem(r), "not recognised: {r}");
        }
        for fine in [
            "[    0.0] Booting Linux on physical CPU 0x0",
            "[    0.1] kmemleak: Kernel memory leak detector initialized (mem pool available: 15000)",
            "[    0.1] kfence: initialized - using 2097152 bytes for 255 objects",
            "[   15.0] rtflex-guest: tests begin",
        ] {
            assert!(!is_kernel_problem(fine), "false alarm: {fine}");
        }
    }

    #[test]
    fn only_reports_after_the_marker_are_from_the_tests() {
        let log = "[ 1.0] WARNING: at boot\n[15.0] rtflex-guest: tests begin\n[16.0] ok\n[17.0] BUG: new\n";
        assert_eq!(kernel_problems(since_tests_began(log)), ["[17.0] BUG: new"]);
        let no_marker = "[ 1.0] WARNING: at boot\n";
        assert_eq!(since_tests_began(no_marker), no_marker);
        assert_eq!(since_tests_began("x\n[15.0] rtflex-guest: tests begin"), "");
    }

    #[test]
    fn key_paths_fold_numeric_keys() {
        let a: serde_json::Value =
            serde_json::from_str(r#"{"thread":{"0":{"min":1,"histogram":{"3":1}}},"x":1}"#)
                .unwrap();
        let b: serde_json::Value =
            serde_json::from_str(r#"{"x":2,"thread":{"1":{"histogram":{"7":2,"9":1},"min":5}}}"#)
                .unwrap();
        assert_eq!(json_key_paths(&a), json_key_paths(&b));
        assert!(json_key_paths(&a).contains("thread.#.histogram.#"));
        let c: serde_json::Value = serde_json::from_str(r#"{"x":2}"#).unwrap();
        assert_ne!(json_key_paths(&a), json_key_paths(&c));
    }
}

// ---------------------------------------------------------------------------
// FlexSC (tests/flexsc.rs)

/// True in host dry runs of the FlexSC tests (`--features emulate`): the
/// flexsc crate's user-space emulator stands in for the kernel. Checks
/// that only the real kernel can pass are skipped then; in the image this
/// is always false.
pub const FLEXSC_EMULATED: bool = cfg!(feature = "emulate");

/// Registers this process with FlexSC (the emulator in host dry runs).
pub fn flexsc_try_register(cfg: &flexsc::Config) -> flexsc::Result<flexsc::FlexSc> {
    #[cfg(feature = "emulate")]
    return flexsc::FlexSc::emulated(cfg);
    #[cfg(not(feature = "emulate"))]
    return flexsc::FlexSc::register(cfg);
}

/// [`flexsc_try_register`] with the given completion protocol.
pub fn flexsc_try_register_protocol(
    cfg: &flexsc::Config,
    protocol: flexsc::Protocol,
) -> flexsc::Result<flexsc::FlexSc> {
    #[cfg(feature = "emulate")]
    return flexsc::FlexSc::emulated_protocol(cfg, protocol);
    #[cfg(not(feature = "emulate"))]
    return flexsc::FlexSc::register_protocol(cfg, protocol);
}

/// Registers this process with FlexSC, panicking with a clear message if
/// the kernel has no FlexSC (the rtflex kernel always has
/// `CONFIG_FLEXSC=y`: that is a failure, not a reason to skip).
pub fn flexsc_register(cfg: &flexsc::Config) -> flexsc::FlexSc {
    match flexsc_try_register(cfg) {
        Ok(fx) => fx,
        Err(flexsc::Error::Unsupported) => panic!(
            "flexsc_register() is not implemented by the running kernel (ENOSYS): \
             the rtflex kernel must be built with CONFIG_FLEXSC=y"
        ),
        Err(e) => panic!("flexsc_register({cfg:?}) failed: {e}"),
    }
}

/// Lines of `after` (a later kernel log) that report a problem
/// ([`kernel_problems`]) and were not in `before`.
pub fn new_kernel_problems(before: &str, after: &str) -> Vec<String> {
    let old: BTreeSet<&str> = before.lines().collect();
    kernel_problems(after)
        .into_iter()
        .filter(|l| !old.contains(l))
        .map(str::to_string)
        .collect()
}

/// Every thread in the system whose name starts with `prefix`, as
/// `(pid, tid, name)`, from `/proc/*/task/*/comm`.
pub fn threads_named(prefix: &str) -> Vec<(u32, u32, String)> {
    let mut out = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return out;
    };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(tasks) = std::fs::read_dir(p.path().join("task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let Some(tid) = t.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Ok(comm) = std::fs::read_to_string(t.path().join("comm")) {
                let comm = comm.trim_end().to_string();
                if comm.starts_with(prefix) {
                    out.push((pid, tid, comm));
                }
            }
        }
    }
    out
}

/// The syscall pages of `fx`'s region, for raw access by tests that play a
/// hostile or careless user (writing entries behind the library's back).
/// Panics in fallback mode (no region).
pub fn flexsc_entries(fx: &flexsc::FlexSc) -> &[rtflex_uapi::flexsc::Entry] {
    let (base, len) = fx.region().expect("a FlexSC region");
    assert_eq!(
        len,
        rtflex_uapi::flexsc::region_len(
            (fx.nentries() / rtflex_uapi::flexsc::ENTRIES_PER_PAGE) as u32
        )
    );
    // SAFETY: the syscall pages follow the control page in the region,
    // which stays mapped while `fx` (whose borrow bounds the slice) lives;
    // Entry consists of atomics, so shared access with the kernel is fine.
    unsafe {
        std::slice::from_raw_parts(
            (base + rtflex_uapi::flexsc::PAGE_SIZE) as *const rtflex_uapi::flexsc::Entry,
            fx.nentries(),
        )
    }
}

/// The control page of `fx`'s region, for raw access (see
/// [`flexsc_entries`]). Panics in fallback mode.
pub fn flexsc_ctrl(fx: &flexsc::FlexSc) -> &rtflex_uapi::flexsc::Ctrl {
    let (base, _) = fx.region().expect("a FlexSC region");
    // SAFETY: the control page starts the region, which stays mapped while
    // `fx` lives; Ctrl consists of atomics.
    unsafe { &*(base as *const rtflex_uapi::flexsc::Ctrl) }
}

/// Claims a FREE entry of `fx` by hand (compare-and-swap FREE -> CLAIMED,
/// as the library does), fills in a call with any flags and reserved
/// words, publishes it (SUBMITTED) and kicks the syscall threads; does not
/// wait. Returns the entry.
///
/// # Safety
///
/// As for [`flexsc::Call::raw`]: every pointer among `args` must stay valid
/// for what call `nr` does with it until the entry is DONE (or the region
/// is gone).
pub unsafe fn flexsc_submit_raw(
    fx: &flexsc::FlexSc,
    nr: u32,
    args: [u32; 6],
    flags: u32,
    resv: [u32; 4],
) -> &rtflex_uapi::flexsc::Entry {
    use rtflex_uapi::flexsc as abi;
    use std::sync::atomic::{fence, Ordering};
    let e = flexsc_entries(fx)
        .iter()
        .find(|e| {
            e.status
                .compare_exchange(abi::FREE, abi::CLAIMED, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        })
        .expect("a free entry");
    e.submit(nr, args, flags, resv, 0, 0x7777);
    if fx.protocol() != flexsc::Protocol::Original {
        // The batch protocol (run-on-wait too): syscall threads look for
        // work when ctrl.submitted moves.
        let (base, _) = fx.region().expect("a region");
        // SAFETY: the control page of the caller's live region; its words
        // are atomics.
        let ctrl = unsafe { &*(base as *const abi::Ctrl) };
        ctrl.submitted.fetch_add(1, Ordering::Release);
    }
    fence(Ordering::SeqCst);
    fx.kernel_wait(0, None).expect("kick the syscall threads");
    e
}

/// Polls `cond` every millisecond until it holds (true) or `timeout`
/// passes (false). For "it happens at all" checks: the bound is generous.
pub fn wait_for(timeout: std::time::Duration, mut cond: impl FnMut() -> bool) -> bool {
    let t0 = std::time::Instant::now();
    loop {
        if cond() {
            return true;
        }
        if t0.elapsed() > timeout {
            return cond();
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Thread ids of the FlexSC syscall threads of process `pid` (named
/// `flexsc-<pid>-<n>`), sorted.
///
/// Reads only `/proc/<pid>/task`: cheap enough to poll from a real-time
/// thread without starving the lower-priority threads it waits for.
pub fn flexsc_workers_of(pid: u32) -> Vec<u32> {
    let prefix = format!("flexsc-{pid}-");
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut tids: Vec<u32> = tasks
        .flatten()
        .filter_map(|t| {
            let tid = t.file_name().to_str()?.parse::<u32>().ok()?;
            let comm = std::fs::read_to_string(t.path().join("comm")).ok()?;
            comm.starts_with(&prefix).then_some(tid)
        })
        .collect();
    tids.sort_unstable();
    tids
}

/// A directory of its own under /tmp (tmpfs), `/tmp/rtflex-<tag>-<pid>`,
/// removed on drop.
pub struct TmpDir(String);

impl TmpDir {
    /// Creates the directory (replacing a stale one), panicking on failure.
    pub fn new(tag: &str) -> TmpDir {
        let p = format!("/tmp/rtflex-{tag}-{}", std::process::id());
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir(&p).unwrap_or_else(|e| panic!("{p}: {e}"));
        TmpDir(p)
    }

    /// The path of `name` in the directory.
    pub fn path(&self, name: &str) -> String {
        format!("{}/{name}", self.0)
    }

    /// The directory itself.
    pub fn dir(&self) -> &std::path::Path {
        std::path::Path::new(&self.0)
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------
// Child processes: tests that change credentials, seccomp, scheduling or
// end threads do it in a forked child, so the test process stays clean.

/// `fork()`, panicking if it fails.
pub fn fork() -> libc::pid_t {
    // SAFETY: fork has no memory-safety preconditions; the children of the
    // tests run straightforward code (glibc makes malloc usable in the
    // child) and end with _exit, never returning into the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    pid
}

/// Ends a child process at once, without running the parent's destructors
/// or exit handlers.
pub fn exit_child(code: i32) -> ! {
    // SAFETY: _exit ends the process; nothing runs afterwards.
    unsafe { libc::_exit(code) }
}

/// Whether a wait status says "exited with `code`".
pub fn exited_with(status: i32, code: i32) -> bool {
    libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == code
}

/// Waits for child `pid` for at most `timeout` and returns its wait status;
/// `None` if it was still running then (it is SIGKILLed and reaped).
pub fn wait_child_for(pid: libc::pid_t, timeout: std::time::Duration) -> Option<i32> {
    wait_child_or_stacks(pid, timeout, |_| String::new()).ok()
}

/// Waits for child `pid` for at most `timeout`; SIGKILLs it and panics
/// (naming `what`, with the kernel stacks of its threads as they were
/// before the kill) after.
pub fn wait_child(pid: libc::pid_t, timeout: std::time::Duration, what: &str) -> i32 {
    wait_child_explained(pid, timeout, what, |_| String::new())
}

/// As [`wait_child`], with `explain(pid)` (taken before the kill, after
/// the threads) added to the failure message: what else the test can tell
/// about a stuck child.
pub fn wait_child_explained(
    pid: libc::pid_t,
    timeout: std::time::Duration,
    what: &str,
    explain: impl Fn(libc::pid_t) -> String,
) -> i32 {
    wait_child_or_stacks(pid, timeout, explain).unwrap_or_else(|stacks| {
        panic!("{what}: child {pid} still running after {timeout:?}; its threads:\n{stacks}")
    })
}

/// The wait status of child `pid`, or, if it still runs after `timeout`,
/// where each of its threads is in the kernel and `explain(pid)` (taken
/// before it is SIGKILLed and reaped).
fn wait_child_or_stacks(
    pid: libc::pid_t,
    timeout: std::time::Duration,
    explain: impl Fn(libc::pid_t) -> String,
) -> Result<i32, String> {
    let t0 = std::time::Instant::now();
    loop {
        let mut status = 0;
        // SAFETY: waiting for our own child; `status` is a live int.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            return Ok(status);
        }
        assert_eq!(r, 0, "waitpid({pid}): {}", std::io::Error::last_os_error());
        if t0.elapsed() > timeout {
            let stacks = thread_stacks(pid) + &explain(pid);
            // SAFETY: killing and reaping our own hung child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return Err(stacks);
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// For each thread of process `pid`: its name, state, wait channel and
/// kernel stack (`/proc/PID/task/TID/{comm,stat,wchan,stack}`), for the
/// message of a test that found the process stuck. Reading `stack` takes
/// the task's exec lock, which a task stuck in execve() holds: each stack
/// is read in a thread of its own and given up after a second (that thread
/// ends once the process is killed).
pub fn thread_stacks(pid: libc::pid_t) -> String {
    let read = |p: String| std::fs::read_to_string(&p).unwrap_or_else(|e| format!("({p}: {e})"));
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return format!("(/proc/{pid}/task cannot be read)\n");
    };
    let mut out = String::new();
    for t in tasks.flatten() {
        let tid = t.file_name().to_string_lossy().into_owned();
        let dir = format!("/proc/{pid}/task/{tid}");
        let state = proc_stat(&format!("{dir}/stat")).and_then(|(_, f)| f.into_iter().next());
        let (tx, rx) = std::sync::mpsc::channel();
        let stack_path = format!("{dir}/stack");
        std::thread::spawn(move || {
            let _ = tx.send(std::fs::read_to_string(&stack_path));
        });
        let stack = match rx.recv_timeout(std::time::Duration::from_secs(1)) {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => format!("(stack: {e})\n"),
            Err(_) => "(stack: not readable within 1 s: the process holds its exec lock, \
                       so a thread of it is in execve())\n"
                .to_string(),
        };
        out += &format!(
            "  {tid} {} state {} wchan {}\n{stack}",
            read(format!("{dir}/comm")).trim_end(),
            state.as_deref().unwrap_or("?"),
            read(format!("{dir}/wchan")),
        );
    }
    out
}

/// Runs the latency lab's runner (`/usr/libexec/rtflex/lab`) with `args`,
/// asserts that it succeeded and that its last line names the bundle's
/// archive, and returns the bundle's directory (beside the archive).
pub fn run_lab(args: &[&str]) -> std::path::PathBuf {
    let out = std::process::Command::new("/usr/libexec/rtflex/lab")
        .args(args)
        .output()
        .expect("run the lab");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "lab failed: {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    let tar = last
        .strip_prefix("lab: bundle: ")
        .unwrap_or_else(|| panic!("last line: {last}"));
    assert!(std::path::Path::new(tar).is_file(), "{tar} missing");
    std::path::PathBuf::from(tar.strip_suffix(".tar.gz").expect(".tar.gz"))
}

/// A pipe with close-on-exec ends: (read end, write end).
pub fn pipe() -> (std::os::fd::RawFd, std::os::fd::RawFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a live array of two ints.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(r, 0, "pipe2: {}", std::io::Error::last_os_error());
    (fds[0], fds[1])
}

/// Closes a descriptor the caller owns and no longer uses.
pub fn close(fd: std::os::fd::RawFd) {
    // SAFETY: the caller owns `fd`; nothing uses it afterwards.
    unsafe { libc::close(fd) };
}

/// In a child of [`run_in_child`]: the write end of the pipe its report goes
/// to (-1 elsewhere).
static CHILD_REPORT_FD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// In a child of [`run_in_child`], from any of its threads: reports `msg` as
/// the child's failure and ends the whole child process (exit code 1).
pub fn child_fail(msg: &str) -> ! {
    let fd = CHILD_REPORT_FD.load(std::sync::atomic::Ordering::SeqCst);
    let mut rest = msg.as_bytes();
    while fd >= 0 && !rest.is_empty() {
        // SAFETY: writing from a live byte slice to our own pipe.
        let n = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
        if n <= 0 {
            break;
        }
        rest = &rest[n as usize..];
    }
    // SAFETY: exit_group ends every thread of the child; nothing runs after.
    unsafe { libc::syscall(libc::SYS_exit_group, 1) };
    unreachable!("exit_group returned")
}

/// How a child of [`run_in_child`] ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildEnd {
    /// Its wait status; `None` if it was still running after the timeout
    /// (it was killed then).
    pub status: Option<i32>,
    /// What it reported: the error its function returned, its panic
    /// message, or a [`child_fail`] message; empty if nothing.
    pub report: String,
}

/// Runs `f` in a forked child process and tells how the child ended. The
/// child never returns into the test harness: it ends with status 0 when
/// `f` returns `Ok`, reports the error or panic message otherwise (exit
/// code 1), or ends by itself: through [`child_fail`], or by ending all its
/// threads with `SYS_exit`. A child still running after `timeout` is
/// killed (a bound for "it ends at all": make it generous).
pub fn run_in_child(
    timeout: std::time::Duration,
    f: impl FnOnce() -> Result<(), String>,
) -> ChildEnd {
    let (rd, wr) = pipe();
    let pid = fork();
    if pid == 0 {
        close(rd);
        CHILD_REPORT_FD.store(wr, std::sync::atomic::Ordering::SeqCst);
        let msg = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
            Ok(Ok(())) => exit_child(0),
            Ok(Err(m)) => m,
            Err(p) => {
                let text = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".to_string());
                format!("panicked: {text}")
            }
        };
        child_fail(&msg);
    }
    close(wr);
    let status = wait_child_for(pid, timeout);
    let mut report = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: reading our own pipe into a live buffer; the child is
        // gone, so this ends at EOF.
        let n = unsafe { libc::read(rd, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        report.extend_from_slice(&buf[..n as usize]);
    }
    close(rd);
    ChildEnd {
        status,
        report: String::from_utf8_lossy(&report).into_owned(),
    }
}

/// [`run_in_child`] as a verdict: `Ok(())` if the child ended with status 0
/// and reported nothing, otherwise a message naming `what`: the child's
/// report, or how it ended.
pub fn in_child(
    what: &str,
    timeout: std::time::Duration,
    f: impl FnOnce() -> Result<(), String>,
) -> Result<(), String> {
    let end = run_in_child(timeout, f);
    match (end.status, end.report.is_empty()) {
        (None, true) => Err(format!(
            "{what}: the child was still running after {timeout:?} (killed)"
        )),
        (None, false) => Err(format!(
            "{what}: the child was still running after {timeout:?} (killed); it reported: {}",
            end.report
        )),
        (Some(st), true) if exited_with(st, 0) => Ok(()),
        (Some(st), true) => Err(format!("{what}: child ended with wait status {st:#x}")),
        (Some(_), false) => Err(format!("{what}: {}", end.report)),
    }
}

/// A xorshift64* pseudo-random generator: seeded, repeatable, no crate.
#[derive(Clone, Debug)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator from a seed (0 is replaced by a fixed non-zero value).
    pub fn new(seed: u64) -> XorShift {
        XorShift(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// The next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: u32) -> u32 {
        ((self.next_u32() as u64 * n as u64) >> 32) as u32
    }

    /// One element of a non-empty slice.
    pub fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len() as u32) as usize]
    }
}

#[cfg(test)]
mod flexsc_helper_tests {
    use super::*;

    #[test]
    fn only_new_problem_lines_count() {
        let before = "[ 1.0] ok\n[ 2.0] WARNING: old one\n";
        let after = "[ 1.0] ok\n[ 2.0] WARNING: old one\n[ 3.0] BUG: new one\n";
        assert_eq!(new_kernel_problems(before, after), ["[ 3.0] BUG: new one"]);
        assert!(new_kernel_problems(after, after).is_empty());
    }

    #[test]
    fn xorshift_is_repeatable_and_bounded() {
        let mut a = XorShift::new(42);
        let mut b = XorShift::new(42);
        let va: Vec<u32> = (0..100).map(|_| a.below(7)).collect();
        let vb: Vec<u32> = (0..100).map(|_| b.below(7)).collect();
        assert_eq!(va, vb);
        assert!(va.iter().all(|&v| v < 7));
        assert!((0..7).all(|k| va.contains(&k)));
        assert_ne!(XorShift::new(1).next_u64(), XorShift::new(2).next_u64());
    }

    #[test]
    fn in_child_reports_success_errors_panics_and_hangs() {
        use std::time::Duration;
        let long = Duration::from_secs(30);
        assert_eq!(in_child("ok", long, || Ok(())), Ok(()));
        let e = in_child("err", long, || Err("bad thing".into())).unwrap_err();
        assert!(e.contains("err: bad thing"), "{e}");
        let e = in_child("panic", long, || panic!("boom")).unwrap_err();
        assert!(e.contains("panicked: boom"), "{e}");
        let e = in_child("fail", long, || {
            std::thread::spawn(|| child_fail("from a thread"));
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        })
        .unwrap_err();
        assert!(e.contains("from a thread"), "{e}");
        let e = in_child("exit 3", long, || exit_child(3)).unwrap_err();
        assert!(e.contains("0x300"), "{e}");
        let e = in_child("hang", Duration::from_millis(300), || loop {
            std::thread::sleep(Duration::from_secs(1));
        })
        .unwrap_err();
        assert!(e.contains("still running"), "{e}");
    }

    #[test]
    fn own_threads_are_found_by_name() {
        let me = std::process::id();
        let found = threads_named("");
        assert!(found.iter().any(|&(pid, tid, _)| pid == me && tid == me));
    }

    #[test]
    fn proc_stat_splits_after_the_name() {
        // A name with a space and a parenthesis is what rsplit_once guards.
        let dir = std::env::temp_dir().join(format!("proc-stat-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("stat");
        std::fs::write(&f, "42 (a b) c) S 1 42 42 0\n").unwrap();
        let (name, fields) = proc_stat(f.to_str().unwrap()).unwrap();
        assert_eq!(name, "a b) c");
        assert_eq!(fields, ["S", "1", "42", "42", "0"]);
        assert!(proc_stat(dir.join("absent").to_str().unwrap()).is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
