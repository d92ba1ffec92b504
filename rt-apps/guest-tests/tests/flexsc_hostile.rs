//! FlexSC against a hostile or careless process: the holes of issue 12
//! (FlexSC items 1-6 and 8) as tests. Each test names, in its comment, what
//! the kernel before the fix did and why that fails the test.
//!
//! Every test runs in a forked child ([`in_child`]): they change
//! credentials, install seccomp filters, make threads real-time, end
//! threads with `SYS_exit` or rewrite entries the kernel owns, and the test
//! process must stay clean. Oracles are independent of FlexSC: the same
//! call made directly, `/proc/self/task/*`, `sched_getscheduler()`,
//! `getpriority()`. Waits for "it happens at all" are bounded generously
//! (10-30 s of guest time); nothing here measures speed.
//!
//! Kernel only: no host dry run against the emulator (it has no seccomp
//! under qemu-user, no BLOCKED state, no kernel threads to schedule).
#![cfg(all(feature = "guest", not(feature = "emulate")))]

use flexsc::sys;
use flexsc::{Call, Config, Error, FlexSc, Policy};
use guest_tests::{
    child_fail, flexsc_ctrl, flexsc_submit_raw, flexsc_try_register, flexsc_workers_of, in_child,
    pipe, run_in_child, wait_for, TmpDir,
};
use rt_utils::sys::errno;
use rtflex_uapi::flexsc as abi;
use rtflex_uapi::nr;
use std::ffi::{CStr, CString};
use std::fmt::Debug;
use std::os::fd::RawFd;
use std::sync::atomic::{fence, AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::time::Duration;

/// Bound for "it happens at all" (guest time, generous).
const BOUND: Duration = Duration::from_secs(10);

use guest_tests::NOBODY;

// ---------------------------------------------------------------------------
// Helpers

/// Failed checks of one child, all reported together.
#[derive(Default)]
struct Verdict(Vec<String>);

impl Verdict {
    fn expect<T: PartialEq + Debug>(&mut self, what: &str, got: T, want: T) {
        if got != want {
            self.0.push(format!("{what}: got {got:?}, want {want:?}"));
        }
    }

    fn fail(&mut self, msg: String) {
        self.0.push(msg);
    }

    fn into_result(self) -> Result<(), String> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0.join("; "))
        }
    }
}

/// Panics with every failure among the children's verdicts.
fn assert_all_ok(results: &[Result<(), String>]) {
    let failed: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "\n{}",
        failed
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

type Res = Result<usize, Error>;

/// The same call made directly (`svc #0`): the oracle.
fn direct(c: Call<'_>) -> Res {
    c.run_direct().map_err(Error::Errno)
}

fn register(cfg: &Config) -> Result<FlexSc, String> {
    flexsc_try_register(cfg).map_err(|e| format!("flexsc_register({cfg:?}): {e}"))
}

fn workers(n: u32) -> Config {
    Config {
        nworkers: n,
        poll_us: 0,
        ..Config::default()
    }
}

fn my_pid() -> u32 {
    std::process::id()
}

fn gettid() -> u32 {
    rt_utils::sys::gettid() as u32
}

/// Ends the calling thread only (`SYS_exit`, not `exit_group`). Nothing on
/// its stack is dropped: leaked, which is harmless in a child that ends.
fn exit_this_thread() -> ! {
    // SAFETY: SYS_exit ends the calling thread; it does not return, so no
    // code of this thread touches its stack or anything else afterwards.
    unsafe { libc::syscall(libc::SYS_exit, 0) };
    unreachable!("SYS_exit returned")
}

/// The scheduler state letter of thread `tid` of this process ('R', 'S',
/// 'Z', ...), from `/proc/self/task/<tid>/stat`.
fn thread_state(tid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

/// `voluntary_ctxt_switches` of thread `tid` of this process.
fn voluntary_switches(tid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))?
        .trim()
        .parse()
        .ok()
}

