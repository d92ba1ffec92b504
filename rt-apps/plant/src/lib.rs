//! The simulated plant of the rtflex control app: a DC motor with a
//! quadrature encoder and a home switch.
//!
//! This is the one motor model of the project: `plant-sim` runs it in the
//! guest behind a gpio-sim chip, and the `servo` crate's closed-loop host
//! tests run it directly. The library is `no_std` without the `std` feature,
//! allocation-free, and uses `f32` only.
//!
//! The model (quasi-static electrics, no winding inductance):
//!
//! ```text
//! driven:   i = (V - k_e * w) / R
//! coasting: i = 0                     (driver off, windings open)
//! J * dw/dt = k_t * i - b * w - T_c * sign(w)    (T_c also holds a stopped shaft)
//! ```
//!
//! integrated with implicit (backward) Euler steps of at most
//! [`MAX_SUBSTEP_S`], which is stable for any parameters. The position is
//! kept as whole encoder counts plus a fraction, so it never loses
//! resolution far from 0.
//!
//! ```
//! let params = plant::Params::parse(plant::DEFAULT_PARAMS).unwrap();
//! let mut motor = plant::Motor::new(params);
//! for _ in 0..1000 {
//!     motor.step(0.001, plant::Drive::from_lines(true, true, 255, params.supply_volts));
//! }
//! assert!(motor.position_counts() > params.start_counts);
//! let (_a, _b) = plant::encoder_ab(motor.position_counts());
//! ```
#![cfg_attr(not(feature = "std"), no_std)]

mod motor;
mod params;
#[cfg(feature = "sim")]
pub mod sim;

pub use motor::{encoder_ab, encoder_edge, Channel, Drive, Motor, State, DUTY_MAX, MAX_SUBSTEP_S};
pub use params::{ParamError, ParamErrorKind, Params, DEFAULT_PARAMS, PARAM_NAMES};

/// The gpio-sim chip and its line names (the contract between `servo` and
/// `plant-sim`, `/tmp/rtflex-servo-contract.md`): the app finds its lines by
/// these names.
pub mod lines {
    /// The gpio-sim device name in configfs and the label of its one bank.
    pub const CHIP_LABEL: &str = "rtflex-plant";
    /// Motor driver enable (controller output, high = driven, low = coast).
    pub const MOTOR_ENABLE: &str = "motor-enable";
    /// Motor direction (controller output, high = positive direction).
    pub const MOTOR_DIR: &str = "motor-dir";
    /// The 8-bit duty "DAC", LSB first (controller outputs).
    pub const MOTOR_DUTY: [&str; 8] = [
        "motor-duty0",
        "motor-duty1",
        "motor-duty2",
        "motor-duty3",
        "motor-duty4",
        "motor-duty5",
        "motor-duty6",
        "motor-duty7",
    ];
    /// Encoder channel A (plant output; leads B in the positive direction).
    pub const ENCODER_A: &str = "encoder-a";
    /// Encoder channel B (plant output).
    pub const ENCODER_B: &str = "encoder-b";
    /// Home switch (plant output, high inside the home window).
    pub const HOME: &str = "home";
    /// Every line of the bank in offset order (offset = index).
    pub const ALL: [&str; 13] = [
        MOTOR_ENABLE,
        MOTOR_DIR,
        MOTOR_DUTY[0],
        MOTOR_DUTY[1],
        MOTOR_DUTY[2],
        MOTOR_DUTY[3],
        MOTOR_DUTY[4],
        MOTOR_DUTY[5],
        MOTOR_DUTY[6],
        MOTOR_DUTY[7],
        ENCODER_A,
        ENCODER_B,
        HOME,
    ];
    /// Number of controller outputs at the start of [`ALL`].
    pub const OUTPUTS: usize = 10;
}
