//! Command-line options, with cyclictest's names and semantics.
//!
//! Parsed with `lexopt` the way cyclictest's `getopt_long` parses: short
//! options can be clustered (`-mSp80`), a short option's argument may be
//! attached (`-p80`) or separate (`-p 80`), long options take `--name=value`
//! or `--name value` and may be abbreviated to any unambiguous prefix.
//! `-a`/`--affinity` and `-t`/`--threads` have optional arguments and, like
//! cyclictest, also take the next word when it looks like their argument
//! (`-t 4`, `-a 0-1`).
//!
//! Deliberately stricter than cyclictest: unknown options, stray words,
//! non-numeric numbers and out-of-range values are usage errors (exit 2)
//! instead of printing the help and exiting 0.

use crate::action::{
    ActionKind, FlexScPlacement, IoSpec, IoTarget, IoVia, IO_SIZE_DEFAULT, IO_SIZE_MAX,
};
use crate::cpuset::parse_cpuset;
// `--flexsc-poll-us` limit: the kernel's `FLEXSC_MAX_POLL_US`.
use rtflex_uapi::flexsc::MAX_POLL_US as FLEXSC_POLL_US_MAX;

/// Default base interval in microseconds (cyclictest `DEFAULT_INTERVAL`).
pub const DEFAULT_INTERVAL_US: u32 = 1000;
/// Default per-thread interval increment in microseconds (`DEFAULT_DISTANCE`).
pub const DEFAULT_DISTANCE_US: u32 = 500;
/// Largest histogram (cyclictest `HIST_MAX`); bigger requests are capped.
pub const HIST_MAX: usize = 1_000_000;

/// Scheduling policy of the measuring threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    Other,
    Fifo,
    Rr,
    Batch,
    Idle,
}

impl Policy {
    /// cyclictest's lower-case policy name (as printed in the status header).
    pub fn name(self) -> &'static str {
        match self {
            Policy::Other => "other",
            Policy::Fifo => "fifo",
            Policy::Rr => "rr",
            Policy::Batch => "batch",
            Policy::Idle => "idle",
        }
    }

    /// Whether this is a real-time policy that takes a priority.
    pub fn is_rt(self) -> bool {
        matches!(self, Policy::Fifo | Policy::Rr)
    }

    fn parse(s: &str) -> Option<Policy> {
        match s.to_ascii_lowercase().as_str() {
            "other" | "normal" => Some(Policy::Other),
            "fifo" => Some(Policy::Fifo),
            "rr" => Some(Policy::Rr),
            "batch" => Some(Policy::Batch),
            "idle" => Some(Policy::Idle),
            _ => None,
        }
    }
}

/// Clock used for sleeping and measuring (`-c`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    Monotonic,
    Realtime,
}

/// How measuring threads are pinned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Affinity {
    /// Thread N on the N-th CPU of the current affinity mask, round robin
    /// (cyclictest's default `AFFINITY_USEALL`, also used by `-S` and a bare `-a`).
    UseAll,
    /// Thread N on the N-th CPU of this list, round robin (`-a CPUSET`).
    Specified(Vec<usize>),
}

/// Where the JSON result goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JsonDest {
    Stdout,
    File(String),
}

/// What to do with `/dev/cpu_dma_latency`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PmQos {
    /// Open it and write this value (µs), keep it open while running.
    Set(i32),
    /// `--laptop`: leave power management alone.
    Laptop,
    /// `--default-system`: leave power management alone.
    DefaultSystem,
}

/// The fully resolved configuration of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub affinity: Affinity,
    pub main_affinity: Option<Vec<usize>>,
    pub threads: usize,
    pub smp: bool,
    /// Priority of the first thread (0 unless an RT policy is used).
    pub priority: i32,
    /// Policy as requested/resolved (`-p` implies FIFO).
    pub policy: Policy,
    pub priospread: bool,
    pub interval_us: u32,
    /// Effective per-thread interval increment (0 with a histogram).
    pub distance_us: u32,
    pub loops: u64,
    pub duration_s: u64,
    pub quiet: bool,
    pub verbose: bool,
    pub mlockall: bool,
    /// Number of histogram buckets, 0 = no histogram.
    pub histogram: usize,
    pub histofall: bool,
    pub histfile: Option<String>,
    pub json: Option<JsonDest>,
    pub nsecs: bool,
    pub clock: Clock,
    pub refresh_on_max: bool,
    pub unbuffered: bool,
    pub pm_qos: PmQos,
    /// Per-cycle action (extension point; no-op by default).
    pub action: ActionKind,
    /// Report each measuring thread's own CPU time per cycle (an extra
    /// JSON key and stat-line column; off: cyclictest's outputs exactly).
    pub own_cpu_time: bool,
    /// Messages cyclictest would print while parsing (to stderr).
    pub notes: Vec<String>,
}

/// Result of parsing: run, or show the help.
#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::large_enum_variant)] // made once per run; a Box would buy nothing
pub enum Parsed {
    Run(Config),
    Help,
}

/// A usage error (exit code 2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the option parser needs to know about the machine.
#[derive(Clone, Debug)]
pub struct CpuInfo {
    /// Configured CPUs (`_SC_NPROCESSORS_CONF`).
    pub max_cpus: usize,
    /// CPUs in the current affinity mask, sorted.
    pub allowed: Vec<usize>,
}

