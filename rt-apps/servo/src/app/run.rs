//! `servo run`: set-up, the real-time control loop, shutdown.
//!
//! Set-up (may allocate and make any system call): devices, log target and
//! header, the telemetry path (logger thread, io_uring, FlexSC), the
//! SIGINT/SIGTERM handler, `mlockall`, CPU affinity, SCHED_FIFO, a
//! pre-faulted stack. The loop ([`run_loop`]) then makes, per cycle, one
//! absolute `clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)`, three clock
//! reads, the device I/O of the rig and what the telemetry path needs
//! (`write`/`fdatasync` for direct, `io_uring_enter` for plain io_uring,
//! none otherwise unless a polling kernel thread sleeps), and no heap
//! operation (tests/noalloc.rs, tests/cli.rs's strace run). After it: the
//! outputs are driven safe, the log is drained and synced, the summary
//! printed.

use super::log::{
    logger_thread, DirectLog, FlexScLog, LogPath, NoLog, Outcome, Queue, Target, ThreadLog,
    UringLog,
};
use super::options::{Backend, Magnitude, RunOptions, ROLES};
use crate::control::{Controller, HwError, Servo, State, Step};
use crate::drive::MotorDrive;
use crate::linux::gpio::{find_line, EdgeEncoder, EdgeInput, GpioDac, LineSpec, OutputBank};
use crate::linux::pwm::SysfsPwm;
use crate::linux::Error as DevError;
use crate::sim::SimPlant;
use crate::telemetry::{Header, LogVia, Record, FLAG_DRIVEN, FLAG_OVERRUN};
use embedded_hal::pwm::{ErrorType as PwmErrorType, SetDutyCycle};
use rtlat::time::Ts;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::FileTypeExt;
use std::sync::atomic::{AtomicBool, Ordering};

/// Exit codes.
pub const EXIT_OK: i32 = 0;
pub const EXIT_ERROR: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_FAULT: i32 = 3;

/// The controller and its hardware, as the loop drives it.
pub trait Rig {
    type Error: Copy + fmt::Display;
    /// Outputs safe, controller started (homing or run).
    fn start(&mut self, now_ns: u64) -> Result<(), Self::Error>;
    /// One control cycle.
    fn cycle(&mut self, now_ns: u64) -> Result<Step, Self::Error>;
    /// Outputs safe.
    fn safe(&mut self) -> Result<(), Self::Error>;
    /// The controller's state.
    fn state(&self) -> State;
}

impl<E, EN, DIR, PWM, ENC, HOME> Rig for Servo<EN, DIR, PWM, ENC, HOME>
where
    E: Copy + fmt::Display,
    EN: embedded_hal::digital::OutputPin<Error = E>,
    DIR: embedded_hal::digital::OutputPin<Error = E>,
    PWM: SetDutyCycle<Error = E>,
    ENC: crate::quadrature::PositionSensor<Error = E>,
    HOME: embedded_hal::digital::InputPin<Error = E>,
{
    type Error = HwError<E>;
    fn start(&mut self, now_ns: u64) -> Result<(), HwError<E>> {
        Servo::start(self, now_ns)
    }
    fn cycle(&mut self, now_ns: u64) -> Result<Step, HwError<E>> {
        Servo::cycle(self, now_ns)
    }
    fn safe(&mut self) -> Result<(), HwError<E>> {
        Servo::safe(self).map_err(HwError::Drive)
    }
    fn state(&self) -> State {
        self.controller.state()
    }
}

/// The simulated plant's servo: the model runs for the real time between
/// two cycles.
pub struct SimRig<'p> {
    plant: &'p SimPlant,
    servo: Servo<
        crate::sim::SimOutput<'p>,
        crate::sim::SimOutput<'p>,
        crate::sim::SimDac<'p>,
        crate::sim::SimEncoder<'p>,
        crate::sim::SimInput<'p>,
    >,
    last_ns: u64,
}