/// The system call thread `tid` of this process is blocked in, from
/// `/proc/self/task/<tid>/syscall` (its first word; "running" if none).
fn blocked_in_syscall(tid: u32) -> Option<u32> {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Waits until this process has no syscall threads left.
fn workers_gone(what: &str) -> Result<(), String> {
    let me = my_pid();
    if wait_for(BOUND, || flexsc_workers_of(me).is_empty()) {
        Ok(())
    } else {
        Err(format!(
            "{what}: syscall threads {:?} still there after {BOUND:?}",
            flexsc_workers_of(me)
        ))
    }
}

/// Posts `read(fd, 8 bytes)` and waits until it sleeps in the kernel
/// (BLOCKED); the ticket is detached, the buffer leaked (it must outlive
/// the call, which may never end).
fn post_blocking_read(fx: &FlexSc, fd: RawFd) -> Result<(), String> {
    let buf: &'static mut [u8] = Box::leak(Box::new([0u8; 8]));
    let t = fx
        .post(Call::read(fd, buf))
        .map_err(|e| format!("post read: {e}"))?;
    let blocked = wait_for(BOUND, || fx.status(&t) == Some(abi::BLOCKED));
    let st = fx.status(&t);
    fx.detach(t);
    if blocked {
        Ok(())
    } else {
        Err(format!(
            "a read on an empty pipe did not show BLOCKED within {BOUND:?} (status {st:?})"
        ))
    }
}

// ---------------------------------------------------------------------------
// F1: credentials

/// Drops this process to uid/gid nobody without supplementary groups, with
/// the libc calls (glibc applies them to every user thread).
fn become_nobody() -> Result<(), String> {
    // SAFETY: credential system calls with integer arguments (setgroups
    // with 0 entries reads no memory).
    let ok = unsafe {
        libc::setgroups(0, std::ptr::null()) == 0
            && libc::setresgid(NOBODY, NOBODY, NOBODY) == 0
            && libc::setresuid(NOBODY, NOBODY, NOBODY) == 0
    };
    if ok {
        Ok(())
    } else {
        Err(format!("could not become nobody: errno {}", errno()))
    }
}

/// The checks of one credential scenario, given a region registered as
/// root: identity calls agree with direct ones before and after the drop
/// to nobody, and the root-only file is refused afterwards.
fn credentials_follow_the_process(fx: &FlexSc, secret: &CStr) -> Result<(), String> {
    let mut v = Verdict::default();
    type Identity = (&'static str, fn() -> Call<'static>);
    let ids: [Identity; 4] = [
        ("getuid32", Call::getuid),
        ("geteuid32", Call::geteuid),
        ("getgid32", Call::getgid),
        ("getegid32", Call::getegid),
    ];
    v.expect(
        "direct getuid32 before the drop",
        direct(Call::getuid()),
        Ok(0),
    );
    for (name, c) in ids {
        v.expect(
            &format!("{name} as root: FlexSC vs direct"),
            fx.call(c()),
            direct(c()),
        );
    }
    let open = || Call::openat(libc::AT_FDCWD, secret, libc::O_RDONLY | libc::O_CLOEXEC, 0);
    match fx.call(open()) {
        Ok(fd) => guest_tests::close(fd as RawFd),
        Err(e) => v.fail(format!("FlexSC openat of the root-only file as root: {e}")),
    }
    become_nobody()?;
    v.expect(
        "direct getuid32 after the drop",
        direct(Call::getuid()),
        Ok(NOBODY as usize),
    );
    for (name, c) in ids {
        v.expect(
            &format!("{name} as nobody: FlexSC vs direct"),
            fx.call(c()),
            direct(c()),
        );
    }
    let via = fx.call(open());
    if let Ok(fd) = via {
        guest_tests::close(fd as RawFd);
    }
    v.expect(
        "direct openat of the root-only file as nobody",
        direct(open()),
        Err(Error::Errno(libc::EACCES)),
    );
    v.expect(
        "FlexSC openat of the root-only file as nobody",
        via,
        Err(Error::Errno(libc::EACCES)),
    );
    v.into_result()
}

/// F1. The old kernel's syscall threads kept the credentials they were
/// created with: after the process dropped from root to nobody, FlexSC
/// `getuid32` still returned 0 and `openat` still opened a root-only file.
/// Now a call runs with the current credentials of the registering thread
/// (or, once it has exited, of another live user thread).
#[test]
fn calls_run_with_the_current_credentials_of_the_process() {
    let dir = TmpDir::new("cred");
    let path = dir.path("secret");
    std::fs::write(&path, b"root only\n").unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    // SAFETY: getuid cannot fail.
    assert_eq!(unsafe { libc::getuid() }, 0, "the guest tests run as root");
    let secret = CString::new(path).unwrap();
    let registering_thread_lives = in_child("registered as root, then nobody", 3 * BOUND, || {
        let fx = register(&workers(2))?;
        credentials_follow_the_process(&fx, &secret)
    });
    let registering_thread_gone = in_child(
        "registered as root by a thread that has exited, then nobody",
        3 * BOUND,
        || {
            let fx = std::thread::spawn(|| register(&workers(2)))
                .join()
                .map_err(|_| "the registering thread panicked".to_string())??;
            credentials_follow_the_process(&fx, &secret)
        },
    );
    assert_all_ok(&[registering_thread_lives, registering_thread_gone]);
}

// ---------------------------------------------------------------------------
// F2: seccomp

/// Installs, on the calling thread (all user threads with `tsync`), a
/// filter that makes `getppid` fail with EACCES and allows everything else.
fn deny_getppid(tsync: bool) -> Result<(), String> {
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let filter = [
        // A = seccomp_data.nr
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
        // if A == getppid: next, else skip one
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: nr::GETPPID,
        },
        stmt(
            libc::BPF_RET | libc::BPF_K,
            libc::SECCOMP_RET_ERRNO | libc::EACCES as u32,
        ),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: prctl with integer arguments; no_new_privs is per thread.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(format!("PR_SET_NO_NEW_PRIVS: errno {}", errno()));
    }
    let flags = if tsync {
        libc::SECCOMP_FILTER_FLAG_TSYNC
    } else {
        0
    };
    // SAFETY: seccomp(SECCOMP_SET_MODE_FILTER, flags, &prog): the kernel
    // reads the live program and its live filter array.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &prog as *const libc::sock_fprog,
        )
    };
    match r {
        0 => Ok(()),
        -1 => Err(format!("seccomp (tsync {tsync}): errno {}", errno())),
        tid => Err(format!(
            "seccomp TSYNC: thread {tid} cannot take the filter"
        )),
    }
}

