//! The `servo` binary: exit codes and messages, SIGTERM, faults, the logs
//! of a real run, and (with `qemu-arm -strace`) the system calls of the
//! control loop. Runs the armv7 binary through qemu-user on an x86 host.

use std::process::{Command, Output, Stdio};

const ARM_SYSROOT: &str = "/usr/arm-linux-gnueabihf";

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_servo")
}

/// Whether the binary runs when executed directly (a native build, or an
/// ARM host); otherwise through qemu-arm.
fn native() -> bool {
    Command::new(bin())
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn servo(args: &[&str]) -> Command {
    let mut c = if native() {
        Command::new(bin())
    } else {
        let mut c = Command::new("qemu-arm");
        c.args(["-L", ARM_SYSROOT, bin()]);
        c
    };
    c.args(args);
    c
}

fn run(args: &[&str]) -> Output {
    servo(args).output().expect("cannot start servo")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn temp(name: &str) -> String {
    std::env::temp_dir()
        .join(format!("servo-cli-{}-{name}", std::process::id()))
        .display()
        .to_string()
}

/// `key: value` of the summary.
fn value<'a>(summary: &'a str, key: &str) -> &'a str {
    summary
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(": "))
        .unwrap_or_else(|| panic!("no '{key}' in:\n{summary}"))
}

