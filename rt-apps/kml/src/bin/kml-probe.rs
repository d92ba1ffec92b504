//! kml-probe: what a program sees of Kernel Mode Linux, for the guest tests.
//!
//! The image installs this static binary as `/usr/bin/kml-probe` (USR mode)
//! and `/usr/lib/rtflex/kml/kml-probe`, the copy the guest tests install
//! into `/trusted` for one test and remove afterwards: it is a test tool
//! (it jumps to addresses it is given) and must never stay trusted. Each
//! command prints `key=value` lines:
//!
//! ```text
//! kml-probe status          mode, AT_KML, AT_SECURE, /proc status, a
//!                           privileged CP15 read, dumpable, [kml] mapping
//! kml-probe calls           getpid/getppid/clock/write through svc and the
//!                           trampoline, and in a thread and a child
//! kml-probe fault KIND      null | udf | kernel-write | vmalloc-hole |
//!                           usr-trampoline | cli-svc | cli-trampoline |
//!                           cli-fault, in a child: how it ended and the
//!                           faulting address the signal reported
//! kml-probe signal          a SIGUSR1 handler, and the mode it runs in
//! kml-probe restart         SA_RESTART, EINTR and restart_syscall through
//!                           the trampoline
//! kml-probe fp              a floating-point result computed in 3 threads
//! kml-probe seccomp         a filter applies to trampoline calls too
//! kml-probe spin            print "ready", then loop until killed
//! kml-probe jump ADDR       call ADDR (hex) as code, in a child
//! kml-probe exec PATH ARGS  execv PATH (the mode follows the new program)
//! kml-probe personality     personality flags, a stack and an mmap address,
//!                           whether a PROT_READ mapping is executable
//! kml-probe dumpable1-wait  PR_SET_DUMPABLE(1), print pid, mode and the
//!                           address of a word, "ready", wait for stdin EOF
//!                           (at most 120 s), print the word
//! kml-probe attack PID ADDR every ptrace-mode access to PID: PTRACE_ATTACH,
//!                           PTRACE_SEIZE, /proc/PID/mem for writing,
//!                           process_vm_readv/writev at ADDR,
//!                           /proc/PID/environ, pidfd_getfd
//! kml-probe attack-child PATH ARGS
//!                           run PATH ARGS (a dumpable1-wait) as a child
//!                           and attack it as its caller
//! kml-probe race N PATH     N rounds: fork a child that execs "PATH
//!                           exit-mode 2" while this process spins on
//!                           PTRACE_ATTACH/PTRACE_SEIZE of it; report what
//!                           every tracee it got ran as
//! kml-probe exit-mode MS    sleep MS ms, exit with the CPSR mode bits
//!                           (16: USR, 31: SYS)
//! kml-probe endian          getpid and clock_gettime64 made with big-endian
//!                           data accesses (setend be) and flags N, C and
//!                           two GE bits set, through svc and the
//!                           trampoline: results, and the flags, GE bits and
//!                           E bit the call gave back
//! kml-probe sigreturn-state STATE...
//!                           per STATE (same | it | j), a child whose SIGUSR1
//!                           handler adds nothing, IT bits or the J bit to
//!                           the saved CPSR (ARM state): how it ended
//! kml-probe regs            trampoline calls with r0-r11 set to known
//!                           values: a short-path call (getpid), a full-path
//!                           one (getpgid), a short one that returns through
//!                           signal delivery and a restart (read, SA_RESTART),
//!                           a short one that sleeps (read) while another
//!                           process runs: results and the registers that
//!                           came back changed
//! kml-probe trace-calls     a traced child (PTRACE_SYSCALL) makes trampoline
//!                           calls: the stops its tracer saw, and a getpid the
//!                           tracer turned into getppid at its entry stop
//! ```

use std::ffi::CString;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kml::{psr, Mode, Via};
use rt_utils::sys::errno;

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
        "personality" => personality(),
        "dumpable1-wait" => dumpable1_wait(),
        "attack" => attack_cmd(&args[1..]),
        "attack-child" => attack_child(&args[1..]),
        "race" => race(&args[1..]),
        "exit-mode" => exit_mode(args.get(1).map(String::as_str).unwrap_or("")),
        "endian" => endian(),
        "sigreturn-state" => sigreturn_state(&args[1..]),
        "regs" => regs(),
        "trace-calls" => trace_calls(),
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

/// What a forked child leaves for its parent in a shared page: the signal
/// and faulting address of its first fault, and `note` bits the child's
/// code sets on its way.
#[repr(C)]
struct FaultRecord {
    sig: AtomicU32,
    addr: AtomicUsize,
    note: AtomicU32,
}

/// The current child's record (a MAP_SHARED page), for the signal handler.
static FAULT_RECORD: AtomicPtr<FaultRecord> = AtomicPtr::new(core::ptr::null_mut());

extern "C" fn record_fault(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    let rec = FAULT_RECORD.load(Ordering::SeqCst);
    if !rec.is_null() {
        // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO
        // handler; `rec` points to the shared page mapped before the fork,
        // which stays mapped in this child.
        unsafe {
            (*rec)
                .addr
                .store((*info).si_addr() as usize, Ordering::SeqCst);
            (*rec).sig.store(sig as u32, Ordering::SeqCst);
        }
    }
    // SA_RESETHAND has restored the default action: returning re-runs the
    // faulting instruction, which now ends the child with this signal.
}

/// How a child that ran `f` ended: as [`in_child`], plus the faulting
/// address its SIGSEGV/SIGBUS/SIGILL reported (`si_addr`), if any, and the
/// `note` bits `f` set in its record.
fn in_child_record(f: impl FnOnce(&FaultRecord)) -> (String, Option<usize>, u32) {
    // SAFETY: a fresh anonymous shared page, zero-filled (a valid
    // FaultRecord: all atomics 0), unmapped below.
    let page = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(
        page,
        libc::MAP_FAILED,
        "mmap: {}",
        io::Error::last_os_error()
    );
    let rec = page as *mut FaultRecord;
    FAULT_RECORD.store(rec, Ordering::SeqCst);
    let outcome = in_child(|| {
        for sig in [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL] {
            // SAFETY: installs a handler that only stores into the shared
            // record (async-signal-safe), with an initialised sigaction.
            unsafe {
                let mut sa: libc::sigaction = core::mem::zeroed();
                sa.sa_sigaction = record_fault
                    as extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void)
                    as usize;
                sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESETHAND;
                libc::sigemptyset(&mut sa.sa_mask);
                libc::sigaction(sig, &sa, core::ptr::null_mut());
            }
        }
        // SAFETY: `rec` is the shared page mapped above, valid in the child.
        f(unsafe { &*rec });
    });
    // SAFETY: the child has ended; the page is ours to read and unmap.
    let (sig, addr, note) = unsafe {
        (
            (*rec).sig.load(Ordering::SeqCst),
            (*rec).addr.load(Ordering::SeqCst),
            (*rec).note.load(Ordering::SeqCst),
        )
    };
    FAULT_RECORD.store(core::ptr::null_mut(), Ordering::SeqCst);
    // SAFETY: unmapping the page mapped above; nothing refers to it now.
    unsafe { libc::munmap(page, 4096) };
    (outcome, (sig != 0).then_some(addr), note)
}