/// On a thread that has the filter of [`deny_getppid`]: the filter works
/// directly (EACCES), and FlexSC refuses the call (EPERM).
fn filtered_thread_checks(v: &mut Verdict, fx: &FlexSc, who: &str) {
    v.expect(
        &format!("direct getppid on {who} (the filter's own answer)"),
        direct(Call::getppid()),
        Err(Error::Errno(libc::EACCES)),
    );
    v.expect(
        &format!("FlexSC getppid posted by {who}"),
        fx.call(Call::getppid()),
        Err(Error::Errno(libc::EPERM)),
    );
}

/// F2 child: register, then a second thread (not the registering one)
/// installs its own filter, with or without TSYNC, and posts the call its
/// filter denies; the registering thread posts too while the filter is in
/// place.
fn seccomp_after_registration(tsync: bool) -> Result<(), String> {
    let fx = register(&workers(2))?;
    let ppid = direct(Call::getppid()).map_err(|e| format!("getppid: {e}"))?;
    let ready = Barrier::new(2);
    let done = Barrier::new(2);
    let mut v = Verdict::default();
    let second = std::thread::scope(|s| {
        let h = s.spawn(|| {
            let mut v = Verdict::default();
            match deny_getppid(tsync) {
                Ok(()) => filtered_thread_checks(&mut v, &fx, "the filtered second thread"),
                Err(e) => v.fail(e),
            }
            ready.wait();
            // Stay alive (and filtered) while the main thread checks.
            done.wait();
            v
        });
        ready.wait();
        if tsync {
            filtered_thread_checks(&mut v, &fx, "the registering thread (TSYNC)");
        } else {
            v.expect(
                "direct getppid on the registering thread (no filter of its own)",
                direct(Call::getppid()),
                Ok(ppid),
            );
        }
        v.expect(
            "FlexSC getpid posted by the registering thread while another thread is filtered",
            fx.call(Call::getpid()),
            Err(Error::Errno(libc::EPERM)),
        );
        done.wait();
        h.join().unwrap_or_default()
    });
    v.0.extend(second.0);
    v.into_result()
}

/// F2 child: a second thread installs its filter (no TSYNC) first; then
/// the main thread, which has none, registers: refused (EPERM), or every
/// call completes with EPERM.
fn seccomp_before_registration() -> Result<(), String> {
    let ready = Barrier::new(2);
    let done = Barrier::new(2);
    std::thread::scope(|s| {
        let h = s.spawn(|| {
            let r = deny_getppid(false);
            ready.wait();
            done.wait();
            r
        });
        ready.wait();
        let mut v = Verdict::default();
        match flexsc_try_register(&workers(2)) {
            Err(Error::Errno(libc::EPERM)) => {}
            Err(e) => v.fail(format!("registration: {e}, want EPERM or success")),
            Ok(fx) => {
                v.expect(
                    "FlexSC getpid in a process with a filtered thread",
                    fx.call(Call::getpid()),
                    Err(Error::Errno(libc::EPERM)),
                );
                v.expect(
                    "FlexSC getppid in a process with a filtered thread",
                    fx.call(Call::getppid()),
                    Err(Error::Errno(libc::EPERM)),
                );
            }
        }
        done.wait();
        if let Ok(Err(e)) = h.join() {
            v.fail(e);
        }
        v.into_result()
    })
}

/// F2. The old kernel checked seccomp only on the registering thread and on
/// the syscall thread: a second thread with its own (non-TSYNC) filter that
/// denies `getppid` posted `getppid` through FlexSC and got the parent's
/// pid; a filter installed on another thread before registration did not
/// stop it either. Now a filter on any thread of the process refuses the
/// registration (EPERM) or makes every call complete with -EPERM.
#[test]
fn a_seccomp_filter_on_any_thread_stops_flexsc() {
    assert_all_ok(&[
        in_child(
            "filter on a second thread after registration",
            3 * BOUND,
            || seccomp_after_registration(false),
        ),
        in_child(
            "TSYNC filter from a second thread after registration",
            3 * BOUND,
            || seccomp_after_registration(true),
        ),
        in_child(
            "filter on a second thread before registration",
            3 * BOUND,
            seccomp_before_registration,
        ),
    ]);
}

// ---------------------------------------------------------------------------
// F3: scheduling

fn set_nice(nice: i32) -> Result<(), String> {
    // SAFETY: setpriority with integer arguments; who 0 is the calling
    // thread (Linux: nice is per thread).
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) } != 0 {
        return Err(format!("setpriority({nice}): errno {}", errno()));
    }
    Ok(())
}

fn set_policy(policy: i32, priority: i32) -> Result<(), String> {
    rt_utils::sched::set_scheduler(policy, priority)
        .map_err(|e| format!("sched_setscheduler({policy}, {priority}): {e}"))
}