impl<'p> SimRig<'p> {
    pub fn new(plant: &'p SimPlant, controller: Controller) -> SimRig<'p> {
        SimRig {
            plant,
            servo: Servo {
                drive: MotorDrive::new(plant.enable_pin(), plant.dir_pin(), plant.dac()),
                encoder: plant.encoder(),
                home: plant.home_pin(),
                controller,
            },
            last_ns: 0,
        }
    }
}

impl Rig for SimRig<'_> {
    type Error = HwError<core::convert::Infallible>;
    fn start(&mut self, now_ns: u64) -> Result<(), Self::Error> {
        self.last_ns = now_ns;
        self.servo.start(now_ns)
    }
    fn cycle(&mut self, now_ns: u64) -> Result<Step, Self::Error> {
        self.plant
            .advance(now_ns.saturating_sub(self.last_ns) as f32 * 1e-9);
        self.last_ns = now_ns;
        self.servo.cycle(now_ns)
    }
    fn safe(&mut self) -> Result<(), Self::Error> {
        self.servo.safe().map_err(HwError::Drive)
    }
    fn state(&self) -> State {
        self.servo.controller.state()
    }
}

/// The motor's magnitude on a board or in the guest.
pub enum Magn<'b> {
    Dac(GpioDac<'b>),
    Pwm(SysfsPwm),
}

impl PwmErrorType for Magn<'_> {
    type Error = DevError;
}

impl SetDutyCycle for Magn<'_> {
    fn max_duty_cycle(&self) -> u16 {
        match self {
            Magn::Dac(d) => d.max_duty_cycle(),
            Magn::Pwm(p) => p.max_duty_cycle(),
        }
    }
    fn set_duty_cycle(&mut self, duty: u16) -> Result<(), DevError> {
        match self {
            Magn::Dac(d) => d.set_duty_cycle(duty),
            Magn::Pwm(p) => p.set_duty_cycle(duty),
        }
    }
}

/// Loop parameters.
#[derive(Clone, Copy, Debug)]
pub struct LoopSettings {
    pub period_ns: u64,
    /// 0: no limit.
    pub loops: u64,
    /// 0: no limit.
    pub duration_ns: u64,
    /// 0: never in the loop.
    pub sync_every_ns: u64,
}

/// What the loop measured.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoopStats {
    pub cycles: u64,
    /// Missed periods.
    pub overruns: u64,
    pub latency_min_ns: u64,
    pub latency_max_ns: u64,
    pub latency_sum_ns: u64,
    pub compute_max_ns: u64,
    pub loop_max_ns: u64,
    pub loop_sum_ns: u64,
    /// Records lost as the loop knew at its end.
    pub lost: u32,
}

/// Why the loop stopped early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoopError<E> {
    Hw(E),
    Sleep(i32),
}

fn ts_of(ns: u64) -> Ts {
    Ts::new((ns / 1_000_000_000) as i64, (ns % 1_000_000_000) as i64)
}

