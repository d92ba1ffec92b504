//! The plant's parameters and their file format.

use core::fmt;

/// The parameter file of the image (`/etc/rtflex/plant.conf`), the plant
/// the host tests use too.
pub const DEFAULT_PARAMS: &str = include_str!("../plant.conf");

/// The plant's parameters (SI units, referred to the output shaft).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Params {
    /// Driver supply (V): full duty applies this voltage.
    pub supply_volts: f32,
    /// Winding resistance (ohm), > 0.
    pub resistance_ohms: f32,
    /// Torque constant (N m / A), > 0.
    pub torque_constant: f32,
    /// Back-EMF constant (V s / rad), > 0.
    pub back_emf_constant: f32,
    /// Inertia (kg m^2), > 0.
    pub inertia: f32,
    /// Viscous friction (N m s / rad), >= 0.
    pub viscous_friction: f32,
    /// Coulomb friction (N m), >= 0; it also holds a stopped shaft.
    pub coulomb_friction: f32,
    /// Encoder counts per revolution (x4), a positive multiple of 4.
    pub counts_per_rev: u32,
    /// The home switch is high while |position| <= this (counts).
    pub home_half_width_counts: u32,
    /// Position at power-up (counts).
    pub start_counts: i32,
}

/// The names of the parameter file, in the order of [`Params`].
pub const PARAM_NAMES: [&str; 10] = [
    "supply_volts",
    "resistance_ohms",
    "torque_constant",
    "back_emf_constant",
    "inertia",
    "viscous_friction",
    "coulomb_friction",
    "counts_per_rev",
    "home_half_width_counts",
    "start_counts",
];