/// (policy, RT priority, nice) of thread `tid`, from the system calls.
fn sched_of(tid: u32) -> Result<(i32, i32, i32), String> {
    let tid = tid as libc::pid_t;
    // SAFETY: integer argument.
    let policy = unsafe { libc::sched_getscheduler(tid) };
    let mut p = libc::sched_param { sched_priority: -1 };
    // SAFETY: `p` is a live sched_param the call fills in.
    let r = unsafe { libc::sched_getparam(tid, &mut p) };
    // SAFETY: errno is a thread-local int; getpriority may return -1
    // legitimately, so errno tells errors apart.
    unsafe { *libc::__errno_location() = 0 };
    // SAFETY: integer arguments.
    let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t) };
    if policy < 0 || r != 0 || errno() != 0 {
        return Err(format!("scheduling of thread {tid}: errno {}", errno()));
    }
    Ok((policy, p.sched_priority, nice))
}

/// Registers with `policy` and checks every syscall thread's policy and
/// priority (and nice, if `nice` is given), then unregisters.
fn check_workers(
    v: &mut Verdict,
    what: &str,
    policy: Policy,
    want: (i32, i32),
    nice: Option<i32>,
) -> Result<(), String> {
    let fx = register(&Config {
        nworkers: 2,
        policy,
        poll_us: 0,
        ..Config::default()
    })?;
    let tids = flexsc_workers_of(my_pid());
    v.expect(&format!("{what}: number of syscall threads"), tids.len(), 2);
    for tid in tids {
        let (pol, prio, n) = sched_of(tid)?;
        v.expect(
            &format!("{what}: (policy, priority) of syscall thread {tid}"),
            (pol, prio),
            want,
        );
        if let Some(nice) = nice {
            v.expect(&format!("{what}: nice of syscall thread {tid}"), n, nice);
        }
    }
    drop(fx);
    workers_gone(what)
}

/// F3. On the old kernel the syscall threads inherited the registering
/// thread's scheduling: a SCHED_FIFO 50 thread at nice -5 that asked for
/// SCHED_OTHER workers got SCHED_FIFO 50 workers at nice -5. Now they get
/// exactly the configured policy: SCHED_OTHER at nice max(caller's, 0), or
/// the configured real-time policy and priority.
#[test]
fn syscall_threads_get_exactly_the_configured_scheduling() {
    let r = in_child("scheduling of the syscall threads", 6 * BOUND, || {
        let mut v = Verdict::default();
        let (other, fifo, rr) = (libc::SCHED_OTHER, libc::SCHED_FIFO, libc::SCHED_RR);
        set_nice(-5)?;
        set_policy(fifo, 50)?;
        let caller = "SCHED_FIFO 50 caller at nice -5";
        check_workers(
            &mut v,
            &format!("{caller}, SCHED_OTHER asked"),
            Policy::Other,
            (other, 0),
            Some(0),
        )?;
        check_workers(
            &mut v,
            &format!("{caller}, SCHED_RR 10 asked"),
            Policy::Rr(10),
            (rr, 10),
            None,
        )?;
        // The caller itself is untouched.
        v.expect(
            "the caller's own scheduling",
            sched_of(gettid())?,
            (fifo, 50, -5),
        );
        set_policy(other, 0)?;
        set_nice(7)?;
        let caller = "SCHED_OTHER caller at nice 7";
        check_workers(
            &mut v,
            &format!("{caller}, SCHED_OTHER asked"),
            Policy::Other,
            (other, 0),
            Some(7),
        )?;
        check_workers(
            &mut v,
            &format!("{caller}, SCHED_FIFO 20 asked"),
            Policy::Fifo(20),
            (fifo, 20),
            None,
        )?;
        v.into_result()
    });
    assert_all_ok(&[r]);
}

// ---------------------------------------------------------------------------
// F4: ioctl and fcntl64

/// `fcntl(fd, cmd, arg)` made directly.
fn fcntl(fd: RawFd, cmd: i32, arg: u32) -> Res {
    // SAFETY: the commands used here take an integer argument.
    direct(unsafe { Call::raw(nr::FCNTL64, [fd as u32, cmd as u32, arg, 0, 0, 0]) })
}

