//! FlexSC: `include/uapi/linux/flexsc.h` (rtflex patch 0002) and the
//! kernel's allow-list (`kernel/flexsc/allow.rs`).
//!
//! The shared structures ([`Entry`], [`Ctrl`]) consist of atomics only: the
//! kernel (and, in principle, any thread of the process) may write any word
//! of the region at any time, so Rust code never holds a plain reference to
//! a non-atomic word of it. Sizes and offsets are checked at compile time
//! here and against the kernel header by `make check-uapi`.

use core::mem::{align_of, offset_of, size_of};
use core::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};

use crate::nr;

/// `FLEXSC_CONFIG_VERSION`.
pub const CONFIG_VERSION: u32 = 1;
/// `FLEXSC_MAX_PAGES`: syscall pages per region.
pub const MAX_PAGES: u32 = 16;
/// `FLEXSC_MAX_WORKERS`: syscall threads per region.
pub const MAX_WORKERS: u32 = 32;
/// `FLEXSC_MAX_POLL_US`.
pub const MAX_POLL_US: u32 = 10_000;
/// `FLEXSC_CFG_BATCH`, a [`Config::flags`] bit: the batch protocol
/// ([`Ctrl::submitted`], [`Ctrl::pollers`], [`Ctrl::wake_at`]). Kernels
/// without it refuse the flag with `EINVAL`; [`Ctrl::features`] lists the
/// flags in force.
pub const CFG_BATCH: u32 = 1 << 0;
/// `FLEXSC_CFG_RUN_ON_WAIT`, a [`Config::flags`] bit (only with
/// [`CFG_BATCH`]): `flexsc_wait(addr, min > 0, ...)` runs the calls of
/// [`runs_inline`] in the waiting thread. Kernels without it: `EINVAL`.
pub const CFG_RUN_ON_WAIT: u32 = 1 << 1;
/// `FLEXSC_MAGIC` ("FxSC"), in [`Ctrl::magic`].
pub const MAGIC: u32 = 0x4678_5343;

/// The page size of the region layout (fixed by the ABI).
pub const PAGE_SIZE: usize = 4096;
/// `FLEXSC_ENTRIES_PER_PAGE`.
pub const ENTRIES_PER_PAGE: usize = PAGE_SIZE / size_of::<Entry>();

/// Entry status: owned by user space.
pub const FREE: u32 = 0;
/// Entry status: being filled in by user space.
pub const CLAIMED: u32 = 1;
/// Entry status: ready for a syscall thread.
pub const SUBMITTED: u32 = 2;
/// Entry status: a syscall thread is running it.
pub const BUSY: u32 = 3;
/// Entry status: a syscall thread is running it and the call sleeps.
pub const BLOCKED: u32 = 4;
/// Entry status: `ret` is valid.
pub const DONE: u32 = 5;
/// Entry status: a syscall thread has won the entry (BUSY or BLOCKED ->
/// COMPLETING by compare-and-exchange) and is storing `ret`; DONE follows
/// (store-release). Kernel-owned: user space treats it like [`BUSY`], a
/// call in progress, and never writes the entry.
pub const COMPLETING: u32 = 6;

/// True for the kernel-owned states of a call in progress: [`BUSY`],
/// [`BLOCKED`] and [`COMPLETING`] (not [`SUBMITTED`], which no syscall
/// thread has claimed yet).
pub const fn in_progress(status: u32) -> bool {
    matches!(status, BUSY | BLOCKED | COMPLETING)
}

/// Scheduling policies of [`Config::policy`] (the kernel's `SCHED_*`).
pub const SCHED_OTHER: u32 = 0;
/// `SCHED_FIFO`.
pub const SCHED_FIFO: u32 = 1;
/// `SCHED_RR`.
pub const SCHED_RR: u32 = 2;

