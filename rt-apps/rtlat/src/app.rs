//! The program: parse options, set the system up like cyclictest, start the
//! measuring threads, show live status, collect and print the results.

use crate::action::{
    ActionKind, DirectWriter, IoAction, IoDest, IoSpec, IoTarget, IoVia, NoAction,
};
use crate::flexsc_io::{self, FlexScWriter};
use crate::kml_io::{self, KmlWriter};
use crate::measure::{self, Gate, ThreadOutcome, ThreadSpec};
use crate::options::{self, Affinity, Config, CpuInfo, JsonDest, Parsed, PmQos, ThreadPlan};
use crate::output::{self, JsonInfo, ThreadReport};
use crate::rt;
use crate::stats::{LiveStats, ThreadState, VALBUF_SIZE};
use crate::uring_io::{self, UringWriter};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::thread::JoinHandleExt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Exit status for usage errors.
pub const EXIT_USAGE: i32 = 2;
/// Exit status for runtime errors.
pub const EXIT_FAILURE: i32 = 1;

/// Stack size of a measuring thread (locked with `-m`, partly pre-faulted).
const THREAD_STACK: usize = 512 * 1024;
/// Status refresh period of the main thread (cyclictest: 10 ms).
const REFRESH: Duration = Duration::from_millis(10);

/// Runs rtlat with `args` (including the program name); returns the exit code.
pub fn main_with_args(args: &[String]) -> i32 {
    let start_time = rt::timestamp();
    let max_cpus = rt_utils::affinity::configured_cpus();
    let cpus = CpuInfo {
        max_cpus,
        allowed: rt_utils::affinity::current_affinity().unwrap_or_else(|_| (0..max_cpus).collect()),
    };
    match options::parse(args, &cpus) {
        Err(e) => {
            eprintln!("rtlat: {e}");
            eprintln!("Try 'rtlat --help' for more information.");
            EXIT_USAGE
        }
        Ok(Parsed::Help) => {
            print!("{}", options::help_text());
            0
        }
        Ok(Parsed::Run(cfg)) => run(&cfg, &cpus, &args.join(" "), start_time),
    }
}

fn create(path: &str, what: &str) -> Result<File, i32> {
    File::create(path).map_err(|e| {
        eprintln!("rtlat: cannot create {what} '{path}': {e}");
        EXIT_FAILURE
    })
}

/// The `policy:` header text: `fifo`, `fifo/other` when some threads run
/// SCHED_OTHER (priority 0), `other/other` etc. for non-RT policies, as
/// cyclictest prints it.
fn policy_header(cfg: &Config, plans: &[ThreadPlan]) -> String {
    if cfg.policy.is_rt() {
        if plans.iter().all(|p| p.policy == cfg.policy) {
            cfg.policy.name().to_string()
        } else {
            format!("{}/other", cfg.policy.name())
        }
    } else {
        format!("{0}/{0}", cfg.policy.name())
    }
}

/// Per-run resources of the per-cycle action, set up once before the
/// measuring threads start.
enum ActionSetup {
    Noop,
    Io {
        spec: IoSpec,
        /// `--io-file`, opened (truncated) once, O_APPEND.
        file: Option<File>,
        /// `--io-via=flexsc`: the process's FlexSC registration.
        fx: Option<flexsc_io::Shared>,
    },
}