/// F4. The old kernel ran `ioctl` and `fcntl64` on the syscall thread (every
/// driver's private interface, and fcntl calls that act for the calling
/// task): FIONREAD through FlexSC returned 0 and wrote the count, F_SETFL
/// set O_NONBLOCK, F_SETOWN set an owner. Now both complete with -ENOSYS
/// without running; the same calls made directly show they would have
/// had an effect.
#[test]
fn ioctl_and_fcntl64_are_refused_without_running() {
    // The library's copy of the allow-list agrees.
    for (name, n) in [("ioctl", nr::IOCTL), ("fcntl64", nr::FCNTL64)] {
        assert!(
            !abi::is_allowed(n),
            "{name} in rtflex_uapi::flexsc::ALLOWED"
        );
        assert!(abi::REFUSED.contains(&(name, n)), "{name} not in REFUSED");
    }
    let r = in_child("ioctl and fcntl64 through FlexSC", 3 * BOUND, || {
        let mut v = Verdict::default();
        let fx = register(&workers(2))?;
        let (r, w) = pipe();
        // SAFETY: writing 7 bytes from a live buffer into our pipe.
        if unsafe { libc::write(w, b"7 bytes".as_ptr().cast(), 7) } != 7 {
            return Err("write to the pipe".into());
        }
        let enosys = Err(Error::Errno(libc::ENOSYS));
        // The request type is the libc's (its width varies by target); an
        // entry word is 32 bits.
        #[allow(clippy::unnecessary_cast)] // u32 on ARM, u64 on the build host
        let ioctl = |fd: RawFd, req: libc::Ioctl, p: *const i32| {
            // SAFETY: FIONREAD writes one int to `p`, FIONBIO reads one; both
            // point to live ints of this function that outlive the call.
            unsafe {
                Call::raw(
                    nr::IOCTL,
                    [fd as u32, req as u32, p as usize as u32, 0, 0, 0],
                )
            }
        };
        let mut count: i32 = -1;
        v.expect(
            "FlexSC ioctl(FIONREAD)",
            fx.call(ioctl(r, libc::FIONREAD, &mut count)),
            enosys,
        );
        v.expect("the int FlexSC's FIONREAD would have written", count, -1);
        v.expect(
            "direct ioctl(FIONREAD)",
            direct(ioctl(r, libc::FIONREAD, &mut count)),
            Ok(0),
        );
        v.expect("the int direct FIONREAD wrote", count, 7);
        let on: i32 = 1;
        v.expect(
            "FlexSC ioctl(FIONBIO, 1)",
            fx.call(ioctl(w, libc::FIONBIO, &on)),
            enosys,
        );
        let nonblock = |fd| fcntl(fd, libc::F_GETFL, 0).map(|f| f as i32 & libc::O_NONBLOCK != 0);
        v.expect("O_NONBLOCK after FlexSC's FIONBIO", nonblock(w), Ok(false));
        let setfl = |fd: RawFd| {
            // SAFETY: F_SETFL takes an integer.
            unsafe {
                Call::raw(
                    nr::FCNTL64,
                    [
                        fd as u32,
                        libc::F_SETFL as u32,
                        libc::O_NONBLOCK as u32,
                        0,
                        0,
                        0,
                    ],
                )
            }
        };
        v.expect(
            "FlexSC fcntl64(F_SETFL, O_NONBLOCK)",
            fx.call(setfl(r)),
            enosys,
        );
        v.expect("O_NONBLOCK after FlexSC's F_SETFL", nonblock(r), Ok(false));
        let setown = |fd: RawFd| {
            // SAFETY: F_SETOWN takes an integer.
            unsafe {
                Call::raw(
                    nr::FCNTL64,
                    [fd as u32, libc::F_SETOWN as u32, my_pid(), 0, 0, 0],
                )
            }
        };
        v.expect("FlexSC fcntl64(F_SETOWN)", fx.call(setown(r)), enosys);
        v.expect(
            "owner after FlexSC's F_SETOWN",
            fcntl(r, libc::F_GETOWN, 0),
            Ok(0),
        );
        let dupfd = || {
            // SAFETY: F_DUPFD_CLOEXEC takes an integer.
            unsafe {
                Call::raw(
                    nr::FCNTL64,
                    [r as u32, libc::F_DUPFD_CLOEXEC as u32, 700, 0, 0, 0],
                )
            }
        };
        v.expect(
            "FlexSC fcntl64(F_DUPFD_CLOEXEC, 700)",
            fx.call(dupfd()),
            enosys,
        );
        v.expect(
            "fd >= 700 after FlexSC's F_DUPFD",
            fcntl(700, libc::F_GETFD, 0),
            Err(Error::Errno(libc::EBADF)),
        );
        // The oracle: the same fcntl calls made directly do change things.
        v.expect("direct F_SETOWN", direct(setown(r)), Ok(0));
        v.expect(
            "owner after direct F_SETOWN",
            fcntl(r, libc::F_GETOWN, 0),
            Ok(my_pid() as usize),
        );
        v.expect("direct F_SETFL", direct(setfl(r)), Ok(0));
        v.expect("O_NONBLOCK after direct F_SETFL", nonblock(r), Ok(true));
        v.into_result()
    });
    assert_all_ok(&[r]);
}

// ---------------------------------------------------------------------------
// F5: lifecycle

/// A child that must end by itself within `bound` (any wait status: how
/// the last threads end is the kernel's choice), reporting nothing.
fn ends_by_itself(
    what: &str,
    bound: Duration,
    f: impl FnOnce() -> Result<(), String>,
) -> Result<(), String> {
    let end = run_in_child(bound, f);
    match end.status {
        None => Err(format!(
            "{what}: the process did not end within {bound:?} (killed){}",
            if end.report.is_empty() {
                String::new()
            } else {
                format!("; it reported: {}", end.report)
            }
        )),
        Some(_) if !end.report.is_empty() => Err(format!("{what}: {}", end.report)),
        Some(_) => Ok(()),
    }
}