/// `struct flexsc_config`, the argument of `flexsc_register()`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// [`CONFIG_VERSION`].
    pub version: u32,
    /// `FLEXSC_CFG_*` bits ([`CFG_BATCH`]); 0 for the original protocol.
    pub flags: u32,
    /// Syscall pages, `1..=MAX_PAGES`.
    pub npages: u32,
    /// Syscall threads, `1..=MAX_WORKERS`.
    pub nworkers: u32,
    /// Bitmap of worker CPUs, 0: the caller's.
    pub cpus: u64,
    /// [`SCHED_OTHER`], [`SCHED_FIFO`] or [`SCHED_RR`].
    pub policy: u32,
    /// 0 for `SCHED_OTHER`, 1..=99 otherwise.
    pub priority: u32,
    /// Busy time in microseconds before an idle worker sleeps.
    pub poll_us: u32,
    /// Must be 0.
    pub resv0: u32,
    /// Out: start of the mapped region.
    pub addr: u64,
    /// Must be 0.
    pub resv: [u64; 2],
}

/// `struct flexsc_entry`: one system call, one 64-byte cache line.
#[repr(C, align(64))]
#[derive(Debug, Default)]
pub struct Entry {
    /// [`FREE`] ..= [`COMPLETING`].
    pub status: AtomicU32,
    /// EABI system call number (r7).
    pub nr: AtomicU32,
    /// r0..r5, including the EABI padding before 64-bit register pairs.
    pub args: [AtomicU32; 6],
    /// Result or -errno, written by the kernel.
    pub ret: AtomicI32,
    /// Must be 0.
    pub flags: AtomicU32,
    /// User data, untouched by the kernel.
    pub cookie: AtomicU64,
    /// Must be 0.
    pub resv: [AtomicU32; 4],
}

impl Entry {
    /// Steps 2 and 3 of posting a call into an entry the caller has CLAIMED
    /// (`linux/flexsc.h`): writes every word of the request (relaxed), then
    /// publishes it with a store-release of [`SUBMITTED`]. `ret` gets a
    /// placeholder the syscall thread overwrites.
    pub fn submit(
        &self,
        nr: u32,
        args: [u32; 6],
        flags: u32,
        resv: [u32; 4],
        cookie: u64,
        ret: i32,
    ) {
        self.nr.store(nr, Ordering::Relaxed);
        for (w, v) in self.args.iter().zip(args) {
            w.store(v, Ordering::Relaxed);
        }
        self.flags.store(flags, Ordering::Relaxed);
        for (w, v) in self.resv.iter().zip(resv) {
            w.store(v, Ordering::Relaxed);
        }
        self.cookie.store(cookie, Ordering::Relaxed);
        self.ret.store(ret, Ordering::Relaxed);
        self.status.store(SUBMITTED, Ordering::Release);
    }
}

/// `struct flexsc_ctrl`: the control page at the start of the region.
#[repr(C)]
#[derive(Debug, Default)]
pub struct Ctrl {
    /// [`MAGIC`].
    pub magic: AtomicU32,
    /// [`CONFIG_VERSION`].
    pub version: AtomicU32,
    /// `npages * ENTRIES_PER_PAGE`.
    pub nentries: AtomicU32,
    /// Number of syscall threads.
    pub nworkers: AtomicU32,
    /// Offset of the first entry from the region start: 4096.
    pub entries_offset: AtomicU32,
    /// Padding.
    pub pad0: [AtomicU32; 11],
    /// Kernel: syscall threads asleep.
    pub idle_workers: AtomicU32,
    /// Padding.
    pub pad1: [AtomicU32; 15],
    /// Kernel: futex word, +1 per DONE.
    pub completions: AtomicU32,
    /// Padding.
    pub pad2: [AtomicU32; 15],
    /// User: threads waiting on `completions`.
    pub waiters: AtomicU32,
    /// Padding.
    pub pad3: [AtomicU32; 15],
    /// Kernel: results not stored because the entry was rewritten.
    pub dropped: AtomicU32,
    /// Padding.
    pub pad4: [AtomicU32; 15],
    /// User (batch protocol): +n after storing SUBMITTED into n entries.
    pub submitted: AtomicU32,
    /// Padding.
    pub pad5: [AtomicU32; 15],
    /// Kernel: syscall threads polling for work now (a post needs no kick).
    pub pollers: AtomicU32,
    /// Padding.
    pub pad6: [AtomicU32; 15],
    /// User (batch protocol): the `completions` value the earliest futex
    /// waiter needs; see [`reached`].
    pub wake_at: AtomicU32,
    /// Padding.
    pub pad7: [AtomicU32; 15],
    /// Kernel: the `FLEXSC_CFG_*` flags in force.
    pub features: AtomicU32,
    /// Padding.
    pub pad8: [AtomicU32; 15],
}

