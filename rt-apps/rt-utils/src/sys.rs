//! Raw system calls and the small calls every tool needs.

use core::sync::atomic::AtomicU32;
use std::io;
use std::time::Duration;

/// True when this build talks the 32-bit ARM EABI of the boards (the ABI
/// of rtflex's system calls and of FlexSC entries).
pub const IS_ARM_EABI: bool = cfg!(all(
    target_arch = "arm",
    target_os = "linux",
    any(target_abi = "eabi", target_abi = "eabihf")
));

/// Result of a raw system call: the value, or the errno.
pub type RawResult = Result<usize, i32>;

/// A raw system call `nr` of the running architecture with six argument
/// words, as `syscall(2)` takes them (on ARM EABI: r7 and r0..r5, the
/// 64-bit pairs already split into their registers). Returns the kernel's
/// result, or `Err(errno)`.
///
/// # Safety
///
/// The call may do anything system call `nr` does with the argument words:
/// the caller must make sure every pointer among them is valid for what the
/// call does with it (reads, writes, unmaps, ...) and that the call does
/// not change the process in ways Rust relies on (no `munmap` of live
/// memory, no `exit` with destructors pending, ...).
#[inline]
pub unsafe fn syscall6(nr: u32, args: [usize; 6]) -> RawResult {
    // SAFETY: the caller vouches for the call and its argument words;
    // `syscall()` passes the number and the six register-sized words to
    // the kernel unchanged.
    let r = unsafe {
        libc::syscall(
            nr as libc::c_long,
            args[0],
            args[1],
            args[2],
            args[3],
            args[4],
            args[5],
        )
    };
    if r == -1 {
        Err(errno())
    } else {
        Ok(r as usize)
    }
}

/// Decodes a kernel return register the way libc does: -4095..=-1 is
/// `-errno`, anything else is a value (addresses above 2 GiB returned by
/// `mmap2` on 32-bit ARM are values, too).
pub fn decode_ret(ret: isize) -> RawResult {
    if (-4095..0).contains(&ret) {
        Err(-ret as i32)
    } else {
        Ok(ret as usize)
    }
}

/// The calling thread's `errno`.
pub fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Kernel thread id of the calling thread.
pub fn gettid() -> i32 {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { libc::gettid() }
}

/// `CLOCK_MONOTONIC` in nanoseconds.
#[inline]
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec owned by this frame; the
    // call writes only into it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(rc, 0, "CLOCK_MONOTONIC is always available on Linux");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The calling thread's own CPU time (`CLOCK_THREAD_CPUTIME_ID`) in
/// nanoseconds: user and system time of this thread only, not of the
/// threads (kernel or user) it hands work to. Under QEMU's `-icount` on
/// one vCPU this is the thread's exact path length (8 ns per instruction
/// with `shift=3`); interrupt time is charged to the interrupted thread
/// when the kernel has no `IRQ_TIME_ACCOUNTING`.
#[inline]
pub fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec owned by this frame; the
    // call writes only into it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(
        rc, 0,
        "CLOCK_THREAD_CPUTIME_ID is always available on Linux"
    );
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// `FUTEX_WAIT_PRIVATE` on `word` while it holds `expected`, for at most
/// `timeout` (relative). Returns `Err(errno)`: `EAGAIN` (value changed),
/// `ETIMEDOUT`, `EINTR`.
pub fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> Result<(), i32> {
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
    use core::sync::atomic::Ordering;

    #[test]
    fn raw_syscalls_return_values_and_errnos() {
        // SAFETY: getpid reads no memory.
        let pid = unsafe { syscall6(libc::SYS_getpid as u32, [0; 6]) };
        assert_eq!(pid, Ok(std::process::id() as usize));
        // SAFETY: close(-1) touches no memory and fails with EBADF.
        let r = unsafe { syscall6(libc::SYS_close as u32, [usize::MAX, 0, 0, 0, 0, 0]) };
        assert_eq!(r, Err(libc::EBADF));
        assert_eq!(errno(), libc::EBADF);
        assert!(gettid() > 0);
        let a = now_ns();
        assert!(now_ns() >= a);
    }

    #[test]
    fn thread_cpu_time_counts_this_threads_work_not_its_sleep() {
        // Busy work advances it; a sleep advances the wall clock but
        // hardly the thread's CPU time. The bounds are loose on purpose
        // (a loaded host): only the direction is asserted. The wall-clock
        // interval encloses the CPU-time one (read first, read last): CPU
        // spent between the two first reads (under qemu-user, translating
        // the clock code on its first call) must not count for the CPU
        // side only.
        let w0 = now_ns();
        let c0 = thread_cpu_ns();
        let mut x = 0u64;
        while thread_cpu_ns() - c0 < 5_000_000 {
            x = core::hint::black_box(x.wrapping_add(1));
        }
        assert!(
            now_ns() - w0 >= 5_000_000,
            "CPU time ran ahead of the wall clock"
        );
        let c1 = thread_cpu_ns();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let slept = thread_cpu_ns() - c1;
        assert!(
            slept < 25_000_000,
            "a 50 ms sleep cost {slept} ns of CPU time"
        );
        // Another thread's work is not ours.
        let c2 = thread_cpu_ns();
        std::thread::spawn(|| {
            let t = thread_cpu_ns();
            while thread_cpu_ns() - t < 30_000_000 {}
        })
        .join()
        .unwrap();
        assert!(thread_cpu_ns() - c2 < 25_000_000);
    }

    #[test]
    fn return_registers_decode_like_libc() {
        assert_eq!(decode_ret(5), Ok(5));
        assert_eq!(decode_ret(-(libc::EBADF as isize)), Err(libc::EBADF));
        assert_eq!(decode_ret(-4095), Err(4095));
        // Large "negative" values that are not errors (addresses) pass.
        assert_eq!(decode_ret(-4096), Ok((-4096isize) as usize));
    }

    #[test]
    fn futex_wait_sees_a_changed_value_and_times_out() {
        let w = AtomicU32::new(1);
        assert_eq!(futex_wait(&w, 2, None), Err(libc::EAGAIN));
        let t0 = now_ns();
        assert_eq!(
            futex_wait(&w, 1, Some(Duration::from_millis(20))),
            Err(libc::ETIMEDOUT)
        );
        assert!(now_ns() - t0 >= 20_000_000);
        w.store(2, Ordering::SeqCst);
        futex_wake_all(&w);
    }
}
