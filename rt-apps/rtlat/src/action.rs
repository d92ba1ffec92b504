//! Per-cycle action: the extension point for "do some work every cycle".
//!
//! A measuring thread calls [`CycleAction::on_cycle`] once per cycle, right
//! after the sample has been recorded and before it computes the next wake-up
//! time, so the action's cost shows up in the following samples exactly as an
//! application's per-period work would.
//!
//! The default action is [`NoAction`], which compiles to nothing: the
//! measuring loop is generic over the action, so the default build keeps the
//! "no syscall, no allocation in the loop" guarantee.
//!
//! [`IoAction`] (`--io-file`/`--io-pipe`) writes one record of `--io-size`
//! bytes per cycle: with `write(2)` in the measuring thread
//! ([`DirectWriter`], `--io-via=direct`), the same `write` through the
//! Kernel Mode Linux trampoline (`crate::kml_io::KmlWriter`,
//! `--io-via=kml`, SYS mode only), or posted without waiting, to FlexSC
//! syscall threads (`crate::flexsc_io::FlexScWriter`, `--io-via=flexsc`) or
//! to an io_uring ring (`crate::uring_io::UringWriter`,
//! `--io-via=io_uring`). All are allocation-free in the loop: the record is
//! formatted into a buffer allocated in `new`, and the posting writers copy
//! it into slots allocated before the loop.
//!
//! Adding another action (e.g. through io_uring or a helper thread):
//! 1. implement [`CycleAction`] for a new type (or a new [`RecordWriter`] for
//!    [`IoAction`]); open files, allocate and pre-fault buffers in
//!    [`CycleAction::prepare`] (runs on the measuring thread after pinning
//!    and priority setup, before the loop);
//! 2. add a variant to [`ActionKind`] (or [`IoVia`]) plus a command-line
//!    option in `options.rs` that selects it;
//! 3. construct it in [`crate::app`]'s `spawn_thread` (the `match` on
//!    [`ActionKind`]). Such an action may make syscalls in the loop by
//!    design; the syscall test in `tests/cli.rs` covers the default and
//!    `--io-via=direct`.

use crate::rt;
use crate::time::Ts;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::thread::JoinHandle;

/// What the measuring thread knows about the cycle that just completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Thread index (the `T:` number).
    pub thread: usize,
    /// Cycle number, starting at 0.
    pub cycle: u64,
    /// Latency in µs (ns with `-N`).
    pub latency: i64,
    /// Programmed (absolute) wake-up time.
    pub expected: Ts,
    /// Time read right after waking up.
    pub woke: Ts,
}

/// Work done once per cycle by a measuring thread.
pub trait CycleAction: Send {
    /// Called once on the measuring thread before the loop: open, allocate and
    /// pre-fault here.
    fn prepare(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Called every cycle inside the measuring loop. An error ends this
    /// thread's measurement and is reported.
    fn on_cycle(&mut self, sample: &Sample) -> io::Result<()>;

    /// Called once after the loop (flush, close).
    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The default action: nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NoAction;

impl CycleAction for NoAction {
    #[inline(always)]
    fn on_cycle(&mut self, _sample: &Sample) -> io::Result<()> {
        Ok(())
    }
}

/// Which [`CycleAction`] the measuring threads run (selected by options).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ActionKind {
    /// [`NoAction`].
    #[default]
    Noop,
    /// [`IoAction`]: one record per cycle (`--io-file`/`--io-pipe`).
    Io(IoSpec),
}

/// Default record size of `--io-size`.
pub const IO_SIZE_DEFAULT: usize = 64;
/// Largest record (`--io-size`): what a FlexSC post-and-forget slot holds.
pub const IO_SIZE_MAX: usize = 256;

/// Where the per-cycle records go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IoTarget {
    /// `--io-file=PATH`: created (truncated) once, every thread appends.
    File(String),
    /// `--io-pipe`: one pipe per measuring thread, drained by a SCHED_OTHER
    /// reader thread.
    Pipe,
}

/// How a record is written (`--io-via`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IoVia {
    /// `write(2)` from the measuring thread.
    #[default]
    Direct,
    /// Posted to the FlexSC syscall threads (data copied into a slot of the
    /// library), not waited for; drained after the loop.
    FlexSc,
    /// Posted to an io_uring ring of the measuring thread (data copied into
    /// a slot, one `io_uring_enter` to submit, completions reaped later
    /// without a system call), not waited for; drained after the loop.
    IoUring,
    /// `write` through the Kernel Mode Linux trampoline (the `[kml]` page,
    /// no `svc` exception), synchronous like `Direct`; only when rtlat runs
    /// in SYS mode.
    Kml,
}

