//! The controller's state machine: idle -> homing -> run -> fault.
//!
//! * **Idle**: outputs safe, nothing moves.
//! * **Homing**: the motor turns at a fixed duty towards the home switch;
//!   the switch window is crossed once, and the middle of the window
//!   becomes position 0 (a switch whose window the shaft starts in is left
//!   the other way first). Too slow: fault `HomingTimeout`.
//! * **Run**: the setpoint profile starts from where homing stopped; the
//!   PID follows it.
//! * **Fault** (latched): outputs safe. `EncoderLoss`: driven at or above
//!   the loss threshold with no count for longer than the encoder timeout;
//!   `Saturated`: the PID output beyond its limit for longer than the
//!   saturation time; `HomingTimeout`; `EncoderError`: the position is no
//!   longer known (a missed edge); `Hardware`: an output or input failed.
//!
//! [`Controller`] is the logic alone (numbers in, a command out); [`Servo`]
//! puts it between embedded-hal pins.

use crate::drive::{DriveError, MotorDrive};
use crate::math::abs;
use crate::pid::{Pid, PidConfig};
use crate::profile::{Move, Profile, ProfileError, Shape, MAX_MOVES};
use crate::quadrature::{PositionSensor, SensorError};
use embedded_hal::digital::{InputPin, OutputPin};
use embedded_hal::pwm::SetDutyCycle;
use heapless::Vec;

/// Why the controller stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Fault {
    EncoderLoss = 1,
    Saturated = 2,
    HomingTimeout = 3,
    EncoderError = 4,
    Hardware = 5,
}

impl Fault {
    /// The code in telemetry records.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The fault of a telemetry code (0 = none).
    pub fn from_code(code: u8) -> Option<Fault> {
        Some(match code {
            1 => Fault::EncoderLoss,
            2 => Fault::Saturated,
            3 => Fault::HomingTimeout,
            4 => Fault::EncoderError,
            5 => Fault::Hardware,
            _ => return None,
        })
    }

    /// Words for people.
    pub fn describe(self) -> &'static str {
        match self {
            Fault::EncoderLoss => "encoder loss (driven, but no encoder counts)",
            Fault::Saturated => "output saturated too long",
            Fault::HomingTimeout => "homing timeout (home switch not found)",
            Fault::EncoderError => "encoder error (missed edges: position unknown)",
            Fault::Hardware => "hardware error (an output or input failed)",
        }
    }
}

/// The controller's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Idle,
    Homing,
    Run,
    Fault(Fault),
}

impl State {
    /// The state's code in telemetry records (fault: 3; its reason is
    /// recorded apart).
    pub fn code(self) -> u8 {
        match self {
            State::Idle => 0,
            State::Homing => 1,
            State::Run => 2,
            State::Fault(_) => 3,
        }
    }

    /// The state of a record's codes.
    pub fn from_codes(state: u8, fault: u8) -> Option<State> {
        Some(match state {
            0 => State::Idle,
            1 => State::Homing,
            2 => State::Run,
            3 => State::Fault(Fault::from_code(fault)?),
            _ => return None,
        })
    }

    /// Name for people and CSV.
    pub fn name(self) -> &'static str {
        match self {
            State::Idle => "idle",
            State::Homing => "homing",
            State::Run => "run",
            State::Fault(_) => "fault",
        }
    }
}

/// Homing parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HomingConfig {
    /// Signed duty while searching (its sign is the search direction).
    pub duty: f32,
    /// Give up after this long (ns).
    pub timeout_ns: u64,
}

/// Everything the controller is told once.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub pid: PidConfig,
    /// `None`: no homing; the position at start is 0.
    pub homing: Option<HomingConfig>,
    pub moves: Vec<Move, MAX_MOVES>,
    pub shape: Shape,
    /// Saturated longer than this (ns): fault.
    pub saturation_timeout_ns: u64,
    /// Driven at `|command| >= loss_threshold` with no count longer than
    /// this (ns): fault.
    pub encoder_timeout_ns: u64,
    pub loss_threshold: f32,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            pid: PidConfig::default(),
            homing: Some(HomingConfig {
                duty: -0.3,
                timeout_ns: 10_000_000_000,
            }),
            moves: Vec::new(),
            shape: Shape::Trapezoid {
                max_speed: 300.0,
                accel: 3000.0,
            },
            saturation_timeout_ns: 1_000_000_000,
            encoder_timeout_ns: 200_000_000,
            loss_threshold: 0.2,
        }
    }
}