#[test]
fn bad_arguments_exit_2_with_a_message() {
    for (args, says) in [
        (&["--bogus"][..], "unknown option '--bogus'"),
        (&["-p", "200"][..], "out of range"),
        (
            &["--log-via=fast", "--log=x"][..],
            "not direct, thread, io_uring or flexsc",
        ),
        (&["--kp=-1"][..], "bad controller settings"),
        (&["decode"][..], "which log?"),
    ] {
        let out = run(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        let err = text(&out.stderr);
        assert!(
            err.contains(says) && err.contains("servo --help"),
            "{args:?}: {err}"
        );
        assert!(out.stdout.is_empty());
    }
    let out = run(&["--help"]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("--log-via=direct|thread|io_uring|flexsc"));
}

#[test]
fn a_missing_device_exits_1_with_a_message() {
    if std::path::Path::new("/dev/gpiochip0").exists() {
        eprintln!("SKIPPED: this machine has GPIO chips");
        return;
    }
    let out = run(&["-l", "10", "--no-mlock"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("no GPIO chip 'rtflex-plant'"), "{err}");
    let out = run(&["spi-id", "--device=/dev/spidev-none"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot open /dev/spidev-none"));
    let out = run(&["decode", "/nonexistent.log"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot read '/nonexistent.log'"));
}

#[test]
fn a_run_logs_every_cycle_and_decodes() {
    let log = temp("run.log");
    let out = run(&[
        "--sim-plant",
        "--moves=60",
        "-l",
        "1500",
        "--log",
        &log,
        "--log-via=thread",
        "--no-mlock",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert_eq!(value(&s, "cycles"), "1500");
    assert_eq!(value(&s, "records_written"), "1500");
    assert_eq!(value(&s, "records_lost"), "0");
    assert_eq!(value(&s, "state"), "run");
    let csv = run(&["decode", "--csv", &log]);
    assert!(csv.status.success());
    let csv = text(&csv.stdout);
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 1500);
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r.len(), 13);
        assert_eq!(r[0].parse::<usize>().unwrap(), i, "in order, none missing");
    }
    // Homed and at the target by the end (60 counts from home).
    let last = rows.last().unwrap();
    assert_eq!(last[2], "2", "run state");
    assert!(
        (last[6].parse::<i32>().unwrap() - 60).abs() <= 2,
        "{last:?}"
    );
    let sum = text(&run(&["decode", "--summary", &log]).stdout);
    assert_eq!(value(&sum, "missing"), "0");
    assert_eq!(value(&sum, "out_of_order"), "0");
    let _ = std::fs::remove_file(&log);
}

#[test]
fn a_fault_exits_3_and_says_why() {
    // Homing away from the switch: a homing timeout.
    let out = run(&[
        "--sim-plant",
        "--home-duty=0.3",
        "--home-timeout=300",
        "-l",
        "2000",
        "--no-mlock",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("fault: homing timeout"));
    let s = text(&out.stdout);
    assert_eq!(value(&s, "state"), "fault");
    // It stopped at the fault, not at -l.
    assert!(value(&s, "cycles").parse::<u32>().unwrap() < 400, "{s}");
}

#[test]
fn sigterm_ends_the_run_cleanly_with_a_complete_log() {
    let log = temp("term.log");
    let child = servo(&["--sim-plant", "--log", &log, "--no-mlock"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Let it run (generous: qemu-user starts slowly), then SIGTERM.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // SAFETY: kill() with the pid of our own child (qemu-arm forwards the
    // signal to the program) and a valid signal number.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    let cycles: usize = value(&s, "cycles").parse().unwrap();
    assert!(cycles > 100, "{s}");
    let sum = text(&run(&["decode", "--summary", &log]).stdout);
    assert_eq!(value(&sum, "records"), cycles.to_string());
    assert_eq!(value(&sum, "missing"), "0");
    assert_eq!(value(&sum, "trailing_bytes"), "0");
    let _ = std::fs::remove_file(&log);
}

/// System call names in a `qemu-arm -strace` log of a one-threaded
/// program: each line is `PID name(args...) = result`.
fn syscalls(log: &str) -> Vec<(String, String)> {
    log.lines()
        .filter_map(|l| {
            let (pid, rest) = l.split_once(' ')?;
            if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let (name, args) = rest.split_once('(')?;
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return None;
            }
            Some((name.to_string(), args.to_string()))
        })
        .collect()
}

/// Between the first and the last absolute sleep of the control loop:
/// only the sleeps, clock reads, and (with a direct log) one 48-byte write
/// per cycle. The simulated plant needs no device I/O; on GPIO the loop
/// adds its line reads and sets (the guest tests trace those).
#[test]
fn the_control_loop_makes_only_clock_and_log_calls() {
    if native() || !cfg!(target_arch = "arm") {
        eprintln!("SKIPPED: needs the armv7 build under qemu-arm -strace");
        return;
    }
    let loops = 60;
    for log in [None, Some("/dev/null")] {
        let mut args = vec![
            "-strace",
            "-L",
            ARM_SYSROOT,
            bin(),
            "--sim-plant",
            "-q",
            "-l",
        ];
        let n = loops.to_string();
        args.push(&n);
        let l;
        if let Some(path) = log {
            l = format!("--log={path}");
            args.push(&l);
        }
        let out = Command::new("qemu-arm").args(&args).output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        let calls = syscalls(&text(&out.stderr));
        assert!(calls.len() > 3 * loops, "strace output not understood");
        let is_abs = |c: &(String, String)| {
            c.0 == "clock_nanosleep" && c.1.starts_with("CLOCK_MONOTONIC,1,")
        };
        let first = calls.iter().position(is_abs).expect("no absolute sleep");
        let last = calls.iter().rposition(is_abs).unwrap();
        let window = &calls[first..=last];
        assert_eq!(
            window.iter().filter(|c| is_abs(c)).count(),
            loops,
            "one sleep per cycle"
        );
        let other: Vec<_> = window
            .iter()
            .filter(|(n, a)| {
                !(n.starts_with("clock_nanosleep")
                    || n.starts_with("clock_gettime")
                    || (log.is_some() && n == "write" && a.ends_with(",48) = 48")))
            })
            .collect();
        assert!(
            other.is_empty(),
            "{log:?}: system calls in the loop: {other:?}"
        );
        let writes = window.iter().filter(|c| c.0 == "write").count();
        let want = if log.is_some() { loops - 1 } else { 0 };
        assert_eq!(writes, want, "{log:?}: one record per cycle");
        // Set-up happened before the loop.
        let before: Vec<&str> = calls[..first].iter().map(|c| c.0.as_str()).collect();
        assert!(before.contains(&"mlockall"), "{before:?}");
        assert!(before.contains(&"rt_sigaction"), "{before:?}");
    }
}