impl IoVia {
    /// Every value, in the order `--help` lists them.
    pub const ALL: [IoVia; 4] = [IoVia::Direct, IoVia::FlexSc, IoVia::IoUring, IoVia::Kml];

    /// The option value (`direct`, `flexsc`, `io_uring`, `kml`).
    pub fn name(self) -> &'static str {
        match self {
            IoVia::Direct => "direct",
            IoVia::FlexSc => "flexsc",
            IoVia::IoUring => "io_uring",
            IoVia::Kml => "kml",
        }
    }

    /// The value named `name`, if any.
    pub fn from_name(name: &str) -> Option<IoVia> {
        IoVia::ALL.into_iter().find(|v| v.name() == name)
    }
}

/// The per-cycle I/O selected by the options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IoSpec {
    pub target: IoTarget,
    /// Bytes per record, 1..=[`IO_SIZE_MAX`].
    pub size: usize,
    pub via: IoVia,
    /// `--io-via=flexsc`: where its syscall thread runs and how long it
    /// polls (`--flexsc-cpus`, `--flexsc-poll-us`).
    pub flexsc: FlexScPlacement,
}

/// The FlexSC syscall thread of `--io-via=flexsc`: by default on the CPUs
/// of rtlat's main thread, polling the library's default time; with
/// `--flexsc-cpus` and `--flexsc-poll-us` a dedicated syscall CPU whose
/// thread polls longer than a period, so that a post never has to wake it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlexScPlacement {
    /// The syscall thread's CPUs; empty: the registering thread's.
    pub cpus: Vec<usize>,
    /// Microseconds the idle syscall thread polls before it sleeps; `None`:
    /// the library's default.
    pub poll_us: Option<u32>,
}

/// One fixed-size text record per sample: `thread:cycle:latency` as `-v`
/// prints it (`%8d:%8lu:%8ld`), padded with spaces and ended by a newline,
/// exactly `size` bytes (cut short when `size` is below 27). Formatting
/// allocates nothing.
#[derive(Clone, Debug)]
pub struct Record {
    buf: [u8; IO_SIZE_MAX],
    size: usize,
}

impl Record {
    /// A record of `size` bytes (clamped to 1..=[`IO_SIZE_MAX`]).
    pub fn new(size: usize) -> Record {
        Record {
            buf: [b' '; IO_SIZE_MAX],
            size: size.clamp(1, IO_SIZE_MAX),
        }
    }

    /// Record size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Formats `s` into the buffer and returns the record's bytes.
    #[inline]
    pub fn fill(&mut self, s: &Sample) -> &[u8] {
        let body = self.size - 1;
        let mut w = Cursor {
            buf: &mut self.buf[..body],
            pos: 0,
        };
        w.int(s.thread as i64, 8);
        w.byte(b':');
        w.uint(s.cycle, 8);
        w.byte(b':');
        w.int(s.latency, 8);
        let end = w.pos;
        self.buf[end..body].fill(b' ');
        self.buf[body] = b'\n';
        &self.buf[..self.size]
    }
}

/// Appends to a fixed buffer, dropping what does not fit.
struct Cursor<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl Cursor<'_> {
    #[inline]
    fn byte(&mut self, b: u8) {
        if self.pos < self.buf.len() {
            self.buf[self.pos] = b;
            self.pos += 1;
        }
    }

    /// `v` right-aligned in at least `width` columns (C's `%*lu`).
    #[inline]
    fn uint(&mut self, v: u64, width: usize) {
        self.digits(false, v, width)
    }

    /// `v` right-aligned in at least `width` columns (C's `%*ld`).
    #[inline]
    fn int(&mut self, v: i64, width: usize) {
        self.digits(v < 0, v.unsigned_abs(), width)
    }

    fn digits(&mut self, neg: bool, mut v: u64, width: usize) {
        let mut tmp = [0u8; 20];
        let mut n = 0;
        loop {
            tmp[n] = b'0' + (v % 10) as u8;
            n += 1;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        let len = n + neg as usize;
        for _ in len..width {
            self.byte(b' ');
        }
        if neg {
            self.byte(b'-');
        }
        while n > 0 {
            n -= 1;
            self.byte(tmp[n]);
        }
    }
}