/// The control loop. Returns when `stop` is set (after the sleep it
/// interrupts), after `loops` cycles or `duration_ns`, on a fault (after
/// its record) or on an error; the outputs are left to the caller.
pub fn run_loop<R: Rig, L: LogPath>(
    rig: &mut R,
    log: &mut L,
    s: &LoopSettings,
    stop: &AtomicBool,
) -> (LoopStats, Result<(), LoopError<R::Error>>) {
    let mut st = LoopStats {
        latency_min_ns: u64::MAX,
        ..LoopStats::default()
    };
    let start = rt_utils::sys::now_ns();
    if let Err(e) = rig.start(start) {
        return (st, Err(LoopError::Hw(e)));
    }
    let end = if s.duration_ns == 0 {
        u64::MAX
    } else {
        start.saturating_add(s.duration_ns)
    };
    let mut next = start;
    let mut next_sync = start.saturating_add(if s.sync_every_ns == 0 {
        u64::MAX
    } else {
        s.sync_every_ns
    });
    let mut prev_loop_ns = 0u32;
    let mut cycle: u32 = 0;
    loop {
        next += s.period_ns;
        loop {
            if stop.load(Ordering::Relaxed) {
                st.lost = log.lost();
                return (st, Ok(()));
            }
            match rtlat::rt::clock_nanosleep_abs(libc::CLOCK_MONOTONIC, &ts_of(next)) {
                0 => break,
                libc::EINTR => continue,
                e => return (st, Err(LoopError::Sleep(e))),
            }
        }
        let woke = rt_utils::sys::now_ns();
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let latency = woke.saturating_sub(next);
        let mut flags = 0;
        if latency >= s.period_ns {
            // Skip the periods already over.
            let missed = latency / s.period_ns;
            st.overruns += missed;
            next += missed * s.period_ns;
            flags |= FLAG_OVERRUN;
        }
        let step = match rig.cycle(woke) {
            Ok(step) => step,
            Err(e) => {
                st.lost = log.lost();
                return (st, Err(LoopError::Hw(e)));
            }
        };
        crate::linux::panic_safe::test_panic_point(cycle);
        let computed = rt_utils::sys::now_ns();
        if step.drive {
            flags |= FLAG_DRIVEN;
        }
        let (state, fault) = match step.state {
            State::Fault(f) => (step.state.code(), f.code()),
            s => (s.code(), 0),
        };
        let rec = Record {
            cycle,
            state,
            fault,
            flags,
            time_ns: woke,
            setpoint: step.setpoint,
            position: step.position,
            output: if step.drive { step.command } else { 0.0 },
            latency_ns: latency.min(u64::from(u32::MAX)) as u32,
            compute_ns: (computed - woke).min(u64::from(u32::MAX)) as u32,
            prev_loop_ns,
            lost: log.lost(),
            overruns: st.overruns.min(u64::from(u32::MAX)) as u32,
        };
        log.post(cycle, &rec.encode());
        if woke >= next_sync {
            log.sync();
            next_sync = woke.saturating_add(s.sync_every_ns);
        }
        let done = rt_utils::sys::now_ns();
        let loop_ns = done - woke;
        prev_loop_ns = loop_ns.min(u64::from(u32::MAX)) as u32;
        st.cycles += 1;
        st.latency_min_ns = st.latency_min_ns.min(latency);
        st.latency_max_ns = st.latency_max_ns.max(latency);
        st.latency_sum_ns += latency;
        st.compute_max_ns = st.compute_max_ns.max(computed - woke);
        st.loop_max_ns = st.loop_max_ns.max(loop_ns);
        st.loop_sum_ns += loop_ns;
        cycle = cycle.wrapping_add(1);
        if matches!(step.state, State::Fault(_))
            || (s.loops != 0 && st.cycles >= s.loops)
            || woke >= end
        {
            break;
        }
    }
    st.lost = log.lost();
    (st, Ok(()))
}

/// Opens the log: a regular file is created or truncated; a FIFO, tty or
/// other character device is opened for writing; `-` is stdout.
pub fn open_target(path: &str) -> Result<Target, String> {
    if path == "-" {
        let fd = std::io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| format!("cannot use stdout for the log: {e}"))?;
        let file = File::from(fd);
        let seekable = file.metadata().is_ok_and(|m| m.file_type().is_file());
        return Ok(Target { file, seekable });
    }
    let stream = std::fs::metadata(path).is_ok_and(|m| {
        let t = m.file_type();
        t.is_fifo() || t.is_char_device() || t.is_socket()
    });
    let file = if stream {
        OpenOptions::new().write(true).open(path)
    } else {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
    }
    .map_err(|e| format!("cannot open log '{path}': {e}"))?;
    Ok(Target {
        file,
        seekable: !stream,
    })
}

