//! The raw kernel ABI: a mirror of the UAPI header `linux/flexsc.h`, the
//! system call numbers and the two FlexSC system calls.
//!
//! Everything here is the contract with the kernel; the sizes and offsets
//! are checked at compile time. The shared structures ([`Entry`], [`Ctrl`])
//! consist of atomics only: the kernel (and, in principle, any thread of
//! the process) may write any word of the region at any time, so Rust code
//! never holds a plain reference to a non-atomic word of it.

use core::mem::{align_of, offset_of, size_of};
use core::sync::atomic::{AtomicI32, AtomicU32, AtomicU64};

/// ARM EABI number of `vaddr_to_paddr()` (rtflex patch 0001).
pub const NR_VADDR_TO_PADDR: u32 = 472;
/// ARM EABI number of `flexsc_register()`.
pub const NR_FLEXSC_REGISTER: u32 = 473;
/// ARM EABI number of `flexsc_wait()`.
pub const NR_FLEXSC_WAIT: u32 = 474;

/// `FLEXSC_CONFIG_VERSION`.
pub const CONFIG_VERSION: u32 = 1;
/// `FLEXSC_MAX_PAGES`: syscall pages per region.
pub const MAX_PAGES: u32 = 16;
/// `FLEXSC_MAX_WORKERS`: syscall threads per region.
pub const MAX_WORKERS: u32 = 32;
/// `FLEXSC_MAX_POLL_US`.
pub const MAX_POLL_US: u32 = 10_000;
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
    /// Must be 0.
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
}

/// `struct __kernel_timespec`: 64-bit seconds and nanoseconds, as taken by
/// `flexsc_wait()`, `clock_gettime64` and `clock_nanosleep_time64`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct KernelTimespec {
    /// Seconds.
    pub tv_sec: i64,
    /// Nanoseconds, `0..1_000_000_000`.
    pub tv_nsec: i64,
}

/// The kernel's ARM `struct stat64` (`arch/arm/include/uapi/asm/stat.h`),
/// filled by `fstat64` and `fstatat64`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stat64 {
    /// Device.
    pub st_dev: u64,
    /// Padding.
    pub pad0: [u8; 4],
    /// Low 32 bits of the inode number.
    pub st_ino_lo: u32,
    /// Mode.
    pub st_mode: u32,
    /// Links.
    pub st_nlink: u32,
    /// Owner.
    pub st_uid: u32,
    /// Group.
    pub st_gid: u32,
    /// Device (special files).
    pub st_rdev: u64,
    /// Padding.
    pub pad3: [u8; 4],
    /// Size in bytes.
    pub st_size: i64,
    /// Block size.
    pub st_blksize: u32,
    /// 512-byte blocks.
    pub st_blocks: u64,
    /// Access time, seconds.
    pub st_atime: u32,
    /// Access time, nanoseconds.
    pub st_atime_nsec: u32,
    /// Modification time, seconds.
    pub st_mtime: u32,
    /// Modification time, nanoseconds.
    pub st_mtime_nsec: u32,
    /// Status change time, seconds.
    pub st_ctime: u32,
    /// Status change time, nanoseconds.
    pub st_ctime_nsec: u32,
    /// Inode number.
    pub st_ino: u64,
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
    assert!(size_of::<Ctrl>() == 320);
    assert!(size_of::<Ctrl>() <= PAGE_SIZE);

    assert!(size_of::<KernelTimespec>() == 16);
    assert!(size_of::<Stat64>() == 104);
    assert!(offset_of!(Stat64, st_size) == 48);
    assert!(offset_of!(Stat64, st_blocks) == 64);
    assert!(offset_of!(Stat64, st_ino) == 96);
};

/// Length in bytes of a region with `npages` syscall pages (one control
/// page in front): what `munmap()` takes.
pub const fn region_len(npages: u32) -> usize {
    (1 + npages as usize) * PAGE_SIZE
}

/// True when this build talks the 32-bit ARM EABI the ABI is defined for.
pub const IS_ARM_EABI: bool = cfg!(all(
    target_arch = "arm",
    target_os = "linux",
    any(target_abi = "eabi", target_abi = "eabihf")
));

/// Result of a raw system call: the value, or the errno.
pub type RawResult = Result<usize, i32>;