/// A configuration that cannot work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    Pid(crate::pid::PidConfigError),
    Profile(ProfileError),
    /// Homing duty 0, beyond the PID limit or not finite, or a zero timeout.
    Homing,
    /// A zero fault timeout or a loss threshold outside (0, 1].
    Fault,
}

impl Config {
    /// Checks everything [`Controller::new`] relies on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.pid.validate().map_err(ConfigError::Pid)?;
        Profile::new(0.0, &self.moves, self.shape).map_err(ConfigError::Profile)?;
        if let Some(h) = self.homing {
            if !h.duty.is_finite()
                || h.duty == 0.0
                || abs(h.duty) > self.pid.limit
                || h.timeout_ns == 0
            {
                return Err(ConfigError::Homing);
            }
        }
        if self.saturation_timeout_ns == 0
            || self.encoder_timeout_ns == 0
            || !(self.loss_threshold > 0.0 && self.loss_threshold <= 1.0)
        {
            return Err(ConfigError::Fault);
        }
        Ok(())
    }
}

/// Where homing is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HomingPhase {
    /// Started inside the window: leave it against the search direction.
    Leave,
    /// Looking for the window.
    Search,
    /// Inside the window since this (raw) count; the last count seen inside.
    Inside { entered: i32, last_inside: i32 },
}

/// What one cycle gives to the outputs and to telemetry.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Step {
    pub state: State,
    /// Setpoint (counts, homed coordinates); the position while not running.
    pub setpoint: f32,
    /// Position (counts, homed coordinates).
    pub position: i32,
    /// The command: signed duty in [-1, 1]; 0 while not driving.
    pub command: f32,
    /// Whether the outputs are to be driven (false = safe state).
    pub drive: bool,
}

/// The controller's logic.
#[derive(Clone, Debug)]
pub struct Controller {
    cfg: Config,
    pid: Pid,
    state: State,
    /// Raw count that is position 0.
    offset: i32,
    homing: HomingPhase,
    phase_start_ns: u64,
    profile: Option<Profile>,
    last_ns: Option<u64>,
    last_raw: Option<i32>,
    last_count_change_ns: u64,
    saturated_since: Option<u64>,
    last_command: f32,
}

impl Controller {
    /// A controller in Idle. The configuration must pass
    /// [`Config::validate`].
    pub fn new(cfg: Config) -> Result<Controller, ConfigError> {
        cfg.validate()?;
        Ok(Controller {
            pid: Pid::new(cfg.pid),
            cfg,
            state: State::Idle,
            offset: 0,
            homing: HomingPhase::Search,
            phase_start_ns: 0,
            profile: None,
            last_ns: None,
            last_raw: None,
            last_count_change_ns: 0,
            saturated_since: None,
            last_command: 0.0,
        })
    }

    /// The state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The raw count that is position 0 (after homing).
    pub fn offset(&self) -> i32 {
        self.offset
    }

    /// The profile's end is reached (Run only).
    pub fn profile_done(&self, now_ns: u64) -> bool {
        self.state == State::Run
            && self
                .profile
                .as_ref()
                .is_some_and(|p| p.at(now_ns.saturating_sub(self.phase_start_ns)).done)
    }

    /// Leaves Idle: homing, or Run at once without homing (raw position =
    /// 0). Does nothing in other states.
    pub fn start(&mut self, now_ns: u64, raw: i32, home: bool) {
        if self.state != State::Idle {
            return;
        }
        self.last_count_change_ns = now_ns;
        self.last_raw = Some(raw);
        match self.cfg.homing {
            Some(_) => {
                self.state = State::Homing;
                self.phase_start_ns = now_ns;
                self.homing = if home {
                    HomingPhase::Leave
                } else {
                    HomingPhase::Search
                };
            }
            None => {
                self.offset = raw;
                self.enter_run(now_ns, raw);
            }
        }
    }

