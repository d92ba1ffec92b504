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
        // Batch protocol: counted, so the syscall threads look for it.
        ctrl.submitted.fetch_add(1, Ordering::Release);
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

// ---------------------------------------------------------------------------
// Threat model claims that had no test of their own (kernel documentation
// of patch 0002, "Threat model" and "Registration")

/// The lines of /proc/self/maps that show a FlexSC region (the mapping of
/// the anonymous-inode file `[flexsc]`).
fn flexsc_maps_lines() -> Vec<String> {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("[flexsc]"))
        .map(str::to_string)
        .collect()
}

/// `Threads:` of /proc/self/status: every thread of this process, the
/// syscall threads included.
fn threads_of_this_process() -> Option<u32> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))?
        .trim()
        .parse()
        .ok()
}

/// The pid of a child forked now (it exits at once): pids are handed out
/// in increasing order, so the difference between two of these counts the
/// tasks created in between (more if other tasks start meanwhile).
fn pid_of_a_new_child() -> i32 {
    let pid = guest_tests::fork();
    if pid == 0 {
        guest_tests::exit_child(0);
    }
    guest_tests::wait_child(pid, BOUND, "a child that exits at once");
    pid
}

/// What a failed registration must leave behind: nothing. No syscall
/// thread (they are stopped, within BOUND), no region in the maps, the
/// same number of threads as before.
fn nothing_left_of_a_failed_registration(v: &mut Verdict, what: &str, threads: Option<u32>) {
    if let Err(e) = workers_gone(what) {
        v.fail(e);
    }
    v.expect(
        &format!("{what}: FlexSC mappings left in /proc/self/maps"),
        flexsc_maps_lines(),
        Vec::new(),
    );
    v.expect(
        &format!("{what}: threads of the process"),
        threads_of_this_process(),
        threads,
    );
}

/// Registers again after a failure: works (no EBUSY from a region left
/// behind) and runs a call.
fn register_again(v: &mut Verdict, what: &str, n: u32) -> Result<FlexSc, String> {
    let fx = register(&workers(n)).map_err(|e| format!("{what}: {e}"))?;
    v.expect(
        &format!("{what}: getpid through the new region"),
        fx.call(Call::getpid()),
        Ok(my_pid() as usize),
    );
    Ok(fx)
}

/// Child: the registration reads its configuration from a read-only page,
/// starts the syscall threads, then cannot write `cfg->addr`: EFAULT, after
/// the threads were running (the same path as a thread whose CPUs or
/// policy cannot be set: unmapping the region stops them).
fn registration_that_fails_after_starting_its_threads() -> Result<(), String> {
    const N: u32 = 4;
    let mut v = Verdict::default();
    let threads = threads_of_this_process();
    // SAFETY: a new anonymous private page, not yet used by anything.
    let page = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            abi::PAGE_SIZE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if page == libc::MAP_FAILED {
        return Err(format!("mmap: errno {}", errno()));
    }
    // SAFETY: the page is ours, page-aligned and larger than a Config;
    // after the write it becomes read-only.
    let r = unsafe {
        page.cast::<abi::Config>().write(workers(N).to_raw());
        libc::mprotect(page, abi::PAGE_SIZE, libc::PROT_READ)
    };
    if r != 0 {
        return Err(format!("mprotect: errno {}", errno()));
    }
    let before = pid_of_a_new_child();
    // SAFETY: the only pointer is the read-only page holding a whole
    // Config; the kernel reads it and its one write (addr) faults.
    let r = unsafe {
        sys::syscall6(
            nr::FLEXSC_REGISTER,
            [
                page as usize as u32,
                std::mem::size_of::<abi::Config>() as u32,
                0,
                0,
                0,
                0,
            ],
        )
    };
    let after = pid_of_a_new_child();
    v.expect(
        "registration with its configuration on a read-only page",
        r.map(|_| ()),
        Err(libc::EFAULT),
    );
    // The threads were started before the failure: N pids between the two
    // children (pids wrap at pid_max: then this cannot tell).
    if after > before && after - before < N as i32 + 1 {
        v.fail(format!(
            "pids {before} and {after} of the children before and after: the \
             registration failed before starting its {N} syscall threads, so \
             this did not test their cleanup"
        ));
    }
    nothing_left_of_a_failed_registration(&mut v, "after EFAULT", threads);
    drop(register_again(&mut v, "after EFAULT", 2)?);
    // SAFETY: our page, no longer used.
    unsafe { libc::munmap(page, abi::PAGE_SIZE) };
    v.into_result()
}

