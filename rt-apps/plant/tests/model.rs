//! The physics of the motor model against closed-form solutions of the same
//! equations, worked out here by hand (not by the library's own helpers).

use plant::{encoder_ab, encoder_edge, Channel, Drive, Motor, Params, DEFAULT_PARAMS, DUTY_MAX};

fn default_params() -> Params {
    Params::parse(DEFAULT_PARAMS).expect("plant.conf parses")
}

/// The default motor without any friction.
fn frictionless() -> Params {
    Params {
        viscous_friction: 0.0,
        coulomb_friction: 0.0,
        ..default_params()
    }
}

fn run(motor: &mut Motor, seconds: f32, dt: f32, drive: Drive) {
    let steps = (seconds / dt).round() as usize;
    for _ in 0..steps {
        motor.step(dt, drive);
    }
}

fn close(actual: f32, expected: f32, relative: f32) -> bool {
    (actual - expected).abs() <= relative * expected.abs()
}

#[test]
fn frictionless_steady_state_speed_is_volts_over_back_emf_constant() {
    let p = frictionless();
    for volts in [12.0f32, 6.0, -3.0] {
        let mut m = Motor::at(p, 0);
        run(&mut m, 20.0 * time_constant(&p), 0.001, Drive::Volts(volts));
        let expected = volts / p.back_emf_constant;
        assert!(
            close(m.speed_rad_s(), expected, 0.001),
            "{volts} V: {} rad/s, expected {expected}",
            m.speed_rad_s()
        );
        // No friction, no torque: the current has died away.
        assert!(m.state().current_amps.abs() < 1e-3 * volts.abs());
    }
}

fn time_constant(p: &Params) -> f32 {
    p.inertia / (p.torque_constant * p.back_emf_constant / p.resistance_ohms + p.viscous_friction)
}

#[test]
fn steady_state_speed_loses_what_friction_takes() {
    let p = default_params();
    assert!(p.viscous_friction > 0.0 && p.coulomb_friction > 0.0);
    for volts in [12.0f32, -12.0, 4.0] {
        let mut m = Motor::at(p, 0);
        run(&mut m, 20.0 * time_constant(&p), 0.001, Drive::Volts(volts));
        // k_t (V - k_e w) / R = b w + T_c sign(w)
        let coulomb = p.coulomb_friction * volts.signum();
        let expected = (p.torque_constant * volts / p.resistance_ohms - coulomb)
            / (p.torque_constant * p.back_emf_constant / p.resistance_ohms + p.viscous_friction);
        assert!(
            close(m.speed_rad_s(), expected, 0.001),
            "{volts} V: {} rad/s, expected {expected}",
            m.speed_rad_s()
        );
        assert!(m.speed_rad_s().abs() < (volts / p.back_emf_constant).abs());
        assert!(close(p.steady_state_speed(volts), expected, 1e-5));
    }
}

#[test]
fn spin_up_is_first_order_with_the_mechanical_time_constant() {
    let p = frictionless();
    let tau = time_constant(&p);
    let mut m = Motor::at(p, 0);
    let final_speed = 12.0 / p.back_emf_constant;
    // One time constant in steps of 100 us: 1 - 1/e of the final speed.
    run(&mut m, tau, 0.0001, Drive::Volts(12.0));
    let expected = final_speed * (1.0 - (-1.0f32).exp());
    assert!(
        close(m.speed_rad_s(), expected, 0.01),
        "{} rad/s after tau, expected {expected}",
        m.speed_rad_s()
    );
    assert!(close(p.time_constant_s(), tau, 1e-6));
}

#[test]
fn position_is_the_integral_of_speed() {
    let p = frictionless();
    let tau = time_constant(&p);
    let mut m = Motor::at(p, 0);
    let t = 3.0 * tau;
    run(&mut m, t, 0.0001, Drive::Volts(12.0));
    // w(t) = W (1 - e^{-t/tau})  =>  theta(t) = W (t - tau (1 - e^{-t/tau}))
    let w = 12.0 / p.back_emf_constant;
    let theta = w * (t - tau * (1.0 - (-t / tau).exp()));
    let counts = theta * p.counts_per_rev as f32 / (2.0 * std::f32::consts::PI);
    assert!(
        close(m.position_exact(), counts, 0.01),
        "{} counts, expected {counts}",
        m.position_exact()
    );
    assert_eq!(m.position_counts(), m.position_exact().floor() as i32);
}

#[test]
fn coasting_decays_exponentially_under_viscous_friction_alone() {
    let p = Params {
        coulomb_friction: 0.0,
        ..default_params()
    };
    let mut m = Motor::at(p, 0);
    run(&mut m, 2.0, 0.001, Drive::Volts(12.0));
    let w0 = m.speed_rad_s();
    assert!(w0 > 1.0);
    // Windings open: only b brakes, time constant J / b (no back-EMF current).
    let tau = p.inertia / p.viscous_friction;
    let mut last = w0;
    for _ in 0..(tau / 0.001) as usize {
        let s = m.step(0.001, Drive::Coast);
        assert!(s.speed_rad_s <= last && s.speed_rad_s > 0.0);
        assert_eq!(s.current_amps, 0.0);
        last = s.speed_rad_s;
    }
    let expected = w0 * (-1.0f32).exp();
    assert!(
        close(m.speed_rad_s(), expected, 0.01),
        "{} rad/s after J/b, expected {expected}",
        m.speed_rad_s()
    );
}