/// Every long option, in the order an ambiguity message lists them.
/// A unique prefix of a name is accepted too (`--dur`), as by `getopt_long`.
const LONG: &[&str] = &[
    "affinity",
    "clock",
    "default-system",
    "distance",
    "duration",
    "flexsc-cpus",
    "flexsc-poll-us",
    "histogram",
    "histofall",
    "histfile",
    "interval",
    "io-file",
    "io-pipe",
    "io-size",
    "io-via",
    "json",
    "laptop",
    "latency",
    "loops",
    "mainaffinity",
    "mlockall",
    "nsecs",
    "own-cpu-time",
    "priority",
    "policy",
    "priospread",
    "quiet",
    "refresh_on_max",
    "smp",
    "threads",
    "unbuffered",
    "verbose",
    "help",
];

/// cyclictest options rtlat knows about but does not implement: they get a
/// specific error message rather than "unknown option".
const UNSUPPORTED_LONG: &[&str] = &[
    "aligned",
    "breaktrace",
    "fifo",
    "oscope",
    "relative",
    "resolution",
    "secaligned",
    "system",
    "smi",
    "spike",
    "spike-nodes",
    "tracemark",
    "dbg_cyclictest",
    "posix_timers",
];
const UNSUPPORTED_SHORT: &[char] = &['A', 'b', 'F', 'o', 'r', 'R', 's', 'x'];

fn err<T>(msg: impl Into<String>) -> Result<T, UsageError> {
    Err(UsageError(msg.into()))
}

/// Parses a non-negative decimal number for option `name`.
fn num<T: std::str::FromStr>(name: &str, val: &str) -> Result<T, UsageError> {
    let v = val.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return err(format!(
            "option {name}: '{val}' is not a non-negative integer"
        ));
    }
    v.parse()
        .map_err(|_| UsageError(format!("option {name}: '{val}' is out of range")))
}

/// Parses a duration for `-D`: a number of seconds with an optional suffix
/// `s`, `m` (minutes), `h` (hours) or `d` (days), case-insensitive. Returns
/// seconds. (cyclictest's `parse_time_string()`, but strict.)
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, mult) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let mult = match c.to_ascii_lowercase() {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86400,
                _ => {
                    return Err(format!(
                        "invalid duration '{s}': unknown suffix '{c}' (use s, m, h or d)"
                    ))
                }
            };
            (&s[..i], mult)
        }
        _ => (s, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "invalid duration '{s}': expected a number with optional suffix s, m, h or d"
        ));
    }
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("invalid duration '{s}': too large"))
}

/// Raw option values in parse order semantics (before resolution).
#[derive(Default)]
struct Raw {
    affinity: Option<Affinity>,
    affinity_given: bool,
    main_affinity: Option<Vec<usize>>,
    threads: Option<Option<usize>>, // Some(None) = one per CPU
    smp: bool,
    priority: i32,
    policy: Option<Policy>,
    priospread: bool,
    interval: Option<u32>,
    distance: Option<u32>,
    loops: u64,
    duration: u64,
    quiet: bool,
    verbose: bool,
    mlockall: bool,
    histogram: usize,
    histofall: bool,
    histfile: Option<String>,
    json: Option<JsonDest>,
    nsecs: bool,
    clock: Option<Clock>,
    refresh: bool,
    unbuffered: bool,
    laptop: bool,
    own_cpu_time: bool,
    default_system: bool,
    latency: i32,
    io_file: Option<String>,
    io_pipe: bool,
    io_size: Option<usize>,
    io_via: Option<IoVia>,
    flexsc_cpus: Option<Vec<usize>>,
    flexsc_poll_us: Option<u32>,
    notes: Vec<String>,
}

