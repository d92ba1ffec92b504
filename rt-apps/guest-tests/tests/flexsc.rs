//! FlexSC exception-less system calls (kernel patch "flexsc"): the kernel
//! side seen through the `flexsc` crate and through raw entries.
//!
//! Every allowed call gives the same result through FlexSC as directly;
//! calls run as threads of the caller (same pid, fds, files); 64-bit
//! arguments arrive whole; a sleeping call does not stall the others;
//! refused calls and malformed entries complete with -ENOSYS / -EINVAL
//! without running; registration refuses bad configurations, a second
//! region and seccomp'ed processes; hostile writes into the pages and
//! every way a process can end with calls in flight leave the kernel
//! clean; a forked child does not get the region.
//!
//! A kernel without FlexSC fails these tests (the image always has
//! `CONFIG_FLEXSC=y`). Built with `--features emulate` they run on the host
//! against the crate's user-space emulator (checks only the kernel can
//! pass are skipped then, see `FLEXSC_EMULATED`).
#![cfg(feature = "guest")]

use flexsc::sys;
use flexsc::{Call, Config, Error, FlexSc, KernelTimespec, Policy, Stat64};
use guest_tests::{
    close, exit_child, exited_with, flexsc_entries as entries, flexsc_register, flexsc_submit_raw,
    flexsc_try_register, flexsc_try_register_protocol, fork, kernel_log, new_kernel_problems, pipe,
    threads_named, wait_child, TmpDir, XorShift, FLEXSC_EMULATED,
};
use rtflex_uapi::flexsc::{self as abi, Entry};
use rtflex_uapi::nr;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::ffi::{CStr, CString};
use std::os::fd::RawFd;
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// Helpers

type Res = Result<usize, Error>;

fn direct(c: Call<'_>) -> Res {
    c.run_direct().map_err(Error::Errno)
}

fn pid() -> usize {
    std::process::id() as usize
}

fn two_workers() -> Config {
    Config {
        nworkers: 2,
        ..Config::default()
    }
}

fn cstr(s: &str) -> CString {
    CString::new(s).unwrap()
}

fn open(path: &str, flags: i32) -> RawFd {
    let p = cstr(path);
    // SAFETY: `p` is a live NUL-terminated string.
    let fd = unsafe {
        libc::open(
            p.as_ptr(),
            flags | libc::O_CLOEXEC | libc::O_LARGEFILE,
            0o600,
        )
    };
    assert!(fd >= 0, "open {path}: {}", std::io::Error::last_os_error());
    fd
}

/// Posts one entry by hand (with any flags and reserved words) and returns
/// its raw `ret`. Writing entries bypasses the library: tests only do that
/// to entries they claimed themselves (FREE -> CLAIMED by compare-and-swap,
/// as the library does) or in a child process that uses nothing else.
fn raw_entry(fx: &FlexSc, nr: u32, args: [u32; 6], flags: u32, resv: [u32; 4]) -> i32 {
    // SAFETY: the callers pass no pointers, or pointers the kernel refuses
    // (EFAULT), or buffers of theirs that outlive this function, which
    // returns only once the entry is DONE.
    let e = unsafe { flexsc_submit_raw(fx, nr, args, flags, resv) };
    let t0 = Instant::now();
    while e.status.load(Ordering::Acquire) != abi::DONE {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "raw entry nr {nr} not DONE after 10 s (status {})",
            e.status.load(Ordering::Relaxed)
        );
        std::thread::sleep(Duration::from_micros(200));
    }
    let r = e.ret.load(Ordering::Relaxed);
    e.status.store(abi::FREE, Ordering::Release);
    r
}

/// FlexSC syscall threads of processes other than this one.
fn foreign_flexsc_threads() -> Vec<(u32, u32, String)> {
    let me = std::process::id();
    threads_named("flexsc-")
        .into_iter()
        .filter(|&(p, _, _)| p != me)
        .collect()
}

/// The FlexSC region of process `pid` as its control words and the entries
/// that are neither FREE nor DONE (read through /proc/PID/mem): what a
/// stuck child was waiting for, for a failure message.
fn region_state(pid: libc::pid_t) -> String {
    use std::os::unix::fs::FileExt;
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    let Some(range) = maps
        .lines()
        .find(|l| l.contains("[flexsc]"))
        .and_then(|l| l.split_whitespace().next())
    else {
        return format!("(no [flexsc] mapping in /proc/{pid}/maps)\n");
    };
    let mut ends = range
        .split('-')
        .map(|a| u64::from_str_radix(a, 16).unwrap_or(0));
    let (start, end) = (ends.next().unwrap_or(0), ends.next().unwrap_or(0));
    let mut region = vec![0u8; end.saturating_sub(start) as usize];
    let read = std::fs::File::open(format!("/proc/{pid}/mem"))
        .and_then(|f| f.read_exact_at(&mut region, start));
    if let Err(e) = read {
        return format!("(/proc/{pid}/mem at {range}: {e})\n");
    }
    let word = |off: usize| u32::from_ne_bytes(region[off..off + 4].try_into().unwrap());
    let words = [
        ("nentries", std::mem::offset_of!(abi::Ctrl, nentries)),
        (
            "idle_workers",
            std::mem::offset_of!(abi::Ctrl, idle_workers),
        ),
        ("completions", std::mem::offset_of!(abi::Ctrl, completions)),
        ("waiters", std::mem::offset_of!(abi::Ctrl, waiters)),
        ("dropped", std::mem::offset_of!(abi::Ctrl, dropped)),
        ("submitted", std::mem::offset_of!(abi::Ctrl, submitted)),
        ("pollers", std::mem::offset_of!(abi::Ctrl, pollers)),
        ("wake_at", std::mem::offset_of!(abi::Ctrl, wake_at)),
        ("features", std::mem::offset_of!(abi::Ctrl, features)),
    ];
    let mut out = format!(
        "  region {range}: {}\n",
        words
            .map(|(name, off)| format!("{name} {}", word(off)))
            .join(", ")
    );
    let size = std::mem::size_of::<Entry>();
    for (i, e) in region[abi::PAGE_SIZE..].chunks_exact(size).enumerate() {
        let status = u32::from_ne_bytes(e[0..4].try_into().unwrap());
        if status != abi::FREE && status != abi::DONE {
            let nr = u32::from_ne_bytes(e[4..8].try_into().unwrap());
            out += &format!("  entry {i}: status {status} nr {nr}\n");
        }
    }
    out
}

/// Checks that the kernel log gained no problem lines since `before`.
fn assert_log_clean_since(before: &str, what: &str) {
    let new = new_kernel_problems(before, &kernel_log());
    assert!(
        new.is_empty(),
        "{what}: new kernel problems:\n{}",
        new.join("\n")
    );
}

// ---------------------------------------------------------------------------

#[test]
fn registration_maps_the_region_and_starts_named_workers() {
    wait_own_workers_gone();
    let fx = flexsc_register(&Config {
        npages: 2,
        nworkers: 3,
        ..Config::default()
    });
    let c = fx.ctrl_snapshot().unwrap();
    assert_eq!(c.magic, abi::MAGIC);
    assert_eq!(c.version, abi::CONFIG_VERSION);
    assert_eq!(c.nentries, 128);
    assert_eq!(c.nworkers, 3);
    assert_eq!(c.entries_offset, 4096);
    assert!(entries(&fx)
        .iter()
        .all(|e| e.status.load(Ordering::Relaxed) == abi::FREE));
    let me = std::process::id();
    if !FLEXSC_EMULATED {
        let ours: Vec<_> = threads_named("flexsc-")
            .into_iter()
            .filter(|&(p, _, _)| p == me)
            .collect();
        assert_eq!(
            ours.len(),
            3,
            "syscall threads in /proc/self/task: {ours:?}"
        );
    }
    assert_eq!(fx.call(Call::getpid()).unwrap(), pid());
    drop(fx);
    wait_own_workers_gone();
}

