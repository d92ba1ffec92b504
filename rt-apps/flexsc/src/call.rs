//! [`Call`]: one system call as the six argument words r0..r5 and a
//! number, with the buffers it borrows tracked by the lifetime `'a`.
//!
//! The constructors are safe: each borrows every buffer the kernel reads
//! (`&'a`) or writes (`&'a mut`) for `'a`, so the buffers cannot be freed
//! or used otherwise before the call is complete as long as the call is
//! posted only where `'a` outlives its completion: [`crate::FlexSc::post`]
//! takes `Call<'static>`, [`crate::Scope::post`] takes `Call<'scope>`,
//! [`crate::FlexSc::call`] waits before returning.
//!
//! 64-bit arguments are split as ARM EABI does: into an even/odd register
//! pair (low word first, little-endian), with a padding word before the pair
//! where the pair would start at an odd register.

use core::ffi::CStr;
use core::marker::PhantomData;
use rtflex_uapi::{nr, KernelTimespec, Stat64};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::RawFd;

/// One system call: number and argument words, borrowing its buffers for
/// `'a`.
#[derive(Debug)]
#[must_use = "a Call does nothing until it is posted"]
pub struct Call<'a> {
    pub(crate) nr: u32,
    pub(crate) args: [u32; 6],
    _borrow: PhantomData<&'a mut ()>,
}

fn lo(v: u64) -> u32 {
    v as u32
}
fn hi(v: u64) -> u32 {
    (v >> 32) as u32
}
fn ptr<T: ?Sized>(p: *const T) -> u32 {
    p as *const u8 as usize as u32
}
fn mptr<T: ?Sized>(p: *mut T) -> u32 {
    p as *mut u8 as usize as u32
}

impl<'a> Call<'a> {
    const fn new(nr: u32, args: [u32; 6]) -> Self {
        Call {
            nr,
            args,
            _borrow: PhantomData,
        }
    }

