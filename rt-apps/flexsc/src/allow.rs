//! The kernel's allow-list: the system calls a FlexSC syscall thread runs.
//! Any other number completes with `-ENOSYS` without running.
//!
//! [`ALLOWED`] is the single source of truth in this crate: the emulator
//! (`testing` feature) runs exactly these, and the tests iterate over it.
//! Numbers are ARM EABI (`arch/arm/tools/syscall.tbl`).

/// ARM EABI system call numbers used by this crate.
#[allow(missing_docs)]
pub mod nr {
    pub const EXIT: u32 = 1;
    pub const FORK: u32 = 2;
    pub const READ: u32 = 3;
    pub const WRITE: u32 = 4;
    pub const CLOSE: u32 = 6;
    pub const EXECVE: u32 = 11;
    pub const LSEEK: u32 = 19;
    pub const GETPID: u32 = 20;
    pub const PTRACE: u32 = 26;
    pub const SYNC: u32 = 36;
    pub const KILL: u32 = 37;
    pub const DUP: u32 = 41;
    pub const IOCTL: u32 = 54;
    pub const GETPPID: u32 = 64;
    pub const MUNMAP: u32 = 91;
    pub const FSYNC: u32 = 118;
    pub const SIGRETURN: u32 = 119;
    pub const CLONE: u32 = 120;
    pub const UNAME: u32 = 122;
    pub const MPROTECT: u32 = 125;
    pub const GETPGID: u32 = 132;
    pub const LLSEEK: u32 = 140;
    pub const READV: u32 = 145;
    pub const WRITEV: u32 = 146;
    pub const FDATASYNC: u32 = 148;
    pub const SCHED_YIELD: u32 = 158;
    pub const NANOSLEEP: u32 = 162;
    pub const POLL: u32 = 168;
    pub const PRCTL: u32 = 172;
    pub const RT_SIGRETURN: u32 = 173;
    pub const RT_SIGPROCMASK: u32 = 175;
    pub const PREAD64: u32 = 180;
    pub const PWRITE64: u32 = 181;
    pub const GETCWD: u32 = 183;
    pub const VFORK: u32 = 190;
    pub const MMAP2: u32 = 192;
    pub const FTRUNCATE64: u32 = 194;
    pub const FSTAT64: u32 = 197;
    pub const GETUID32: u32 = 199;
    pub const GETGID32: u32 = 200;
    pub const GETEUID32: u32 = 201;
    pub const GETEGID32: u32 = 202;
    pub const SETUID32: u32 = 213;
    pub const GETDENTS64: u32 = 217;
    pub const MADVISE: u32 = 220;
    pub const FCNTL64: u32 = 221;
    pub const GETTID: u32 = 224;
    pub const EXIT_GROUP: u32 = 248;
    pub const EPOLL_CTL: u32 = 251;
    pub const CLOCK_GETTIME: u32 = 263;
    pub const CLOCK_NANOSLEEP: u32 = 265;
    pub const TGKILL: u32 = 268;
    pub const ARM_FADVISE64_64: u32 = 270;
    pub const CONNECT: u32 = 283;
    pub const SENDTO: u32 = 290;
    pub const RECVFROM: u32 = 292;
    pub const SENDMSG: u32 = 296;
    pub const RECVMSG: u32 = 297;
    pub const OPENAT: u32 = 322;
    pub const MKDIRAT: u32 = 323;
    pub const FSTATAT64: u32 = 327;
    pub const UNLINKAT: u32 = 328;
    pub const READLINKAT: u32 = 332;
    pub const FACCESSAT: u32 = 334;
    pub const SYNC_FILE_RANGE2: u32 = 341;
    pub const FALLOCATE: u32 = 352;
    pub const EVENTFD2: u32 = 356;
    pub const DUP3: u32 = 358;
    pub const PIPE2: u32 = 359;
    pub const ACCEPT4: u32 = 366;
    pub const RENAMEAT2: u32 = 382;
    pub const SECCOMP: u32 = 383;
    pub const EXECVEAT: u32 = 387;
    pub const STATX: u32 = 397;
    pub const CLOCK_GETTIME64: u32 = 403;
    pub const CLOCK_NANOSLEEP_TIME64: u32 = 407;
    pub const PPOLL_TIME64: u32 = 414;
    pub const CLONE3: u32 = 435;
    pub const VADDR_TO_PADDR: u32 = crate::sys::NR_VADDR_TO_PADDR;
    pub const FLEXSC_REGISTER: u32 = crate::sys::NR_FLEXSC_REGISTER;
    pub const FLEXSC_WAIT: u32 = crate::sys::NR_FLEXSC_WAIT;
}

/// The calls the kernel runs, by name and ARM EABI number.
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

    /// The numbers agree with the libc crate's ARM table where it has them.
    #[cfg(target_arch = "arm")]
    #[test]
    fn numbers_match_libc() {
        let pairs: &[(u32, libc::c_long)] = &[
            (nr::READ, libc::SYS_read),
            (nr::WRITE, libc::SYS_write),
            (nr::PREAD64, libc::SYS_pread64),
            (nr::PWRITE64, libc::SYS_pwrite64),
            (nr::FTRUNCATE64, libc::SYS_ftruncate64),
            (nr::FALLOCATE, libc::SYS_fallocate),
            (nr::ARM_FADVISE64_64, libc::SYS_arm_fadvise64_64),
            (nr::SYNC_FILE_RANGE2, libc::SYS_arm_sync_file_range),
            (nr::FSTAT64, libc::SYS_fstat64),
            (nr::GETTID, libc::SYS_gettid),
            (nr::CLOCK_GETTIME, libc::SYS_clock_gettime),
            (nr::EXIT_GROUP, libc::SYS_exit_group),
            (nr::PIPE2, libc::SYS_pipe2),
            (nr::OPENAT, libc::SYS_openat),
            (nr::READLINKAT, libc::SYS_readlinkat),
            (nr::RENAMEAT2, libc::SYS_renameat2),
            (nr::CLONE3, libc::SYS_clone3),
            (nr::STATX, libc::SYS_statx),
            (nr::GETEGID32, libc::SYS_getegid32),
            (nr::LLSEEK, libc::SYS__llseek),
            (nr::MMAP2, libc::SYS_mmap2),
        ];
        for &(ours, theirs) in pairs {
            assert_eq!(ours as libc::c_long, theirs);
        }
    }
}
