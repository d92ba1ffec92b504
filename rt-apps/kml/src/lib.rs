//! kml: the user side of rtflex's Kernel Mode Linux on 32-bit ARM.
//!
//! With `CONFIG_KERNEL_MODE_LINUX`, a static program directly in `/trusted`
//! (root owned, not writable by group or others, run by a member of the
//! directory's group or a holder of CAP_SYS_ADMIN, without ptrace,
//! no_new_privs, chroot or user namespace) starts in the privileged SYS
//! mode. The kernel
//! maps a `[kml]` page into it and passes its address in the auxiliary vector
//! entry `AT_KML` ([`rtflex_uapi::kml::AT_KML`]): calling that page makes a system call without an `svc`
//! exception, with the same semantics (signals, restart, seccomp, tracing).
//!
//! This crate finds the page and falls back to `svc` when it is absent (any
//! other program, any other kernel), so one binary runs everywhere:
//!
//! ```no_run
//! let pid = kml::getpid(); // through the trampoline in /trusted, svc elsewhere
//! assert_eq!(pid, std::process::id() as i32);
//! ```
//!
//! [`Via`] selects the path explicitly (benchmarks, tests); [`mode`] tells
//! which processor mode the program runs in.
//!
//! Trusted programs must be linked statically (`RUSTFLAGS="-C
//! target-feature=+crt-static"`, as `scripts/build-rt-apps.sh` does): the
//! kernel refuses one with an ELF interpreter, whose dynamic loader and
//! libraries would run with kernel privilege too.

#![cfg_attr(not(target_arch = "arm"), allow(dead_code, unused_variables))]

use rtflex_uapi::kml::AT_KML;
use rtflex_uapi::nr;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bits of the ARM program status register (the CPSR, and its saved copy in
/// a signal frame or a tracer's `user_regs`) that decide the execution state
/// a trusted program runs in and enters the kernel with, from
/// `arch/arm/include/uapi/asm/ptrace.h`. The kernel returns to SYS mode only
/// in Thumb state or in ARM state without IT and J bits (`sigreturn()` and
/// `PTRACE_SETREGS` refuse the rest: the `[kml]` entry would run kernel code
/// in that state), and its `[kml]` entry switches to little-endian data
/// accesses whatever [`psr::E_BIT`] the program has set, and back after.
pub mod psr {
    /// `MODE_MASK`: the processor mode, `CPSR[4:0]` ([`Mode`](crate::Mode)).
    pub const MODE_MASK: u32 = 0x1f;
    /// `PSR_T_BIT`: Thumb state.
    pub const T_BIT: u32 = 0x20;
    /// `PSR_E_BIT`: big-endian data accesses (`setend be`).
    pub const E_BIT: u32 = 0x200;
    /// `PSR_J_BIT`: Jazelle state (with T clear).
    pub const J_BIT: u32 = 0x0100_0000;
    /// `PSR_IT_MASK`: the If-Then state of a Thumb IT block, `IT[7:0]` in
    /// `CPSR[15:10]` and `CPSR[26:25]`.
    pub const IT_MASK: u32 = 0x0600_fc00;
    /// `PSR_f` without the IT and J bits: the condition flags N, Z, C, V
    /// and Q, which a system call preserves.
    pub const FLAGS: u32 = 0xf800_0000;
    /// `CPSR[19:16]`, the SIMD greater-or-equal flags `GE[3:0]`, which a
    /// system call preserves too.
    pub const GE_MASK: u32 = 0x000f_0000;
}

/// ARM processor modes, `CPSR[4:0]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Unprivileged user mode (0x10): every ordinary process.
    User,
    /// System mode (0x1f): a Kernel Mode Linux program.
    System,
    /// Anything else (never expected in a process).
    Other(u32),
}

impl Mode {
    /// The mode of a `CPSR[4:0]` value.
    pub fn from_bits(bits: u32) -> Mode {
        match bits & psr::MODE_MASK {
            0x10 => Mode::User,
            0x1f => Mode::System,
            other => Mode::Other(other),
        }
    }

    /// Short name: `usr`, `sys` or the hexadecimal mode bits.
    pub fn name(self) -> String {
        match self {
            Mode::User => "usr".into(),
            Mode::System => "sys".into(),
            Mode::Other(b) => format!("{b:#x}"),
        }
    }
}

/// The CPSR as the program sees it (`mrs`), or `None` off ARM.
pub fn cpsr() -> Option<u32> {
    #[cfg(target_arch = "arm")]
    {
        let v: u32;
        // SAFETY: `mrs` only reads the status register into `v`; it touches
        // no memory and is allowed in every mode (USR reads its own fields).
        unsafe {
            core::arch::asm!("mrs {0}, cpsr", out(reg) v, options(nomem, nostack, preserves_flags))
        };
        Some(v)
    }
    #[cfg(not(target_arch = "arm"))]
    {
        None
    }
}

/// The processor mode of the calling thread, or `None` off ARM.
pub fn mode() -> Option<Mode> {
    cpsr().map(Mode::from_bits)
}

const UNKNOWN: usize = usize::MAX;
static ENTRY: AtomicUsize = AtomicUsize::new(UNKNOWN);

/// Address of the `[kml]` page, or `None` when the kernel did not give this
/// program one (not trusted, or a kernel without Kernel Mode Linux).
pub fn entry() -> Option<usize> {
    let mut e = ENTRY.load(Ordering::Relaxed);
    if e == UNKNOWN {
        // SAFETY: getauxval() reads the process's auxiliary vector; it has
        // no preconditions and returns 0 for absent entries.
        e = unsafe { libc::getauxval(AT_KML as libc::c_ulong) } as usize;
        if !cfg!(target_arch = "arm") {
            e = 0;
        }
        ENTRY.store(e, Ordering::Relaxed);
    }
    (e != 0).then_some(e)
}

