//! Command line of flexsc-bench (parsed with `lexopt`): `--name=value` or
//! `--name value`.

/// Where the FlexSC syscall threads run, relative to the bench thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Placement {
    /// On the bench thread's CPU.
    Same,
    /// On another allowed CPU (the first one after the bench CPU).
    Other,
    /// On every allowed CPU.
    All,
    /// On these CPUs.
    List(Vec<usize>),
}

impl Placement {
    /// Name shown in the report.
    pub fn name(&self) -> String {
        match self {
            Placement::Same => "same".into(),
            Placement::Other => "other".into(),
            Placement::All => "all".into(),
            Placement::List(l) => l
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(","),
        }
    }

    /// The worker CPUs for a bench thread on `cpu` with `allowed` CPUs.
    pub fn cpus(&self, cpu: usize, allowed: &[usize]) -> Result<Vec<usize>, String> {
        let list = match self {
            Placement::Same => vec![cpu],
            Placement::Other => {
                let other = allowed
                    .iter()
                    .copied()
                    .filter(|&c| c > cpu)
                    .chain(allowed.iter().copied().filter(|&c| c < cpu))
                    .next();
                match other {
                    Some(c) => vec![c],
                    None => {
                        return Err(format!(
                            "--workers-on=other needs a second CPU (allowed: {allowed:?})"
                        ))
                    }
                }
            }
            Placement::All => allowed.to_vec(),
            Placement::List(l) => l.clone(),
        };
        if let Some(c) = list.iter().find(|c| **c >= 64 || !allowed.contains(c)) {
            return Err(format!(
                "worker CPU {c} is not allowed (allowed: {allowed:?})"
            ));
        }
        Ok(list)
    }
}

/// Whether to measure the io_uring paths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UringMode {
    /// When the kernel has io_uring; else the report says why not.
    Auto,
    /// Fail (exit 1) when io_uring cannot be set up.
    Require,
    /// Not at all.
    Off,
}

/// The FlexSC completion protocol to register with (`flexsc::Protocol`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FxProtocol {
    /// The batch protocol if the kernel has it, else the original.
    Auto,
    /// The batch protocol (FLEXSC_CFG_BATCH); fail without it.
    Batch,
    /// The original protocol (the "before" rows on the same kernel).
    Original,
    /// The batch protocol with run-on-wait (FLEXSC_CFG_RUN_ON_WAIT).
    RunOnWait,
}

/// Longest SQPOLL idle time accepted (ms).
pub const MAX_SQPOLL_IDLE_MS: u32 = 10_000;

/// A resolved command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Calls per repeat in the cost-per-call test.
    pub iters: u32,
    /// Calls before the first repeat (not timed).
    pub warmup: u32,
    /// Timed repeats of every measurement.
    pub repeats: u32,
    /// The calls measured, in [`CALLS`] order (throughput: those of them
    /// that are batched, getpid and write).
    pub calls: Vec<&'static str>,
    /// Batch sizes of the throughput test.
    pub batches: Vec<usize>,
    /// Calls per repeat in the throughput test (rounded up to whole batches).
    pub batch_calls: u32,
    /// CPU of the bench thread.
    pub cpu: usize,
    pub placement: Placement,
    /// FlexSC syscall threads.
    pub workers: u32,
    /// FlexSC syscall pages.
    pub npages: u32,
    /// Busy time of an idle FlexSC syscall thread before it sleeps (us);
    /// `None`: the `flexsc` library's default.
    pub poll_us: Option<u32>,
    /// FlexSC completion protocol.
    pub protocol: FxProtocol,
    /// The file of the pwrite64 test (tmpfs in the guest).
    pub file: String,
    /// Also write the JSON line here (`-` = only stdout).
    pub json: Option<String>,
    /// Measure only the direct calls (no FlexSC registration, no io_uring).
    pub direct_only: bool,
    /// The io_uring paths.
    pub uring: UringMode,
    /// Idle time of the io_uring SQPOLL thread before it sleeps (ms, at
    /// least 1: the kernel's unit).
    pub sqpoll_idle_ms: u32,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            iters: 2000,
            warmup: 200,
            repeats: 5,
            calls: CALLS.to_vec(),
            batches: vec![1, 8, 32, 64],
            batch_calls: 2048,
            cpu: 0,
            placement: Placement::Same,
            workers: 1,
            npages: 2,
            poll_us: None,
            protocol: FxProtocol::Auto,
            file: "/tmp/flexsc-bench.dat".into(),
            json: None,
            direct_only: false,
            uring: UringMode::Auto,
            sqpoll_idle_ms: 1,
        }
    }
}

