//! The simulated plant behind embedded-hal pins: the project's one motor
//! model (`plant::Motor`) with the contract's lines (sign-magnitude drive
//! with an 8-bit duty, encoder A/B, home). The closed-loop host tests and
//! `servo --sim-plant` drive it; nothing here models the motor itself.
//!
//! Time moves only in [`SimPlant::advance`]: the motor runs with the
//! command the output pins hold, in steps of at most [`SIM_STEP_S`], and
//! every encoder count it passes is queued as an edge, as the kernel
//! queues a GPIO line's edge events ([`EDGE_FIFO`] deep; an overflow loses
//! edges and [`SimEncoder`] reports it). [`SimPlant::a_pin`] and
//! [`SimPlant::b_pin`] also give the levels as plain `InputPin`s, for a
//! [`crate::quadrature::PolledEncoder`].

use crate::quadrature::{PositionSensor, Quadrature, SensorError};
use core::cell::{Cell, RefCell};
use core::convert::Infallible;
use embedded_hal::digital::{ErrorType, InputPin, OutputPin, PinState};
use embedded_hal::pwm::{ErrorType as PwmErrorType, SetDutyCycle};
use heapless::Deque;
use plant::{Drive, Motor, Params, DUTY_MAX};

/// Edges the plant queues between two reads (the kernel's default event
/// buffer for a line request is 16 per line; this is the same order).
pub const EDGE_FIFO: usize = 64;
/// Longest motor step between two looks at the encoder (s).
pub const SIM_STEP_S: f32 = 50e-6;

/// The motor and the levels of its lines.
#[derive(Debug)]
pub struct SimPlant {
    motor: RefCell<Motor>,
    enable: Cell<bool>,
    dir: Cell<bool>,
    duty: Cell<u8>,
    edges: RefCell<Deque<(bool, bool), EDGE_FIFO>>,
    overflowed: Cell<bool>,
    /// The encoder's levels as the controller sees them.
    levels: Cell<(bool, bool)>,
    /// The encoder cable is cut: the levels stay as they are.
    disconnected: Cell<bool>,
}

impl SimPlant {
    /// The motor at rest at `params.start_counts`, driver off.
    pub fn new(params: Params) -> SimPlant {
        SimPlant::with_motor(Motor::new(params))
    }

    /// A plant around a given motor.
    pub fn with_motor(motor: Motor) -> SimPlant {
        let levels = motor.encoder_ab();
        SimPlant {
            motor: RefCell::new(motor),
            enable: Cell::new(false),
            dir: Cell::new(false),
            duty: Cell::new(0),
            edges: RefCell::new(Deque::new()),
            overflowed: Cell::new(false),
            levels: Cell::new(levels),
            disconnected: Cell::new(false),
        }
    }

    /// The drive the output lines command now.
    pub fn drive(&self) -> Drive {
        let supply = self.motor.borrow().params().supply_volts;
        Drive::from_lines(self.enable.get(), self.dir.get(), self.duty.get(), supply)
    }

    /// The output lines `(enable, dir, duty)`.
    pub fn outputs(&self) -> (bool, bool, u8) {
        (self.enable.get(), self.dir.get(), self.duty.get())
    }

    /// The true position (counts).
    pub fn position(&self) -> i32 {
        self.motor.borrow().position_counts()
    }

    /// The true speed (counts/s).
    pub fn speed(&self) -> f32 {
        self.motor.borrow().speed_counts_per_s()
    }

    /// Cuts (or mends) the encoder cable: while cut, the levels the
    /// controller sees stay where they were and no edges are queued.
    pub fn set_encoder_disconnected(&self, cut: bool) {
        self.disconnected.set(cut);
    }

    /// Runs the motor for `dt` seconds with the present outputs.
    pub fn advance(&self, dt: f32) {
        let drive = self.drive();
        let mut motor = self.motor.borrow_mut();
        let mut left = dt;
        while left > 0.0 {
            let h = if left > SIM_STEP_S { SIM_STEP_S } else { left };
            let before = motor.position_counts();
            motor.step(h, drive);
            let after = motor.position_counts();
            left -= h;
            if self.disconnected.get() {
                continue;
            }
            // Every count passed, in order.
            let mut at = before;
            while at != after {
                at += if after > at { 1 } else { -1 };
                let lv = plant::encoder_ab(at);
                self.levels.set(lv);
                if self.edges.borrow_mut().push_back(lv).is_err() {
                    self.overflowed.set(true);
                }
            }
        }
    }