/// Batch protocol: whether the completion count `now` has reached the
/// wake-up target `target`, `(s32)(now - target) >= 0` (both wrap).
pub const fn reached(now: u32, target: u32) -> bool {
    now.wrapping_sub(target) as i32 >= 0
}

/// Batch protocol: the target a syscall thread leaves in `wake_at` after a
/// wake-up, reached only after 2^31 - 1 more completions: no target.
pub const fn out_of_reach(now: u32) -> u32 {
    now.wrapping_add(i32::MAX as u32)
}

/// Batch protocol: sets the wake-up target `wake_at` to `target`, computed
/// from the completion count `now`, unless it holds an earlier target not
/// reached yet (a reached target is stale: its waiter was woken, or sees
/// the completion itself). What a futex waiter does before it sleeps.
pub fn arm_wake_at(wake_at: &AtomicU32, now: u32, target: u32) {
    let mut cur = wake_at.load(Ordering::Relaxed);
    loop {
        let earlier = cur.wrapping_sub(now) as i32 <= target.wrapping_sub(now) as i32;
        if !reached(now, cur) && earlier {
            return;
        }
        match wake_at.compare_exchange_weak(cur, target, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return,
            Err(v) => cur = v,
        }
    }
}

const _: () = {
    assert!(size_of::<Config>() == 64);
    assert!(offset_of!(Config, cpus) == 16);
    assert!(offset_of!(Config, policy) == 24);
    assert!(offset_of!(Config, poll_us) == 32);
    assert!(offset_of!(Config, addr) == 40);
    assert!(offset_of!(Config, resv) == 48);

    assert!(size_of::<Entry>() == 64);
    assert!(align_of::<Entry>() == 64);
    assert!(offset_of!(Entry, nr) == 4);
    assert!(offset_of!(Entry, args) == 8);
    assert!(offset_of!(Entry, ret) == 32);
    assert!(offset_of!(Entry, flags) == 36);
    assert!(offset_of!(Entry, cookie) == 40);
    assert!(offset_of!(Entry, resv) == 48);
    assert!(ENTRIES_PER_PAGE == 64);

    assert!(offset_of!(Ctrl, magic) == 0);
    assert!(offset_of!(Ctrl, entries_offset) == 16);
    assert!(offset_of!(Ctrl, idle_workers) == 64);
    assert!(offset_of!(Ctrl, completions) == 128);
    assert!(offset_of!(Ctrl, waiters) == 192);
    assert!(offset_of!(Ctrl, dropped) == 256);
    assert!(offset_of!(Ctrl, submitted) == 320);
    assert!(offset_of!(Ctrl, pollers) == 384);
    assert!(offset_of!(Ctrl, wake_at) == 448);
    assert!(offset_of!(Ctrl, features) == 512);
    assert!(size_of::<Ctrl>() == 576);
    assert!(size_of::<Ctrl>() <= PAGE_SIZE);
};

/// Length in bytes of a region with `npages` syscall pages (one control
/// page in front): what `munmap()` takes.
pub const fn region_len(npages: u32) -> usize {
    (1 + npages as usize) * PAGE_SIZE
}