fn hex_or_none(a: Option<usize>) -> String {
    a.map(|a| format!("{a:#x}"))
        .unwrap_or_else(|| "none".into())
}

fn wait_status(pid: libc::pid_t) -> String {
    let mut st = 0;
    // SAFETY: `st` receives the status of our own child `pid`.
    if unsafe { libc::waitpid(pid, &mut st, 0) } != pid {
        return format!("waitpid-failed:{}", io::Error::last_os_error());
    }
    status_name(st)
}

/// A wait status as `ok`, `exitN`, a signal name or `status0x..`.
fn status_name(st: i32) -> String {
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

/// `bx lr`, the page's last instruction (ARM encoding).
const BX_LR: u32 = 0xe12f_ff1e;

/// The kernel address the [kml] page jumps to (its literal word, right
/// after the code's final `bx lr`), if any.
fn entry_target() -> Option<usize> {
    let page = kml::entry()?;
    // SAFETY: the [kml] page is mapped readable in this process (one page;
    // the kernel's code is a few instructions at its start, then the literal,
    // then udf filler): every word read here is inside it.
    let word = |i: usize| unsafe { core::ptr::read_volatile((page + 4 * i) as *const u32) };
    let ret = (0..64).find(|&i| word(i) == BX_LR)?;
    Some(word(ret + 1) as usize)
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

/// The end of ARM's vmalloc area, `VMALLOC_END` in
/// arch/arm/include/asm/pgtable.h (a fixed address on every ARM kernel).
const ARM_VMALLOC_END: usize = 0xff80_0000;

/// The last word below the kernel's vmalloc area. `VMALLOC_START` is
/// `high_memory` rounded up past an 8 MiB guard gap, so this word lies in
/// that gap, which the kernel never maps. /proc/meminfo's VmallocTotal is
/// `VMALLOC_END - VMALLOC_START`.
fn vmalloc_hole() -> Option<usize> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: usize = meminfo.lines().find_map(|l| {
        l.strip_prefix("VmallocTotal:")?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse()
            .ok()
    })?;
    Some(ARM_VMALLOC_END.checked_sub(kb * 1024)? - 4)
}

fn fault(kind: &str) {
    let (outcome, addr, note) = match kind {
        "null" => in_child_record(|_| {
            // SAFETY: none: a NULL read is the test; it runs in a forked
            // child whose death by SIGSEGV is the expected outcome.
            std::hint::black_box(unsafe {
                core::ptr::read_volatile(std::hint::black_box(0usize) as *const u32)
            });
        }),
        "udf" => in_child_record(|_| udf()),
        // A write to kernel text. It faults only because the kernel maps
        // its text read-only (STRICT_KERNEL_RWX); that the fault then kills
        // the program with SIGSEGV instead of oopsing the kernel is Kernel
        // Mode Linux's doing (a permission fault taken in SYS mode is
        // handled as a user fault).
        "kernel-write" => match entry_target() {
            Some(t) => in_child_record(move |_| {
                // SAFETY: none: writing read-only kernel text is the test;
                // it runs in a forked child that must die of SIGSEGV.
                unsafe { core::ptr::write_volatile(t as *mut u32, 0) }
            }),
            None => ("no-target".into(), None, 0),
        },
        // A read of a kernel address nothing maps (the vmalloc guard gap):
        // a translation fault whose outcome only Kernel Mode Linux's fault
        // routing decides. In SYS mode the kernel first tries to sync a
        // vmalloc mapping, finds none, and must then send SIGSEGV; without
        // KML's routing the same access from a privileged mode is a kernel
        // oops.
        "vmalloc-hole" => match vmalloc_hole() {
            Some(a) => {
                println!("vmalloc_hole={a:#x}");
                in_child_record(move |_| {
                    // SAFETY: none: reading an unmapped kernel address is
                    // the test; it runs in a forked child that must die of
                    // SIGSEGV.
                    std::hint::black_box(unsafe { core::ptr::read_volatile(a as *const u32) });
                })
            }
            None => ("no-vmalloc-total".into(), None, 0),
        },
        // A trusted program drops to USR mode itself (`cps`) and calls its
        // [kml] page, still mapped: the page branches to the kernel entry,
        // which USR mode must not be able to execute. Note bits: 1 = the
        // trampoline worked before the switch, 2 = USR mode after it, 4 =
        // the call returned (it must not).
        "usr-trampoline" => in_child_record(|rec| {
            // SAFETY: getpid() has no preconditions.
            let pid = unsafe { libc::getpid() };
            if kml::getpid_via(Via::Trampoline) == pid {
                rec.note.fetch_or(1, Ordering::SeqCst);
            }
            to_user_mode();
            if kml::mode() == Some(Mode::User) {
                rec.note.fetch_or(2, Ordering::SeqCst);
            }
            kml::getpid_via(Via::Trampoline);
            rec.note.fetch_or(4, Ordering::SeqCst);
        }),
        "cli-svc" => in_child_record(|_| {
            cli_then(|| {
                kml::getpid_via(Via::Svc);
            })
        }),
        "cli-trampoline" => in_child_record(|_| {
            cli_then(|| {
                kml::getpid_via(Via::Auto);
            })
        }),
        "cli-fault" => in_child_record(|_| {
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
    let key = kind.replace('-', "_");
    println!("fault_{key}={outcome}");
    println!("fault_{key}_addr={}", hex_or_none(addr));
    println!("fault_{key}_note={note}");
}

/// Switch from SYS to USR mode (`cps`; a no-op in USR mode). The kernel
/// keeps the task trusted, but from here on the CPU runs it unprivileged.
fn to_user_mode() {
    #[cfg(target_arch = "arm")]
    // SAFETY: changes only the mode bits of the CPSR; USR mode shares the
    // SYS register bank (same sp and lr), so the Rust code goes on as is.
    unsafe {
        core::arch::asm!("cps #0x10", options(nomem, nostack))
    };
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
    let r = unsafe { libc::setitimer(libc::ITIMER_REAL, &it, core::ptr::null_mut()) };
    assert_eq!(r, 0);
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

/// A new pipe whose one byte `byte` a helper child writes (with `svc`)
/// after `delay`: the read end, and the helper's pid.
fn pipe_written_after(delay: Duration, byte: &'static [u8; 1]) -> (i32, libc::pid_t) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for two descriptors.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let w = fds[1];
    let helper = helper_after(delay, move || {
        let _ = kml::write_via(Via::Svc, w, byte);
    });
    (fds[0], helper)
}

fn restart() {
    println!("trampoline={}", kml::available() as u8);
    // 1. SA_RESTART: a blocking read interrupted by a handled signal resumes.
    set_handler(libc::SIGALRM, libc::SA_RESTART);
    HANDLER_RUNS.store(0, Ordering::SeqCst);
    let (rd, child) = pipe_written_after(Duration::from_millis(400), b"r");
    alarm_in(100);
    let mut buf = [0u8; 4];
    let r = kml::read_via(Via::Auto, rd, &mut buf);
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
    let r = kml::read_via(Via::Auto, rd, &mut buf);
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
            rtflex_uapi::nr::CLOCK_NANOSLEEP_TIME64,
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

/// The flags `endian` sets before each call: N, C, GE[0] and GE[2].
const PSR_SET: u32 = 0xa005_0000;

/// System call `nr(a0, a1)` made with big-endian data accesses (`setend
/// be`) and the flags [`PSR_SET`] set, through the `[kml]` page at `page` or,
/// without one, `svc`: its result and the CPSR right after it, read before
/// `setend le`. `None` off ARM.
///
/// # Safety
///
/// The arguments must be valid for the call, as for [`kml::syscall`].
unsafe fn call_big_endian(
    page: Option<usize>,
    nr: u32,
    a0: usize,
    a1: usize,
) -> Option<(isize, u32)> {
    #[cfg(target_arch = "arm")]
    {
        let (ret, cpsr): (usize, u32);
        match page {
            // SAFETY: the [kml] page takes r0-r5 and r7 like `svc #0`,
            // returns in r0 and clobbers ip and lr (the blx); the caller
            // vouches for the arguments. Between `setend be` and `setend le`
            // the block touches no memory (the kernel reads and writes the
            // call's own buffers, in its own endianness), and nothing of
            // Rust runs; a signal handler would run little-endian (the kernel
            // clears E for it) and sigreturn restores E.
            Some(page) => unsafe {
                core::arch::asm!(
                    "msr APSR_nzcvqg, {flags}",
                    "setend be",
                    "blx {page}",
                    "mrs {cpsr}, cpsr",
                    "setend le",
                    flags = in(reg) PSR_SET,
                    page = in(reg) page,
                    cpsr = out(reg) cpsr,
                    inlateout("r0") a0 => ret,
                    in("r1") a1,
                    in("r7") nr,
                    out("r12") _,
                    out("lr") _,
                    options(nostack),
                )
            },
            // SAFETY: `svc #0` with the EABI convention; as above, no memory
            // access while E is set. The caller vouches for the arguments.
            None => unsafe {
                core::arch::asm!(
                    "msr APSR_nzcvqg, {flags}",
                    "setend be",
                    "svc #0",
                    "mrs {cpsr}, cpsr",
                    "setend le",
                    flags = in(reg) PSR_SET,
                    cpsr = out(reg) cpsr,
                    inlateout("r0") a0 => ret,
                    in("r1") a1,
                    in("r7") nr,
                    options(nostack),
                )
            },
        }
        Some((ret as isize, cpsr))
    }
    #[cfg(not(target_arch = "arm"))]
    {
        let _ = (page, nr, a0, a1);
        None
    }
}

/// `endian`: a trusted program may switch its data accesses to big-endian;
/// the kernel must still run little-endian, and give the program back its
/// own E bit and flags, whether it enters through `svc` or the trampoline.
fn endian() {
    println!("mode={}", mode_name());
    println!("getpid={}", std::process::id());
    let kept = psr::FLAGS | psr::GE_MASK | psr::E_BIT;
    // What each call starts with, of the bits it must give back.
    println!("set_psr={:#x}", PSR_SET | psr::E_BIT);
    for (name, page) in [("svc", None), ("trampoline", kml::entry())] {
        if name == "trampoline" && page.is_none() {
            println!("endian_trampoline=none");
            continue;
        }
        // SAFETY: getpid takes no arguments.
        match unsafe { call_big_endian(page, libc::SYS_getpid as u32, 0, 0) } {
            Some((pid, cpsr)) => {
                println!("endian_{name}_getpid={pid}");
                println!("endian_{name}_getpid_psr={:#x}", cpsr & kept);
            }
            None => {
                println!("endian=unsupported");
                return;
            }
        }
        // A call whose kernel writes user memory: the timespec must be the
        // one a little-endian kernel writes, between two svc readings.
        let ns = |(s, n): (i64, i64)| s as i128 * 1_000_000_000 + n as i128;
        let before = kml::clock_gettime_via(Via::Svc, libc::CLOCK_MONOTONIC).map(ns);
        let mut ts = [0i64; 2]; // struct __kernel_timespec: tv_sec, tv_nsec
                                // SAFETY: `ts` is a writable, aligned __kernel_timespec.
        let r = unsafe {
            call_big_endian(
                page,
                rtflex_uapi::nr::CLOCK_GETTIME64,
                libc::CLOCK_MONOTONIC as usize,
                ts.as_mut_ptr() as usize,
            )
        };
        let after = kml::clock_gettime_via(Via::Svc, libc::CLOCK_MONOTONIC).map(ns);
        if let (Some((ret, cpsr)), Ok(before), Ok(after)) = (r, before, after) {
            let t = ns((ts[0], ts[1]));
            let ordered = ret == 0 && ts[1] < 1_000_000_000 && before <= t && t <= after;
            println!(
                "endian_{name}_clock={}",
                if ordered {
                    "ordered".to_string()
                } else {
                    format!("ret{ret}:{}.{:09}", ts[0], ts[1])
                }
            );
            println!("endian_{name}_clock_psr={:#x}", cpsr & kept);
        } else {
            println!("endian_{name}_clock=svc-clock-failed");
        }
    }
}

/// CPSR bits the `sigreturn-state` handler adds to the saved CPSR.
static SIGRETURN_ADD: AtomicU32 = AtomicU32::new(0);
/// The saved CPSR the handler found.
static SIGRETURN_SAVED: AtomicU32 = AtomicU32::new(0);

extern "C" fn add_to_saved_cpsr(
    _sig: libc::c_int,
    _info: *mut libc::siginfo_t,
    uc: *mut libc::c_void,
) {
    #[cfg(target_arch = "arm")]
    {
        // SAFETY: for an SA_SIGINFO handler the kernel passes a pointer to
        // the live ucontext_t of the signal frame; nothing else aliases it
        // here.
        let uc = unsafe { &mut *uc.cast::<libc::ucontext_t>() };
        SIGRETURN_SAVED.store(uc.uc_mcontext.arm_cpsr, Ordering::SeqCst);
        uc.uc_mcontext.arm_cpsr |= SIGRETURN_ADD.load(Ordering::SeqCst) as libc::c_ulong;
    }
    #[cfg(not(target_arch = "arm"))]
    let _ = uc;
}

/// `sigreturn-state`: execution states sigreturn may restore. `same` (the
/// frame as the kernel wrote it; the control), `it` (IT bits of "IT AL,
/// one instruction", with T clear: ARM state) and `j` (the J bit with T
/// clear: Jazelle state), each in a child whose handler adds them: `ok` if
/// it went on and exited, else how it ended.
fn sigreturn_state(states: &[String]) {
    println!("mode={}", mode_name());
    for state in states {
        let add = match state.as_str() {
            "same" => 0,
            // IT[7:0] = 0b1110_1000: IT[7:2] in CPSR[15:10], IT[1:0] = 0.
            "it" => 0b11_1010 << 10,
            "j" => psr::J_BIT,
            other => {
                eprintln!("kml-probe sigreturn-state: unknown state '{other}' (same, it, j)");
                std::process::exit(2);
            }
        };
        debug_assert_eq!(add & !(psr::IT_MASK | psr::J_BIT), 0);
        SIGRETURN_ADD.store(add, Ordering::SeqCst);
        let outcome = in_child(|| {
            // SAFETY: a zeroed sigaction is valid; the handler has the
            // SA_SIGINFO signature and only edits its own frame; the child
            // is single-threaded. SIGSEGV (a refused frame) keeps its
            // default action, so that it ends the child.
            unsafe {
                libc::signal(libc::SIGSEGV, libc::SIG_DFL);
                let mut sa: libc::sigaction = core::mem::zeroed();
                sa.sa_sigaction = add_to_saved_cpsr
                    as extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void)
                    as usize;
                sa.sa_flags = libc::SA_SIGINFO;
                libc::sigemptyset(&mut sa.sa_mask);
                libc::sigaction(libc::SIGUSR1, &sa, core::ptr::null_mut());
                // Not raise(): the C library is Thumb code, and the frame
                // would hold Thumb state, where IT bits are valid. The
                // crate's svc is ARM code: the signal arrives on its return.
                kml::syscall(
                    Via::Svc,
                    libc::SYS_kill as u32,
                    [libc::getpid() as usize, libc::SIGUSR1 as usize, 0, 0, 0, 0],
                );
            }
            // Reached only if sigreturn accepted the frame.
            let saved = SIGRETURN_SAVED.load(Ordering::SeqCst);
            if saved & psr::T_BIT != 0 {
                // SAFETY: ends the child; exit 3 says the frame held Thumb
                // state, so the test proved nothing.
                unsafe { libc::_exit(3) };
            }
        });
        println!("sigreturn_{state}={outcome}");
    }
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
    let (outcome, fault_addr, _) = in_child_record(move |_| {
        // SAFETY: none: jumping to an arbitrary address is the test (it
        // must fault in USR mode); it runs in a child.
        let f: extern "C" fn() = unsafe { core::mem::transmute(a) };
        f();
    });
    println!("jump={outcome}");
    println!("jump_addr={}", hex_or_none(fault_addr));
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

/// `ok` for a call that returned `r >= 0`, else the errno's name. Takes
/// any of the integer types the calls return (`c_int`, `c_long` and
/// `ssize_t`, whose widths differ between ARM and the build host).
fn outcome(r: impl Into<i64>) -> String {
    if r.into() >= 0 {
        "ok".into()
    } else {
        errno_name(errno())
    }
}

fn errno_name(e: i32) -> String {
    match e {
        libc::EPERM => "EPERM".into(),
        libc::EACCES => "EACCES".into(),
        libc::ESRCH => "ESRCH".into(),
        libc::EINVAL => "EINVAL".into(),
        libc::EFAULT => "EFAULT".into(),
        libc::ENOSYS => "ENOSYS".into(),
        e => format!("errno{e}"),
    }
}

fn parse_hex(s: &str, what: &str) -> usize {
    usize::from_str_radix(s.trim_start_matches("0x"), 16).unwrap_or_else(|_| {
        eprintln!("kml-probe: {what} must be a hexadecimal number, not '{s}'");
        std::process::exit(2)
    })
}

fn parse_num<T: std::str::FromStr>(s: &str, what: &str) -> T {
    s.parse().unwrap_or_else(|_| {
        eprintln!("kml-probe: {what} must be a number, not '{s}'");
        std::process::exit(2)
    })
}

/// The `Kml:` line of /proc/PID/status (readable by everyone).
fn status_kml_of(pid: libc::pid_t) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Kml:").map(|v| v.trim().to_string()))
        })
        .unwrap_or_else(|| "absent".into())
}

fn personality() {
    println!("mode={}", mode_name());
    // SAFETY: 0xffffffff only queries the personality.
    let p = unsafe { libc::personality(0xffff_ffff) };
    println!("personality={:#x}", p as u32);
    let local = 0u32;
    println!(
        "stack={:#x}",
        std::hint::black_box(&local) as *const u32 as usize
    );
    // SAFETY: a fresh private anonymous read-only page, never accessed.
    let m = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            4096,
            libc::PROT_READ,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(m, libc::MAP_FAILED, "mmap: {}", io::Error::last_os_error());
    println!("mmap={:#x}", m as usize);
    // READ_IMPLIES_EXEC makes the kernel add PROT_EXEC to a PROT_READ
    // mapping: its /proc/self/maps line shows whether it did.
    let start = format!("{:08x}-", m as usize);
    let perms = std::fs::read_to_string("/proc/self/maps")
        .ok()
        .and_then(|maps| {
            maps.lines()
                .find(|l| l.starts_with(&start))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .unwrap_or_default();
    println!(
        "read_exec={}",
        (perms.as_bytes().get(2) == Some(&b'x')) as u8
    );
}

/// A word another process may try to write with process_vm_writev.
static POKE: AtomicU32 = AtomicU32::new(0x1234_5678);

fn dumpable1_wait() {
    // SAFETY: PR_SET_DUMPABLE takes an integer.
    let set = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) };
    println!("set_dumpable={}", outcome(set));
    println!("mode={}", mode_name());
    println!("status_kml={}", proc_status_kml());
    // SAFETY: PR_GET_DUMPABLE takes no pointer arguments.
    println!("dumpable={}", unsafe {
        libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0)
    });
    println!("pid={}", std::process::id());
    println!("poke_addr={:#x}", &POKE as *const AtomicU32 as usize);
    println!("ready");
    io::stdout().flush().ok();
    // Bounded: SIGALRM ends the program if nobody closes stdin.
    // SAFETY: alarm() only arms a timer.
    unsafe { libc::alarm(120) };
    let mut buf = [0u8; 64];
    while matches!(io::stdin().read(&mut buf), Ok(n) if n > 0) {}
    println!("poke_after={:#x}", POKE.load(Ordering::SeqCst));
}

fn attack_cmd(args: &[String]) {
    let (Some(pid), Some(addr)) = (args.first(), args.get(1)) else {
        eprintln!("usage: kml-probe attack PID ADDR");
        std::process::exit(2);
    };
    for (k, v) in attack(parse_num(pid, "PID"), parse_hex(addr, "ADDR")) {
        println!("{k}={v}");
    }
}

/// Stop a tracee we just attached to (SEIZE: interrupt it) and detach.
fn detach(pid: libc::pid_t, seized: bool) {
    // SAFETY: ptrace requests on our own tracee; waitpid with __WALL
    // waits for the tracee's stop.
    unsafe {
        if seized {
            libc::ptrace(libc::PTRACE_INTERRUPT, pid, 0, 0);
        }
        let mut st = 0;
        libc::waitpid(pid, &mut st, libc::__WALL);
        libc::ptrace(libc::PTRACE_DETACH, pid, 0, 0);
    }
}

/// Every ptrace-mode access to `pid` an unprivileged process might try;
/// for each, `ok` or the errno's name. Successful attaches are undone.
fn attack(pid: libc::pid_t, addr: usize) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    // SAFETY: PTRACE_ATTACH takes no pointers.
    let r = unsafe { libc::ptrace(libc::PTRACE_ATTACH, pid, 0, 0) };
    out.push(("ptrace_attach", outcome(r)));
    if r == 0 {
        detach(pid, false);
    }
    // SAFETY: PTRACE_SEIZE takes no pointers (options 0).
    let r = unsafe { libc::ptrace(libc::PTRACE_SEIZE, pid, 0, 0) };
    out.push(("ptrace_seize", outcome(r)));
    if r == 0 {
        detach(pid, true);
    }
    let mem = CString::new(format!("/proc/{pid}/mem")).expect("no NUL");
    // SAFETY: a C string path; the fd is closed below.
    let fd = unsafe { libc::open(mem.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    out.push(("proc_mem_open_rw", outcome(fd)));
    if fd >= 0 {
        let v = 0x5a5a_5a5au32;
        // SAFETY: writes 4 bytes from `v` at file offset `addr`.
        let w = unsafe { libc::pwrite64(fd, &v as *const u32 as *const _, 4, addr as i64) };
        out.push(("proc_mem_write", outcome(w as i64)));
        // SAFETY: closing the fd opened above.
        unsafe { libc::close(fd) };
    }
    let mut word = 0u32;
    let local = libc::iovec {
        iov_base: &mut word as *mut u32 as *mut _,
        iov_len: 4,
    };
    let remote = libc::iovec {
        iov_base: addr as *mut _,
        iov_len: 4,
    };
    // SAFETY: one local iovec of 4 writable bytes; the remote address is
    // only used by the kernel, in the target.
    let r = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    out.push(("process_vm_readv", outcome(r as i64)));
    word = 0x5a5a_5a5a;
    // SAFETY: as above, the local iovec points to 4 readable bytes.
    let r = unsafe { libc::process_vm_writev(pid, &local, 1, &remote, 1, 0) };
    out.push(("process_vm_writev", outcome(r as i64)));
    std::hint::black_box(word);
    out.push((
        "proc_environ",
        match std::fs::read(format!("/proc/{pid}/environ")) {
            Ok(_) => "ok".into(),
            Err(e) => errno_name(e.raw_os_error().unwrap_or(0)),
        },
    ));
    // SAFETY: pidfd_open(pid, 0) and pidfd_getfd(pidfd, 0, 0) take no
    // pointers; the fds they return are closed.
    unsafe {
        let pidfd = libc::syscall(libc::SYS_pidfd_open, pid, 0);
        if pidfd < 0 {
            out.push(("pidfd_getfd", format!("pidfd_open:{}", errno_name(errno()))));
        } else {
            let fd = libc::syscall(libc::SYS_pidfd_getfd, pidfd, 0, 0);
            out.push(("pidfd_getfd", outcome(fd)));
            if fd >= 0 {
                libc::close(fd as i32);
            }
            libc::close(pidfd as i32);
        }
    }
    out
}

fn attack_child(args: &[String]) {
    let Some(path) = args.first() else {
        eprintln!("usage: kml-probe attack-child PATH ARGS...");
        std::process::exit(2);
    };
    let mut child = std::process::Command::new(path)
        .args(&args[1..])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            println!("spawn={}", errno_name(e.raw_os_error().unwrap_or(0)));
            std::process::exit(0)
        });
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let mut poke = None;
    for line in lines.by_ref() {
        let line = line.unwrap_or_default();
        if line == "ready" {
            break;
        }
        if let Some(a) = line.strip_prefix("poke_addr=") {
            poke = Some(parse_hex(a, "poke_addr"));
        }
        println!("child_{line}");
    }
    match poke {
        Some(addr) => {
            for (k, v) in attack(child.id() as libc::pid_t, addr) {
                println!("{k}={v}");
            }
        }
        None => println!("child_not_ready=1"),
    }
    drop(child.stdin.take());
    for line in lines {
        println!("child_{}", line.unwrap_or_default());
    }
    let st = child.wait().expect("wait for the child");
    println!("child_exit={st}");
}

fn exit_mode(ms: &str) {
    std::thread::sleep(Duration::from_millis(parse_num(ms, "MS")));
    let bits = kml::cpsr().unwrap_or(0) & 0x1f;
    std::process::exit(bits as i32);
}

/// CPSR mode bits of a stopped tracee, from PTRACE_GETREGS.
#[cfg(target_arch = "arm")]
fn tracee_mode(pid: libc::pid_t) -> Option<u32> {
    // SAFETY: user_regs is plain integers; PTRACE_GETREGS fills all 18.
    let mut regs: libc::user_regs = unsafe { core::mem::zeroed() };
    // SAFETY: `regs` is a writable user_regs (the kernel's pt_regs layout).
    let r = unsafe {
        libc::ptrace(
            libc::PTRACE_GETREGS,
            pid,
            0,
            &mut regs as *mut libc::user_regs,
        )
    };
    (r == 0).then_some(regs.arm_cpsr as u32 & 0x1f)
}

/// No ARM registers off ARM (host builds of the probe).
#[cfg(not(target_arch = "arm"))]
fn tracee_mode(_pid: libc::pid_t) -> Option<u32> {
    None
}

fn random_below(n: u32) -> u32 {
    let mut v = 0u32;
    // SAFETY: fills the 4 bytes of `v`.
    unsafe { libc::getrandom(&mut v as *mut u32 as *mut _, 4, 0) };
    v % n
}

/// The exec race of a same-uid attacker (run this as the attacker, with
/// the right to execute the trusted program so its children may): each
/// round forks a child that execs `PATH exit-mode 2` when told to, and
/// spins on PTRACE_ATTACH (even rounds) or PTRACE_SEIZE (odd rounds) of it
/// until the attach works or the child has ended, sleeping 1-32 us between
/// tries. In rounds 0-1 of every 4 the child stays dumpable and the
/// attacker starts 0-1000 us after telling it to exec (before, during or
/// after the exec); in rounds 2-3 the child makes itself non-dumpable
/// before it says it is ready, and the attacker starts at once, so the only
/// attach that can work is one during or after the exec. At every stop of
/// a tracee it reads /proc/PID/status (`Kml:`) and the CPSR
/// (PTRACE_GETREGS): a tracee seen in SYS mode or with `Kml: 1` is a
/// `kml_tracee`.
fn race(args: &[String]) {
    let (Some(n), Some(path)) = (args.first(), args.get(1)) else {
        eprintln!("usage: kml-probe race N PATH");
        std::process::exit(2);
    };
    let rounds: u32 = parse_num(n, "N");
    let cpath = CString::new(path.as_str()).expect("no NUL");
    let cargs = [
        cpath.clone(),
        CString::new("exit-mode").expect("no NUL"),
        CString::new("2").expect("no NUL"),
    ];
    let mut argv: Vec<*const libc::c_char> = cargs.iter().map(|a| a.as_ptr()).collect();
    argv.push(core::ptr::null());
    // Bounded: a hang ends the program (and the test sees it fail).
    // SAFETY: alarm() only arms a timer.
    unsafe { libc::alarm(300) };
    let (mut before_exec, mut before_exec_not_usr, mut after_exec, mut kml_tracee) = (0, 0, 0, 0);
    let (mut untraced_sys, mut untraced_other) = (0, 0);
    let mut first_violation = String::new();
    io::stdout().flush().ok();
    for round in 0..rounds {
        let seize = round % 2 == 1;
        let nondumpable = round % 4 >= 2;
        let (mut go, mut ready) = ([0; 2], [0; 2]);
        // SAFETY: each array has room for two descriptors.
        unsafe {
            assert_eq!(libc::pipe2(go.as_mut_ptr(), libc::O_CLOEXEC), 0);
            assert_eq!(libc::pipe2(ready.as_mut_ptr(), libc::O_CLOEXEC), 0);
        }
        // SAFETY: the probe is single-threaded; the child only makes raw
        // system calls (prctl, write, read, execv, _exit) with data
        // prepared before the fork.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: see above; `argv` is NULL-terminated and outlives execv.
            unsafe {
                if nondumpable {
                    libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
                }
                libc::write(ready[1], b"r".as_ptr() as *const _, 1);
                let mut b = 0u8;
                libc::read(go[0], &mut b as *mut u8 as *mut _, 1);
                libc::execv(cpath.as_ptr(), argv.as_ptr());
                libc::_exit(127);
            }
        }
        assert!(pid > 0, "fork: {}", io::Error::last_os_error());
        // SAFETY: waiting until the child is ready (its dumpable flag set),
        // telling it to exec, closing our ends of both pipes.
        unsafe {
            libc::close(ready[1]);
            libc::close(go[0]);
            let mut b = 0u8;
            libc::read(ready[0], &mut b as *mut u8 as *mut _, 1);
            libc::close(ready[0]);
            libc::write(go[1], b"g".as_ptr() as *const _, 1);
            libc::close(go[1]);
        }
        if !nondumpable {
            let ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: (random_below(1_000) * 1_000) as _,
            };
            // SAFETY: a valid timespec; no remainder wanted.
            unsafe { libc::nanosleep(&ts, core::ptr::null_mut()) };
        }
        let mut st = 0;
        let mut ended = false;
        let mut attached = false;
        loop {
            // SAFETY: attach requests with integer arguments only.
            let r = unsafe {
                if seize {
                    libc::ptrace(libc::PTRACE_SEIZE, pid, 0, libc::PTRACE_O_TRACEEXEC)
                } else {
                    libc::ptrace(libc::PTRACE_ATTACH, pid, 0, 0)
                }
            };
            if r == 0 {
                attached = true;
                break;
            }
            // Refused, and the child already runs the trusted program: no
            // later attach can succeed (the guard holds for the rest of its
            // life), so this round is decided. Wait for it instead of
            // spinning: on one CPU the spinning FIFO attacker would leave
            // the child only the RT-throttling share of the CPU to finish in
            // (minutes per round on debug kernels).
            if io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
                && status_kml_of(pid) == "1"
            {
                break;
            }
            // SAFETY: `st` receives the status of our own child.
            if unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) } == pid {
                ended = true;
                break;
            }
            let ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: (1_000 + random_below(31_000)) as _,
            };
            // SAFETY: a valid timespec; no remainder wanted.
            unsafe { libc::nanosleep(&ts, core::ptr::null_mut()) };
        }
        let mut violation = None;
        let mut exec_seen = false;
        if attached {
            if seize {
                // SAFETY: an integer request on our tracee.
                unsafe { libc::ptrace(libc::PTRACE_INTERRUPT, pid, 0, 0) };
            }
            let mut options_set = seize;
            loop {
                // SAFETY: waiting for our tracee (and child).
                if unsafe { libc::waitpid(pid, &mut st, libc::__WALL) } != pid {
                    panic!("waitpid: {}", io::Error::last_os_error());
                }
                if !libc::WIFSTOPPED(st) {
                    ended = true;
                    break;
                }
                let kml = status_kml_of(pid);
                let mode = tracee_mode(pid);
                if kml == "1" || mode == Some(0x1f) {
                    violation.get_or_insert(format!(
                        "round {round}: stop {st:#x}, Kml: {kml}, mode {mode:?}"
                    ));
                }
                let sig = libc::WSTOPSIG(st);
                let event = st >> 16;
                // The exec event, or, before we set PTRACE_O_TRACEEXEC, the
                // SIGTRAP an exec sends a PTRACE_ATTACH tracee.
                if event == libc::PTRACE_EVENT_EXEC || (event == 0 && sig == libc::SIGTRAP) {
                    exec_seen = true;
                }
                if !options_set {
                    // SAFETY: integer arguments only.
                    unsafe {
                        libc::ptrace(libc::PTRACE_SETOPTIONS, pid, 0, libc::PTRACE_O_TRACEEXEC)
                    };
                    options_set = true;
                }
                let inject = if event != 0 || sig == libc::SIGSTOP || sig == libc::SIGTRAP {
                    0
                } else {
                    sig
                };
                // SAFETY: resumes our stopped tracee.
                unsafe { libc::ptrace(libc::PTRACE_CONT, pid, 0, inject) };
            }
        }
        if !ended {
            // SAFETY: reaping our own child.
            unsafe { libc::waitpid(pid, &mut st, 0) };
        }
        let code = if libc::WIFEXITED(st) {
            libc::WEXITSTATUS(st)
        } else {
            -1
        };
        if let Some(v) = violation {
            kml_tracee += 1;
            if first_violation.is_empty() {
                first_violation = v;
            }
        }
        if attached {
            if exec_seen {
                before_exec += 1;
                if code != 0x10 {
                    before_exec_not_usr += 1;
                }
            } else {
                after_exec += 1;
            }
        } else if code == 0x1f {
            untraced_sys += 1;
        } else {
            untraced_other += 1;
            if first_violation.is_empty() {
                first_violation = format!("round {round}: untraced child ended {st:#x}");
            }
        }
    }
    println!("rounds={rounds}");
    println!("attached_before_exec={before_exec}");
    println!("attached_before_exec_not_usr={before_exec_not_usr}");
    println!("attached_after_exec={after_exec}");
    println!("kml_tracee={kml_tracee}");
    println!("untraced_sys={untraced_sys}");
    println!("untraced_other={untraced_other}");
    println!("first_problem={first_violation}");
}