/// Waits until this process has no syscall threads left: they exit
/// asynchronously after the region is unmapped (by an earlier test, too).
fn wait_own_workers_gone() {
    let me = std::process::id();
    let t0 = Instant::now();
    while threads_named("flexsc-").iter().any(|&(p, _, _)| p == me) {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "syscall threads still there 5 s after munmap"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs every allowed call through FlexSC and directly and compares; the
/// list of allowed calls comes from `rtflex_uapi::flexsc::ALLOWED`: a call the
/// kernel no longer allows must then give -ENOSYS through FlexSC, and a
/// newly allowed call without a check here fails the test.
#[test]
fn every_allowed_call_gives_the_same_result_as_a_direct_call() {
    let fx = flexsc_register(&two_workers());
    let dir = TmpDir::new("diff");
    let seen = RefCell::new(BTreeSet::new());
    let check = |name: &'static str, via: Res, dir_res: Res| {
        seen.borrow_mut().insert(name);
        if abi::allowed_nr(name).is_some() {
            assert_eq!(via, dir_res, "{name}: FlexSC vs direct");
        } else {
            assert_eq!(
                via,
                Err(Error::Errno(libc::ENOSYS)),
                "{name} is not allowed"
            );
        }
    };
    let errno = |e: i32| Err(Error::Errno(e));

    // Identity calls.
    check("getpid", fx.call(Call::getpid()), direct(Call::getpid()));
    check("getppid", fx.call(Call::getppid()), direct(Call::getppid()));
    check("getuid32", fx.call(Call::getuid()), direct(Call::getuid()));
    check(
        "geteuid32",
        fx.call(Call::geteuid()),
        direct(Call::geteuid()),
    );
    check("getgid32", fx.call(Call::getgid()), direct(Call::getgid()));
    check(
        "getegid32",
        fx.call(Call::getegid()),
        direct(Call::getegid()),
    );
    check(
        "getpgid",
        fx.call(Call::getpgid(0)),
        direct(Call::getpgid(0)),
    );
    check(
        "sched_yield",
        fx.call(Call::sched_yield()),
        direct(Call::sched_yield()),
    );
    check("sync", fx.call(Call::sync()), direct(Call::sync()));
    {
        // SAFETY: utsname is plain bytes; zeroed is valid.
        let (mut u1, mut u2): (libc::utsname, libc::utsname) = unsafe { std::mem::zeroed() };
        check(
            "uname",
            fx.call(Call::uname(&mut u1)),
            direct(Call::uname(&mut u2)),
        );
        assert_eq!(u1.release, u2.release);
        assert_eq!(u1.nodename, u2.nodename);
        let (mut c1, mut c2) = ([0u8; 256], [0u8; 256]);
        check(
            "getcwd",
            fx.call(Call::getcwd(&mut c1)),
            direct(Call::getcwd(&mut c2)),
        );
        assert_eq!(c1, c2);
        check(
            "getcwd",
            fx.call(Call::getcwd(&mut c1[..1])),
            errno(libc::ERANGE),
        );
    }

    // Clocks: FlexSC's reading lies between two direct ones.
    {
        let ns = |t: KernelTimespec| t.tv_sec as i128 * 1_000_000_000 + t.tv_nsec as i128;
        let (mut a, mut b, mut c) = Default::default();
        direct(Call::clock_gettime(libc::CLOCK_MONOTONIC, &mut a)).unwrap();
        let via = fx.call(Call::clock_gettime(libc::CLOCK_MONOTONIC, &mut b));
        direct(Call::clock_gettime(libc::CLOCK_MONOTONIC, &mut c)).unwrap();
        check("clock_gettime64", via, Ok(0));
        assert!(ns(a) <= ns(b) && ns(b) <= ns(c), "{a:?} {b:?} {c:?}");
        // The 32-bit clock_gettime (old_timespec32).
        let (mut t32a, mut t32b) = ([0i32; 2], [0i32; 2]);
        let mk = |p: *mut [i32; 2]| {
            // SAFETY: clock_gettime writes 8 bytes to a live [i32; 2] that
            // outlives the call (fx.call / direct wait for completion).
            unsafe { Call::raw(nr::CLOCK_GETTIME, [1, p as usize as u32, 0, 0, 0, 0]) }
        };
        check(
            "clock_gettime",
            fx.call(mk(&mut t32a)),
            direct(mk(&mut t32b)),
        );
        assert!((t32b[0] - t32a[0]).abs() <= 2);
        // Bad pointers: EFAULT both ways.
        // SAFETY: the kernel address is refused by the kernel (EFAULT).
        let bad = unsafe { Call::raw(nr::CLOCK_GETTIME64, [1, 0xC000_0000, 0, 0, 0, 0]) };
        // SAFETY: as above.
        let bad2 = unsafe { Call::raw(nr::CLOCK_GETTIME64, [1, 0xC000_0000, 0, 0, 0, 0]) };
        check("clock_gettime64", fx.call(bad), direct(bad2));
        let req = KernelTimespec {
            tv_sec: 0,
            tv_nsec: 1_000_000,
        };
        check(
            "clock_nanosleep_time64",
            fx.call(Call::clock_nanosleep(libc::CLOCK_MONOTONIC, 0, &req)),
            direct(Call::clock_nanosleep(libc::CLOCK_MONOTONIC, 0, &req)),
        );
        let ts32 = [0i32, 1_000_000];
        let mk = |nr: u32, a: [u32; 6]| {
            // SAFETY: the calls only read the live `ts32` (and NULL rem).
            unsafe { Call::raw(nr, a) }
        };
        let p = ts32.as_ptr() as usize as u32;
        check(
            "nanosleep",
            fx.call(mk(nr::NANOSLEEP, [p, 0, 0, 0, 0, 0])),
            direct(mk(nr::NANOSLEEP, [p, 0, 0, 0, 0, 0])),
        );
        check(
            "clock_nanosleep",
            fx.call(mk(nr::CLOCK_NANOSLEEP, [1, 0, p, 0, 0, 0])),
            direct(mk(nr::CLOCK_NANOSLEEP, [1, 0, p, 0, 0, 0])),
        );
    }

    // Files on tmpfs.
    let fpath = cstr(&dir.path("f"));
    let flags = libc::O_RDWR | libc::O_CREAT | libc::O_CLOEXEC;
    let fd = fx
        .call(Call::openat(libc::AT_FDCWD, &fpath, flags, 0o600))
        .expect("openat through FlexSC") as RawFd;
    seen.borrow_mut().insert("openat");
    let fd2 = direct(Call::openat(libc::AT_FDCWD, &fpath, libc::O_RDWR, 0)).unwrap() as RawFd;
    check(
        "openat",
        fx.call(Call::openat(
            libc::AT_FDCWD,
            &cstr("/nonexistent/x"),
            libc::O_RDONLY,
            0,
        )),
        direct(Call::openat(
            libc::AT_FDCWD,
            &cstr("/nonexistent/x"),
            libc::O_RDONLY,
            0,
        )),
    );
    check("write", fx.call(Call::write(fd, b"0123456789")), Ok(10));
    check(
        "write",
        fx.call(Call::write(-1, b"x")),
        direct(Call::write(-1, b"x")),
    );
    check(
        "write",
        fx.call(Call::write(9999, b"x")),
        errno(libc::EBADF),
    );
    {
        let (mut a, mut b) = ([0u8; 4], [0u8; 4]);
        check(
            "pread64",
            fx.call(Call::pread64(fd, &mut a, 2)),
            direct(Call::pread64(fd2, &mut b, 2)),
        );
        assert_eq!(&a, b"2345");
        assert_eq!(a, b);
        check(
            "read",
            fx.call(Call::read(fd2, &mut a)),
            direct(Call::read(fd2, &mut b)),
        );
        assert_eq!(&a, b"0123");
        assert_eq!(&b, b"4567");
        check(
            "read",
            fx.call(Call::read(-1, &mut a)),
            direct(Call::read(-1, &mut b)),
        );
    }
    check(
        "pwrite64",
        fx.call(Call::pwrite64(fd, b"AB", 8)),
        direct(Call::pwrite64(fd2, b"AB", 8)),
    );
    check("lseek", fx.call(Call::lseek(fd, 3, libc::SEEK_SET)), Ok(3));
    check(
        "lseek",
        fx.call(Call::lseek(fd, 0, libc::SEEK_CUR)),
        direct(Call::lseek(fd, 0, libc::SEEK_CUR)),
    );
    check(
        "lseek",
        fx.call(Call::lseek(fd, -100, libc::SEEK_SET)),
        direct(Call::lseek(fd, -100, libc::SEEK_SET)),
    );
    {
        let (mut a, mut b) = (0i64, 0i64);
        check(
            "_llseek",
            fx.call(Call::llseek(fd, 5, &mut a, libc::SEEK_SET)),
            direct(Call::llseek(fd2, 5, &mut b, libc::SEEK_SET)),
        );
        assert_eq!((a, b), (5, 5));
    }
    {
        let (mut a, mut b) = (Stat64::default(), Stat64::default());
        check(
            "fstat64",
            fx.call(Call::fstat64(fd, &mut a)),
            direct(Call::fstat64(fd, &mut b)),
        );
        assert_eq!(a, b);
        assert_eq!(a.st_size, 10);
        check(
            "fstat64",
            fx.call(Call::fstat64(-1, &mut a)),
            direct(Call::fstat64(-1, &mut b)),
        );
        // SAFETY: a NULL buffer: the kernel refuses it (EFAULT).
        let null = |fd| unsafe { Call::raw(nr::FSTAT64, [fd as u32, 0, 0, 0, 0, 0]) };
        check("fstat64", fx.call(null(fd)), direct(null(fd)));
        check("fstat64", fx.call(null(fd)), errno(libc::EFAULT));
        check(
            "fstatat64",
            fx.call(Call::fstatat64(libc::AT_FDCWD, &fpath, &mut a, 0)),
            direct(Call::fstatat64(libc::AT_FDCWD, &fpath, &mut b, 0)),
        );
        assert_eq!(a, b);
        // statx(AT_FDCWD, path, 0, STATX_BASIC_STATS, buf): 256-byte buffer.
        let (mut x1, mut x2) = ([0u8; 256], [0u8; 256]);
        let mk = |buf: &mut [u8; 256]| {
            let p = buf.as_mut_ptr() as usize as u32;
            // SAFETY: statx writes at most 256 bytes into the live buffer,
            // and reads the live path.
            unsafe {
                Call::raw(
                    nr::STATX,
                    [
                        libc::AT_FDCWD as u32,
                        fpath.as_ptr() as usize as u32,
                        0,
                        0x7ff,
                        p,
                        0,
                    ],
                )
            }
        };
        check("statx", fx.call(mk(&mut x1)), direct(mk(&mut x2)));
        // Sizes (offset 40, u64) agree; times may not be read identically.
        assert_eq!(x1[40..48], x2[40..48]);
    }
    check("fsync", fx.call(Call::fsync(fd)), direct(Call::fsync(fd)));
    check("fsync", fx.call(Call::fsync(-1)), direct(Call::fsync(-1)));
    check(
        "fdatasync",
        fx.call(Call::fdatasync(fd)),
        direct(Call::fdatasync(fd)),
    );
    check(
        "ftruncate64",
        fx.call(Call::ftruncate64(fd, 4096)),
        direct(Call::ftruncate64(fd, 4096)),
    );
    check(
        "fallocate",
        fx.call(Call::fallocate(fd, 0, 0, 8192)),
        direct(Call::fallocate(fd2, 0, 0, 8192)),
    );
    check(
        "arm_fadvise64_64",
        fx.call(Call::fadvise(fd, 0, 4096, libc::POSIX_FADV_WILLNEED)),
        direct(Call::fadvise(fd, 0, 4096, libc::POSIX_FADV_WILLNEED)),
    );
    check(
        "arm_fadvise64_64",
        fx.call(Call::fadvise(fd, 0, 4096, 99)),
        direct(Call::fadvise(fd, 0, 4096, 99)),
    );
    check(
        "arm_sync_file_range",
        fx.call(Call::sync_file_range(fd, 0, 4096, 2)),
        direct(Call::sync_file_range(fd, 0, 4096, 2)),
    );
    check(
        "arm_sync_file_range",
        fx.call(Call::sync_file_range(fd, 0, 4096, 0x100)),
        direct(Call::sync_file_range(fd, 0, 4096, 0x100)),
    );
    {
        let iov = [std::io::IoSlice::new(b"ab"), std::io::IoSlice::new(b"cd")];
        check(
            "writev",
            fx.call(Call::writev(fd, &iov)),
            direct(Call::writev(fd2, &iov)),
        );
        let (mut a1, mut a2, mut b1, mut b2) = ([0u8; 2], [0u8; 3], [0u8; 2], [0u8; 3]);
        fx.call(Call::lseek(fd, 0, 0)).unwrap();
        direct(Call::lseek(fd2, 0, 0)).unwrap();
        let mut i1 = [
            std::io::IoSliceMut::new(&mut a1),
            std::io::IoSliceMut::new(&mut a2),
        ];
        let mut i2 = [
            std::io::IoSliceMut::new(&mut b1),
            std::io::IoSliceMut::new(&mut b2),
        ];
        check(
            "readv",
            fx.call(Call::readv(fd, &mut i1)),
            direct(Call::readv(fd2, &mut i2)),
        );
        assert_eq!((a1, a2), (b1, b2));
    }
    {
        let fl = |fd: RawFd| {
            // SAFETY: F_GETFL takes no pointer.
            unsafe { Call::raw(nr::FCNTL64, [fd as u32, libc::F_GETFL as u32, 0, 0, 0, 0]) }
        };
        check("fcntl64", fx.call(fl(fd)), direct(fl(fd)));
        check("fcntl64", fx.call(fl(-1)), direct(fl(-1)));
    }
    {
        let d = fx.call(Call::dup(fd)).unwrap() as RawFd;
        seen.borrow_mut().insert("dup");
        check("close", fx.call(Call::close(d)), Ok(0));
        check("close", fx.call(Call::close(d)), direct(Call::close(d)));
        check("dup", fx.call(Call::dup(-1)), direct(Call::dup(-1)));
        check(
            "dup3",
            fx.call(Call::dup3(fd, 900, libc::O_CLOEXEC)),
            Ok(900),
        );
        check(
            "dup3",
            fx.call(Call::dup3(fd, fd, 0)),
            direct(Call::dup3(fd, fd, 0)),
        );
        close(900);
    }
    // Directories and names.
    {
        let sub = cstr(&dir.path("sub"));
        check(
            "mkdirat",
            fx.call(Call::mkdirat(libc::AT_FDCWD, &sub, 0o700)),
            Ok(0),
        );
        check(
            "mkdirat",
            fx.call(Call::mkdirat(libc::AT_FDCWD, &sub, 0o700)),
            direct(Call::mkdirat(libc::AT_FDCWD, &sub, 0o700)),
        );
        let (a, b) = (cstr(&dir.path("sub/a")), cstr(&dir.path("sub/b")));
        close(open(a.to_str().unwrap(), libc::O_CREAT | libc::O_WRONLY));
        check(
            "renameat2",
            fx.call(Call::renameat2(libc::AT_FDCWD, &a, libc::AT_FDCWD, &b, 0)),
            Ok(0),
        );
        check(
            "renameat2",
            fx.call(Call::renameat2(libc::AT_FDCWD, &a, libc::AT_FDCWD, &b, 0)),
            direct(Call::renameat2(libc::AT_FDCWD, &a, libc::AT_FDCWD, &b, 0)),
        );
        check(
            "faccessat",
            fx.call(Call::faccessat(libc::AT_FDCWD, &b, libc::R_OK)),
            direct(Call::faccessat(libc::AT_FDCWD, &b, libc::R_OK)),
        );
        check(
            "faccessat",
            fx.call(Call::faccessat(libc::AT_FDCWD, &a, libc::R_OK)),
            direct(Call::faccessat(libc::AT_FDCWD, &a, libc::R_OK)),
        );
        let d1 = open(sub.to_str().unwrap(), libc::O_RDONLY | libc::O_DIRECTORY);
        let d2 = open(sub.to_str().unwrap(), libc::O_RDONLY | libc::O_DIRECTORY);
        let (mut g1, mut g2) = ([0u8; 512], [0u8; 512]);
        check(
            "getdents64",
            fx.call(Call::getdents64(d1, &mut g1)),
            direct(Call::getdents64(d2, &mut g2)),
        );
        assert_eq!(g1, g2);
        check(
            "getdents64",
            fx.call(Call::getdents64(fd, &mut g1)),
            direct(Call::getdents64(fd, &mut g2)),
        );
        close(d1);
        close(d2);
        let link = cstr(&dir.path("link"));
        // SAFETY: both strings are live and NUL-terminated.
        assert_eq!(unsafe { libc::symlink(fpath.as_ptr(), link.as_ptr()) }, 0);
        let (mut l1, mut l2) = ([0u8; 128], [0u8; 128]);
        check(
            "readlinkat",
            fx.call(Call::readlinkat(libc::AT_FDCWD, &link, &mut l1)),
            direct(Call::readlinkat(libc::AT_FDCWD, &link, &mut l2)),
        );
        assert_eq!(l1, l2);
        check(
            "unlinkat",
            fx.call(Call::unlinkat(libc::AT_FDCWD, &b, 0)),
            Ok(0),
        );
        check(
            "unlinkat",
            fx.call(Call::unlinkat(libc::AT_FDCWD, &b, 0)),
            direct(Call::unlinkat(libc::AT_FDCWD, &b, 0)),
        );
        check(
            "unlinkat",
            fx.call(Call::unlinkat(libc::AT_FDCWD, &sub, libc::AT_REMOVEDIR)),
            Ok(0),
        );
        // SAFETY: a NULL path: the kernel refuses it (EFAULT).
        let nullpath = || unsafe { Call::raw(nr::OPENAT, [libc::AT_FDCWD as u32, 0, 0, 0, 0, 0]) };
        check("openat", fx.call(nullpath()), direct(nullpath()));
        check("openat", fx.call(nullpath()), errno(libc::EFAULT));
    }
    // Bad buffers: EFAULT both ways, never a crash.
    for bad in [0x10u32, 0xC000_0000, 0xFFFF_0000] {
        let mk = |nr: u32| {
            // SAFETY: unmapped or kernel addresses: the kernel refuses them
            // (EFAULT) before touching any memory of ours.
            unsafe { Call::raw(nr, [fd as u32, bad, 16, 0, 0, 0]) }
        };
        check("read", fx.call(mk(nr::READ)), direct(mk(nr::READ)));
        check("write", fx.call(mk(nr::WRITE)), direct(mk(nr::WRITE)));
        if bad >= 0xC000_0000 && !FLEXSC_EMULATED {
            check("read", fx.call(mk(nr::READ)), errno(libc::EFAULT));
        }
    }

    // Pipes, eventfd, poll, ioctl.
    {
        let mut fds = [0i32; 2];
        check(
            "pipe2",
            fx.call(Call::pipe2(&mut fds, libc::O_CLOEXEC)),
            Ok(0),
        );
        let (r, w) = (fds[0], fds[1]);
        check(
            "pipe2",
            fx.call(Call::pipe2(&mut fds, -1)),
            direct(Call::pipe2(&mut fds, -1)),
        );
        check("write", fx.call(Call::write(w, b"through")), Ok(7));
        let mut n1 = 0i32;
        let mut n2 = 0i32;
        #[allow(clippy::unnecessary_cast)] // FIONREAD's type varies by target
        let fionread = |p: *mut i32| {
            // SAFETY: FIONREAD writes one int into the live `n1`/`n2`.
            unsafe {
                Call::raw(
                    nr::IOCTL,
                    [r as u32, libc::FIONREAD as u32, p as usize as u32, 0, 0, 0],
                )
            }
        };
        check(
            "ioctl",
            fx.call(fionread(&mut n1)),
            direct(fionread(&mut n2)),
        );
        if abi::is_allowed(nr::IOCTL) {
            assert_eq!((n1, n2), (7, 7));
        } else {
            // Refused (-ENOSYS): it did not run, so it wrote nothing.
            assert_eq!((n1, n2), (0, 7), "a refused ioctl ran");
        }
        let mut p1 = [libc::pollfd {
            fd: r,
            events: libc::POLLIN,
            revents: 0,
        }];
        let mut p2 = p1;
        check(
            "poll",
            fx.call(Call::poll(&mut p1, 0)),
            direct(Call::poll(&mut p2, 0)),
        );
        assert_eq!(p1[0].revents, p2[0].revents);
        let mut got = [0u8; 7];
        check("read", fx.call(Call::read(r, &mut got)), Ok(7));
        assert_eq!(&got, b"through");
        let ev = fx.call(Call::eventfd2(3, libc::EFD_CLOEXEC)).unwrap() as RawFd;
        seen.borrow_mut().insert("eventfd2");
        let mut v = [0u8; 8];
        check("read", fx.call(Call::read(ev, &mut v)), Ok(8));
        assert_eq!(u64::from_ne_bytes(v), 3);
        check(
            "eventfd2",
            fx.call(Call::eventfd2(0, -1)),
            direct(Call::eventfd2(0, -1)),
        );
        for f in [r, w, ev] {
            check("close", fx.call(Call::close(f)), Ok(0));
        }
    }
    // Sockets (created directly: socket() is not allowed).
    {
        let mut sv = [0i32; 2];
        // SAFETY: `sv` is a live array of two ints.
        let r = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                0,
                sv.as_mut_ptr(),
            )
        };
        assert_eq!(r, 0);
        check("sendto", fx.call(Call::send(sv[0], b"sock", 0)), Ok(4));
        let mut b = [0u8; 4];
        check("recvfrom", fx.call(Call::recv(sv[1], &mut b, 0)), Ok(4));
        assert_eq!(&b, b"sock");
        check(
            "recvfrom",
            fx.call(Call::recv(fd, &mut b, 0)),
            direct(Call::recv(fd, &mut b, 0)),
        );
        check(
            "recvfrom",
            fx.call(Call::recv(sv[1], &mut b, libc::MSG_DONTWAIT)),
            direct(Call::recv(sv[1], &mut b, libc::MSG_DONTWAIT)),
        );
        let mut data = *b"msg!";
        let mut iov = libc::iovec {
            iov_base: data.as_mut_ptr().cast(),
            iov_len: 4,
        };
        // SAFETY: msghdr is plain data; zeroed = no name, no control.
        let mut mh: libc::msghdr = unsafe { std::mem::zeroed() };
        mh.msg_iov = &mut iov;
        mh.msg_iovlen = 1;
        let mhp = &mut mh as *mut libc::msghdr as usize as u32;
        let msg = |nr: u32, s: RawFd| {
            // SAFETY: sendmsg/recvmsg read the live msghdr and iovec and
            // read/write the live 4-byte `data`.
            unsafe { Call::raw(nr, [s as u32, mhp, 0, 0, 0, 0]) }
        };
        check("sendmsg", fx.call(msg(nr::SENDMSG, sv[0])), Ok(4));
        data = [0; 4];
        check("recvmsg", fx.call(msg(nr::RECVMSG, sv[1])), Ok(4));
        assert_eq!(&data, b"msg!");
        check(
            "sendmsg",
            fx.call(msg(nr::SENDMSG, fd)),
            direct(msg(nr::SENDMSG, fd)),
        );
        check(
            "recvmsg",
            fx.call(msg(nr::RECVMSG, fd)),
            direct(msg(nr::RECVMSG, fd)),
        );
        check(
            "accept4",
            fx.call(Call::accept4(sv[0], 0)),
            direct(Call::accept4(sv[0], 0)),
        );
        check(
            "accept4",
            fx.call(Call::accept4(fd, 0)),
            direct(Call::accept4(fd, 0)),
        );
        // connect() to a socket path that does not exist.
        // SAFETY: a fresh socket; no memory involved.
        let s = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        assert!(s >= 0);
        // SAFETY: sockaddr_un is plain data.
        let mut sa: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        sa.sun_family = libc::AF_UNIX as libc::sa_family_t;
        for (d, c) in sa.sun_path.iter_mut().zip(dir.path("nosock").bytes()) {
            *d = c as libc::c_char;
        }
        let sap = &sa as *const libc::sockaddr_un as usize as u32;
        let len = std::mem::size_of::<libc::sockaddr_un>() as u32;
        let conn = || {
            // SAFETY: connect only reads the live sockaddr_un.
            unsafe { Call::raw(nr::CONNECT, [s as u32, sap, len, 0, 0, 0]) }
        };
        check("connect", fx.call(conn()), direct(conn()));
        check("connect", fx.call(conn()), errno(libc::ENOENT));
        // epoll_ctl on an epoll fd created directly.
        // SAFETY: no memory involved.
        let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        assert!(ep >= 0);
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: 7,
        };
        let evp = &mut ev as *mut libc::epoll_event as usize as u32;
        let ctl = |op: i32| {
            // SAFETY: epoll_ctl only reads the live epoll_event.
            unsafe {
                Call::raw(
                    nr::EPOLL_CTL,
                    [ep as u32, op as u32, sv[1] as u32, evp, 0, 0],
                )
            }
        };
        check("epoll_ctl", fx.call(ctl(libc::EPOLL_CTL_ADD)), Ok(0));
        check(
            "epoll_ctl",
            fx.call(ctl(libc::EPOLL_CTL_ADD)),
            direct(ctl(libc::EPOLL_CTL_ADD)),
        );
        check("epoll_ctl", fx.call(ctl(libc::EPOLL_CTL_DEL)), Ok(0));
        for f in [s, ep, sv[0], sv[1]] {
            close(f);
        }
    }
    close(fd);
    close(fd2);
    drop(fx);

    let missing: Vec<_> = abi::ALLOWED
        .iter()
        .map(|&(n, _)| n)
        .filter(|n| !seen.borrow().contains(n))
        .collect();
    assert!(
        missing.is_empty(),
        "allowed calls without a differential check: {missing:?}"
    );
}

