//! servo: the rtflex control app, a closed-loop position controller.
//!
//! The core is `no_std` (without the default features), allocation-free,
//! and written against the embedded-hal 1.0 traits only; heapless holds
//! every bounded buffer:
//!
//! * [`pid`]: PID with output limits and anti-windup, D on a windowed
//!   velocity estimate;
//! * [`quadrature`]: x4 quadrature decoding, the [`quadrature::PositionSensor`]
//!   trait and a polled encoder over two `InputPin`s;
//! * [`profile`]: setpoint profiles (steps, trapezoids, dwells);
//! * [`drive`]: the sign-magnitude motor driver (enable and direction
//!   `OutputPin`s, magnitude `SetDutyCycle`), with its safe state;
//! * [`control`]: the state machine idle -> homing -> run -> fault and the
//!   [`control::Servo`] that puts it between the pins;
//! * [`telemetry`]: the binary log format (one fixed-size record per cycle);
//! * [`spi_nor`]: the JEDEC ID of a SPI NOR flash through a `SpiDevice`.
//!
//! With the `linux` feature (default): [`linux`], the Linux backend (GPIO
//! character device v2 lines with edge events, sysfs PWM, spidev through
//! linux-embedded-hal, and the simulated plant in-process), and [`app`],
//! the real-time loop, the telemetry paths and the `servo` command.
#![cfg_attr(not(feature = "std"), no_std)]

pub mod control;
pub mod drive;
pub mod math;
pub mod pid;
pub mod profile;
pub mod quadrature;
pub mod sim;
pub mod spi_nor;
pub mod telemetry;

#[cfg(feature = "linux")]
pub mod app;
#[cfg(feature = "linux")]
pub mod linux;