// ---------------------------------------------------------------------------
// Registers across a trampoline call, and ptrace's view of trampoline calls.

/// What `checked_call` puts in r6 and r8-r11 before the call: registers a
/// system call neither takes nor returns, which the kernel must give back.
const REG_PATTERN: [(usize, u32); 5] = [
    (6, 0x6606_0606),
    (8, 0x8808_0808),
    (9, 0x9909_0909),
    (10, 0xaa0a_0a0a),
    (11, 0xbb0b_0b0b),
];

#[cfg(target_arch = "arm")]
core::arch::global_asm!(
    ".text",
    ".arm",
    ".p2align 2",
    ".globl rtflex_kml_checked_call",
    ".type rtflex_kml_checked_call, %function",
    // r0 = [kml] page, r1 = [a0, a1, a2, a3, a4, a5, nr],
    // r2 = out: r0-r11 as the call left them.
    "rtflex_kml_checked_call:",
    "push {{r4-r11, lr}}",
    "push {{r2}}",
    "mov ip, r0",
    "ldr r7, [r1, #24]",
    "movw r6, #0x0606",
    "movt r6, #0x6606",
    "movw r8, #0x0808",
    "movt r8, #0x8808",
    "movw r9, #0x0909",
    "movt r9, #0x9909",
    "movw r10, #0x0a0a",
    "movt r10, #0xaa0a",
    "movw r11, #0x0b0b",
    "movt r11, #0xbb0b",
    "ldm r1, {{r0-r5}}",
    "blx ip",
    "push {{r0-r11}}",
    "ldr ip, [sp, #48]",
    "pop {{r0-r11}}",
    "stm ip, {{r0-r11}}",
    "add sp, sp, #4",
    "pop {{r4-r11, pc}}",
    ".size rtflex_kml_checked_call, . - rtflex_kml_checked_call",
);

