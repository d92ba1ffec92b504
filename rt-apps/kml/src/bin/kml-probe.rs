//! kml-probe: what a program sees of Kernel Mode Linux, for the guest tests.
//!
//! The same static binary is installed as `/trusted/kml-probe` (runs in SYS
//! mode on a KML kernel) and `/usr/bin/kml-probe` (USR mode). Each command
//! prints `key=value` lines:
//!
//! ```text
//! kml-probe status          mode, AT_KML, AT_SECURE, /proc status, a
//!                           privileged CP15 read, dumpable, [kml] mapping
//! kml-probe calls           getpid/getppid/clock/write through svc and the
//!                           trampoline, and in a thread and a child
//! kml-probe fault KIND      null | udf | kernel-write | cli-svc | cli-fault
//! kml-probe signal          a SIGUSR1 handler, and the mode it runs in
//! kml-probe restart         SA_RESTART, EINTR and restart_syscall through
//!                           the trampoline
//! kml-probe fp              a floating-point result computed in 3 threads
//! kml-probe seccomp         a filter applies to trampoline calls too
//! kml-probe spin            print "ready", then loop until killed
//! kml-probe jump ADDR       call ADDR (hex) as code
//! kml-probe exec PATH ARGS  execv PATH (the mode follows the new program)
//! ```

use std::ffi::CString;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use kml::{Mode, Via};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cmd = args.first().map(String::as_str).unwrap_or("status");
    match cmd {
        "status" => status(),
        "calls" => calls(),
        "fault" => fault(args.get(1).map(String::as_str).unwrap_or("")),
        "signal" => signal(),
        "restart" => restart(),
        "fp" => fp(),
        "seccomp" => seccomp(),
        "spin" => spin(),
        "jump" => jump(args.get(1).map(String::as_str).unwrap_or("")),
        "exec" => exec(&args[1..]),
        _ => {
            eprintln!("kml-probe: unknown command '{cmd}' (see the source's header for the list)");
            std::process::exit(2);
        }
    }
    io::stdout().flush().ok();
}

fn mode_name() -> String {
    kml::mode().map(Mode::name).unwrap_or_else(|| "none".into())
}

/// Run `f` in a forked child; "ok" if it exits 0, else how it ended.
fn in_child(f: impl FnOnce()) -> String {
    io::stdout().flush().ok();
    // SAFETY: the probe is single-threaded here; the child only runs `f`
    // (simple instructions and raw system calls) and `_exit`s.
    match unsafe { libc::fork() } {
        -1 => format!("fork-failed:{}", io::Error::last_os_error()),
        0 => {
            f();
            // SAFETY: ends the child without running the parent's atexit
            // handlers or flushing its copied buffers.
            unsafe { libc::_exit(0) }
        }
        pid => wait_status(pid),
    }
}

fn wait_status(pid: libc::pid_t) -> String {
    let mut st = 0;
    // SAFETY: `st` receives the status of our own child `pid`.
    if unsafe { libc::waitpid(pid, &mut st, 0) } != pid {
        return format!("waitpid-failed:{}", io::Error::last_os_error());
    }
    if libc::WIFEXITED(st) {
        match libc::WEXITSTATUS(st) {
            0 => "ok".into(),
            c => format!("exit{c}"),
        }
    } else if libc::WIFSIGNALED(st) {
        signame(libc::WTERMSIG(st))
    } else {
        format!("status{st:#x}")
    }
}

fn signame(sig: i32) -> String {
    match sig {
        libc::SIGSEGV => "SIGSEGV".into(),
        libc::SIGILL => "SIGILL".into(),
        libc::SIGBUS => "SIGBUS".into(),
        libc::SIGKILL => "SIGKILL".into(),
        libc::SIGTRAP => "SIGTRAP".into(),
        s => format!("SIG{s}"),
    }
}