#[test]
fn calls_run_as_the_calling_process() {
    wait_own_workers_gone();
    let fx = flexsc_register(&two_workers());
    assert_eq!(fx.call(Call::getpid()).unwrap(), pid());
    let exe = cstr("/proc/self/exe");
    let (mut a, mut b) = ([0u8; 256], [0u8; 256]);
    let na = fx
        .call(Call::readlinkat(libc::AT_FDCWD, &exe, &mut a))
        .unwrap();
    let nb = direct(Call::readlinkat(libc::AT_FDCWD, &exe, &mut b)).unwrap();
    assert_eq!(a[..na], b[..nb]);
    assert_eq!(
        std::str::from_utf8(&a[..na]).unwrap(),
        std::env::current_exe().unwrap().to_str().unwrap()
    );
    // One file table: fds opened either way work the other way.
    let dir = TmpDir::new("ident");
    let p = dir.path("shared");
    let fd = open(&p, libc::O_RDWR | libc::O_CREAT);
    assert_eq!(fx.call(Call::write(fd, b"direct fd")).unwrap(), 9);
    let path = cstr(&p);
    let fd2 = fx
        .call(Call::openat(
            libc::AT_FDCWD,
            &path,
            libc::O_RDONLY | libc::O_CLOEXEC,
            0,
        ))
        .unwrap() as RawFd;
    assert!(std::fs::read_link(format!("/proc/self/fd/{fd2}")).is_ok());
    let mut buf = [0u8; 9];
    assert_eq!(direct(Call::read(fd2, &mut buf)).unwrap(), 9);
    assert_eq!(&buf, b"direct fd");
    close(fd2);
    assert_eq!(
        fx.call(Call::read(fd2, &mut buf)),
        Err(Error::Errno(libc::EBADF))
    );
    close(fd);
    // The syscall threads are threads of this process.
    if !FLEXSC_EMULATED {
        let me = std::process::id();
        let n = threads_named("flexsc-")
            .iter()
            .filter(|&&(p, _, _)| p == me)
            .count();
        assert_eq!(n, 2, "flexsc threads in /proc/{me}/task");
    }
}

