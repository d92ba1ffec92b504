//! vtop: translate user virtual addresses into physical addresses with the
//! rtflex `vaddr_to_paddr()` system call (ARM EABI number 472, added by
//! `kernel/patches/linux/0001-ARM-add-the-vaddr_to_paddr-system-call.patch`).
//!
//! * [`phys_addr`]: the safe wrapper, returning the physical address of one
//!   byte (page frame *and* offset within the page) or a typed [`Error`];
//!   [`vaddr_to_paddr`] is the same call with the raw arguments;
//! * [`pagemap`]: the same question answered by `/proc/<pid>/pagemap`, an
//!   independent oracle for cross-checks;
//! * [`resident`]: "is every page of this buffer resident?", the real-time
//!   use case (after `mlockall()` or `mlock()`);
//! * [`cli`]: the `vtop` command line tool.
//!
//! The call needs `CAP_SYS_ADMIN` (in practice: root), does not fault pages
//! in, and its answer is a snapshot. It exists only on 32-bit ARM EABI
//! kernels with the rtflex patch: on other architectures the wrapper returns
//! [`Error::Unsupported`] without making a system call, and a kernel without
//! the call answers `ENOSYS`, also reported as [`Error::Unsupported`].

use std::fmt;
use std::io;

pub mod cli;
pub mod pagemap;
pub mod resident;

pub use pagemap::{pagemap_entry, pagemap_phys_addr, PagemapEntry};
pub use resident::{check_resident, Gap, Residency};

/// The system call number of `vaddr_to_paddr()` for this build's target:
/// `Some(472)` on 32-bit ARM EABI (every Rust ARM Linux target), `None`
/// elsewhere (the call is only wired up on ARM).
///
/// The number is rtflex's own: in the kernel we pin (Linux 7.2) the ARM
/// table ends at 471, so 472 is either `vaddr_to_paddr()` (rtflex kernels)
/// or unassigned (`ENOSYS`).
#[cfg(all(
    target_arch = "arm",
    any(target_os = "linux", target_os = "android"),
    any(target_abi = "eabi", target_abi = "eabihf")
))]
pub const SYSCALL_NUMBER: Option<libc::c_long> =
    Some(rtflex_uapi::nr::VADDR_TO_PADDR as libc::c_long);
/// The system call number of `vaddr_to_paddr()` for this build's target:
/// `None`, the call is only wired up on 32-bit ARM EABI.
#[cfg(not(all(
    target_arch = "arm",
    any(target_os = "linux", target_os = "android"),
    any(target_abi = "eabi", target_abi = "eabihf")
)))]
pub const SYSCALL_NUMBER: Option<libc::c_long> = None;

/// Whose address space to look at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Process {
    /// The calling process (pid 0 for the system call, `/proc/self`).
    Current,
    /// A process or thread ID in the caller's PID namespace.
    Pid(libc::pid_t),
}

impl Process {
    /// The `pid` argument of the system call (0 for the caller).
    pub fn raw(self) -> libc::pid_t {
        match self {
            Process::Current => 0,
            Process::Pid(pid) => pid,
        }
    }

    /// The process's directory in `/proc`, e.g. `/proc/self`, `/proc/1234`.
    pub fn proc_dir(self) -> String {
        match self {
            Process::Current => "/proc/self".to_string(),
            Process::Pid(pid) => format!("/proc/{pid}"),
        }
    }
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Process::Current => f.write_str("self"),
            Process::Pid(pid) => write!(f, "{pid}"),
        }
    }
}

