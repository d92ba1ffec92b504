//! The latency lab's runner, `/usr/libexec/rtflex/lab` (docs/latency-lab.md),
//! on a two-load by two-tool matrix of one second per cell: the bundle it
//! writes is checked against independent oracles (the kernel's release
//! from /proc/sys/kernel/osrelease, `sysconf()`'s CPU count, /proc/cmdline,
//! each run's JSON report against its histogram file and the cell's
//! length), its loads are gone when it ends (no process of theirs is left
//! in /proc), and bad options are usage errors that write nothing. The
//! numbers themselves are the lab report's business, not this test's.
//!
//! CI time: about 8 s of guest time (4 cells of 1 s, a second for the
//! hackbench load to start and one to stop, each).
#![cfg(feature = "guest")]

use guest_tests::TmpDir;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

const LAB: &str = "/usr/libexec/rtflex/lab";
/// The bundle format version the runner writes (docs/result-bundle.md).
const BUNDLE_VERSION: u64 = 3;
const LOADS: [&str; 2] = ["idle", "hackbench"];
const TOOLS: [&str; 2] = ["cyclictest", "rtlat"];
const SECONDS: u64 = 1;
/// The runner's default period (us).
const INTERVAL_US: u64 = 1000;

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn json(path: &Path) -> Value {
    let text = read(path);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()))
}

/// The processes whose command name is one of `names`: (pid, name).
fn processes_named(names: &[&str]) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(comm) = std::fs::read_to_string(e.path().join("comm")) {
            let comm = comm.trim().to_string();
            if names.contains(&comm.as_str()) {
                out.push((pid, comm));
            }
        }
    }
    out
}

/// Per thread column, its non-empty (bucket, count) pairs.
type Columns = Vec<Vec<(u64, u64)>>;
/// The summary lines: key, a value per thread.
type Summary = Vec<(String, Vec<u64>)>;

/// The buckets and summary lines of a --histfile histogram in cyclictest's
/// text format.
fn histogram(text: &str) -> (Columns, Summary) {
    let mut columns: Columns = Vec::new();
    let mut summary = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix('#') {
            if let Some((key, values)) = rest.split_once(':') {
                let v: Vec<u64> = values
                    .split_whitespace()
                    .filter_map(|w| w.parse().ok())
                    .collect();
                if !v.is_empty() {
                    summary.push((key.trim().to_string(), v));
                }
            }
            continue;
        }
        let words: Vec<u64> = line
            .split_whitespace()
            .map(|w| w.parse().expect(line))
            .collect();
        if words.len() < 2 {
            continue;
        }
        columns.resize(words.len() - 1, Vec::new());
        for (t, &count) in words[1..].iter().enumerate() {
            if count > 0 {
                columns[t].push((words[0], count));
            }
        }
    }
    (columns, summary)
}