/// Parses `args` (including `args[0]`, the program name).
pub fn parse(args: &[String], cpus: &CpuInfo) -> Result<Parsed, UsageError> {
    use lexopt::Arg::{Long, Short, Value};
    let mut p = lexopt::Parser::from_iter(args);
    // As getopt: `-p=80` is `-p` with the value `=80` (an error), not 80.
    p.set_short_equals(false);
    let mut raw = Raw::default();
    while let Some(arg) = p.next().map_err(|e| UsageError(e.to_string()))? {
        let (arg, name) = match arg {
            Long(l) => {
                let l = long_name(l)?;
                (Long(l), format!("--{l}"))
            }
            Short(c) => (Short(c), format!("-{c}")),
            Value(v) => return err(format!("unexpected argument '{}'", v.to_string_lossy())),
        };
        let name = name.as_str();
        match arg {
            Short('a') | Long("affinity") => {
                let v = optional_value(&mut p, |w| {
                    w.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '!' | '+' | 'a'))
                });
                raw.affinity_given = true;
                if !raw.smp {
                    raw.affinity = Some(match v {
                        Some(s) => Affinity::Specified(cpuset(name, &s, cpus)?),
                        None => Affinity::UseAll,
                    });
                }
            }
            Short('c') | Long("clock") => {
                raw.clock = Some(match num::<u32>(name, &value(&mut p, name)?)? {
                    0 => Clock::Monotonic,
                    1 => Clock::Realtime,
                    n => {
                        return err(format!(
                    "option {name}: clock {n} is invalid (0 = CLOCK_MONOTONIC, 1 = CLOCK_REALTIME)"
                ))
                    }
                })
            }
            Long("default-system") => raw.default_system = true,
            Short('d') | Long("distance") => raw.distance = Some(num(name, &value(&mut p, name)?)?),
            Short('D') | Long("duration") => {
                raw.duration = parse_duration(&value(&mut p, name)?)
                    .map_err(|e| UsageError(format!("option {name}: {e}")))?
            }
            Short('h' | 'H') | Long("histogram" | "histofall") => {
                let v = value(&mut p, name)?;
                raw.histofall |= matches!(arg, Short('H') | Long("histofall"));
                let n: usize = num(name, &v).or_else(|e| {
                    // Values beyond usize are capped like any value above HIST_MAX.
                    if v.bytes().all(|b| b.is_ascii_digit()) && !v.is_empty() {
                        Ok(HIST_MAX)
                    } else {
                        Err(e)
                    }
                })?;
                if n == 0 {
                    return err(format!(
                        "option {name}: the histogram needs at least one bucket"
                    ));
                }
                raw.histogram = n;
            }
            Long("histfile") => raw.histfile = Some(file_name(name, value(&mut p, name)?)?),
            Short('i') | Long("interval") => {
                let n: u32 = num(name, &value(&mut p, name)?)?;
                if n == 0 {
                    return err(format!("option {name}: the interval must be at least 1 us"));
                }
                raw.interval = Some(n);
            }
            Long("io-file") => raw.io_file = Some(file_name(name, value(&mut p, name)?)?),
            Long("io-pipe") => raw.io_pipe = true,
            Long("io-size") => {
                let n: usize = num(name, &value(&mut p, name)?)?;
                if !(1..=IO_SIZE_MAX).contains(&n) {
                    return err(format!(
                        "option {name}: {n} bytes is out of range 1..{IO_SIZE_MAX}"
                    ));
                }
                raw.io_size = Some(n);
            }
            Long("io-via") => {
                let v = value(&mut p, name)?;
                raw.io_via = Some(match IoVia::from_name(&v) {
                    Some(via) => via,
                    None => {
                        return err(format!(
                            "option {name}: '{v}' is not direct, flexsc, io_uring or kml"
                        ))
                    }
                })
            }
            Long("flexsc-cpus") => {
                raw.flexsc_cpus = Some(cpuset(name, &value(&mut p, name)?, cpus)?)
            }
            Long("flexsc-poll-us") => {
                let n: u32 = num(name, &value(&mut p, name)?)?;
                if n > FLEXSC_POLL_US_MAX {
                    return err(format!(
                        "option {name}: {n} us is out of range 0..{FLEXSC_POLL_US_MAX}"
                    ));
                }
                raw.flexsc_poll_us = Some(n);
            }
            Long("json") => {
                raw.json = Some(match file_name(name, value(&mut p, name)?)? {
                    f if f == "-" => JsonDest::Stdout,
                    f => JsonDest::File(f),
                })
            }
            Long("laptop") => raw.laptop = true,
            Long("own-cpu-time") => raw.own_cpu_time = true,
            Long("latency") => {
                // cyclictest clamps negative values to 0; accept a leading '-'.
                let v = value(&mut p, name)?;
                let val = v.trim();
                raw.latency = if let Some(neg) = val.strip_prefix('-') {
                    num::<i32>(name, neg)?;
                    0
                } else {
                    num(name, val)?
                };
            }
            Short('l') | Long("loops") => raw.loops = num(name, &value(&mut p, name)?)?,
            Long("mainaffinity") => {
                raw.main_affinity = Some(cpuset(name, &value(&mut p, name)?, cpus)?)
            }
            Short('m') | Long("mlockall") => raw.mlockall = true,
            Short('N') | Long("nsecs") => raw.nsecs = true,
            Short('p') | Long("priority") => {
                let p: i32 = num(name, &value(&mut p, name)?)?;
                if p > 99 {
                    return err(format!("option {name}: priority {p} is out of range 0..99"));
                }
                raw.priority = p;
                if !raw.policy.is_some_and(Policy::is_rt) {
                    raw.policy = Some(Policy::Fifo);
                }
            }
            Long("policy") => {
                let v = value(&mut p, name)?;
                raw.policy = Some(Policy::parse(&v).ok_or_else(|| {
                    UsageError(format!(
                "option {name}: unknown policy '{v}' (use other, normal, batch, idle, fifo or rr)"
            ))
                })?)
            }
            Long("priospread") => raw.priospread = true,
            Short('q') | Long("quiet") => raw.quiet = true,
            Short('M') | Long("refresh_on_max") => raw.refresh = true,
            Short('S') | Long("smp") => {
                raw.smp = true;
                raw.threads = None;
                raw.affinity = Some(Affinity::UseAll);
            }
            Short('t') | Long("threads") => {
                let v = optional_value(&mut p, |w| w.parse::<usize>().is_ok_and(|n| n > 0));
                if raw.smp {
                    raw.notes.push("WARN: -t ignored due to smp mode".into());
                } else {
                    raw.threads = Some(match v {
                        Some(s) => {
                            let n: usize = num(name, &s)?;
                            if n == 0 {
                                return err(format!(
                                    "option {name}: at least one thread is needed"
                                ));
                            }
                            Some(n)
                        }
                        None => None,
                    });
                }
            }
            Short('u') | Long("unbuffered") => raw.unbuffered = true,
            Short('v') | Long("verbose") => raw.verbose = true,
            Long("help") => {
                no_value(&mut p, name)?;
                return Ok(Parsed::Help);
            }
            Short(c) if UNSUPPORTED_SHORT.contains(&c) => {
                return err(format!(
                    "option -{c} (a cyclictest option) is not supported by rtlat"
                ))
            }
            _ => return err(format!("unknown option '{name}' (see --help)")),
        }
        if matches!(arg, Long(_)) {
            no_value(&mut p, name)?;
        }
    }
    resolve(raw, cpus).map(Parsed::Run)
}

/// The value of an option that needs one: attached (`-p80`, `--priority=80`)
/// or the next word, even if it starts with `-` (as getopt does).
fn value(p: &mut lexopt::Parser, name: &str) -> Result<String, UsageError> {
    match p.value() {
        Ok(v) => Ok(v.to_string_lossy().into_owned()),
        Err(_) => err(format!("option {name} requires an argument")),
    }
}