/// Why an address could not be translated: one variant per `errno` of the
/// system call's contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Error {
    /// `ENOENT`: the address is inside a mapping, but no page is present
    /// there: never touched, swapped out, or under migration. The call
    /// does not fault pages in.
    NotPresent,
    /// `EFAULT`: no mapping (VMA) contains the address. (The kernel also
    /// answers `EFAULT` for an unwritable result pointer, which the safe
    /// wrappers never pass.)
    NotMapped,
    /// `EINVAL` with valid `pid` and `flags`: the address is at or above
    /// `TASK_SIZE`, a kernel address (including the vectors page at
    /// 0xffff0000). Only user addresses are translated.
    KernelAddress,
    /// `EINVAL` caused by a negative `pid` or non-zero `flags` (only
    /// [`vaddr_to_paddr`] can pass those).
    InvalidArgument,
    /// `EPERM`: the caller lacks `CAP_SYS_ADMIN`, needed even for its own
    /// memory (physical addresses help rowhammer-style attacks).
    PermissionDenied,
    /// `EACCES`: the ptrace rules (`PTRACE_MODE_READ`, Yama, LSMs) deny
    /// access to the target process. Unlike `/proc/<pid>/pagemap`, the call
    /// does not let `CAP_SYS_ADMIN` stand in for ptrace access.
    NoPtraceAccess,
    /// `ESRCH`: no such process, or it has no user address space (a kernel
    /// thread, a zombie, an exiting process).
    NoSuchProcess,
    /// `EINTR`: a fatal signal arrived while the kernel waited for a lock.
    Interrupted,
    /// `ENOSYS`, or a non-ARM build: the running kernel has no
    /// `vaddr_to_paddr()`.
    Unsupported,
    /// Any other `errno` (not part of the contract).
    Other(i32),
}

impl Error {
    /// The error for an `errno` returned by the system call. `EINVAL` maps
    /// to [`Error::KernelAddress`], the only `EINVAL` the safe wrapper can
    /// get.
    pub fn from_errno(errno: i32) -> Error {
        match errno {
            libc::ENOENT => Error::NotPresent,
            libc::EFAULT => Error::NotMapped,
            libc::EINVAL => Error::KernelAddress,
            libc::EPERM => Error::PermissionDenied,
            libc::EACCES => Error::NoPtraceAccess,
            libc::ESRCH => Error::NoSuchProcess,
            libc::EINTR => Error::Interrupted,
            libc::ENOSYS => Error::Unsupported,
            e => Error::Other(e),
        }
    }

    /// The `errno` value this error stands for.
    pub fn errno(self) -> i32 {
        match self {
            Error::NotPresent => libc::ENOENT,
            Error::NotMapped => libc::EFAULT,
            Error::KernelAddress | Error::InvalidArgument => libc::EINVAL,
            Error::PermissionDenied => libc::EPERM,
            Error::NoPtraceAccess => libc::EACCES,
            Error::NoSuchProcess => libc::ESRCH,
            Error::Interrupted => libc::EINTR,
            Error::Unsupported => libc::ENOSYS,
            Error::Other(e) => e,
        }
    }

    /// Whether the error is about the address (this page is not resident,
    /// another may be) rather than about the caller, the process or the
    /// kernel (then every address fails the same way).
    pub fn is_per_address(self) -> bool {
        matches!(
            self,
            Error::NotPresent | Error::NotMapped | Error::KernelAddress
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotPresent => f.write_str("not present: never touched or swapped out"),
            Error::NotMapped => f.write_str("not mapped: no mapping contains this address"),
            Error::KernelAddress => {
                f.write_str("kernel address: only user-space addresses can be translated")
            }
            Error::InvalidArgument => {
                f.write_str("invalid argument: negative pid or non-zero flags")
            }
            Error::PermissionDenied => {
                f.write_str("permission denied: needs CAP_SYS_ADMIN (run as root)")
            }
            Error::NoPtraceAccess => f.write_str("no ptrace access to the process"),
            Error::NoSuchProcess => {
                f.write_str("no such process (or it has no address space: kernel thread, exiting)")
            }
            Error::Interrupted => f.write_str("interrupted by a fatal signal"),
            Error::Unsupported => {
                f.write_str("kernel lacks vaddr_to_paddr() (not an rtflex kernel?)")
            }
            Error::Other(e) => write!(
                f,
                "unexpected error from vaddr_to_paddr(): {}",
                io::Error::from_raw_os_error(*e)
            ),
        }
    }
}