#[cfg(target_arch = "arm")]
extern "C" {
    fn rtflex_kml_checked_call(page: usize, input: *const u32, out: *mut u32);
}

/// System call `nr(args)` through the `[kml]` page with r6 and r8-r11 set
/// to [`REG_PATTERN`]: its result and the registers r1-r11 that came back
/// different from what the call was given, as `r1,r8` (empty: none).
///
/// # Safety
///
/// The arguments must be valid for the call, as for [`kml::syscall`].
unsafe fn checked_call(page: usize, nr: u32, args: [u32; 6]) -> (i32, String) {
    let mut out = [0u32; 12];
    let mut input = [0u32; 7];
    input[..6].copy_from_slice(&args);
    input[6] = nr;
    #[cfg(target_arch = "arm")]
    // SAFETY: the function saves and restores what the AAPCS requires
    // (r4-r11, lr), reads 7 words of `input`, writes 12 of `out`; the page
    // is the kernel's [kml] page and the caller vouches for the arguments.
    unsafe {
        rtflex_kml_checked_call(page, input.as_ptr(), out.as_mut_ptr())
    };
    #[cfg(not(target_arch = "arm"))]
    {
        let _ = (page, input);
        out[0] = u32::MAX;
    }
    let mut want = [0u32; 12];
    want[1..6].copy_from_slice(&args[1..]);
    want[7] = nr;
    for (r, v) in REG_PATTERN {
        want[r] = v;
    }
    let changed: Vec<String> = (1..12)
        .filter(|&r| out[r] != want[r])
        .map(|r| format!("r{r}"))
        .collect();
    (out[0] as i32, changed.join(","))
}