#[test]
fn sixty_four_bit_arguments_arrive_whole() {
    let fx = flexsc_register(&two_workers());
    let dir = TmpDir::new("64");
    let fd = open(&dir.path("sparse"), libc::O_RDWR | libc::O_CREAT);
    let fd2 = open(&dir.path("sparse2"), libc::O_RDWR | libc::O_CREAT);
    let far = (5u64 << 32) + 17;
    assert_eq!(fx.call(Call::pwrite64(fd, b"beyond 4G", far)).unwrap(), 9);
    let mut b = [0u8; 9];
    assert_eq!(direct(Call::pread64(fd, &mut b, far)).unwrap(), 9);
    assert_eq!(&b, b"beyond 4G");
    // The low word alone must hit nothing there.
    let mut low = [0xAAu8; 9];
    assert_eq!(
        direct(Call::pread64(fd, &mut low, far as u32 as u64)).unwrap(),
        9
    );
    assert_eq!(low, [0; 9]);
    let far2 = (6u64 << 32) + 4095;
    assert_eq!(direct(Call::pwrite64(fd, b"direct", far2)).unwrap(), 6);
    let mut c = [0u8; 6];
    assert_eq!(fx.call(Call::pread64(fd, &mut c, far2)).unwrap(), 6);
    assert_eq!(&c, b"direct");
    let size = (7u64 << 32) + 3;
    assert_eq!(fx.call(Call::ftruncate64(fd, size)).unwrap(), 0);
    let mut st = Stat64::default();
    direct(Call::fstat64(fd, &mut st)).unwrap();
    assert_eq!(st.st_size as u64, size);
    let mut pos = 0i64;
    assert_eq!(
        fx.call(Call::llseek(fd, (9 << 32) + 1, &mut pos, libc::SEEK_SET))
            .unwrap(),
        0
    );
    assert_eq!(pos, (9 << 32) + 1);
    // fallocate beyond 4 GiB: whatever tmpfs says, the same both ways.
    let via = fx.call(Call::fallocate(fd, 0, 8 << 32, 4096));
    let dir_res = direct(Call::fallocate(fd2, 0, 8 << 32, 4096));
    assert_eq!(via, dir_res, "fallocate beyond 4 GiB");
    if via.is_ok() {
        let (mut s1, mut s2) = (Stat64::default(), Stat64::default());
        direct(Call::fstat64(fd, &mut s1)).unwrap();
        direct(Call::fstat64(fd2, &mut s2)).unwrap();
        assert_eq!(s1.st_size, s2.st_size);
        assert_eq!(s2.st_size as u64, (8 << 32) + 4096);
    }
    assert_eq!(
        fx.call(Call::fadvise(
            fd,
            3 << 32,
            1 << 33,
            libc::POSIX_FADV_DONTNEED
        )),
        direct(Call::fadvise(
            fd,
            3 << 32,
            1 << 33,
            libc::POSIX_FADV_DONTNEED
        ))
    );
    assert_eq!(
        fx.call(Call::sync_file_range(fd, 5 << 32, 4096, 2)),
        direct(Call::sync_file_range(fd, 5 << 32, 4096, 2))
    );
    // Negative 64-bit lengths are refused the same way.
    assert_eq!(
        fx.call(Call::fallocate(fd, 0, 0, u64::MAX)),
        direct(Call::fallocate(fd2, 0, 0, u64::MAX))
    );
    close(fd);
    close(fd2);
}

#[test]
fn a_sleeping_call_does_not_stall_other_entries() {
    let fx = flexsc_register(&two_workers());
    let (r, w) = pipe();
    let dir = TmpDir::new("block");
    let f = open(&dir.path("f"), libc::O_RDWR | libc::O_CREAT);
    let mut buf = [0u8; 16];
    fx.scope(|s| {
        let rd = s.read(r, &mut buf).unwrap();
        let wr = s.write(f, b"not stalled").unwrap();
        assert!(
            fx.wait_timeout(&wr, Duration::from_secs(10)).unwrap(),
            "a write stalled behind a read on an empty pipe"
        );
        assert_eq!(s.wait(wr).unwrap(), 11);
        // Give the read time to go to sleep in the kernel.
        std::thread::sleep(Duration::from_millis(50));
        let st = fx.status(rd.ticket()).unwrap();
        assert!(
            st == abi::BLOCKED || st == abi::BUSY,
            "the sleeping read's entry has status {st}, want BLOCKED (4) or BUSY (3)"
        );
        if !FLEXSC_EMULATED {
            assert_eq!(st, abi::BLOCKED, "a read sleeping on a pipe reads BLOCKED");
        }
        // More calls still go through while it sleeps.
        for _ in 0..20 {
            assert_eq!(fx.call(Call::getpid()).unwrap(), pid());
        }
        assert!(!fx.is_done(rd.ticket()));
        assert_eq!(direct(Call::write(w, b"wake up")).unwrap(), 7);
        let (n, got) = rd.wait();
        assert_eq!(n.unwrap(), 7);
        assert_eq!(&got[..7], b"wake up");
    });
    for fd in [r, w, f] {
        close(fd);
    }
}

#[test]
fn refused_calls_complete_with_enosys_without_running() {
    let fx = flexsc_register(&two_workers());
    let me = pid() as u32;
    let true_path = cstr("/bin/true");
    let argv = [true_path.as_ptr() as usize as u32, 0u32];
    let name = cstr("evil");
    // SAFETY: getuid/getppid take no arguments.
    let (uid, comm) = (
        unsafe { libc::getuid() },
        std::fs::read_to_string("/proc/self/comm").unwrap(),
    );
    for &(name_, n) in abi::REFUSED {
        // Arguments that would be visible if the call ran.
        let args = match n {
            nr::EXIT | nr::EXIT_GROUP => [0; 6],
            nr::KILL => [me, libc::SIGKILL as u32, 0, 0, 0, 0],
            nr::TGKILL => [me, me, libc::SIGKILL as u32, 0, 0, 0],
            nr::EXECVE => [argv[0], argv.as_ptr() as usize as u32, 0, 0, 0, 0],
            nr::SETUID32 => [65534, 0, 0, 0, 0, 0],
            nr::PRCTL => [
                libc::PR_SET_NAME as u32,
                name.as_ptr() as usize as u32,
                0,
                0,
                0,
                0,
            ],
            nr::CLONE => [libc::SIGCHLD as u32, 0, 0, 0, 0, 0],
            _ => [0; 6],
        };
        // SAFETY: refused calls do not run; if one did, the pointers above
        // are live strings/arrays and the test would notice the effect.
        let t = unsafe { fx.post_raw(n, args) }.unwrap();
        assert_eq!(fx.wait(t), Err(Error::Errno(libc::ENOSYS)), "{name_} ({n})");
    }
    for n in [0xFF_FFFF, 0x0F00_0005, 500, 0xFFFF_FFFF] {
        // SAFETY: not a system call: never runs.
        let t = unsafe { fx.post_raw(n, [1, 2, 3, 4, 5, 6]) }.unwrap();
        assert_eq!(fx.wait(t), Err(Error::Errno(libc::ENOSYS)), "nr {n:#x}");
    }
    // Nothing happened: same process, uid, name, no child.
    assert_eq!(fx.call(Call::getpid()).unwrap(), pid());
    // SAFETY: as above.
    assert_eq!(unsafe { libc::getuid() }, uid);
    assert_eq!(std::fs::read_to_string("/proc/self/comm").unwrap(), comm);
    let mut st = 0;
    // SAFETY: WNOHANG poll for any child; `st` is a live int.
    let r = unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) };
    assert_eq!(r, -1, "a child exists");
    // Malformed entries: unknown flags or reserved words -> -EINVAL.
    assert_eq!(raw_entry(&fx, nr::GETPID, [0; 6], 0, [0; 4]), pid() as i32);
    assert_eq!(raw_entry(&fx, nr::GETPID, [0; 6], 1, [0; 4]), -libc::EINVAL);
    assert_eq!(
        raw_entry(&fx, nr::GETPID, [0; 6], 0x8000_0000, [0; 4]),
        -libc::EINVAL
    );
    assert_eq!(
        raw_entry(&fx, nr::GETPID, [0; 6], 0, [0, 0, 0, 1]),
        -libc::EINVAL
    );
    assert_eq!(
        raw_entry(&fx, nr::GETPID, [0; 6], 0, [7, 0, 0, 0]),
        -libc::EINVAL
    );
    assert_eq!(
        raw_entry(&fx, nr::EXIT_GROUP, [0; 6], 0, [0; 4]),
        -libc::ENOSYS
    );
    assert_eq!(fx.call(Call::getpid()).unwrap(), pid());
}

/// flexsc_register with a raw configuration; a region it maps is unmapped
/// again at once.
fn register_raw(cfg: &mut abi::Config, size: u32) -> Result<(), i32> {
    #[cfg(feature = "emulate")]
    {
        let _ = size;
        flexsc::emu::Emulator::start(cfg).map(flexsc::emu::Emulator::shutdown)
    }
    #[cfg(not(feature = "emulate"))]
    {
        sys::flexsc_register(cfg, size)?;
        // SAFETY: the region the kernel just mapped for us; nothing uses it.
        unsafe { libc::munmap(cfg.addr as usize as *mut _, abi::region_len(cfg.npages)) };
        Ok(())
    }
}

