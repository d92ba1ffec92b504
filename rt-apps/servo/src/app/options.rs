//! The command line: `servo [run] [OPTIONS]`, `servo decode`, `servo spi-id`.
//! Option names follow cyclictest where the meaning is the same (`-p`,
//! `-a`, `-i`, `-l`, `-D`, `-q`); long options may be abbreviated to a
//! unique prefix, as with getopt_long.

use crate::control::HomingConfig;
use crate::linux::gpio::LineSpec;
use crate::pid::PidConfig;
use crate::telemetry::LogVia;
use lexopt::Arg::{Long, Short, Value};
use std::ffi::OsString;

/// A usage error (exit code 2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, UsageError> {
    Err(UsageError(msg.into()))
}

/// The controller's roles of GPIO lines (names as in the plant's chip).
pub const ROLES: [&str; 13] = plant::lines::ALL;

/// Where the motor's magnitude goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Magnitude {
    /// The 8 duty lines (the simulated plant's "DAC").
    GpioDac,
    /// `/sys/class/pwm/pwmchip<chip>/pwm<channel>` at `period_ns`.
    Pwm {
        chip: u32,
        channel: u32,
        period_ns: u32,
    },
}

/// What the controller is connected to.
#[derive(Clone, Debug, PartialEq)]
pub enum Backend {
    /// GPIO lines (and maybe a PWM).
    Gpio {
        chip: String,
        /// Per-role overrides, `ROLES` order; `None` = the role's name on `chip`.
        lines: Vec<Option<LineSpec>>,
        magnitude: Magnitude,
    },
    /// The plant model in-process, with the parameters of this file (or
    /// the plant's defaults).
    Sim { params: Option<String> },
}

/// `servo run`.
#[derive(Clone, Debug, PartialEq)]
pub struct RunOptions {
    pub priority: i32,
    pub affinity: Option<usize>,
    pub interval_us: u32,
    pub loops: u64,
    pub duration_s: u64,
    pub backend: Backend,
    pub moves: Vec<f32>,
    pub dwell_ms: u64,
    pub max_speed: f32,
    pub accel: f32,
    pub homing: Option<HomingConfig>,
    pub pid: PidConfig,
    pub saturation_ms: u64,
    pub encoder_timeout_ms: u64,
    pub log: Option<String>,
    pub via: LogVia,
    pub sync_every_ms: u64,
    pub poll_us: u32,
    pub quiet: bool,
    pub no_mlock: bool,
}

impl Default for RunOptions {
    fn default() -> RunOptions {
        let c = crate::control::Config::default();
        let (max_speed, accel) = match c.shape {
            crate::profile::Shape::Trapezoid { max_speed, accel } => (max_speed, accel),
            crate::profile::Shape::Step => (0.0, 0.0),
        };
        RunOptions {
            priority: 0,
            affinity: None,
            interval_us: 1000,
            loops: 0,
            duration_s: 0,
            backend: Backend::Gpio {
                chip: plant::lines::CHIP_LABEL.to_string(),
                lines: vec![None; ROLES.len()],
                magnitude: Magnitude::GpioDac,
            },
            moves: Vec::new(),
            dwell_ms: 500,
            max_speed,
            accel,
            homing: c.homing,
            pid: c.pid,
            saturation_ms: c.saturation_timeout_ns / 1_000_000,
            encoder_timeout_ms: c.encoder_timeout_ns / 1_000_000,
            log: None,
            via: LogVia::Direct,
            sync_every_ms: 1000,
            poll_us: 50,
            quiet: false,
            no_mlock: false,
        }
    }
}

/// `servo decode`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeOptions {
    pub csv: bool,
    pub summary: bool,
    pub path: String,
}

/// `servo spi-id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpiIdOptions {
    pub device: String,
    pub speed_hz: u32,
}

/// What to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    Run(Box<RunOptions>),
    Decode(DecodeOptions),
    SpiId(SpiIdOptions),
    Help,
    Version,
}

