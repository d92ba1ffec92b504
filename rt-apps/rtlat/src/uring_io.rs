//! `--io-via=io_uring`: the per-cycle record is posted to an io_uring ring
//! of the measuring thread (the workspace's `uring` crate) and not waited
//! for, with the same post-and-forget semantics as `--io-via=flexsc`:
//!
//! * the measuring thread copies the record into one of [`SLOTS`] slot
//!   buffers allocated before the loop (as many as the FlexSC path has
//!   entries: one syscall page), queues an `IORING_OP_WRITE` of it (offset
//!   `u64::MAX`: the file position, so `O_APPEND` appends) and submits it
//!   with one `io_uring_enter(to_submit = 1, min_complete = 0)`, without
//!   `IORING_ENTER_GETEVENTS`: it never waits for the completion;
//! * completions are reaped from the shared completion ring without a
//!   system call at the next cycles, which frees their slots; the first
//!   failed or short write is remembered and reported after the loop;
//! * a record that finds every slot in flight is dropped and counted, not
//!   waited for, and the run then ends with an error;
//! * after the loop ([`RecordWriter::drain`]), before the descriptor is
//!   closed, every posted write is waited for.
//!
//! The ring is a plain one (no `IORING_SETUP_SQPOLL`): submitting enters
//! the kernel once per record, and the kernel issues the write inline in
//! that call when it can complete without blocking (a tmpfs file, a pipe
//! with room), so the write's own cost is paid by the measuring thread,
//! unlike with FlexSC, whose syscall thread does the write. A write that
//! would block (a full pipe) is completed later by the kernel (poll-driven
//! retry, or an io-wq worker of the measuring thread). An SQPOLL thread
//! sleeps only after whole milliseconds (jiffies) idle, so at a 1 ms period
//! it would poll without pause on the measured CPU; flexsc-bench measures
//! SQPOLL (docs/flexsc-bench.md).
//!
//! Each measuring thread has its own ring (an io_uring ring has one
//! submitter). There is no fallback: on a kernel without io_uring,
//! [`probe`] fails and rtlat exits with an error before measuring.

use crate::action::{RecordWriter, IO_SIZE_MAX};
use std::io;
use std::os::fd::BorrowedFd;
use uring::Uring;

/// Slots (writes in flight) per measuring thread: the number of entries
/// of the FlexSC path (one syscall page), so that both paths drop a record
/// at the same backlog.
pub const SLOTS: usize = rtflex_uapi::flexsc::ENTRIES_PER_PAGE;

// One bit per slot in `UringWriter::free`.
const _: () = assert!(SLOTS <= 64 && SLOTS.is_power_of_two());

/// Every slot free.
const ALL_FREE: u64 = if SLOTS == 64 {
    u64::MAX
} else {
    (1 << SLOTS) - 1
};

/// Checks that this kernel gives rtlat an io_uring ring (set up and dropped
/// again), so that `--io-via=io_uring` fails before measuring, with a
/// message, where it cannot work.
pub fn probe() -> Result<(), String> {
    match Uring::new(SLOTS as u32, None) {
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => Err(
            "--io-via=io_uring: this kernel has no io_uring (io_uring_setup is not \
             implemented: CONFIG_IO_URING is off, or an emulator without it); use \
             --io-via=direct"
                .to_string(),
        ),
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => Err(format!(
            "--io-via=io_uring: io_uring_setup refused: {e} (see the sysctl \
             kernel.io_uring_disabled)"
        )),
        Err(e) => Err(format!("--io-via=io_uring: io_uring_setup failed: {e}")),
    }
}

/// The first write that failed, kept without allocating (the loop reaps).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Failure {
    /// The write's result was `-errno`.
    Errno(i32),
    /// Fewer bytes were written than the record has.
    Short { wrote: i32, len: usize },
}

impl Failure {
    fn to_io(self) -> io::Error {
        match self {
            Failure::Errno(e) => {
                let os = io::Error::from_raw_os_error(e);
                io::Error::new(os.kind(), format!("io_uring write: {os}"))
            }
            Failure::Short { wrote, len } => io::Error::other(format!(
                "io_uring write: short write, {wrote} of {len} bytes"
            )),
        }
    }
}

