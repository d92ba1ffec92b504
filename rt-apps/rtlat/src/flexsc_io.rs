//! `--io-via=flexsc`: the per-cycle record is posted to the FlexSC syscall
//! thread of this process (Soares & Stumm, OSDI'10) instead of being
//! written with `write(2)`: the measuring thread copies the record into the
//! pre-allocated buffer of a syscall entry (`FlexSc::write_detached`) and goes
//! back to sleep without waiting for the result. The only system call it may
//! still make is the wake-up of a syscall thread that went to sleep
//! (`flexsc_wait(addr, 0, NULL)`, when the control page shows idle
//! syscall threads; they poll for 50 us, the library's default, before
//! sleeping). With `--flexsc-cpus` and `--flexsc-poll-us` the syscall
//! thread runs on a CPU of its own and polls longer than a period: a
//! dedicated syscall CPU, and the post makes no system call at all. The
//! posted writes are drained after the loop ([`RecordWriter::drain`]),
//! before the descriptor is closed; the first failed write is reported
//! then.
//!
//! There is no fallback: on a kernel without FlexSC, [`register`] fails and
//! rtlat exits with an error before measuring.

use crate::action::{FlexScPlacement, RecordWriter};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::Arc;

/// The process's FlexSC registration, shared by the measuring threads.
pub type Shared = Arc<flexsc::FlexSc>;

/// Registers this process with FlexSC: one syscall page (64 entries), one
/// SCHED_OTHER syscall thread, on the CPUs of the caller and with the
/// library's default polling time unless `placement` names others; no
/// fallback to direct calls.
pub fn register(placement: &FlexScPlacement) -> Result<Shared, String> {
    let defaults = flexsc::Config::default();
    let cfg = flexsc::Config {
        npages: 1,
        nworkers: 1,
        cpus: flexsc::Config::cpu_mask(&placement.cpus)
            .ok_or("--flexsc-cpus: FlexSC places syscall threads on CPUs 0..63 only")?,
        policy: flexsc::Policy::Other,
        poll_us: placement.poll_us.unwrap_or(defaults.poll_us),
    };
    match flexsc::FlexSc::register(&cfg) {
        Ok(fx) => Ok(Arc::new(fx)),
        Err(flexsc::Error::Unsupported) => Err(
            "--io-via=flexsc: this kernel has no FlexSC (flexsc_register is not \
             implemented); use --io-via=direct or boot a kernel with FlexSC"
                .to_string(),
        ),
        Err(e) => Err(format!("--io-via=flexsc: flexsc_register failed: {e}")),
    }
}

fn to_io(e: flexsc::Error) -> io::Error {
    io::Error::other(format!("FlexSC: {e}"))
}

/// Posts each record as a post-and-forget FlexSC `write` (the data is copied
/// into the entry's buffer; no allocation). The measuring thread never waits
/// for an entry: when all are busy (the syscall thread does not keep up) the
/// record is dropped and counted, and the run ends with an error after the
/// loop.
pub struct FlexScWriter {
    fx: Shared,
    dropped: u64,
}

impl FlexScWriter {
    pub fn new(fx: Shared) -> FlexScWriter {
        FlexScWriter { fx, dropped: 0 }
    }
}

impl RecordWriter for FlexScWriter {
    #[inline]
    fn write_record(&mut self, fd: BorrowedFd<'_>, record: &[u8]) -> io::Result<()> {
        match self.fx.write_detached(fd.as_raw_fd(), record) {
            Ok(()) => Ok(()),
            Err(flexsc::Error::Full) => {
                self.dropped += 1;
                Ok(())
            }
            Err(e) => Err(to_io(e)),
        }
    }

    fn drain(&mut self) -> io::Result<()> {
        self.fx.drain().map_err(to_io)
    }

    fn dropped(&self) -> u64 {
        self.dropped
    }

    fn full(&self) -> &'static str {
        "every FlexSC entry was busy"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::{CycleAction, IoAction, IoDest, Sample};
    use crate::time::Ts;

    fn sample(cycle: u64) -> Sample {
        Sample {
            thread: 0,
            cycle,
            latency: 7,
            expected: Ts::new(1, 0),
            woke: Ts::new(1, 7000),
        }
    }

    /// The FlexSC path end to end, against the library's user-space
    /// emulator of the kernel side (the only test of this binary that
    /// registers: one region per process).
    #[test]
    #[cfg_attr(
        not(target_arch = "arm"),
        ignore = "ARM EABI only (system call numbers and argument words): make host-test runs it"
    )]
    fn records_posted_through_flexsc_reach_the_reader_or_are_counted() {
        let cfg = flexsc::Config {
            npages: 1,
            nworkers: 1,
            ..flexsc::Config::default()
        };
        let fx = Arc::new(flexsc::FlexSc::emulated(&cfg).expect("emulator"));

        // Paced like a measuring loop: every record reaches the reader.
        let mut a = IoAction::new(IoDest::Pipe, 200, FlexScWriter::new(fx.clone()));
        a.prepare().unwrap();
        // More records than entries (64): entries are reused.
        for cycle in 0..300 {
            a.on_cycle(&sample(cycle)).unwrap();
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        assert_eq!((a.records(), a.dropped()), (300, 0));
        // finish() drains, closes the pipe and checks the reader's count.
        a.finish().unwrap();

        // A pipe nobody reads: the syscall thread blocks in write() once the
        // pipe is full, the entries run out, records are dropped (the loop
        // never waits), and finish() reports it.
        let (input, output) = crate::rt::pipe().unwrap();
        let mut a = IoAction::new(IoDest::File(output), 256, FlexScWriter::new(fx.clone()));
        a.prepare().unwrap();
        let n = 65536 / 256 + 64 + 100;
        for cycle in 0..n {
            a.on_cycle(&sample(cycle)).unwrap();
        }
        assert_eq!(a.records(), n);
        assert!(a.dropped() >= 1, "nothing dropped");
        // Now read, so that the blocked write and the drain complete.
        let reader = std::thread::spawn(move || std::io::copy(&mut &input, &mut std::io::sink()));
        let e = a.finish().unwrap_err();
        assert!(e.to_string().contains("records were not written"), "{e}");
        let got = reader.join().unwrap().unwrap();
        assert_eq!(got, (n - a.dropped()) * 256);

        // Too large for an entry's buffer: an error, not a truncation.
        let mut w = FlexScWriter::new(fx);
        use std::os::fd::AsFd;
        assert!(w
            .write_record(std::io::stdout().as_fd(), &[0u8; 300])
            .is_err());
    }
}