/// Read the DACR (CP15 c3): privileged, undefined in USR mode.
fn read_dacr() -> u32 {
    #[cfg(target_arch = "arm")]
    {
        let v: u32;
        // SAFETY: a register read without side effects; in USR mode it
        // raises SIGILL, which the caller expects (it runs in a child).
        unsafe {
            core::arch::asm!("mrc p15, 0, {0}, c3, c0, 0", out(reg) v, options(nomem, nostack))
        };
        v
    }
    #[cfg(not(target_arch = "arm"))]
    {
        // SAFETY: raise() only sends a signal to this process.
        unsafe { libc::raise(libc::SIGILL) };
        0
    }
}

fn proc_status_kml() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Kml:").map(|v| v.trim().to_string()))
        })
        .unwrap_or_else(|| "absent".into())
}

fn maps_has_kml() -> bool {
    std::fs::read_to_string("/proc/self/maps")
        .map(|m| m.lines().any(|l| l.ends_with("[kml]")))
        .unwrap_or(false)
}

/// The kernel address the [kml] page jumps to (its literal word), if any.
fn entry_target() -> Option<usize> {
    let page = kml::entry()?;
    // SAFETY: the [kml] page is mapped readable in this process; the code
    // is 4 instructions followed by the literal (the kernel's layout).
    Some(unsafe { core::ptr::read_volatile((page + 16) as *const u32) } as usize)
}

fn status() {
    println!("mode={}", mode_name());
    println!("at_kml={:#x}", kml::entry().unwrap_or(0));
    // SAFETY: getauxval() has no preconditions.
    println!("at_secure={}", unsafe { libc::getauxval(libc::AT_SECURE) });
    println!("status_kml={}", proc_status_kml());
    println!("maps_kml={}", maps_has_kml() as u8);
    // SAFETY: PR_GET_DUMPABLE takes no pointer arguments.
    println!("dumpable={}", unsafe {
        libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0)
    });
    println!(
        "privileged={}",
        in_child(|| {
            std::hint::black_box(read_dacr());
        })
    );
    match entry_target() {
        Some(t) => {
            println!("entry_target={t:#x}");
            println!(
                "kernel_read={}",
                in_child(|| {
                    // SAFETY: reads kernel text, which SYS mode may read;
                    // in USR mode this faults (the expected SIGSEGV).
                    std::hint::black_box(unsafe { core::ptr::read_volatile(t as *const u32) });
                })
            );
        }
        None => println!("entry_target=0"),
    }
}

fn calls() {
    println!("mode={}", mode_name());
    println!("trampoline={}", kml::available() as u8);
    println!("getpid_svc={}", kml::getpid_via(Via::Svc));
    println!("getpid_auto={}", kml::getpid_via(Via::Auto));
    println!("getpid_libc={}", std::process::id());
    // SAFETY: getppid takes no arguments.
    let ppid = |via| unsafe { kml::syscall(via, libc::SYS_getppid as u32, [0; 6]) };
    println!("getppid_svc={}", ppid(Via::Svc));
    println!("getppid_auto={}", ppid(Via::Auto));
    let t = |via| {
        kml::clock_gettime_via(via, libc::CLOCK_MONOTONIC)
            .map(|(s, n)| s as i128 * 1_000_000_000 + n as i128)
    };
    let (a, b, c) = (t(Via::Svc), t(Via::Auto), t(Via::Svc));
    match (a, b, c) {
        (Ok(a), Ok(b), Ok(c)) => println!("clock_ordered={}", (a <= b && b <= c) as u8),
        other => println!("clock_error={other:?}"),
    }
    let fd = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .expect("open /dev/null");
    use std::os::fd::AsRawFd;
    println!(
        "write_auto={:?}",
        kml::write_via(Via::Auto, fd.as_raw_fd(), b"hello").map_err(|e| e.raw_os_error())
    );
    println!(
        "write_badfd={:?}",
        kml::write_via(Via::Auto, -1, b"x").map_err(|e| e.raw_os_error())
    );
    let th = std::thread::spawn(|| {
        // SAFETY: gettid takes no arguments.
        let tid = unsafe { kml::syscall(Via::Auto, libc::SYS_gettid as u32, [0; 6]) };
        // SAFETY: gettid() has no preconditions.
        let libc_tid = unsafe { libc::gettid() } as isize;
        (mode_name(), tid == libc_tid)
    });
    let (tmode, tid_ok) = th.join().expect("thread");
    println!("thread_mode={tmode}");
    println!("thread_gettid_ok={}", tid_ok as u8);
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for two descriptors.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let child = in_child(|| {
        let m = mode_name();
        let pid = kml::getpid();
        // SAFETY: getpid() has no preconditions.
        let ok = pid == unsafe { libc::getpid() };
        let line = format!("{m} {}", ok as u8);
        let _ = kml::write_via(Via::Auto, fds[1], line.as_bytes());
    });
    let mut buf = [0u8; 64];
    let n = kml::read_via(Via::Svc, fds[0], &mut buf).unwrap_or(0);
    let text = String::from_utf8_lossy(&buf[..n]).to_string();
    let mut it = text.split(' ');
    println!("fork_exit={child}");
    println!("fork_mode={}", it.next().unwrap_or("?"));
    println!("fork_getpid_ok={}", it.next().unwrap_or("?"));
}

