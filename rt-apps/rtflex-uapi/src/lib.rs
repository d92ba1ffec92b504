//! rtflex-uapi: the raw kernel ABI of rtflex's kernel patches, in one place
//! for every crate of the workspace (as gpiocdev keeps its `uapi` beside
//! its library).
//!
//! * [`nr`]: ARM EABI system call numbers (`arch/arm/tools/syscall.tbl`),
//!   ours ([`nr::VADDR_TO_PADDR`], [`nr::FLEXSC_REGISTER`],
//!   [`nr::FLEXSC_WAIT`]) and the standard ones the workspace makes by
//!   number;
//! * [`flexsc`]: `include/uapi/linux/flexsc.h` (configuration, entries,
//!   control page, states, limits) and the kernel's allow-list;
//! * [`kml`]: the Kernel Mode Linux auxiliary vector entry `AT_KML`;
//! * [`KernelTimespec`], [`Stat64`]: the ARM kernel structures FlexSC calls
//!   read and write.
//!
//! Only constants and `#[repr(C)]` types: no system calls, no `std`, no
//! dependencies. Every value is checked against the patched kernel tree by
//! `make check-uapi` (part of `make test`): `check-kernel-headers.sh`
//! compiles `examples/kernel_header_checks.rs`'s output, one C
//! `_Static_assert` per constant, size and field offset, against the
//! patched headers, and compares the allow-list with the kernel's.
#![cfg_attr(not(test), no_std)]

use core::mem::{offset_of, size_of};

pub mod flexsc;
pub mod kml;
pub mod nr;

/// `struct __kernel_timespec` (`linux/time_types.h`): 64-bit seconds and
/// nanoseconds, as taken by `flexsc_wait()`, `clock_gettime64` and
/// `clock_nanosleep_time64`.
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
    /// Padding (`__pad0`).
    pub pad0: [u8; 4],
    /// Low 32 bits of the inode number (`__st_ino`).
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
    /// Padding (`__pad3`).
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

// The layouts on every target, so a host build cannot drift from the ARM
// one (the kernel check covers the values themselves).
const _: () = {
    assert!(size_of::<KernelTimespec>() == 16);
    assert!(size_of::<Stat64>() == 104);
    assert!(offset_of!(Stat64, st_size) == 48);
    assert!(offset_of!(Stat64, st_blocks) == 64);
    assert!(offset_of!(Stat64, st_ino) == 96);
};