const RUN_LONG: &[&str] = &[
    "accel",
    "affinity",
    "chip",
    "dwell",
    "duration",
    "encoder-timeout",
    "help",
    "home-duty",
    "home-timeout",
    "interval",
    "kd",
    "kff",
    "ki",
    "kp",
    "limit",
    "line",
    "log",
    "log-via",
    "loops",
    "max-speed",
    "moves",
    "no-home",
    "no-mlock",
    "poll-us",
    "priority",
    "pwm",
    "quiet",
    "sat-time",
    "sim-plant",
    "sqpoll",
    "sync-every",
    "version",
    "velocity-window",
];

fn long_name<'a>(name: &str, names: &[&'a str]) -> Result<&'a str, UsageError> {
    rt_utils::args::long_option(name, names).map_err(|cands| {
        UsageError(if cands.is_empty() {
            format!("unknown option '--{name}'")
        } else {
            format!("option '--{name}' is ambiguous ({})", cands.join(", "))
        })
    })
}

fn string(v: OsString, name: &str) -> Result<String, UsageError> {
    v.into_string()
        .map_err(|_| UsageError(format!("option {name}: the value is not UTF-8")))
}

fn num<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, UsageError> {
    v.trim()
        .parse()
        .map_err(|_| UsageError(format!("option {name}: '{v}' is not a valid number")))
}

fn real(name: &str, v: &str) -> Result<f32, UsageError> {
    let x: f32 = num(name, v)?;
    if !x.is_finite() {
        return err(format!("option {name}: '{v}' is not a finite number"));
    }
    Ok(x)
}

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Command, UsageError> {
    match args.first().map(String::as_str) {
        Some("decode") => parse_decode(&args[1..]),
        Some("spi-id") => parse_spi_id(&args[1..]),
        Some("run") => parse_run(&args[1..]),
        _ => parse_run(args),
    }
}