/// Posts each record as an io_uring write from a slot buffer and never
/// waits for it in the loop (see the module documentation).
pub struct UringWriter {
    // Before `slots`: dropped first (and `Drop` waits for what is in flight
    // before either goes).
    ring: Uring,
    /// The record bytes of each slot, live and unchanged while its write
    /// is in flight (the kernel reads them when it issues the write).
    slots: Box<[[u8; IO_SIZE_MAX]; SLOTS]>,
    /// Length of the record in each slot.
    lens: [usize; SLOTS],
    /// Bit `i` set: slot `i` is free.
    free: u64,
    failure: Option<Failure>,
    dropped: u64,
}

impl UringWriter {
    /// A ring of [`SLOTS`] entries and its slot buffers (allocated and
    /// touched now, not in the loop).
    pub fn new() -> io::Result<UringWriter> {
        Ok(UringWriter {
            ring: Uring::new(SLOTS as u32, None)?,
            slots: Box::new([[0u8; IO_SIZE_MAX]; SLOTS]),
            lens: [0; SLOTS],
            free: ALL_FREE,
            failure: None,
            dropped: 0,
        })
    }

    /// Takes the completions there are (no system call) and frees their
    /// slots; remembers the first failure.
    #[inline]
    fn reap(&mut self) {
        let (free, lens, failure) = (&mut self.free, &self.lens, &mut self.failure);
        self.ring.reap(|slot, res| {
            let slot = slot as usize % SLOTS;
            *free |= 1 << slot;
            let len = lens[slot];
            let bad = if res < 0 {
                Some(Failure::Errno(-res))
            } else if res as usize != len {
                Some(Failure::Short { wrote: res, len })
            } else {
                None
            };
            if failure.is_none() {
                *failure = bad;
            }
        });
    }

    /// Writes in flight.
    pub fn in_flight(&self) -> u32 {
        self.ring.in_flight()
    }
}

impl RecordWriter for UringWriter {
    #[inline]
    fn write_record(&mut self, fd: BorrowedFd<'_>, record: &[u8]) -> io::Result<()> {
        if record.len() > IO_SIZE_MAX {
            return Err(io::Error::other(format!(
                "io_uring: a {}-byte record does not fit a {IO_SIZE_MAX}-byte slot",
                record.len()
            )));
        }
        self.reap();
        if self.free == 0 {
            self.dropped += 1;
            return Ok(());
        }
        let slot = self.free.trailing_zeros() as usize;
        let buf = &mut self.slots[slot];
        buf[..record.len()].copy_from_slice(record);
        self.lens[slot] = record.len();
        let sqe = uring::write(fd, buf.as_ptr(), record.len() as u32, u64::MAX, slot as u64);
        // The slot stays taken (and its bytes untouched) until its
        // completion is reaped.
        if !self.ring.push(&sqe) {
            // Not with a free slot: at most SLOTS writes are in flight and
            // the ring has SLOTS submission entries.
            self.dropped += 1;
            return Ok(());
        }
        self.free &= !(1 << slot);
        self.ring.submit()
    }

    fn drain(&mut self) -> io::Result<()> {
        let (free, lens, failure) = (&mut self.free, &self.lens, &mut self.failure);
        self.ring.wait_all(|slot, res| {
            let slot = slot as usize % SLOTS;
            *free |= 1 << slot;
            if failure.is_none() {
                if res < 0 {
                    *failure = Some(Failure::Errno(-res));
                } else if res as usize != lens[slot] {
                    *failure = Some(Failure::Short {
                        wrote: res,
                        len: lens[slot],
                    });
                }
            }
        })?;
        match self.failure.take() {
            Some(f) => Err(f.to_io()),
            None => Ok(()),
        }
    }

    fn dropped(&self) -> u64 {
        self.dropped
    }

    fn full(&self) -> &'static str {
        "every io_uring slot was in flight"
    }
}