impl std::error::Error for Error {}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        let kind = match e {
            Error::NotPresent | Error::NotMapped | Error::NoSuchProcess => io::ErrorKind::NotFound,
            Error::KernelAddress | Error::InvalidArgument => io::ErrorKind::InvalidInput,
            Error::PermissionDenied | Error::NoPtraceAccess => io::ErrorKind::PermissionDenied,
            Error::Interrupted => io::ErrorKind::Interrupted,
            Error::Unsupported => io::ErrorKind::Unsupported,
            Error::Other(_) => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}

/// The physical address that `addr` in `process` is mapped to right now,
/// including the offset of `addr` within its page. 64 bits wide: with LPAE,
/// ARM physical addresses reach 40 bits.
///
/// The page is not faulted in ([`Error::NotPresent`] for a page never
/// touched), the caller needs `CAP_SYS_ADMIN` (and ptrace read access to
/// another process), and the answer is a snapshot: reclaim, migration,
/// compaction, KSM or copy-on-write may change it right after. A negative
/// pid names no process: [`Error::NoSuchProcess`].
///
/// ```no_run
/// let x = 42u32;
/// match vtop::phys_addr(vtop::Process::Current, &x as *const u32 as usize) {
///     Ok(pa) => println!("x is at physical {pa:#x}"),
///     Err(e) => println!("no answer: {e}"),
/// }
/// ```
pub fn phys_addr(process: Process, addr: usize) -> Result<u64, Error> {
    match process {
        Process::Pid(pid) if pid < 0 => Err(Error::NoSuchProcess),
        p => vaddr_to_paddr(p.raw(), addr, 0),
    }
}

/// [`phys_addr`] of a pointer in the calling process.
pub fn phys_addr_of<T: ?Sized>(ptr: *const T) -> Result<u64, Error> {
    phys_addr(Process::Current, ptr.cast::<u8>() as usize)
}

/// The system call with its raw arguments: `pid` 0 is the caller, `flags`
/// must be 0 (reserved). An `EINVAL` is reported as
/// [`Error::InvalidArgument`] when `pid` or `flags` explain it, else as
/// [`Error::KernelAddress`]. Use [`phys_addr`] unless you test the kernel.
pub fn vaddr_to_paddr(pid: libc::pid_t, addr: usize, flags: u32) -> Result<u64, Error> {
    let Some(nr) = SYSCALL_NUMBER else {
        return Err(Error::Unsupported);
    };
    let mut paddr: u64 = 0;
    // SAFETY: the only pointer we pass is `&mut paddr`: a live, aligned,
    // exclusively borrowed u64 on our stack, valid for the whole call. The
    // other three arguments are plain integers the kernel only compares and
    // uses to walk page tables; it reads none of our memory through them.
    // vaddr_to_paddr() (mm/vaddr_to_paddr.c) writes exactly 8 bytes,
    // `put_user((u64)phys, paddr)`, to that pointer, and only on success. On
    // a kernel without the call, 472 is unassigned (the ARM EABI table of
    // the pinned Linux 7.2 ends at 471) and the kernel returns ENOSYS
    // without touching memory (as qemu-user does). The argument types match
    // the registers the kernel reads: all four are 32-bit words on ARM
    // (pid_t, unsigned long, pointer, unsigned int), passed as such through
    // the variadic syscall(3).
    let ret = unsafe {
        libc::syscall(
            nr,
            pid as libc::c_long,
            addr as libc::c_ulong,
            &mut paddr as *mut u64,
            flags as libc::c_uint,
        )
    };
    if ret == 0 {
        return Ok(paddr);
    }
    let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
    Err(match Error::from_errno(errno) {
        Error::KernelAddress if pid < 0 || flags != 0 => Error::InvalidArgument,
        e => e,
    })
}