/// The value of an option whose value is optional: attached (`-t4`,
/// `--threads=4`), or, as cyclictest looks ahead, the next word when it
/// `looks_like` a value (`-t 4`).
fn optional_value(p: &mut lexopt::Parser, looks_like: fn(&str) -> bool) -> Option<String> {
    let v = match p.optional_value() {
        Some(v) => v,
        None => p
            .try_raw_args()?
            .next_if(|w| w.to_str().is_some_and(looks_like))?,
    };
    Some(v.to_string_lossy().into_owned())
}

/// A long option without a value must not have one attached (`--quiet=1`).
/// (Options that took their value have nothing left here.)
fn no_value(p: &mut lexopt::Parser, name: &str) -> Result<(), UsageError> {
    match p.optional_value() {
        Some(_) => err(format!("option {name} does not take an argument")),
        None => Ok(()),
    }
}

fn file_name(name: &str, v: String) -> Result<String, UsageError> {
    if v.is_empty() {
        return err(format!("option {name}: empty file name"));
    }
    Ok(v)
}

fn cpuset(name: &str, v: &str, cpus: &CpuInfo) -> Result<Vec<usize>, UsageError> {
    parse_cpuset(v, cpus.max_cpus, &cpus.allowed)
        .map_err(|e| UsageError(format!("option {name}: {e}")))
}

/// Resolves a long option as `getopt_long` does: its full name, or a prefix
/// of exactly one name.
fn long_name(name: &str) -> Result<&'static str, UsageError> {
    if UNSUPPORTED_LONG.contains(&name) {
        return err(format!(
            "option --{name} (a cyclictest option) is not supported by rtlat"
        ));
    }
    rt_utils::args::long_option(name, LONG).or_else(|found| match found[..] {
        [] => err(format!("unknown option '--{name}' (see --help)")),
        _ => err(format!(
            "option '--{name}' is ambiguous: --{}",
            found.join(", --")
        )),
    })
}

/// Applies cyclictest's post-parse rules (`process_options()` tail).
fn resolve(mut raw: Raw, cpus: &CpuInfo) -> Result<Config, UsageError> {
    if raw.affinity_given && raw.smp {
        raw.notes.push("WARN: -a ignored due to smp mode".into());
    }
    let affinity = if raw.smp {
        Affinity::UseAll
    } else {
        raw.affinity.take().unwrap_or(Affinity::UseAll)
    };
    let histogram = raw.histogram.min(HIST_MAX);
    if histogram > 0 && raw.distance.is_some() {
        raw.notes
            .push("WARN: distance is ignored and set to 0, if histogram enabled".into());
    }
    let distance_us = if histogram > 0 {
        0
    } else {
        raw.distance.unwrap_or(DEFAULT_DISTANCE_US)
    };
    let available = match &affinity {
        Affinity::Specified(list) => list.len(),
        Affinity::UseAll => cpus.allowed.len(),
    }
    .max(1);
    let threads = if raw.smp {
        cpus.allowed.len().max(1)
    } else {
        match raw.threads {
            None => 1,
            Some(None) => available,
            Some(Some(n)) => n,
        }
    };
    let default_prio = (threads as i32 + 1).min(99);
    let mut policy = raw.policy.unwrap_or(Policy::Other);
    let mut priority = raw.priority;
    if raw.priospread && priority == 0 {
        raw.notes
            .push(format!("defaulting realtime priority to {default_prio}"));
        priority = default_prio;
    }
    if priority != 0 && !policy.is_rt() {
        raw.notes
            .push("policy and priority don't match: setting policy to SCHED_FIFO".into());
        policy = Policy::Fifo;
    }
    if policy.is_rt() && priority == 0 {
        raw.notes
            .push(format!("defaulting realtime priority to {default_prio}"));
        priority = default_prio;
    }
    let flexsc = FlexScPlacement {
        cpus: raw.flexsc_cpus.take().unwrap_or_default(),
        poll_us: raw.flexsc_poll_us,
    };
    if flexsc != FlexScPlacement::default() && raw.io_via != Some(IoVia::FlexSc) {
        return err("--flexsc-cpus and --flexsc-poll-us need --io-via=flexsc");
    }
    let action = match (raw.io_file.take(), raw.io_pipe) {
        (Some(_), true) => return err("--io-file and --io-pipe exclude each other"),
        (Some(path), false) => ActionKind::Io(IoSpec {
            target: IoTarget::File(path),
            size: raw.io_size.unwrap_or(IO_SIZE_DEFAULT),
            via: raw.io_via.unwrap_or_default(),
            flexsc,
        }),
        (None, true) => ActionKind::Io(IoSpec {
            target: IoTarget::Pipe,
            size: raw.io_size.unwrap_or(IO_SIZE_DEFAULT),
            via: raw.io_via.unwrap_or_default(),
            flexsc,
        }),
        (None, false) => {
            if raw.io_size.is_some() || raw.io_via.is_some() {
                return err("--io-size and --io-via need --io-file or --io-pipe");
            }
            ActionKind::Noop
        }
    };
    if let (Some(iv), Some(d)) = (raw.interval, raw.distance) {
        let last = iv as u64 + d as u64 * threads.saturating_sub(1) as u64;
        if histogram == 0 && last > u32::MAX as u64 {
            return err("interval + distance per thread is too large");
        }
    }
    Ok(Config {
        affinity,
        main_affinity: raw.main_affinity,
        threads,
        smp: raw.smp,
        priority,
        policy,
        priospread: raw.priospread,
        interval_us: raw.interval.unwrap_or(DEFAULT_INTERVAL_US),
        distance_us,
        loops: raw.loops,
        duration_s: raw.duration,
        quiet: raw.quiet,
        verbose: raw.verbose,
        mlockall: raw.mlockall,
        histogram,
        histofall: raw.histofall,
        histfile: raw.histfile,
        json: raw.json,
        nsecs: raw.nsecs,
        clock: raw.clock.unwrap_or(Clock::Monotonic),
        refresh_on_max: raw.refresh,
        unbuffered: raw.unbuffered,
        pm_qos: if raw.laptop {
            PmQos::Laptop
        } else if raw.default_system {
            PmQos::DefaultSystem
        } else {
            PmQos::Set(raw.latency)
        },
        action,
        own_cpu_time: raw.own_cpu_time,
        notes: raw.notes,
    })
}