/// F5a. On the old kernel a process whose last user thread ended with
/// `SYS_exit` (not `exit_group`) while a FlexSC call blocked never ended:
/// only idle syscall threads checked for orphans, the one blocked in the
/// read kept the process alive, and the parent's waitpid() never returned
/// (the test's 30 s bound, then SIGKILL). Both the registering thread and
/// another thread as the last one.
#[test]
fn a_process_ends_when_its_last_user_thread_exits_during_a_blocked_call() {
    let bound = 3 * BOUND;
    let registering_last = ends_by_itself(
        "the registering thread exits last, a read blocked",
        bound,
        || {
            let fx = register(&workers(2))?;
            // The write end stays open (and unused): the read blocks for good.
            let (r, _w) = pipe();
            post_blocking_read(&fx, r)?;
            std::mem::forget(fx);
            exit_this_thread()
        },
    );
    let other_last = ends_by_itself("another thread exits last, a read blocked", bound, || {
        let fx = register(&workers(2))?;
        let leader = gettid();
        std::thread::spawn(move || {
            // The registering (main) thread exits first: its task stays a
            // zombie until the whole process ends.
            if !wait_for(BOUND, || thread_state(leader) == Some('Z')) {
                child_fail("the main thread did not exit");
            }
            let (r, _w) = pipe();
            if let Err(e) = post_blocking_read(&fx, r) {
                child_fail(&e);
            }
            std::mem::forget(fx);
            exit_this_thread()
        });
        exit_this_thread()
    });
    // waitpid() reports a process only once all its threads, the syscall
    // threads too, have exited: nothing of it is left.
    assert_all_ok(&[registering_last, other_last]);
}

/// F5b. On the old kernel `munmap()` of the region did not stop it while
/// another thread sat in `flexsc_wait()` (the waiter's file reference kept
/// the context): the waiter never returned, the syscall threads kept
/// running, and a new registration ran a second set of threads beside them.
/// Now the waiter returns EINVAL, the threads go, and a new registration
/// has exactly its own threads.
#[test]
fn munmap_stops_the_region_while_another_thread_waits_in_flexsc_wait() {
    let r = in_child("munmap with a thread in flexsc_wait()", 6 * BOUND, || {
        let mut v = Verdict::default();
        let me = my_pid();
        let fx = register(&workers(2))?;
        let (base, _) = fx.region().ok_or("no region")?;
        let tid = Arc::new(AtomicU32::new(0));
        let (tx, rx) = mpsc::channel();
        let waiter_tid = Arc::clone(&tid);
        std::thread::spawn(move || {
            waiter_tid.store(gettid(), Ordering::SeqCst);
            // No entry will ever be DONE: this waits until the region goes.
            let _ = tx.send(sys::flexsc_wait(base, 1, None));
        });
        let in_wait = wait_for(BOUND, || {
            let t = tid.load(Ordering::SeqCst);
            t != 0 && blocked_in_syscall(t) == Some(nr::FLEXSC_WAIT)
        });
        if !in_wait {
            return Err("the waiter thread did not reach flexsc_wait()".into());
        }
        // No call in flight: shutdown unmaps at once.
        fx.shutdown(Duration::ZERO);
        match rx.recv_timeout(BOUND) {
            Ok(r) => v.expect(
                "flexsc_wait() of the other thread after munmap",
                r,
                Err(libc::EINVAL),
            ),
            Err(_) => v.fail(format!(
                "the other thread was still in flexsc_wait() {BOUND:?} after munmap"
            )),
        }
        if let Err(e) = workers_gone("after munmap") {
            v.fail(e);
        }
        let fx = register(&workers(3))?;
        v.expect(
            "syscall threads after a new registration with 3",
            flexsc_workers_of(me).len(),
            3,
        );
        v.expect(
            "getpid through the new region",
            fx.call(Call::getpid()),
            Ok(me as usize),
        );
        v.into_result()
    });
    assert_all_ok(&[r]);
}

// ---------------------------------------------------------------------------
// F6: ownership of an entry