/// Tasks in the system whose real uid is `uid` (what RLIMIT_NPROC counts
/// for that user), from /proc/*/task/*/status.
fn tasks_of_real_uid(uid: u32) -> u64 {
    let mut n = 0;
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return 0;
    };
    for p in procs.flatten() {
        if p.file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
            .is_none()
        {
            continue;
        }
        let Ok(tasks) = std::fs::read_dir(p.path().join("task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let real = std::fs::read_to_string(t.path().join("status"))
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find_map(|l| l.strip_prefix("Uid:"))?
                        .split_whitespace()
                        .next()?
                        .parse::<u32>()
                        .ok()
                });
            if real == Some(uid) {
                n += 1;
            }
        }
    }
    n
}

fn set_rlimit(resource: libc::__rlimit_resource_t, value: u64) -> Result<(), String> {
    let rl = libc::rlimit {
        rlim_cur: value as libc::rlim_t,
        rlim_max: value as libc::rlim_t,
    };
    // SAFETY: `rl` is a live rlimit the call reads.
    if unsafe { libc::setrlimit(resource, &rl) } != 0 {
        return Err(format!("setrlimit({resource}, {value}): errno {}", errno()));
    }
    Ok(())
}

/// `fork()` whose child exits at once: Ok, or the errno of a refused fork.
fn try_fork() -> Result<(), i32> {
    // SAFETY: the child only calls _exit.
    match unsafe { libc::fork() } {
        -1 => Err(errno()),
        0 => guest_tests::exit_child(0),
        pid => {
            guest_tests::wait_child(pid, BOUND, "a child that exits at once");
            Ok(())
        }
    }
}

/// Child: a process of nobody whose RLIMIT_NPROC leaves room for exactly
/// two more tasks asks for three syscall threads: the third cannot start
/// (EAGAIN) after two have, and those two must go.
fn registration_beyond_rlimit_nproc() -> Result<(), String> {
    let mut v = Verdict::default();
    become_nobody()?;
    // This process included; a task may start while the count stays at
    // most the limit.
    let room = 2;
    set_rlimit(libc::RLIMIT_NPROC, tasks_of_real_uid(NOBODY) + room)?;
    let threads = threads_of_this_process();
    v.expect(
        "registration of 3 syscall threads with room for 2 tasks",
        flexsc_try_register(&workers(3)).err(),
        Some(Error::Errno(libc::EAGAIN)),
    );
    nothing_left_of_a_failed_registration(&mut v, "after EAGAIN", threads);
    // The oracle for "two had started": the same limit admits exactly two
    // syscall threads, and while they run, a direct fork is refused (they
    // count as tasks of the user, as the threads of any process do).
    let fx = register_again(&mut v, "2 syscall threads with room for 2", 2)?;
    v.expect("syscall threads", flexsc_workers_of(my_pid()).len(), 2);
    v.expect(
        "a direct fork while the 2 syscall threads run",
        try_fork(),
        Err(libc::EAGAIN),
    );
    drop(fx);
    if let Err(e) = workers_gone("after unregistering") {
        v.fail(e);
    }
    v.expect(
        "a direct fork once the syscall threads are gone",
        try_fork(),
        Ok(()),
    );
    v.into_result()
}

/// Threat model and "Registration": a registration that fails after it
/// started syscall threads stops them and unmaps its region. Two ways to
/// fail there that a process can cause: `cfg->addr` cannot be written
/// (EFAULT, all threads started) and RLIMIT_NPROC stops the third of three
/// threads (EAGAIN: syscall threads count as tasks of the user). A thread
/// whose CPUs or policy cannot be set takes the same path (the error is
/// returned after the thread was listed; the region's unmapping stops it),
/// but a process cannot provoke that on a one-CPU guest: the CPUs and the
/// policy are checked before, and only CPU hotplug between the check and
/// the thread's start could make them fail.
#[test]
fn a_failed_registration_stops_the_threads_it_started() {
    assert_all_ok(&[
        in_child(
            "cfg->addr not writable",
            3 * BOUND,
            registration_that_fails_after_starting_its_threads,
        ),
        in_child(
            "RLIMIT_NPROC reached at the third thread",
            3 * BOUND,
            registration_beyond_rlimit_nproc,
        ),
    ]);
}