fn fault(kind: &str) {
    let outcome = match kind {
        "null" => in_child(|| {
            // SAFETY: none: a NULL read is the test; it runs in a forked
            // child whose death by SIGSEGV is the expected outcome.
            std::hint::black_box(unsafe {
                core::ptr::read_volatile(std::hint::black_box(0usize) as *const u32)
            });
        }),
        "udf" => in_child(|| udf()),
        "kernel-write" => match entry_target() {
            // SAFETY: none: writing read-only kernel text is the test; it
            // runs in a forked child that must die of SIGSEGV.
            Some(t) => in_child(move || unsafe { core::ptr::write_volatile(t as *mut u32, 0) }),
            None => "no-target".into(),
        },
        "cli-svc" => in_child(|| {
            cli_then(|| {
                kml::getpid_via(Via::Svc);
            })
        }),
        "cli-trampoline" => in_child(|| {
            cli_then(|| {
                kml::getpid_via(Via::Auto);
            })
        }),
        "cli-fault" => in_child(|| {
            cli_then(|| {
                // A fresh anonymous page: the first write is a page fault taken
                // with IRQs masked.
                // SAFETY: a private anonymous mapping of one page, written once
                // and unmapped.
                unsafe {
                    let p = libc::mmap(
                        core::ptr::null_mut(),
                        4096,
                        libc::PROT_READ | libc::PROT_WRITE,
                        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                        -1,
                        0,
                    );
                    assert_ne!(p, libc::MAP_FAILED);
                    cli();
                    core::ptr::write_volatile(p as *mut u32, 1);
                    let masked = irqs_masked();
                    libc::munmap(p, 4096);
                    if masked {
                        libc::_exit(3);
                    }
                }
            })
        }),
        _ => {
            eprintln!("kml-probe fault: unknown kind '{kind}'");
            std::process::exit(2);
        }
    };
    println!("fault_{}={outcome}", kind.replace('-', "_"));
}

/// Mask IRQs (SYS mode only: in USR mode `cpsid` does nothing), run `f`
/// (which enters the kernel), and exit 3 if IRQs are still masked after.
fn cli_then(f: impl FnOnce()) {
    cli();
    f();
    if irqs_masked() {
        // SAFETY: ends the child process.
        unsafe { libc::_exit(3) };
    }
}

fn cli() {
    #[cfg(target_arch = "arm")]
    // SAFETY: masks IRQs of this CPU in SYS mode (a no-op in USR mode);
    // the next kernel entry unmasks them.
    unsafe {
        core::arch::asm!("cpsid i", options(nomem, nostack))
    };
}

fn irqs_masked() -> bool {
    kml::cpsr().map(|c| c & (1 << 7) != 0).unwrap_or(false)
}

fn udf() {
    #[cfg(target_arch = "arm")]
    // SAFETY: a permanently undefined instruction: raises SIGILL.
    unsafe {
        core::arch::asm!("udf #0", options(nomem, nostack))
    };
}

static HANDLER_MODE: AtomicU32 = AtomicU32::new(0);
static HANDLER_RUNS: AtomicU32 = AtomicU32::new(0);