    /// Forces the fault state (e.g. an output failed).
    pub fn fault(&mut self, fault: Fault) {
        if !matches!(self.state, State::Fault(_)) {
            self.state = State::Fault(fault);
        }
    }

    fn enter_run(&mut self, now_ns: u64, raw: i32) {
        let here = (raw - self.offset) as f32;
        // validate() built this profile from 0 already: it cannot fail.
        self.profile = Profile::new(here, &self.cfg.moves, self.cfg.shape).ok();
        self.pid.reset();
        self.saturated_since = None;
        self.phase_start_ns = now_ns;
        self.state = State::Run;
    }

    fn idle_step(&self, raw: i32) -> Step {
        let position = raw.wrapping_sub(self.offset);
        Step {
            state: self.state,
            setpoint: position as f32,
            position,
            command: 0.0,
            drive: false,
        }
    }

    /// One cycle at `now_ns` (monotonic) with the raw position (or why it
    /// is unknown) and the home switch.
    pub fn step(&mut self, now_ns: u64, raw: Result<i32, ()>, home: bool) -> Step {
        let dt = self
            .last_ns
            .map_or(0.0, |t| now_ns.saturating_sub(t) as f32 * 1e-9);
        self.last_ns = Some(now_ns);
        let raw = match raw {
            Ok(r) => r,
            Err(()) => {
                self.fault(Fault::EncoderError);
                return self.idle_step(self.last_raw.unwrap_or(self.offset));
            }
        };
        if self.last_raw != Some(raw) {
            self.last_count_change_ns = now_ns;
            self.last_raw = Some(raw);
        }
        let step = match self.state {
            State::Idle | State::Fault(_) => return self.idle_step(raw),
            State::Homing => self.homing_step(now_ns, raw, home),
            State::Run => self.run_step(now_ns, raw, dt),
        };
        if let State::Fault(_) = self.state {
            return self.idle_step(raw);
        }
        // Encoder loss: driven hard, nothing moves.
        if abs(self.last_command) >= self.cfg.loss_threshold
            && now_ns.saturating_sub(self.last_count_change_ns) > self.cfg.encoder_timeout_ns
        {
            self.fault(Fault::EncoderLoss);
            return self.idle_step(raw);
        }
        if abs(step.command) < self.cfg.loss_threshold {
            // Below the threshold a still motor is no sign of a lost
            // encoder (friction holds it): restart the clock.
            self.last_count_change_ns = now_ns;
        }
        self.last_command = step.command;
        step
    }

    fn homing_step(&mut self, now_ns: u64, raw: i32, home: bool) -> Step {
        let h = self
            .cfg
            .homing
            .expect("homing state without a homing config");
        if now_ns.saturating_sub(self.phase_start_ns) > h.timeout_ns {
            self.fault(Fault::HomingTimeout);
            return self.idle_step(raw);
        }
        let mut duty = h.duty;
        match self.homing {
            HomingPhase::Leave => {
                duty = -h.duty;
                if !home {
                    self.homing = HomingPhase::Search;
                }
            }
            HomingPhase::Search => {
                if home {
                    self.homing = HomingPhase::Inside {
                        entered: raw,
                        last_inside: raw,
                    };
                }
            }
            HomingPhase::Inside {
                entered,
                last_inside,
            } => {
                if home {
                    self.homing = HomingPhase::Inside {
                        entered,
                        last_inside: raw,
                    };
                } else {
                    // The middle of the window, rounded towards where we
                    // entered.
                    let sum = entered as i64 + last_inside as i64;
                    self.offset = sum.div_euclid(2) as i32;
                    self.enter_run(now_ns, raw);
                    return self.run_step(now_ns, raw, 0.0);
                }
            }
        }
        let position = raw.wrapping_sub(self.offset);
        Step {
            state: State::Homing,
            setpoint: position as f32,
            position,
            command: duty,
            drive: true,
        }
    }

