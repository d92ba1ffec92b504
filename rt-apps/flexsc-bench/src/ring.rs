//! The io_uring backends, FlexSC's peer: the same calls through the
//! workspace's one ring (the `uring` crate; this is its only user here, as
//! `fx` is for `flexsc`).
//!
//! * `getpid` becomes `IORING_OP_NOP`: io_uring has no getpid, and a NOP is
//!   the floor of a call through the ring (it must complete with 0);
//! * `write` is `IORING_OP_WRITE` of the same 64 bytes to `/dev/null` at
//!   the file position (offset -1, as `write(2)`);
//! * `pwrite64` is `IORING_OP_WRITE` at offset 0 of the same tmpfs file.
//!
//! Every completion is checked against what the direct call returns.
//!
//! Two modes: **plain**, one `io_uring_enter(to_submit = B, min_complete =
//! B, GETEVENTS)` per call or batch, which issues the entries inline (the
//! caller's thread runs them: io_uring's own "run on wait"); **SQPOLL**, a
//! kernel thread (pinned with `SQ_AFF` to the CPU FlexSC's syscall thread
//! gets) polls the ring, the caller publishes the tail, wakes the thread
//! only if it sleeps, and enters the kernel only to wait for completions.

use crate::calls::{check_on, Backend, Call, Targets, WRITE_SIZE};
use rustix::io_uring::io_uring_sqe;
use std::os::fd::AsFd;
use uring::{Sqpoll, Uring};

/// Calls through an io_uring.
pub struct UringBackend<'a> {
    ring: Uring,
    targets: &'a Targets,
    getpid: u32,
    write: u32,
    pwrite64: u32,
    /// `res` of the completions of a batch (reused: no allocation while
    /// measuring).
    results: Vec<i32>,
    /// Largest batch.
    batch: u32,
}

impl<'a> UringBackend<'a> {
    /// A ring for batches of up to `batch` calls of `targets`; with
    /// `sqpoll`, a polling kernel thread. Twice the batch: an SQPOLL
    /// thread moves the SQ head past a batch only after posting its
    /// completions (`Uring::sq_space`).
    pub fn new(targets: &'a Targets, batch: u32, sqpoll: Option<Sqpoll>) -> std::io::Result<Self> {
        let ring = Uring::with_sqpoll((2 * batch.max(1)).next_power_of_two(), sqpoll)?;
        let batch = batch.max(1);
        Ok(UringBackend {
            ring,
            targets,
            getpid: libc::SYS_getpid as u32,
            write: libc::SYS_write as u32,
            pwrite64: libc::SYS_pwrite64 as u32,
            results: Vec::with_capacity(batch as usize),
            batch,
        })
    }

    /// The entry that does `c` on this ring.
    fn sqe(&self, c: &Call) -> Result<io_uring_sqe, String> {
        let data = self.targets.data.as_ptr();
        let len = WRITE_SIZE as u32;
        if c.nr == self.getpid {
            Ok(uring::nop(0))
        } else if c.nr == self.write {
            Ok(uring::write(
                self.targets.devnull.as_fd(),
                data,
                len,
                u64::MAX,
                0,
            ))
        } else if c.nr == self.pwrite64 {
            Ok(uring::write(self.targets.file.as_fd(), data, len, 0, 0))
        } else {
            Err(format!("{}: no io_uring operation for this call", c.name))
        }
    }
}

