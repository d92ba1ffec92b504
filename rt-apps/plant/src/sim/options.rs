//! The command line of plant-sim (parsed with `lexopt`).

use rt_utils::args::long_option;

/// The parameter file of the image.
pub const DEFAULT_PARAMS_PATH: &str = "/etc/rtflex/plant.conf";

/// Model steps per second by default: measured in the guest to keep up
/// with a 1 kHz controller on one vCPU (docs/control-app-bench.md).
pub const DEFAULT_RATE_HZ: u32 = 2000;

/// Highest SCHED_FIFO priority: below the kernel's interrupt threads
/// (priority 50 on PREEMPT_RT). gpio-sim raises a line's interrupt at once
/// when its pull is written, but the edge event is made by the line's
/// interrupt thread; a plant above that thread would write a second edge
/// of a line before the first became an event, and the two would merge
/// into one (a count lost to the controller).
pub const MAX_PRIORITY: i32 = 49;

/// Highest step rate accepted.
pub const MAX_RATE_HZ: u32 = 20_000;

/// Least time between two encoder edges by default (us). gpio-sim raises
/// the interrupts of all its lines through one IRQ work item, which handles
/// the lines pending at that time in offset order (encoder-a before
/// encoder-b), not in the order they changed. On a uniprocessor ARM kernel
/// (QEMU's vexpress-a9 and SABRE Lite with one vCPU) that work runs at the
/// next timer tick, up to 1 ms (HZ=1000) after the write: two edges of A
/// and B written within one tick could reach the controller swapped, two
/// counts the wrong way (a count error of 4, with no gap in the event
/// sequence numbers). 1.5 ms leaves a tick between two edges with room to
/// spare and still allows 666 edges/s, more than the default motor's 510.
pub const DEFAULT_EDGE_GAP_US: u32 = 1500;

/// What to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Parsed {
    /// Run the plant.
    Run(Options),
    /// Remove a chip left behind by a plant-sim that did not end cleanly.
    Remove,
    /// Print the help.
    Help,
}

/// A resolved command line.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// The parameter file.
    pub params: String,
    /// Model steps per second.
    pub rate_hz: u32,
    /// Start position (counts) instead of the file's.
    pub start: Option<i32>,
    /// SCHED_FIFO priority (0: SCHED_OTHER).
    pub priority: i32,
    /// CPU to run on.
    pub cpu: Option<usize>,
    /// Stop after this many seconds (`None`: at SIGINT/SIGTERM).
    pub duration_s: Option<f64>,
    /// Freeze the encoder lines after this many seconds.
    pub freeze_encoder_s: Option<f64>,
    /// Least time between two encoder edges (us; 0: one a step).
    pub edge_gap_us: u32,
    /// CSV trace of every step that changed something.
    pub trace: Option<String>,
    /// JSON summary at exit.
    pub json: Option<String>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            params: DEFAULT_PARAMS_PATH.into(),
            rate_hz: DEFAULT_RATE_HZ,
            start: None,
            priority: 0,
            cpu: None,
            duration_s: None,
            freeze_encoder_s: None,
            edge_gap_us: DEFAULT_EDGE_GAP_US,
            trace: None,
            json: None,
        }
    }
}

/// The `--help` text.
pub const HELP: &str = "\
plant-sim: the simulated plant of the rtflex control app

Usage: plant-sim [OPTIONS]
       plant-sim --remove