/// How [`IoAction`] hands a record to the kernel.
pub trait RecordWriter: Send {
    /// Writes (or posts) `record` to `fd`, every byte, from inside the
    /// measuring loop: must not allocate.
    fn write_record(&mut self, fd: BorrowedFd<'_>, record: &[u8]) -> io::Result<()>;

    /// Waits until every record written so far has reached the kernel
    /// (after the loop, before the file descriptor is closed).
    fn drain(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Records accepted by [`RecordWriter::write_record`] but not written
    /// (a writer that never blocks the loop may have to drop some).
    fn dropped(&self) -> u64 {
        0
    }

    /// Why a record is dropped (the end of "N of M records were not
    /// written (...)").
    fn full(&self) -> &'static str {
        "the writer was full"
    }
}

/// Writes all of `buf` with `write` (one `write(2)`-like call: bytes
/// written or an error), retried after a signal (EINTR) or a short write;
/// 0 bytes written is an error.
#[inline]
pub fn write_all_with(
    mut buf: &[u8],
    mut write: impl FnMut(&[u8]) -> io::Result<usize>,
) -> io::Result<()> {
    while !buf.is_empty() {
        match write(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n.min(buf.len())..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `--io-via=direct`: `write(2)` in the measuring thread, retried after a
/// signal or a short write.
#[derive(Clone, Copy, Debug, Default)]
pub struct DirectWriter;

impl RecordWriter for DirectWriter {
    #[inline]
    fn write_record(&mut self, fd: BorrowedFd<'_>, record: &[u8]) -> io::Result<()> {
        rt::write_all(fd.as_raw_fd(), record)
    }
}

/// The destination a measuring thread gets for its [`IoAction`].
#[derive(Debug)]
pub enum IoDest {
    /// Its own descriptor of the shared `--io-file` (opened with O_APPEND).
    File(File),
    /// Create a pipe and its reader thread in `prepare`.
    Pipe,
}

/// Reader of a `--io-pipe` pipe: counts the bytes until end of file.
type Reader = JoinHandle<io::Result<u64>>;

/// Stack size of a pipe reader thread (locked by `-m`, so kept small).
const READER_STACK: usize = 64 * 1024;

/// Writes one [`Record`] per cycle to a file or a pipe through `W`.
pub struct IoAction<W: RecordWriter> {
    dest: Option<IoDest>,
    out: Option<File>,
    reader: Option<Reader>,
    record: Record,
    records: u64,
    writer: W,
}

impl<W: RecordWriter> IoAction<W> {
    /// An action writing `size`-byte records to `dest` through `writer`.
    pub fn new(dest: IoDest, size: usize, writer: W) -> Self {
        IoAction {
            dest: Some(dest),
            out: None,
            reader: None,
            record: Record::new(size),
            records: 0,
            writer,
        }
    }

    /// Records handed to the writer so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Records the writer dropped so far.
    pub fn dropped(&self) -> u64 {
        self.writer.dropped()
    }
}

/// Body of a pipe reader: SCHED_OTHER, read until end of file.
fn drain_pipe(mut input: File) -> io::Result<u64> {
    // Threads inherit the creator's policy: the measuring thread is already
    // real-time when it calls prepare().
    rt::set_scheduler(crate::options::Policy::Other, 0)?;
    let mut buf = [0u8; 4096];
    let mut total = 0u64;
    loop {
        match input.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => total += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

impl<W: RecordWriter> CycleAction for IoAction<W> {
    fn prepare(&mut self) -> io::Result<()> {
        match self.dest.take() {
            Some(IoDest::File(f)) => self.out = Some(f),
            Some(IoDest::Pipe) => {
                let (input, output) = rt::pipe()?;
                let reader = std::thread::Builder::new()
                    .name("rtlat-io-reader".into())
                    .stack_size(READER_STACK)
                    .spawn(move || drain_pipe(input))?;
                self.reader = Some(reader);
                self.out = Some(output);
            }
            None => {}
        }
        if self.out.is_none() {
            return Err(io::Error::other("I/O action prepared twice"));
        }
        Ok(())
    }

    #[inline]
    fn on_cycle(&mut self, sample: &Sample) -> io::Result<()> {
        let Some(out) = self.out.as_ref() else {
            return Err(io::Error::other("I/O action not prepared"));
        };
        self.writer
            .write_record(out.as_fd(), self.record.fill(sample))?;
        self.records += 1;
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        // Every posted record must be written before its descriptor closes.
        let drained = self.writer.drain();
        let flushed = match self.out.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        };
        // Closing the write end ends the reader.
        self.out = None;
        let dropped = self.writer.dropped();
        if let Some(reader) = self.reader.take() {
            let got = reader
                .join()
                .map_err(|_| io::Error::other("pipe reader panicked"))??;
            let sent = (self.records - dropped) * self.record.size() as u64;
            if drained.is_ok() && got != sent {
                return Err(io::Error::other(format!(
                    "pipe reader got {got} bytes, {sent} were written"
                )));
            }
        }
        drained.and(flushed)?;
        if dropped > 0 {
            return Err(io::Error::other(format!(
                "{dropped} of {} records were not written ({})",
                self.records,
                self.writer.full()
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noop_is_default_and_does_nothing() {
        assert_eq!(ActionKind::default(), ActionKind::Noop);
        let mut a = NoAction;
        let s = Sample {
            thread: 0,
            cycle: 0,
            latency: 5,
            expected: Ts::new(1, 0),
            woke: Ts::new(1, 5000),
        };
        assert!(a.prepare().is_ok());
        assert!(a.on_cycle(&s).is_ok());
        assert!(a.finish().is_ok());
    }

    fn sample(thread: usize, cycle: u64, latency: i64) -> Sample {
        Sample {
            thread,
            cycle,
            latency,
            expected: Ts::new(1, 0),
            woke: Ts::new(1, 5000),
        }
    }

    #[test]
    fn record_is_the_verbose_line_padded_to_size() {
        let mut r = Record::new(64);
        let bytes = r.fill(&sample(1, 42, 17)).to_vec();
        assert_eq!(bytes.len(), 64);
        let line = format!("{:8}:{:8}:{:8}", 1, 42, 17);
        assert_eq!(&bytes[..26], line.as_bytes());
        assert!(bytes[26..63].iter().all(|&b| b == b' '));
        assert_eq!(bytes[63], b'\n');
        // A shorter value after a longer one leaves no stale digits.
        r.fill(&sample(0, 123_456_789_012, -3_000_000_000));
        let bytes = r.fill(&sample(2, 7, -5)).to_vec();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            format!("{:<63}\n", format!("{:8}:{:8}:{:8}", 2, 7, -5))
        );
        // Wide numbers widen the line like printf; small sizes cut it short.
        let mut r = Record::new(256);
        let text = String::from_utf8(r.fill(&sample(3, u64::MAX, i64::MIN)).to_vec()).unwrap();
        assert_eq!(
            text.trim_end(),
            format!("{:8}:{}:{}", 3, u64::MAX, i64::MIN)
        );
        assert_eq!(text.len(), 256);
        let mut r = Record::new(10);
        assert_eq!(r.fill(&sample(1, 2, 3)), b"       1:\n");
        let mut r = Record::new(1);
        assert_eq!(r.fill(&sample(1, 2, 3)), b"\n");
        assert_eq!(Record::new(0).size(), 1);
        assert_eq!(Record::new(1000).size(), IO_SIZE_MAX);
    }

    #[test]
    fn direct_io_to_a_pipe_reaches_the_reader() {
        let mut a = IoAction::new(IoDest::Pipe, 100, DirectWriter);
        assert!(a.on_cycle(&sample(0, 0, 1)).is_err(), "not prepared yet");
        a.prepare().unwrap();
        // More than a pipe buffer (64 KiB): the reader must keep up.
        for c in 0..2000 {
            a.on_cycle(&sample(0, c, 10)).unwrap();
        }
        assert_eq!(a.records(), 2000);
        a.finish().unwrap();
        assert!(a.prepare().is_err(), "prepared twice");
    }

    #[test]
    fn direct_io_to_a_file_writes_every_record() {
        let path = std::env::temp_dir().join(format!("rtlat-io-{}.txt", std::process::id()));
        let f = File::create(&path).unwrap();
        let mut a = IoAction::new(IoDest::File(f), 40, DirectWriter);
        a.prepare().unwrap();
        for c in 0..50 {
            a.on_cycle(&sample(3, c, c as i64 * 2)).unwrap();
        }
        a.finish().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(text.len(), 50 * 40);
        for (c, line) in text.lines().enumerate() {
            assert_eq!(line.len(), 39);
            let f: Vec<i64> = line.split(':').map(|v| v.trim().parse().unwrap()).collect();
            assert_eq!(f, vec![3, c as i64, c as i64 * 2]);
        }
    }

    struct Failing;
    impl RecordWriter for Failing {
        fn write_record(&mut self, _fd: BorrowedFd<'_>, _record: &[u8]) -> io::Result<()> {
            Err(io::Error::from_raw_os_error(libc::ENOSPC))
        }
    }

    #[test]
    fn write_errors_reach_the_loop() {
        let mut a = IoAction::new(IoDest::Pipe, 8, Failing);
        a.prepare().unwrap();
        let e = a.on_cycle(&sample(0, 0, 1)).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC));
        assert_eq!(a.records(), 0);
        a.finish().unwrap();
        // A descriptor not open for writing: EBADF, not a crash.
        let (input, _output) = rt::pipe().unwrap();
        assert_eq!(
            DirectWriter
                .write_record(input.as_fd(), b"x")
                .unwrap_err()
                .raw_os_error(),
            Some(libc::EBADF)
        );
    }
}