fn parse_run(args: &[String]) -> Result<Command, UsageError> {
    let mut p = lexopt::Parser::from_args(args.iter().cloned());
    p.set_short_equals(false);
    let mut o = RunOptions::default();
    let mut sqpoll = false;
    let mut home_duty = None;
    let mut home_timeout_ms = None;
    let mut no_home = false;
    let mut chip = None;
    let mut lines: Vec<(usize, LineSpec)> = Vec::new();
    let mut pwm = None;
    let mut sim = None;
    while let Some(arg) = p.next().map_err(|e| UsageError(e.to_string()))? {
        let (arg, name) = match arg {
            Long(l) => {
                let l = long_name(l, RUN_LONG)?;
                (Long(l), format!("--{l}"))
            }
            Short(c) => (Short(c), format!("-{c}")),
            Value(v) => return err(format!("unexpected argument '{}'", v.to_string_lossy())),
        };
        let name = name.as_str();
        let mut value = || -> Result<String, UsageError> {
            string(p.value().map_err(|e| UsageError(e.to_string()))?, name)
        };
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help),
            Long("version") => return Ok(Command::Version),
            Short('p') | Long("priority") => {
                let prio: i32 = num(name, &value()?)?;
                if !(0..=99).contains(&prio) {
                    return err(format!(
                        "option {name}: priority {prio} is out of range 0..99"
                    ));
                }
                o.priority = prio;
            }
            Short('a') | Long("affinity") => o.affinity = Some(num(name, &value()?)?),
            Short('i') | Long("interval") => {
                let us: u32 = num(name, &value()?)?;
                if !(100..=1_000_000).contains(&us) {
                    return err(format!(
                        "option {name}: {us} us is out of range 100..1000000"
                    ));
                }
                o.interval_us = us;
            }
            Short('l') | Long("loops") => o.loops = num(name, &value()?)?,
            Short('D') | Long("duration") => {
                o.duration_s = rtlat::options::parse_duration(&value()?)
                    .map_err(|e| UsageError(format!("option {name}: {e}")))?
            }
            Short('q') | Long("quiet") => o.quiet = true,
            Long("chip") => chip = Some(value()?),
            Long("line") => {
                let v = value()?;
                let Some((role, spec)) = v.split_once('=') else {
                    return err(format!("option {name}: '{v}' is not ROLE=[CHIP:]LINE"));
                };
                let Some(idx) = ROLES.iter().position(|r| *r == role) else {
                    return err(format!(
                        "option {name}: unknown role '{role}' (roles: {})",
                        ROLES.join(", ")
                    ));
                };
                let spec =
                    LineSpec::parse(spec).map_err(|e| UsageError(format!("option {name}: {e}")))?;
                lines.push((idx, spec));
            }
            Long("pwm") => {
                let v = value()?;
                let f: Vec<&str> = v.split(':').collect();
                let bad = || {
                    UsageError(format!(
                        "option {name}: '{v}' is not PWMCHIP:CHANNEL[:PERIOD_NS]"
                    ))
                };
                if !(2..=3).contains(&f.len()) {
                    return Err(bad());
                }
                let chip = f[0].parse().map_err(|_| bad())?;
                let channel = f[1].parse().map_err(|_| bad())?;
                let period_ns = match f.get(2) {
                    Some(s) => s.parse().map_err(|_| bad())?,
                    None => 50_000,
                };
                if period_ns == 0 {
                    return Err(bad());
                }
                pwm = Some(Magnitude::Pwm {
                    chip,
                    channel,
                    period_ns,
                });
            }
            Long("sim-plant") => {
                sim = Some(match p.optional_value() {
                    Some(v) => Some(string(v, name)?),
                    None => None,
                })
            }
            Long("moves") => {
                o.moves = value()?
                    .split(',')
                    .map(|m| real(name, m))
                    .collect::<Result<_, _>>()?;
                if o.moves.len() > crate::profile::MAX_MOVES {
                    return err(format!(
                        "option {name}: at most {} moves",
                        crate::profile::MAX_MOVES
                    ));
                }
            }
            Long("dwell") => o.dwell_ms = num(name, &value()?)?,
            Long("max-speed") => o.max_speed = real(name, &value()?)?,
            Long("accel") => o.accel = real(name, &value()?)?,
            Long("no-home") => no_home = true,
            Long("home-duty") => home_duty = Some(real(name, &value()?)?),
            Long("home-timeout") => home_timeout_ms = Some(num::<u64>(name, &value()?)?),
            Long("kp") => o.pid.kp = real(name, &value()?)?,
            Long("ki") => o.pid.ki = real(name, &value()?)?,
            Long("kd") => o.pid.kd = real(name, &value()?)?,
            Long("kff") => o.pid.kff = real(name, &value()?)?,
            Long("limit") => o.pid.limit = real(name, &value()?)?,
            Long("velocity-window") => o.pid.velocity_window = num(name, &value()?)?,
            Long("sat-time") => o.saturation_ms = num(name, &value()?)?,
            Long("encoder-timeout") => o.encoder_timeout_ms = num(name, &value()?)?,
            Long("log") => o.log = Some(value()?),
            Long("log-via") => {
                o.via = match value()?.as_str() {
                    "direct" => LogVia::Direct,
                    "thread" => LogVia::Thread,
                    "io_uring" => LogVia::IoUring,
                    "flexsc" => LogVia::FlexSc,
                    v => {
                        return err(format!(
                            "option {name}: '{v}' is not direct, thread, io_uring or flexsc"
                        ))
                    }
                }
            }
            Long("sqpoll") => sqpoll = true,
            Long("sync-every") => o.sync_every_ms = num(name, &value()?)?,
            Long("poll-us") => {
                let us: u32 = num(name, &value()?)?;
                if us > 10_000 {
                    return err(format!("option {name}: {us} us is out of range 0..10000"));
                }
                o.poll_us = us;
            }
            Long("no-mlock") => o.no_mlock = true,
            _ => return err(format!("unknown option '{name}'")),
        }
    }
    if sqpoll {
        if o.via != LogVia::IoUring {
            return err("--sqpoll needs --log-via=io_uring");
        }
        o.via = LogVia::IoUringSqpoll;
    }
    if o.via != LogVia::Direct && o.log.is_none() {
        return err("--log-via needs --log=PATH");
    }
    if no_home {
        if home_duty.is_some() || home_timeout_ms.is_some() {
            return err("--no-home with --home-duty or --home-timeout");
        }
        o.homing = None;
    } else if let Some(h) = o.homing.as_mut() {
        if let Some(d) = home_duty {
            h.duty = d;
        }
        if let Some(t) = home_timeout_ms {
            h.timeout_ns = t.saturating_mul(1_000_000);
        }
    }
    match sim {
        Some(params) => {
            if chip.is_some() || !lines.is_empty() || pwm.is_some() {
                return err("--sim-plant has no GPIO lines: no --chip, --line or --pwm with it");
            }
            o.backend = Backend::Sim { params };
        }
        None => {
            let mut specs = vec![None; ROLES.len()];
            for (idx, spec) in lines {
                specs[idx] = Some(spec);
            }
            o.backend = Backend::Gpio {
                chip: chip.unwrap_or_else(|| plant::lines::CHIP_LABEL.to_string()),
                lines: specs,
                magnitude: pwm.unwrap_or(Magnitude::GpioDac),
            };
        }
    }
    // The controller checks the rest (gains, limits, profile, timeouts).
    o.controller_config()
        .and_then(|c| c.validate().map_err(|e| format!("{e:?}")))
        .map_err(|e| UsageError(format!("bad controller settings: {e}")))?;
    Ok(Command::Run(Box::new(o)))
}