#[test]
fn coasting_stops_in_finite_time_under_coulomb_friction() {
    let p = Params {
        viscous_friction: 0.0,
        ..default_params()
    };
    let mut m = Motor::at(p, 0);
    run(&mut m, 2.0, 0.001, Drive::Volts(-12.0));
    let w0 = m.speed_rad_s();
    assert!(w0 < -1.0);
    // Constant deceleration T_c / J: stops after J |w0| / T_c.
    let stop = p.inertia * w0.abs() / p.coulomb_friction;
    run(&mut m, 0.98 * stop, 0.001, Drive::Coast);
    assert!(m.speed_rad_s() < 0.0, "stopped too early");
    run(&mut m, 0.04 * stop, 0.001, Drive::Coast);
    assert_eq!(m.speed_rad_s(), 0.0, "still turning after {stop} s");
    let at_rest = m.position_counts();
    run(&mut m, 1.0, 0.001, Drive::Coast);
    assert_eq!(m.position_counts(), at_rest);
}

#[test]
fn driven_with_zero_volts_brakes_harder_than_coasting() {
    let p = default_params();
    let mut braked = Motor::at(p, 0);
    run(&mut braked, 1.0, 0.001, Drive::Volts(12.0));
    let mut coasting = braked.clone();
    run(&mut braked, 0.05, 0.001, Drive::Volts(0.0));
    run(&mut coasting, 0.05, 0.001, Drive::Coast);
    assert!(braked.speed_rad_s() < 0.5 * coasting.speed_rad_s());
    assert!(braked.state().current_amps < 0.0, "back-EMF drives current");
}

#[test]
fn static_friction_holds_the_shaft_below_the_breakaway_voltage() {
    let p = default_params();
    let breakaway = p.coulomb_friction * p.resistance_ohms / p.torque_constant;
    let mut m = Motor::at(p, 7);
    run(&mut m, 1.0, 0.001, Drive::Volts(0.9 * breakaway));
    run(&mut m, 1.0, 0.001, Drive::Volts(-0.9 * breakaway));
    assert_eq!(m.speed_rad_s(), 0.0);
    assert_eq!(m.position_exact(), 7.0);
    run(&mut m, 1.0, 0.001, Drive::Volts(1.2 * breakaway));
    assert!(m.speed_rad_s() > 0.0);
    assert!(m.position_counts() > 7);
}

#[test]
fn reversal_decelerates_through_zero_and_turns_the_other_way() {
    let p = default_params();
    let mut m = Motor::at(p, 0);
    run(&mut m, 1.0, 0.001, Drive::Volts(12.0));
    let turned_at = m.position_counts();
    let mut furthest = turned_at;
    let mut crossed = false;
    for _ in 0..2000 {
        let s = m.step(0.001, Drive::Volts(-12.0));
        furthest = furthest.max(s.position_counts);
        crossed |= s.speed_rad_s < 0.0;
    }
    assert!(crossed);
    assert!(furthest > turned_at, "inertia carries it on first");
    assert!(m.position_counts() < furthest);
    assert!(close(m.speed_rad_s(), p.steady_state_speed(-12.0), 0.01));
}

#[test]
fn one_long_step_matches_many_short_ones() {
    let p = default_params();
    let mut long = Motor::at(p, 0);
    let mut short = Motor::at(p, 0);
    long.step(0.05, Drive::Volts(12.0));
    run(&mut short, 0.05, 0.0005, Drive::Volts(12.0));
    // The same substeps (up to the rounding of the time left).
    assert_eq!(long.position_counts(), short.position_counts());
    assert!(close(long.speed_rad_s(), short.speed_rad_s(), 1e-5));
    assert!(close(long.position_exact(), short.position_exact(), 1e-5));
    // Nothing happens for no time, negative time or NaN.
    let before = long.clone().state();
    for dt in [0.0, -1.0, f32::NAN] {
        assert_eq!(long.step(dt, Drive::Volts(12.0)), before);
    }
}

#[test]
fn resolution_does_not_depend_on_the_distance_from_zero() {
    let p = default_params();
    let mut near = Motor::at(p, 0);
    let mut far = Motor::at(p, 5_000_000);
    // 0.1 V barely turns it (from a speed above the breakaway point).
    for m in [&mut near, &mut far] {
        run(m, 0.2, 0.001, Drive::Volts(12.0));
        run(m, 2.0, 0.0001, Drive::Volts(0.5));
    }
    assert_eq!(
        far.position_counts() - 5_000_000,
        near.position_counts(),
        "a far position integrates the same small steps"
    );
}