extern "C" fn on_signal(_sig: libc::c_int) {
    HANDLER_MODE.store(kml::cpsr().unwrap_or(0) & 0x1f, Ordering::SeqCst);
    HANDLER_RUNS.fetch_add(1, Ordering::SeqCst);
}

fn set_handler(sig: i32, flags: i32) {
    // SAFETY: installs an async-signal-safe handler (atomics only) with an
    // initialised sigaction.
    unsafe {
        let mut sa: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
        sa.sa_flags = flags;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(sig, &sa, core::ptr::null_mut()), 0);
    }
}

fn signal() {
    set_handler(libc::SIGUSR1, 0);
    // SAFETY: raise() sends SIGUSR1 to this thread; the handler is set.
    unsafe { libc::raise(libc::SIGUSR1) };
    println!("handler_runs={}", HANDLER_RUNS.load(Ordering::SeqCst));
    println!(
        "handler_mode={}",
        Mode::from_bits(HANDLER_MODE.load(Ordering::SeqCst)).name()
    );
    println!("mode_after={}", mode_name());
}

fn alarm_in(ms: u64) {
    let it = libc::itimerval {
        it_interval: libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
        it_value: libc::timeval {
            tv_sec: (ms / 1000) as _,
            tv_usec: ((ms % 1000) * 1000) as _,
        },
    };
    // SAFETY: `it` is a valid itimerval; no old value is requested.
    assert_eq!(
        unsafe { libc::setitimer(libc::ITIMER_REAL, &it, core::ptr::null_mut()) },
        0
    );
}

/// Fork a child that runs `f` after `delay`; returns its pid.
fn helper_after(delay: Duration, f: impl FnOnce()) -> libc::pid_t {
    // SAFETY: single-threaded at this point; the child sleeps, runs `f`
    // (raw system calls) and `_exit`s.
    match unsafe { libc::fork() } {
        0 => {
            std::thread::sleep(delay);
            f();
            // SAFETY: ends the helper child.
            unsafe { libc::_exit(0) }
        }
        -1 => panic!("fork: {}", io::Error::last_os_error()),
        pid => pid,
    }
}

fn restart() {
    println!("trampoline={}", kml::available() as u8);
    // 1. SA_RESTART: a blocking read interrupted by a handled signal resumes.
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for two descriptors.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    set_handler(libc::SIGALRM, libc::SA_RESTART);
    HANDLER_RUNS.store(0, Ordering::SeqCst);
    let w = fds[1];
    let child = helper_after(Duration::from_millis(400), move || {
        let _ = kml::write_via(Via::Svc, w, b"r");
    });
    alarm_in(100);
    let mut buf = [0u8; 4];
    let r = kml::read_via(Via::Auto, fds[0], &mut buf);
    println!("restart_read={:?}", r.map_err(|e| e.raw_os_error()));
    println!(
        "restart_handler_runs={}",
        HANDLER_RUNS.load(Ordering::SeqCst)
    );
    println!("restart_child={}", wait_status(child));

    // 2. Without SA_RESTART the same read fails with EINTR.
    set_handler(libc::SIGALRM, 0);
    HANDLER_RUNS.store(0, Ordering::SeqCst);
    alarm_in(100);
    let r = kml::read_via(Via::Auto, fds[0], &mut buf);
    println!("eintr_read={:?}", r.map_err(|e| e.raw_os_error()));
    println!("eintr_handler_runs={}", HANDLER_RUNS.load(Ordering::SeqCst));

    // 3. A stop and continue (no handler) during clock_nanosleep: the
    //    kernel restarts it with restart_syscall and it sleeps in full.
    // SAFETY: getpid() has no preconditions.
    let me = unsafe { libc::getpid() };
    let child = helper_after(Duration::from_millis(100), move || {
        // SAFETY: signals to the parent, which expects them.
        unsafe { libc::kill(me, libc::SIGSTOP) };
        std::thread::sleep(Duration::from_millis(100));
        // SAFETY: as above.
        unsafe { libc::kill(me, libc::SIGCONT) };
    });
    let ts = [0i64, 300_000_000i64]; // __kernel_timespec: 300 ms
    let t0 = Instant::now();
    // SAFETY: `ts` is a valid __kernel_timespec; no remainder pointer.
    let r = unsafe {
        kml::syscall(
            Via::Auto,
            407, /* clock_nanosleep_time64 */
            [
                libc::CLOCK_MONOTONIC as usize,
                0,
                ts.as_ptr() as usize,
                0,
                0,
                0,
            ],
        )
    };
    let ms = t0.elapsed().as_millis();
    println!("nanosleep_ret={r}");
    println!("nanosleep_full={}", (ms >= 300) as u8);
    println!("nanosleep_child={}", wait_status(child));
}