/// What is wrong with a parameter file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamErrorKind {
    /// A line that is not `name = value`.
    Syntax,
    /// A name that is not one of [`PARAM_NAMES`].
    UnknownName,
    /// A name given twice.
    Repeated(&'static str),
    /// A value that is not a number of the parameter's type.
    BadNumber(&'static str),
    /// A value outside the parameter's range.
    OutOfRange(&'static str, &'static str),
    /// A name that never appeared (line 0).
    Missing(&'static str),
}

/// A parameter file error: the line (1-based; 0 when no line is to blame)
/// and what is wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParamError {
    /// 1-based line number, 0 for a missing name or a check of the whole set.
    pub line: usize,
    /// What is wrong.
    pub kind: ParamErrorKind,
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line != 0 {
            write!(f, "line {}: ", self.line)?;
        }
        match self.kind {
            ParamErrorKind::Syntax => f.write_str("expected `name = value`"),
            ParamErrorKind::UnknownName => {
                f.write_str("unknown name (known: ")?;
                for (i, n) in PARAM_NAMES.iter().enumerate() {
                    if i != 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(n)?;
                }
                f.write_str(")")
            }
            ParamErrorKind::Repeated(n) => write!(f, "{n} given twice"),
            ParamErrorKind::BadNumber(n) => write!(f, "{n}: not a valid number"),
            ParamErrorKind::OutOfRange(n, rule) => write!(f, "{n}: must be {rule}"),
            ParamErrorKind::Missing(n) => write!(f, "{n} is missing"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ParamError {}

fn err(line: usize, kind: ParamErrorKind) -> ParamError {
    ParamError { line, kind }
}

impl Params {
    /// Parses a parameter file (see `plant.conf`): `name = value` lines,
    /// `#` comments, every name of [`PARAM_NAMES`] exactly once; then
    /// [`validate`](Params::validate)s the ranges.
    pub fn parse(text: &str) -> Result<Params, ParamError> {
        // Float values and the line each came from; integers separately.
        let mut floats: [Option<(f32, usize)>; 7] = [None; 7];
        let mut counts_per_rev = None;
        let mut home_half_width = None;
        let mut start = None;
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let content = match raw.find('#') {
                Some(at) => &raw[..at],
                None => raw,
            }
            .trim();
            if content.is_empty() {
                continue;
            }
            let (name, value) = content
                .split_once('=')
                .ok_or(err(line, ParamErrorKind::Syntax))?;
            let (name, value) = (name.trim(), value.trim());
            if name.is_empty() || value.is_empty() {
                return Err(err(line, ParamErrorKind::Syntax));
            }
            let slot = PARAM_NAMES
                .iter()
                .position(|n| *n == name)
                .ok_or(err(line, ParamErrorKind::UnknownName))?;
            let known = PARAM_NAMES[slot];
            let bad = err(line, ParamErrorKind::BadNumber(known));
            let repeated = err(line, ParamErrorKind::Repeated(known));
            match slot {
                0..=6 => {
                    let v: f32 = value.parse().map_err(|_| bad)?;
                    if !v.is_finite() {
                        return Err(bad);
                    }
                    if floats[slot].replace((v, line)).is_some() {
                        return Err(repeated);
                    }
                }
                7 => {
                    let v: u32 = value.parse().map_err(|_| bad)?;
                    if counts_per_rev.replace((v, line)).is_some() {
                        return Err(repeated);
                    }
                }
                8 => {
                    let v: u32 = value.parse().map_err(|_| bad)?;
                    if home_half_width.replace((v, line)).is_some() {
                        return Err(repeated);
                    }
                }
                _ => {
                    let v: i32 = value.parse().map_err(|_| bad)?;
                    if start.replace((v, line)).is_some() {
                        return Err(repeated);
                    }
                }
            }
        }
        let missing = |slot: usize| err(0, ParamErrorKind::Missing(PARAM_NAMES[slot]));
        let mut f = [0.0f32; 7];
        for (slot, value) in floats.iter().enumerate() {
            f[slot] = value.ok_or(missing(slot))?.0;
        }
        let params = Params {
            supply_volts: f[0],
            resistance_ohms: f[1],
            torque_constant: f[2],
            back_emf_constant: f[3],
            inertia: f[4],
            viscous_friction: f[5],
            coulomb_friction: f[6],
            counts_per_rev: counts_per_rev.ok_or(missing(7))?.0,
            home_half_width_counts: home_half_width.ok_or(missing(8))?.0,
            start_counts: start.ok_or(missing(9))?.0,
        };
        // Blame the line that gave the value out of range.
        let line_of = |name: &str| {
            let slot = PARAM_NAMES.iter().position(|n| *n == name).unwrap_or(0);
            match slot {
                0..=6 => floats[slot].map_or(0, |v| v.1),
                7 => counts_per_rev.map_or(0, |v| v.1),
                8 => home_half_width.map_or(0, |v| v.1),
                _ => start.map_or(0, |v| v.1),
            }
        };
        params.validate().map_err(|e| match e.kind {
            ParamErrorKind::OutOfRange(name, _) => err(line_of(name), e.kind),
            _ => e,
        })?;
        Ok(params)
    }

    /// Checks the ranges: resistance, constants and inertia > 0, supply and
    /// frictions >= 0 (and finite), counts per revolution a positive
    /// multiple of 4.
    pub fn validate(&self) -> Result<(), ParamError> {
        let out = |name, rule| Err(err(0, ParamErrorKind::OutOfRange(name, rule)));
        let positive = [
            ("resistance_ohms", self.resistance_ohms),
            ("torque_constant", self.torque_constant),
            ("back_emf_constant", self.back_emf_constant),
            ("inertia", self.inertia),
        ];
        let non_negative = [
            ("supply_volts", self.supply_volts),
            ("viscous_friction", self.viscous_friction),
            ("coulomb_friction", self.coulomb_friction),
        ];
        for (name, v) in non_negative {
            if !(v.is_finite() && v >= 0.0) {
                return out(name, ">= 0");
            }
        }
        for (name, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return out(name, "> 0");
            }
        }
        if self.counts_per_rev == 0 || self.counts_per_rev & 3 != 0 {
            return out("counts_per_rev", "a positive multiple of 4");
        }
        Ok(())
    }

    /// The home switch at a position: high while |counts| <= the half width.
    pub fn home(&self, counts: i32) -> bool {
        counts.unsigned_abs() <= self.home_half_width_counts
    }

    /// Steady-state speed (rad/s) under a constant voltage: the drive torque
    /// minus Coulomb friction over the electrical plus viscous damping, 0
    /// when Coulomb friction holds the shaft.
    pub fn steady_state_speed(&self, volts: f32) -> f32 {
        let drive = self.torque_constant * volts / self.resistance_ohms;
        if crate::motor::abs(drive) <= self.coulomb_friction {
            return 0.0;
        }
        let net = if drive > 0.0 {
            drive - self.coulomb_friction
        } else {
            drive + self.coulomb_friction
        };
        net / (self.torque_constant * self.back_emf_constant / self.resistance_ohms
            + self.viscous_friction)
    }

    /// Mechanical time constant while driven (s): inertia over the
    /// electrical plus viscous damping.
    pub fn time_constant_s(&self) -> f32 {
        self.inertia
            / (self.torque_constant * self.back_emf_constant / self.resistance_ohms
                + self.viscous_friction)
    }

    /// Speed in counts per second at full supply, the fastest the encoder
    /// lines ever change (steady state; a start from rest never overshoots
    /// it).
    pub fn max_counts_per_s(&self) -> f32 {
        self.steady_state_speed(self.supply_volts) * self.counts_per_rev as f32
            / (2.0 * core::f32::consts::PI)
    }
}
