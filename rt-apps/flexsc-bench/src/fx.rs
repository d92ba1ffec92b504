//! The FlexSC backend: every call is posted into a syscall entry
//! (`FlexSc::post_raw`) and waited for (`FlexSc::wait`); a batch posts all
//! its entries deferred (`FlexSc::post_raw_deferred`), publishes them with
//! one `FlexSc::submit`, waits for all of them at once
//! (`FlexSc::wait_many`) and reaps each. The only module that uses the
//! `flexsc` crate.

use crate::calls::{check, Backend, Call};
use crate::options::{FxProtocol, Options, ENTRIES_PER_PAGE};

/// Registers this process with `o.workers` SCHED_OTHER syscall threads on
/// `worker_cpus`, `o.npages` syscall pages and `o.poll_us` of polling (the
/// library's default when not given). No fallback to direct calls.
pub fn register(o: &Options, worker_cpus: &[usize]) -> Result<flexsc::FlexSc, String> {
    let defaults = flexsc::Config::default();
    let cfg = flexsc::Config {
        npages: o.npages,
        nworkers: o.workers,
        cpus: flexsc::Config::cpu_mask(worker_cpus)
            .ok_or("FlexSC places syscall threads on CPUs 0..63 only")?,
        policy: flexsc::Policy::Other,
        poll_us: o.poll_us.unwrap_or(defaults.poll_us),
    };
    let protocol = match o.protocol {
        FxProtocol::Auto => flexsc::Protocol::Auto,
        FxProtocol::Batch => flexsc::Protocol::Batch,
        FxProtocol::Original => flexsc::Protocol::Original,
        FxProtocol::RunOnWait => flexsc::Protocol::RunOnWait,
    };
    flexsc::FlexSc::register_protocol(&cfg, protocol).map_err(|e| match e {
        flexsc::Error::Unsupported => {
            "this kernel has no FlexSC (flexsc_register is not implemented)".to_string()
        }
        flexsc::Error::Errno(libc::EINVAL)
            if matches!(o.protocol, FxProtocol::Batch | FxProtocol::RunOnWait) =>
        {
            format!(
                "flexsc_register with the {} protocol: EINVAL (a kernel without it?)",
                protocol_arg(o.protocol)
            )
        }
        e => format!("flexsc_register failed: {e}"),
    })
}

fn protocol_arg(p: FxProtocol) -> &'static str {
    match p {
        FxProtocol::Auto => "auto",
        FxProtocol::Batch => "batch",
        FxProtocol::Original => "original",
        FxProtocol::RunOnWait => "run-on-wait",
    }
}

/// The protocol in force on `fx`, for the report.
pub fn protocol_name(fx: &flexsc::FlexSc) -> &'static str {
    match fx.protocol() {
        flexsc::Protocol::Batch => "batch",
        flexsc::Protocol::RunOnWait => "run-on-wait",
        _ => "original",
    }
}

/// The polling time `register` uses for `o`.
pub fn poll_us(o: &Options) -> u32 {
    o.poll_us
        .unwrap_or_else(|| flexsc::Config::default().poll_us)
}

/// Calls through a registered [`flexsc::FlexSc`].
pub struct FlexScBackend<'a> {
    fx: &'a flexsc::FlexSc,
    tickets: Vec<flexsc::Ticket>,
}

impl<'a> FlexScBackend<'a> {
    pub fn new(fx: &'a flexsc::FlexSc, npages: u32) -> Self {
        FlexScBackend {
            fx,
            tickets: Vec::with_capacity(npages as usize * ENTRIES_PER_PAGE),
        }
    }
}

/// A result as the kernel returns it: the value, or `-errno`.
fn kernel_style(r: flexsc::Result<usize>, c: &Call) -> Result<i64, String> {
    match r {
        Ok(v) => Ok(v as i64),
        Err(flexsc::Error::Errno(e)) => Ok(-(e as i64)),
        Err(e) => Err(format!("FlexSC wait for {}: {e}", c.name)),
    }
}