    /// The home switch.
    pub fn home(&self) -> bool {
        self.motor.borrow().home()
    }

    /// The enable output.
    pub fn enable_pin(&self) -> SimOutput<'_> {
        SimOutput(&self.enable)
    }
    /// The direction output.
    pub fn dir_pin(&self) -> SimOutput<'_> {
        SimOutput(&self.dir)
    }
    /// The 8-bit duty "DAC".
    pub fn dac(&self) -> SimDac<'_> {
        SimDac(&self.duty)
    }
    /// The home switch input.
    pub fn home_pin(&self) -> SimInput<'_> {
        SimInput {
            plant: self,
            line: Input::Home,
        }
    }
    /// Encoder channel A as an input pin.
    pub fn a_pin(&self) -> SimInput<'_> {
        SimInput {
            plant: self,
            line: Input::A,
        }
    }
    /// Encoder channel B as an input pin.
    pub fn b_pin(&self) -> SimInput<'_> {
        SimInput {
            plant: self,
            line: Input::B,
        }
    }
    /// The encoder read from its queued edges.
    pub fn encoder(&self) -> SimEncoder<'_> {
        let (a, b) = self.levels.get();
        SimEncoder {
            plant: self,
            decoder: Quadrature::new(a, b),
            missed: false,
        }
    }
}

/// An output line of the simulated plant.
#[derive(Debug)]
pub struct SimOutput<'a>(&'a Cell<bool>);

impl ErrorType for SimOutput<'_> {
    type Error = Infallible;
}
impl OutputPin for SimOutput<'_> {
    fn set_low(&mut self) -> Result<(), Infallible> {
        self.0.set(false);
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Infallible> {
        self.0.set(true);
        Ok(())
    }
    fn set_state(&mut self, s: PinState) -> Result<(), Infallible> {
        self.0.set(s == PinState::High);
        Ok(())
    }
}

/// The simulated plant's duty lines as a duty cycle (0..=255).
#[derive(Debug)]
pub struct SimDac<'a>(&'a Cell<u8>);

impl PwmErrorType for SimDac<'_> {
    type Error = Infallible;
}
impl SetDutyCycle for SimDac<'_> {
    fn max_duty_cycle(&self) -> u16 {
        u16::from(DUTY_MAX)
    }
    fn set_duty_cycle(&mut self, duty: u16) -> Result<(), Infallible> {
        self.0.set(duty.min(u16::from(DUTY_MAX)) as u8);
        Ok(())
    }
}

#[derive(Clone, Copy, Debug)]
enum Input {
    A,
    B,
    Home,
}

/// An input line of the simulated plant.
#[derive(Debug)]
pub struct SimInput<'a> {
    plant: &'a SimPlant,
    line: Input,
}

impl ErrorType for SimInput<'_> {
    type Error = Infallible;
}
impl InputPin for SimInput<'_> {
    fn is_high(&mut self) -> Result<bool, Infallible> {
        let (a, b) = self.plant.levels.get();
        Ok(match self.line {
            Input::A => a,
            Input::B => b,
            Input::Home => self.plant.home(),
        })
    }
    fn is_low(&mut self) -> Result<bool, Infallible> {
        self.is_high().map(|h| !h)
    }
}

/// The encoder decoded from the plant's queued edges.
#[derive(Debug)]
pub struct SimEncoder<'a> {
    plant: &'a SimPlant,
    decoder: Quadrature,
    missed: bool,
}

impl PositionSensor for SimEncoder<'_> {
    type Error = Infallible;

    fn position(&mut self) -> Result<i32, SensorError<Infallible>> {
        if self.plant.overflowed.get() {
            self.missed = true;
        }
        while let Some((a, b)) = self.plant.edges.borrow_mut().pop_front() {
            if self.decoder.update(a, b).is_err() {
                self.missed = true;
            }
        }
        if self.missed {
            return Err(SensorError::MissedEdge);
        }
        Ok(self.decoder.count())
    }
}