#[test]
fn the_runner_writes_a_bundle_of_its_matrix_and_stops_its_loads() {
    let dir = TmpDir::new("lab-matrix");
    // The runner succeeded; its last line names the archive, the
    // bundle directory is beside it.
    let bundle = guest_tests::run_lab(&[
        &format!("--loads={}", LOADS.join(",")),
        &format!("--tools={}", TOOLS.join(",")),
        &format!("--duration={SECONDS}"),
        "--label=guest-test",
        &format!("--output-dir={}", dir.dir().display()),
    ]);
    assert!(
        bundle.starts_with(dir.dir())
            && bundle
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("rtflex-lab-guest-test-")
    );

    // The loads were stopped: nothing of theirs is left running.
    let left = processes_named(&["hackbench"]);
    assert!(left.is_empty(), "load processes left running: {left:?}");

    let h = json(&bundle.join("header.json"));
    assert_eq!(h["format"], "rtflex-result-bundle");
    assert_eq!(h["version"], BUNDLE_VERSION);
    assert_eq!(h["kind"], "lab");
    assert_eq!(
        h["kernel_release"],
        read(Path::new("/proc/sys/kernel/osrelease")).trim()
    );
    // SAFETY: sysconf has no preconditions.
    let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) } as u64;
    assert_eq!(h["cpus_online"], cpus);
    assert_eq!(h["cmdline"], read(Path::new("/proc/cmdline")).trim());
    let o = &h["options"];
    assert_eq!(o["label"], "guest-test");
    assert_eq!(o["duration_s"], SECONDS);
    assert!(o["loops"].is_null());
    // (serde_json's objects keep their keys sorted; the order the cells ran
    // in is the runs' below.)
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().expect("an object").keys().cloned().collect();
        k.sort();
        k
    };
    let sorted = |a: &[&str]| {
        let mut v: Vec<String> = a.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    };
    assert_eq!(keys(&o["loads"]), sorted(&LOADS));
    assert_eq!(keys(&o["tools"]), sorted(&TOOLS));
    assert!(o["loads"]["hackbench"]
        .as_str()
        .unwrap()
        .contains("hackbench"));

    let r = json(&bundle.join("result.json"));
    assert_eq!(r["status"], "passed", "{r}");
    let runs = r["latency"]["runs"].as_array().expect("runs");
    let names: Vec<&str> = runs.iter().map(|x| x["name"].as_str().unwrap()).collect();
    let want: Vec<String> = LOADS
        .iter()
        .flat_map(|l| TOOLS.iter().map(move |t| format!("{l}-{t}")))
        .collect();
    assert_eq!(names, want);
    for run in runs {
        let name = run["name"].as_str().unwrap();
        assert_eq!(run["status"], "ran", "{run}");
        assert_eq!(run["exit_status"], 0);
        assert_eq!(run["load_alive"], true);
        let tool = run["tool"].as_str().unwrap();
        assert!(run["command"].as_str().unwrap().starts_with(&format!(
            "{} ",
            if tool == "rtlat" {
                "rtlat"
            } else {
                "cyclictest"
            }
        )));
        // The report and its histogram agree, thread by thread, and the
        // samples fit the cell's length: duration/(period + max) up to
        // duration/period (a wake-up later than the next deadline skips it).
        let report = json(&bundle.join(run["json"].as_str().unwrap()));
        let (columns, summary) = histogram(&read(&bundle.join(run["histogram"].as_str().unwrap())));
        let threads = report["thread"].as_object().expect("threads");
        assert_eq!(threads.len() as u64, cpus, "{name}: one thread per CPU");
        assert_eq!(
            columns.len() as u64,
            cpus,
            "{name}: one histogram column per thread"
        );
        let overflows = &summary
            .iter()
            .find(|(k, _)| k == "Histogram Overflows")
            .expect("overflows")
            .1;
        for (t, col) in columns.iter().enumerate() {
            let th = &threads[&t.to_string()];
            let in_json: Vec<(u64, u64)> = {
                let mut v: Vec<(u64, u64)> = th["histogram"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, c)| (k.parse().unwrap(), c.as_u64().unwrap()))
                    .collect();
                v.sort();
                v
            };
            assert_eq!(col, &in_json, "{name} thread {t}: histogram file vs JSON");
            let cycles = th["cycles"].as_u64().unwrap();
            let max = th["max"].as_u64().unwrap();
            assert_eq!(
                col.iter().map(|(_, c)| c).sum::<u64>() + overflows[t],
                cycles,
                "{name} thread {t}"
            );
            let most = SECONDS * 1_000_000 / INTERVAL_US;
            let least = SECONDS * 1_000_000 / (INTERVAL_US + max) * 9 / 10;
            assert!(
                (least..=most + 1).contains(&cycles),
                "{name} thread {t}: {cycles} samples, expected {least}..{most}"
            );
            assert!(th["min"].as_u64().unwrap() <= max);
        }
    }
}

