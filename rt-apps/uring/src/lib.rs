//! The workspace's one io_uring ring, on rustix's raw system calls and
//! structures (the io-uring crate has no prebuilt bindings for 32-bit ARM
//! and refuses to build there): set-up and mapping of the rings, queueing
//! of entries, submission with or without waiting (plain: one
//! `io_uring_enter` per submission, which also issues the entries inline;
//! SQPOLL: a kernel thread polls the ring, and `io_uring_enter` is called
//! only to wake it when it went to sleep, or to wait), and reaping of
//! completions from the shared ring without a system call.
//!
//! Users: the control app's telemetry path (`servo --log-via=io_uring`),
//! flexsc-bench's io_uring rows and `rtlat --io-via=io_uring`.

use core::ffi::c_void;
use core::ptr::NonNull;
use core::sync::atomic::{fence, AtomicU32, Ordering};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::io_uring::{
    io_uring_cqe, io_uring_enter, io_uring_params, io_uring_ptr, io_uring_setup, io_uring_sqe,
    io_uring_user_data, IoringEnterFlags, IoringFeatureFlags, IoringOp, IoringSetupFlags,
    IoringSqFlags, IORING_OFF_CQ_RING, IORING_OFF_SQES, IORING_OFF_SQ_RING,
};
use rustix::mm::{mmap, munmap, MapFlags, ProtFlags};
use std::io;

/// A kernel thread that polls the submission ring (`IORING_SETUP_SQPOLL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sqpoll {
    /// Idle time before the thread sleeps, in **milliseconds** (the
    /// kernel's unit; 0 means its default of one second).
    pub idle_ms: u32,
    /// Pin the thread to this CPU (`IORING_SETUP_SQ_AFF`).
    pub cpu: Option<u32>,
}

/// A shared mapping of the ring's file.
#[derive(Debug)]
struct Mapping {
    ptr: NonNull<c_void>,
    len: usize,
}

impl Mapping {
    fn new(fd: &OwnedFd, len: usize, offset: u64) -> io::Result<Mapping> {
        // SAFETY: a fresh shared mapping chosen by the kernel (null hint),
        // of the ring's file at one of its documented offsets; it aliases
        // no Rust object.
        let ptr = unsafe {
            mmap(
                core::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED | MapFlags::POPULATE,
                fd,
                offset,
            )
        }?;
        Ok(Mapping {
            ptr: NonNull::new(ptr).ok_or_else(|| io::Error::other("mmap gave a null address"))?,
            len,
        })
    }

    /// The byte at `offset` as a `T`; an offset outside the mapping (a
    /// kernel that disagrees with itself) is an error, not a wild pointer.
    fn at<T>(&self, offset: u32) -> io::Result<*mut T> {
        if offset as usize + core::mem::size_of::<T>() > self.len {
            return Err(io::Error::other(format!(
                "io_uring ring offset {offset} outside its {}-byte mapping",
                self.len
            )));
        }
        // SAFETY: `offset` plus the size of a T is inside the mapping
        // (checked); the kernel's offsets are aligned for the fields they
        // name.
        Ok(unsafe { self.ptr.as_ptr().cast::<u8>().add(offset as usize).cast() })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping was made by `Mapping::new` with this length
        // and is unmapped once; the ring's raw pointers into it die with
        // the `Uring` that owns it.
        let _ = unsafe { munmap(self.ptr.as_ptr(), self.len) };
    }
}

/// An io_uring instance.
#[derive(Debug)]
pub struct Uring {
    // Mappings before the descriptor: unmapped first.
    _sq_ring: Mapping,
    _cq_ring: Option<Mapping>,
    _sqes: Mapping,
    fd: OwnedFd,
    sq_head: *const AtomicU32,
    sq_tail: *const AtomicU32,
    sq_flags: *const AtomicU32,
    sq_array: *mut u32,
    sq_mask: u32,
    sq_entries: u32,
    sqe_base: *mut io_uring_sqe,
    cq_head: *const AtomicU32,
    cq_tail: *const AtomicU32,
    cq_mask: u32,
    cq_entries: u32,
    cqes: *const io_uring_cqe,
    /// Our next SQ tail (published by `submit`).
    tail: u32,
    /// Queued, not yet passed to `io_uring_enter` (plain rings).
    unsubmitted: u32,
    /// Submitted and not yet reaped.
    in_flight: u32,
    sqpoll: bool,
}