impl RunOptions {
    /// The controller's configuration.
    pub fn controller_config(&self) -> Result<crate::control::Config, String> {
        use crate::profile::{Move, Shape};
        let shape = if self.max_speed == 0.0 {
            Shape::Step
        } else {
            Shape::Trapezoid {
                max_speed: self.max_speed,
                accel: self.accel,
            }
        };
        let moves = self
            .moves
            .iter()
            .map(|&target| Move {
                target,
                dwell_ns: self.dwell_ms.saturating_mul(1_000_000),
            })
            .collect();
        Ok(crate::control::Config {
            pid: self.pid,
            homing: self.homing,
            moves,
            shape,
            saturation_timeout_ns: self.saturation_ms.saturating_mul(1_000_000),
            encoder_timeout_ns: self.encoder_timeout_ms.saturating_mul(1_000_000),
            ..crate::control::Config::default()
        })
    }
}

fn parse_decode(args: &[String]) -> Result<Command, UsageError> {
    let mut p = lexopt::Parser::from_args(args.iter().cloned());
    let (mut csv, mut summary, mut path) = (false, false, None);
    while let Some(arg) = p.next().map_err(|e| UsageError(e.to_string()))? {
        match arg {
            Long(l) => match long_name(l, &["csv", "help", "summary"])? {
                "csv" => csv = true,
                "summary" => summary = true,
                _ => return Ok(Command::Help),
            },
            Short('h') => return Ok(Command::Help),
            Short(c) => return err(format!("decode: unknown option '-{c}'")),
            Value(v) if path.is_none() => path = Some(string(v, "decode")?),
            Value(v) => {
                return err(format!(
                    "decode: unexpected argument '{}'",
                    v.to_string_lossy()
                ))
            }
        }
    }
    if csv && summary {
        return err("decode: --csv or --summary, not both");
    }
    let Some(path) = path else {
        return err("decode: which log? (servo decode [--csv|--summary] LOG)");
    };
    Ok(Command::Decode(DecodeOptions { csv, summary, path }))
}

fn parse_spi_id(args: &[String]) -> Result<Command, UsageError> {
    let mut p = lexopt::Parser::from_args(args.iter().cloned());
    let mut o = SpiIdOptions {
        device: "/dev/spidev0.0".into(),
        speed_hz: 1_000_000,
    };
    while let Some(arg) = p.next().map_err(|e| UsageError(e.to_string()))? {
        match arg {
            Long(l) => match long_name(l, &["device", "help", "speed"])? {
                "device" => {
                    o.device = string(
                        p.value().map_err(|e| UsageError(e.to_string()))?,
                        "--device",
                    )?
                }
                "speed" => {
                    let v = string(p.value().map_err(|e| UsageError(e.to_string()))?, "--speed")?;
                    o.speed_hz = num("--speed", &v)?;
                    if o.speed_hz == 0 {
                        return err("spi-id: --speed must be > 0 Hz");
                    }
                }
                _ => return Ok(Command::Help),
            },
            Short('h') => return Ok(Command::Help),
            Short(c) => return err(format!("spi-id: unknown option '-{c}'")),
            Value(v) => {
                return err(format!(
                    "spi-id: unexpected argument '{}'",
                    v.to_string_lossy()
                ))
            }
        }
    }
    Ok(Command::SpiId(o))
}

