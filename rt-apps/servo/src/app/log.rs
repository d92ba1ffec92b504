//! The telemetry paths: how each cycle's record leaves the control loop.
//!
//! * [`DirectLog`]: `write(2)` in the loop (and `fdatasync(2)` when due).
//! * [`ThreadLog`]: a heapless SPSC queue to a SCHED_OTHER logger thread
//!   that writes in batches and syncs; the loop only enqueues.
//! * [`UringLog`]: one io_uring write per record (at its offset in a file;
//!   drained in order on a stream), `IORING_OP_FSYNC` (datasync) when due;
//!   nothing waits in the loop.
//! * [`FlexScLog`]: FlexSC post-and-forget (`pwrite64`/`write` on a copy of
//!   the record, `fdatasync`), through `rt-apps/flexsc`.
//!
//! A record that cannot be handed over (queue, ring or syscall page full)
//! or whose write failed is counted as lost; the loop writes the count into
//! every record and the summary reports the total. Nothing is dropped
//! silently.

use crate::telemetry::{HEADER_SIZE, RECORD_SIZE};
use heapless::spsc::{Consumer, Producer};
use rustix::io_uring::{
    io_uring_ptr, io_uring_sqe, io_uring_user_data, IoringFsyncFlags, IoringOp, IoringSqeFlags,
};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use uring::Uring;

/// One record's bytes.
pub type RecordBytes = [u8; RECORD_SIZE];

/// Where the log goes: a regular file (records at fixed offsets, synced),
/// or a stream (pipe, FIFO, tty: written in order, never synced).
#[derive(Debug)]
pub struct Target {
    pub file: File,
    pub seekable: bool,
}

impl Target {
    /// The byte offset of record `cycle` in a file.
    pub fn offset(cycle: u32) -> u64 {
        HEADER_SIZE as u64 + u64::from(cycle) * RECORD_SIZE as u64
    }

    fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

/// How a path ended.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Records known to be written.
    pub written: u64,
    /// Records lost (not handed over, or their write failed).
    pub lost: u64,
    /// The first error.
    pub error: Option<String>,
}

/// A telemetry path as the control loop sees it.
pub trait LogPath {
    /// Hands the record of `cycle` over.
    fn post(&mut self, cycle: u32, rec: &RecordBytes);
    /// Starts a data sync of a log file (does nothing for a stream).
    fn sync(&mut self);
    /// Records lost so far (as far as the loop can know).
    fn lost(&self) -> u32;
}

/// No log.
#[derive(Debug, Default)]
pub struct NoLog;

impl LogPath for NoLog {
    fn post(&mut self, _: u32, _: &RecordBytes) {}
    fn sync(&mut self) {}
    fn lost(&self) -> u32 {
        0
    }
}

fn fdatasync(fd: RawFd) -> io::Result<()> {
    // SAFETY: plain integer argument; an invalid descriptor gives EBADF.
    if unsafe { libc::fdatasync(fd) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `write(2)` in the loop.
#[derive(Debug)]
pub struct DirectLog {
    target: Target,
    written: u64,
    lost: u32,
    error: Option<io::Error>,
}

impl DirectLog {
    pub fn new(target: Target) -> DirectLog {
        DirectLog {
            target,
            written: 0,
            lost: 0,
            error: None,
        }
    }

    /// Final sync; the outcome.
    pub fn finish(mut self) -> Outcome {
        if self.target.seekable {
            if let Err(e) = fdatasync(self.target.fd()) {
                self.error.get_or_insert(e);
            }
        }
        Outcome {
            written: self.written,
            lost: u64::from(self.lost),
            error: self.error.map(|e| format!("log write failed: {e}")),
        }
    }
}

impl LogPath for DirectLog {
    #[inline]
    fn post(&mut self, _cycle: u32, rec: &RecordBytes) {
        match rtlat::rt::write_all(self.target.fd(), rec) {
            Ok(()) => self.written += 1,
            Err(e) => {
                self.lost += 1;
                self.error.get_or_insert(e);
            }
        }
    }

    #[inline]
    fn sync(&mut self) {
        if self.target.seekable {
            if let Err(e) = fdatasync(self.target.fd()) {
                self.error.get_or_insert(e);
            }
        }
    }

    fn lost(&self) -> u32 {
        self.lost
    }
}

/// Records the logger thread's queue holds (at 1 kHz: 8 s of a stalled
/// disk).
pub const QUEUE_RECORDS: usize = 8192;
/// The queue between the loop and the logger thread.
pub type Queue = heapless::spsc::Queue<RecordBytes, QUEUE_RECORDS>;

/// The loop's end of the logger thread's queue.
pub struct ThreadLog<'q> {
    producer: Producer<'q, RecordBytes>,
    sync: &'q AtomicBool,
    lost: u32,
}

impl<'q> ThreadLog<'q> {
    pub fn new(producer: Producer<'q, RecordBytes>, sync: &'q AtomicBool) -> ThreadLog<'q> {
        ThreadLog {
            producer,
            sync,
            lost: 0,
        }
    }
}

