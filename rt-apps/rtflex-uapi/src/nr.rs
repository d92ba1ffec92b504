//! ARM EABI system call numbers (`arch/arm/tools/syscall.tbl` of the patched
//! kernel): rtflex's own calls and the standard ones the workspace makes or
//! names by number (FlexSC entries carry the number, not a libc wrapper).
//!
//! [`TABLE`] has every constant with its name in `syscall.tbl`; the kernel
//! check compares each with the patched table (`__NR_<name>`).

macro_rules! syscalls {
    ($($(#[$doc:meta])* $name:ident = $nr:literal, $tbl:literal;)*) => {
        $($(#[$doc])* pub const $name: u32 = $nr;)*
        /// Every number of this module with its name in `syscall.tbl`.
        pub const TABLE: &[(&str, u32)] = &[$(($tbl, $name)),*];
    };
}

syscalls! {
    /// `vaddr_to_paddr(pid, addr, paddr, flags)` (rtflex patch 0001).
    VADDR_TO_PADDR = 472, "vaddr_to_paddr";
    /// `flexsc_register(cfg, size)` (rtflex patch 0002).
    FLEXSC_REGISTER = 473, "flexsc_register";
    /// `flexsc_wait(addr, min_complete, timeout)` (rtflex patch 0002).
    FLEXSC_WAIT = 474, "flexsc_wait";

    /// `exit`.
    EXIT = 1, "exit";
    /// `fork`.
    FORK = 2, "fork";
    /// `read`.
    READ = 3, "read";
    /// `write`.
    WRITE = 4, "write";
    /// `close`.
    CLOSE = 6, "close";
    /// `execve`.
    EXECVE = 11, "execve";
    /// `lseek`.
    LSEEK = 19, "lseek";
    /// `getpid`.
    GETPID = 20, "getpid";
    /// `ptrace`.
    PTRACE = 26, "ptrace";
    /// `sync`.
    SYNC = 36, "sync";
    /// `kill`.
    KILL = 37, "kill";
    /// `dup`.
    DUP = 41, "dup";
    /// `ioctl`.
    IOCTL = 54, "ioctl";
    /// `getppid`.
    GETPPID = 64, "getppid";
    /// `munmap`.
    MUNMAP = 91, "munmap";
    /// `fsync`.
    FSYNC = 118, "fsync";
    /// `sigreturn`.
    SIGRETURN = 119, "sigreturn";
    /// `clone`.
    CLONE = 120, "clone";
    /// `uname`.
    UNAME = 122, "uname";
    /// `mprotect`.
    MPROTECT = 125, "mprotect";
    /// `getpgid`.
    GETPGID = 132, "getpgid";
    /// `_llseek`.
    LLSEEK = 140, "_llseek";
    /// `readv`.
    READV = 145, "readv";
    /// `writev`.
    WRITEV = 146, "writev";
    /// `fdatasync`.
    FDATASYNC = 148, "fdatasync";
    /// `sched_yield`.
    SCHED_YIELD = 158, "sched_yield";
    /// `nanosleep`.
    NANOSLEEP = 162, "nanosleep";
    /// `poll`.
    POLL = 168, "poll";
    /// `prctl`.
    PRCTL = 172, "prctl";
    /// `rt_sigreturn`.
    RT_SIGRETURN = 173, "rt_sigreturn";
    /// `rt_sigprocmask`.
    RT_SIGPROCMASK = 175, "rt_sigprocmask";
    /// `pread64`.
    PREAD64 = 180, "pread64";
    /// `pwrite64`.
    PWRITE64 = 181, "pwrite64";
    /// `getcwd`.
    GETCWD = 183, "getcwd";
    /// `vfork`.
    VFORK = 190, "vfork";
    /// `mmap2`.
    MMAP2 = 192, "mmap2";
    /// `ftruncate64`.
    FTRUNCATE64 = 194, "ftruncate64";
    /// `fstat64`.
    FSTAT64 = 197, "fstat64";
    /// `getuid32`.
    GETUID32 = 199, "getuid32";
    /// `getgid32`.
    GETGID32 = 200, "getgid32";
    /// `geteuid32`.
    GETEUID32 = 201, "geteuid32";
    /// `getegid32`.
    GETEGID32 = 202, "getegid32";
    /// `setresuid32`.
    SETRESUID32 = 208, "setresuid32";
    /// `setuid32`.
    SETUID32 = 213, "setuid32";
    /// `getdents64`.
    GETDENTS64 = 217, "getdents64";
    /// `madvise`.
    MADVISE = 220, "madvise";
    /// `fcntl64`.
    FCNTL64 = 221, "fcntl64";
    /// `gettid`.
    GETTID = 224, "gettid";
    /// `exit_group`.
    EXIT_GROUP = 248, "exit_group";
    /// `epoll_ctl`.
    EPOLL_CTL = 251, "epoll_ctl";
    /// `clock_gettime` (32-bit time).
    CLOCK_GETTIME = 263, "clock_gettime";
    /// `clock_nanosleep` (32-bit time).
    CLOCK_NANOSLEEP = 265, "clock_nanosleep";
    /// `tgkill`.
    TGKILL = 268, "tgkill";
    /// `arm_fadvise64_64`.
    ARM_FADVISE64_64 = 270, "arm_fadvise64_64";
    /// `connect`.
    CONNECT = 283, "connect";
    /// `sendto`.
    SENDTO = 290, "sendto";
    /// `recvfrom`.
    RECVFROM = 292, "recvfrom";
    /// `sendmsg`.
    SENDMSG = 296, "sendmsg";
    /// `recvmsg`.
    RECVMSG = 297, "recvmsg";
    /// `openat`.
    OPENAT = 322, "openat";
    /// `mkdirat`.
    MKDIRAT = 323, "mkdirat";
    /// `fstatat64`.
    FSTATAT64 = 327, "fstatat64";
    /// `unlinkat`.
    UNLINKAT = 328, "unlinkat";
    /// `readlinkat`.
    READLINKAT = 332, "readlinkat";
    /// `faccessat`.
    FACCESSAT = 334, "faccessat";
    /// `arm_sync_file_range` (the kernel's `sync_file_range2`).
    SYNC_FILE_RANGE2 = 341, "arm_sync_file_range";
    /// `fallocate`.
    FALLOCATE = 352, "fallocate";
    /// `eventfd2`.
    EVENTFD2 = 356, "eventfd2";
    /// `dup3`.
    DUP3 = 358, "dup3";
    /// `pipe2`.
    PIPE2 = 359, "pipe2";
    /// `accept4`.
    ACCEPT4 = 366, "accept4";
    /// `renameat2`.
    RENAMEAT2 = 382, "renameat2";
    /// `seccomp`.
    SECCOMP = 383, "seccomp";
    /// `execveat`.
    EXECVEAT = 387, "execveat";
    /// `statx`.
    STATX = 397, "statx";
    /// `clock_gettime64`.
    CLOCK_GETTIME64 = 403, "clock_gettime64";
    /// `clock_nanosleep_time64`.
    CLOCK_NANOSLEEP_TIME64 = 407, "clock_nanosleep_time64";
    /// `ppoll_time64`.
    PPOLL_TIME64 = 414, "ppoll_time64";
    /// `clone3`.
    CLONE3 = 435, "clone3";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_are_unique() {
        for (i, &(name, n)) in TABLE.iter().enumerate() {
            assert!(
                !TABLE[i + 1..].iter().any(|&(m, k)| m == name || k == n),
                "{name} ({n}) twice"
            );
        }
    }

    /// The numbers agree with the libc crate's ARM table where it has them
    /// (the kernel check compares all of them with `syscall.tbl`).
    #[cfg(target_arch = "arm")]
    #[test]
    fn numbers_match_libc() {
        let pairs: &[(u32, libc::c_long)] = &[
            (READ, libc::SYS_read),
            (WRITE, libc::SYS_write),
            (PREAD64, libc::SYS_pread64),
            (PWRITE64, libc::SYS_pwrite64),
            (FTRUNCATE64, libc::SYS_ftruncate64),
            (FALLOCATE, libc::SYS_fallocate),
            (ARM_FADVISE64_64, libc::SYS_arm_fadvise64_64),
            (SYNC_FILE_RANGE2, libc::SYS_arm_sync_file_range),
            (FSTAT64, libc::SYS_fstat64),
            (GETTID, libc::SYS_gettid),
            (CLOCK_GETTIME, libc::SYS_clock_gettime),
            (EXIT_GROUP, libc::SYS_exit_group),
            (PIPE2, libc::SYS_pipe2),
            (OPENAT, libc::SYS_openat),
            (READLINKAT, libc::SYS_readlinkat),
            (RENAMEAT2, libc::SYS_renameat2),
            (CLONE3, libc::SYS_clone3),
            (STATX, libc::SYS_statx),
            (GETEGID32, libc::SYS_getegid32),
            (LLSEEK, libc::SYS__llseek),
            (MMAP2, libc::SYS_mmap2),
        ];
        for &(ours, theirs) in pairs {
            assert_eq!(ours as libc::c_long, theirs);
        }
    }
}