    fn run_step(&mut self, now_ns: u64, raw: i32, dt: f32) -> Step {
        let position = raw.wrapping_sub(self.offset);
        let t = now_ns.saturating_sub(self.phase_start_ns);
        let (setpoint, speed) = self.profile.as_ref().map_or((position as f32, 0.0), |p| {
            let s = p.at(t);
            (s.position, s.velocity)
        });
        let out = self.pid.update(setpoint, speed, position, now_ns, dt);
        if out.saturated {
            let since = *self.saturated_since.get_or_insert(now_ns);
            if now_ns - since > self.cfg.saturation_timeout_ns {
                self.fault(Fault::Saturated);
            }
        } else {
            self.saturated_since = None;
        }
        Step {
            state: self.state,
            setpoint,
            position,
            command: out.output,
            drive: true,
        }
    }
}

/// An error of the servo's hardware.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HwError<E> {
    Drive(DriveError<E>),
    Encoder(E),
    Home(E),
}

/// The controller between its pins: a sign-magnitude motor drive, a
/// position sensor and a home switch.
#[derive(Debug)]
pub struct Servo<EN, DIR, PWM, ENC, HOME> {
    pub drive: MotorDrive<EN, DIR, PWM>,
    pub encoder: ENC,
    pub home: HOME,
    pub controller: Controller,
}

impl<E, EN, DIR, PWM, ENC, HOME> Servo<EN, DIR, PWM, ENC, HOME>
where
    EN: OutputPin<Error = E>,
    DIR: OutputPin<Error = E>,
    PWM: SetDutyCycle<Error = E>,
    ENC: PositionSensor<Error = E>,
    HOME: InputPin<Error = E>,
{
    /// Puts the outputs into the safe state and starts the controller
    /// (homing or run).
    pub fn start(&mut self, now_ns: u64) -> Result<(), HwError<E>> {
        self.drive.safe().map_err(HwError::Drive)?;
        let raw = match self.encoder.position() {
            Ok(r) => r,
            Err(SensorError::Hw(e)) => return Err(HwError::Encoder(e)),
            Err(SensorError::MissedEdge) => {
                self.controller.fault(Fault::EncoderError);
                return Ok(());
            }
        };
        let home = self.home.is_high().map_err(HwError::Home)?;
        self.controller.start(now_ns, raw, home);
        Ok(())
    }

    /// One control cycle: read, compute, write. On a fault (the
    /// controller's or the hardware's) the outputs are made safe before
    /// returning; a hardware error also puts the controller into
    /// `Fault(Hardware)`.
    pub fn cycle(&mut self, now_ns: u64) -> Result<Step, HwError<E>> {
        let r = self.cycle_inner(now_ns);
        if r.is_err() {
            self.controller.fault(Fault::Hardware);
        }
        if r.is_err() || matches!(self.controller.state(), State::Fault(_)) {
            // Always tried; the first error is the one reported.
            let safe = self.drive.safe();
            let step = r?;
            safe.map_err(HwError::Drive)?;
            return Ok(step);
        }
        r
    }

    fn cycle_inner(&mut self, now_ns: u64) -> Result<Step, HwError<E>> {
        let raw = match self.encoder.position() {
            Ok(r) => Ok(r),
            Err(SensorError::MissedEdge) => Err(()),
            Err(SensorError::Hw(e)) => return Err(HwError::Encoder(e)),
        };
        let home = self.home.is_high().map_err(HwError::Home)?;
        let step = self.controller.step(now_ns, raw, home);
        if step.drive {
            self.drive.apply(step.command).map_err(HwError::Drive)?;
        } else if self.drive.state().is_none_or(|s| s.enable || s.duty != 0) {
            self.drive.safe().map_err(HwError::Drive)?;
        }
        Ok(step)
    }

    /// The safe state (enable low, duty 0, dir low), e.g. at exit.
    pub fn safe(&mut self) -> Result<(), DriveError<E>> {
        self.drive.safe()
    }
}

impl<E: core::fmt::Display> core::fmt::Display for HwError<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            HwError::Drive(d) => {
                let line = match d.line {
                    crate::drive::Line::Enable => "motor-enable",
                    crate::drive::Line::Dir => "motor-dir",
                    crate::drive::Line::Duty => "motor duty",
                };
                write!(f, "setting {line} failed: {}", d.error)
            }
            HwError::Encoder(e) => write!(f, "reading the encoder failed: {e}"),
            HwError::Home(e) => write!(f, "reading the home switch failed: {e}"),
        }
    }
}