/// The calls the kernel runs for a FlexSC entry (its allow-list), by name
/// and ARM EABI number; any other number completes with `-ENOSYS` without
/// running. The kernel check compares it with `kernel/flexsc/allow.rs`.
pub const ALLOWED: &[(&str, u32)] = &[
    ("read", nr::READ),
    ("write", nr::WRITE),
    ("close", nr::CLOSE),
    ("lseek", nr::LSEEK),
    ("getpid", nr::GETPID),
    ("sync", nr::SYNC),
    ("dup", nr::DUP),
    ("getppid", nr::GETPPID),
    ("fsync", nr::FSYNC),
    ("uname", nr::UNAME),
    ("getpgid", nr::GETPGID),
    ("_llseek", nr::LLSEEK),
    ("readv", nr::READV),
    ("writev", nr::WRITEV),
    ("fdatasync", nr::FDATASYNC),
    ("sched_yield", nr::SCHED_YIELD),
    ("nanosleep", nr::NANOSLEEP),
    ("poll", nr::POLL),
    ("pread64", nr::PREAD64),
    ("pwrite64", nr::PWRITE64),
    ("getcwd", nr::GETCWD),
    ("ftruncate64", nr::FTRUNCATE64),
    ("fstat64", nr::FSTAT64),
    ("getuid32", nr::GETUID32),
    ("getgid32", nr::GETGID32),
    ("geteuid32", nr::GETEUID32),
    ("getegid32", nr::GETEGID32),
    ("getdents64", nr::GETDENTS64),
    ("epoll_ctl", nr::EPOLL_CTL),
    ("clock_gettime", nr::CLOCK_GETTIME),
    ("clock_nanosleep", nr::CLOCK_NANOSLEEP),
    ("arm_fadvise64_64", nr::ARM_FADVISE64_64),
    ("connect", nr::CONNECT),
    ("sendto", nr::SENDTO),
    ("recvfrom", nr::RECVFROM),
    ("sendmsg", nr::SENDMSG),
    ("recvmsg", nr::RECVMSG),
    ("openat", nr::OPENAT),
    ("mkdirat", nr::MKDIRAT),
    ("fstatat64", nr::FSTATAT64),
    ("unlinkat", nr::UNLINKAT),
    ("readlinkat", nr::READLINKAT),
    ("faccessat", nr::FACCESSAT),
    ("arm_sync_file_range", nr::SYNC_FILE_RANGE2),
    ("fallocate", nr::FALLOCATE),
    ("eventfd2", nr::EVENTFD2),
    ("dup3", nr::DUP3),
    ("pipe2", nr::PIPE2),
    ("accept4", nr::ACCEPT4),
    ("renameat2", nr::RENAMEAT2),
    ("statx", nr::STATX),
    ("clock_gettime64", nr::CLOCK_GETTIME64),
    ("clock_nanosleep_time64", nr::CLOCK_NANOSLEEP_TIME64),
];

/// Calls the kernel must refuse (`-ENOSYS`, without running them): they
/// change the process or thread identity, its signal state or memory
/// layout in ways a syscall thread must not, or they nest FlexSC.
/// Not exhaustive: everything not in [`ALLOWED`] is refused.
pub const REFUSED: &[(&str, u32)] = &[
    ("exit", nr::EXIT),
    ("fork", nr::FORK),
    ("execve", nr::EXECVE),
    ("ptrace", nr::PTRACE),
    ("kill", nr::KILL),
    ("sigreturn", nr::SIGRETURN),
    ("clone", nr::CLONE),
    ("prctl", nr::PRCTL),
    ("rt_sigreturn", nr::RT_SIGRETURN),
    ("rt_sigprocmask", nr::RT_SIGPROCMASK),
    ("vfork", nr::VFORK),
    ("setuid32", nr::SETUID32),
    ("gettid", nr::GETTID),
    ("exit_group", nr::EXIT_GROUP),
    ("tgkill", nr::TGKILL),
    ("seccomp", nr::SECCOMP),
    ("execveat", nr::EXECVEAT),
    ("clone3", nr::CLONE3),
    ("vaddr_to_paddr", nr::VADDR_TO_PADDR),
    ("flexsc_register", nr::FLEXSC_REGISTER),
    ("flexsc_wait", nr::FLEXSC_WAIT),
    // Memory-layout calls: mmap2 is an assembler wrapper that reads r5 from
    // the entry stack frame; munmap could unmap the region itself.
    ("mmap2", nr::MMAP2),
    ("munmap", nr::MUNMAP),
    ("mprotect", nr::MPROTECT),
    ("madvise", nr::MADVISE),
    // ppoll sets a temporary signal mask that only a return to user space
    // restores.
    ("ppoll_time64", nr::PPOLL_TIME64),
    // ioctl is every driver's private interface, and fcntl acts for the
    // calling task (F_SETOWN records its credentials, locks its owner):
    // neither may run on a thread that is not the caller.
    ("ioctl", nr::IOCTL),
    ("fcntl64", nr::FCNTL64),
];

/// Where `flexsc_wait()` may run an allowed call itself (run-on-wait): the
/// kernel's `allow::inline` (`kernel/flexsc/allow.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inline {
    /// Never (it may wait for a pipe, socket, timer or device).
    No,
    /// Always: identity, time, file offsets and status.
    Yes,
    /// Only when `args[0]` is a descriptor of a regular file.
    OnRegularFile,
}

