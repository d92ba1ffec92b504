//! The parameter file: the default parses to the values it says, and each
//! kind of mistake gives an error naming the line and the parameter.

use plant::{ParamError, ParamErrorKind, Params, DEFAULT_PARAMS, PARAM_NAMES};

fn parse_err(text: &str) -> ParamError {
    Params::parse(text).expect_err("should be refused")
}

/// The default file with `name`'s line replaced by `line` (or removed).
fn with(name: &str, line: Option<&str>) -> String {
    let mut out = String::new();
    let mut found = false;
    for l in DEFAULT_PARAMS.lines() {
        if l.split('=').next().map(str::trim) == Some(name) {
            found = true;
            if let Some(new) = line {
                out.push_str(new);
                out.push('\n');
            }
        } else {
            out.push_str(l);
            out.push('\n');
        }
    }
    assert!(found, "{name} is in plant.conf");
    out
}

fn line_of(text: &str, name: &str) -> usize {
    1 + text
        .lines()
        .position(|l| l.split('=').next().map(str::trim) == Some(name))
        .unwrap()
}

#[test]
fn default_file_parses_to_what_it_says() {
    let p = Params::parse(DEFAULT_PARAMS).unwrap();
    // Read back by a second, simpler parser (every non-comment line).
    for line in DEFAULT_PARAMS.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = line.split_once('=').unwrap();
        let value: f64 = value.trim().parse().unwrap();
        let got = match name.trim() {
            "supply_volts" => f64::from(p.supply_volts),
            "resistance_ohms" => f64::from(p.resistance_ohms),
            "torque_constant" => f64::from(p.torque_constant),
            "back_emf_constant" => f64::from(p.back_emf_constant),
            "inertia" => f64::from(p.inertia),
            "viscous_friction" => f64::from(p.viscous_friction),
            "coulomb_friction" => f64::from(p.coulomb_friction),
            "counts_per_rev" => f64::from(p.counts_per_rev),
            "home_half_width_counts" => f64::from(p.home_half_width_counts),
            "start_counts" => f64::from(p.start_counts),
            other => panic!("unexpected name {other}"),
        };
        assert!((got - value).abs() <= 1e-6 * value.abs(), "{name}");
    }
}

#[test]
fn comments_blanks_and_spacing_are_free() {
    let text: String = PARAM_NAMES
        .iter()
        .zip(["12", "4", "0.75", "0.75", "7e-3", "0", "0", "8", "0", "-3"])
        .map(|(n, v)| format!("   {n}={v}   # trailing comment\n\n# comment\n"))
        .collect();
    let p = Params::parse(&text).unwrap();
    assert_eq!(p.inertia, 7e-3);
    assert_eq!(p.start_counts, -3);
    assert_eq!(p.counts_per_rev, 8);
}

#[test]
fn every_name_is_required() {
    for name in PARAM_NAMES {
        let e = parse_err(&with(name, None));
        assert_eq!(e.kind, ParamErrorKind::Missing(name));
        assert_eq!(e.to_string(), format!("{name} is missing"));
    }
}

#[test]
fn unknown_name_is_refused_with_its_line_and_the_known_names() {
    let text = format!("{DEFAULT_PARAMS}\ninertial = 3\n");
    let e = parse_err(&text);
    assert_eq!(e.kind, ParamErrorKind::UnknownName);
    assert_eq!(e.line, text.lines().count());
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!("line {}: unknown name", e.line)),
        "{msg}"
    );
    for name in PARAM_NAMES {
        assert!(msg.contains(name), "{msg}");
    }
}

#[test]
fn repeated_name_is_refused_at_its_second_line() {
    let text = format!("{DEFAULT_PARAMS}supply_volts = 24\n");
    let e = parse_err(&text);
    assert_eq!(e.kind, ParamErrorKind::Repeated("supply_volts"));
    assert_eq!(e.line, text.lines().count());
    assert_eq!(
        e.to_string(),
        format!("line {}: supply_volts given twice", e.line)
    );
}

#[test]
fn lines_without_name_or_value_are_syntax_errors() {
    for bad in ["supply_volts 12", "= 12", "supply_volts =", "12"] {
        let text = with("supply_volts", Some(bad));
        let e = parse_err(&text);
        assert_eq!(e.kind, ParamErrorKind::Syntax, "{bad}");
        assert_eq!(e.line, line_of(DEFAULT_PARAMS, "supply_volts"));
        assert!(e.to_string().ends_with("expected `name = value`"));
    }
}

#[test]
fn values_must_be_numbers_of_the_right_type() {
    for (name, bad) in [
        ("inertia", "heavy"),
        ("inertia", "NaN"),
        ("inertia", "inf"),
        ("supply_volts", "12 V"),
        ("counts_per_rev", "200.5"),
        ("counts_per_rev", "-200"),
        ("home_half_width_counts", "-1"),
        ("start_counts", "1e3"),
        ("start_counts", "99999999999"),
    ] {
        let text = with(name, Some(&format!("{name} = {bad}")));
        let e = parse_err(&text);
        let known = PARAM_NAMES.iter().find(|n| **n == name).unwrap();
        assert_eq!(e.kind, ParamErrorKind::BadNumber(known), "{name} = {bad}");
        assert_eq!(e.line, line_of(DEFAULT_PARAMS, name));
        assert!(e
            .to_string()
            .contains(&format!("{name}: not a valid number")));
    }
}

#[test]
fn values_out_of_range_are_refused_at_their_line() {
    for (name, bad, rule) in [
        ("resistance_ohms", "0", "> 0"),
        ("torque_constant", "-0.1", "> 0"),
        ("back_emf_constant", "0", "> 0"),
        ("inertia", "0", "> 0"),
        ("supply_volts", "-12", ">= 0"),
        ("viscous_friction", "-1e-3", ">= 0"),
        ("coulomb_friction", "-0.01", ">= 0"),
        ("counts_per_rev", "0", "a positive multiple of 4"),
        ("counts_per_rev", "202", "a positive multiple of 4"),
    ] {
        let text = with(name, Some(&format!("{name} = {bad}")));
        let e = parse_err(&text);
        let known = PARAM_NAMES.iter().find(|n| **n == name).unwrap();
        assert_eq!(e.kind, ParamErrorKind::OutOfRange(known, rule), "{name}");
        assert_eq!(e.line, line_of(DEFAULT_PARAMS, name), "{name}");
        assert_eq!(
            e.to_string(),
            format!("line {}: {name}: must be {rule}", e.line)
        );
    }
}

#[test]
fn validate_checks_a_set_built_in_code() {
    let p = Params::parse(DEFAULT_PARAMS).unwrap();
    assert_eq!(p.validate(), Ok(()));
    let bad = Params {
        inertia: f32::NAN,
        ..p
    };
    assert_eq!(
        bad.validate().unwrap_err().kind,
        ParamErrorKind::OutOfRange("inertia", "> 0")
    );
}