// SAFETY: the raw pointers point into mappings the Uring owns; moving it to
// another thread moves them along, and nothing else refers to them.
unsafe impl Send for Uring {}

/// A `IORING_OP_NOP` entry: completes with 0 and does nothing else (the
/// floor of a call through the ring).
pub fn nop(user_data: u64) -> io_uring_sqe {
    io_uring_sqe {
        opcode: IoringOp::Nop,
        user_data: io_uring_user_data::from_u64(user_data),
        ..Default::default()
    }
}

/// A `IORING_OP_WRITE` of `len` bytes at `buf` to `fd` at `offset` (`u64::MAX`:
/// the file position, as `write(2)`). The entry only carries the pointer:
/// the memory must stay live and unchanged until the completion is reaped.
pub fn write(
    fd: BorrowedFd<'_>,
    buf: *const u8,
    len: u32,
    offset: u64,
    user_data: u64,
) -> io_uring_sqe {
    use rustix::fd::AsRawFd;
    let mut sqe = io_uring_sqe {
        opcode: IoringOp::Write,
        fd: fd.as_raw_fd(),
        user_data: io_uring_user_data::from_u64(user_data),
        ..Default::default()
    };
    sqe.addr_or_splice_off_in.addr = io_uring_ptr::new(buf.cast_mut().cast());
    sqe.len.len = len;
    sqe.off_or_addr2.off = offset;
    sqe
}

impl Uring {
    /// A ring of `entries` submission entries (a power of two); with
    /// `sqpoll_idle_ms`, a kernel thread polls the ring and sleeps after
    /// that many idle milliseconds.
    pub fn new(entries: u32, sqpoll_idle_ms: Option<u32>) -> io::Result<Uring> {
        Uring::with_sqpoll(
            entries,
            sqpoll_idle_ms.map(|idle_ms| Sqpoll { idle_ms, cpu: None }),
        )
    }

    /// A ring of `entries` submission entries (a power of two), with an
    /// optional polling thread.
    pub fn with_sqpoll(entries: u32, sqpoll: Option<Sqpoll>) -> io::Result<Uring> {
        let mut p = io_uring_params::default();
        if let Some(sq) = sqpoll {
            p.flags = IoringSetupFlags::SQPOLL;
            p.sq_thread_idle = sq.idle_ms;
            if let Some(cpu) = sq.cpu {
                p.flags |= IoringSetupFlags::SQ_AFF;
                p.sq_thread_cpu = cpu;
            }
        }
        // SAFETY: `p` is a valid, writable io_uring_params the call fills.
        let fd = unsafe { io_uring_setup(entries, &mut p) }?;
        let single = p.features.contains(IoringFeatureFlags::SINGLE_MMAP);
        let sq_len = p.sq_off.array as usize + p.sq_entries as usize * 4;
        let cq_len =
            p.cq_off.cqes as usize + p.cq_entries as usize * core::mem::size_of::<io_uring_cqe>();
        let sq_ring = Mapping::new(
            &fd,
            if single { sq_len.max(cq_len) } else { sq_len },
            IORING_OFF_SQ_RING,
        )?;
        let cq_ring = if single {
            None
        } else {
            Some(Mapping::new(&fd, cq_len, IORING_OFF_CQ_RING)?)
        };
        let sqes = Mapping::new(
            &fd,
            p.sq_entries as usize * core::mem::size_of::<io_uring_sqe>(),
            IORING_OFF_SQES,
        )?;
        let cq = cq_ring.as_ref().unwrap_or(&sq_ring);
        let (sq_mask_p, cq_mask_p) = (
            sq_ring.at::<u32>(p.sq_off.ring_mask)?,
            cq.at::<u32>(p.cq_off.ring_mask)?,
        );
        // SAFETY: the kernel's ring_mask fields are plain u32s inside the
        // mappings (checked by `at`), written before io_uring_setup
        // returned and never changed.
        let (sq_mask, cq_mask) = unsafe { (*sq_mask_p, *cq_mask_p) };
        if sq_mask != p.sq_entries - 1 || cq_mask != p.cq_entries - 1 {
            return Err(io::Error::other(format!(
                "io_uring ring masks {sq_mask}/{cq_mask} do not match {}/{} entries",
                p.sq_entries, p.cq_entries
            )));
        }
        // The arrays must hold every index the masks allow.
        sq_ring.at::<u32>(p.sq_off.array + 4 * sq_mask)?;
        cq.at::<io_uring_cqe>(
            p.cq_off.cqes + (core::mem::size_of::<io_uring_cqe>() as u32) * cq_mask,
        )?;
        Ok(Uring {
            sq_head: sq_ring.at(p.sq_off.head)?,
            sq_tail: sq_ring.at(p.sq_off.tail)?,
            sq_flags: sq_ring.at(p.sq_off.flags)?,
            sq_array: sq_ring.at(p.sq_off.array)?,
            sq_mask,
            sq_entries: p.sq_entries,
            sqe_base: sqes.ptr.as_ptr().cast(),
            cq_head: cq.at(p.cq_off.head)?,
            cq_tail: cq.at(p.cq_off.tail)?,
            cq_mask,
            cq_entries: p.cq_entries,
            cqes: cq.at(p.cq_off.cqes)?,
            tail: 0,
            unsubmitted: 0,
            in_flight: 0,
            sqpoll: sqpoll.is_some(),
            _sq_ring: sq_ring,
            _cq_ring: cq_ring,
            _sqes: sqes,
            fd,
        })
    }