/// Arguments 1-5 of a call that takes fewer: known values the kernel
/// must give back (zero would hide a register the kernel zeroed).
const UNUSED_ARGS: [u32; 5] = [
    0x1101_0101,
    0x2202_0202,
    0x3303_0303,
    0x4404_0404,
    0x5505_0505,
];

/// `a0` and as many more arguments as given, then [`UNUSED_ARGS`].
fn call_args(used: &[u32]) -> [u32; 6] {
    let mut a = [0u32; 6];
    a[1..].copy_from_slice(&UNUSED_ARGS);
    a[..used.len()].copy_from_slice(used);
    a
}

/// A 4-byte `read(fd)` through [`checked_call`]: prints `PREFIX_ret`,
/// `PREFIX_byte` (the first byte read) and `PREFIX_changed`.
fn checked_read(page: usize, fd: i32, prefix: &str) {
    let mut buf = [0u8; 4];
    // SAFETY: `buf` is writable for 4 bytes for the duration of the call.
    let (r, changed) = unsafe {
        checked_call(
            page,
            libc::SYS_read as u32,
            call_args(&[fd as u32, buf.as_mut_ptr() as u32, 4]),
        )
    };
    println!("{prefix}_ret={r}");
    println!("{prefix}_byte={}", buf[0] as char);
    println!("{prefix}_changed={changed}");
}