/// Everything after the devices are open: the log, the RT set-up, the
/// loop, shutdown. Returns the exit code.
fn run_rig<R: Rig>(rig: &mut R, o: &RunOptions) -> i32 {
    let period_ns = u64::from(o.interval_us) * 1000;
    let settings = LoopSettings {
        period_ns,
        loops: o.loops,
        duration_ns: o.duration_s.saturating_mul(1_000_000_000),
        sync_every_ns: o.sync_every_ms.saturating_mul(1_000_000),
    };
    let header = |start_ns| Header {
        via: o.via,
        period_ns,
        start_ns,
        kp: o.pid.kp,
        ki: o.pid.ki,
        kd: o.pid.kd,
        limit: o.pid.limit,
    };
    let target = match &o.log {
        None => None,
        Some(path) => match open_target(path) {
            Ok(mut t) => {
                if let Err(e) = t.file.write_all(&header(rt_utils::sys::now_ns()).encode()) {
                    eprintln!("servo: cannot write the log header to '{path}': {e}");
                    return EXIT_ERROR;
                }
                Some(t)
            }
            Err(e) => {
                eprintln!("servo: {e}");
                return EXIT_ERROR;
            }
        },
    };
    if let Err(e) = rtlat::rt::install_stop_handler() {
        eprintln!("servo: cannot install the signal handler: {e}");
        return EXIT_ERROR;
    }
    let stop = &rtlat::rt::STOP;
    // The logger thread, FlexSC's syscall thread and io_uring's polling
    // thread are created before this thread becomes real-time: they keep
    // SCHED_OTHER and every CPU.
    let (stats, result, outcome) = match (o.via, target) {
        (_, None) => {
            let (s, r) = rt_section(o, || run_loop(rig, &mut NoLog, &settings, stop));
            (s, r, Outcome::default())
        }
        (LogVia::Direct, Some(t)) => {
            let mut log = DirectLog::new(t);
            let (s, r) = rt_section(o, || run_loop(rig, &mut log, &settings, stop));
            (s, r, log.finish())
        }
        (LogVia::Thread, Some(t)) => {
            let mut queue: Box<Queue> = Box::default();
            let (producer, consumer) = queue.split();
            let sync = AtomicBool::new(false);
            let done = AtomicBool::new(false);
            std::thread::scope(|scope| {
                let logger = std::thread::Builder::new()
                    .name("servo-log".into())
                    .spawn_scoped(scope, || logger_thread(consumer, &t, &sync, &done));
                let logger = match logger {
                    Ok(h) => h,
                    Err(e) => {
                        let o = Outcome {
                            error: Some(format!("cannot start the logger thread: {e}")),
                            ..Outcome::default()
                        };
                        return (LoopStats::default(), Ok(()), o);
                    }
                };
                let mut log = ThreadLog::new(producer, &sync);
                let (s, r) = rt_section(o, || run_loop(rig, &mut log, &settings, stop));
                done.store(true, Ordering::Release);
                let mut out = logger.join().unwrap_or_else(|_| Outcome {
                    error: Some("the logger thread panicked".into()),
                    ..Outcome::default()
                });
                out.lost += u64::from(log.lost());
                (s, r, out)
            })
        }
        (LogVia::IoUring | LogVia::IoUringSqpoll, Some(t)) => {
            let idle = (o.via == LogVia::IoUringSqpoll).then(|| o.poll_us.div_ceil(1000).max(1));
            let mut log = match UringLog::new(t, idle) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("servo: --log-via=io_uring: cannot set up an io_uring: {e}");
                    return EXIT_ERROR;
                }
            };
            let (s, r) = rt_section(o, || run_loop(rig, &mut log, &settings, stop));
            (s, r, log.finish())
        }
        (LogVia::FlexSc, Some(t)) => {
            let mut log = match FlexScLog::new(t, o.poll_us) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("servo: {e}");
                    return EXIT_ERROR;
                }
            };
            let (s, r) = rt_section(o, || run_loop(rig, &mut log, &settings, stop));
            (s, r, log.finish())
        }
    };
    // Whatever happened: the outputs go safe.
    let safe = rig.safe();
    let state = rig.state();
    let mut code = EXIT_OK;
    let mut report = |msg: String| {
        eprintln!("servo: {msg}");
        code = EXIT_ERROR;
    };
    if let Err(e) = result {
        report(e);
    }
    if let Err(e) = safe {
        report(format!("cannot drive the outputs safe: {e}"));
    }
    if let Some(e) = &outcome.error {
        report(e.clone());
    }
    if let State::Fault(f) = state {
        eprintln!("servo: fault: {}", f.describe());
        if code == EXIT_OK {
            code = EXIT_FAULT;
        }
    }
    if !o.quiet {
        let text = summary(&stats, &outcome, state, o);
        // With the log on stdout, the summary goes to stderr.
        if o.log.as_deref() == Some("-") {
            eprint!("{text}");
        } else {
            print!("{text}");
        }
    }
    code
}

/// Makes this thread real-time for the loop, then SCHED_OTHER again; the
/// loop's errors as text.
fn rt_section<E: fmt::Display>(
    o: &RunOptions,
    body: impl FnOnce() -> (LoopStats, Result<(), LoopError<E>>),
) -> (LoopStats, Result<(), String>) {
    if let Err(e) = rt_setup(o) {
        return (LoopStats::default(), Err(e));
    }
    rtlat::measure::prefault_stack();
    let (stats, r) = body();
    let _ = rt_utils::sched::set_scheduler(libc::SCHED_OTHER, 0);
    let r = r.map_err(|e| match e {
        LoopError::Hw(e) => e.to_string(),
        LoopError::Sleep(e) => format!("clock_nanosleep failed: {}", rtlat::rt::strerror(e)),
    });
    (stats, r)
}