    fn sq_head(&self) -> &AtomicU32 {
        // SAFETY: a field of the SQ ring mapping, which lives as long as
        // self; the kernel updates it atomically.
        unsafe { &*self.sq_head }
    }

    /// Submission entries of the ring (what `push` accepts at most before
    /// a `submit`).
    pub fn sq_entries(&self) -> u32 {
        self.sq_entries
    }

    /// Whether a kernel thread polls the ring.
    pub fn is_sqpoll(&self) -> bool {
        self.sqpoll
    }

    /// Entries submitted and not yet reaped.
    pub fn in_flight(&self) -> u32 {
        self.in_flight
    }

    /// Free submission slots. On an SQPOLL ring this can be less than
    /// `sq_entries - in_flight`: the polling thread posts an entry's
    /// completion before it moves the SQ head past it, so a thread that
    /// reaps every completion (and may have preempted the poller in
    /// between) can still find the last entries' slots taken, until the
    /// poller runs again. Size SQPOLL rings with room for that (twice the
    /// largest batch).
    pub fn sq_space(&self) -> u32 {
        let head = self.sq_head().load(Ordering::Acquire);
        self.sq_entries - self.tail.wrapping_sub(head).min(self.sq_entries)
    }

    /// Queues `sqe`; false when the submission ring is full or as many
    /// entries are in flight as the completion ring holds (so it never
    /// overflows). Whatever memory the entry points to must stay live until
    /// its completion is reaped.
    #[inline]
    pub fn push(&mut self, sqe: &io_uring_sqe) -> bool {
        let head = self.sq_head().load(Ordering::Acquire);
        if self.tail.wrapping_sub(head) >= self.sq_entries || self.in_flight >= self.cq_entries {
            return false;
        }
        let idx = self.tail & self.sq_mask;
        // SAFETY: idx <= sq_mask < sq_entries: inside the SQE array and the
        // index array (checked at set-up); the slot is ours (between head
        // and our tail the kernel does not read it until we publish the
        // tail).
        unsafe {
            self.sqe_base.add(idx as usize).write(*sqe);
            self.sq_array.add(idx as usize).write(idx);
        }
        self.tail = self.tail.wrapping_add(1);
        self.unsubmitted += 1;
        self.in_flight += 1;
        true
    }

    /// Publishes the queued entries: plain rings enter the kernel once
    /// (without waiting for completions); SQPOLL rings only when the
    /// polling thread sleeps.
    #[inline]
    pub fn submit(&mut self) -> io::Result<()> {
        self.submit_and_wait(0)
    }