#[test]
fn encoder_has_a_leading_b_in_the_positive_direction() {
    let p = default_params();
    for (volts, order) in [
        (
            6.0f32,
            [(false, false), (true, false), (true, true), (false, true)],
        ),
        (
            -6.0f32,
            [(false, false), (false, true), (true, true), (true, false)],
        ),
    ] {
        let mut m = Motor::at(p, 0);
        let mut seen = vec![m.encoder_ab()];
        let mut last_counts = m.position_counts();
        for _ in 0..20_000 {
            // Short steps: at most one count each.
            let s = m.step(0.0001, Drive::Volts(volts));
            assert!((s.position_counts - last_counts).abs() <= 1);
            last_counts = s.position_counts;
            if *seen.last().unwrap() != m.encoder_ab() {
                seen.push(m.encoder_ab());
            }
        }
        assert!(seen.len() > 40, "it moved {} states", seen.len());
        let start = order.iter().position(|s| *s == seen[0]).unwrap();
        for (i, state) in seen.iter().enumerate() {
            assert_eq!(*state, order[(start + i) % 4], "{volts} V, transition {i}");
        }
    }
}

#[test]
fn encoder_levels_follow_the_count_modulo_4() {
    let seq = [(false, false), (true, false), (true, true), (false, true)];
    for counts in -9i32..9 {
        assert_eq!(encoder_ab(counts), seq[counts.rem_euclid(4) as usize]);
        // Neighbouring counts differ in exactly one line (Gray code).
        let (a0, b0) = encoder_ab(counts);
        let (a1, b1) = encoder_ab(counts + 1);
        assert_eq!(u8::from(a0 != a1) + u8::from(b0 != b1), 1);
    }
    assert_eq!(encoder_ab(i32::MIN), (false, false));
    assert_eq!(encoder_ab(i32::MAX), (false, true));
}

#[test]
fn walking_edge_by_edge_changes_one_line_per_count() {
    for (from, to) in [(-7i32, 9i32), (9, -7), (3, 3), (i32::MAX - 2, i32::MAX)] {
        let (mut a, mut b) = encoder_ab(from);
        let mut counts = from;
        let mut edges = 0;
        while counts != to {
            let up = to > counts;
            let (channel, level) = encoder_edge(counts, up);
            match channel {
                Channel::A => {
                    assert_ne!(a, level, "an edge changes its line");
                    a = level;
                }
                Channel::B => {
                    assert_ne!(b, level, "an edge changes its line");
                    b = level;
                }
            }
            counts = if up { counts + 1 } else { counts - 1 };
            assert_eq!((a, b), encoder_ab(counts));
            edges += 1;
        }
        assert_eq!(edges, (to - from).unsigned_abs());
    }
    // Going up from 0: A rises first (A leads B).
    assert_eq!(encoder_edge(0, true), (Channel::A, true));
    assert_eq!(encoder_edge(0, false), (Channel::B, true));
}

#[test]
fn home_is_high_inside_the_window_around_zero() {
    let p = Params {
        home_half_width_counts: 3,
        ..default_params()
    };
    for counts in -3..=3 {
        assert!(p.home(counts), "{counts}");
        assert!(Motor::at(p, counts).home());
    }
    for counts in [-4, 4, 100, -100, i32::MIN, i32::MAX] {
        assert!(!p.home(counts), "{counts}");
    }
}

#[test]
fn command_lines_map_to_volts() {
    assert_eq!(Drive::from_lines(false, true, 255, 12.0), Drive::Coast);
    assert_eq!(Drive::from_lines(false, false, 0, 12.0), Drive::Coast);
    assert_eq!(
        Drive::from_lines(true, true, DUTY_MAX, 12.0),
        Drive::Volts(12.0)
    );
    assert_eq!(
        Drive::from_lines(true, false, DUTY_MAX, 12.0),
        Drive::Volts(-12.0)
    );
    assert_eq!(Drive::from_lines(true, true, 0, 12.0), Drive::Volts(0.0));
    let Drive::Volts(v) = Drive::from_lines(true, false, 51, 10.0) else {
        panic!("enabled is driven");
    };
    assert!((v + 2.0).abs() < 1e-6);
}

#[test]
fn the_default_plant_is_slow_enough_for_gpio_sim() {
    let p = default_params();
    assert_eq!(p.counts_per_rev & 3, 0, "a multiple of 4");
    let max = p.max_counts_per_s();
    let by_hand = p.steady_state_speed(p.supply_volts) * p.counts_per_rev as f32
        / (2.0 * std::f32::consts::PI);
    assert!(close(max, by_hand, 1e-6));
    // plant-sim writes one gpio-sim line per count; it is measured to keep
    // up with this rate (docs/control-app-bench.md).
    assert!(max < 1000.0, "{max} counts/s");
    assert!(!p.home(p.start_counts), "homing has something to find");
}