/// Threat model, priority gains: real-time syscall threads only within
/// RLIMIT_RTPRIO. A process of nobody with RLIMIT_RTPRIO 20 gets SCHED_FIFO
/// and SCHED_RR syscall threads at priority 20, and EPERM at 21; the
/// oracle is the same request made directly for a thread of its own.
#[test]
fn real_time_syscall_threads_only_within_rlimit_rtprio() {
    const LIMIT: u8 = 20;
    let r = in_child("nobody with RLIMIT_RTPRIO 20", 6 * BOUND, || {
        let mut v = Verdict::default();
        set_rlimit(libc::RLIMIT_RTPRIO, LIMIT.into())?;
        become_nobody()?;
        // The oracle, on a thread that ends afterwards.
        let direct = std::thread::spawn(|| {
            [LIMIT, LIMIT + 1].map(|p| set_policy(libc::SCHED_FIFO, p.into()).is_ok())
        })
        .join()
        .map_err(|_| "the oracle thread panicked".to_string())?;
        v.expect(
            "direct SCHED_FIFO 20 and 21 for a thread of nobody",
            direct,
            [true, false],
        );
        for (policy, want) in [
            (Policy::Fifo(LIMIT), (libc::SCHED_FIFO, LIMIT.into())),
            (Policy::Rr(LIMIT), (libc::SCHED_RR, LIMIT.into())),
        ] {
            check_workers(&mut v, &format!("nobody, {policy:?}"), policy, want, None)?;
        }
        for policy in [Policy::Fifo(LIMIT + 1), Policy::Rr(99)] {
            v.expect(
                &format!("registration with {policy:?} as nobody with RLIMIT_RTPRIO {LIMIT}"),
                flexsc_try_register(&Config {
                    policy,
                    ..workers(2)
                })
                .err(),
                Some(Error::Errno(libc::EPERM)),
            );
        }
        if let Err(e) = workers_gone("after the refused registrations") {
            v.fail(e);
        }
        v.into_result()
    });
    assert_all_ok(&[r]);
}

/// `VmFlags:` of the mapping that starts at `start`, from /proc/self/smaps.
fn vm_flags(start: usize) -> Option<Vec<String>> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
    let head = format!("{start:08x}-");
    // Every entry ends with its VmFlags line: the first one after the
    // entry's head is its own.
    smaps
        .lines()
        .skip_while(|l| !l.starts_with(&head))
        .find_map(|l| l.strip_prefix("VmFlags:"))
        .map(|f| f.split_whitespace().map(str::to_string).collect())
}

/// An ordinary shared mapping of `len` bytes (the control for what the
/// region refuses), or the errno.
fn shared_mapping(len: usize) -> Result<usize, String> {
    // SAFETY: a new anonymous shared mapping; nothing else uses it.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(format!("mmap: errno {}", errno()));
    }
    Ok(p as usize)
}

/// The changes a process may try on a mapping of `len` bytes (three pages
/// or more): unmap its second page, write-protect its second page, shrink
/// it by a page, grow it by a page, move it.
const RESHAPES: [&str; 5] = [
    "munmap of the second page",
    "mprotect(PROT_READ) of the second page",
    "mremap shrinking it by a page",
    "mremap growing it by a page",
    "mremap moving it",
];

