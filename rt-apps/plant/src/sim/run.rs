//! The real-time loop of plant-sim: step the motor, drive the encoder and
//! home lines, read the motor command.

use super::chip::{Chip, Line};
use super::options::Options;
use crate::{encoder_ab, encoder_edge, lines, Channel, Drive, Motor, Params};
use rtlat::rt;
use rtlat::time::Ts;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by SIGUSR1: freeze the encoder lines.
static FREEZE: AtomicBool = AtomicBool::new(false);

extern "C" fn on_freeze_signal(_sig: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    FREEZE.store(true, Ordering::SeqCst);
}

fn install_freeze_handler() -> Result<(), String> {
    // SAFETY: sigaction is a plain C struct for which all-zero is a valid
    // (empty mask, no flags) value; the handler is set below.
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = on_freeze_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: `sa.sa_mask` is a valid sigset_t inside `sa`.
    unsafe { libc::sigemptyset(&mut sa.sa_mask) };
    // SAFETY: `sa` is fully initialised and outlives the call; the handler
    // is an `extern "C" fn(c_int)` that only performs an atomic store.
    if unsafe { libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()) } != 0 {
        return Err(format!(
            "cannot install the SIGUSR1 handler: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// The motor command as the lines show it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Command {
    pub enable: bool,
    pub dir: bool,
    pub duty: u8,
}

/// What a run did, for the summary.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    pub rate_hz: u32,
    pub steps: u64,
    /// Wake-ups that came a whole period or more late (the missed steps
    /// are folded into the next one: the model still integrates the real
    /// elapsed time).
    pub late_steps: u64,
    /// Wake-up lag behind the step's deadline (ns).
    pub max_lag_ns: u64,
    pub sum_lag_ns: u64,
    /// Time from wake-up to the end of a step's work (ns).
    pub max_work_ns: u64,
    pub sum_work_ns: u64,
    /// Encoder lines changed (one pull write each, at most one a step).
    pub edges: u64,
    /// The most counts the encoder lines were behind the motor after a
    /// step (a late plant catches up one edge a step).
    pub max_encoder_lag: u32,
    /// Changes of the motor command seen.
    pub command_changes: u64,
    pub start_counts: i32,
    pub final_counts: i32,
    /// Position the encoder lines show (differs from the motor's once
    /// frozen).
    pub encoder_counts: i32,
    pub encoder_frozen: bool,
    pub seconds: f64,
}

impl Summary {
    /// The summary as one JSON object.
    pub fn json(&self) -> String {
        let avg = |sum: u64| sum.checked_div(self.steps).unwrap_or(0);
        format!(
            "{{\"plant_sim\":{{\"rate_hz\":{},\"steps\":{},\"late_steps\":{},\
             \"max_lag_ns\":{},\"avg_lag_ns\":{},\"max_work_ns\":{},\"avg_work_ns\":{},\
             \"edges\":{},\"max_encoder_lag\":{},\"command_changes\":{},\
             \"start_counts\":{},\"final_counts\":{},\"encoder_counts\":{},\
             \"encoder_frozen\":{},\"seconds\":{:.3}}}}}",
            self.rate_hz,
            self.steps,
            self.late_steps,
            self.max_lag_ns,
            avg(self.sum_lag_ns),
            self.max_work_ns,
            avg(self.sum_work_ns),
            self.edges,
            self.max_encoder_lag,
            self.command_changes,
            self.start_counts,
            self.final_counts,
            self.encoder_counts,
            self.encoder_frozen,
            self.seconds
        )
    }

    /// One human-readable line.
    pub fn line(&self) -> String {
        let avg = |sum: u64| sum.checked_div(self.steps).unwrap_or(0) / 1000;
        format!(
            "{} steps at {} Hz in {:.1} s, {} late; lag avg {} us max {} us; \
             work avg {} us max {} us; {} encoder edges (lines at most {} counts behind); \
             {} command changes; position {} -> {} (encoder shows {}{})",
            self.steps,
            self.rate_hz,
            self.seconds,
            self.late_steps,
            avg(self.sum_lag_ns),
            self.max_lag_ns / 1000,
            avg(self.sum_work_ns),
            self.max_work_ns / 1000,
            self.edges,
            self.max_encoder_lag,
            self.command_changes,
            self.start_counts,
            self.final_counts,
            self.encoder_counts,
            if self.encoder_frozen { ", frozen" } else { "" }
        )
    }
}

/// The plant's lines, opened.
struct Io {
    enable: Line,
    dir: Line,
    duty: [Line; 8],
    a: Line,
    b: Line,
    home: Line,
}

impl Io {
    fn open(chip: &Chip) -> Result<Io, String> {
        let line = |name: &str| {
            let dir = chip
                .line_dir_of(name)
                .ok_or_else(|| format!("no line {name}"))?;
            Line::open(&dir)
        };
        let mut duty = Vec::with_capacity(8);
        for name in lines::MOTOR_DUTY {
            duty.push(line(name)?);
        }
        Ok(Io {
            enable: line(lines::MOTOR_ENABLE)?,
            dir: line(lines::MOTOR_DIR)?,
            duty: duty
                .try_into()
                .map_err(|_| "eight duty lines".to_string())?,
            a: line(lines::ENCODER_A)?,
            b: line(lines::ENCODER_B)?,
            home: line(lines::HOME)?,
        })
    }

    /// The command. The lines are read one at a time, so a controller that
    /// sets them all at once (one line-request ioctl) between two reads
    /// would show a mix of its old and new command that it never output: a
    /// command that differs from `last` counts only once a second read
    /// agrees with it.
    fn command(&self, last: Command) -> Result<Command, String> {
        let mut seen = self.read_command(last)?;
        for _ in 0..8 {
            if seen == last {
                return Ok(seen);
            }
            let again = self.read_command(last)?;
            if again == seen {
                return Ok(seen);
            }
            seen = again;
        }
        // Changing all the time: keep the last settled command this step.
        Ok(last)
    }

    /// One read of the command: with the driver disabled the rest is not
    /// read (it does not matter, and it saves nine reads a step).
    fn read_command(&self, last: Command) -> Result<Command, String> {
        if !self.enable.level()? {
            return Ok(Command {
                enable: false,
                ..last
            });
        }
        let mut duty = 0u8;
        for (bit, line) in self.duty.iter().enumerate() {
            if line.level()? {
                duty |= 1 << bit;
            }
        }
        Ok(Command {
            enable: true,
            dir: self.dir.level()?,
            duty,
        })
    }
}

fn ts_of_ns(ns: u64) -> Ts {
    Ts::new((ns / 1_000_000_000) as i64, (ns % 1_000_000_000) as i64)
}

/// Runs the plant on `chip` until SIGINT/SIGTERM or the duration; `ready`
/// is called once the lines show the start position.
pub fn run(
    chip: &Chip,
    params: Params,
    o: &Options,
    ready: impl FnOnce(i32),
) -> Result<Summary, String> {
    rt::install_stop_handler().map_err(|e| format!("cannot install the stop handler: {e}"))?;
    install_freeze_handler()?;
    let io = Io::open(chip)?;
    let mut trace = match &o.trace {
        Some(path) => Some(BufWriter::with_capacity(
            1 << 16,
            File::create(path).map_err(|e| format!("cannot create {path}: {e}"))?,
        )),
        None => None,
    };
    if let Some(t) = trace.as_mut() {
        writeln!(
            t,
            "t_ns,position,encoder,speed_rad_s,encoder_frozen,command_ns,enable,dir,duty,volts"
        )
        .map_err(|e| format!("trace: {e}"))?;
    }
    let start = o.start.unwrap_or(params.start_counts);
    let mut motor = Motor::at(params, start);
    // The lines show the start position before anyone reads them.
    let (a, b) = encoder_ab(start);
    io.a.pull(a)?;
    io.b.pull(b)?;
    let mut home = params.home(start);
    io.home.pull(home)?;
    let mut shown = start;
    let mut summary = Summary {
        rate_hz: o.rate_hz,
        start_counts: start,
        ..Summary::default()
    };
    let mut command = io.command(Command::default())?;
    let mut drive = Drive::from_lines(
        command.enable,
        command.dir,
        command.duty,
        params.supply_volts,
    );
    ready(start);

    let period_ns = 1_000_000_000 / u64::from(o.rate_hz);
    let began = rt_utils::sys::now_ns();
    let end = o.duration_s.map(|s| began.saturating_add((s * 1e9) as u64));
    let freeze_at = o
        .freeze_encoder_s
        .map(|s| began.saturating_add((s * 1e9) as u64));
    let mut last = began;
    let mut next = began + period_ns;
    let mut line = String::with_capacity(128);
    let mut traced: Option<(Command, i32, i32)> = None;
    let edge_gap_ns = u64::from(o.edge_gap_us) * 1000;
    // When the last encoder edge was written (after its pull).
    let mut last_edge_ns: Option<u64> = None;
    loop {
        let rc = rt::clock_nanosleep_abs(libc::CLOCK_MONOTONIC, &ts_of_ns(next));
        if rt::STOP.load(Ordering::SeqCst) {
            break;
        }
        if rc == libc::EINTR {
            // SIGUSR1: the step happens at its time.
            continue;
        }
        if rc != 0 {
            return Err(format!("clock_nanosleep: {}", rt::strerror(rc)));
        }
        let now = rt_utils::sys::now_ns();
        if end.is_some_and(|e| now >= e) {
            break;
        }
        let lag = now.saturating_sub(next);
        summary.max_lag_ns = summary.max_lag_ns.max(lag);
        summary.sum_lag_ns += lag;
        if lag >= period_ns {
            summary.late_steps += 1;
            next = now + period_ns;
        } else {
            next += period_ns;
        }
        summary.steps += 1;

        let state = motor.step((now - last) as f32 * 1e-9, drive);
        last = now;
        if !summary.encoder_frozen
            && (FREEZE.load(Ordering::SeqCst) || freeze_at.is_some_and(|f| now >= f))
        {
            summary.encoder_frozen = true;
        }
        // At most one encoder edge a step, and the edges --edge-gap-us
        // apart: gpio-sim raises a line's interrupt through one IRQ work
        // item for the whole chip, and two edges pending at once are handled
        // in line-offset order, not in the order they happened, so two edges
        // written within one run of that work (A then B, or B then A) could
        // reach the controller swapped and decode as two counts the wrong
        // way. On a uniprocessor ARM kernel the work runs at the next tick,
        // not at once (DEFAULT_EDGE_GAP_US). A late plant's encoder lags its
        // motor for a while instead.
        if !summary.encoder_frozen
            && shown != state.position_counts
            && last_edge_ns.is_none_or(|t| now.saturating_sub(t) >= edge_gap_ns)
        {
            let up = state.position_counts > shown;
            let (channel, level) = encoder_edge(shown, up);
            match channel {
                Channel::A => io.a.pull(level)?,
                Channel::B => io.b.pull(level)?,
            }
            shown = if up { shown + 1 } else { shown - 1 };
            summary.edges += 1;
            last_edge_ns = Some(rt_utils::sys::now_ns());
        }
        let lag = state.position_counts.abs_diff(shown);
        if !summary.encoder_frozen {
            summary.max_encoder_lag = summary.max_encoder_lag.max(lag);
        }
        let at_home = params.home(state.position_counts);
        if at_home != home {
            io.home.pull(at_home)?;
            home = at_home;
        }

        let seen = io.command(command)?;
        let command_ns = rt_utils::sys::now_ns();
        if seen != command {
            summary.command_changes += 1;
            command = seen;
            drive = Drive::from_lines(
                command.enable,
                command.dir,
                command.duty,
                params.supply_volts,
            );
        }
        if let Some(t) = trace.as_mut() {
            if traced != Some((command, state.position_counts, shown)) {
                traced = Some((command, state.position_counts, shown));
                let volts = match drive {
                    Drive::Coast => 0.0,
                    Drive::Volts(v) => v,
                };
                line.clear();
                let _ = writeln!(
                    line,
                    "{now},{},{shown},{:.4},{},{command_ns},{},{},{},{volts:.3}",
                    state.position_counts,
                    state.speed_rad_s,
                    u8::from(summary.encoder_frozen),
                    u8::from(command.enable),
                    u8::from(command.dir),
                    command.duty,
                );
                t.write_all(line.as_bytes())
                    .map_err(|e| format!("trace: {e}"))?;
                // The first step always makes a row (nothing was traced
                // yet): written out at once, it shows a reader of the
                // trace that the plant has stepped.
                if summary.steps == 1 {
                    t.flush().map_err(|e| format!("trace: {e}"))?;
                }
            }
        }
        let work = rt_utils::sys::now_ns().saturating_sub(now);
        summary.max_work_ns = summary.max_work_ns.max(work);
        summary.sum_work_ns += work;
    }
    summary.seconds = (rt_utils::sys::now_ns() - began) as f64 * 1e-9;
    summary.final_counts = motor.position_counts();
    summary.encoder_counts = shown;
    if let Some(mut t) = trace {
        t.flush().map_err(|e| format!("trace: {e}"))?;
    }
    Ok(summary)
}