/// `servo --help`.
pub fn help_text() -> String {
    format!(
        "servo {version}: closed-loop position controller (rtflex control app)

usage: servo [run] [OPTIONS]
       servo decode [--csv | --summary] LOG
       servo spi-id [--device=/dev/spidevB.C] [--speed=HZ]

run: home, then follow the moves, until -l/-D, SIGINT/SIGTERM or a fault.
Outputs are driven safe (enable low, duty 0) on every exit and on a fault.
  -p, --priority=PRIO     SCHED_FIFO priority of the control loop (1..99; 0 = SCHED_OTHER, default)
  -a, --affinity=CPU      pin the control loop to CPU
  -i, --interval=US       control period in us (default 1000)
  -l, --loops=N           stop after N cycles (default 0: no limit)
  -D, --duration=T        stop after T (seconds, or with suffix s/m/h/d)
  -q, --quiet             no summary on stdout
      --no-mlock          do not mlockall (for unprivileged test runs)
devices (default: the simulated plant's gpio-sim chip, lines by name):
      --chip=LABEL        GPIO chip label (or gpiochipN, /dev/gpiochipN) of every line (default {chip})
      --line=ROLE=[CHIP:]NAME|OFFSET   wire one role elsewhere; roles: {roles}
      --pwm=PWMCHIP:CHANNEL[:PERIOD_NS]  magnitude on /sys/class/pwm (default period 50000 ns) instead of
                          the motor-duty0..7 lines
      --sim-plant[=FILE]  no devices: the plant model in-process (parameters FILE, default the plant's)
motion:
      --moves=P1,P2,...   targets in counts after homing, in order (default: hold where homed)
      --dwell=MS          hold after each move (default 500)
      --max-speed=C/S     trapezoid speed limit, counts/s (default 300; 0 = steps)
      --accel=C/S2        trapezoid acceleration (default 3000)
      --no-home           no homing: the start position is 0
      --home-duty=F       signed duty while homing (default -0.3: search downwards)
      --home-timeout=MS   fault if home is not found in time (default 10000)
control and faults:
      --kp, --ki, --kd, --kff=X  PID gains and velocity feedforward (duty per count, count*s, count/s, count/s)
      --limit=F           output limit |duty| <= F (default 1.0)
      --velocity-window=N positions in the velocity estimate of D (default 8)
      --sat-time=MS       fault when saturated that long (default 1000)
      --encoder-timeout=MS  fault when driven with no encoder counts that long (default 200)
telemetry (one {record}-byte record per cycle; see servo decode):
      --log=PATH          log file (truncated; fdatasync every --sync-every), or a FIFO/tty/- (stdout)
      --log-via=direct|thread|io_uring|flexsc
                          write(2) in the loop (default) | a queue to a logger thread | io_uring
                          submissions without waiting | FlexSC post-and-forget writes
      --sqpoll            io_uring with a kernel polling thread
      --poll-us=US        FlexSC syscall-thread / SQPOLL idle polling (default 50)
      --sync-every=MS     fdatasync period of a log file (default 1000; 0 = only at the end)
exit: 0 done, 1 error (device, log, ...), 2 bad arguments, 3 ended in a fault.
",
        version = env!("CARGO_PKG_VERSION"),
        chip = plant::lines::CHIP_LABEL,
        roles = ROLES.join(", "),
        record = crate::telemetry::RECORD_SIZE,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<RunOptions, UsageError> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        match parse(&args)? {
            Command::Run(o) => Ok(*o),
            c => panic!("not a run: {c:?}"),
        }
    }

    #[test]
    fn defaults_and_cyclictest_names() {
        let o = run(&[]).unwrap();
        assert_eq!(
            (o.priority, o.interval_us, o.loops, o.via),
            (0, 1000, 0, LogVia::Direct)
        );
        let o = run(&[
            "run", "-p", "80", "-a", "1", "-i", "500", "-l", "10", "-D", "2m",
        ])
        .unwrap();
        assert_eq!(
            (o.priority, o.affinity, o.interval_us, o.loops, o.duration_s),
            (80, Some(1), 500, 10, 120)
        );
        let o = run(&[
            "--prio=5",
            "--int=2000",
            "--log=/tmp/x",
            "--log-via=io_uring",
            "--sqp",
        ])
        .unwrap();
        assert_eq!(
            (o.priority, o.interval_us, o.via),
            (5, 2000, LogVia::IoUringSqpoll)
        );
    }

    #[test]
    fn wiring_and_motion() {
        let o = run(&[
            "--chip=gpiochip3",
            "--line=home=gpiochip1:7",
            "--pwm=0:1",
            "--moves=100,-50.5",
            "--max-speed=0",
            "--no-home",
        ])
        .unwrap();
        let Backend::Gpio {
            chip,
            lines,
            magnitude,
        } = &o.backend
        else {
            panic!()
        };
        assert_eq!(chip, "gpiochip3");
        assert_eq!(lines[12], Some(LineSpec::parse("gpiochip1:7").unwrap()));
        assert_eq!(
            *magnitude,
            Magnitude::Pwm {
                chip: 0,
                channel: 1,
                period_ns: 50_000
            }
        );
        assert_eq!(o.moves, [100.0, -50.5]);
        assert_eq!(o.homing, None);
        let c = o.controller_config().unwrap();
        assert_eq!(c.shape, crate::profile::Shape::Step);
        let o = run(&["--sim-plant", "--home-duty=0.2", "--home-timeout=500"]).unwrap();
        assert_eq!(o.backend, Backend::Sim { params: None });
        assert_eq!(o.homing.unwrap().duty, 0.2);
        assert_eq!(o.homing.unwrap().timeout_ns, 500_000_000);
        let o = run(&["--sim-plant=/etc/rtflex/plant.conf"]).unwrap();
        assert_eq!(
            o.backend,
            Backend::Sim {
                params: Some("/etc/rtflex/plant.conf".into())
            }
        );
    }

    #[test]
    fn bad_arguments_say_what_is_wrong() {
        let e = |args: &[&str]| run(args).unwrap_err().0;
        assert!(e(&["-p", "100"]).contains("out of range"));
        assert!(e(&["-i", "10"]).contains("out of range"));
        assert!(e(&["--bogus"]).contains("unknown option '--bogus'"));
        assert!(e(&["--l"]).contains("ambiguous"));
        assert!(e(&["--log-via=carrier-pigeon", "--log=x"]).contains("not direct, thread"));
        assert!(e(&["--log-via=thread"]).contains("needs --log"));
        assert!(e(&["--sqpoll", "--log=x"]).contains("needs --log-via=io_uring"));
        assert!(e(&["--line=motor=3"]).contains("unknown role"));
        assert!(e(&["--pwm=0"]).contains("PWMCHIP:CHANNEL"));
        assert!(e(&["--moves=1,x"]).contains("not a valid number"));
        assert!(e(&["--kp=-1"]).contains("bad controller settings"));
        assert!(e(&["--limit=2"]).contains("bad controller settings"));
        assert!(e(&["--sim-plant", "--chip=x"]).contains("no GPIO lines"));
        assert!(e(&["-D", "5x"]).contains("unknown suffix"));
        assert!(e(&["extra"]).contains("unexpected argument"));
    }

    #[test]
    fn other_commands() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse(&args(&["decode", "--csv", "x.log"])).unwrap(),
            Command::Decode(DecodeOptions {
                csv: true,
                summary: false,
                path: "x.log".into()
            })
        );
        assert!(parse(&args(&["decode"])).is_err());
        assert!(parse(&args(&["decode", "--csv", "--summary", "x"])).is_err());
        assert_eq!(
            parse(&args(&[
                "spi-id",
                "--device=/dev/spidev1.0",
                "--speed=500000"
            ]))
            .unwrap(),
            Command::SpiId(SpiIdOptions {
                device: "/dev/spidev1.0".into(),
                speed_hz: 500_000
            })
        );
        assert_eq!(parse(&args(&["--help"])).unwrap(), Command::Help);
        assert!(help_text().contains("--log-via=direct|thread|io_uring|flexsc"));
    }
}