fn rt_setup(o: &RunOptions) -> Result<(), String> {
    if !o.no_mlock {
        rt_utils::sched::mlockall().map_err(|e| {
            format!("mlockall failed: {e} (run as root, raise RLIMIT_MEMLOCK, or pass --no-mlock)")
        })?;
    }
    if let Some(cpu) = o.affinity {
        rt_utils::affinity::pin_to(cpu).map_err(|e| format!("cannot pin to CPU {cpu}: {e}"))?;
    }
    if o.priority > 0 {
        rtlat::rt::set_scheduler(rtlat::options::Policy::Fifo, o.priority).map_err(|e| {
            format!(
                "cannot set SCHED_FIFO priority {}: {e}{}",
                o.priority,
                if e.raw_os_error() == Some(libc::EPERM) {
                    " (run as root or with CAP_SYS_NICE)"
                } else {
                    ""
                }
            )
        })?;
    }
    Ok(())
}

fn summary(st: &LoopStats, out: &Outcome, state: State, o: &RunOptions) -> String {
    let avg = |sum: u64| sum.checked_div(st.cycles).unwrap_or(0);
    let fault = match state {
        State::Fault(f) => f.describe(),
        _ => "none",
    };
    let mut s = String::new();
    let mut kv = |k: &str, v: String| s.push_str(&format!("{k}: {v}\n"));
    kv("cycles", st.cycles.to_string());
    kv("interval_us", o.interval_us.to_string());
    kv("overruns", st.overruns.to_string());
    kv(
        "latency_ns",
        format!(
            "min {} avg {} max {}",
            if st.cycles == 0 { 0 } else { st.latency_min_ns },
            avg(st.latency_sum_ns),
            st.latency_max_ns
        ),
    );
    kv("compute_max_ns", st.compute_max_ns.to_string());
    kv(
        "loop_ns",
        format!("avg {} max {}", avg(st.loop_sum_ns), st.loop_max_ns),
    );
    kv(
        "log_via",
        if o.log.is_some() {
            o.via.name()
        } else {
            "none"
        }
        .to_string(),
    );
    kv("records_written", out.written.to_string());
    kv("records_lost", out.lost.to_string());
    kv("state", state.name().to_string());
    kv("fault", fault.to_string());
    s
}

/// `servo run`.
pub fn run(o: &RunOptions) -> i32 {
    if let Err(e) = crate::linux::panic_safe::read_test_switch() {
        eprintln!("servo: {e}");
        return EXIT_USAGE;
    }
    let cfg = match o.controller_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("servo: {e}");
            return EXIT_USAGE;
        }
    };
    let controller = match Controller::new(cfg) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("servo: bad controller settings: {e:?}");
            return EXIT_USAGE;
        }
    };
    match &o.backend {
        Backend::Sim { params } => {
            let text = match params {
                None => plant::DEFAULT_PARAMS.to_string(),
                Some(p) => match std::fs::read_to_string(p) {
                    Ok(t) => t,
                    Err(e) => {
                        eprintln!("servo: cannot read plant parameters '{p}': {e}");
                        return EXIT_ERROR;
                    }
                },
            };
            let params = match plant::Params::parse(&text) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("servo: plant parameters: {e}");
                    return EXIT_ERROR;
                }
            };
            let plant = SimPlant::new(params);
            let mut rig = SimRig::new(&plant, controller);
            run_rig(&mut rig, o)
        }
        Backend::Gpio {
            chip,
            lines,
            magnitude,
        } => match open_gpio(chip, lines, magnitude) {
            Ok(dev) => {
                let banks = &dev.banks;
                let bank_of = |l: &crate::linux::gpio::Line| {
                    banks
                        .iter()
                        .find(|b| b.chip() == l.chip)
                        .expect("a bank per output chip")
                };
                // A panic from here on (any thread) drives the outputs
                // safe: the bank with motor-enable first.
                let mut targets: Vec<_> = banks.iter().map(OutputBank::safe_target).collect();
                if let Some(i) = banks.iter().position(|b| b.chip() == dev.found[0].chip) {
                    targets.swap(0, i);
                }
                let armed = match crate::linux::panic_safe::arm(
                    &targets,
                    dev.pwm.as_ref().map(SysfsPwm::duty_fd),
                ) {
                    Ok(a) => a,
                    Err(e) => {
                        eprintln!("servo: {e}");
                        return EXIT_ERROR;
                    }
                };
                let magn = match dev.pwm {
                    Some(p) => Magn::Pwm(p),
                    None => {
                        let duty: Vec<_> = (0..8).map(|i| dev.found[2 + i].clone()).collect();
                        let offsets = core::array::from_fn(|i| duty[i].offset);
                        Magn::Dac(bank_of(&duty[0]).dac(&offsets))
                    }
                };
                let mut servo = Servo {
                    drive: MotorDrive::new(
                        bank_of(&dev.found[0]).pin(dev.found[0].offset),
                        bank_of(&dev.found[1]).pin(dev.found[1].offset),
                        magn,
                    ),
                    encoder: dev.encoder,
                    home: dev.home,
                    controller,
                };
                let code = run_rig(&mut servo, o);
                // Disarmed before the requests and the PWM are closed.
                drop(armed);
                code
            }
            Err(e) => {
                eprintln!("servo: {e}");
                EXIT_ERROR
            }
        },
    }
}