    /// Publishes the queued entries and, with `min_complete` > 0, waits
    /// until at least that many completions are ready to reap. Plain rings:
    /// one `io_uring_enter(to_submit, min_complete, GETEVENTS)`, which runs
    /// the entries inline (io_uring's "run on wait"); SQPOLL rings: wake
    /// the thread if it sleeps, then enter the kernel to wait only if fewer
    /// completions than `min_complete` are ready.
    #[inline]
    pub fn submit_and_wait(&mut self, min_complete: u32) -> io::Result<()> {
        let min_complete = min_complete.min(self.in_flight);
        if self.unsubmitted > 0 {
            // SAFETY: a field of the SQ ring mapping (see sq_head).
            unsafe { &*self.sq_tail }.store(self.tail, Ordering::Release);
        }
        if self.sqpoll {
            if self.unsubmitted > 0 {
                self.unsubmitted = 0;
                // Order the tail store before reading the flags (liburing
                // does the same full barrier).
                fence(Ordering::SeqCst);
                // SAFETY: a field of the SQ ring mapping (see sq_head).
                let flags = unsafe { &*self.sq_flags }.load(Ordering::Relaxed);
                if flags & IoringSqFlags::NEED_WAKEUP.bits() != 0 {
                    // SAFETY: no pointers; wakes the ring's polling thread.
                    unsafe { io_uring_enter(self.fd.as_fd(), 0, 0, IoringEnterFlags::SQ_WAKEUP) }?;
                }
            }
            while self.ready() < min_complete {
                self.enter(0, min_complete)?;
            }
            return Ok(());
        }
        if self.unsubmitted == 0 && self.ready() >= min_complete {
            return Ok(());
        }
        self.enter(self.unsubmitted, min_complete)
    }

    /// One `io_uring_enter`, retried on EINTR (a signal before anything was
    /// submitted).
    fn enter(&mut self, to_submit: u32, min_complete: u32) -> io::Result<()> {
        let flags = if min_complete > 0 {
            IoringEnterFlags::GETEVENTS
        } else {
            IoringEnterFlags::empty()
        };
        loop {
            // SAFETY: no pointers are passed; the entries were written
            // before the tail was published, and their buffers are the
            // caller's business (see `push`).
            match unsafe { io_uring_enter(self.fd.as_fd(), to_submit, min_complete, flags) } {
                Ok(n) => {
                    self.unsubmitted -= n.min(self.unsubmitted);
                    return Ok(());
                }
                Err(e) if e == rustix::io::Errno::INTR => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Completions ready to reap.
    #[inline]
    pub fn ready(&self) -> u32 {
        // SAFETY: fields of the CQ ring mapping (see sq_head).
        let (head, tail) = unsafe { (&*self.cq_head, &*self.cq_tail) };
        tail.load(Ordering::Acquire)
            .wrapping_sub(head.load(Ordering::Relaxed))
    }

    /// Takes every completion there is, without a system call:
    /// `each(user_data, result)`.
    #[inline]
    pub fn reap(&mut self, mut each: impl FnMut(u64, i32)) {
        // SAFETY: fields of the CQ ring mapping (see sq_head).
        let (head_w, tail_w) = unsafe { (&*self.cq_head, &*self.cq_tail) };
        let mut head = head_w.load(Ordering::Relaxed);
        let tail = tail_w.load(Ordering::Acquire);
        while head != tail {
            // SAFETY: head & mask indexes the CQE array (checked at
            // set-up); the kernel wrote the entry before publishing the
            // tail (Acquire above).
            let cqe = unsafe { &*self.cqes.add((head & self.cq_mask) as usize) };
            each(cqe.user_data.u64_(), cqe.res);
            head = head.wrapping_add(1);
            self.in_flight = self.in_flight.saturating_sub(1);
        }
        head_w.store(head, Ordering::Release);
    }

    /// Submits what is queued and waits until nothing is in flight (after
    /// a control loop, or to drain a batch).
    pub fn wait_all(&mut self, mut each: impl FnMut(u64, i32)) -> io::Result<()> {
        self.submit()?;
        while self.in_flight > 0 {
            self.reap(&mut each);
            if self.in_flight == 0 {
                break;
            }
            self.submit_and_wait(1)?;
        }
        Ok(())
    }
}