Creates the gpio-sim chip `rtflex-plant` through configfs
(/sys/kernel/config/gpio-sim; configfs is mounted there if it is not) with
13 named lines: motor-enable, motor-dir, motor-duty0..7 (the controller's
outputs), encoder-a, encoder-b, home (the plant's outputs). In real time it
steps a DC motor model (parameters: --params), reads the motor command
from the lines' sysfs `value` and drives the encoder and home lines through
their sysfs `pull`, one encoder edge at a time (at most one a step and
--edge-gap-us apart), so a program that requests them gets real edge events
from the GPIO subsystem, in order. When the chip is live
it prints `plant-sim: ready ...` on stdout. SIGINT or SIGTERM ends it: the
chip is removed and a summary printed. SIGUSR1 freezes the encoder lines
(a lost encoder: the motor keeps turning, the lines stop changing).

Options:
  --params=FILE       parameter file (default /etc/rtflex/plant.conf)
  --rate=HZ           model steps per second (default 2000, at most 20000)
  --start=COUNTS      start position instead of the file's start_counts
  --priority=N        SCHED_FIFO priority 1..49 (default: SCHED_OTHER): below
                      the interrupt threads (50) that turn its line writes
                      into edge events
  --cpu=N             run on CPU N
  --duration=SECONDS  stop after SECONDS (default: at SIGINT/SIGTERM)
  --freeze-encoder-after=SECONDS
                      freeze the encoder lines after SECONDS
  --edge-gap-us=US    least time between two encoder edges (default 1500;
                      0: one a step). gpio-sim's line interrupts are raised
                      by one IRQ work that runs at the next tick on a
                      uniprocessor ARM kernel and takes pending lines in
                      offset order: edges closer than a tick could reach the
                      controller swapped. A motor faster than this falls
                      behind on its encoder lines and catches up.
  --trace=FILE        CSV of every step that changed a line or the position:
                      t_ns,position,encoder,speed_rad_s,encoder_frozen (the
                      step: the motor's position, the encoder lines' count),
                      command_ns,enable,dir,duty,volts (the motor command,
                      read at command_ns); times: CLOCK_MONOTONIC ns. The
                      first step's row is written out at once.
  --json=FILE         summary as JSON at exit
  --remove            remove a chip left by a plant-sim that was killed
  --help              this text

Exit status: 0 ok, 1 error (no gpio-sim, chip exists, bad parameter file,
a line could not be read or written), 2 usage error.
";

const NAMES: &[&str] = &[
    "params",
    "rate",
    "start",
    "priority",
    "cpu",
    "duration",
    "freeze-encoder-after",
    "edge-gap-us",
    "trace",
    "json",
    "remove",
    "help",
];

fn number<T: std::str::FromStr>(name: &str, v: &str, what: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("--{name}: '{v}' is not {what}"))
}

fn seconds(name: &str, v: &str) -> Result<f64, String> {
    let s: f64 = number(name, v, "a number of seconds")?;
    if !(s.is_finite() && s > 0.0) {
        return Err(format!("--{name}: must be more than 0 seconds"));
    }
    Ok(s)
}

fn path(name: &str, v: String) -> Result<String, String> {
    if v.is_empty() {
        return Err(format!("--{name}: empty path"));
    }
    Ok(v)
}