    /// Any call, from raw words.
    ///
    /// # Safety
    ///
    /// Every pointer among the words must stay valid for what system call
    /// `nr` does with it until the call is complete, and the call must not
    /// do anything else Rust code relies on not happening (unmapping or
    /// write-protecting live memory, closing file descriptors owned by
    /// others, ...). A [`crate::Ticket`] of a posted raw call can be
    /// leaked: then "until complete" may be until the region is unmapped.
    pub const unsafe fn raw(nr: u32, args: [u32; 6]) -> Call<'static> {
        Call::new(nr, args)
    }

    /// The system call number (r7).
    pub fn nr(&self) -> u32 {
        self.nr
    }

    /// The argument words r0..r5.
    pub fn args(&self) -> [u32; 6] {
        self.args
    }

    /// `read(fd, buf, buf.len())`.
    pub fn read(fd: RawFd, buf: &'a mut [u8]) -> Self {
        Call::new(
            nr::READ,
            [fd as u32, mptr(buf.as_mut_ptr()), buf.len() as u32, 0, 0, 0],
        )
    }

    /// `write(fd, buf, buf.len())`.
    pub fn write(fd: RawFd, buf: &'a [u8]) -> Self {
        Call::new(
            nr::WRITE,
            [fd as u32, ptr(buf.as_ptr()), buf.len() as u32, 0, 0, 0],
        )
    }

    /// `pread64(fd, buf, buf.len(), offset)`: r3 is padding.
    pub fn pread64(fd: RawFd, buf: &'a mut [u8], offset: u64) -> Self {
        Call::new(
            nr::PREAD64,
            [
                fd as u32,
                mptr(buf.as_mut_ptr()),
                buf.len() as u32,
                0,
                lo(offset),
                hi(offset),
            ],
        )
    }

    /// `pwrite64(fd, buf, buf.len(), offset)`: r3 is padding.
    pub fn pwrite64(fd: RawFd, buf: &'a [u8], offset: u64) -> Self {
        Call::new(
            nr::PWRITE64,
            [
                fd as u32,
                ptr(buf.as_ptr()),
                buf.len() as u32,
                0,
                lo(offset),
                hi(offset),
            ],
        )
    }

    /// `readv(fd, iov, iov.len())`.
    pub fn readv<'b: 'a>(fd: RawFd, iov: &'a mut [IoSliceMut<'b>]) -> Self {
        // IoSliceMut is ABI-compatible with `struct iovec` on Unix.
        Call::new(
            nr::READV,
            [fd as u32, mptr(iov.as_mut_ptr()), iov.len() as u32, 0, 0, 0],
        )
    }

    /// `writev(fd, iov, iov.len())`.
    pub fn writev<'b: 'a>(fd: RawFd, iov: &'a [IoSlice<'b>]) -> Self {
        // IoSlice is ABI-compatible with `struct iovec` on Unix.
        Call::new(
            nr::WRITEV,
            [fd as u32, ptr(iov.as_ptr()), iov.len() as u32, 0, 0, 0],
        )
    }

    /// `lseek(fd, offset, whence)` with a 32-bit offset; the result is
    /// the new offset.
    pub fn lseek(fd: RawFd, offset: i32, whence: i32) -> Self {
        Call::new(
            nr::LSEEK,
            [fd as u32, offset as u32, whence as u32, 0, 0, 0],
        )
    }

    /// `_llseek(fd, offset >> 32, offset, result, whence)`: the new 64-bit
    /// offset goes to `result`.
    pub fn llseek(fd: RawFd, offset: i64, result: &'a mut i64, whence: i32) -> Self {
        Call::new(
            nr::LLSEEK,
            [
                fd as u32,
                hi(offset as u64),
                lo(offset as u64),
                mptr(result as *mut i64),
                whence as u32,
                0,
            ],
        )
    }

    /// `close(fd)`.
    pub fn close(fd: RawFd) -> Self {
        Call::new(nr::CLOSE, [fd as u32, 0, 0, 0, 0, 0])
    }

    /// `fsync(fd)`.
    pub fn fsync(fd: RawFd) -> Self {
        Call::new(nr::FSYNC, [fd as u32, 0, 0, 0, 0, 0])
    }

    /// `fdatasync(fd)`.
    pub fn fdatasync(fd: RawFd) -> Self {
        Call::new(nr::FDATASYNC, [fd as u32, 0, 0, 0, 0, 0])
    }

    /// `sync()`.
    pub fn sync() -> Self {
        Call::new(nr::SYNC, [0; 6])
    }

    /// `dup(fd)`.
    pub fn dup(fd: RawFd) -> Self {
        Call::new(nr::DUP, [fd as u32, 0, 0, 0, 0, 0])
    }

    /// `dup3(old, new, flags)`.
    pub fn dup3(old: RawFd, new: RawFd, flags: i32) -> Self {
        Call::new(nr::DUP3, [old as u32, new as u32, flags as u32, 0, 0, 0])
    }

    /// `ftruncate64(fd, length)`: r1 is padding.
    pub fn ftruncate64(fd: RawFd, length: u64) -> Self {
        Call::new(
            nr::FTRUNCATE64,
            [fd as u32, 0, lo(length), hi(length), 0, 0],
        )
    }

    /// `fallocate(fd, mode, offset, len)`.
    pub fn fallocate(fd: RawFd, mode: i32, offset: u64, len: u64) -> Self {
        Call::new(
            nr::FALLOCATE,
            [
                fd as u32,
                mode as u32,
                lo(offset),
                hi(offset),
                lo(len),
                hi(len),
            ],
        )
    }

    /// `arm_fadvise64_64(fd, advice, offset, len)` (`posix_fadvise`).
    pub fn fadvise(fd: RawFd, offset: u64, len: u64, advice: i32) -> Self {
        Call::new(
            nr::ARM_FADVISE64_64,
            [
                fd as u32,
                advice as u32,
                lo(offset),
                hi(offset),
                lo(len),
                hi(len),
            ],
        )
    }

    /// `sync_file_range2(fd, flags, offset, nbytes)` (`sync_file_range`).
    pub fn sync_file_range(fd: RawFd, offset: u64, nbytes: u64, flags: u32) -> Self {
        Call::new(
            nr::SYNC_FILE_RANGE2,
            [
                fd as u32,
                flags,
                lo(offset),
                hi(offset),
                lo(nbytes),
                hi(nbytes),
            ],
        )
    }

    /// `fstat64(fd, st)`.
    pub fn fstat64(fd: RawFd, st: &'a mut Stat64) -> Self {
        Call::new(
            nr::FSTAT64,
            [fd as u32, mptr(st as *mut Stat64), 0, 0, 0, 0],
        )
    }

    /// `fstatat64(dirfd, path, st, flags)`.
    pub fn fstatat64(dirfd: RawFd, path: &'a CStr, st: &'a mut Stat64, flags: i32) -> Self {
        Call::new(
            nr::FSTATAT64,
            [
                dirfd as u32,
                ptr(path.as_ptr()),
                mptr(st as *mut Stat64),
                flags as u32,
                0,
                0,
            ],
        )
    }

    /// `openat(dirfd, path, flags, mode)`; the result is the new fd.
    pub fn openat(dirfd: RawFd, path: &'a CStr, flags: i32, mode: u32) -> Self {
        Call::new(
            nr::OPENAT,
            [dirfd as u32, ptr(path.as_ptr()), flags as u32, mode, 0, 0],
        )
    }

    /// `unlinkat(dirfd, path, flags)`.
    pub fn unlinkat(dirfd: RawFd, path: &'a CStr, flags: i32) -> Self {
        Call::new(
            nr::UNLINKAT,
            [dirfd as u32, ptr(path.as_ptr()), flags as u32, 0, 0, 0],
        )
    }

    /// `mkdirat(dirfd, path, mode)`.
    pub fn mkdirat(dirfd: RawFd, path: &'a CStr, mode: u32) -> Self {
        Call::new(
            nr::MKDIRAT,
            [dirfd as u32, ptr(path.as_ptr()), mode, 0, 0, 0],
        )
    }

    /// `renameat2(olddirfd, old, newdirfd, new, flags)`.
    pub fn renameat2(
        olddirfd: RawFd,
        old: &'a CStr,
        newdirfd: RawFd,
        new: &'a CStr,
        flags: u32,
    ) -> Self {
        Call::new(
            nr::RENAMEAT2,
            [
                olddirfd as u32,
                ptr(old.as_ptr()),
                newdirfd as u32,
                ptr(new.as_ptr()),
                flags,
                0,
            ],
        )
    }

    /// `readlinkat(dirfd, path, buf, buf.len())`.
    pub fn readlinkat(dirfd: RawFd, path: &'a CStr, buf: &'a mut [u8]) -> Self {
        Call::new(
            nr::READLINKAT,
            [
                dirfd as u32,
                ptr(path.as_ptr()),
                mptr(buf.as_mut_ptr()),
                buf.len() as u32,
                0,
                0,
            ],
        )
    }

    /// `faccessat(dirfd, path, mode)`.
    pub fn faccessat(dirfd: RawFd, path: &'a CStr, mode: i32) -> Self {
        Call::new(
            nr::FACCESSAT,
            [dirfd as u32, ptr(path.as_ptr()), mode as u32, 0, 0, 0],
        )
    }

    /// `getdents64(fd, buf, buf.len())`.
    pub fn getdents64(fd: RawFd, buf: &'a mut [u8]) -> Self {
        Call::new(
            nr::GETDENTS64,
            [fd as u32, mptr(buf.as_mut_ptr()), buf.len() as u32, 0, 0, 0],
        )
    }

    /// `pipe2(fds, flags)`.
    pub fn pipe2(fds: &'a mut [i32; 2], flags: i32) -> Self {
        Call::new(
            nr::PIPE2,
            [mptr(fds.as_mut_ptr()), flags as u32, 0, 0, 0, 0],
        )
    }

    /// `eventfd2(initval, flags)`.
    pub fn eventfd2(initval: u32, flags: i32) -> Self {
        Call::new(nr::EVENTFD2, [initval, flags as u32, 0, 0, 0, 0])
    }

    /// `sendto(fd, buf, buf.len(), flags, NULL, 0)` (`send`).
    pub fn send(fd: RawFd, buf: &'a [u8], flags: i32) -> Self {
        Call::new(
            nr::SENDTO,
            [
                fd as u32,
                ptr(buf.as_ptr()),
                buf.len() as u32,
                flags as u32,
                0,
                0,
            ],
        )
    }

    /// `recvfrom(fd, buf, buf.len(), flags, NULL, NULL)` (`recv`).
    pub fn recv(fd: RawFd, buf: &'a mut [u8], flags: i32) -> Self {
        Call::new(
            nr::RECVFROM,
            [
                fd as u32,
                mptr(buf.as_mut_ptr()),
                buf.len() as u32,
                flags as u32,
                0,
                0,
            ],
        )
    }

    /// `accept4(fd, NULL, NULL, flags)`.
    pub fn accept4(fd: RawFd, flags: i32) -> Self {
        Call::new(nr::ACCEPT4, [fd as u32, 0, 0, flags as u32, 0, 0])
    }

    /// `poll(fds, fds.len(), timeout_ms)`.
    pub fn poll(fds: &'a mut [libc::pollfd], timeout_ms: i32) -> Self {
        Call::new(
            nr::POLL,
            [
                mptr(fds.as_mut_ptr()),
                fds.len() as u32,
                timeout_ms as u32,
                0,
                0,
                0,
            ],
        )
    }

    /// `clock_gettime64(clock, ts)`.
    pub fn clock_gettime(clock: libc::clockid_t, ts: &'a mut KernelTimespec) -> Self {
        Call::new(
            nr::CLOCK_GETTIME64,
            [clock as u32, mptr(ts as *mut KernelTimespec), 0, 0, 0, 0],
        )
    }

    /// `clock_nanosleep_time64(clock, flags, req, NULL)`.
    pub fn clock_nanosleep(clock: libc::clockid_t, flags: i32, req: &'a KernelTimespec) -> Self {
        Call::new(
            nr::CLOCK_NANOSLEEP_TIME64,
            [
                clock as u32,
                flags as u32,
                ptr(req as *const KernelTimespec),
                0,
                0,
                0,
            ],
        )
    }

    /// `uname(buf)` (`struct new_utsname`, six 65-byte strings).
    pub fn uname(buf: &'a mut libc::utsname) -> Self {
        Call::new(nr::UNAME, [mptr(buf as *mut libc::utsname), 0, 0, 0, 0, 0])
    }

    /// `getcwd(buf, buf.len())`: the result is the length including NUL.
    pub fn getcwd(buf: &'a mut [u8]) -> Self {
        Call::new(
            nr::GETCWD,
            [mptr(buf.as_mut_ptr()), buf.len() as u32, 0, 0, 0, 0],
        )
    }

    /// `getpid()`.
    pub fn getpid() -> Self {
        Call::new(nr::GETPID, [0; 6])
    }

    /// `getppid()`.
    pub fn getppid() -> Self {
        Call::new(nr::GETPPID, [0; 6])
    }

    /// `getpgid(pid)`.
    pub fn getpgid(pid: i32) -> Self {
        Call::new(nr::GETPGID, [pid as u32, 0, 0, 0, 0, 0])
    }

    /// `getuid32()`.
    pub fn getuid() -> Self {
        Call::new(nr::GETUID32, [0; 6])
    }

    /// `geteuid32()`.
    pub fn geteuid() -> Self {
        Call::new(nr::GETEUID32, [0; 6])
    }

    /// `getgid32()`.
    pub fn getgid() -> Self {
        Call::new(nr::GETGID32, [0; 6])
    }

    /// `getegid32()`.
    pub fn getegid() -> Self {
        Call::new(nr::GETEGID32, [0; 6])
    }

    /// `sched_yield()`.
    pub fn sched_yield() -> Self {
        Call::new(nr::SCHED_YIELD, [0; 6])
    }

    /// Runs the call as an ordinary system call in the calling thread.
    pub fn run_direct(self) -> rt_utils::sys::RawResult {
        // SAFETY: a `Call<'a>` is built either by a safe constructor, which
        // borrows every buffer the call touches for 'a (still live: we are
        // inside 'a, holding the call), or by `Call::raw`, whose caller
        // promised the words are valid for the call. The call completes
        // before this function returns.
        unsafe { crate::sys::syscall6(self.nr, self.args) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixty_four_bit_pairs_follow_eabi() {
        let mut b = [0u8; 4];
        let c = Call::pread64(3, &mut b, 0x1_2345_6789);
        assert_eq!(c.args()[2..], [4, 0, 0x2345_6789, 1]);
        let c = Call::pwrite64(3, &b, 0xABCD_0000_0001);
        assert_eq!(c.args()[3..], [0, 1, 0xABCD]);
        let c = Call::ftruncate64(5, 5 << 32 | 7);
        assert_eq!(c.args(), [5, 0, 7, 5, 0, 0]);
        let c = Call::fallocate(5, 1, 1 << 33, 4096);
        assert_eq!(c.args(), [5, 1, 0, 2, 4096, 0]);
        let c = Call::fadvise(5, 3 << 32, 9, 4);
        assert_eq!(c.args(), [5, 4, 0, 3, 9, 0]);
        let c = Call::sync_file_range(5, 1 << 32, 2, 7);
        assert_eq!(c.args(), [5, 7, 0, 1, 2, 0]);
        let mut r = 0i64;
        let c = Call::llseek(5, -2, &mut r, 1);
        assert_eq!(c.args()[..3], [5, 0xFFFF_FFFF, 0xFFFF_FFFE]);
        assert_eq!(c.args()[4], 1);
    }
}
