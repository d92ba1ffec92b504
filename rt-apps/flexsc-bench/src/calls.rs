//! The measured calls, the [`Backend`] trait (how a call reaches the kernel)
//! with the direct backend, and the measuring loops.

use crate::stats::Stats;
use rt_utils::sys::{now_ns, thread_cpu_ns};

/// Bytes of the `write`/`pwrite64` calls.
pub const WRITE_SIZE: usize = 64;

/// One system call as a FlexSC entry carries it: EABI number and `r0..r5`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Call {
    /// Name in the report.
    pub name: &'static str,
    pub nr: u32,
    pub args: [u32; 6],
    /// The result every call must return.
    pub expect: i64,
}

/// The buffers and descriptors the calls use; they must outlive every
/// [`Call`] built from them (the calls hold raw pointers into `data`).
pub struct Targets {
    pub(crate) data: Box<[u8; WRITE_SIZE]>,
    pub(crate) devnull: std::fs::File,
    pub(crate) file: std::fs::File,
}

impl Targets {
    /// Opens `/dev/null` and creates `file` (truncated).
    pub fn open(file: &str) -> std::io::Result<Targets> {
        let mut data = Box::new([0u8; WRITE_SIZE]);
        for (i, b) in data.iter_mut().enumerate() {
            *b = b'a' + (i % 26) as u8;
        }
        data[WRITE_SIZE - 1] = b'\n';
        Ok(Targets {
            data,
            devnull: std::fs::OpenOptions::new().write(true).open("/dev/null")?,
            file: std::fs::File::create(file)?,
        })
    }

    /// `getpid()`.
    pub fn getpid(&self) -> Call {
        Call {
            name: "getpid",
            nr: libc::SYS_getpid as u32,
            args: [0; 6],
            expect: std::process::id() as i64,
        }
    }

    /// `write(/dev/null, data, 64)`.
    pub fn write(&self) -> Call {
        use std::os::fd::AsRawFd;
        Call {
            name: "write",
            nr: libc::SYS_write as u32,
            args: [
                self.devnull.as_raw_fd() as u32,
                self.data.as_ptr() as usize as u32,
                WRITE_SIZE as u32,
                0,
                0,
                0,
            ],
            expect: WRITE_SIZE as i64,
        }
    }

    /// `pwrite64(file, data, 64, 0)`: EABI passes the 64-bit offset in an
    /// even register pair, so r3 is padding and r4/r5 hold the offset.
    pub fn pwrite64(&self) -> Call {
        use std::os::fd::AsRawFd;
        Call {
            name: "pwrite64",
            nr: libc::SYS_pwrite64 as u32,
            args: [
                self.file.as_raw_fd() as u32,
                self.data.as_ptr() as usize as u32,
                WRITE_SIZE as u32,
                0,
                0,
                0,
            ],
            expect: WRITE_SIZE as i64,
        }
    }
}

/// How a call reaches the kernel.
pub trait Backend {
    /// Path name in the report (`direct`, `flexsc`, `io_uring`, ...).
    fn name(&self) -> &'static str;

    /// The result every run of `c` on this path must return: `c.expect`,
    /// except where the path stands in another operation for the call
    /// (io_uring's `IORING_OP_NOP` for `getpid` returns 0).
    fn expect(&self, c: &Call) -> i64 {
        c.expect
    }

    /// Runs `c` and returns its result (`-errno` on failure).
    ///
    /// # Safety
    /// `c` must be valid to run: its pointers describe live memory for the
    /// whole call (as [`Targets`] guarantees while it lives).
    unsafe fn call(&mut self, c: &Call) -> Result<i64, String>;

    /// Runs `n` copies of `c` and checks every result against `c.expect`.
    /// FlexSC posts all of them, then waits; the default runs them in turn.
    ///
    /// # Safety
    /// As for [`Backend::call`].
    unsafe fn batch(&mut self, c: &Call, n: usize) -> Result<(), String> {
        for _ in 0..n {
            // SAFETY: the caller's guarantee for `c` covers every call.
            let r = unsafe { self.call(c) }?;
            check_on(self, c, r)?;
        }
        Ok(())
    }
}

/// Checks a result against what the call must return.
pub fn check(c: &Call, r: i64) -> Result<(), String> {
    check_value(c, r, c.expect)
}

/// Checks a result of `c` on `b` against what `b` must return for it.
pub fn check_on<B: Backend + ?Sized>(b: &B, c: &Call, r: i64) -> Result<(), String> {
    check_value(c, r, b.expect(c))
}

fn check_value(c: &Call, r: i64, expect: i64) -> Result<(), String> {
    if r == expect {
        Ok(())
    } else {
        Err(format!("{} returned {r}, expected {expect}", c.name))
    }
}

/// One measurement: the wall-clock figure of the loop (ns per call or
/// calls per second) and the calling thread's own CPU time per call
/// (`CLOCK_THREAD_CPUTIME_ID` read around the same loop), each over the
/// repeats.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Measured {
    pub wall: Stats,
    /// Caller CPU ns per call.
    pub cpu: Stats,
}

/// Direct system calls (`svc #0` through glibc's `syscall()`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Direct;

impl Backend for Direct {
    fn name(&self) -> &'static str {
        "direct"
    }

    #[inline]
    unsafe fn call(&mut self, c: &Call) -> Result<i64, String> {
        // SAFETY: the caller guarantees that `c` is valid to run; each word
        // is one register of the call.
        let r = unsafe { rt_utils::sys::syscall6(c.nr, c.args.map(|w| w as usize)) };
        // The kernel's convention, as a FlexSC entry returns it: -errno.
        Ok(r.map_or_else(|errno| -(errno as i64), |v| v as i64))
    }
}