impl Drop for UringWriter {
    fn drop(&mut self) {
        // Never free the slot buffers under a write the kernel may still
        // read (a thread that ended without finish()).
        if self.ring.in_flight() > 0 {
            let _ = self.ring.wait_all(|_, _| {});
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::{CycleAction, IoAction, IoDest, Sample};
    use crate::time::Ts;
    use std::os::fd::AsFd;
    use std::os::unix::fs::OpenOptionsExt;

    fn sample(cycle: u64) -> Sample {
        Sample {
            thread: 2,
            cycle,
            latency: 9,
            expected: Ts::new(1, 0),
            woke: Ts::new(1, 9000),
        }
    }

    /// io_uring where the kernel has it: qemu-user (the armv7 tests) has
    /// none, a host kernel may have it disabled.
    fn ring_or_skip() -> Option<UringWriter> {
        match UringWriter::new() {
            Ok(w) => Some(w),
            Err(e) => {
                eprintln!("SKIPPED: no io_uring here ({e})");
                None
            }
        }
    }

    #[test]
    fn records_written_through_io_uring_reach_the_file_in_full() {
        let Some(w) = ring_or_skip() else { return };
        probe().expect("probe where a ring works");
        let path = std::env::temp_dir().join(format!("rtlat-uring-{}.txt", std::process::id()));
        // As rtlat opens an --io-file: truncated, then O_APPEND.
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .custom_flags(libc::O_APPEND)
            .open(&path)
            .unwrap();
        let mut a = IoAction::new(IoDest::File(f), 64, w);
        a.prepare().unwrap();
        // More records than slots: slots are reused. Paced like a
        // measuring loop: a write the kernel cannot issue inline (a
        // regular file on a disk file system goes to an io-wq worker)
        // completes before the slots run out.
        for cycle in 0..500 {
            a.on_cycle(&sample(cycle)).unwrap();
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        assert_eq!((a.records(), a.dropped()), (500, 0));
        a.finish().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(text.len(), 500 * 64);
        let mut cycles: Vec<u64> = text
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split(':').map(str::trim).collect();
                assert_eq!((f[0], f[2]), ("2", "9"), "{l}");
                f[1].parse().unwrap()
            })
            .collect();
        cycles.sort_unstable();
        assert_eq!(cycles, (0..500).collect::<Vec<_>>());
    }

    #[test]
    fn a_full_pipe_drops_records_and_failures_are_reported() {
        let Some(w) = ring_or_skip() else { return };
        // Nobody reads the pipe: once it is full the writes stay in
        // flight, the slots run out and records are dropped, not waited for.
        let (input, output) = crate::rt::pipe().unwrap();
        let mut a = IoAction::new(IoDest::File(output), 256, w);
        a.prepare().unwrap();
        let n = 65536 / 256 + SLOTS as u64 + 100;
        for cycle in 0..n {
            a.on_cycle(&sample(cycle)).unwrap();
        }
        assert_eq!(a.records(), n);
        assert!(a.dropped() >= 1, "nothing dropped");
        let reader = std::thread::spawn(move || std::io::copy(&mut &input, &mut std::io::sink()));
        let e = a.finish().unwrap_err();
        assert!(e.to_string().contains("io_uring slot"), "{e}");
        assert_eq!(reader.join().unwrap().unwrap(), (n - a.dropped()) * 256);

        // A write that fails (the read end of a pipe: EBADF) is reported
        // after the loop, with its errno.
        let Some(mut w) = ring_or_skip() else { return };
        let (input, _output) = crate::rt::pipe().unwrap();
        w.write_record(input.as_fd(), b"x\n").unwrap();
        let e = w.drain().unwrap_err();
        let ebadf = io::Error::from_raw_os_error(libc::EBADF).to_string();
        assert!(e.to_string().starts_with("io_uring write: "), "{e}");
        assert!(e.to_string().contains(&ebadf), "{e}");
        assert_eq!(w.in_flight(), 0);
        // Too large for a slot: an error, not a truncation.
        assert!(w.write_record(input.as_fd(), &[0u8; 300]).is_err());
    }
}