fn regs() {
    println!("mode={}", mode_name());
    let Some(page) = kml::entry() else {
        println!("regs=no-trampoline");
        return;
    };
    // 1. A call of the short path's table.
    // SAFETY: getpid takes no arguments.
    let (r, changed) = unsafe { checked_call(page, libc::SYS_getpid as u32, call_args(&[0])) };
    // SAFETY: getpid() has no preconditions.
    println!("short_ok={}", (r == unsafe { libc::getpid() }) as u8);
    println!("short_changed={changed}");

    // 2. A call outside it, which takes vector_swi.
    // SAFETY: getpgid(0) takes no pointer.
    let (r, changed) = unsafe { checked_call(page, libc::SYS_getpgid as u32, call_args(&[0])) };
    // SAFETY: as above.
    println!("full_ok={}", (r == unsafe { libc::getpgid(0) }) as u8);
    println!("full_changed={changed}");

    // 3. A short call that returns through signal delivery and a restart:
    //    a read of an empty pipe, SIGALRM with SA_RESTART after 100 ms, the
    //    byte written after 300 ms.
    set_handler(libc::SIGALRM, libc::SA_RESTART);
    HANDLER_RUNS.store(0, Ordering::SeqCst);
    let (rd, child) = pipe_written_after(Duration::from_millis(300), b"x");
    alarm_in(100);
    checked_read(page, rd, "work");
    println!("work_handler_runs={}", HANDLER_RUNS.load(Ordering::SeqCst));
    println!("work_child={}", wait_status(child));

    // 4. A short call that sleeps and returns with no work pending while
    //    another process returns to user space: the user register bank (sp,
    //    lr) is shared by every task, so the kernel must give the program
    //    its own back. In a child, which a wrong sp or lr would crash. All
    //    on one CPU, so that the helper runs where the reader sleeps.
    println!(
        "block_pinned={}",
        rt_utils::affinity::pin_to(0).map_or_else(|e| format!("failed:{e}"), |()| "0".into())
    );
    let (rd, helper) = pipe_written_after(Duration::from_millis(200), b"y");
    let ended = in_child(move || {
        // With an rseq area registered, the kernel flags every context
        // switch as return work (TIF_NOTIFY_RESUME on ARM), and a call that
        // slept always returns the full way: without one it takes the short
        // return, whose registers this case checks.
        println!("block_rseq={}", unregister_rseq());
        checked_read(page, rd, "block");
        io::stdout().flush().ok();
    });
    println!("block_child={ended}");
    println!("block_helper={}", wait_status(helper));
}