/// Nanoseconds per call of `c` on `b` (wall clock, and the calling
/// thread's CPU time): `warmup` untimed calls, then `repeats` timed runs of
/// `iters` calls. Every result is checked.
///
/// # Safety
/// `c` must be valid to run (see [`Backend::call`]).
pub unsafe fn cost_per_call<B: Backend>(
    b: &mut B,
    c: &Call,
    warmup: u32,
    iters: u32,
    repeats: u32,
) -> Result<Measured, String> {
    for _ in 0..warmup {
        // SAFETY: forwarded from the caller.
        let r = unsafe { b.call(c) }?;
        check_on(b, c, r)?;
    }
    let mut per_call = Vec::with_capacity(repeats as usize);
    let mut cpu = Vec::with_capacity(repeats as usize);
    for _ in 0..repeats {
        let (t0, c0) = (now_ns(), thread_cpu_ns());
        for _ in 0..iters {
            // SAFETY: forwarded from the caller.
            let r = unsafe { b.call(c) }?;
            check_on(b, c, r)?;
        }
        let (c1, t1) = (thread_cpu_ns(), now_ns());
        per_call.push((t1 - t0) as f64 / iters as f64);
        cpu.push((c1 - c0) as f64 / iters as f64);
    }
    measured(&per_call, &cpu)
}

fn measured(wall: &[f64], cpu: &[f64]) -> Result<Measured, String> {
    match (Stats::of(wall), Stats::of(cpu)) {
        (Some(wall), Some(cpu)) => Ok(Measured { wall, cpu }),
        _ => Err("no repeats".to_string()),
    }
}

/// Calls per second of `c` in batches of `batch` on `b` (and the calling
/// thread's CPU ns per call): one untimed batch, then `repeats` timed runs
/// of at least `calls` calls (whole batches).
///
/// # Safety
/// `c` must be valid to run (see [`Backend::call`]).
pub unsafe fn throughput<B: Backend>(
    b: &mut B,
    c: &Call,
    batch: usize,
    calls: u32,
    repeats: u32,
) -> Result<Measured, String> {
    // SAFETY: forwarded from the caller.
    unsafe { b.batch(c, batch) }?;
    let rounds = (calls as usize).div_ceil(batch).max(1);
    let mut rates = Vec::with_capacity(repeats as usize);
    let mut cpu = Vec::with_capacity(repeats as usize);
    for _ in 0..repeats {
        let (t0, c0) = (now_ns(), thread_cpu_ns());
        for _ in 0..rounds {
            // SAFETY: forwarded from the caller.
            unsafe { b.batch(c, batch) }?;
        }
        let (c1, t1) = (thread_cpu_ns(), now_ns());
        let secs = (t1 - t0).max(1) as f64 / 1e9;
        rates.push((rounds * batch) as f64 / secs);
        cpu.push((c1 - c0) as f64 / (rounds * batch) as f64);
    }
    measured(&rates, &cpu)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(test: &str) -> (Targets, std::path::PathBuf) {
        let p =
            std::env::temp_dir().join(format!("flexsc-bench-test-{}-{test}", std::process::id()));
        (Targets::open(p.to_str().unwrap()).unwrap(), p)
    }

    #[test]
    #[cfg_attr(
        not(target_arch = "arm"),
        ignore = "ARM EABI only (system call numbers and argument words): make host-test runs it"
    )]
    fn direct_calls_return_what_they_should() {
        let (t, path) = targets("direct");
        for c in [t.getpid(), t.write(), t.pwrite64()] {
            // SAFETY: `t` lives until the end of the test.
            let r = unsafe { Direct.call(&c) }.unwrap();
            assert_eq!(r, c.expect, "{}", c.name);
            // SAFETY: as above.
            unsafe { Direct.batch(&c, 3) }.unwrap();
        }
        // pwrite64 at offset 0 every time: the file holds one record.
        assert_eq!(std::fs::metadata(&path).unwrap().len(), WRITE_SIZE as u64);
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn loops_measure_and_check() {
        let (t, path) = targets("loops");
        let c = t.getpid();
        // SAFETY: `t` lives until the end of the test.
        let m = unsafe { cost_per_call(&mut Direct, &c, 2, 20, 3) }.unwrap();
        let s = m.wall;
        assert_eq!(s.n, 3);
        assert!(s.min > 0.0 && s.min <= s.median && s.median <= s.max);
        // The thread's CPU time of a loop of direct calls: at most its wall
        // time (the clocks' granularity aside), and some of it.
        assert_eq!(m.cpu.n, 3);
        assert!(
            m.cpu.median >= 0.0 && m.cpu.median <= 1.5 * s.max + 1000.0,
            "{m:?}"
        );
        // SAFETY: as above.
        let m = unsafe { throughput(&mut Direct, &t.write(), 8, 30, 2) }.unwrap();
        assert_eq!(m.wall.n, 2);
        assert!(m.wall.min > 0.0);
        assert_eq!(m.cpu.n, 2);
        // A wrong expectation is reported, not ignored.
        let bad = Call { expect: -1, ..c };
        // SAFETY: as above.
        let e = unsafe { cost_per_call(&mut Direct, &bad, 0, 5, 1) }.unwrap_err();
        assert!(e.contains("getpid returned"), "{e}");
        let _ = std::fs::remove_file(path);
    }
}