/// Parameters of one measuring thread, derived from a [`Config`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadPlan {
    pub index: usize,
    /// CPU the thread is pinned to.
    pub cpu: usize,
    pub priority: i32,
    /// Policy actually applied to the thread.
    pub policy: Policy,
    pub interval_us: u32,
}

impl Config {
    /// Policy the measuring threads really get: the RT policy when a priority
    /// is set, else the requested non-RT policy (other, batch or idle).
    pub fn applied_policy(&self, priority: i32) -> Policy {
        if self.policy.is_rt() {
            if priority > 0 {
                self.policy
            } else {
                Policy::Other
            }
        } else {
            self.policy
        }
    }

    /// Per-thread CPU, priority, policy and interval, as cyclictest assigns
    /// them: all threads share one priority unless `--priospread` (then it
    /// descends by one per thread, not below 0); the interval grows by the
    /// distance per thread (distance is 0 with a histogram).
    pub fn thread_plans(&self, allowed: &[usize]) -> Vec<ThreadPlan> {
        (0..self.threads)
            .map(|i| {
                let cpu = match &self.affinity {
                    Affinity::Specified(list) => list[i % list.len()],
                    Affinity::UseAll if !allowed.is_empty() => allowed[i % allowed.len()],
                    Affinity::UseAll => 0,
                };
                let priority = if self.priospread {
                    (self.priority - i as i32).max(0)
                } else {
                    self.priority
                };
                ThreadPlan {
                    index: i,
                    cpu,
                    priority,
                    policy: self.applied_policy(priority),
                    interval_us: self
                        .interval_us
                        .saturating_add(self.distance_us.saturating_mul(i as u32)),
                }
            })
            .collect()
    }
}