/// How `flexsc_wait()` treats allowed call `nr` with run-on-wait.
pub fn runs_inline(nr: u32) -> Inline {
    match nr {
        nr::GETPID
        | nr::GETPPID
        | nr::GETPGID
        | nr::GETUID32
        | nr::GETGID32
        | nr::GETEUID32
        | nr::GETEGID32
        | nr::CLOCK_GETTIME
        | nr::CLOCK_GETTIME64
        | nr::LSEEK
        | nr::LLSEEK
        | nr::FSTAT64 => Inline::Yes,
        nr::READ
        | nr::WRITE
        | nr::FSYNC
        | nr::READV
        | nr::WRITEV
        | nr::FDATASYNC
        | nr::PREAD64
        | nr::PWRITE64 => Inline::OnRegularFile,
        _ => Inline::No,
    }
}

/// True when the kernel runs system call `nr` for a FlexSC entry.
pub fn is_allowed(nr: u32) -> bool {
    ALLOWED.iter().any(|&(_, n)| n == nr)
}

/// The ARM EABI number of an allowed call, by name.
pub fn allowed_nr(name: &str) -> Option<u32> {
    ALLOWED.iter().find(|&&(n, _)| n == name).map(|&(_, nr)| nr)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The state values are the UAPI header's, and exactly the kernel-owned
    /// states of a claimed call count as in progress.
    #[test]
    fn states() {
        let all = [FREE, CLAIMED, SUBMITTED, BUSY, BLOCKED, DONE, COMPLETING];
        assert_eq!(all, [0, 1, 2, 3, 4, 5, 6]);
        let busy: Vec<u32> = all.into_iter().filter(|&s| in_progress(s)).collect();
        assert_eq!(busy, [BUSY, BLOCKED, COMPLETING]);
        assert!(!in_progress(7) && !in_progress(u32::MAX));
    }

    /// Wake-up targets compare by wrapping distance; a target out of reach
    /// is never earlier than a real one; arming keeps the earliest live
    /// target and replaces a stale or later one.
    #[test]
    fn wake_targets() {
        assert!(reached(5, 5) && reached(6, 5) && !reached(4, 5));
        assert!(reached(2, u32::MAX - 1) && !reached(u32::MAX - 1, 2));
        assert!(!reached(10, out_of_reach(10)) && !reached(10 + 1000, out_of_reach(10)));
        let w = AtomicU32::new(out_of_reach(0));
        arm_wake_at(&w, 0, 64);
        assert_eq!(w.load(Ordering::Relaxed), 64, "out of reach is replaced");
        arm_wake_at(&w, 0, 100);
        assert_eq!(
            w.load(Ordering::Relaxed),
            64,
            "a later target does not replace"
        );
        arm_wake_at(&w, 3, 10);
        assert_eq!(w.load(Ordering::Relaxed), 10, "an earlier one does");
        arm_wake_at(&w, 10, 20);
        assert_eq!(w.load(Ordering::Relaxed), 20, "a reached target is stale");
        let w = AtomicU32::new(u32::MAX - 2);
        arm_wake_at(&w, u32::MAX - 5, 1);
        assert_eq!(w.load(Ordering::Relaxed), u32::MAX - 2, "across the wrap");
        arm_wake_at(&w, u32::MAX - 5, u32::MAX - 3);
        assert_eq!(w.load(Ordering::Relaxed), u32::MAX - 3);
    }

    #[test]
    fn tables_are_disjoint_and_unique() {
        for (i, &(name, n)) in ALLOWED.iter().enumerate() {
            assert!(
                !REFUSED.iter().any(|&(_, r)| r == n),
                "{name} ({n}) is both allowed and refused"
            );
            assert!(
                !ALLOWED[i + 1..].iter().any(|&(m, r)| r == n || m == name),
                "{name} ({n}) twice in ALLOWED"
            );
            assert!(is_allowed(n));
            assert_eq!(allowed_nr(name), Some(n));
        }
        for &(name, n) in REFUSED {
            assert!(!is_allowed(n), "{name}");
            assert_eq!(allowed_nr(name), None);
        }
        assert!(!is_allowed(0xFF_FFFF));
    }
}