#[cfg(target_arch = "arm")]
extern "C" {
    /// glibc's rseq registration (glibc 2.35 and later, sys/rseq.h): the
    /// area's offset from the thread pointer, and its size (0: none).
    static __rseq_offset: isize;
    static __rseq_size: u32;
}

/// Unregister the calling thread's rseq area, which glibc registered:
/// `unregistered`, `none` (glibc registered none) or `failed:ERRNO`.
fn unregister_rseq() -> String {
    #[cfg(target_arch = "arm")]
    {
        /// RSEQ_SIG of little-endian ARM (the kernel's rseq selftests).
        const RSEQ_SIG: u32 = 0xe7f5_def3;
        const RSEQ_FLAG_UNREGISTER: usize = 1;
        // SAFETY: glibc defines both constants before main().
        let (offset, size) = unsafe { (__rseq_offset, __rseq_size) };
        if size == 0 {
            return "none".into();
        }
        let tp: usize;
        // SAFETY: reads the user thread ID register (TPIDRURO), the
        // thread pointer; no side effects.
        unsafe {
            core::arch::asm!("mrc p15, 0, {0}, c13, c0, 3", out(reg) tp, options(nomem, nostack))
        };
        let area = tp.wrapping_add(offset as usize);
        let mut last = 0;
        // The length must be the one glibc registered: 32 (struct rseq)
        // in glibc 2.36, or the size it reports.
        for len in [32, size as usize] {
            // SAFETY: rseq(UNREGISTER) of this thread's own area, which
            // glibc no longer touches in this single-threaded child.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_rseq,
                    area,
                    len,
                    RSEQ_FLAG_UNREGISTER,
                    RSEQ_SIG as usize,
                )
            };
            if r == 0 {
                return "unregistered".into();
            }
            last = errno();
        }
        format!("failed:{last}")
    }
    #[cfg(not(target_arch = "arm"))]
    {
        "none".into()
    }
}