fn fp_work(seed: f64) -> u64 {
    let mut x = seed;
    let mut acc = 0.0f64;
    for i in 0..200_000u32 {
        x = (x * 1.000_000_1 + 0.5).sqrt() + f64::from(i % 7) * 1e-3;
        acc += x.sin() * 1e-3;
        if i % 10_000 == 0 {
            std::thread::yield_now();
        }
    }
    (acc + x).to_bits()
}

fn fp() {
    let hs: Vec<_> = (0..2)
        .map(|_| std::thread::spawn(|| fp_work(1.25)))
        .collect();
    let main = fp_work(1.25);
    let others: Vec<u64> = hs.into_iter().map(|h| h.join().expect("thread")).collect();
    println!("mode={}", mode_name());
    println!("fp={main:#018x}");
    println!(
        "fp_threads_agree={}",
        others.iter().all(|&o| o == main) as u8
    );
}

fn seccomp() {
    // A classic BPF filter: getppid fails with EPERM, everything else runs.
    let nr_off = 0u32; // offsetof(struct seccomp_data, nr)
    let filter = [
        libc::sock_filter {
            code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
            jt: 0,
            jf: 0,
            k: nr_off,
        },
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: libc::SYS_getppid as u32,
        },
        libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
        },
        libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ALLOW,
        },
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut _,
    };
    // SAFETY: `prog` points to a valid filter for the duration of the call.
    let r = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &prog as *const _ as usize,
            0,
            0,
        )
    };
    println!("seccomp_installed={}", (r == 0) as u8);
    // SAFETY: getppid takes no arguments.
    let ppid = |via| unsafe { kml::syscall(via, libc::SYS_getppid as u32, [0; 6]) };
    println!("seccomp_svc={}", ppid(Via::Svc));
    println!("seccomp_auto={}", ppid(Via::Auto));
    println!(
        "seccomp_getpid_ok={}",
        (kml::getpid() == std::process::id() as i32) as u8
    );
}

fn spin() {
    println!("ready mode={}", mode_name());
    io::stdout().flush().ok();
    let mut x = 0u64;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}

fn jump(addr: &str) {
    let Ok(a) = usize::from_str_radix(addr.trim_start_matches("0x"), 16) else {
        eprintln!("kml-probe jump: need a hexadecimal address");
        std::process::exit(2);
    };
    let outcome = in_child(move || {
        // SAFETY: none: jumping to an arbitrary address is the test (it
        // must fault in USR mode); it runs in a child.
        let f: extern "C" fn() = unsafe { core::mem::transmute(a) };
        f();
    });
    println!("jump={outcome}");
}

fn exec(args: &[String]) {
    let Some(path) = args.first() else {
        eprintln!("kml-probe exec: need a path");
        std::process::exit(2);
    };
    let c: Vec<CString> = args
        .iter()
        .map(|a| CString::new(a.as_str()).expect("no NUL"))
        .collect();
    let mut argv: Vec<*const libc::c_char> = c.iter().map(|a| a.as_ptr()).collect();
    argv.push(core::ptr::null());
    io::stdout().flush().ok();
    // SAFETY: `argv` is a NULL-terminated array of C strings that outlive
    // the call.
    unsafe { libc::execv(c[0].as_ptr(), argv.as_ptr()) };
    eprintln!("kml-probe exec {path}: {}", io::Error::last_os_error());
    std::process::exit(127);
}