// The kernel's limits (`FLEXSC_MAX_PAGES`, `FLEXSC_MAX_WORKERS`,
// `FLEXSC_MAX_POLL_US`, `FLEXSC_ENTRIES_PER_PAGE`).
pub use rtflex_uapi::flexsc::{
    ENTRIES_PER_PAGE, MAX_PAGES as MAX_NPAGES, MAX_POLL_US, MAX_WORKERS,
};

/// Largest batch: the entries of [`MAX_NPAGES`] syscall pages.
pub const MAX_BATCH: usize = MAX_NPAGES as usize * ENTRIES_PER_PAGE;

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    Run(Options),
    Help,
}

/// The `--help` text.
pub const HELP: &str = "\
flexsc-bench: direct system calls vs FlexSC exception-less system calls
and io_uring

Usage: flexsc-bench [OPTIONS]

Measures, with CLOCK_MONOTONIC and the bench thread's own CPU time
(CLOCK_THREAD_CPUTIME_ID, the \"caller CPU\" columns):
  cost per call   getpid, write(64 B, /dev/null), pwrite64(64 B, --file):
                  direct vs FlexSC synchronous (post one entry, wait for it)
                  vs io_uring (one entry, io_uring_enter waits for it;
                  getpid is IORING_OP_NOP) plain and with SQPOLL
  throughput      batches of B getpid / write calls: post B, wait for all
                  (direct: the same B calls one after the other), calls/s
Prints Markdown tables and one JSON line ({\"flexsc_bench\":...}).

Options:
  --iters=N          calls per repeat, cost per call (default 2000)
  --warmup=N         untimed calls before measuring (default 200)
  --repeats=N        timed repeats; the table shows the median (default 5)
  --calls=LIST       calls to measure, of getpid,write,pwrite64 (default all;
                     pwrite64 has no throughput test)
  --batches=LIST     batch sizes (default 1,8,32,64)
  --batch-calls=N    calls per repeat of the throughput test (default 2048)
  --cpu=CPU          CPU of the bench thread (default 0)
  --workers-on=WHERE CPUs of the FlexSC syscall threads: same (the bench
                     CPU, default), other (another CPU), all, or a LIST
  --workers=N        FlexSC syscall threads (default 1)
  --npages=N         FlexSC syscall pages, 64 entries each (default 2)
  --poll-us=N        busy time of an idle syscall thread before it sleeps,
                     0..10000 (default: the flexsc library's, 50)
  --protocol=P       FlexSC completion protocol: auto (batch if the kernel
                     has it, default), batch (fail without it), original,
                     run-on-wait (batch, and a wait runs the calls it can
                     in the waiting thread; fail without it)
  --file=PATH        target of the pwrite64 test (default /tmp/flexsc-bench.dat)
  --json=FILE        also write the JSON line to FILE
  --uring=MODE       io_uring rows: auto (when the kernel has io_uring,
                     default), require (fail without it), off
  --sqpoll-idle-ms=N idle time of the SQPOLL thread before it sleeps,
                     1..10000 ms (default 1; io_uring counts in ms); it runs
                     on the first CPU of --workers-on
  --direct-only      skip FlexSC and io_uring (e.g. on a kernel without them)
  --help             this text

Exit status: 0 ok, 1 a call failed, FlexSC is not available, or io_uring is
not with --uring=require (the other results are still printed), 2 usage
error.
";

fn num<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, String> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("--{name}: '{v}' is not a non-negative integer"));
    }
    v.parse()
        .map_err(|_| format!("--{name}: '{v}' is out of range"))
}

fn positive<T: std::str::FromStr + Default + PartialEq>(name: &str, v: &str) -> Result<T, String> {
    let n: T = num(name, v)?;
    if n == T::default() {
        return Err(format!("--{name}: must be at least 1"));
    }
    Ok(n)
}

/// Parses a CPU list such as `0,2-3`.
pub fn parse_cpu_list(s: &str) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for part in s.split(',') {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        let a: usize = num("cpu list", a)?;
        let b: usize = num("cpu list", b)?;
        if a > b || b >= 64 {
            return Err(format!("invalid CPU range '{part}'"));
        }
        out.extend(a..=b);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// The calls flexsc-bench measures (`--calls`), in report order.
pub const CALLS: [&str; 3] = ["getpid", "write", "pwrite64"];

/// Parses `args` (including the program name).
pub fn parse(args: &[String]) -> Result<Parsed, String> {
    use lexopt::Arg::{Long, Short, Value};
    let mut p = lexopt::Parser::from_iter(args);
    let mut o = Options::default();
    while let Some(arg) = p.next().map_err(|e| e.to_string())? {
        let name = match arg {
            Long(name) => name.to_string(),
            Short(c) => return Err(format!("unknown option '-{c}' (see --help)")),
            Value(v) => return Err(format!("unexpected argument '{}'", v.to_string_lossy())),
        };
        let name = name.as_str();
        match name {
            "help" | "direct-only" => {
                if p.optional_value().is_some() {
                    return Err(format!("--{name} does not take a value"));
                }
                if name == "help" {
                    return Ok(Parsed::Help);
                }
                o.direct_only = true;
            }
            "iters" => o.iters = positive(name, &value(&mut p, name)?)?,
            "warmup" => o.warmup = num(name, &value(&mut p, name)?)?,
            "repeats" => o.repeats = positive(name, &value(&mut p, name)?)?,
            "batch-calls" => o.batch_calls = positive(name, &value(&mut p, name)?)?,
            "calls" => {
                let v = value(&mut p, name)?;
                let want: Vec<&str> = v.split(',').collect();
                if let Some(bad) = want.iter().find(|c| !CALLS.contains(c)) {
                    return Err(format!(
                        "--calls: '{bad}' is not one of {}",
                        CALLS.join(", ")
                    ));
                }
                o.calls = CALLS.iter().copied().filter(|c| want.contains(c)).collect();
            }
            "batches" => {
                let mut b = Vec::new();
                for s in value(&mut p, name)?.split(',') {
                    let n: usize = positive(name, s)?;
                    if n > MAX_BATCH {
                        return Err(format!("--batches: {n} is above {MAX_BATCH}"));
                    }
                    b.push(n);
                }
                o.batches = b;
            }
            "cpu" => o.cpu = num(name, &value(&mut p, name)?)?,
            "uring" => {
                o.uring = match value(&mut p, name)?.as_str() {
                    "auto" => UringMode::Auto,
                    "require" => UringMode::Require,
                    "off" => UringMode::Off,
                    v => return Err(format!("--uring: '{v}' is not auto, require or off")),
                }
            }
            "protocol" => {
                o.protocol = match value(&mut p, name)?.as_str() {
                    "auto" => FxProtocol::Auto,
                    "batch" => FxProtocol::Batch,
                    "original" => FxProtocol::Original,
                    "run-on-wait" => FxProtocol::RunOnWait,
                    v => {
                        return Err(format!(
                            "--protocol: '{v}' is not auto, batch, original or run-on-wait"
                        ))
                    }
                }
            }
            "sqpoll-idle-ms" => {
                o.sqpoll_idle_ms = positive(name, &value(&mut p, name)?)?;
                if o.sqpoll_idle_ms > MAX_SQPOLL_IDLE_MS {
                    return Err(format!("--sqpoll-idle-ms: at most {MAX_SQPOLL_IDLE_MS}"));
                }
            }
            "workers-on" => {
                o.placement = match value(&mut p, name)?.as_str() {
                    "same" => Placement::Same,
                    "other" => Placement::Other,
                    "all" => Placement::All,
                    l => Placement::List(
                        parse_cpu_list(l)
                            .map_err(|e| format!("--workers-on: {e} (or same, other, all)"))?,
                    ),
                }
            }
            "workers" => {
                o.workers = positive(name, &value(&mut p, name)?)?;
                if o.workers > MAX_WORKERS {
                    return Err(format!("--workers: at most {MAX_WORKERS}"));
                }
            }
            "npages" => {
                o.npages = positive(name, &value(&mut p, name)?)?;
                if o.npages > MAX_NPAGES {
                    return Err(format!("--npages: at most {MAX_NPAGES}"));
                }
            }
            "poll-us" => {
                let n: u32 = num(name, &value(&mut p, name)?)?;
                if n > MAX_POLL_US {
                    return Err(format!("--poll-us: at most {MAX_POLL_US}"));
                }
                o.poll_us = Some(n);
            }
            "file" => {
                let v = value(&mut p, name)?;
                if v.is_empty() {
                    return Err("--file: empty path".into());
                }
                o.file = v;
            }
            "json" => {
                let v = value(&mut p, name)?;
                if v.is_empty() {
                    return Err("--json: empty path".into());
                }
                o.json = (v != "-").then_some(v);
            }
            _ => return Err(format!("unknown option '--{name}' (see --help)")),
        }
    }
    let biggest = o.batches.iter().copied().max().unwrap_or(1);
    if biggest > o.npages as usize * ENTRIES_PER_PAGE {
        return Err(format!(
            "batch {biggest} does not fit in {} syscall page(s) of {ENTRIES_PER_PAGE} entries: raise --npages",
            o.npages
        ));
    }
    Ok(Parsed::Run(o))
}

/// The value of option `name`: `--name=value` or the next word.
fn value(p: &mut lexopt::Parser, name: &str) -> Result<String, String> {
    match p.value() {
        Ok(v) => Ok(v.to_string_lossy().into_owned()),
        Err(_) => Err(format!("--{name} needs a value")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        std::iter::once("flexsc-bench")
            .chain(s.split_whitespace())
            .map(String::from)
            .collect()
    }

    fn run(s: &str) -> Options {
        match parse(&args(s)) {
            Ok(Parsed::Run(o)) => o,
            other => panic!("{s}: {other:?}"),
        }
    }

    fn fails(s: &str) -> String {
        parse(&args(s)).expect_err(s)
    }

    #[test]
    fn defaults() {
        let o = run("");
        assert_eq!(o, Options::default());
        assert_eq!(o.batches, vec![1, 8, 32, 64]);
        assert_eq!(o.calls, CALLS);
        // In report order, whatever the order given.
        assert_eq!(run("--calls=pwrite64,getpid").calls, ["getpid", "pwrite64"]);
        assert_eq!(o.placement, Placement::Same);
        assert!(!o.direct_only);
        assert_eq!((o.uring, o.sqpoll_idle_ms), (UringMode::Auto, 1));
    }

    #[test]
    fn values_inline_and_separate() {
        let o = run(
            "--iters=10 --warmup 0 --repeats=3 --batches=1,4 --batch-calls 64 --cpu=1 \
                     --workers-on=other --workers=2 --npages 1 --poll-us=50 --file=/tmp/f \
                     --json=/tmp/j --direct-only",
        );
        assert_eq!((o.iters, o.warmup, o.repeats), (10, 0, 3));
        assert_eq!(
            (o.batches.clone(), o.batch_calls, o.cpu),
            (vec![1, 4], 64, 1)
        );
        assert_eq!(o.placement, Placement::Other);
        assert_eq!((o.workers, o.npages, o.poll_us), (2, 1, Some(50)));
        assert_eq!(
            (o.file.as_str(), o.json.as_deref()),
            ("/tmp/f", Some("/tmp/j"))
        );
        assert!(o.direct_only);
        assert_eq!(run("--json=-").json, None);
        let o = run("--uring=require --sqpoll-idle-ms 20");
        assert_eq!((o.uring, o.sqpoll_idle_ms), (UringMode::Require, 20));
        assert_eq!(run("--uring=off").uring, UringMode::Off);
        assert_eq!(run("").protocol, FxProtocol::Auto);
        assert_eq!(run("--protocol=original").protocol, FxProtocol::Original);
        assert_eq!(run("--protocol batch").protocol, FxProtocol::Batch);
        assert_eq!(
            run("--protocol=run-on-wait").protocol,
            FxProtocol::RunOnWait
        );
        assert!(fails("--protocol=v1").contains("is not auto, batch, original or run-on-wait"));
        assert_eq!(run("--workers-on=all").placement, Placement::All);
        assert_eq!(
            run("--workers-on=0,2-3").placement,
            Placement::List(vec![0, 2, 3])
        );
        assert_eq!(
            parse(&args("--iters=x --help")),
            Err("--iters: 'x' is not a non-negative integer".into())
        );
        assert_eq!(parse(&args("--help")), Ok(Parsed::Help));
    }

    #[test]
    fn usage_errors() {
        assert!(fails("--iters=0").contains("at least 1"));
        assert!(fails("--iters=-1").contains("not a non-negative integer"));
        assert!(fails("--iters").contains("needs a value"));
        assert!(fails("--batches=1,,2").contains("not a non-negative integer"));
        assert!(fails("--batches=2000 --npages=16").contains("above 1024"));
        assert!(fails("--batches=65 --npages=1").contains("raise --npages"));
        assert!(fails("--workers=33").contains("at most 32"));
        assert!(fails("--npages=17").contains("at most 16"));
        assert!(fails("--poll-us=10001").contains("at most 10000"));
        assert!(fails("--workers-on=elsewhere").contains("same, other, all"));
        assert!(fails("--workers-on=3-1").contains("invalid CPU range"));
        assert!(fails("--direct-only=1").contains("does not take a value"));
        assert!(
            fails("--calls=getpid,open").contains("'open' is not one of getpid, write, pwrite64")
        );
        assert!(fails("--bogus=1").contains("unknown option"));
        assert!(fails("stray").contains("unexpected argument"));
        assert!(fails("--file=").contains("empty path"));
        assert!(fails("--uring=maybe").contains("not auto, require or off"));
        assert!(fails("--sqpoll-idle-ms=0").contains("at least 1"));
        assert!(fails("--sqpoll-idle-ms=10001").contains("at most 10000"));
        // 64 entries per page: 64 fits one page.
        assert_eq!(run("--batches=64 --npages=1").batches, vec![64]);
    }

    #[test]
    fn placement_resolution() {
        let two = [0, 1];
        assert_eq!(Placement::Same.cpus(0, &two), Ok(vec![0]));
        assert_eq!(Placement::Other.cpus(0, &two), Ok(vec![1]));
        assert_eq!(Placement::Other.cpus(1, &two), Ok(vec![0]));
        assert_eq!(Placement::Other.cpus(1, &[0, 1, 2]), Ok(vec![2]));
        assert!(Placement::Other
            .cpus(0, &[0])
            .unwrap_err()
            .contains("second CPU"));
        assert_eq!(Placement::All.cpus(0, &two), Ok(vec![0, 1]));
        assert!(Placement::List(vec![5]).cpus(0, &two).is_err());
        assert_eq!(Placement::List(vec![0, 3]).name(), "0,3");
        assert_eq!(Placement::Other.name(), "other");
    }
}