/// True when system calls go through the trampoline.
pub fn available() -> bool {
    entry().is_some()
}

/// How a system call enters the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// The trampoline when the program has one, else `svc`.
    Auto,
    /// Always the `svc` exception.
    Svc,
    /// The trampoline only; [`syscall`] returns `-ENOSYS` without one.
    Trampoline,
}

/// A raw system call: `nr` with up to six arguments, through `via`.
/// Returns the kernel's result: a value, or `-errno` (like the kernel's
/// return register, not like libc's `syscall()`).
///
/// # Safety
///
/// The arguments must be valid for the call, exactly as for `libc::syscall`
/// (pointers to memory of the right size and lifetime, and so on).
pub unsafe fn syscall(via: Via, nr: u32, args: [usize; 6]) -> isize {
    let target = match via {
        Via::Svc => None,
        Via::Auto => entry(),
        Via::Trampoline => match entry() {
            Some(e) => Some(e),
            None => return -(libc::ENOSYS as isize),
        },
    };
    // SAFETY: the caller guarantees the arguments; `target` is the [kml]
    // page the kernel mapped (checked in `raw`).
    unsafe { raw(target, nr, args) }
}

#[cfg(target_arch = "arm")]
unsafe fn raw(target: Option<usize>, nr: u32, args: [usize; 6]) -> isize {
    let ret: usize;
    match target {
        // SAFETY: the [kml] page is code the kernel mapped into this process
        // for exactly this use: it takes r0-r5 and r7 like `svc #0`, returns
        // the result in r0, and clobbers only ip (r12), lr (the blx) and
        // the flags; the kernel preserves every other register. r7 is not
        // the frame pointer in ARM state (r11 is). The caller vouches for
        // the arguments.
        Some(page) => unsafe {
            core::arch::asm!(
                "blx {page}",
                page = in(reg) page,
                inlateout("r0") args[0] => ret,
                in("r1") args[1],
                in("r2") args[2],
                in("r3") args[3],
                in("r4") args[4],
                in("r5") args[5],
                in("r7") nr,
                out("r12") _,
                out("lr") _,
                options(nostack),
            )
        },
        // SAFETY: `svc #0` with the EABI convention (number in r7, r0-r5
        // arguments, result in r0); the kernel preserves all other
        // registers. The caller vouches for the arguments.
        None => unsafe {
            core::arch::asm!(
                "svc #0",
                inlateout("r0") args[0] => ret,
                in("r1") args[1],
                in("r2") args[2],
                in("r3") args[3],
                in("r4") args[4],
                in("r5") args[5],
                in("r7") nr,
                options(nostack),
            )
        },
    }
    ret as isize
}

#[cfg(not(target_arch = "arm"))]
unsafe fn raw(_target: Option<usize>, nr: u32, args: [usize; 6]) -> isize {
    // SAFETY: forwarded from the caller of `syscall`.
    match unsafe { rt_utils::sys::syscall6(nr, args) } {
        Ok(v) => v as isize,
        Err(errno) => -(errno as isize),
    }
}

fn result(r: isize) -> io::Result<usize> {
    rt_utils::sys::decode_ret(r).map_err(io::Error::from_raw_os_error)
}

/// `getpid()` through the trampoline when available.
pub fn getpid() -> i32 {
    getpid_via(Via::Auto)
}

/// `getpid()` through `via` (with [`Via::Trampoline`] and no trampoline:
/// `-ENOSYS`).
pub fn getpid_via(via: Via) -> i32 {
    // SAFETY: getpid takes no arguments.
    unsafe { syscall(via, libc::SYS_getpid as u32, [0; 6]) as i32 }
}

/// `clock_gettime64(clock)` (the system call, never the vDSO).
pub fn clock_gettime_via(via: Via, clock: libc::clockid_t) -> io::Result<(i64, i64)> {
    let mut ts = [0i64; 2]; // struct __kernel_timespec: tv_sec, tv_nsec
                            // SAFETY: `ts` is a writable, properly aligned __kernel_timespec.
    let r = unsafe {
        syscall(
            via,
            nr::CLOCK_GETTIME64,
            [clock as usize, ts.as_mut_ptr() as usize, 0, 0, 0, 0],
        )
    };
    result(r).map(|_| (ts[0], ts[1]))
}

/// `write(fd, buf)` through `via`.
pub fn write_via(via: Via, fd: i32, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is readable for its length for the whole call.
    let r = unsafe {
        syscall(
            via,
            libc::SYS_write as u32,
            [fd as usize, buf.as_ptr() as usize, buf.len(), 0, 0, 0],
        )
    };
    result(r)
}

/// `read(fd, buf)` through `via`.
pub fn read_via(via: Via, fd: i32, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is writable for its length for the whole call.
    let r = unsafe {
        syscall(
            via,
            libc::SYS_read as u32,
            [fd as usize, buf.as_mut_ptr() as usize, buf.len(), 0, 0, 0],
        )
    };
    result(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert_eq!(Mode::from_bits(0x6000_0010), Mode::User);
        assert_eq!(Mode::from_bits(0x1f), Mode::System);
        assert_eq!(Mode::from_bits(0x13), Mode::Other(0x13));
        assert_eq!(Mode::System.name(), "sys");
    }

    #[test]
    fn result_decoding() {
        assert_eq!(result(5).unwrap(), 5);
        assert_eq!(
            result(-(libc::EBADF as isize)).unwrap_err().raw_os_error(),
            Some(libc::EBADF)
        );
        // Large "negative" values that are not errors (addresses) pass.
        assert_eq!(result(-5000).unwrap(), (-5000isize) as usize);
    }
}
