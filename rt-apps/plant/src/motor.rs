//! The DC motor, its encoder and its home switch.

use crate::Params;
use core::f32::consts::PI;

/// Full-scale duty of the motor command (the 8-bit duty lines).
pub const DUTY_MAX: u8 = u8::MAX;

/// The longest internal integration step (s); longer steps are split.
pub const MAX_SUBSTEP_S: f32 = 0.000_5;

/// What the motor driver does to the windings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Drive {
    /// Driver off, windings open: no current, no back-EMF braking.
    Coast,
    /// This voltage across the windings (V, signed; positive turns the
    /// shaft the positive way).
    Volts(f32),
}

impl Drive {
    /// The drive of the sign-magnitude command lines: enable low = coast;
    /// otherwise `(dir ? +1 : -1) * duty / DUTY_MAX * supply_volts`.
    pub fn from_lines(enable: bool, dir: bool, duty: u8, supply_volts: f32) -> Drive {
        if !enable {
            return Drive::Coast;
        }
        let magnitude = f32::from(duty) / f32::from(DUTY_MAX) * supply_volts;
        Drive::Volts(if dir { magnitude } else { -magnitude })
    }
}

/// The motor's state after a step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct State {
    /// Position in encoder counts (rounded towards minus infinity).
    pub position_counts: i32,
    /// Angular speed of the output shaft (rad/s).
    pub speed_rad_s: f32,
    /// Winding current (A); 0 while coasting.
    pub current_amps: f32,
}

/// The encoder levels `(A, B)` at a position in counts: x4 quadrature,
/// A leads B in the positive direction. Counting up from a multiple of 4 the
/// levels go (0,0) -> (1,0) -> (1,1) -> (0,1) -> (0,0).
pub fn encoder_ab(counts: i32) -> (bool, bool) {
    match counts.rem_euclid(4) {
        0 => (false, false),
        1 => (true, false),
        2 => (true, true),
        _ => (false, true),
    }
}

/// One of the two encoder channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// Channel A (leads in the positive direction).
    A,
    /// Channel B.
    B,
}

/// The one line change that moves the encoder from `counts` one count up
/// (`up`) or down: which channel changes and its new level. Walking from
/// one position to another this way changes one line at a time, as a real
/// encoder does, so an x4 decoder counts every step.
pub fn encoder_edge(counts: i32, up: bool) -> (Channel, bool) {
    let next = if up {
        counts.wrapping_add(1)
    } else {
        counts.wrapping_sub(1)
    };
    let (a0, _) = encoder_ab(counts);
    let (a1, b1) = encoder_ab(next);
    if a0 != a1 {
        (Channel::A, a1)
    } else {
        (Channel::B, b1)
    }
}

/// A DC motor with encoder and home switch.
#[derive(Clone, Debug)]
pub struct Motor {
    params: Params,
    /// Whole counts of the position.
    whole: i32,
    /// Fraction of a count, in [0, 1).
    fraction: f32,
    speed: f32,
    current: f32,
}

/// `x` rounded towards minus infinity (core has no `floor` for f32).
fn floor_i32(x: f32) -> i32 {
    // `as` saturates; positions stay far inside i32 for any sane run.
    let n = x as i32;
    if (n as f32) > x {
        n - 1
    } else {
        n
    }
}

/// `|x|` (not `f32::abs`, which core lacks on older compilers).
pub(crate) fn abs(x: f32) -> f32 {
    if x < 0.0 {
        -x
    } else {
        x
    }
}

fn sign(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

impl Motor {
    /// A motor at rest at `params.start_counts`. The parameters should have
    /// passed [`Params::validate`] (as every parsed set has).
    pub fn new(params: Params) -> Motor {
        Motor::at(params, params.start_counts)
    }

    /// A motor at rest at `counts`.
    pub fn at(params: Params, counts: i32) -> Motor {
        Motor {
            params,
            whole: counts,
            fraction: 0.0,
            speed: 0.0,
            current: 0.0,
        }
    }

    /// The parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Advances the model by `dt` seconds with `drive` held constant, and
    /// returns the new state. `dt <= 0` (or NaN) changes nothing.
    pub fn step(&mut self, dt: f32, drive: Drive) -> State {
        let mut left = dt;
        while left > 0.0 {
            let h = if left > MAX_SUBSTEP_S {
                MAX_SUBSTEP_S
            } else {
                left
            };
            self.substep(h, drive);
            left -= h;
        }
        self.state()
    }

    fn substep(&mut self, h: f32, drive: Drive) {
        let p = &self.params;
        // Torque from the drive and the damping it adds (back-EMF current).
        let (drive_torque, electrical_damping, volts) = match drive {
            Drive::Coast => (0.0, 0.0, None),
            Drive::Volts(v) => (
                p.torque_constant * v / p.resistance_ohms,
                p.torque_constant * p.back_emf_constant / p.resistance_ohms,
                Some(v),
            ),
        };
        let damping = electrical_damping + p.viscous_friction;
        let w0 = self.speed;
        let moving = sign(w0);
        let w1 = if moving == 0.0 {
            if abs(drive_torque) <= p.coulomb_friction {
                // Static friction holds the shaft.
                0.0
            } else {
                let s = sign(drive_torque);
                (h * (drive_torque - s * p.coulomb_friction)) / (p.inertia + h * damping)
            }
        } else {
            let w = (p.inertia * w0 + h * (drive_torque - moving * p.coulomb_friction))
                / (p.inertia + h * damping);
            // Friction cannot reverse the motion: it stops within the step,
            // and the next step starts from rest.
            if sign(w) != moving {
                0.0
            } else {
                w
            }
        };
        self.speed = w1;
        self.current = match volts {
            None => 0.0,
            Some(v) => (v - p.back_emf_constant * w1) / p.resistance_ohms,
        };
        let counts_per_rad = p.counts_per_rev as f32 / (2.0 * PI);
        let moved = h * 0.5 * (w0 + w1) * counts_per_rad;
        let position = self.fraction + moved;
        let whole = floor_i32(position);
        self.whole = self.whole.saturating_add(whole);
        self.fraction = position - whole as f32;
        // Rounding can leave exactly 1.0 for a tiny negative position.
        if self.fraction >= 1.0 {
            self.whole = self.whole.saturating_add(1);
            self.fraction = 0.0;
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        State {
            position_counts: self.whole,
            speed_rad_s: self.speed,
            current_amps: self.current,
        }
    }

    /// Position in encoder counts (rounded towards minus infinity).
    pub fn position_counts(&self) -> i32 {
        self.whole
    }

    /// Position in counts with the fraction of a count.
    pub fn position_exact(&self) -> f32 {
        self.whole as f32 + self.fraction
    }

    /// Angular speed of the output shaft (rad/s).
    pub fn speed_rad_s(&self) -> f32 {
        self.speed
    }

    /// Speed in counts per second.
    pub fn speed_counts_per_s(&self) -> f32 {
        self.speed * self.params.counts_per_rev as f32 / (2.0 * PI)
    }

    /// The encoder levels `(A, B)` now ([`encoder_ab`] of the position).
    pub fn encoder_ab(&self) -> (bool, bool) {
        encoder_ab(self.whole)
    }

    /// The home switch now ([`Params::home`] of the position).
    pub fn home(&self) -> bool {
        self.params.home(self.whole)
    }
}