/// F6. The old kernel stored `ret` before its ownership compare-and-exchange:
/// a syscall thread that finished a call whose entry user space had
/// meanwhile recycled (rewritten and run by the other syscall thread, DONE)
/// overwrote that entry's result, then counted `ctrl.dropped`. Here: a read
/// blocks in entry E; E is rewritten as `getpid` and run by the other
/// thread (DONE, ret = pid); then the read gets its byte. Old kernel: E.ret
/// becomes 1. Now the kernel wins the entry first (BUSY/BLOCKED ->
/// COMPLETING), so E.ret stays the pid and only `ctrl.dropped` grows.
#[test]
fn a_result_is_stored_only_into_an_entry_the_kernel_still_owns() {
    let r = in_child("a read finishing in a recycled entry", 3 * BOUND, || {
        let mut v = Verdict::default();
        let me = my_pid() as i32;
        let fx = register(&workers(2))?;
        let ctrl = flexsc_ctrl(&fx);
        let (r, w) = pipe();
        let buf: &'static mut [u8; 8] = Box::leak(Box::new([0u8; 8]));
        let bufp = buf.as_mut_ptr();
        // SAFETY: read() writes at most 8 bytes into the leaked buffer,
        // which lives as long as the process.
        let e = unsafe {
            flexsc_submit_raw(
                &fx,
                nr::READ,
                [r as u32, bufp as usize as u32, 8, 0, 0, 0],
                0,
                [0; 4],
            )
        };
        if !wait_for(BOUND, || e.status.load(Ordering::Acquire) == abi::BLOCKED) {
            return Err(format!(
                "the read on an empty pipe did not show BLOCKED (status {})",
                e.status.load(Ordering::Acquire)
            ));
        }
        let dropped = ctrl.dropped.load(Ordering::Acquire);
        // The hostile rewrite: a new call in an entry the kernel owns.
        e.nr.store(nr::GETPID, Ordering::Relaxed);
        for a in &e.args {
            a.store(0, Ordering::Relaxed);
        }
        e.ret.store(0x5151, Ordering::Relaxed);
        e.status.store(abi::SUBMITTED, Ordering::Release);
        fence(Ordering::SeqCst);
        fx.kernel_wait(0, None).map_err(|e| format!("kick: {e}"))?;
        if !wait_for(BOUND, || e.status.load(Ordering::Acquire) == abi::DONE) {
            return Err(format!(
                "the rewritten entry was not run by the other syscall thread (status {})",
                e.status.load(Ordering::Acquire)
            ));
        }
        let first = e.ret.load(Ordering::Relaxed);
        if first != me {
            return Err(format!(
                "the rewritten entry (getpid) completed with {first}, want {me}"
            ));
        }
        // Now the first syscall thread's read completes: it lost the entry.
        // SAFETY: one byte from a live buffer into our pipe.
        if unsafe { libc::write(w, b"x".as_ptr().cast(), 1) } != 1 {
            return Err("write to the pipe".into());
        }
        if !wait_for(BOUND, || ctrl.dropped.load(Ordering::Acquire) != dropped) {
            v.fail("the read's lost result was not counted in ctrl.dropped".into());
        }
        v.expect(
            "ctrl.dropped",
            ctrl.dropped.load(Ordering::Acquire),
            dropped + 1,
        );
        v.expect(
            "ret of the recycled entry after the lost read completed",
            e.ret.load(Ordering::Acquire),
            me,
        );
        v.expect(
            "status of the recycled entry",
            e.status.load(Ordering::Acquire),
            abi::DONE,
        );
        // SAFETY: the read has completed (counted in dropped): the kernel
        // no longer writes the buffer; a volatile read of our own memory.
        v.expect(
            "the byte the read got",
            unsafe { bufp.read_volatile() },
            b'x',
        );
        v.into_result()
    });
    assert_all_ok(&[r]);
}

// ---------------------------------------------------------------------------
// F8: idle syscall threads

/// F8. On the old kernel an idle syscall thread woke every second (its
/// orphan check): jitter on CPUs isolated for real-time work, seen as
/// `voluntary_ctxt_switches` growing by about 3 per thread in 3 s. Now an
/// idle thread sleeps until there is work: the count does not change.
#[test]
fn idle_syscall_threads_do_not_wake_up() {
    let r = in_child("idle syscall threads over 3 s", 3 * BOUND, || {
        let mut v = Verdict::default();
        let fx = register(&workers(2))?;
        v.expect(
            "a call first",
            fx.call(Call::getpid()),
            Ok(my_pid() as usize),
        );
        let ctrl = flexsc_ctrl(&fx);
        if !wait_for(BOUND, || ctrl.idle_workers.load(Ordering::Acquire) == 2) {
            return Err("the syscall threads did not go idle".into());
        }
        // Let them reach the sleep itself (idle_workers is raised first).
        std::thread::sleep(Duration::from_millis(500));
        let tids = flexsc_workers_of(my_pid());
        v.expect("number of syscall threads", tids.len(), 2);
        let count = |tids: &[u32]| {
            tids.iter()
                .map(|&t| voluntary_switches(t))
                .collect::<Vec<_>>()
        };
        let before = count(&tids);
        std::thread::sleep(Duration::from_secs(3));
        let after = count(&tids);
        v.expect(
            "voluntary_ctxt_switches of the idle syscall threads, 3 s later",
            after,
            before,
        );
        v.expect("idle_workers", ctrl.idle_workers.load(Ordering::Acquire), 2);
        v.into_result()
    });
    assert_all_ok(&[r]);
}

// ---------------------------------------------------------------------------
// Threat model: unprivileged processes and other users