/// A raw system call with the six words r0..r5, as `svc #0` takes them.
/// Returns the kernel's result, or `Err(errno)`.
///
/// # Safety
///
/// The call may do anything the system call `nr` does with the argument
/// words: the caller must make sure every pointer among them is valid for
/// what the call does with it (reads, writes, unmaps, ...).
pub unsafe fn syscall6(nr: u32, a: [u32; 6]) -> RawResult {
    if !IS_ARM_EABI {
        return Err(libc::ENOSYS);
    }
    // SAFETY: the caller vouches for the argument words; on ARM EABI
    // `syscall()` puts nr into r7 and the six words into r0..r5 unchanged
    // (each is one 32-bit register, the 64-bit pairs are already split).
    let r = unsafe {
        libc::syscall(
            nr as libc::c_long,
            a[0] as libc::c_long,
            a[1] as libc::c_long,
            a[2] as libc::c_long,
            a[3] as libc::c_long,
            a[4] as libc::c_long,
            a[5] as libc::c_long,
        )
    };
    if r == -1 {
        Err(errno())
    } else {
        Ok(r as usize)
    }
}

/// The calling thread's `errno`.
pub fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Decodes an entry's `ret` the way libc decodes a raw system call return:
/// -4095..=-1 is `-errno`, anything else is a value (addresses above 2 GiB
/// returned by `mmap2` are values, too).
pub fn decode_ret(ret: i32) -> RawResult {
    if (-4095..0).contains(&ret) {
        Err(-ret)
    } else {
        Ok(ret as u32 as usize)
    }
}

/// `flexsc_register(cfg, size)`: on success the kernel wrote `cfg.addr`.
/// `Err(errno)` otherwise (`ENOSYS` on a kernel without FlexSC, and always
/// on other architectures).
///
/// A successful call maps a region into the process at an address of the
/// kernel's choosing and starts syscall threads; that cannot invalidate any
/// existing memory, hence a safe function. The caller owns the region: it
/// stays mapped (and its threads running) until it is `munmap()`ed.
pub fn flexsc_register(cfg: &mut Config, size: u32) -> Result<(), i32> {
    // SAFETY: the only pointer is `cfg`, a live, exclusive `Config` of
    // `size_of::<Config>()` bytes; the kernel reads at most `size` bytes of
    // it (callers passing a larger size get EINVAL or EFAULT, never a write
    // beyond the `Config`: the kernel writes only `addr`).
    let r = unsafe {
        syscall6(
            NR_FLEXSC_REGISTER,
            [cfg as *mut Config as usize as u32, size, 0, 0, 0, 0],
        )
    };
    r.map(|_| ())
}

/// `flexsc_wait(addr, min_complete, timeout)`: kicks sleeping syscall
/// threads, then sleeps until at least `min_complete` entries are DONE (or
/// the relative `timeout` passes: `ETIMEDOUT`). Returns the number of DONE
/// entries.
///
/// The kernel only reads `timeout` and only looks at `addr` to find the
/// caller's region (`EINVAL` if it is not the start of one): safe.
pub fn flexsc_wait(
    addr: usize,
    min_complete: u32,
    timeout: Option<&KernelTimespec>,
) -> Result<u32, i32> {
    let ts = timeout.map_or(0, |t| t as *const KernelTimespec as usize);
    // SAFETY: `addr` is passed by value and only compared by the kernel;
    // `ts` is null or a live `KernelTimespec` the kernel only reads.
    let r = unsafe {
        syscall6(
            NR_FLEXSC_WAIT,
            [addr as u32, min_complete, ts as u32, 0, 0, 0],
        )
    };
    r.map(|n| n as u32)
}

/// `FUTEX_WAIT_PRIVATE` on `word` while it holds `expected`, for at most
/// `timeout` (relative). Returns `Err(errno)`: `EAGAIN` (value changed),
/// `ETIMEDOUT`, `EINTR`.
pub fn futex_wait(
    word: &AtomicU32,
    expected: u32,
    timeout: Option<std::time::Duration>,
) -> Result<(), i32> {
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: d.as_secs().min(i32::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    });
    let tsp = ts
        .as_ref()
        .map_or(core::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a live, aligned 32-bit atomic (the futex word); the
    // timeout pointer is null or a live `timespec` of this libc, which is
    // the layout SYS_futex takes; FUTEX_WAIT only reads both.
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            tsp,
            core::ptr::null::<u32>(),
            0u32,
        )
    };
    if r == -1 {
        Err(errno())
    } else {
        Ok(())
    }
}

/// `FUTEX_WAKE_PRIVATE`: wakes every thread waiting on `word`.
pub fn futex_wake_all(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE only uses the address of `word` as a key; no
    // memory is read or written through it.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            i32::MAX,
            core::ptr::null::<u32>(),
            core::ptr::null::<u32>(),
            0u32,
        )
    };
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
}
