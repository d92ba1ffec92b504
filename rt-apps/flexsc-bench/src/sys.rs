//! The libc calls flexsc-bench needs, each a thin wrapper whose `unsafe`
//! block carries a `// SAFETY:` note.

use std::io;

/// `syscall(nr, a0..a5)`: the EABI register image `r7 = nr`, `r0..r5 =
/// args`, exactly what a FlexSC entry carries. Returns the raw result
/// (`-errno` on failure, like the kernel; glibc's `-1`/`errno` is undone).
///
/// # Safety
/// `nr` with `args` must be a call that only accesses memory that is valid
/// for it (e.g. a `write` whose buffer pointer and length describe a live
/// buffer), and must not change the process in ways Rust relies on (no
/// `munmap` of live memory, no `exit`, ...).
#[inline]
pub unsafe fn syscall6(nr: u32, args: [u32; 6]) -> i64 {
    // SAFETY: the caller guarantees that the call and its arguments are
    // valid; the arguments are passed as register-sized integers.
    let r = unsafe {
        libc::syscall(
            nr as libc::c_long,
            args[0] as libc::c_ulong,
            args[1] as libc::c_ulong,
            args[2] as libc::c_ulong,
            args[3] as libc::c_ulong,
            args[4] as libc::c_ulong,
            args[5] as libc::c_ulong,
        )
    };
    if r == -1 {
        -(io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO) as i64)
    } else {
        r as i64
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds.
#[inline]
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec owned by this frame.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(rc, 0, "CLOCK_MONOTONIC is always available on Linux");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// `getpid()`.
pub fn getpid() -> i64 {
    // SAFETY: getpid takes no arguments and cannot fail.
    unsafe { libc::getpid() as i64 }
}

/// CPUs in the calling thread's affinity mask, sorted.
pub fn allowed_cpus() -> io::Result<Vec<usize>> {
    // SAFETY: cpu_set_t is a plain bit array for which all-zero is valid.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable cpu_set_t of the size passed.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let capacity = 8 * std::mem::size_of::<libc::cpu_set_t>();
    Ok((0..capacity)
        // SAFETY: every index is below the set's capacity in bits.
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect())
}

/// Pins the calling thread to `cpu`.
pub fn pin_to(cpu: usize) -> io::Result<()> {
    if cpu >= 8 * std::mem::size_of::<libc::cpu_set_t>() {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: cpu_set_t is a plain bit array for which all-zero is valid.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` was checked to be below the set's capacity in bits.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is the
    // calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Online CPUs (`_SC_NPROCESSORS_ONLN`).
pub fn online_cpus() -> usize {
    // SAFETY: sysconf takes an integer name and touches no memory of ours.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    n.max(1) as usize
}

/// The kernel release (`uname -r`).
pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_syscalls_return_kernel_style_results() {
        // SAFETY: getpid reads no memory.
        let pid = unsafe { syscall6(libc::SYS_getpid as u32, [0; 6]) };
        assert_eq!(pid, getpid());
        // SAFETY: close(-1) touches no memory and fails with EBADF.
        let r = unsafe { syscall6(libc::SYS_close as u32, [u32::MAX, 0, 0, 0, 0, 0]) };
        assert_eq!(r, -(libc::EBADF as i64));
        let a = now_ns();
        let b = now_ns();
        assert!(b >= a);
        let cpus = allowed_cpus().unwrap();
        assert!(!cpus.is_empty());
        pin_to(cpus[0]).unwrap();
        assert!(pin_to(1 << 20).is_err());
        assert!(online_cpus() >= 1);
    }
}