/// The `--help` text.
pub fn help_text() -> String {
    format!(
        "rtlat V {version} (cyclictest 2.4 compatible)
Usage:
rtlat <options>

-a [CPUSET] --affinity     run thread #N on processor #N of the allowed CPUs, or
                           if CPUSET is given, pin threads to that set in
                           round-robin order (e.g. -a 3-5,0 -t 5; also all, !LIST, +LIST)
         --mainaffinity=CPUSET
                           run the main (reporting) thread on CPUSET
-c CLOCK --clock=CLOCK     select clock: 0 = CLOCK_MONOTONIC (default), 1 = CLOCK_REALTIME
-d DIST  --distance=DIST   distance of thread intervals in us, default=500
                           (ignored and set to 0 with a histogram)
-D TIME  --duration=TIME   length of the run; suffix s, m, h or d (default seconds)
-h US    --histogram=US    dump a latency histogram with US buckets after the run
                           (runs all threads at the same priority)
-H US    --histofall=US    same as -h with an additional summary column
         --histfile=PATH   write the histogram to PATH instead of stdout
-i INTV  --interval=INTV   base interval of thread in us, default=1000
         --io-file=PATH    every cycle, write one record (thread:cycle:latency as
                           text, --io-size bytes) to PATH (truncated at start,
                           then appended to by every thread)
         --io-pipe         same, to a pipe per thread that a SCHED_OTHER reader
                           thread drains
         --io-size=BYTES   bytes per record, 1..256, default 64
         --io-via=HOW      direct: write(2) in the measuring thread (default);
                           flexsc: post the write to a FlexSC syscall thread
                           (data copied, not waited for; needs a FlexSC kernel);
                           io_uring: post it to an io_uring ring of the thread
                           (data copied, one io_uring_enter, not waited for);
                           kml: write(2) through the Kernel Mode Linux
                           trampoline (only in SYS mode: a static rtlat run
                           from /trusted)
         --flexsc-cpus=CPUSET
                           --io-via=flexsc: run the syscall thread on CPUSET
                           (default: the CPUs of the main thread)
         --flexsc-poll-us=US
                           --io-via=flexsc: the idle syscall thread polls US
                           microseconds (0..10000, default 50) before it
                           sleeps; longer than -i on its own CPU, a post never
                           has to wake it (a dedicated syscall CPU)
         --json=FILE       write final results into FILE, JSON formatted (- = stdout)
         --laptop          do not write /dev/cpu_dma_latency (save battery)
         --default-system  do not tune power management at all
         --latency=PM_QOS  value written to /dev/cpu_dma_latency, default 0
-l LOOPS --loops=LOOPS     number of loops per thread: default=0 (endless)
-m       --mlockall        lock current and future memory allocations
-M       --refresh_on_max  update the status display only when a maximum changes
-N       --nsecs           print results in ns instead of us (default us)
         --own-cpu-time    also report each thread's own CPU time per cycle in us
                           (CLOCK_THREAD_CPUTIME_ID over the loop / cycles; with
                           I/O, what the measuring thread pays for it): a
                           CPU/cycle column after each summary line and an
                           own_cpu_us_per_cycle key per thread in the JSON
-p PRIO  --priority=PRIO   priority of the measuring threads (implies SCHED_FIFO)
         --policy=NAME     policy of the measuring threads: other, normal, batch,
                           idle, fifo or rr
         --priospread      spread priorities: thread N gets PRIO-N
-q       --quiet           print a summary only on exit
-S       --smp             one thread per allowed CPU, pinned, same priority
-t [NUM] --threads[=NUM]   number of threads (without NUM: one per CPU; default 1)
-u       --unbuffered      flush output after every update
-v       --verbose         print every sample: n:c:v (thread:cycle:latency)
         --help            show this help

Stops after LOOPS, after TIME, or on SIGINT/SIGTERM. Exit status: 0 ok,
1 runtime error, 2 usage error.
",
        version = crate::VERSION
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpus4() -> CpuInfo {
        CpuInfo {
            max_cpus: 4,
            allowed: vec![0, 1, 2, 3],
        }
    }

    fn args(s: &str) -> Vec<String> {
        std::iter::once("rtlat")
            .chain(s.split_whitespace())
            .map(String::from)
            .collect()
    }

    fn run(s: &str) -> Config {
        match parse(&args(s), &cpus4()) {
            Ok(Parsed::Run(c)) => c,
            other => panic!("{s:?}: {other:?}"),
        }
    }

    fn usage_err(s: &str) -> String {
        match parse(&args(s), &cpus4()) {
            Err(UsageError(m)) => m,
            other => panic!("{s:?} should fail, got {other:?}"),
        }
    }

    #[test]
    fn defaults_match_cyclictest() {
        let c = run("");
        assert_eq!(c.interval_us, 1000);
        assert_eq!(c.distance_us, 500);
        assert_eq!(c.threads, 1);
        assert_eq!(c.loops, 0);
        assert_eq!(c.duration_s, 0);
        assert_eq!(c.priority, 0);
        assert_eq!(c.policy, Policy::Other);
        assert_eq!(c.affinity, Affinity::UseAll);
        assert_eq!(c.clock, Clock::Monotonic);
        assert_eq!(c.histogram, 0);
        assert_eq!(c.pm_qos, PmQos::Set(0));
        assert_eq!(c.json, None);
        assert!(!c.quiet && !c.mlockall && !c.nsecs && !c.verbose);
        assert_eq!(c.action, ActionKind::Noop);
    }

    #[test]
    fn short_long_clustered_and_attached_forms() {
        let c = run("-mSp80 -i200 -h 400 -q --duration=6h");
        assert!(c.mlockall && c.smp && c.quiet);
        assert_eq!((c.priority, c.policy), (80, Policy::Fifo));
        assert_eq!(c.threads, 4);
        assert_eq!(
            (c.interval_us, c.histogram, c.duration_s),
            (200, 400, 6 * 3600)
        );
        let c = run("--mlockall --smp --priority=80 --interval=200 --distance=0");
        assert_eq!(
            (c.priority, c.interval_us, c.distance_us, c.threads),
            (80, 200, 0, 4)
        );
        let c = run("-l100000000 -m -a0 -t1 -p99 -i200 -h400 -q");
        assert_eq!(c.loops, 100_000_000);
        assert_eq!(c.affinity, Affinity::Specified(vec![0]));
        assert_eq!((c.threads, c.priority, c.histogram), (1, 99, 400));
        // getopt_long accepts unambiguous prefixes and separate arguments.
        let c = run("--dur 10m --histof 50 --json out.json");
        assert_eq!(c.duration_s, 600);
        assert_eq!(c.histogram, 50);
        assert!(c.histofall);
        assert_eq!(c.json, Some(JsonDest::File("out.json".into())));
        assert_eq!(run("--json=-").json, Some(JsonDest::Stdout));
        assert_eq!(run("-c 1").clock, Clock::Realtime);
        assert!(run("-N").nsecs);
        assert_eq!(
            run("--histfile=/tmp/h -h 5").histfile.as_deref(),
            Some("/tmp/h")
        );
    }

    #[test]
    fn optional_arguments_look_ahead_like_cyclictest() {
        assert_eq!(run("-t").threads, 4);
        assert_eq!(run("-t 3").threads, 3);
        assert_eq!(run("-t3").threads, 3);
        assert_eq!(run("--threads=2").threads, 2);
        assert_eq!(run("--threads 2").threads, 2);
        assert_eq!(run("-t -q").threads, 4);
        assert_eq!(run("-a").affinity, Affinity::UseAll);
        assert_eq!(run("-a 2").affinity, Affinity::Specified(vec![2]));
        assert_eq!(run("-a1-2 -t").threads, 2);
        assert_eq!(run("-a -q").affinity, Affinity::UseAll);
        assert_eq!(
            run("-a all").affinity,
            Affinity::Specified(vec![0, 1, 2, 3])
        );
        assert_eq!(run("-a !0").affinity, Affinity::Specified(vec![1, 2, 3]));
    }

    #[test]
    fn affinity_round_robin_and_smp() {
        let info = CpuInfo {
            max_cpus: 8,
            allowed: (0..8).collect(),
        };
        let Ok(Parsed::Run(c)) = parse(&args("-a 3-5,0 -t 5"), &info) else {
            panic!()
        };
        let cpus: Vec<usize> = c
            .thread_plans(&info.allowed)
            .iter()
            .map(|p| p.cpu)
            .collect();
        assert_eq!(cpus, vec![0, 3, 4, 5, 0]);

        let c = run("-S -t 2 -a 1");
        assert_eq!(c.threads, 4);
        assert_eq!(c.affinity, Affinity::UseAll);
        assert!(c
            .notes
            .iter()
            .any(|n| n.contains("-t ignored due to smp mode")));
        assert!(c
            .notes
            .iter()
            .any(|n| n.contains("-a ignored due to smp mode")));
        let plans = c.thread_plans(&[0, 2, 5, 7]);
        assert_eq!(
            plans.iter().map(|p| p.cpu).collect::<Vec<_>>(),
            vec![0, 2, 5, 7]
        );
        // Default (no -a): pinned round robin over the allowed CPUs.
        let plans = run("-t 3").thread_plans(&[1, 3]);
        assert_eq!(
            plans.iter().map(|p| p.cpu).collect::<Vec<_>>(),
            vec![1, 3, 1]
        );
    }

    #[test]
    fn priority_and_policy_rules() {
        // -p implies SCHED_FIFO.
        let c = run("-p 80");
        assert_eq!((c.policy, c.priority), (Policy::Fifo, 80));
        // -p keeps an explicit RR.
        let c = run("--policy=rr -p 10");
        assert_eq!((c.policy, c.priority), (Policy::Rr, 10));
        // RT policy without priority: num_threads + 1.
        let c = run("--policy=fifo -t 2");
        assert_eq!(c.priority, 3);
        assert!(c
            .notes
            .iter()
            .any(|n| n == "defaulting realtime priority to 3"));
        // Priority with a non-RT policy given afterwards: forced to FIFO.
        let c = run("-p 5 --policy=batch");
        assert_eq!(c.policy, Policy::Fifo);
        assert!(c.notes[0].contains("setting policy to SCHED_FIFO"));
        // Same priority for all threads, also with -h / -S.
        let plans = run("-p 80 -t 3").thread_plans(&[0, 1, 2, 3]);
        assert!(plans
            .iter()
            .all(|p| p.priority == 80 && p.policy == Policy::Fifo));
        // --priospread descends.
        let plans = run("-p 80 -t 3 --priospread").thread_plans(&[0]);
        assert_eq!(
            plans.iter().map(|p| p.priority).collect::<Vec<_>>(),
            vec![80, 79, 78]
        );
        // Non-RT policies are applied as requested.
        assert_eq!(
            run("--policy=idle").thread_plans(&[0])[0].policy,
            Policy::Idle
        );
        assert_eq!(run("--policy=NORMAL").policy, Policy::Other);
        assert_eq!(run("").thread_plans(&[0])[0].policy, Policy::Other);
    }

    #[test]
    fn distance_and_histogram() {
        let plans = run("-t 3 -i 1000").thread_plans(&[0]);
        assert_eq!(
            plans.iter().map(|p| p.interval_us).collect::<Vec<_>>(),
            vec![1000, 1500, 2000]
        );
        let plans = run("-t 3 -i 100 -d 7").thread_plans(&[0]);
        assert_eq!(
            plans.iter().map(|p| p.interval_us).collect::<Vec<_>>(),
            vec![100, 107, 114]
        );
        let c = run("-t 3 -d 100 -h 10");
        assert_eq!(c.distance_us, 0);
        assert!(c.notes.iter().any(|n| n.contains("distance is ignored")));
        assert!(c.thread_plans(&[0]).iter().all(|p| p.interval_us == 1000));
        assert_eq!(run("-h 2000000").histogram, HIST_MAX);
        assert_eq!(run("-h 99999999999999999999999").histogram, HIST_MAX);
        let c = run("-H 5");
        assert!(c.histofall);
        assert_eq!(c.histogram, 5);
    }

    #[test]
    fn io_options() {
        let io = |s: &str| match run(s).action {
            ActionKind::Io(spec) => spec,
            ActionKind::Noop => panic!("{s}: no I/O action"),
        };
        assert_eq!(
            io("--io-pipe"),
            IoSpec {
                target: IoTarget::Pipe,
                size: 64,
                via: IoVia::Direct,
                flexsc: FlexScPlacement::default(),
            }
        );
        assert_eq!(
            io("--io-file=/tmp/x --io-size=256 --io-via=flexsc"),
            IoSpec {
                target: IoTarget::File("/tmp/x".into()),
                size: 256,
                via: IoVia::FlexSc,
                flexsc: FlexScPlacement::default(),
            }
        );
        assert_eq!(
            io("--io-file=/tmp/x --io-via=flexsc --flexsc-cpus=1 --flexsc-poll-us=2000").flexsc,
            FlexScPlacement {
                cpus: vec![1],
                poll_us: Some(2000),
            }
        );
        assert_eq!(
            io("--io-pipe --io-via=flexsc --flexsc-poll-us 0")
                .flexsc
                .poll_us,
            Some(0)
        );
        assert!(
            usage_err("--io-pipe --io-via=flexsc --flexsc-poll-us=10001")
                .contains("out of range 0..10000")
        );
        assert!(usage_err("--io-pipe --io-via=flexsc --flexsc-cpus=9").contains("invalid CPU list"));
        for s in [
            "--io-pipe --flexsc-cpus=1",
            "--io-pipe --io-via=direct --flexsc-poll-us=5",
        ] {
            assert!(usage_err(s).contains("need --io-via=flexsc"), "{s}");
        }
        assert_eq!(
            io("--io-via direct --io-size 1 --io-file /dev/null").size,
            1
        );
        assert_eq!(io("-m -p 90 --io-pipe -i 1000").via, IoVia::Direct);
        assert_eq!(run("-m -p 90 -i 1000").action, ActionKind::Noop);
        // Unambiguous prefixes work as for every long option.
        assert_eq!(io("--io-p --io-v=flexsc").via, IoVia::FlexSc);
        assert!(usage_err("--io-size=0 --io-pipe").contains("out of range 1..256"));
        assert!(usage_err("--io-size=257 --io-pipe").contains("out of range 1..256"));
        assert!(usage_err("--io-size=x --io-pipe").contains("not a non-negative integer"));
        assert_eq!(io("--io-pipe --io-via=io_uring").via, IoVia::IoUring);
        assert_eq!(io("--io-file=/tmp/x --io-via kml").via, IoVia::Kml);
        for via in IoVia::ALL {
            assert_eq!(IoVia::from_name(via.name()), Some(via));
            let arg = format!("--io-pipe --io-via={}", via.name());
            assert_eq!(io(&arg).via, via, "{arg}");
        }
        assert!(usage_err("--io-via=uring --io-pipe")
            .contains("'uring' is not direct, flexsc, io_uring or kml"));
        assert!(usage_err("--io-via=KML --io-pipe").contains("is not direct"));
        assert!(usage_err("--io-via=io_uring").contains("need --io-file or --io-pipe"));
        assert!(usage_err("--io-via=kml").contains("need --io-file or --io-pipe"));
        assert!(usage_err("--io-pipe --io-file=/tmp/x").contains("exclude each other"));
        assert!(usage_err("--io-size=8").contains("need --io-file or --io-pipe"));
        assert!(usage_err("--io-via=flexsc").contains("need --io-file or --io-pipe"));
        assert!(usage_err("--io-file=").contains("empty file name"));
        assert!(usage_err("--io-pipe=1").contains("does not take an argument"));
        assert!(usage_err("--io=1").contains("ambiguous"));
    }

    #[test]
    fn power_management_options() {
        assert_eq!(run("--laptop").pm_qos, PmQos::Laptop);
        assert!(!run("").own_cpu_time);
        assert!(run("--own-cpu-time").own_cpu_time);
        assert!(run("--own").own_cpu_time);
        assert_eq!(run("--default-system").pm_qos, PmQos::DefaultSystem);
        assert_eq!(run("--latency=5").pm_qos, PmQos::Set(5));
        assert_eq!(run("--latency=-3").pm_qos, PmQos::Set(0));
    }

    #[test]
    fn help() {
        assert_eq!(parse(&args("--help"), &cpus4()), Ok(Parsed::Help));
        assert_eq!(parse(&args("-q --help -i x"), &cpus4()), Ok(Parsed::Help));
        let h = help_text();
        for o in [
            "--affinity",
            "--threads",
            "--smp",
            "--priority",
            "--policy",
            "--interval",
            "--distance",
            "--io-file=PATH",
            "--io-pipe",
            "--io-size=BYTES",
            "--io-via=HOW",
            "--own-cpu-time",
        ] {
            assert!(h.contains(o), "{o} missing from help");
        }
    }

    #[test]
    fn usage_errors() {
        assert!(usage_err("--bogus").contains("unknown option '--bogus'"));
        assert!(usage_err("-Z").contains("unknown option '-Z'"));
        assert!(usage_err("-n").contains("unknown option '-n'"));
        assert!(usage_err("-r").contains("not supported by rtlat"));
        assert!(usage_err("--posix_timers").contains("not supported by rtlat"));
        assert!(usage_err("-i").contains("requires an argument"));
        assert!(usage_err("--interval").contains("requires an argument"));
        assert!(usage_err("-i abc").contains("not a non-negative integer"));
        assert!(usage_err("-i 0").contains("at least 1"));
        assert!(usage_err("-i -5").contains("not a non-negative integer"));
        assert!(usage_err("-l 1x").contains("not a non-negative integer"));
        assert!(usage_err("-p 100").contains("out of range"));
        assert!(usage_err("-p -1").contains("not a non-negative integer"));
        assert!(usage_err("--policy=fast").contains("unknown policy"));
        assert!(usage_err("-c 2").contains("clock 2 is invalid"));
        assert!(usage_err("-h 0").contains("at least one bucket"));
        assert!(usage_err("-D 5x").contains("unknown suffix"));
        assert!(usage_err("-a 9").contains("CPU 9 does not exist"));
        assert!(usage_err("-a 1-x").contains("invalid CPU list"));
        assert!(
            usage_err("-t 0").contains("not a non-negative integer")
                || usage_err("-t0").contains("at least one")
        );
        assert!(usage_err("-t0").contains("at least one thread"));
        assert!(usage_err("stray").contains("unexpected argument 'stray'"));
        assert!(usage_err("-q -- x").contains("unexpected argument 'x'"));
        assert!(usage_err("--quiet=1").contains("does not take an argument"));
        assert!(usage_err("--hist=5").contains("ambiguous"));
        assert!(usage_err("--json=").contains("empty file name"));
        assert!(usage_err("-i 99999999999").contains("out of range"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10"), Ok(10));
        assert_eq!(parse_duration("10s"), Ok(10));
        assert_eq!(parse_duration("10S"), Ok(10));
        assert_eq!(parse_duration("2m"), Ok(120));
        assert_eq!(parse_duration("2M"), Ok(120));
        assert_eq!(parse_duration("3h"), Ok(10800));
        assert_eq!(parse_duration("1d"), Ok(86400));
        assert_eq!(parse_duration("0"), Ok(0));
        for bad in [
            "",
            "m",
            "1.5m",
            "-1",
            "5w",
            "1 m",
            "99999999999999999999d",
            "1mm",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }
}