/// Parses `args` (including the program name).
pub fn parse(args: &[String]) -> Result<Parsed, String> {
    use lexopt::Arg::{Long, Short, Value};
    let mut p = lexopt::Parser::from_iter(args);
    let mut o = Options::default();
    let mut remove = false;
    while let Some(arg) = p.next().map_err(|e| e.to_string())? {
        let given = match arg {
            Long(name) => name.to_string(),
            Short(c) => return Err(format!("unknown option '-{c}' (see --help)")),
            Value(v) => {
                return Err(format!(
                    "unexpected argument '{}' (see --help)",
                    v.to_string_lossy()
                ))
            }
        };
        let name = long_option(&given, NAMES).map_err(|candidates| {
            if candidates.is_empty() {
                format!("unknown option '--{given}' (see --help)")
            } else {
                format!(
                    "ambiguous option '--{given}': --{}",
                    candidates.join(", --")
                )
            }
        })?;
        if matches!(name, "help" | "remove") {
            if p.optional_value().is_some() {
                return Err(format!("--{name} does not take a value"));
            }
            if name == "help" {
                return Ok(Parsed::Help);
            }
            remove = true;
            continue;
        }
        let v = p
            .value()
            .map_err(|_| format!("--{name} needs a value"))?
            .to_string_lossy()
            .into_owned();
        match name {
            "params" => o.params = path(name, v)?,
            "rate" => {
                let r: u32 = number(name, &v, "a whole number of steps per second")?;
                if r == 0 || r > MAX_RATE_HZ {
                    return Err(format!("--rate: must be 1..{MAX_RATE_HZ}"));
                }
                o.rate_hz = r;
            }
            "start" => o.start = Some(number(name, &v, "a whole number of counts")?),
            "priority" => {
                let n: i32 = number(name, &v, "a priority")?;
                if !(1..=MAX_PRIORITY).contains(&n) {
                    return Err(format!(
                        "--priority: must be 1..{MAX_PRIORITY}, below the interrupt threads \
                         (50) that make the edge events"
                    ));
                }
                o.priority = n;
            }
            "cpu" => o.cpu = Some(number(name, &v, "a CPU number")?),
            "duration" => o.duration_s = Some(seconds(name, &v)?),
            "freeze-encoder-after" => o.freeze_encoder_s = Some(seconds(name, &v)?),
            "edge-gap-us" => {
                let us: u32 = number(name, &v, "a whole number of microseconds")?;
                if us > 1_000_000 {
                    return Err("--edge-gap-us: must be 0..1000000".into());
                }
                o.edge_gap_us = us;
            }
            "trace" => o.trace = Some(path(name, v)?),
            "json" => o.json = Some(path(name, v)?),
            _ => unreachable!("every name of NAMES is handled"),
        }
    }
    if remove {
        if o != Options::default() {
            return Err("--remove takes no other option".into());
        }
        return Ok(Parsed::Remove);
    }
    Ok(Parsed::Run(o))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        std::iter::once("plant-sim")
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

    fn err(s: &str) -> String {
        parse(&args(s)).expect_err(s)
    }

    #[test]
    fn defaults_and_every_option() {
        assert_eq!(run(""), Options::default());
        let o = run("--params=/p --rate 5000 --start=-40 --priority=40 --cpu=1 \
             --duration=2.5 --freeze-encoder-after 1 --edge-gap-us=2000 --trace=/t.csv \
             --json /s.json");
        assert_eq!(
            o,
            Options {
                params: "/p".into(),
                rate_hz: 5000,
                start: Some(-40),
                priority: 40,
                cpu: Some(1),
                duration_s: Some(2.5),
                freeze_encoder_s: Some(1.0),
                edge_gap_us: 2000,
                trace: Some("/t.csv".into()),
                json: Some("/s.json".into()),
            }
        );
        // Unique prefixes, as getopt_long.
        assert_eq!(run("--freeze=3").freeze_encoder_s, Some(3.0));
        assert_eq!(parse(&args("--help")), Ok(Parsed::Help));
        assert_eq!(parse(&args("--remove")), Ok(Parsed::Remove));
    }

    #[test]
    fn bad_arguments_say_what_is_wrong() {
        for (line, msg) in [
            ("--rate=0", "--rate: must be 1..20000"),
            (
                "--edge-gap-us=-1",
                "--edge-gap-us: '-1' is not a whole number",
            ),
            ("--edge-gap-us=1000001", "--edge-gap-us: must be 0..1000000"),
            ("--rate=fast", "--rate: 'fast' is not a whole number"),
            ("--rate=20001", "--rate: must be 1..20000"),
            ("--priority=0", "--priority: must be 1..49"),
            (
                "--priority=50",
                "--priority: must be 1..49, below the interrupt threads",
            ),
            ("--duration=0", "--duration: must be more than 0"),
            ("--duration=-1", "--duration: must be more than 0"),
            ("--duration=inf", "--duration: must be more than 0"),
            ("--freeze-encoder-after=x", "is not a number of seconds"),
            ("--start=1.5", "--start: '1.5' is not a whole number"),
            ("--params=", "--params: empty path"),
            ("--rate", "--rate needs a value"),
            ("--bogus", "unknown option '--bogus'"),
            ("-x", "unknown option '-x'"),
            ("extra", "unexpected argument 'extra'"),
            ("--help=1", "--help does not take a value"),
            ("--remove --rate=5", "--remove takes no other option"),
        ] {
            let e = err(line);
            assert!(e.contains(msg), "{line}: {e}");
        }
    }
}
