//! The program: parse, pin, measure direct, FlexSC, then io_uring plain
//! and SQPOLL, print.

use crate::calls::{cost_per_call, throughput, Backend, Call, Direct, Measured, Targets};
use crate::fx;
use crate::options::{self, Options, Parsed, UringMode};
use crate::report::{Batched, Path, PerCall, Report, Setup};
use crate::ring::UringBackend;
use rt_utils::affinity;

/// What one path measured: per call, then per (call, batch).
type Results = (Vec<Measured>, Vec<Measured>);

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
) -> Result<Results, String> {
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
    let sqpoll_cpu = worker_cpus.first().copied().unwrap_or(o.cpu);
    affinity::pin_to(o.cpu).map_err(|e| format!("cannot pin to CPU {}: {e}", o.cpu))?;
    let targets = Targets::open(&o.file).map_err(|e| format!("cannot open the targets: {e}"))?;
    let wanted = |c: &Call| o.calls.contains(&c.name);
    let per_call: Vec<Call> = [targets.getpid(), targets.write(), targets.pwrite64()]
        .into_iter()
        .filter(wanted)
        .collect();
    let batched: Vec<Call> = [targets.getpid(), targets.write()]
        .into_iter()
        .filter(wanted)
        .collect();

    let direct = measure(&mut Direct, o, &per_call, &batched)?;
    let mut rc = 0;
    let mut measured: Vec<(Path, Result<Results, String>)> = Vec::new();
    let mut protocol = "none";
    if o.direct_only {
        for p in &Path::ALL[1..] {
            measured.push((*p, Err("--direct-only".to_string())));
        }
    } else {
        let flexsc = match fx::register(o, &worker_cpus) {
            Ok(flexsc) => {
                protocol = fx::protocol_name(&flexsc);
                let mut b = fx::FlexScBackend::new(&flexsc, o.npages);
                let r = measure(&mut b, o, &per_call, &batched);
                drop(b);
                // Unmap the region (waits for calls in flight) while the
                // call buffers in `targets` are still live.
                flexsc.shutdown(std::time::Duration::from_secs(1));
                r
            }
            Err(e) => Err(e),
        };
        if flexsc.is_err() {
            rc = 1;
        }
        measured.push((Path::FlexSc, flexsc));
        let batch = o.batches.iter().copied().max().unwrap_or(1) as u32;
        for (path, sqpoll) in [
            (Path::Uring, None),
            (
                Path::UringSqpoll,
                Some(uring::Sqpoll {
                    idle_ms: o.sqpoll_idle_ms,
                    cpu: Some(sqpoll_cpu as u32),
                }),
            ),
        ] {
            if o.uring == UringMode::Off {
                measured.push((path, Err("--uring=off".to_string())));
                continue;
            }
            // The ring (and its polling thread) goes before `targets`,
            // whose buffers its entries point to: every entry is reaped
            // before a call or batch returns.
            let r = match UringBackend::new(&targets, batch, sqpoll) {
                Ok(mut b) => measure(&mut b, o, &per_call, &batched),
                Err(e) => {
                    let why = format!("io_uring_setup failed: {e}");
                    if o.uring == UringMode::Require {
                        rc = 1;
                    }
                    measured.push((path, Err(why)));
                    continue;
                }
            };
            if r.is_err() {
                rc = 1;
            }
            measured.push((path, r));
        }
    }
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
            protocol: protocol.to_string(),
            sqpoll_cpu,
            sqpoll_idle_ms: o.sqpoll_idle_ms,
            iters: o.iters,
            warmup: o.warmup,
            repeats: o.repeats,
            batch_calls: o.batch_calls,
        },
        paths: measured
            .iter()
            .map(|(p, r)| (*p, r.as_ref().map(|_| ()).map_err(Clone::clone)))
            .collect(),
        per_call: Vec::new(),
        batched: Vec::new(),
    };
    let ok: Vec<(Path, &Results)> = std::iter::once((Path::Direct, &direct))
        .chain(
            measured
                .iter()
                .filter_map(|(p, r)| r.as_ref().ok().map(|r| (*p, r))),
        )
        .collect();
    for (i, c) in per_call.iter().enumerate() {
        report.per_call.push(PerCall {
            call: c.name.to_string(),
            results: ok.iter().map(|(p, r)| (*p, r.0[i])).collect(),
        });
    }
    let mut k = 0;
    for c in &batched {
        for &n in &o.batches {
            report.batched.push(Batched {
                call: c.name.to_string(),
                batch: n,
                results: ok.iter().map(|(p, r)| (*p, r.1[k])).collect(),
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
    if rc != 0 {
        for (path, status) in &report.paths {
            if let Err(e) = status {
                if !(matches!(path, Path::Uring | Path::UringSqpoll)
                    && o.uring == UringMode::Auto
                    && e.starts_with("io_uring_setup"))
                {
                    eprintln!("flexsc-bench: {}: {e}", path.label(false));
                }
            }
        }
    }
    Ok(rc)
}