#[test]
fn registration_refuses_bad_configurations_and_a_second_region() {
    let good = Config::default().to_raw();
    type Edit = fn(&mut abi::Config);
    let bad: &[(&str, Edit)] = &[
        ("version 0", |c| c.version = 0),
        ("version 2", |c| c.version = 2),
        ("unknown flag 1 << 1", |c| c.flags = 1 << 1),
        ("unknown flag 1 << 31", |c| c.flags = 1 << 31),
        ("npages 0", |c| c.npages = 0),
        ("npages 17", |c| c.npages = 17),
        ("nworkers 0", |c| c.nworkers = 0),
        ("nworkers 33", |c| c.nworkers = 33),
        ("policy 7", |c| c.policy = 7),
        ("policy SCHED_BATCH", |c| c.policy = 3),
        ("priority with SCHED_OTHER", |c| c.priority = 5),
        ("SCHED_FIFO priority 0", |c| {
            c.policy = abi::SCHED_FIFO;
            c.priority = 0
        }),
        ("SCHED_RR priority 100", |c| {
            c.policy = abi::SCHED_RR;
            c.priority = 100
        }),
        ("poll_us", |c| c.poll_us = abi::MAX_POLL_US + 1),
        ("resv0", |c| c.resv0 = 1),
        ("resv[0]", |c| c.resv[0] = 1),
        ("resv[1]", |c| c.resv[1] = 1 << 40),
        ("no online cpu", |c| c.cpus = 1 << 63),
    ];
    for (what, edit) in bad {
        let mut c = good;
        edit(&mut c);
        assert_eq!(register_raw(&mut c, 64), Err(libc::EINVAL), "{what}");
    }
    if !FLEXSC_EMULATED {
        let mut c = good;
        assert_eq!(register_raw(&mut c, 63), Err(libc::EINVAL), "size 63");
        // SAFETY: a pointer into the unmapped first page: the kernel's
        // copy_from_user fails (EFAULT), nothing is written.
        let r = unsafe { sys::syscall6(nr::FLEXSC_REGISTER, [0x100, 64, 0, 0, 0, 0]) };
        assert_eq!(r, Err(libc::EFAULT));
    }
    // The good one works, a second is EBUSY, after unmapping it works again.
    let mut c = good;
    assert_eq!(register_raw(&mut c, 64), Ok(()));
    let fx = flexsc_register(&Config::default());
    assert_eq!(
        flexsc_try_register(&Config::default()).unwrap_err(),
        Error::Errno(libc::EBUSY)
    );
    let mut c = good;
    assert_eq!(register_raw(&mut c, 64), Err(libc::EBUSY));
    // flexsc_wait argument checks.
    assert_eq!(fx.kernel_wait(65, None), Err(Error::Errno(libc::EINVAL)));
    assert_eq!(
        fx.kernel_wait(1, Some(Duration::from_millis(20))),
        Err(Error::TimedOut)
    );
    if !FLEXSC_EMULATED {
        let (base, _) = fx.region().unwrap();
        for addr in [base + 4096, base + 64, 0x1000, 0] {
            assert_eq!(
                sys::flexsc_wait(addr, 0, None),
                Err(libc::EINVAL),
                "{addr:#x}"
            );
        }
    }
    drop(fx);
    let fx = flexsc_register(&Config {
        policy: Policy::Fifo(10),
        ..Config::default()
    });
    assert_eq!(fx.call(Call::getpid()).unwrap(), pid());
}

#[repr(C)]
struct SockFilter {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
}

#[repr(C)]
struct SockFprog {
    len: u16,
    filter: *const SockFilter,
}

#[test]
fn a_process_under_seccomp_cannot_register() {
    // BPF_RET | BPF_K, SECCOMP_RET_ALLOW: allows everything, so only the
    // registration's own check can refuse.
    let allow_all = [SockFilter {
        code: 0x06,
        jt: 0,
        jf: 0,
        k: 0x7fff_0000,
    }];
    let prog = SockFprog {
        len: 1,
        filter: allow_all.as_ptr(),
    };
    let child = fork();
    if child == 0 {
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            exit_child(10);
        }
        // SAFETY: seccomp(SECCOMP_SET_MODE_FILTER, 0, &prog): the kernel
        // reads the live program.
        if unsafe { libc::syscall(libc::SYS_seccomp, 1, 0, &prog as *const SockFprog) } != 0 {
            exit_child(11);
        }
        exit_child(match flexsc_try_register(&Config::default()) {
            Err(Error::Errno(libc::EPERM)) => 0,
            Ok(_) => 1,
            Err(Error::Unsupported) => 2,
            Err(_) => 3,
        });
    }
    let st = wait_child(child, Duration::from_secs(20), "seccomp child");
    if FLEXSC_EMULATED && exited_with(st, 11) {
        eprintln!("qemu-user has no seccomp(): not checked in this dry run");
        return;
    }
    assert!(
        exited_with(st, 0),
        "child under seccomp: status {st:#x} (exit 1: registered anyway, 2: ENOSYS, \
         3: another error, 10/11: could not install the filter)"
    );
    // The parent (not under seccomp) still can.
    drop(flexsc_register(&Config::default()));
}

#[test]
fn a_forked_child_does_not_have_the_region() {
    let fx = flexsc_register(&two_workers());
    let (base, len) = fx.region().unwrap();
    let range = format!("{base:08x}-{:08x}", base + len);
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    assert!(
        FLEXSC_EMULATED || maps.lines().any(|l| l.starts_with(&range)),
        "region {range} not in the parent's maps:\n{maps}"
    );
    let child = fork();
    if child == 0 {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
        let code = if maps.is_empty() {
            5
        } else if !FLEXSC_EMULATED && maps.lines().any(|l| l.starts_with(&range)) {
            1
        } else if fx.getpid().unwrap_err() != Error::Forked {
            2
        } else if fx.call(Call::getpid()).unwrap_err() != Error::Forked {
            3
        } else if fx.ctrl_snapshot().is_some() {
            4
        } else {
            0
        };
        // Dropping in the child must not touch or unmap anything.
        drop(fx);
        exit_child(code);
    }
    let st = wait_child(child, Duration::from_secs(20), "fork child");
    assert!(
        exited_with(st, 0),
        "child: status {st:#x} (exit 1: region mapped in the child, 2/3/4: the \
         crate did not detect the fork, 5: no /proc/self/maps)"
    );
    assert_eq!(fx.call(Call::getpid()).unwrap(), pid());
}

// ---------------------------------------------------------------------------
// Hostile pages

/// Calls whose arguments, drawn from `safe_word`, cannot hurt the process
/// whatever the word means to them: they only read from arbitrary memory,
/// and write only to the guarded scratch buffer or to addresses the kernel
/// refuses.
const HARMLESS: &[&str] = &[
    "read",
    "write",
    "pread64",
    "pwrite64",
    "writev",
    "lseek",
    "_llseek",
    "getpid",
    "getppid",
    "getuid32",
    "getgid32",
    "geteuid32",
    "getegid32",
    "getpgid",
    "fstat64",
    "statx",
    "clock_gettime",
    "clock_gettime64",
    "uname",
    "getcwd",
    "sched_yield",
    "fsync",
    "fdatasync",
    "faccessat",
    "fstatat64",
    "readlinkat",
    "getdents64",
];

struct Hostile {
    rng: XorShift,
    scratch: u32,
    fds: [u32; 2],
    harmless: Vec<u32>,
}

impl Hostile {
    /// A word that is safe as any argument of a harmless call: a small
    /// number or fd, the scratch buffer (1 MiB followed by a guard page), or
    /// a kernel address (refused).
    fn safe_word(&mut self) -> u32 {
        match self.rng.below(8) {
            0 => self.scratch,
            1 => self.scratch + self.rng.below(4096),
            2 => self
                .rng
                .pick(&[0xC000_0000, 0xFFFF_0000, 0xFFFF_FFFF, 0xBF00_0000]),
            3 => 0xC000_0000 | self.rng.next_u32(),
            4 => self.rng.pick(&self.fds),
            5 => self.rng.below(5000),
            6 => self.rng.pick(&[0, 1, 2, 16, 4096, 65536, u32::MAX]),
            _ => self.rng.below(64),
        }
    }

    fn nr(&mut self) -> u32 {
        match self.rng.below(10) {
            0..=4 => self.rng.pick(&self.harmless),
            5..=6 => self.rng.pick(abi::REFUSED).1,
            7 => self.rng.next_u32(),
            _ => {
                // Any number that is not an allowed call.
                let n = self.rng.below(600);
                if abi::is_allowed(n) && !self.harmless.contains(&n) {
                    nr::EXIT_GROUP
                } else {
                    n
                }
            }
        }
    }

    fn scribble(&mut self, e: &Entry, submit: bool) {
        e.nr.store(self.nr(), Ordering::Relaxed);
        for a in &e.args {
            a.store(self.safe_word(), Ordering::Relaxed);
        }
        let odd = self.rng.below(16) == 0;
        e.flags
            .store(if odd { self.rng.next_u32() } else { 0 }, Ordering::Relaxed);
        let odd = self.rng.below(16) == 0;
        e.resv[self.rng.below(4) as usize]
            .store(if odd { self.rng.next_u32() } else { 0 }, Ordering::Relaxed);
        e.ret.store(self.rng.next_u32() as i32, Ordering::Relaxed);
        e.cookie.store(self.rng.next_u64(), Ordering::Relaxed);
        let status = if submit && self.rng.below(4) != 0 {
            abi::SUBMITTED
        } else {
            match self.rng.below(4) {
                0 => self.rng.below(7),
                1 => self.rng.next_u32(),
                _ => self
                    .rng
                    .pick(&[abi::FREE, abi::SUBMITTED, abi::BUSY, abi::DONE]),
            }
        };
        e.status.store(status, Ordering::Release);
    }
}