impl LogPath for ThreadLog<'_> {
    #[inline]
    fn post(&mut self, _cycle: u32, rec: &RecordBytes) {
        if self.producer.enqueue(*rec).is_err() {
            self.lost += 1;
        }
    }

    #[inline]
    fn sync(&mut self) {
        self.sync.store(true, Ordering::Relaxed);
    }

    fn lost(&self) -> u32 {
        self.lost
    }
}

/// Records the logger writes with one `write(2)`.
const BATCH: usize = 256;

/// The logger thread: SCHED_OTHER, polls the queue every `poll`, writes
/// what it finds in batches, syncs when the loop asks; ends when `done` is
/// set and the queue is empty.
pub fn logger_thread(
    mut consumer: Consumer<'_, RecordBytes>,
    target: &Target,
    sync: &AtomicBool,
    done: &AtomicBool,
) -> Outcome {
    let _ = rt_utils::sched::set_scheduler(libc::SCHED_OTHER, 0);
    let mut out = Outcome::default();
    let mut batch = vec![0u8; BATCH * RECORD_SIZE];
    loop {
        let finishing = done.load(Ordering::Acquire);
        let mut n = 0;
        while n < BATCH {
            let Some(r) = consumer.dequeue() else { break };
            batch[n * RECORD_SIZE..(n + 1) * RECORD_SIZE].copy_from_slice(&r);
            n += 1;
        }
        if n > 0 {
            match rtlat::rt::write_all(target.fd(), &batch[..n * RECORD_SIZE]) {
                Ok(()) => out.written += n as u64,
                Err(e) => {
                    out.lost += n as u64;
                    out.error
                        .get_or_insert_with(|| format!("log write failed: {e}"));
                }
            }
        }
        if target.seekable && (sync.swap(false, Ordering::Relaxed) || (finishing && n == 0)) {
            if let Err(e) = fdatasync(target.fd()) {
                out.error
                    .get_or_insert_with(|| format!("log fdatasync failed: {e}"));
            }
        }
        if n == 0 {
            if finishing {
                return out;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
}

/// Entries of the io_uring (and record buffers in flight).
pub const URING_ENTRIES: u32 = 256;
const SYNC_TAG: u64 = u64::MAX;

/// What the io_uring path keeps besides the ring.
#[derive(Debug)]
struct UringState {
    /// One buffer per entry: a record's bytes stay put until its write
    /// completes.
    bufs: Box<[RecordBytes]>,
    free: heapless::Vec<u16, { URING_ENTRIES as usize }>,
    written: u64,
    lost: u32,
    sync_in_flight: bool,
    error: Option<i32>,
}

impl UringState {
    fn complete(&mut self, tag: u64, res: i32) {
        if tag == SYNC_TAG {
            self.sync_in_flight = false;
            if res < 0 {
                self.error.get_or_insert(-res);
            }
            return;
        }
        let _ = self.free.push(tag as u16);
        if res == RECORD_SIZE as i32 {
            self.written += 1;
        } else {
            self.lost += 1;
            self.error
                .get_or_insert(if res < 0 { -res } else { libc::EIO });
        }
    }
}

/// io_uring submissions without waiting.
#[derive(Debug)]
pub struct UringLog {
    ring: Uring,
    target: Target,
    st: UringState,
}

impl UringLog {
    /// A ring (`sqpoll_idle_ms`: with a polling kernel thread).
    pub fn new(target: Target, sqpoll_idle_ms: Option<u32>) -> io::Result<UringLog> {
        let ring = Uring::new(URING_ENTRIES, sqpoll_idle_ms)?;
        Ok(UringLog {
            ring,
            target,
            st: UringState {
                bufs: vec![[0u8; RECORD_SIZE]; URING_ENTRIES as usize].into_boxed_slice(),
                free: (0..URING_ENTRIES as u16).rev().collect(),
                written: 0,
                lost: 0,
                sync_in_flight: false,
                error: None,
            },
        })
    }

    fn sqe(&self, op: IoringOp, tag: u64) -> io_uring_sqe {
        let mut sqe = io_uring_sqe {
            opcode: op,
            fd: self.target.fd(),
            user_data: io_uring_user_data::from_u64(tag),
            ..Default::default()
        };
        if !self.target.seekable {
            // A stream: each entry starts after the ones before it ended.
            sqe.flags = IoringSqeFlags::IO_DRAIN;
        }
        sqe
    }

    /// Waits for everything in flight, syncs, and gives the outcome.
    pub fn finish(mut self) -> Outcome {
        let st = &mut self.st;
        let waited = self.ring.wait_all(|tag, res| st.complete(tag, res));
        let mut error = self
            .st
            .error
            .map(|e| format!("log write failed: {}", io::Error::from_raw_os_error(e)));
        if let Err(e) = waited {
            error.get_or_insert(format!("io_uring wait failed: {e}"));
        }
        if self.target.seekable {
            if let Err(e) = fdatasync(self.target.fd()) {
                error.get_or_insert(format!("log fdatasync failed: {e}"));
            }
        }
        Outcome {
            written: self.st.written,
            lost: u64::from(self.st.lost),
            error,
        }
    }
}

impl LogPath for UringLog {
    #[inline]
    fn post(&mut self, cycle: u32, rec: &RecordBytes) {
        let st = &mut self.st;
        self.ring.reap(|tag, res| st.complete(tag, res));
        let Some(slot) = self.st.free.pop() else {
            self.st.lost += 1;
            return;
        };
        let buf = &mut self.st.bufs[usize::from(slot)];
        *buf = *rec;
        let ptr = buf.as_mut_ptr();
        let mut sqe = self.sqe(IoringOp::Write, u64::from(slot));
        sqe.addr_or_splice_off_in.addr = io_uring_ptr::new(ptr.cast());
        sqe.len.len = RECORD_SIZE as u32;
        // -1: the file position (streams); a file gets the record's place.
        sqe.off_or_addr2.off = if self.target.seekable {
            Target::offset(cycle)
        } else {
            u64::MAX
        };
        if !self.ring.push(&sqe) {
            let _ = self.st.free.push(slot);
            self.st.lost += 1;
            return;
        }
        if let Err(e) = self.ring.submit() {
            self.st
                .error
                .get_or_insert(e.raw_os_error().unwrap_or(libc::EIO));
        }
    }

    #[inline]
    fn sync(&mut self) {
        if !self.target.seekable || self.st.sync_in_flight {
            return;
        }
        let mut sqe = self.sqe(IoringOp::Fsync, SYNC_TAG);
        sqe.op_flags.fsync_flags = IoringFsyncFlags::DATASYNC;
        if self.ring.push(&sqe) {
            self.st.sync_in_flight = true;
            if let Err(e) = self.ring.submit() {
                self.st
                    .error
                    .get_or_insert(e.raw_os_error().unwrap_or(libc::EIO));
            }
        }
    }

    fn lost(&self) -> u32 {
        self.st.lost
    }
}

/// FlexSC post-and-forget writes.
#[derive(Debug)]
pub struct FlexScLog {
    fx: flexsc::FlexSc,
    target: Target,
    posted: u64,
    lost: u32,
    /// The first failed post.
    post_error: Option<flexsc::Error>,
}

impl FlexScLog {
    /// Registers with FlexSC: one syscall page, one SCHED_OTHER syscall
    /// thread polling `poll_us` before it sleeps; no fallback to direct
    /// calls.
    pub fn new(target: Target, poll_us: u32) -> Result<FlexScLog, String> {
        let cfg = flexsc::Config {
            npages: 1,
            nworkers: 1,
            cpus: 0,
            policy: flexsc::Policy::Other,
            poll_us,
        };
        let fx = match flexsc::FlexSc::register(&cfg) {
            Ok(fx) => fx,
            Err(flexsc::Error::Unsupported) => {
                return Err(
                    "--log-via=flexsc: this kernel has no FlexSC (flexsc_register is not \
                            implemented); use another --log-via or boot a kernel with FlexSC"
                        .into(),
                )
            }
            Err(e) => return Err(format!("--log-via=flexsc: flexsc_register failed: {e}")),
        };
        Ok(FlexScLog::with(fx, target))
    }

    /// Over a given registration (the tests' emulator).
    pub fn with(fx: flexsc::FlexSc, target: Target) -> FlexScLog {
        FlexScLog {
            fx,
            target,
            posted: 0,
            lost: 0,
            post_error: None,
        }
    }

    /// Waits for every posted call, syncs, and gives the outcome.
    pub fn finish(self) -> Outcome {
        let mut error = self
            .post_error
            .map(|e| format!("a FlexSC post failed: {e}"));
        if let Err(e) = self.fx.drain() {
            error.get_or_insert(format!("log write through FlexSC failed: {e}"));
        }
        if self.target.seekable {
            if let Err(e) = fdatasync(self.target.fd()) {
                error.get_or_insert(format!("log fdatasync failed: {e}"));
            }
        }
        Outcome {
            // A detached write that failed is reported (error), not counted.
            written: self.posted,
            lost: u64::from(self.lost),
            error,
        }
    }
}

impl LogPath for FlexScLog {
    #[inline]
    fn post(&mut self, cycle: u32, rec: &RecordBytes) {
        let r = if self.target.seekable {
            self.fx
                .pwrite_detached(self.target.fd(), rec, Target::offset(cycle))
        } else {
            self.fx.write_detached(self.target.fd(), rec)
        };
        match r {
            Ok(()) => self.posted += 1,
            Err(flexsc::Error::Full) => self.lost += 1,
            Err(e) => {
                self.lost += 1;
                self.post_error.get_or_insert(e);
            }
        }
    }

    #[inline]
    fn sync(&mut self) {
        if self.target.seekable {
            if let Ok(t) = self.fx.post(flexsc::Call::fdatasync(self.target.fd())) {
                self.fx.detach(t);
            }
        }
    }

    fn lost(&self) -> u32 {
        self.lost
    }
}