/// The rtlat cells with io_uring and Kernel Mode Linux I/O, idle, 1 s each:
/// both run (the image's kernel has io_uring and KML), rtlat-kml from the
/// copy the runner puts into /trusted, which is gone again afterwards (the
/// image keeps /trusted empty: tests/kml.rs), and their reports count the
/// cell's wake-ups. That the writes happen, and in SYS mode, is
/// tests/rtlat.rs's business. CI time: about 4 s of guest time.
#[test]
fn the_io_uring_and_kml_cells_run_and_leave_trusted_as_it_was() {
    let trusted_before = std::fs::read_dir("/trusted")
        .map(|d| d.count())
        .expect("/trusted");
    let dir = TmpDir::new("lab-io");
    // Every 10 ms on the debug variants (guest_tests::lab_interval_us):
    // rtlat's io_uring path drops a record, and fails the cell, when all
    // 64 of its writes are in flight; 64 periods of 10 ms leave room for
    // the stalls seen there.
    let interval_us = guest_tests::lab_interval_us();
    // The runner succeeded; its last line names the archive, the
    // bundle directory is beside it.
    let bundle = guest_tests::run_lab(&[
        "--loads=idle",
        "--tools=rtlat-io_uring,rtlat-kml",
        &format!("--interval={interval_us}"),
        &format!("--duration={SECONDS}"),
        "--label=guest-test-io",
        &format!("--output-dir={}", dir.dir().display()),
    ]);
    let r = json(&bundle.join("result.json"));
    let runs = r["latency"]["runs"].as_array().expect("runs");
    let got: Vec<(&str, &str, &str)> = runs
        .iter()
        .map(|x| {
            (
                x["name"].as_str().unwrap(),
                x["io"].as_str().unwrap(),
                x["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("idle-rtlat-io_uring", "io_uring", "ran"),
            ("idle-rtlat-kml", "kml", "ran")
        ],
        "{r}"
    );
    let kml_cmd = runs[1]["command"].as_str().unwrap();
    assert!(
        kml_cmd.starts_with("/trusted/rtlat-lab ") && kml_cmd.contains("--io-via=kml"),
        "{kml_cmd}"
    );
    for run in runs {
        let report = json(&bundle.join(run["json"].as_str().unwrap()));
        let cycles = report["thread"]["0"]["cycles"].as_u64().unwrap();
        let max = report["thread"]["0"]["max"].as_u64().unwrap();
        // The cell ran for about its duration at the interval: at least
        // half the wake-ups (80 % failed on imx6q-sabrelite: 797 in 1 s;
        // its emulated timer has outliers, and the I/O path's setup comes
        // out of the same duration), never more than the interval allows.
        let most = SECONDS * 1_000_000 / interval_us;
        assert!(
            (most / 2..=most + 1).contains(&cycles),
            "{}: {cycles} wake-ups in {SECONDS} s (max latency {max} us), expected {}..{most}",
            run["name"],
            most / 2
        );
    }
    assert!(
        !Path::new("/trusted/rtlat-lab").exists(),
        "the runner left its trusted rtlat"
    );
    assert_eq!(
        std::fs::read_dir("/trusted").unwrap().count(),
        trusted_before,
        "/trusted changed"
    );
}

#[test]
fn bad_options_are_usage_errors_that_write_nothing() {
    let dir = TmpDir::new("lab-usage");
    for (args, message) in [
        (vec!["--loads=idle,nothing"], "unknown load 'nothing'"),
        (vec!["--tools=oslat"], "unknown tool 'oslat'"),
        (vec!["--loops=10", "--duration=1"], "exclude each other"),
        (vec!["--duration=0"], "is not a positive number"),
        (vec!["--label=a/b"], "letters, digits"),
        (vec!["--frobnicate"], "unknown argument"),
    ] {
        let out = Command::new(LAB)
            .args(&args)
            .arg(format!("--output-dir={}", dir.dir().display()))
            .output()
            .expect("run the lab");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(message), "{args:?}: {err}");
    }
    let written: Vec<_> = std::fs::read_dir(dir.dir()).unwrap().collect();
    assert!(written.is_empty(), "a usage error wrote {written:?}");
}
