//! The simulated plant (`plant-sim`, rt-apps/plant) on real kernel
//! drivers: the gpio-sim chip it makes through configfs, seen through the
//! GPIO character device; its encoder edges decoded by a line request of
//! this test (the oracle) and compared with where the plant says it drove
//! them; its refusals.
#![cfg(feature = "guest")]

#[path = "support/plant.rs"]
mod support;

use gpiocdev::line::{EdgeDetection, EdgeKind, Value};
use plant::sim::chip::Chip;
use plant::{encoder_ab, lines};
use std::collections::BTreeSet;
use std::fs;
use std::time::{Duration, Instant};
use support::{params, params_text, PlantSim, PLANT_SIM};

#[test]
fn kernel_has_configfs_gpio_sim_and_the_gpio_character_device() {
    let out = guest_tests::run_ok("sh", &["-c", "zcat /proc/config.gz"]);
    for option in [
        "CONFIG_CONFIGFS_FS=y",
        "CONFIG_GPIO_SIM=y",
        "CONFIG_GPIO_CDEV=y",
    ] {
        assert!(
            out.lines().any(|l| l == option),
            "{option} missing from /proc/config.gz"
        );
    }
}

#[test]
fn plant_sim_makes_the_named_chip_shows_the_start_position_and_removes_the_chip() {
    let p = params();
    let plant = PlantSim::start("chip", &["--start=-7"]);
    assert_eq!(plant.start, -7);
    // The chip as the GPIO character device shows it (not through gpio-sim).
    let chip = gpiocdev::Chip::from_path(plant.chip_path()).unwrap();
    let info = chip.info().unwrap();
    assert_eq!(info.label, lines::CHIP_LABEL);
    assert_eq!(info.num_lines as usize, lines::ALL.len());
    for (offset, name) in lines::ALL.iter().enumerate() {
        let li = chip.line_info(offset as u32).unwrap();
        assert_eq!(li.name, *name, "line {offset}");
        assert!(!li.used, "{name} is free for the controller");
    }
    // Unrequested lines read their pull: the encoder shows -7, home is off,
    // and the outputs nobody drives read low (safe).
    let (a, b) = encoder_ab(-7);
    assert_eq!(plant.line(lines::ENCODER_A).level().unwrap(), a);
    assert_eq!(plant.line(lines::ENCODER_B).level().unwrap(), b);
    assert_eq!(plant.line(lines::HOME).level().unwrap(), p.home(-7));
    assert!(plant.outputs().is_safe());
    drop(chip);
    // Its loop ran (QEMU's SABRE Lite can wake it late: a plant stopped
    // before its first step has nothing to show).
    plant.wait_stepped();
    let run = plant.stop();
    // Coasting from rest: nothing moved.
    assert_eq!(run.get("final_counts"), -7);
    assert_eq!(run.get("encoder_counts"), -7);
    assert_eq!(run.get("edges"), 0);
    assert!(run.get("steps") > 0, "{}", run.stdout);
}