/// The GPIO (and PWM) devices of a run.
struct Devices {
    /// Found lines in `ROLES` order (duty lines only without a PWM).
    found: Vec<crate::linux::gpio::Line>,
    banks: Vec<OutputBank>,
    pwm: Option<SysfsPwm>,
    encoder: EdgeEncoder,
    home: EdgeInput,
}

fn open_gpio(
    chip: &str,
    specs: &[Option<LineSpec>],
    magnitude: &Magnitude,
) -> Result<Devices, String> {
    let pwm = matches!(magnitude, Magnitude::Pwm { .. });
    let mut found = Vec::new();
    for (i, role) in ROLES.iter().enumerate() {
        let is_duty = (2..10).contains(&i);
        let spec = specs[i].clone().unwrap_or_else(|| LineSpec {
            chip: None,
            line: crate::linux::gpio::LineRef::Name(role.to_string()),
        });
        if is_duty && pwm {
            // Not used: keep the index order with a placeholder.
            found.push(crate::linux::gpio::Line {
                chip: Default::default(),
                offset: u32::MAX,
            });
            continue;
        }
        found.push(find_line(&spec, chip).map_err(|e| format!("{role}: {e}"))?);
    }
    // Outputs: one request per chip.
    let outputs: Vec<&crate::linux::gpio::Line> = found[..plant::lines::OUTPUTS]
        .iter()
        .filter(|l| l.offset != u32::MAX)
        .collect();
    let mut chips: Vec<&std::path::Path> = outputs.iter().map(|l| l.chip.as_path()).collect();
    chips.sort();
    chips.dedup();
    if !pwm {
        let duty_chip = &found[2].chip;
        if found[2..10].iter().any(|l| &l.chip != duty_chip) {
            return Err("the 8 duty lines must be on one GPIO chip (set together)".into());
        }
    }
    let mut banks = Vec::new();
    for c in chips {
        let offsets: Vec<u32> = outputs
            .iter()
            .filter(|l| l.chip == c)
            .map(|l| l.offset)
            .collect();
        banks.push(OutputBank::request(c, &offsets)?);
    }
    let (a, b, h) = (&found[10], &found[11], &found[12]);
    if a.chip != b.chip {
        return Err(
            "encoder-a and encoder-b must be on one GPIO chip (one request orders their events)"
                .into(),
        );
    }
    let encoder = EdgeEncoder::request(&a.chip, a.offset, b.offset)?;
    let home = EdgeInput::request(&h.chip, h.offset)?;
    let pwm = match magnitude {
        Magnitude::Pwm {
            chip,
            channel,
            period_ns,
        } => Some(SysfsPwm::open(*chip, *channel, *period_ns)?),
        Magnitude::GpioDac => None,
    };
    Ok(Devices {
        found,
        banks,
        pwm,
        encoder,
        home,
    })
}