impl Backend for FlexScBackend<'_> {
    fn name(&self) -> &'static str {
        "flexsc"
    }

    unsafe fn call(&mut self, c: &Call) -> Result<i64, String> {
        // SAFETY: the caller guarantees that `c`'s pointers describe live
        // memory for the call; the ticket is waited for (not leaked) before
        // we return, so the call is complete while that memory is live.
        // Deferred: the wait publishes it (with run-on-wait, without a
        // kick; otherwise with the same kick a post would make).
        let t = unsafe { self.fx.post_raw_deferred(c.nr, c.args) }
            .map_err(|e| format!("FlexSC post of {}: {e}", c.name))?;
        kernel_style(self.fx.wait(t), c)
    }

    unsafe fn batch(&mut self, c: &Call, n: usize) -> Result<(), String> {
        self.tickets.clear();
        for _ in 0..n {
            // SAFETY: as in `call`: every ticket is waited for below (also
            // when a post fails), before this function returns and while
            // `c`'s memory is live.
            let t = unsafe { self.fx.post_raw_deferred(c.nr, c.args) };
            match t {
                Ok(t) => self.tickets.push(t),
                Err(e) => {
                    // Complete what was posted, so the entries are free.
                    let fx = self.fx;
                    for t in self.tickets.drain(..) {
                        let _ = fx.wait(t);
                    }
                    return Err(format!("FlexSC post of {}: {e}", c.name));
                }
            }
        }
        let fx = self.fx;
        // One wake-up for the whole batch (the wait submits it first).
        if let Err(e) = fx.wait_many(&self.tickets, n, None) {
            for t in self.tickets.drain(..) {
                let _ = fx.wait(t);
            }
            return Err(format!("FlexSC wait for {} x{n}: {e}", c.name));
        }
        for t in self.tickets.drain(..) {
            check(c, kernel_style(fx.wait(t), c)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calls::{cost_per_call, throughput, Targets};

    /// The backend against the flexsc library's user-space emulator of the
    /// kernel side: every result is checked by the loops (the only test of
    /// this binary that registers: one region per process).
    #[test]
    #[cfg_attr(
        not(target_arch = "arm"),
        ignore = "ARM EABI only (system call numbers and argument words): make host-test runs it"
    )]
    fn flexsc_backend_runs_every_call_and_batch() {
        let cfg = flexsc::Config {
            npages: 2,
            nworkers: 2,
            ..flexsc::Config::default()
        };
        let fx = flexsc::FlexSc::emulated(&cfg).expect("emulator");
        let path = std::env::temp_dir().join(format!("flexsc-bench-fx-{}", std::process::id()));
        let t = Targets::open(path.to_str().unwrap()).unwrap();
        let mut b = FlexScBackend::new(&fx, 2);
        assert_eq!(b.name(), "flexsc");
        for c in [t.getpid(), t.write(), t.pwrite64()] {
            // SAFETY: `t` outlives `fx` and every call (waited for).
            let s = unsafe { cost_per_call(&mut b, &c, 2, 10, 2) }.unwrap();
            assert!(s.wall.min > 0.0, "{}", c.name);
        }
        for c in [t.getpid(), t.write()] {
            for n in [1, 8, 64, 128] {
                // SAFETY: as above.
                let s = unsafe { throughput(&mut b, &c, n, 128, 1) }.unwrap();
                assert!(s.wall.min > 0.0, "{} x{n}", c.name);
            }
        }
        // More than the 128 entries of two pages: refused, not hung.
        // SAFETY: as above.
        let e = unsafe { b.batch(&t.getpid(), 129) }.unwrap_err();
        assert!(e.contains("FlexSC post of getpid"), "{e}");
        // The entries of the failed batch are free again.
        // SAFETY: as above.
        unsafe { b.batch(&t.getpid(), 128) }.unwrap();
        // Errors come back kernel-style: close(-1) is -EBADF.
        let bad = Call {
            name: "close",
            nr: libc::SYS_close as u32,
            args: [u32::MAX, 0, 0, 0, 0, 0],
            expect: 0,
        };
        // SAFETY: close(-1) touches no memory.
        assert_eq!(unsafe { b.call(&bad) }, Ok(-(libc::EBADF as i64)));
        drop(b);
        fx.shutdown(std::time::Duration::from_secs(1));
        drop(t);
        let _ = std::fs::remove_file(path);
    }
}