/// The plant's encoder edges as a line request of this test sees them:
/// decoded x4 here, they add up to where the plant says it drove them.
#[test]
fn plant_sim_edges_reach_a_line_request_and_decode_to_the_plant_position() {
    let p = params();
    let plant = PlantSim::start("edges", &["--start=2"]);
    let path = plant.chip_path();
    let offset = |name: &str| lines::ALL.iter().position(|n| *n == name).unwrap() as u32;
    let inputs = gpiocdev::Request::builder()
        .on_chip(&path)
        .with_consumer("guest-test")
        .with_lines(&[
            offset(lines::ENCODER_A),
            offset(lines::ENCODER_B),
            offset(lines::HOME),
        ])
        .as_input()
        .with_edge_detection(EdgeDetection::BothEdges)
        .with_kernel_event_buffer_size(1024)
        .request()
        .unwrap();
    let level = |o: u32| inputs.value(o).unwrap() == Value::Active;
    let (mut a, mut b) = (
        level(offset(lines::ENCODER_A)),
        level(offset(lines::ENCODER_B)),
    );
    assert_eq!((a, b), encoder_ab(2));
    let mut home = level(offset(lines::HOME));
    assert_eq!(home, p.home(2));
    let mut outputs = gpiocdev::Request::builder();
    outputs.on_chip(&path).with_consumer("guest-test");
    for name in lines::ALL[..lines::OUTPUTS].iter() {
        outputs.with_line(offset(name)).as_output(Value::Inactive);
    }
    let outputs = outputs.request().unwrap();
    let set = |enable: bool, dir: bool, duty: u8| {
        let mut v = gpiocdev::line::Values::default();
        v.set(offset(lines::MOTOR_ENABLE), enable.into());
        v.set(offset(lines::MOTOR_DIR), dir.into());
        for (bit, n) in lines::MOTOR_DUTY.iter().enumerate() {
            v.set(offset(n), (duty >> bit & 1 == 1).into());
        }
        outputs.set_values(&v).unwrap();
    };
    // Backwards through home, then forwards, then brake (driven at 0 V)
    // and coast.
    // Read through a buffer: gpiocdev 0.8's read_edge_event() (uapi_v2
    // only) reads up to eight events and returns the first, dropping the
    // others.
    let mut events = Vec::new();
    let mut queue = inputs.new_edge_event_buffer(64);
    // Reads events until `until`; with `quiet`, on until no event came for
    // that long (bounded by 10 s more: "it ends at all", not a timing).
    let mut drain = |until: Instant, quiet: Option<Duration>| {
        let mut last = Instant::now();
        loop {
            let now = Instant::now();
            let done = match quiet {
                None => now >= until,
                Some(q) => {
                    now >= until && (now - last >= q || now >= until + Duration::from_secs(10))
                }
            };
            if done {
                break;
            }
            if queue.has_event().unwrap()
                || inputs.wait_edge_event(Duration::from_millis(20)).unwrap()
            {
                events.push(queue.read_event().unwrap());
                last = Instant::now();
            }
        }
    };
    set(true, false, 160);
    drain(Instant::now() + Duration::from_millis(400), None);
    set(true, true, 255);
    drain(Instant::now() + Duration::from_millis(900), None);
    set(true, false, 0);
    drain(Instant::now() + Duration::from_millis(400), None);
    set(false, false, 0);
    // Until the plant has stopped (braked, then held by friction) and its
    // last edges are in: on a debug kernel (lockdep, KASAN) the plant and
    // gpio-sim's interrupt work run late, and a fixed 300 ms lost the last
    // few edges (decoded 145 of the plant's 151 counts).
    drain(
        Instant::now() + Duration::from_millis(300),
        Some(Duration::from_millis(300)),
    );
    drop(outputs);
    // Driven at 63 % for 0.4 s, the motor turned tens of counts: no event
    // at all means the kernel did not deliver gpio-sim's interrupts (seen
    // on QEMU's vexpress-a15 with one vCPU and a two-CPU device tree: its
    // IRQ work never ran, and removing the chip then hung in the kernel).
    let now = (
        level(offset(lines::ENCODER_A)),
        level(offset(lines::ENCODER_B)),
    );
    drop(inputs);
    assert!(
        !events.is_empty(),
        "no edge event reached the line request in 2 s of driving, the encoder lines went \
         from {:?} to {now:?}: the kernel does not deliver gpio-sim's interrupts \
         (/proc/interrupts: {})",
        encoder_ab(2),
        fs::read_to_string("/proc/interrupts")
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("IRQ work") || l.contains("gpio-sim"))
            .collect::<Vec<_>>()
            .join("; ")
    );
    let run = plant.stop();
    // Each line has its own interrupt thread, so events of different lines
    // may reach the queue out of order; the request-wide sequence number
    // (given in hard interrupt context, with the timestamp) is the order.
    let delivered: Vec<u32> = events.iter().map(|e| e.seqno).collect();
    events.sort_by_key(|e| e.seqno);
    let reordered = delivered
        .iter()
        .zip(events.iter())
        .filter(|(d, e)| **d != e.seqno)
        .count();
    println!(
        "{} edge events, {reordered} delivered out of sequence order",
        events.len()
    );
    let mut count = 2i32;
    let mut home_edges = 0u32;
    let mut last_ts = 0u64;
    for (i, e) in events.iter().enumerate() {
        if e.seqno != i as u32 + 1 {
            let near: Vec<_> = events[i.saturating_sub(4)..(i + 3).min(events.len())]
                .iter()
                .map(|e| (e.seqno, e.offset, e.kind, e.line_seqno, e.timestamp_ns))
                .collect();
            panic!(
                "event {} lost; around it (seqno, offset, kind, line seqno, ns): {near:?}",
                i + 1
            );
        }
        assert!(
            e.timestamp_ns >= last_ts,
            "kernel timestamps follow the sequence"
        );
        last_ts = e.timestamp_ns;
        let high = e.kind == EdgeKind::Rising;
        if e.offset == offset(lines::HOME) {
            assert_ne!(home, high, "a home edge changes the level");
            home = high;
            home_edges += 1;
            continue;
        }
        let before = (a, b);
        if e.offset == offset(lines::ENCODER_A) {
            assert_ne!(a, high, "an A edge changes A (event {e:?})");
            a = high;
        } else {
            assert_ne!(b, high, "a B edge changes B (event {e:?})");
            b = high;
        }
        // One Gray-code step: up or down by one count.
        if (a, b) == encoder_ab(count + 1) {
            count += 1;
        } else if (a, b) == encoder_ab(count - 1) {
            count -= 1;
        } else {
            panic!(
                "illegal quadrature transition {before:?} -> {:?} at {count}",
                (a, b)
            );
        }
    }
    let last_seqno = events.len() as u32;
    assert_eq!(
        i64::from(count),
        run.get("encoder_counts"),
        "decoded edges = plant"
    );
    assert_eq!(run.get("encoder_counts"), run.get("final_counts"));
    assert_eq!(
        run.get("edges"),
        i64::from(last_seqno - home_edges),
        "one event per edge"
    );
    // It really went through home both ways.
    let min = run.trace.iter().map(|r| r.position).min().unwrap();
    assert!(
        min < -(p.home_half_width_counts as i32),
        "went below home: {min}"
    );
    assert!(
        count > p.home_half_width_counts as i32,
        "came back past home: {count}"
    );
    // One home event per crossing of the home window in the plant's trace.
    // The plant sets the home line from the motor's position once a step:
    // a late step (a debug kernel runs the plant late) can carry the motor
    // over the whole window, and then the line does not change. Such a
    // pass is in the trace too (two rows on either side of the window): it
    // counts as a pass through home, not as a crossing of the line.
    let mut at_home = p.home(2);
    let mut crossings = 0;
    let mut jumped = 0;
    let mut prev = 2i32;
    for row in &run.trace {
        if p.home(row.position) != at_home {
            at_home = !at_home;
            crossings += 1;
        } else if !at_home && (prev.min(row.position)..=prev.max(row.position)).any(|x| p.home(x)) {
            jumped += 1;
        }
        prev = row.position;
    }
    println!(
        "{crossings} crossings of the home window, {jumped} passes over it within one step; \
         plant: {} steps, {} late, max lag {} ns",
        run.get("steps"),
        run.get("late_steps"),
        run.get("max_lag_ns")
    );
    assert!(
        crossings + 2 * jumped >= 3,
        "{crossings} crossings of home, {jumped} passes over it within one step"
    );
    assert_eq!(
        home_edges, crossings,
        "home events = crossings of the home window"
    );
    // The trace saw the commands this test set.
    let seen: BTreeSet<(bool, bool, u8)> = run
        .trace
        .iter()
        .map(|r| (r.enable, r.dir, r.duty))
        .collect();
    for c in [(true, false, 160), (true, true, 255), (true, false, 0)] {
        assert!(seen.contains(&c), "plant never saw {c:?}: {seen:?}");
    }
}