/// Threat model, unprivileged process: a process of an ordinary user
/// registers and gets nothing it could not do directly: no real-time
/// syscall threads without the right (EPERM), its own identity, no access
/// to a root-only file. (Held before the fixes too: a boundary test.)
#[test]
fn an_unprivileged_process_gains_nothing_through_flexsc() {
    let dir = TmpDir::new("unpriv");
    let path = dir.path("secret");
    std::fs::write(&path, b"root only\n").unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let secret = CString::new(path).unwrap();
    let r = in_child("a process of nobody", 3 * BOUND, || {
        let mut v = Verdict::default();
        become_nobody()?;
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `rl` is a live rlimit the call fills in.
        unsafe { libc::getrlimit(libc::RLIMIT_RTPRIO, &mut rl) };
        v.expect("RLIMIT_RTPRIO of the test's nobody", rl.rlim_cur, 0);
        for policy in [Policy::Fifo(10), Policy::Rr(1)] {
            let cfg = Config {
                policy,
                ..workers(2)
            };
            v.expect(
                &format!("registration with {policy:?} as nobody"),
                flexsc_try_register(&cfg).err(),
                Some(Error::Errno(libc::EPERM)),
            );
        }
        let fx = register(&workers(2))?;
        v.expect(
            "FlexSC getuid32 as nobody",
            fx.call(Call::getuid()),
            Ok(NOBODY as usize),
        );
        let open = || Call::openat(libc::AT_FDCWD, &secret, libc::O_RDONLY | libc::O_CLOEXEC, 0);
        v.expect(
            "direct openat of a root-only file",
            direct(open()),
            Err(Error::Errno(libc::EACCES)),
        );
        v.expect(
            "FlexSC openat of a root-only file",
            fx.call(open()),
            Err(Error::Errno(libc::EACCES)),
        );
        for tid in flexsc_workers_of(my_pid()) {
            let (pol, prio, _) = sched_of(tid)?;
            v.expect(
                &format!("scheduling of syscall thread {tid}"),
                (pol, prio),
                (libc::SCHED_OTHER, 0),
            );
        }
        v.into_result()
    });
    assert_all_ok(&[r]);
}

/// Threat model, other users: a process of another user cannot reach the
/// syscall threads of a root process that uses FlexSC: no ptrace, no
/// `/proc/PID/task/TID/mem`, no `process_vm_writev`, no signal. (The
/// ordinary ptrace and signal rules; the syscall threads add no way in.)
#[test]
fn other_users_cannot_reach_the_syscall_threads() {
    // The target: a root process with a region, alive until `hold` closes.
    let (ready_rd, ready_wr) = pipe();
    let (hold_rd, hold_wr) = pipe();
    let target = guest_tests::fork();
    if target == 0 {
        guest_tests::close(ready_rd);
        guest_tests::close(hold_wr);
        let code = match register(&workers(2)) {
            Ok(fx) => {
                let tid = flexsc_workers_of(my_pid()).first().copied().unwrap_or(0);
                // SAFETY: 4 bytes from a live u32 into our pipe; then a read
                // into a live byte that returns at EOF.
                unsafe {
                    libc::write(ready_wr, tid.to_ne_bytes().as_ptr().cast(), 4);
                    let mut b = 0u8;
                    libc::read(hold_rd, (&mut b as *mut u8).cast(), 1);
                }
                drop(fx);
                0
            }
            Err(_) => 1,
        };
        guest_tests::exit_child(code);
    }
    guest_tests::close(ready_wr);
    guest_tests::close(hold_rd);
    let mut tid = [0u8; 4];
    // SAFETY: reading 4 bytes into a live array from our pipe.
    let n = unsafe { libc::read(ready_rd, tid.as_mut_ptr().cast(), 4) };
    guest_tests::close(ready_rd);
    let worker = u32::from_ne_bytes(tid);
    let attack = in_child("nobody against a root FlexSC process", 3 * BOUND, || {
        if n != 4 || worker == 0 {
            return Err("the target did not register".into());
        }
        let mut v = Verdict::default();
        become_nobody()?;
        let pid = target;
        let tid = worker as libc::pid_t;
        // SAFETY: PTRACE_SEIZE with no address or data pointers.
        let r = unsafe { libc::ptrace(libc::PTRACE_SEIZE, tid, 0, 0) };
        v.expect(
            "PTRACE_SEIZE of a syscall thread",
            (r, errno()),
            (-1, libc::EPERM),
        );
        let mem = format!("/proc/{pid}/task/{tid}/mem");
        v.expect(
            &format!("open {mem}"),
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&mem)
                .map(drop)
                .map_err(|e| e.raw_os_error()),
            Err(Some(libc::EACCES)),
        );
        let mut local = [0u8; 4];
        let liov = libc::iovec {
            iov_base: local.as_mut_ptr().cast(),
            iov_len: 4,
        };
        let riov = libc::iovec {
            iov_base: 0x1_0000 as *mut libc::c_void,
            iov_len: 4,
        };
        // SAFETY: one live local iovec over a live array; the remote one
        // names memory of the target, which the kernel refuses to touch.
        let r = unsafe { libc::process_vm_writev(pid, &liov, 1, &riov, 1, 0) };
        v.expect(
            "process_vm_writev into the target",
            (r, errno()),
            (-1, libc::EPERM),
        );
        // SAFETY: signal 0 only checks permission; integer arguments.
        let r = unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, 0) };
        v.expect(
            "tgkill(target, syscall thread, 0)",
            (r, errno()),
            (-1, libc::EPERM),
        );
        v.into_result()
    });
    guest_tests::close(hold_wr);
    let st = guest_tests::wait_child(target, 3 * BOUND, "FlexSC target process");
    assert_all_ok(&[attack]);
    assert!(guest_tests::exited_with(st, 0), "target: status {st:#x}");
}
