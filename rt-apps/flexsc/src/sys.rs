//! The two FlexSC system calls, and the direct call of an entry's words.
//! The ABI itself (structures, constants, numbers) is `rtflex_uapi`.

use rt_utils::sys::{RawResult, IS_ARM_EABI};
use rtflex_uapi::flexsc::Config;
use rtflex_uapi::{nr, KernelTimespec};

/// System call `nr` with the six words of a FlexSC entry (r0..r5), run
/// directly in the calling thread: what a syscall thread runs for the
/// entry. `Err(ENOSYS)` off ARM EABI, where the numbers mean other calls.
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
    // SAFETY: the caller vouches for the argument words; on ARM EABI each
    // word is one 32-bit register, exactly what the entry carries.
    unsafe { rt_utils::sys::syscall6(nr, a.map(|w| w as usize)) }
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
            nr::FLEXSC_REGISTER,
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
            nr::FLEXSC_WAIT,
            [addr as u32, min_complete, ts as u32, 0, 0, 0],
        )
    };
    r.map(|n| n as u32)
}