#[test]
fn plant_sim_refuses_bad_input_a_second_chip_and_a_missing_gpio_sim() {
    let run = |args: &[&str]| guest_tests::run(PLANT_SIM, args);
    for (args, msg) in [
        (&["--rate=0"][..], "--rate: must be 1..20000"),
        (&["--bogus"][..], "unknown option '--bogus'"),
        (&["--priority=50"][..], "--priority: must be 1..49"),
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(msg),
            "{args:?}"
        );
    }
    let bad = "/tmp/plant-bad.conf";
    fs::write(bad, params_text().replace("inertia = ", "inertia = -")).unwrap();
    let out = run(&[&format!("--params={bad}")]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(bad) && err.contains("inertia: must be > 0"),
        "{err}"
    );
    let out = run(&["--params=/nonexistent.conf"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent.conf"));

    // A second plant-sim while one runs: refused, the first one's chip kept.
    let first = PlantSim::start("second", &[]);
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("exists") && err.contains("plant-sim --remove"),
        "{err}"
    );
    assert!(Chip::find().is_ok(), "the running plant's chip survived");
    first.stop();

    // Without gpio-sim: a mount namespace in which configfs is mounted
    // but empty of gpio-sim is not possible (configfs is one instance),
    // so /sys/kernel/config is covered by a read-only empty tmpfs there
    // and plant-sim must not make up a chip.
    let out = guest_tests::run(
        "unshare",
        &[
            "-m",
            "sh",
            "-c",
            "mount -t tmpfs -o ro,size=4k none /sys/kernel/config && exec /usr/bin/plant-sim",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("gpio-sim"), "{err}");
}
