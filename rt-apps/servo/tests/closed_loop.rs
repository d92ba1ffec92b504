//! The controller against the project's motor model (`plant`, through
//! `servo::sim`): homing, step and trapezoid responses, reversal, and every
//! fault with the outputs left safe. 1 kHz, as the app runs by default.

use plant::{Params, DEFAULT_PARAMS};
use servo::control::{Config, Controller, Fault, HomingConfig, Servo, State, Step};
use servo::drive::MotorDrive;
use servo::profile::{Move, Shape};
use servo::quadrature::{PolledEncoder, PositionSensor};
use servo::sim::SimPlant;

const PERIOD_NS: u64 = 1_000_000;

fn params() -> Params {
    Params::parse(DEFAULT_PARAMS).expect("the plant's default parameters")
}

fn moves(list: &[(f32, u64)]) -> heapless::Vec<Move, { servo::profile::MAX_MOVES }> {
    list.iter()
        .map(|&(target, dwell_ms)| Move {
            target,
            dwell_ns: dwell_ms * 1_000_000,
        })
        .collect()
}

/// Runs `cycles` control cycles; `each` sees every step (and the plant)
/// after it was applied.
fn run<E: PositionSensor<Error = core::convert::Infallible>>(
    plant: &SimPlant,
    encoder: E,
    cfg: Config,
    cycles: u64,
    mut each: impl FnMut(u64, &Step, &SimPlant),
) -> State {
    let mut servo = Servo {
        drive: MotorDrive::new(plant.enable_pin(), plant.dir_pin(), plant.dac()),
        encoder,
        home: plant.home_pin(),
        controller: Controller::new(cfg).expect("valid configuration"),
    };
    servo.start(0).unwrap();
    for n in 1..=cycles {
        plant.advance(PERIOD_NS as f32 * 1e-9);
        let step = servo.cycle(n * PERIOD_NS).unwrap();
        each(n, &step, plant);
    }
    servo.controller.state()
}

fn assert_safe(plant: &SimPlant) {
    assert_eq!(plant.outputs(), (false, false, 0), "outputs not safe");
}

#[test]
fn homing_finds_the_middle_of_the_home_window() {
    let plant = SimPlant::new(params());
    let mut homed_at = None;
    let state = run(
        &plant,
        plant.encoder(),
        Config::default(),
        3000,
        |n, s, p| {
            if s.state == State::Run && homed_at.is_none() {
                homed_at = Some(n);
                // Homed coordinates are the plant's: the window's middle is 0.
                assert!(
                    (s.position - p.position()).abs() <= 1,
                    "{s:?} vs {}",
                    p.position()
                );
            }
        },
    );
    assert_eq!(state, State::Run);
    // 150 counts at about 0.3 of the no-load speed: well under 3 s.
    assert!(homed_at.is_some(), "never homed");
}

#[test]
fn step_response_reaches_the_setpoint_without_overshoot() {
    let plant = SimPlant::new(params());
    let cfg = Config {
        moves: moves(&[(200.0, 0)]),
        shape: Shape::Step,
        ..Config::default()
    };
    let mut run_start = None;
    let mut max_pos = i32::MIN;
    let mut settled_at = None;
    let mut last = None;
    run(&plant, plant.encoder(), cfg, 6000, |n, s, _| {
        if s.state != State::Run {
            return;
        }
        run_start.get_or_insert(n);
        max_pos = max_pos.max(s.position);
        if (s.position - 200).abs() <= 2 {
            settled_at.get_or_insert(n);
        } else {
            settled_at = None;
        }
        last = Some(*s);
    });
    let (start, settled) = (run_start.unwrap(), settled_at.expect("never settled"));
    let last = last.unwrap();
    // A 200-count step of a motor that makes ~500 counts/s: about 0.6 s.
    assert!(
        settled - start < 1500,
        "settled after {} ms",
        settled - start
    );
    assert!(max_pos <= 200 + 4, "overshoot to {max_pos}");
    assert!((last.position - 200).abs() <= 2, "{last:?}");
    assert_eq!(plant.position(), last.position, "homed = true position");
}