/// Opens the `--io-file`, registers with FlexSC, checks that io_uring works
/// or that rtlat runs in SYS mode with the KML trampoline, so that a bad
/// path or a missing kernel feature fails before measuring (no fallback to
/// another path). Errors are printed.
fn setup_action(kind: &ActionKind) -> Result<ActionSetup, i32> {
    let spec = match kind {
        ActionKind::Noop => return Ok(ActionSetup::Noop),
        ActionKind::Io(spec) => spec.clone(),
    };
    let file = match &spec.target {
        IoTarget::File(path) => Some(
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .custom_flags(libc::O_APPEND)
                .open(path)
                .map_err(|e| {
                    eprintln!("rtlat: cannot create I/O file '{path}': {e}");
                    EXIT_FAILURE
                })?,
        ),
        IoTarget::Pipe => None,
    };
    let fail = |e: String| {
        eprintln!("rtlat: {e}");
        EXIT_FAILURE
    };
    let fx = match spec.via {
        IoVia::Direct => None,
        IoVia::FlexSc => Some(flexsc_io::register(&spec.flexsc).map_err(fail)?),
        IoVia::IoUring => {
            uring_io::probe().map_err(fail)?;
            None
        }
        IoVia::Kml => {
            kml_io::check().map_err(fail)?;
            None
        }
    };
    Ok(ActionSetup::Io { spec, file, fx })
}

fn spawn_thread(
    setup: &ActionSetup,
    spec: ThreadSpec,
    live: Arc<LiveStats>,
    gate: Arc<Gate>,
) -> io::Result<JoinHandle<ThreadOutcome>> {
    let builder = thread::Builder::new()
        .name(format!("rtlat-{}", spec.index))
        .stack_size(THREAD_STACK);
    // One monomorphised measuring loop per action type: the default (no
    // action) loop contains no I/O code at all.
    match setup {
        ActionSetup::Noop => {
            builder.spawn(move || measure::thread_main(spec, live, &rt::STOP, gate, NoAction))
        }
        ActionSetup::Io { spec: io, file, fx } => {
            let dest = match file {
                Some(f) => IoDest::File(f.try_clone()?),
                None => IoDest::Pipe,
            };
            match (io.via, fx) {
                (IoVia::FlexSc, Some(fx)) => {
                    let action = IoAction::new(dest, io.size, FlexScWriter::new(fx.clone()));
                    builder.spawn(move || measure::thread_main(spec, live, &rt::STOP, gate, action))
                }
                (IoVia::FlexSc, None) => Err(io::Error::other("FlexSC is not registered")),
                (IoVia::IoUring, _) => {
                    // One ring per measuring thread, set up here (before
                    // the start gate), not in the loop.
                    let action = IoAction::new(dest, io.size, UringWriter::new()?);
                    builder.spawn(move || measure::thread_main(spec, live, &rt::STOP, gate, action))
                }
                (IoVia::Kml, _) => {
                    let action = IoAction::new(dest, io.size, KmlWriter);
                    builder.spawn(move || measure::thread_main(spec, live, &rt::STOP, gate, action))
                }
                (IoVia::Direct, _) => {
                    let action = IoAction::new(dest, io.size, DirectWriter);
                    builder.spawn(move || measure::thread_main(spec, live, &rt::STOP, gate, action))
                }
            }
        }
    }
}

struct Running {
    plan: ThreadPlan,
    live: Arc<LiveStats>,
    handle: JoinHandle<ThreadOutcome>,
}

fn status_block(cfg: &Config, header: &str, threads: &[Running]) -> String {
    let mut s = output::policy_line(header, &rt::loadavg());
    s.push('\n');
    for t in threads {
        let snap = t.live.snapshot();
        s.push_str(&output::stat_line(
            t.plan.index,
            t.live.tid(),
            t.plan.priority,
            t.plan.interval_us,
            &snap,
            cfg.nsecs,
        ));
        s.push('\n');
    }
    s
}

/// Appends the `-v` samples not printed yet; skips samples the ring has
/// already overwritten.
fn drain_verbose(threads: &[Running], read: &mut [u64], out: &mut String) {
    for (i, t) in threads.iter().enumerate() {
        let upto = t.live.cycles();
        if upto.saturating_sub(read[i]) > VALBUF_SIZE as u64 {
            read[i] = upto - VALBUF_SIZE as u64;
        }
        while read[i] < upto {
            if let Some(v) = t.live.ring_sample(read[i]) {
                out.push_str(&output::verbose_line(i, read[i], v));
                out.push('\n');
            }
            read[i] += 1;
        }
    }
}