/// ARM's `PTRACE_SET_SYSCALL` (arch/arm/include/uapi/asm/ptrace.h).
#[cfg(target_arch = "arm")]
const PTRACE_SET_SYSCALL: libc::c_uint = 23;

#[cfg(not(target_arch = "arm"))]
fn trace_calls() {
    println!("trace=unsupported");
}

#[cfg(target_arch = "arm")]
fn trace_calls() {
    println!("mode={}", mode_name());
    let Some(page) = kml::entry() else {
        println!("trace=no-trampoline");
        return;
    };
    // SAFETY: single-threaded here; the child makes raw calls and _exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: the child asks to be traced by this process and stops
        // itself; the tracer resumes it.
        unsafe {
            libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0);
            libc::raise(libc::SIGSTOP);
        }
        // SAFETY: getpid takes no arguments.
        let a = unsafe { kml::syscall(Via::Trampoline, libc::SYS_getpid as u32, [0; 6]) };
        // SAFETY: getpgid(0) takes no pointer.
        let b = unsafe { kml::syscall(Via::Trampoline, libc::SYS_getpgid as u32, [0; 6]) };
        // SAFETY: getppid() and getpgid(0) have no preconditions.
        let ok =
            a == unsafe { libc::getppid() } as isize && b == unsafe { libc::getpgid(0) } as isize;
        // SAFETY: ends the child.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) }
    }
    assert!(pid > 0, "fork: {}", io::Error::last_os_error());
    let in_page = |pc: u32| (pc as usize).wrapping_sub(page) < 4096;
    let mut st = 0;
    // SAFETY: waitpid and ptrace on our own traced child; `regs` is a
    // writable user_regs for PTRACE_GETREGS.
    unsafe {
        assert_eq!(libc::waitpid(pid, &mut st, 0), pid);
        assert!(libc::WIFSTOPPED(st), "{st:#x}");
        libc::ptrace(libc::PTRACE_SETOPTIONS, pid, 0, libc::PTRACE_O_TRACESYSGOOD);
        let mut stops = Vec::new();
        let mut changed = false;
        // A signal the child gets (a fault, say) is passed on, not dropped:
        // dropped, a faulting instruction would run again forever.
        let mut deliver = 0;
        for _ in 0..1000 {
            assert_eq!(libc::ptrace(libc::PTRACE_SYSCALL, pid, 0, deliver), 0);
            deliver = 0;
            assert_eq!(libc::waitpid(pid, &mut st, 0), pid);
            if !libc::WIFSTOPPED(st) {
                break;
            }
            if libc::WSTOPSIG(st) != libc::SIGTRAP | 0x80 {
                deliver = libc::WSTOPSIG(st);
                continue;
            }
            let mut regs: libc::user_regs = core::mem::zeroed();
            libc::ptrace(
                libc::PTRACE_GETREGS,
                pid,
                0,
                &mut regs as *mut libc::user_regs,
            );
            let mut info = [0u8; 88]; // struct ptrace_syscall_info; op first
            libc::ptrace(
                libc::PTRACE_GET_SYSCALL_INFO,
                pid,
                info.len(),
                info.as_mut_ptr(),
            );
            let entry = info[0] == libc::PTRACE_SYSCALL_INFO_ENTRY;
            let nr = regs.arm_r7;
            if in_page(regs.arm_pc as u32) {
                let what = if entry { "entry" } else { "exit" };
                stops.push(format!("{what}:{nr}"));
                if entry && nr == libc::SYS_getpid as _ && !changed {
                    changed =
                        libc::ptrace(PTRACE_SET_SYSCALL, pid, 0, libc::SYS_getppid as usize) == 0;
                }
            }
        }
        if libc::WIFSTOPPED(st) {
            // Still running after 1000 stops: end it.
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, &mut st, 0);
        }
        println!("trace_stops={}", stops.join(","));
        println!("trace_set_syscall={}", changed as u8);
    }
    println!("trace_child={}", status_name(st));
}