#[test]
fn trapezoid_moves_track_closely_and_reverse() {
    let plant = SimPlant::new(params());
    let cfg = Config {
        moves: moves(&[(300.0, 300), (-200.0, 300), (0.0, 300)]),
        shape: Shape::Trapezoid {
            max_speed: 250.0,
            accel: 1500.0,
        },
        ..Config::default()
    };
    let mut worst = 0.0f32;
    let mut min_pos = i32::MAX;
    let mut max_pos = i32::MIN;
    let mut last = None;
    let state = run(&plant, plant.encoder(), cfg, 12_000, |_, s, _| {
        if s.state == State::Run {
            worst = worst.max((s.setpoint - s.position as f32).abs());
            min_pos = min_pos.min(s.position);
            max_pos = max_pos.max(s.position);
            last = Some(*s);
        }
    });
    assert_eq!(state, State::Run);
    // The acceleration asks about what the motor can give: a dozen counts
    // behind while speeding up, a few counts of overshoot at the ends.
    assert!(worst < 15.0, "following error up to {worst} counts");
    assert!((298..=305).contains(&max_pos), "max {max_pos}");
    assert!((-205..=-198).contains(&min_pos), "min {min_pos}");
    let last = last.unwrap();
    assert_eq!(last.setpoint, 0.0);
    assert!(last.position.abs() <= 2, "{last:?}");
}

#[test]
fn the_embedded_hal_input_pin_encoder_works_too() {
    let plant = SimPlant::new(params());
    let encoder = PolledEncoder::new(plant.a_pin(), plant.b_pin()).unwrap();
    let cfg = Config {
        moves: moves(&[(-120.0, 0)]),
        ..Config::default()
    };
    let mut last = None;
    let state = run(&plant, encoder, cfg, 5000, |_, s, _| last = Some(*s));
    assert_eq!(state, State::Run);
    let last = last.unwrap();
    assert!((last.position + 120).abs() <= 2, "{last:?}");
    assert_eq!(plant.position(), last.position);
}

#[test]
fn a_shaft_starting_in_the_home_window_leaves_it_first() {
    let plant = SimPlant::with_motor(plant::Motor::at(params(), 2));
    let mut saw_homing = false;
    let state = run(
        &plant,
        plant.encoder(),
        Config::default(),
        3000,
        |_, s, p| {
            saw_homing |= s.state == State::Homing;
            if s.state == State::Run {
                assert!((s.position - p.position()).abs() <= 1);
            }
        },
    );
    assert!(saw_homing);
    assert_eq!(state, State::Run);
}

#[test]
fn without_homing_the_start_is_zero() {
    let plant = SimPlant::new(params());
    let cfg = Config {
        homing: None,
        moves: moves(&[(50.0, 0)]),
        ..Config::default()
    };
    let mut last = None;
    run(&plant, plant.encoder(), cfg, 2000, |_, s, _| {
        last = Some(*s)
    });
    let last = last.unwrap();
    assert!((last.position - 50).abs() <= 2);
    // Relative to where it started: 150 + 50.
    assert!((plant.position() - 200).abs() <= 2);
}

#[test]
fn a_cut_encoder_cable_faults_and_leaves_the_outputs_safe() {
    let plant = SimPlant::new(params());
    let cfg = Config {
        moves: moves(&[(400.0, 0)]),
        encoder_timeout_ns: 100_000_000,
        ..Config::default()
    };
    let mut cut_at = None;
    let mut fault_at = None;
    let state = run(&plant, plant.encoder(), cfg, 4000, |n, s, p| {
        if s.state == State::Run && s.position > 50 && cut_at.is_none() {
            p.set_encoder_disconnected(true);
            cut_at = Some(n);
        }
        if matches!(s.state, State::Fault(_)) && fault_at.is_none() {
            fault_at = Some(n);
            assert_safe(p);
            assert_eq!(s.command, 0.0);
        }
    });
    assert_eq!(state, State::Fault(Fault::EncoderLoss));
    let delay = fault_at.unwrap() - cut_at.unwrap();
    // The timeout (100 ms) after the command first reached the threshold.
    assert!(
        (100..=200).contains(&delay),
        "fault {delay} ms after the cut"
    );
    assert_safe(&plant);
}

