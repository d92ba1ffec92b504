//! The program: parse, pin, measure direct then FlexSC, print.

use crate::calls::{cost_per_call, throughput, Backend, Call, Direct, Targets};
use crate::fx;
use crate::options::{self, Options, Parsed};
use crate::report::{Batched, PerCall, Report, Setup};
use crate::stats::Stats;
use rt_utils::affinity;

/// The kernel release (`uname -r`).
fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

/// Measures every call on `b`: cost per call, then throughput per batch.
fn measure<B: Backend>(
    b: &mut B,
    o: &Options,
    per_call: &[Call],
    batched: &[Call],
) -> Result<(Vec<Stats>, Vec<Stats>), String> {
    let mut pc = Vec::new();
    for c in per_call {
        // SAFETY: the calls were built from the `Targets` that the caller
        // keeps alive for the whole measurement.
        let s = unsafe { cost_per_call(b, c, o.warmup, o.iters, o.repeats) }
            .map_err(|e| format!("{}: {e}", b.name()))?;
        pc.push(s);
    }
    let mut bt = Vec::new();
    for c in batched {
        for &n in &o.batches {
            // SAFETY: as above.
            let s = unsafe { throughput(b, c, n, o.batch_calls, o.repeats) }
                .map_err(|e| format!("{}: {e}", b.name()))?;
            bt.push(s);
        }
    }
    Ok((pc, bt))
}

/// Runs flexsc-bench with `args`; returns the exit code.
pub fn main_with_args(args: &[String]) -> i32 {
    let o = match options::parse(args) {
        Ok(Parsed::Run(o)) => o,
        Ok(Parsed::Help) => {
            print!("{}", options::HELP);
            return 0;
        }
        Err(e) => {
            eprintln!("flexsc-bench: {e}");
            eprintln!("Try 'flexsc-bench --help' for more information.");
            return 2;
        }
    };
    match run(&o) {
        Ok(rc) => rc,
        Err(e) => {
            eprintln!("flexsc-bench: {e}");
            1
        }
    }
}

fn run(o: &Options) -> Result<i32, String> {
    let allowed = affinity::current_affinity().map_err(|e| format!("sched_getaffinity: {e}"))?;
    if !allowed.contains(&o.cpu) {
        return Err(format!(
            "--cpu={} is not allowed (allowed: {allowed:?})",
            o.cpu
        ));
    }
    let worker_cpus = o.placement.cpus(o.cpu, &allowed)?;
    affinity::pin_to(o.cpu).map_err(|e| format!("cannot pin to CPU {}: {e}", o.cpu))?;
    let targets = Targets::open(&o.file).map_err(|e| format!("cannot open the targets: {e}"))?;
    let per_call = [targets.getpid(), targets.write(), targets.pwrite64()];
    let batched = [targets.getpid(), targets.write()];

    let (d_pc, d_bt) = measure(&mut Direct, o, &per_call, &batched)?;
    let mut rc = 0;
    let (flexsc, f) = if o.direct_only {
        (Err("--direct-only".to_string()), None)
    } else {
        match fx::register(o, &worker_cpus) {
            Ok(flexsc) => {
                let mut b = fx::FlexScBackend::new(&flexsc, o.npages);
                let r = measure(&mut b, o, &per_call, &batched);
                drop(b);
                // Unmap the region (waits for calls in flight) while the
                // call buffers in `targets` are still live.
                flexsc.shutdown(std::time::Duration::from_secs(1));
                match r {
                    Ok(r) => (Ok(()), Some(r)),
                    Err(e) => {
                        rc = 1;
                        (Err(e), None)
                    }
                }
            }
            Err(e) => {
                rc = 1;
                (Err(e), None)
            }
        }
    };
    drop(targets);
    let _ = std::fs::remove_file(&o.file);

    let mut report = Report {
        setup: Setup {
            release: kernel_release(),
            online_cpus: affinity::online_cpus(),
            bench_cpu: o.cpu,
            placement: o.placement.name(),
            worker_cpus,
            workers: o.workers,
            npages: o.npages,
            poll_us: fx::poll_us(o),
            iters: o.iters,
            warmup: o.warmup,
            repeats: o.repeats,
            batch_calls: o.batch_calls,
        },
        flexsc,
        per_call: Vec::new(),
        batched: Vec::new(),
    };
    for (i, c) in per_call.iter().enumerate() {
        report.per_call.push(PerCall {
            call: c.name.to_string(),
            direct: d_pc[i],
            flexsc: f.as_ref().map(|f| f.0[i]),
        });
    }
    let mut k = 0;
    for c in &batched {
        for &n in &o.batches {
            report.batched.push(Batched {
                call: c.name.to_string(),
                batch: n,
                direct: d_bt[k],
                flexsc: f.as_ref().map(|f| f.1[k]),
            });
            k += 1;
        }
    }
    print!("{}", report.markdown());
    println!();
    let json = report.json();
    println!("{json}");
    if let Some(path) = &o.json {
        std::fs::write(path, format!("{json}\n"))
            .map_err(|e| format!("cannot write {path}: {e}"))?;
    }
    if let Err(e) = &report.flexsc {
        if rc != 0 {
            eprintln!("flexsc-bench: FlexSC: {e}");
        }
    }
    Ok(rc)
}