/// Tries change `RESHAPES[op]` on the mapping at `base`: Ok, or the errno.
/// `spare` is an unused mapping of `len` bytes to move to.
///
/// # Safety
///
/// `base..base + len` and `spare..spare + len` must be mappings of the
/// caller that nothing else uses (on success the first is changed, and the
/// move replaces the second).
unsafe fn reshape(op: usize, base: usize, len: usize, spare: usize) -> Result<(), i32> {
    let pg = abi::PAGE_SIZE;
    let p = |a: usize| a as *mut libc::c_void;
    // SAFETY: the caller's ranges (see above).
    let done = unsafe {
        match op {
            0 => libc::munmap(p(base + pg), pg) == 0,
            1 => libc::mprotect(p(base + pg), pg, libc::PROT_READ) == 0,
            2 => libc::mremap(p(base), len, len - pg, 0) != libc::MAP_FAILED,
            3 => libc::mremap(p(base), len, len + pg, libc::MREMAP_MAYMOVE) != libc::MAP_FAILED,
            _ => {
                libc::mremap(
                    p(base),
                    len,
                    len,
                    libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
                    p(spare),
                ) != libc::MAP_FAILED
            }
        }
    };
    if done {
        Ok(())
    } else {
        Err(errno())
    }
}

/// Opens `/proc/self/map_files/<start>-<end>` (the mapping's file) and maps
/// it again, shared: Ok, or the errno of the open or of the mmap.
fn map_again(start: usize, len: usize) -> Result<(), i32> {
    let name = format!("/proc/self/map_files/{start:x}-{:x}", start + len);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&name)
        .map_err(|e| e.raw_os_error().unwrap_or(0))?;
    // SAFETY: a new shared mapping at an address of the kernel's choosing.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            std::os::fd::AsRawFd::as_raw_fd(&f),
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(errno());
    }
    // SAFETY: the mapping just made, unused.
    unsafe { libc::munmap(p, len) };
    Ok(())
}

/// Tries change `RESHAPES[op]` on the region of `fx` (two syscall
/// threads, `maps` its maps line): it must be refused and leave the region
/// as it was: its maps line, its syscall threads, and a call through it
/// (bounded: a stopped region never runs it). The control: the same change
/// works on a fresh ordinary shared mapping.
fn refused_change_leaves_the_region_working(
    v: &mut Verdict,
    fx: &FlexSc,
    op: usize,
    maps: &[String],
) -> Result<(), String> {
    let what = RESHAPES[op];
    let (base, len) = fx.region().ok_or("no region")?;
    let spare = shared_mapping(len)?;
    // SAFETY: the region, which the kernel refuses to change (if it did,
    // this child's FlexSc is broken, and the child ends anyway); `spare` is
    // an unused mapping of ours.
    let r = unsafe { reshape(op, base, len, spare) };
    if r.is_ok() {
        v.fail(format!("the region: {what} worked"));
    }
    v.expect(
        &format!("the region's maps line after {what}"),
        flexsc_maps_lines(),
        maps.to_vec(),
    );
    v.expect(
        &format!("syscall threads after {what}"),
        flexsc_workers_of(my_pid()).len(),
        2,
    );
    let t = fx
        .post(Call::getpid())
        .map_err(|e| format!("post getpid: {e}"))?;
    match fx.wait_timeout(&t, BOUND) {
        Ok(true) => v.expect(
            &format!("getpid through the region after {what}"),
            fx.wait(t),
            Ok(my_pid() as usize),
        ),
        other => {
            v.fail(format!(
                "getpid through the region after {what}: not done within {BOUND:?} ({other:?})"
            ));
            fx.detach(t);
        }
    }
    let (control, control_spare) = (shared_mapping(len)?, shared_mapping(len)?);
    // SAFETY: both are new mappings of ours that nothing uses.
    let r = unsafe { reshape(op, control, len, control_spare) };
    v.expect(&format!("an ordinary shared mapping: {what}"), r, Ok(()));
    Ok(())
}