#[test]
fn saturating_too_long_faults() {
    let plant = SimPlant::new(params());
    let cfg = Config {
        // A big step saturates the output for the whole travel (~1 s).
        moves: moves(&[(600.0, 0)]),
        shape: Shape::Step,
        saturation_timeout_ns: 300_000_000,
        ..Config::default()
    };
    let mut run_at = None;
    let mut fault_at = None;
    let state = run(&plant, plant.encoder(), cfg, 4000, |n, s, _| {
        if s.state == State::Run {
            run_at.get_or_insert(n);
        }
        if matches!(s.state, State::Fault(_)) {
            fault_at.get_or_insert(n);
        }
    });
    assert_eq!(state, State::Fault(Fault::Saturated));
    let after = fault_at.unwrap() - run_at.unwrap();
    assert!(
        (300..=310).contains(&after),
        "fault {after} ms into the run"
    );
    assert_safe(&plant);
}

#[test]
fn homing_the_wrong_way_times_out() {
    let plant = SimPlant::new(params());
    let cfg = Config {
        homing: Some(HomingConfig {
            duty: 0.3,
            timeout_ns: 1_000_000_000,
        }),
        ..Config::default()
    };
    let mut fault_at = None;
    let state = run(&plant, plant.encoder(), cfg, 2000, |n, s, _| {
        if matches!(s.state, State::Fault(_)) {
            fault_at.get_or_insert(n);
        }
    });
    assert_eq!(state, State::Fault(Fault::HomingTimeout));
    assert_eq!(fault_at, Some(1001));
    assert_safe(&plant);
}

#[test]
fn lost_edges_are_an_encoder_error() {
    let plant = SimPlant::new(params());
    let cfg = Config {
        homing: None,
        moves: moves(&[(400.0, 0)]),
        ..Config::default()
    };
    let mut servo = Servo {
        drive: MotorDrive::new(plant.enable_pin(), plant.dir_pin(), plant.dac()),
        encoder: plant.encoder(),
        home: plant.home_pin(),
        controller: Controller::new(cfg).unwrap(),
    };
    servo.start(0).unwrap();
    let mut now = 0;
    for _ in 0..300 {
        now += PERIOD_NS;
        plant.advance(1e-3);
        servo.cycle(now).unwrap();
    }
    assert_eq!(servo.controller.state(), State::Run);
    // The loop stalls for 0.5 s while the motor runs: more edges than the
    // queue holds.
    plant.advance(0.5);
    let s = servo.cycle(now + 500 * PERIOD_NS).unwrap();
    assert_eq!(s.state, State::Fault(Fault::EncoderError));
    assert_safe(&plant);
}

#[test]
fn nothing_moves_before_start_and_after_a_fault() {
    let plant = SimPlant::new(params());
    let mut servo = Servo {
        drive: MotorDrive::new(plant.enable_pin(), plant.dir_pin(), plant.dac()),
        encoder: plant.encoder(),
        home: plant.home_pin(),
        controller: Controller::new(Config::default()).unwrap(),
    };
    // Idle: cycles keep the outputs safe.
    for n in 1..100 {
        plant.advance(1e-3);
        let s = servo.cycle(n * PERIOD_NS).unwrap();
        assert_eq!((s.state, s.drive), (State::Idle, false));
    }
    assert_safe(&plant);
    assert_eq!(plant.position(), params().start_counts);
    servo.start(100 * PERIOD_NS).unwrap();
    servo.cycle(101 * PERIOD_NS).unwrap();
    assert!(plant.outputs().0, "homing drives the motor");
    servo.controller.fault(Fault::Hardware);
    let s = servo.cycle(102 * PERIOD_NS).unwrap();
    assert_eq!(s.state, State::Fault(Fault::Hardware));
    assert_safe(&plant);
    // Latched.
    servo.start(103 * PERIOD_NS).unwrap();
    assert_eq!(servo.controller.state(), State::Fault(Fault::Hardware));
}