/// Child side of the hostile test; returns an exit code.
fn hostile_child(seed: u64, rounds: u32) -> i32 {
    // Nothing the garbage does may reach the test output.
    let devnull = open("/dev/null", libc::O_RDWR);
    for fd in 0..3 {
        // SAFETY: dup2 onto our own standard descriptors.
        unsafe { libc::dup2(devnull, fd) };
    }
    let dir = format!("/tmp/flexsc-hostile-{}", std::process::id());
    let _ = std::fs::create_dir(&dir);
    if std::env::set_current_dir(&dir).is_err() {
        return 20;
    }
    let file = open("junk", libc::O_RDWR | libc::O_CREAT);
    // Scratch: 1 MiB read-write followed by an inaccessible guard page.
    let len = (1 << 20) + 4096;
    // SAFETY: a fresh anonymous mapping (overlaps nothing); then the last
    // page of it is made inaccessible.
    let scratch = unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            return 21;
        }
        libc::mprotect(p.cast::<u8>().add(1 << 20).cast(), 4096, libc::PROT_NONE);
        p as usize as u32
    };
    let fx = match flexsc_try_register(&Config {
        npages: 2,
        nworkers: 2,
        poll_us: 20,
        ..Config::default()
    }) {
        Ok(fx) => fx,
        Err(_) => return 22,
    };
    let harmless: Vec<u32> = HARMLESS.iter().filter_map(|n| abi::allowed_nr(n)).collect();
    let mk = |seed| Hostile {
        rng: XorShift::new(seed),
        scratch,
        fds: [devnull as u32, file as u32],
        harmless: harmless.clone(),
    };
    let es = entries(&fx);
    // Kernel pointers as buffers of SUBMITTED read/write entries: EFAULT.
    for buf in [0xC000_0000u32, 0xFFFF_0000] {
        for n in [nr::READ, nr::WRITE] {
            if raw_entry(&fx, n, [file as u32, buf, 64, 0, 0, 0], 0, [0; 4]) != -libc::EFAULT
                && !FLEXSC_EMULATED
            {
                return 23;
            }
        }
    }
    let stop = AtomicBool::new(false);
    let (base, _) = fx.region().unwrap();
    std::thread::scope(|s| {
        // A second thread rewriting entries all the time.
        s.spawn(|| {
            let mut h = mk(seed ^ 0x5555);
            while !stop.load(Ordering::Relaxed) {
                let i = h.rng.below(es.len() as u32) as usize;
                if h.rng.below(2) == 0 {
                    h.scribble(&es[i], false);
                } else {
                    es[i].status.store(h.rng.below(7), Ordering::Release);
                }
            }
        });
        let mut h = mk(seed);
        // SAFETY: `base` is the live region's control page; Ctrl consists
        // of atomics.
        let c = unsafe { &*(base as *const abi::Ctrl) };
        for k in 0..rounds {
            let i = h.rng.below(es.len() as u32) as usize;
            h.scribble(&es[i], true);
            // The batch protocol's user words, honest or not.
            match h.rng.below(8) {
                0 => c.submitted.store(h.rng.next_u32(), Ordering::Release),
                1 => c.wake_at.store(h.rng.next_u32(), Ordering::Relaxed),
                _ => {
                    c.submitted.fetch_add(1, Ordering::Release);
                }
            }
            if k % 64 == 0 {
                fence(Ordering::SeqCst);
                let _ = fx.kernel_wait(0, None);
            }
            if k % 4096 == 0 {
                // Rewrite the control page's user word, too.
                // SAFETY: `base` is the live region's control page; Ctrl
                // consists of atomics.
                let c = unsafe { &*(base as *const abi::Ctrl) };
                c.waiters.store(h.rng.below(3), Ordering::Relaxed);
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    // Let the syscall threads finish what is SUBMITTED, then free entries.
    // SAFETY: as above.
    let c = unsafe { &*(base as *const abi::Ctrl) };
    c.waiters.store(0, Ordering::Relaxed);
    let t0 = Instant::now();
    loop {
        // Batch protocol: make the syscall threads look again.
        c.submitted.fetch_add(1, Ordering::Release);
        fence(Ordering::SeqCst);
        let _ = fx.kernel_wait(0, None);
        let pending = es
            .iter()
            .filter(|e| e.status.load(Ordering::Acquire) == abi::SUBMITTED)
            .count();
        if pending == 0 {
            break;
        }
        if t0.elapsed() > Duration::from_secs(20) {
            return 24;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    for e in es {
        let _ =
            e.status
                .compare_exchange(abi::DONE, abi::FREE, Ordering::AcqRel, Ordering::Relaxed);
        let s = e.status.load(Ordering::Relaxed);
        if !abi::in_progress(s) && s != abi::SUBMITTED {
            e.status.store(abi::FREE, Ordering::Release);
        }
    }
    // The process still works, through FlexSC and directly.
    if fx.call(Call::getpid()) != Ok(pid()) {
        return 25;
    }
    if fx.call(Call::write(devnull, b"still fine")) != Ok(10) {
        return 26;
    }
    if direct(Call::getpid()) != Ok(pid()) {
        return 27;
    }
    drop(fx);
    let _ = std::env::set_current_dir("/");
    let _ = std::fs::remove_dir_all(&dir);
    0
}

#[test]
fn hostile_pages_do_not_hurt_the_kernel() {
    let before = kernel_log();
    let rounds = 100_000;
    let child = fork();
    if child == 0 {
        exit_child(hostile_child(0x00F1_E85C, rounds));
    }
    let st = wait_child(child, Duration::from_secs(90), "hostile child");
    let _ = std::fs::remove_dir_all(format!("/tmp/flexsc-hostile-{child}"));
    assert!(
        exited_with(st, 0),
        "hostile child: status {st:#x} (exit 20/21: setup, 22: registration, 23: a \
         kernel pointer did not give EFAULT, 24: SUBMITTED entries not run within \
         20 s, 25/26: FlexSC calls failed afterwards, 27: direct call failed; a \
         signal: the process was hurt)"
    );
    assert_log_clean_since(&before, "hostile pages");
    // And this process can use FlexSC as usual.
    let fx = flexsc_register(&two_workers());
    assert_eq!(fx.call(Call::getpid()).unwrap(), pid());
}

// ---------------------------------------------------------------------------
// Lifecycle

#[derive(Clone, Copy, Debug)]
enum End {
    Exit,
    Kill,
    Exec,
    Unmap,
}

/// Child side of one lifecycle round: register, post blocking reads and
/// writes, then end as `how` says. Returns an exit code (Kill: never).
fn lifecycle_child(how: End, ready: RawFd, true_path: &CStr) -> i32 {
    // Two reads that never complete keep two of the three syscall threads
    // asleep; the third runs the rest.
    let fx = match flexsc_try_register(&Config {
        nworkers: 3,
        poll_us: 10,
        ..Config::default()
    }) {
        Ok(fx) => fx,
        Err(_) => return 30,
    };
    // The write end stays open: the reads block.
    let (r, _w) = pipe();
    let devnull = open("/dev/null", libc::O_WRONLY);
    for _ in 0..2 {
        let buf: &'static mut [u8] = Box::leak(Box::new([0u8; 8]));
        match fx.post(Call::read(r, buf)) {
            Ok(t) => fx.detach(t),
            Err(_) => return 31,
        }
    }
    for _ in 0..8 {
        if fx.write_detached(devnull, b"in flight").is_err() {
            return 32;
        }
    }
    let t = fx.getpid();
    if t.map(|t| fx.wait(t)) != Ok(Ok(pid())) {
        return 33;
    }
    match how {
        End::Exit => {
            // Exit with everything in flight: no unmapping first.
            std::mem::forget(fx);
            0
        }
        End::Kill => {
            // SAFETY: one byte from a live buffer to the parent.
            unsafe { libc::write(ready, b"k".as_ptr().cast(), 1) };
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        End::Exec => {
            std::mem::forget(fx);
            let argv = [true_path.as_ptr(), std::ptr::null()];
            // SAFETY: a NUL-terminated path and a NULL-terminated argv of
            // live strings; on success this does not return.
            unsafe { libc::execv(true_path.as_ptr(), argv.as_ptr()) };
            34
        }
        End::Unmap => {
            // munmap with the reads still in flight: the kernel interrupts
            // them and stops the threads; then register again.
            fx.shutdown(Duration::ZERO);
            let t0 = Instant::now();
            let fx = loop {
                match flexsc_try_register(&Config::default()) {
                    Ok(fx) => break fx,
                    Err(Error::Errno(libc::EBUSY)) if t0.elapsed() < Duration::from_secs(2) => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    Err(_) => return 35,
                }
            };
            if fx.call(Call::getpid()) != Ok(pid()) {
                return 36;
            }
            0
        }
    }
}

#[test]
fn processes_ending_with_calls_in_flight_leave_nothing_behind() {
    let before = kernel_log();
    let true_path = cstr("/bin/true");
    let rounds_per_end = 25;
    let t_all = Instant::now();
    for round in 0..rounds_per_end {
        for how in [End::Exit, End::Kill, End::Exec, End::Unmap] {
            let (rd, wr) = pipe();
            let child = fork();
            if child == 0 {
                close(rd);
                exit_child(lifecycle_child(how, wr, &true_path));
            }
            close(wr);
            if let End::Kill = how {
                // Bounded: a child stuck before it is ready (registration,
                // a post, the getpid wait) fails the test with its stacks
                // instead of hanging it.
                let mut pfd = libc::pollfd {
                    fd: rd,
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one live pollfd.
                if unsafe { libc::poll(&mut pfd, 1, 10_000) } == 0 {
                    let stacks = guest_tests::thread_stacks(child) + &region_state(child);
                    // SAFETY: killing and reaping our own stuck child.
                    unsafe {
                        libc::kill(child, libc::SIGKILL);
                        libc::waitpid(child, std::ptr::null_mut(), 0);
                    }
                    panic!("round {round} {how:?}: child {child} not ready after 10 s; its threads:\n{stacks}");
                }
                let mut b = [0u8; 1];
                // SAFETY: reading one byte into a live buffer.
                let n = unsafe { libc::read(rd, b.as_mut_ptr().cast(), 1) };
                // SAFETY: our own child.
                unsafe { libc::kill(child, libc::SIGKILL) };
                assert_eq!(n, 1, "round {round}: kill child did not get ready");
            }
            close(rd);
            let st = guest_tests::wait_child_explained(
                child,
                Duration::from_secs(10),
                &format!("round {round} {how:?}"),
                region_state,
            );
            match how {
                End::Kill => assert!(
                    libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == libc::SIGKILL,
                    "round {round} {how:?}: status {st:#x}"
                ),
                _ => assert!(
                    exited_with(st, 0),
                    "round {round} {how:?}: status {st:#x} (exit 30: register, 31-33: \
                     posting, 34: exec, 35: could not register again after munmap, \
                     36: call after re-registering)"
                ),
            }
        }
    }
    // All syscall threads of the children are gone.
    let t0 = Instant::now();
    loop {
        let left = foreign_flexsc_threads();
        if left.is_empty() {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "syscall threads left behind by dead processes: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_log_clean_since(&before, "lifecycle rounds");
    eprintln!(
        "{} lifecycle rounds in {:?}",
        rounds_per_end * 4,
        t_all.elapsed()
    );
}

// ---------------------------------------------------------------------------
// The batch protocol (FLEXSC_CFG_BATCH, kernel patch "flexsc: complete
// batches with one wake-up").

/// The scheduler's count of the times thread `tid` of this process went to
/// sleep (`voluntary_ctxt_switches` in /proc): an oracle outside FlexSC.
fn voluntary_switches(tid: i32) -> u64 {
    task_status(tid, "voluntary_ctxt_switches").parse().unwrap()
}

/// The value of field `key` in thread `tid`'s /proc status, trimmed.
fn task_status(tid: i32, key: &str) -> String {
    let path = format!("/proc/self/task/{tid}/status");
    let status = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("{path}: no {key}"))
        .trim()
        .to_string()
}

/// The most sleeps of a thread waiting for a batch of 64 getpids, over
/// three rounds each: (futex wait of the library, `flexsc_wait(min 64)`).
/// The waiter is SCHED_FIFO on the syscall thread's CPU (SCHED_OTHER), so
/// the syscall thread runs only while the waiter sleeps, and every wake-up
/// of the waiter takes it off the CPU at once: each wake-up is a sleep
/// more in the count.
fn batch_waiter_sleeps(protocol: flexsc::Protocol) -> (u64, u64) {
    std::thread::spawn(move || {
        // SAFETY: sched_getcpu has no arguments.
        let cpu = unsafe { libc::sched_getcpu() } as usize;
        rt_utils::affinity::pin_to(cpu).unwrap();
        let fx = flexsc_try_register_protocol(
            &Config {
                npages: 1,
                nworkers: 1,
                cpus: 1 << cpu,
                ..Config::default()
            },
            protocol,
        )
        .unwrap_or_else(|e| panic!("register {protocol:?}: {e}"));
        assert_eq!(fx.protocol(), protocol);
        rt_utils::sched::set_scheduler(libc::SCHED_FIFO, 10).unwrap();
        // SAFETY: gettid has no arguments.
        let tid = unsafe { libc::gettid() };
        let post64 = || -> Vec<flexsc::Ticket> {
            (0..64)
                // SAFETY: getpid takes no pointers.
                .map(|_| unsafe { fx.post_raw_deferred(nr::GETPID, [0; 6]) }.unwrap())
                .collect()
        };
        let (mut futex, mut kernel) = (0, 0);
        for _ in 0..3 {
            let tickets = post64();
            let before = voluntary_switches(tid);
            let n = fx.wait_many(&tickets, 64, Some(Duration::from_secs(10)));
            futex = futex.max(voluntary_switches(tid) - before);
            assert_eq!(n, Ok(64), "{protocol:?}");
            for t in tickets {
                assert_eq!(fx.wait(t), Ok(pid()));
            }
            let tickets = post64();
            let before = voluntary_switches(tid);
            fx.submit();
            let n = fx.kernel_wait(64, Some(Duration::from_secs(10)));
            kernel = kernel.max(voluntary_switches(tid) - before);
            assert_eq!(n, Ok(64), "{protocol:?}");
            for t in tickets {
                assert_eq!(fx.wait(t), Ok(pid()));
            }
        }
        rt_utils::sched::set_scheduler(libc::SCHED_OTHER, 0).unwrap();
        fx.shutdown(Duration::from_secs(1));
        (futex, kernel)
    })
    .join()
    .unwrap()
}

/// A post that finds a syscall thread polling makes no system call (batch
/// protocol): if that thread then takes a call that sleeps for good, the
/// other entries must not wait for it. Arranged on one CPU: the poster is
/// SCHED_FIFO, its two syscall threads SCHED_OTHER on the same CPU. After a
/// call, a syscall thread polls (`poll_us` 10 ms, the CPU is free while the
/// poster sleeps 0.1-3 ms); the poster's wake-up preempts it while it counts in
/// `ctrl.pollers` (the round is "armed" when the poster sees that), and the
/// poster posts a read of an empty pipe and a getpid, in either order. The
/// polling thread may take the read first; the getpid must complete all
/// the same, by the other syscall thread.
#[test]
fn a_call_that_blocks_the_polling_thread_does_not_stall_the_others() {
    let (armed, rounds) = std::thread::spawn(|| {
        // SAFETY: sched_getcpu has no arguments.
        let cpu = unsafe { libc::sched_getcpu() } as usize;
        rt_utils::affinity::pin_to(cpu).unwrap();
        let fx = flexsc_try_register_protocol(
            &Config {
                nworkers: 2,
                poll_us: abi::MAX_POLL_US,
                cpus: 1 << cpu,
                ..Config::default()
            },
            flexsc::Protocol::Batch,
        )
        .unwrap_or_else(|e| panic!("register (batch protocol): {e}"));
        rt_utils::sched::set_scheduler(libc::SCHED_FIFO, 10).unwrap();
        let (r, w) = pipe();
        // A round arms only if nothing else on the CPU (a timer or RCU
        // thread) was runnable when the syscall thread began to poll: on
        // vexpress-a9 one round in 3 to 20. Up to 1000 rounds (a few ms
        // each) for 8 armed ones, both orders 4 times.
        let mut armed = 0;
        let mut rounds = 0;
        while armed < 8 && rounds < 1000 {
            let round = rounds;
            rounds += 1;
            assert_eq!(fx.call(Call::getpid()), Ok(pid()), "round {round}");
            // Sleeps of 0.1 to 3 ms: the wake-up falls at a different point
            // of the tick and the kernel threads' work in each round.
            std::thread::sleep(Duration::from_micros(100 + (round * 97) % 2900));
            if fx.ctrl_snapshot().unwrap().pollers == 0 {
                continue;
            }
            armed += 1;
            let buf: &'static mut [u8] = Box::leak(Box::new([0u8; 1]));
            let (read, getpid) = if armed % 2 == 0 {
                let read = fx.post(Call::read(r, buf)).unwrap();
                (read, fx.getpid().unwrap())
            } else {
                let getpid = fx.getpid().unwrap();
                (fx.post(Call::read(r, buf)).unwrap(), getpid)
            };
            let done = fx.wait_timeout(&getpid, Duration::from_secs(2)).unwrap();
            // The read ends either way, so that a failure leaves no thread
            // behind.
            // SAFETY: one byte from a live buffer into our own pipe.
            assert_eq!(unsafe { libc::write(w, b"x".as_ptr().cast(), 1) }, 1);
            assert_eq!(fx.wait(read), Ok(1), "round {round}: the read");
            assert!(
                done,
                "round {round}: getpid did not complete in 2 s while a syscall thread \
                 slept in a read it took from the poll: {:?}",
                fx.ctrl_snapshot()
            );
            assert_eq!(fx.wait(getpid), Ok(pid()), "round {round}");
        }
        rt_utils::sched::set_scheduler(libc::SCHED_OTHER, 0).unwrap();
        fx.shutdown(Duration::from_secs(1));
        close(r);
        close(w);
        (armed, rounds)
    })
    .join()
    .unwrap();
    // Without armed rounds of both orders the test shows nothing: the
    // arrangement failed.
    assert!(
        armed >= 2,
        "only {armed} of {rounds} rounds found a syscall thread polling after the poster's sleep"
    );
}

/// A waiter for a batch is woken once, when the batch is complete, not at
/// every completion: at most 2 sleeps per batch of 64 (the wait itself, and
/// perhaps the kick's lock), both for the library's futex wait and for
/// flexsc_wait(). The same measurement with the original protocol, which
/// wakes the waiter at every completion, shows the oracle can tell: it
/// must see many more.
#[test]
fn a_batch_waiter_is_woken_once() {
    if FLEXSC_EMULATED {
        // The emulator's threads cannot be kept off the CPU by priority
        // under qemu-user on a multi-CPU host.
        return;
    }
    wait_own_workers_gone();
    let batch = batch_waiter_sleeps(flexsc::Protocol::Batch);
    let original = batch_waiter_sleeps(flexsc::Protocol::Original);
    eprintln!(
        "sleeps of a batch-of-64 waiter (futex wait, flexsc_wait): batch protocol {batch:?}, \
         original {original:?}"
    );
    assert!(
        batch.0 <= 2 && batch.1 <= 2,
        "batch protocol: {batch:?} sleeps per batch of 64 (at most 2 expected)"
    );
    assert!(
        original.0 >= 16 && original.1 >= 16,
        "original protocol: only {original:?} sleeps per batch of 64: the oracle cannot tell \
         one wake-up from one per completion"
    );
}

/// The control page of each protocol: `features` says which is in force,
/// `submitted` starts at 0, `pollers` counts at most the syscall threads,
/// `wake_at` out of reach; with the
/// batch protocol, posts count in `submitted` (deferred ones only once
/// submitted), and results are the direct calls' with both.
#[test]
fn each_protocol_shows_in_the_control_page() {
    wait_own_workers_gone();
    for (protocol, features) in [
        (flexsc::Protocol::Batch, abi::CFG_BATCH),
        (flexsc::Protocol::Original, 0),
        (
            flexsc::Protocol::RunOnWait,
            abi::CFG_BATCH | abi::CFG_RUN_ON_WAIT,
        ),
    ] {
        let fx = flexsc_try_register_protocol(&Config::default(), protocol).unwrap();
        let c = fx.ctrl_snapshot().unwrap();
        assert_eq!(c.features, features, "{protocol:?}");
        assert_eq!(c.submitted, 0, "{protocol:?}");
        assert!(c.pollers <= 2, "{protocol:?}: {c:?}");
        assert!(
            !abi::reached(c.completions, c.wake_at),
            "{protocol:?}: {c:?}"
        );
        let t = fx.getpid().unwrap();
        assert_eq!(fx.wait(t), Ok(pid()));
        // SAFETY: getpid takes no pointers.
        let d = unsafe { fx.post_raw_deferred(nr::GETPID, [0; 6]) }.unwrap();
        let counted = u32::from(protocol != flexsc::Protocol::Original);
        assert_eq!(fx.ctrl_snapshot().unwrap().submitted, counted);
        fx.submit();
        assert_eq!(fx.ctrl_snapshot().unwrap().submitted, 2 * counted);
        assert_eq!(fx.wait(d), Ok(pid()));
        assert_eq!(fx.call(Call::getppid()), direct(Call::getppid()));
        fx.shutdown(Duration::from_secs(1));
    }
}

/// A wrong `ctrl.submitted` or `ctrl.wake_at` (hints the kernel does not
/// trust) never gives a wrong result, and a wait still ends by its timeout.
/// A lie in `submitted` may leave the liar's own entries waiting (the
/// syscall threads believe they served every post) until the next honest
/// post, which brings them back; a lie in `wake_at` costs at most the
/// library's 1 s re-check. Each value is written before a batch is posted
/// and again while it runs.
#[test]
fn lies_in_submitted_and_wake_at_never_hang_or_misdeliver() {
    wait_own_workers_gone();
    let fx = flexsc_register(&Config {
        npages: 1,
        nworkers: 2,
        ..Config::default()
    });
    assert_eq!(
        fx.protocol(),
        flexsc::Protocol::Batch,
        "the kernel refused the batch protocol"
    );
    let (base, _) = fx.region().unwrap();
    // SAFETY: the control page of our live region; its words are atomics.
    let ctrl = unsafe { &*(base as *const abi::Ctrl) };
    let mut rng = XorShift::new(15);
    let lies = [0, 1, u32::MAX, 0x8000_0000, 0x7fff_ffff, 0x7fff_ffff];
    for round in 0..16usize {
        let lie = lies
            .get(round / 2)
            .copied()
            .unwrap_or(rng.next_u64() as u32);
        let word = if round % 2 == 0 {
            &ctrl.submitted
        } else {
            &ctrl.wake_at
        };
        word.store(lie, Ordering::SeqCst);
        let mut tickets: Vec<_> = (0..16)
            // SAFETY: getpid takes no pointers.
            .map(|_| unsafe { fx.post_raw(nr::GETPID, [0; 6]) }.unwrap())
            .collect();
        word.store(lie.wrapping_add(round as u32), Ordering::SeqCst);
        let t0 = Instant::now();
        match fx.wait_many(&tickets, 16, Some(Duration::from_secs(2))) {
            Ok(16) => {}
            Err(Error::TimedOut) if round % 2 == 0 => {
                // The next honest post wakes the syscall threads again.
                tickets.push(fx.getpid().unwrap());
                // Generous bound for "it ends at all".
                let n = fx.wait_many(&tickets, 17, Some(Duration::from_secs(10)));
                assert_eq!(n, Ok(17), "round {round}, lie {lie:#x}: not recovered");
            }
            r => panic!(
                "round {round}, lie {lie:#x}: {r:?} after {:?}",
                t0.elapsed()
            ),
        }
        for t in tickets {
            assert_eq!(fx.wait(t), Ok(pid()), "round {round}");
        }
    }
    assert_eq!(fx.call(Call::getpid()), Ok(pid()));
    assert_eq!(fx.ctrl_snapshot().unwrap().dropped, 0);
}

// ---------------------------------------------------------------------------
// Run-on-wait (FLEXSC_CFG_RUN_ON_WAIT, kernel patch "flexsc: run calls in
// the waiting thread").

/// The one syscall thread of this process (by name, from /proc).
fn own_worker_tid() -> i32 {
    let me = std::process::id();
    let mine: Vec<_> = threads_named("flexsc-")
        .into_iter()
        .filter(|&(p, _, _)| p == me)
        .collect();
    assert_eq!(mine.len(), 1, "one syscall thread expected: {mine:?}");
    mine[0].1 as i32
}

fn register_run_on_wait(cfg: &Config) -> FlexSc {
    let fx = flexsc_try_register_protocol(cfg, flexsc::Protocol::RunOnWait)
        .unwrap_or_else(|e| panic!("register with run-on-wait: {e}"));
    assert_eq!(fx.protocol(), flexsc::Protocol::RunOnWait);
    fx
}

/// With run-on-wait a synchronous call runs in the waiting thread: over
/// 200 synchronous getpid and pwrite64 calls neither the caller nor the
/// syscall thread sleeps even once (the scheduler's counts, from /proc),
/// where with the hand-off at least one of them sleeps once per call (the
/// same calls with the batch protocol, measured for comparison). Results are the direct
/// calls' (pid; the file's bytes read back directly).
#[test]
fn run_on_wait_runs_synchronous_calls_in_the_caller() {
    if FLEXSC_EMULATED {
        // The emulator's worker is a thread of this process: its counts
        // under qemu-user say nothing about the kernel.
        return;
    }
    wait_own_workers_gone();
    let dir = TmpDir::new("row");
    let path = dir.path("f");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    let sleeps = |protocol| {
        std::thread::scope(|s| {
            s.spawn(|| {
                // SAFETY: sched_getcpu has no arguments.
                let cpu = unsafe { libc::sched_getcpu() } as usize;
                rt_utils::affinity::pin_to(cpu).unwrap();
                let cfg = Config {
                    nworkers: 1,
                    cpus: 1 << cpu,
                    ..Config::default()
                };
                let fx = flexsc_try_register_protocol(&cfg, protocol).unwrap();
                assert_eq!(fx.protocol(), protocol);
                let worker = own_worker_tid();
                // SAFETY: gettid has no arguments.
                let me = unsafe { libc::gettid() };
                // Let the syscall thread go to sleep (it polls 50 us).
                std::thread::sleep(Duration::from_millis(20));
                let (w0, m0) = (voluntary_switches(worker), voluntary_switches(me));
                for k in 0..100u64 {
                    assert_eq!(fx.call(Call::getpid()), Ok(pid()));
                    let data = k.to_le_bytes();
                    assert_eq!(fx.call(Call::pwrite64(fd, &data, 8 * k)), Ok(8));
                }
                let counts = (voluntary_switches(me) - m0, voluntary_switches(worker) - w0);
                fx.shutdown(Duration::from_secs(1));
                counts
            })
            .join()
            .unwrap()
        })
    };
    let inline = sleeps(flexsc::Protocol::RunOnWait);
    let handoff = sleeps(flexsc::Protocol::Batch);
    eprintln!(
        "sleeps over 200 synchronous calls (caller, syscall thread): run-on-wait {inline:?}, \
         hand-off {handoff:?}"
    );
    let mut back = vec![0u8; 800];
    use std::os::unix::fs::FileExt;
    file.read_exact_at(&mut back, 0).unwrap();
    for k in 0..100u64 {
        assert_eq!(back[8 * k as usize..][..8], k.to_le_bytes(), "record {k}");
    }
    assert!(
        inline.0 <= 2 && inline.1 <= 2,
        "run-on-wait: {inline:?} sleeps of (caller, syscall thread) over 200 calls"
    );
    // The hand-off: the syscall thread sleeps after each call; the caller
    // too, unless the woken syscall thread preempts it before its wait.
    assert!(
        handoff.0 + handoff.1 >= 200,
        "hand-off: only {handoff:?} sleeps over 200 calls: the oracle cannot tell"
    );
}

/// A call that may wait for an outside event (a read of an empty pipe)
/// never runs in the waiting thread: flexsc_wait(1) returns with the
/// getpid posted next to it done, the read goes to the syscall thread
/// (BLOCKED there), and completes once the pipe has data.
#[test]
fn run_on_wait_leaves_blocking_calls_to_the_syscall_threads() {
    wait_own_workers_gone();
    let fx = register_run_on_wait(&Config {
        nworkers: 1,
        ..Config::default()
    });
    let (r, w) = pipe();
    let mut buf = Box::new([0u8; 8]);
    // SAFETY: `buf` outlives the entry: it is waited for below, and the
    // region is shut down (calls interrupted) before `buf` is dropped.
    let read =
        unsafe { fx.post_raw_deferred(nr::READ, [r as u32, buf.as_mut_ptr() as u32, 8, 0, 0, 0]) }
            .unwrap();
    // SAFETY: getpid takes no pointers.
    let getpid = unsafe { fx.post_raw_deferred(nr::GETPID, [0; 6]) }.unwrap();
    fx.submit();
    let t0 = Instant::now();
    let n = fx.kernel_wait(1, Some(Duration::from_secs(5)));
    assert!(
        matches!(n, Ok(k) if k >= 1),
        "{n:?} after {:?}",
        t0.elapsed()
    );
    assert!(fx.is_done(&getpid));
    assert!(!fx.is_done(&read));
    // Generous bound for "it happens at all".
    assert!(
        guest_tests::wait_for(Duration::from_secs(5), || fx.status(&read)
            == Some(abi::BLOCKED)
            || FLEXSC_EMULATED),
        "the read did not reach the syscall thread: status {:?}",
        fx.status(&read)
    );
    // SAFETY: writing 8 bytes from a live array to our pipe.
    assert_eq!(unsafe { libc::write(w, b"12345678".as_ptr().cast(), 8) }, 8);
    assert_eq!(fx.wait(read), Ok(8));
    assert_eq!(&buf[..], b"12345678");
    assert_eq!(fx.wait(getpid), Ok(pid()));
    fx.shutdown(Duration::from_secs(1));
    close(r);
    close(w);
}

/// Set this thread's own effective uid only (a raw setresuid32: glibc's
/// setresuid would change every thread).
fn set_thread_euid(euid: u32) {
    // SAFETY: setresuid32 with -1 for the real and saved uids changes only
    // the calling thread's effective uid.
    let r = unsafe { sys::syscall6(nr::SETRESUID32, [u32::MAX, euid, u32::MAX, 0, 0, 0]) };
    assert_eq!(r, Ok(0), "setresuid32(-1, {euid}, -1)");
}

/// Run-on-wait takes the process's credentials for each call it runs
/// (kernel patch "flexsc: run calls in the waiting thread", flexsc.rst): a
/// change between two waits applies to the second. The registering thread (whose
/// credentials are the process's) posts geteuid32 and waits, as root, then
/// with euid 65534, then as root again; each wait runs the call inline
/// (the syscall thread never runs) and gives that wait's euid.
#[test]
fn run_on_wait_takes_the_credentials_at_each_wait() {
    if FLEXSC_EMULATED {
        return;
    }
    wait_own_workers_gone();
    std::thread::spawn(|| {
        let fx = register_run_on_wait(&Config {
            nworkers: 1,
            ..Config::default()
        });
        std::thread::sleep(Duration::from_millis(20));
        let worker = own_worker_tid();
        let w0 = voluntary_switches(worker);
        for euid in [0u32, 65534, 0] {
            set_thread_euid(euid);
            // SAFETY: geteuid32 takes no pointers.
            let t = unsafe { fx.post_raw_deferred(nr::GETEUID32, [0; 6]) }.unwrap();
            assert_eq!(fx.wait(t), Ok(euid as usize), "wait with euid {euid}");
        }
        assert_eq!(
            voluntary_switches(worker),
            w0,
            "the syscall thread ran something"
        );
        fx.shutdown(Duration::from_secs(1));
    })
    .join()
    .unwrap();
}

/// A caller pinned to one CPU may give its syscall threads another CPU of
/// its cpuset (kernel patch "flexsc: add exception-less system calls",
/// flexsc.rst: the CPUs are checked against the cpuset, not the caller's
/// affinity); a CPU that is not online is refused. The syscall thread runs
/// there (its affinity, from /proc) and serves calls. Needs two online
/// CPUs (real boards, `make bench` with 2 vCPUs): with one it says so and
/// checks only the refusal.
#[test]
fn a_pinned_caller_may_put_its_syscall_thread_on_another_cpu() {
    if FLEXSC_EMULATED {
        return;
    }
    wait_own_workers_gone();
    std::thread::spawn(|| {
        rt_utils::affinity::pin_to(0).unwrap();
        let offline = Config {
            nworkers: 1,
            cpus: 1 << 63,
            ..Config::default()
        };
        assert!(
            matches!(FlexSc::register(&offline), Err(Error::Errno(libc::EINVAL))),
            "CPU 63 is not online here"
        );
        if rt_utils::affinity::online_cpus() < 2 {
            eprintln!("one online CPU: the placement on another CPU is checked on SMP boards only");
            return;
        }
        let fx = flexsc_try_register_protocol(
            &Config {
                nworkers: 1,
                cpus: 1 << 1,
                ..Config::default()
            },
            flexsc::Protocol::Batch,
        )
        .unwrap_or_else(|e| panic!("pinned to CPU 0, syscall thread on CPU 1: {e}"));
        let worker = own_worker_tid();
        assert_eq!(
            task_status(worker, "Cpus_allowed_list"),
            "1",
            "the syscall thread's CPUs"
        );
        // SAFETY: getpid takes no pointers.
        let t = unsafe { fx.post_raw(nr::GETPID, [0; 6]) }.unwrap();
        assert_eq!(fx.wait(t), Ok(std::process::id() as usize));
        fx.shutdown(Duration::from_secs(1));
    })
    .join()
    .unwrap();
}

/// A call run in a waiting thread gets the process's credentials (those of
/// the registering thread), never the waiting thread's own: geteuid32
/// posted by the registering thread (root) and run by a thread whose own
/// euid is 65534 gives 0; with the roles swapped, 65534. The syscall
/// thread stays asleep all along (the calls ran in the waiter).
#[test]
fn run_on_wait_uses_the_process_credentials() {
    if FLEXSC_EMULATED {
        return;
    }
    wait_own_workers_gone();
    for owner_drops in [false, true] {
        std::thread::scope(|s| {
            s.spawn(|| {
                let fx = register_run_on_wait(&Config {
                    nworkers: 1,
                    ..Config::default()
                });
                if owner_drops {
                    set_thread_euid(65534);
                }
                std::thread::sleep(Duration::from_millis(20));
                let worker = own_worker_tid();
                let w0 = voluntary_switches(worker);
                // SAFETY: geteuid32 takes no pointers.
                let t = unsafe { fx.post_raw_deferred(nr::GETEUID32, [0; 6]) }.unwrap();
                let fxr = &fx;
                let (direct_euid, waited) = std::thread::scope(|s2| {
                    s2.spawn(|| {
                        // A new thread starts with its creator's
                        // credentials: set this one's own explicitly.
                        set_thread_euid(if owner_drops { 0 } else { 65534 });
                        // SAFETY: geteuid has no arguments.
                        let direct = unsafe { libc::geteuid() };
                        // The library's wait publishes it without a kick
                        // and runs it here, in flexsc_wait().
                        (direct, fxr.wait_timeout(&t, Duration::from_secs(5)))
                    })
                    .join()
                    .unwrap()
                });
                assert_eq!(waited, Ok(true), "owner drops: {owner_drops}");
                let expect = if owner_drops { 65534 } else { 0 };
                assert_eq!(direct_euid, 65534 - expect, "the waiter's own euid");
                assert_eq!(
                    fx.wait(t),
                    Ok(expect as usize),
                    "owner drops: {owner_drops}"
                );
                assert_eq!(
                    voluntary_switches(worker),
                    w0,
                    "the syscall thread ran something"
                );
                fx.shutdown(Duration::from_secs(1));
            });
        });
    }
}