impl Backend for UringBackend<'_> {
    fn name(&self) -> &'static str {
        if self.ring.is_sqpoll() {
            "io_uring_sqpoll"
        } else {
            "io_uring"
        }
    }

    fn expect(&self, c: &Call) -> i64 {
        if c.nr == self.getpid {
            0
        } else {
            c.expect
        }
    }

    unsafe fn call(&mut self, c: &Call) -> Result<i64, String> {
        let sqe = self.sqe(c)?;
        // The entry points into `self.targets`, which outlives the ring's
        // use here: the completion is reaped before we return.
        if !self.ring.push(&sqe) {
            return Err(format!("{}: the io_uring is full", c.name));
        }
        self.ring
            .submit_and_wait(1)
            .map_err(|e| format!("io_uring_enter for {}: {e}", c.name))?;
        let mut r = None;
        self.ring.reap(|_, res| r = Some(res));
        r.map(i64::from)
            .ok_or_else(|| format!("{}: no completion after waiting for one", c.name))
    }

    unsafe fn batch(&mut self, c: &Call, n: usize) -> Result<(), String> {
        let sqe = self.sqe(c)?;
        if n > self.batch as usize {
            return Err(format!(
                "{}: a batch of {n} does not fit the io_uring's batches of {}",
                c.name, self.batch
            ));
        }
        for _ in 0..n {
            if !self.ring.push(&sqe) {
                // Complete what was queued, so the ring is empty again.
                let _ = self.ring.wait_all(|_, _| {});
                return Err(format!("{}: the io_uring is full", c.name));
            }
        }
        self.ring
            .submit_and_wait(n as u32)
            .map_err(|e| format!("io_uring_enter for {}: {e}", c.name))?;
        let mut results = core::mem::take(&mut self.results);
        results.clear();
        self.ring.reap(|_, res| results.push(res));
        let checked = if results.len() != n {
            Err(format!(
                "{}: {} completions after waiting for {n}",
                c.name,
                results.len()
            ))
        } else {
            results
                .iter()
                .try_for_each(|&r| check_on(self, c, i64::from(r)))
        };
        self.results = results;
        checked
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calls::{cost_per_call, throughput};

    /// The backends against the kernel's io_uring, plain and SQPOLL, every
    /// result checked by the loops; where io_uring is missing (qemu-user:
    /// ENOSYS) the test says SKIPPED.
    #[test]
    fn uring_backends_run_every_call_and_batch() {
        let path = std::env::temp_dir().join(format!("flexsc-bench-ring-{}", std::process::id()));
        let t = Targets::open(path.to_str().unwrap()).unwrap();
        for sqpoll in [
            None,
            Some(Sqpoll {
                idle_ms: 1,
                cpu: None,
            }),
        ] {
            let mut b = match UringBackend::new(&t, 64, sqpoll) {
                Ok(b) => b,
                Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
                    eprintln!("SKIPPED: no io_uring here (qemu-user?): {e}");
                    return;
                }
                Err(e) => panic!("io_uring set-up: {e}"),
            };
            assert_eq!(
                b.name(),
                if sqpoll.is_some() {
                    "io_uring_sqpoll"
                } else {
                    "io_uring"
                }
            );
            for c in [t.getpid(), t.write(), t.pwrite64()] {
                // SAFETY: `t` outlives the backend and every call.
                let m = unsafe { cost_per_call(&mut b, &c, 2, 10, 2) }.unwrap();
                assert!(m.wall.min > 0.0, "{}", c.name);
                // SAFETY: as above.
                assert_eq!(unsafe { b.call(&c) }, Ok(b.expect(&c)), "{}", c.name);
            }
            // The NOP stands in for getpid: 0, where the direct call gives
            // the pid.
            assert_eq!(b.expect(&t.getpid()), 0);
            assert_eq!(b.expect(&t.write()), WRITE_SIZE as i64);
            for c in [t.getpid(), t.write()] {
                for n in [1, 8, 64] {
                    // SAFETY: as above.
                    let m = unsafe { throughput(&mut b, &c, n, 128, 1) }.unwrap();
                    assert!(m.wall.min > 0.0, "{} x{n}", c.name);
                }
            }
            // More than the ring holds: refused, not hung, and the ring
            // still works.
            // SAFETY: as above.
            let e = unsafe { b.batch(&t.getpid(), 65) }.unwrap_err();
            assert!(e.contains("does not fit"), "{e}");
            // SAFETY: as above.
            unsafe { b.batch(&t.write(), 64) }.unwrap();
            // A call it has no operation for is an error.
            let bad = Call {
                name: "close",
                nr: libc::SYS_close as u32,
                args: [0; 6],
                expect: 0,
            };
            // SAFETY: nothing is run.
            assert!(unsafe { b.call(&bad) }
                .unwrap_err()
                .contains("no io_uring operation"));
            // A wrong result is reported (as for a wrong expectation).
            let wrong = Call {
                expect: 63,
                ..t.write()
            };
            // SAFETY: as above.
            let e = unsafe { b.batch(&wrong, 4) }.unwrap_err();
            assert!(e.contains("write returned 64, expected 63"), "{e}");
        }
        // pwrite64 at offset 0 every time: the file holds one record.
        assert_eq!(std::fs::metadata(&path).unwrap().len(), WRITE_SIZE as u64);
        drop(t);
        let _ = std::fs::remove_file(path);
    }
}