/// Threat model, other processes, and "Registration": the region cannot be
/// split, shrunk, grown or mapped a second time, is not dumped and not
/// inherited (MADV_DOFORK is refused; a forked child that touches its
/// address gets SIGSEGV).
/// The controls: the same operations on an ordinary shared mapping work;
/// /proc/self/smaps shows the kernel's own flags (`dd`: not dumped, `dc`:
/// not copied on fork) on the region and not on the control.
#[test]
fn the_region_cannot_be_reshaped_mapped_again_dumped_or_inherited() {
    let r = in_child("reshaping the region", 3 * BOUND, || {
        let mut v = Verdict::default();
        let fx = register(&Config {
            npages: 2,
            ..workers(2)
        })?;
        let (base, len) = fx.region().ok_or("no region")?;
        let maps = flexsc_maps_lines();
        let control = shared_mapping(len)?;

        let flags = vm_flags(base).ok_or("the region is not in /proc/self/smaps")?;
        for f in ["dd", "dc"] {
            if !flags.iter().any(|x| x == f) {
                v.fail(format!("VmFlags of the region lack {f}: {flags:?}"));
            }
        }
        let cflags = vm_flags(control).ok_or("the control is not in /proc/self/smaps")?;
        v.expect(
            "VmFlags dd or dc on an ordinary shared mapping",
            cflags.iter().any(|x| x == "dd" || x == "dc"),
            false,
        );

        v.expect(
            "mapping the region again",
            map_again(base, len).is_err(),
            true,
        );
        v.expect("mapping the control again", map_again(control, len), Ok(()));

        // Moving it: a_refused_move_leaves_the_region_working.
        for op in 0..RESHAPES.len() - 1 {
            refused_change_leaves_the_region_working(&mut v, &fx, op, &maps)?;
        }

        // Not inherited, and a process cannot make it so: MADV_DOFORK (which
        // clears VM_DONTCOPY on an ordinary mapping) is refused.
        let advise = |addr: usize, advice: libc::c_int| {
            // SAFETY: madvise of a whole mapping of ours; DONTFORK/DOFORK
            // only change what fork() copies.
            let r = unsafe { libc::madvise(addr as *mut libc::c_void, len, advice) };
            if r == 0 {
                Ok(())
            } else {
                Err(errno())
            }
        };
        v.expect(
            "MADV_DOFORK on the region refused",
            advise(base, libc::MADV_DOFORK).is_err(),
            true,
        );
        v.expect(
            "VmFlags dc of the region after MADV_DOFORK",
            vm_flags(base).is_some_and(|f| f.iter().any(|x| x == "dc")),
            true,
        );
        v.expect(
            "MADV_DONTFORK, then MADV_DOFORK on an ordinary shared mapping",
            (
                advise(control, libc::MADV_DONTFORK),
                advise(control, libc::MADV_DOFORK),
            ),
            (Ok(()), Ok(())),
        );

        let child = guest_tests::fork();
        if child == 0 {
            // SAFETY: the default action, so that the fault ends the child;
            // then a read of the region's address, which the child does not
            // have (nothing else is mapped there: it allocated nothing).
            unsafe {
                libc::signal(libc::SIGSEGV, libc::SIG_DFL);
                std::ptr::read_volatile(base as *const u32);
            }
            guest_tests::exit_child(0);
        }
        let st = guest_tests::wait_child(child, BOUND, "forked child touching the region");
        v.expect(
            "a forked child reading the region's address: killed by signal",
            (libc::WIFSIGNALED(st), libc::WTERMSIG(st)),
            (true, libc::SIGSEGV),
        );
        v.into_result()
    });
    assert_all_ok(&[r]);
}

