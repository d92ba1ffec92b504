//! Runs the flexsc-bench binary (under qemu-user on a non-ARM host, where,
//! as on a kernel without FlexSC, flexsc_register is ENOSYS).

use std::process::{Command, Output};

fn bench(args: &[&str]) -> Output {
    let bin = env!("CARGO_BIN_EXE_flexsc-bench");
    let native = Command::new(bin)
        .arg("--help")
        .output()
        .is_ok_and(|o| o.status.success());
    let mut c = if native {
        Command::new(bin)
    } else {
        let mut c = Command::new("qemu-arm");
        c.args(["-L", "/usr/arm-linux-gnueabihf", bin]);
        c
    };
    c.args(args).output().expect("cannot start flexsc-bench")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn json_line(out: &str) -> serde_json::Value {
    let line = out
        .lines()
        .find(|l| l.starts_with("{\"flexsc_bench\":"))
        .unwrap_or_else(|| panic!("no JSON line in\n{out}"));
    serde_json::from_str(line).unwrap()
}

fn file(name: &str) -> String {
    std::env::temp_dir()
        .join(format!("flexsc-bench-cli-{}-{name}", std::process::id()))
        .display()
        .to_string()
}

const SMALL: &[&str] = &[
    "--iters=30",
    "--warmup=3",
    "--repeats=2",
    "--batch-calls=64",
    "--batches=1,8",
];

#[test]
#[cfg_attr(
    not(target_arch = "arm"),
    ignore = "ARM EABI only (system call numbers and argument words): make host-test runs it"
)]
fn direct_only_prints_table_and_json() {
    let f = file("d.dat");
    let j = file("d.json");
    let mut args = SMALL.to_vec();
    let (fa, ja) = (format!("--file={f}"), format!("--json={j}"));
    args.extend([fa.as_str(), ja.as_str(), "--direct-only"]);
    let out = bench(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains(
        "| call | path | ns/call | caller CPU ns/call | ns/call / direct | caller CPU / direct |"
    ));
    for call in ["getpid", "write", "pwrite64"] {
        assert!(
            stdout.contains(&format!("| {call} | direct | ")),
            "{stdout}"
        );
    }
    assert!(stdout.contains("| write | 8 | direct | "), "{stdout}");
    assert!(!stdout.contains("| FlexSC"), "{stdout}");
    let v = json_line(&stdout);
    assert_eq!(v["flexsc"], "--direct-only");
    assert_eq!(v["io_uring"], "--direct-only");
    assert_eq!(v["io_uring_sqpoll"], "--direct-only");
    // The caller's CPU time per call: present, and at most the wall time
    // of the same loop (a little slack for the two clocks' granularity).
    for row in v["per_call_ns"].as_array().unwrap() {
        let cpu = row["caller_cpu_ns"]["direct"]["median"].as_f64().unwrap();
        let wall = row["direct"]["max"].as_f64().unwrap();
        assert!(cpu >= 0.0 && cpu <= wall * 1.2 + 1000.0, "{row}");
        assert!(row["caller_cpu_ns"]["flexsc"].is_null());
    }
    assert_eq!(v["per_call_ns"].as_array().unwrap().len(), 3);
    assert_eq!(v["batched_calls_per_s"].as_array().unwrap().len(), 4);
    assert!(v["per_call_ns"][0]["direct"]["median"].as_f64().unwrap() > 0.0);
    let from_file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&j).unwrap()).unwrap();
    assert_eq!(from_file, v);
    let _ = std::fs::remove_file(&j);
    assert!(
        !std::path::Path::new(&f).exists(),
        "pwrite64 target left behind"
    );
}

#[test]
fn without_flexsc_direct_results_and_exit_1() {
    if !cfg!(target_arch = "arm") {
        eprintln!("SKIPPED: needs the armv7 build (FlexSC absent under qemu-user)");
        return;
    }
    let f = file("n.dat");
    let fa = format!("--file={f}");
    let mut args = SMALL.to_vec();
    args.push(&fa);
    let out = bench(&args);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("FlexSC"),
        "{}",
        text(&out.stderr)
    );
    // qemu-user has no io_uring either: with --uring=auto (the default)
    // the report says so, and that alone is no error.
    assert!(
        !text(&out.stderr).contains("io_uring"),
        "{}",
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    assert!(stdout.contains("FlexSC sync not measured:"), "{stdout}");
    assert!(
        stdout.contains("io_uring not measured: io_uring_setup failed"),
        "{stdout}"
    );
    let v = json_line(&stdout);
    assert!(v["per_call_ns"][0]["flexsc"].is_null());
    assert!(v["per_call_ns"][0]["io_uring_sqpoll"].is_null());
    assert!(v["per_call_ns"][0]["direct"]["median"].as_f64().unwrap() > 0.0);
    // --uring=require: its absence is an error, named.
    let mut args = SMALL.to_vec();
    args.extend([fa.as_str(), "--uring=require"]);
    let out = bench(&args);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("flexsc-bench: io_uring: io_uring_setup failed"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn usage_errors_exit_2() {
    for a in [&["--iters=0"][..], &["--workers-on=nowhere"], &["x"]] {
        let out = bench(a);
        assert_eq!(out.status.code(), Some(2), "{a:?}");
        assert!(text(&out.stderr).starts_with("flexsc-bench: "));
    }
    let out = bench(&["--help"]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("--workers-on=WHERE"));
    // A second CPU is needed for "other" (qemu-user shows the host's CPUs,
    // so only check that a bad list is refused).
    let out = bench(&[
        "--workers-on=63",
        "--direct-only",
        "--iters=1",
        "--repeats=1",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("not allowed"),
        "{}",
        text(&out.stderr)
    );
}