/// The page size (`sysconf(_SC_PAGESIZE)`), a power of two.
pub fn page_size() -> usize {
    // SAFETY: sysconf() takes an integer name and touches no caller memory.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    // Linux always knows its page size; keep a sane value if it ever did not.
    if n > 0 && (n as usize).is_power_of_two() {
        n as usize
    } else {
        4096
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &[(i32, Error)] = &[
        (libc::ENOENT, Error::NotPresent),
        (libc::EFAULT, Error::NotMapped),
        (libc::EINVAL, Error::KernelAddress),
        (libc::EPERM, Error::PermissionDenied),
        (libc::EACCES, Error::NoPtraceAccess),
        (libc::ESRCH, Error::NoSuchProcess),
        (libc::EINTR, Error::Interrupted),
        (libc::ENOSYS, Error::Unsupported),
    ];

    #[test]
    fn every_errno_of_the_contract_has_its_variant() {
        for &(errno, want) in TABLE {
            assert_eq!(Error::from_errno(errno), want, "errno {errno}");
            assert_eq!(want.errno(), errno);
        }
        assert_eq!(Error::from_errno(libc::ENOMEM), Error::Other(libc::ENOMEM));
        assert_eq!(Error::Other(libc::ENOMEM).errno(), libc::ENOMEM);
        assert_eq!(Error::InvalidArgument.errno(), libc::EINVAL);
    }

    #[test]
    fn messages_say_what_to_do() {
        let text = |e: Error| e.to_string();
        assert_eq!(
            text(Error::NotPresent),
            "not present: never touched or swapped out"
        );
        assert!(text(Error::NotMapped).starts_with("not mapped"));
        assert!(text(Error::KernelAddress).starts_with("kernel address"));
        assert!(text(Error::PermissionDenied).contains("needs CAP_SYS_ADMIN"));
        assert!(text(Error::NoPtraceAccess).contains("ptrace"));
        assert!(text(Error::NoSuchProcess).starts_with("no such process"));
        assert_eq!(
            text(Error::Unsupported),
            "kernel lacks vaddr_to_paddr() (not an rtflex kernel?)"
        );
        let other = text(Error::Other(libc::ENOMEM));
        assert!(other.contains("Cannot allocate memory"), "{other}");
        // Every variant's message is distinct.
        let all: Vec<String> = TABLE
            .iter()
            .map(|&(_, e)| e.to_string())
            .chain([Error::InvalidArgument.to_string()])
            .collect();
        for (i, a) in all.iter().enumerate() {
            assert!(!all[i + 1..].contains(a), "duplicate message {a}");
        }
    }

    #[test]
    fn per_address_errors_are_the_address_ones() {
        for &(_, e) in TABLE {
            let want = matches!(
                e,
                Error::NotPresent | Error::NotMapped | Error::KernelAddress
            );
            assert_eq!(e.is_per_address(), want, "{e:?}");
        }
        assert!(!Error::InvalidArgument.is_per_address());
        assert!(!Error::Other(5).is_per_address());
    }

    #[test]
    fn io_error_conversion_keeps_the_message() {
        let e: io::Error = Error::PermissionDenied.into();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        assert!(e.to_string().contains("CAP_SYS_ADMIN"));
        let e: io::Error = Error::Unsupported.into();
        assert_eq!(e.kind(), io::ErrorKind::Unsupported);
    }

    #[test]
    fn process_arguments() {
        assert_eq!(Process::Current.raw(), 0);
        assert_eq!(Process::Pid(1234).raw(), 1234);
        assert_eq!(Process::Current.proc_dir(), "/proc/self");
        assert_eq!(Process::Pid(42).proc_dir(), "/proc/42");
        assert_eq!(Process::Current.to_string(), "self");
        assert_eq!(Process::Pid(7).to_string(), "7");
        // A negative pid never reaches the kernel.
        assert_eq!(
            phys_addr(Process::Pid(-1), 0x1000),
            Err(Error::NoSuchProcess)
        );
    }

    #[test]
    fn syscall_number_is_472_exactly_on_arm_eabi() {
        if cfg!(target_arch = "arm") {
            assert_eq!(SYSCALL_NUMBER, Some(472));
        } else {
            assert_eq!(SYSCALL_NUMBER, None);
        }
    }

    #[test]
    fn page_size_is_a_sane_power_of_two() {
        let ps = page_size();
        assert!(ps.is_power_of_two() && ps >= 4096, "{ps}");
    }

    /// Whether this ARM test binary runs on a non-ARM kernel (qemu-user):
    /// `/proc/sys/kernel/arch` (Linux >= 6.1) comes from the host kernel;
    /// qemu-user does not emulate it (nor, in Debian 12's qemu 7.2,
    /// `/proc/cpuinfo`).
    pub(crate) fn under_qemu_user() -> bool {
        if !cfg!(target_arch = "arm") {
            return false;
        }
        if let Ok(arch) = std::fs::read_to_string("/proc/sys/kernel/arch") {
            return !arch.trim().starts_with("arm");
        }
        std::fs::read_to_string("/proc/cpuinfo")
            .is_ok_and(|c| c.contains("vendor_id") && !c.contains("CPU implementer"))
    }

    #[test]
    fn kernel_without_the_call_gives_unsupported_not_garbage() {
        let x = std::hint::black_box(0x5a5a_u32);
        let addr = &x as *const u32 as usize;
        let got = phys_addr(Process::Current, addr);
        if !cfg!(target_arch = "arm") {
            // No system call at all on other architectures.
            assert_eq!(got, Err(Error::Unsupported));
            assert_eq!(vaddr_to_paddr(0, addr, 0), Err(Error::Unsupported));
            return;
        }
        // What the kernel (or qemu-user) really answers to syscall 472,
        // with a sentinel in the result that must stay untouched.
        let mut sentinel = 0xdead_beef_dead_beef_u64;
        // SAFETY: as in vaddr_to_paddr(): the only pointer is to a live,
        // aligned u64; the call writes at most those 8 bytes, and only on
        // success.
        let ret = unsafe {
            libc::syscall(
                rtflex_uapi::nr::VADDR_TO_PADDR as libc::c_long,
                0 as libc::c_long,
                addr as libc::c_ulong,
                &mut sentinel as *mut u64,
                0 as libc::c_uint,
            )
        };
        let errno = io::Error::last_os_error().raw_os_error();
        if under_qemu_user() {
            // qemu-user does not know syscall 472 and says ENOSYS (checked
            // with qemu-arm 7.2; qemu logs "Unsupported syscall: 472").
            assert_eq!((ret, errno), (-1, Some(libc::ENOSYS)));
            assert_eq!(sentinel, 0xdead_beef_dead_beef);
            assert_eq!(got, Err(Error::Unsupported));
            assert_eq!(
                got.unwrap_err().to_string(),
                "kernel lacks vaddr_to_paddr() (not an rtflex kernel?)"
            );
        } else if ret == -1 && errno == Some(libc::ENOSYS) {
            // A real ARM kernel without the call.
            assert_eq!(sentinel, 0xdead_beef_dead_beef);
            assert_eq!(got, Err(Error::Unsupported));
        } else if ret == 0 {
            // An rtflex kernel, as root: same page, same offset.
            let got = got.expect("raw call succeeded, wrapper failed");
            let ps = page_size() as u64;
            assert_eq!(got % ps, addr as u64 % ps);
            assert_eq!(got / ps, sentinel / ps);
        } else {
            // An rtflex kernel without CAP_SYS_ADMIN.
            assert_eq!(errno, Some(libc::EPERM));
            assert_eq!(got, Err(Error::PermissionDenied));
        }
    }
}