/// Threat model, seccomp: ptrace system call tracing does not see FlexSC
/// calls (as with io_uring; it is an observer, not enforcement), but a
/// tracer sees the registration. A traced child registers, makes three
/// FlexSC `getppid` calls (all right) and one direct `getppid`: the
/// tracer's syscall-entry stops (PTRACE_GET_SYSCALL_INFO) show
/// flexsc_register once and getppid once, the direct one.
#[test]
fn a_tracer_sees_the_registration_but_not_the_calls() {
    let r = in_child("a traced FlexSC process", 6 * BOUND, || {
        let parent = my_pid() as usize;
        let tracee = guest_tests::fork();
        if tracee == 0 {
            // SAFETY: PTRACE_TRACEME and raise take no pointers.
            unsafe {
                libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0);
                libc::raise(libc::SIGSTOP);
            }
            let code = match flexsc_try_register(&workers(2)) {
                Err(_) => 10,
                Ok(fx) => {
                    if (0..3).any(|_| fx.call(Call::getppid()) != Ok(parent)) {
                        11
                    } else if direct(Call::getppid()) != Ok(parent) {
                        12
                    } else {
                        0
                    }
                }
            };
            guest_tests::exit_child(code);
        }
        let mut entries: Vec<u64> = Vec::new();
        let mut st = 0;
        // SAFETY: waitpid and ptrace requests for our own tracee; `info`
        // is a live ptrace_syscall_info the kernel fills in (at most its
        // size, which it is told).
        unsafe {
            if libc::waitpid(tracee, &mut st, 0) != tracee || !libc::WIFSTOPPED(st) {
                return Err(format!("the tracee did not stop: {st:#x}"));
            }
            let opts = libc::PTRACE_O_TRACESYSGOOD | libc::PTRACE_O_EXITKILL;
            libc::ptrace(libc::PTRACE_SETOPTIONS, tracee, 0, opts);
            let mut sig = 0;
            loop {
                libc::ptrace(libc::PTRACE_SYSCALL, tracee, 0, sig);
                sig = 0;
                if libc::waitpid(tracee, &mut st, 0) != tracee {
                    return Err(format!("waitpid: errno {}", errno()));
                }
                if !libc::WIFSTOPPED(st) {
                    break;
                }
                if libc::WSTOPSIG(st) != (libc::SIGTRAP | 0x80) {
                    sig = libc::WSTOPSIG(st);
                    continue;
                }
                let mut info: libc::ptrace_syscall_info = std::mem::zeroed();
                let size = std::mem::size_of::<libc::ptrace_syscall_info>();
                let r = libc::ptrace(
                    libc::PTRACE_GET_SYSCALL_INFO,
                    tracee,
                    size,
                    &mut info as *mut libc::ptrace_syscall_info,
                );
                if r <= 0 {
                    return Err(format!("PTRACE_GET_SYSCALL_INFO: errno {}", errno()));
                }
                if info.op == libc::PTRACE_SYSCALL_INFO_ENTRY {
                    entries.push(info.u.entry.nr);
                }
            }
        }
        let mut v = Verdict::default();
        v.expect(
            "the tracee's exit status (10: registration, 11: a FlexSC getppid, 12: the direct one)",
            (libc::WIFEXITED(st), libc::WEXITSTATUS(st)),
            (true, 0),
        );
        let count = |n: u32| entries.iter().filter(|&&e| e == u64::from(n)).count();
        v.expect(
            "flexsc_register entries the tracer saw",
            count(nr::FLEXSC_REGISTER),
            1,
        );
        v.expect(
            "getppid entries the tracer saw (only the direct one)",
            count(nr::GETPPID),
            1,
        );
        v.into_result()
    });
    assert_all_ok(&[r]);
}

/// "Registration": the region cannot be moved, and the refused move changes
/// nothing. mremap() copies the VMA to the new address, the region's
/// `.mremap` hook refuses, mremap moves the page tables back and unmaps the
/// copy. The old kernel (patch 0002 before 2026-12-05) stopped the region
/// there: the copy's `.close` (flexsc_vma_close() in kernel/flexsc/glue.c)
/// stopped the context it shares with the region, so the syscall threads
/// were gone and no call completed afterwards (the process only hurt
/// itself, and got EBUSY from a new registration until it unmapped the dead
/// region). Now only the close of the region's own VMA stops it: after the
/// refused move the maps line, the syscall threads and a getpid through the
/// region are as before, and a real munmap() of the region still stops the
/// threads at once (the oracle: /proc/self/maps and the threads' /proc
/// entries).
#[test]
fn a_refused_move_leaves_the_region_working() {
    let r = in_child("moving the region", 3 * BOUND, || {
        let mut v = Verdict::default();
        let fx = register(&Config {
            npages: 2,
            ..workers(2)
        })?;
        let maps = flexsc_maps_lines();
        refused_change_leaves_the_region_working(&mut v, &fx, RESHAPES.len() - 1, &maps)?;
        // No call in flight: shutdown unmaps the whole region at once.
        fx.shutdown(Duration::ZERO);
        if let Err(e) = workers_gone("munmap after the refused move") {
            v.fail(e);
        }
        v.expect(
            "the region's maps line after munmap",
            flexsc_maps_lines(),
            Vec::<String>::new(),
        );
        v.into_result()
    });
    assert_all_ok(&[r]);
}