/// Runs a parsed configuration; returns the exit code.
pub fn run(cfg: &Config, cpus: &CpuInfo, cmdline: &str, start_time: String) -> i32 {
    for n in &cfg.notes {
        eprintln!("{n}");
    }
    let stdout = io::stdout();
    let mut out = stdout.lock();

    // Open the result files first: a bad path should fail now, not after a
    // run of hours.
    let mut json_file = match &cfg.json {
        Some(JsonDest::File(p)) => match create(p, "JSON file") {
            Ok(f) => Some(f),
            Err(rc) => return rc,
        },
        _ => None,
    };
    let mut hist_file = match &cfg.histfile {
        Some(p) if cfg.histogram > 0 => match create(p, "histogram file") {
            Ok(f) => Some(f),
            Err(rc) => return rc,
        },
        _ => None,
    };

    if cfg.verbose {
        let _ = writeln!(
            out,
            "Max CPUs = {}\nOnline CPUs = {}",
            cpus.max_cpus,
            rt_utils::affinity::online_cpus()
        );
    }
    if let Affinity::Specified(list) = &cfg.affinity {
        if let Err(e) = rt_utils::affinity::set_affinity(list) {
            eprintln!("WARN: Couldn't setaffinity in main thread: {e}");
        }
        if cfg.verbose {
            let _ = writeln!(out, "Using {} cpus.", list.len());
        }
    }
    if cfg.mlockall {
        if let Err(e) = rt_utils::sched::mlockall() {
            eprintln!("mlockall: {e}");
            return EXIT_FAILURE;
        }
    }
    let _pm_qos = match cfg.pm_qos {
        PmQos::Laptop => {
            eprintln!("WARN: not setting cpu_dma_latency to save battery power");
            None
        }
        PmQos::DefaultSystem => {
            eprintln!("WARN: not setting cpu_dma_latency from rtlat");
            None
        }
        PmQos::Set(v) => match rt::set_dma_latency(v) {
            Ok(h) => {
                let _ = writeln!(out, "# /dev/cpu_dma_latency set to {v}us");
                Some(h)
            }
            Err(e) => {
                eprintln!("WARN: /dev/cpu_dma_latency: {e}");
                None
            }
        },
    };
    let action = match setup_action(&cfg.action) {
        Ok(a) => a,
        Err(rc) => return rc,
    };
    if rt::clock_getres(libc::CLOCK_MONOTONIC) != Some(crate::time::Ts::new(0, 1)) {
        eprintln!("WARN: High resolution timers not available");
    }
    if let Err(e) = rt::install_stop_handler() {
        eprintln!("rtlat: cannot install signal handlers: {e}");
        return EXIT_FAILURE;
    }
    let _ = out.flush();

    // Start the measuring threads.
    let numa = rt::numa_available();
    let plans = cfg.thread_plans(&cpus.allowed);
    let header = policy_header(cfg, &plans);
    let gate = Arc::new(Gate::new());
    let mut threads: Vec<Running> = Vec::with_capacity(plans.len());
    let mut rc = 0;
    for plan in &plans {
        let live = Arc::new(LiveStats::new(if cfg.verbose { VALBUF_SIZE } else { 0 }));
        let spec = ThreadSpec {
            index: plan.index,
            cpu: Some(plan.cpu),
            policy: plan.policy,
            priority: plan.priority,
            interval_us: plan.interval_us,
            clock: cfg.clock,
            max_cycles: cfg.loops,
            duration_s: cfg.duration_s,
            nsecs: cfg.nsecs,
            histogram: cfg.histogram,
        };
        if cfg.verbose {
            if matches!(cfg.affinity, Affinity::Specified(_)) {
                let _ = writeln!(out, "Thread {} using cpu {}.", plan.index, plan.cpu);
            }
            let _ = writeln!(out, "Thread {} Interval: {}", plan.index, plan.interval_us);
        }
        match spawn_thread(&action, spec, live.clone(), gate.clone()) {
            Ok(handle) => threads.push(Running {
                plan: plan.clone(),
                live,
                handle,
            }),
            Err(e) => {
                eprintln!("rtlat: failed to create thread {}: {e}", plan.index);
                rt::STOP.store(true, Ordering::SeqCst);
                rc = EXIT_FAILURE;
                break;
            }
        }
    }
    if let Some(list) = &cfg.main_affinity {
        if let Err(e) = rt_utils::affinity::set_affinity(list) {
            eprintln!("WARN: Couldn't setaffinity in main thread: {e}");
        }
    }
    let _ = out.flush();
    gate.open();

    // Live status until every thread is done, a duration elapsed or a signal.
    let live_status = !cfg.quiet && !cfg.verbose;
    let up = format!("\x1b[{}A", threads.len() + 2);
    let mut printed = false;
    let mut last_max: Vec<i64> = vec![-1; threads.len()];
    let mut read = vec![0u64; threads.len()];
    loop {
        let mut text = String::new();
        if cfg.verbose {
            drain_verbose(&threads, &mut read, &mut text);
        } else if live_status {
            let maxes: Vec<i64> = threads.iter().map(|t| t.live.snapshot().max).collect();
            if !cfg.refresh_on_max || !printed || maxes != last_max {
                if printed {
                    text.push_str(&up);
                }
                text.push_str(&status_block(cfg, &header, &threads));
                printed = true;
                last_max = maxes;
            }
        }
        if !text.is_empty() {
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
        let finished = threads
            .iter()
            .all(|t| matches!(t.live.state(), ThreadState::Done | ThreadState::Failed));
        let failed = threads
            .iter()
            .any(|t| t.live.state() == ThreadState::Failed);
        if rt::STOP.load(Ordering::SeqCst) || finished || failed {
            break;
        }
        thread::sleep(REFRESH);
    }

    // Stop and collect.
    rt::STOP.store(true, Ordering::SeqCst);
    for t in &threads {
        if matches!(t.live.state(), ThreadState::Starting | ThreadState::Running) {
            rt::interrupt_thread(t.handle.as_pthread_t());
        }
    }
    let mut reports = Vec::with_capacity(threads.len());
    let mut finals = Vec::with_capacity(threads.len());
    for t in threads {
        let tid = t.live.tid();
        let outcome = match t.handle.join() {
            Ok(o) => o,
            Err(_) => {
                eprintln!("rtlat: thread {} panicked", t.plan.index);
                rc = EXIT_FAILURE;
                continue;
            }
        };
        if let Some(e) = &outcome.error {
            eprintln!("rtlat: thread {}: {e}", t.plan.index);
            rc = EXIT_FAILURE;
        }
        reports.push(ThreadReport {
            index: t.plan.index,
            tid,
            priority: t.plan.priority,
            interval_us: t.plan.interval_us,
            summary: outcome.summary,
            cpu: t.plan.cpu as i64,
            node: if numa {
                rt::node_of_cpu(t.plan.cpu)
            } else {
                -1
            },
            histogram: outcome.histogram,
            own_cpu_us_per_cycle: cfg.own_cpu_time.then(|| {
                if outcome.summary.cycles == 0 {
                    f64::NAN
                } else {
                    outcome.cpu_ns as f64 / 1000.0 / outcome.summary.cycles as f64
                }
            }),
        });
        finals.push(t.live);
    }

    // Final live view / remaining -v samples.
    let mut text = String::new();
    if cfg.verbose {
        for (i, live) in finals.iter().enumerate() {
            let upto = live.cycles();
            let from = read
                .get(i)
                .copied()
                .unwrap_or(0)
                .max(upto.saturating_sub(VALBUF_SIZE as u64));
            for c in from..upto {
                if let Some(v) = live.ring_sample(c) {
                    text.push_str(&output::verbose_line(i, c, v));
                    text.push('\n');
                }
            }
        }
    } else if live_status && printed {
        text.push_str(&up);
        text.push_str(&output::policy_line(&header, &rt::loadavg()));
        text.push('\n');
        for r in &reports {
            text.push_str(&output::stat_line(
                r.index,
                r.tid,
                r.priority,
                r.interval_us,
                &r.summary,
                cfg.nsecs,
            ));
            text.push_str(&output::own_cpu_suffix(r.own_cpu_us_per_cycle));
            text.push('\n');
        }
    }
    let _ = out.write_all(text.as_bytes());

    // Results: JSON, then the quiet summary, then the histogram (cyclictest's order).
    if let Some(dest) = &cfg.json {
        let info = JsonInfo {
            cmdline: cmdline.to_string(),
            version: crate::VERSION.to_string(),
            start_time,
            end_time: rt::timestamp(),
            return_code: rc,
            uname: rt::uname().unwrap_or_default(),
            realtime: rt::kernel_is_realtime(),
            nsecs: cfg.nsecs,
        };
        let res = match (dest, json_file.as_mut()) {
            (JsonDest::File(_), Some(f)) => {
                output::write_json(f, &info, &reports).and_then(|_| f.flush())
            }
            _ => output::write_json(&mut out, &info, &reports),
        };
        if let Err(e) = res {
            eprintln!("rtlat: writing JSON failed: {e}");
            rc = EXIT_FAILURE;
        }
    }
    let mut text = String::new();
    if cfg.quiet && cfg.histogram == 0 {
        for r in &reports {
            text.push_str(&output::stat_line(
                r.index,
                r.tid,
                r.priority,
                r.interval_us,
                &r.summary,
                cfg.nsecs,
            ));
            text.push_str(&output::own_cpu_suffix(r.own_cpu_us_per_cycle));
            text.push('\n');
        }
    }
    let _ = out.write_all(text.as_bytes());
    if cfg.histogram > 0 {
        let hist = output::histogram_text(&reports, cfg.histofall);
        let res = match hist_file.as_mut() {
            Some(f) => f.write_all(hist.as_bytes()).and_then(|_| f.flush()),
            None => out.write_all(hist.as_bytes()),
        };
        if let Err(e) = res {
            eprintln!("rtlat: writing histogram failed: {e}");
            rc = EXIT_FAILURE;
        }
    }
    if let Err(e) = out.flush() {
        eprintln!("rtlat: writing output failed: {e}");
        rc = EXIT_FAILURE;
    }
    rc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Policy;

    fn cfg(args: &str) -> Config {
        let cpus = CpuInfo {
            max_cpus: 4,
            allowed: vec![0, 1, 2, 3],
        };
        let a: Vec<String> = std::iter::once("rtlat")
            .chain(args.split_whitespace())
            .map(String::from)
            .collect();
        match options::parse(&a, &cpus) {
            Ok(Parsed::Run(c)) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn policy_header_like_cyclictest() {
        let c = cfg("");
        assert_eq!(policy_header(&c, &c.thread_plans(&[0])), "other/other");
        let c = cfg("-p 80 -t 2");
        assert_eq!(policy_header(&c, &c.thread_plans(&[0])), "fifo");
        let c = cfg("-p 1 -t 3 --priospread");
        assert_eq!(c.thread_plans(&[0])[2].policy, Policy::Other);
        assert_eq!(policy_header(&c, &c.thread_plans(&[0])), "fifo/other");
        let c = cfg("--policy=batch");
        assert_eq!(policy_header(&c, &c.thread_plans(&[0])), "batch/batch");
    }

    #[test]
    fn usage_error_exit_code() {
        assert_eq!(
            main_with_args(&["rtlat".into(), "--nope".into()]),
            EXIT_USAGE
        );
        assert_eq!(
            main_with_args(&["rtlat".into(), "-i".into(), "x".into()]),
            EXIT_USAGE
        );
    }
}
