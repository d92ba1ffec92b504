//! Integration tests: run the real rtlat binary (under qemu-user when the
//! host is not ARM) and check its output against cyclictest 2.4.
//!
//! All runs use the default SCHED_OTHER policy so they work without
//! privileges; the FIFO path is exercised in the guest.

mod common;

use common::*;
use serde_json::Value;
use std::time::{Duration, Instant};

const FIXTURE_JSON_H: &str = include_str!("fixtures/cyclictest-2.40.json");
const FIXTURE_JSON_T2: &str = include_str!("fixtures/cyclictest-2.40-t2-H300.json");

/// JSON written by the real cyclictest with `args` (plus `--json=…`), or the
/// checked-in fixture of such a run when the oracle is not unpacked.
fn cyclictest_json(args: &[&str], fixture: &str) -> Value {
    let path = temp_path(&format!(
        "ct-{}.json",
        args.join("").replace(['-', ' '], "")
    ));
    let json_arg = format!("--json={}", path.display());
    let mut all: Vec<&str> = args.to_vec();
    all.push(&json_arg);
    if let Some(mut cmd) = cyclictest(&all) {
        let out = cmd.output().expect("cyclictest failed to start");
        assert!(out.status.success(), "cyclictest failed: {}", stderr(&out));
        let text = std::fs::read_to_string(&path).expect("cyclictest wrote no JSON");
        let _ = std::fs::remove_file(&path);
        eprintln!("oracle: live cyclictest {}", all.join(" "));
        return serde_json::from_str(&text).expect("cyclictest JSON does not parse");
    }
    eprintln!("oracle: {CT_SYSROOT} not available, using the checked-in cyclictest 2.40 fixture");
    serde_json::from_str(fixture).unwrap()
}

fn rtlat_json(args: &[&str], name: &str) -> (Value, String) {
    let path = temp_path(name);
    let json_arg = format!("--json={}", path.display());
    let mut all: Vec<&str> = args.to_vec();
    all.push(&json_arg);
    let out = run_rtlat(&all);
    assert!(out.status.success(), "rtlat failed: {}", stderr(&out));
    let text = std::fs::read_to_string(&path).expect("rtlat wrote no JSON");
    let _ = std::fs::remove_file(&path);
    let v = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("rtlat JSON does not parse: {e}\n{text}"));
    (v, stdout(&out))
}

#[test]
fn json_keys_equal_real_cyclictest() {
    let args = ["-l", "200", "-i", "1000", "-q", "-h", "50"];
    let (ours, _) = rtlat_json(&args, "keys.json");
    let theirs = cyclictest_json(&args, FIXTURE_JSON_H);
    assert_eq!(key_paths(&ours), key_paths(&theirs));
    // The odd keys are really there, and the values make sense.
    assert!(ours.get("cmdline:").is_some());
    assert_eq!(ours["rt_test_version:"], env!("CARGO_PKG_VERSION"));
    assert_eq!(ours["file_version"], 1);
    assert_eq!(ours["return_code"], 0);
    assert_eq!(ours["num_threads"], 1);
    assert_eq!(ours["resolution_in_ns"], 0);
    assert_eq!(ours["sysinfo"]["sysname"], "Linux");
    let t = &ours["thread"]["0"];
    assert_eq!(t["cycles"], 200);
    let (min, max) = (t["min"].as_i64().unwrap(), t["max"].as_i64().unwrap());
    let avg = t["avg"].as_f64().unwrap();
    assert!(0 <= min && min as f64 <= avg && avg <= max as f64, "{t}");
    assert!(check_histogram(&t["histogram"], 50) <= 200);
    check_histogram(&theirs["thread"]["0"]["histogram"], u64::MAX);
}

#[test]
fn json_keys_equal_real_cyclictest_two_threads_histofall() {
    let args = ["-t", "2", "-l", "100", "-i", "1000", "-q", "-H", "300"];
    let (ours, _) = rtlat_json(&args, "keys2.json");
    let theirs = cyclictest_json(&args, FIXTURE_JSON_T2);
    assert_eq!(key_paths(&ours), key_paths(&theirs));
    assert_eq!(ours["num_threads"], 2);
    for t in ["0", "1"] {
        assert_eq!(ours["thread"][t]["cycles"], 100);
        assert!(check_histogram(&ours["thread"][t]["histogram"], 300) <= 100);
        check_histogram(&theirs["thread"][t]["histogram"], u64::MAX);
    }
}

#[test]
fn json_to_stdout_in_ns() {
    let out = run_rtlat(&["-l", "20", "-i", "500", "-q", "-N", "--json=-"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let start = text.find("{\n").expect("no JSON on stdout");
    let end = text.rfind("}\n").unwrap() + 2;
    let v: Value = serde_json::from_str(&text[start..end]).unwrap();
    assert_eq!(v["resolution_in_ns"], 1);
    assert_eq!(v["thread"]["0"]["cycles"], 20);
    // ns values: no wake-up takes less than half a microsecond.
    assert!(v["thread"]["0"]["min"].as_i64().unwrap() > 500);
    // As in cyclictest, the quiet summary follows the JSON.
    let summary = &text[end..];
    assert!(summary.starts_with("T: 0 ("), "{summary}");
}

/// Parses a `T: …` status line into (thread, prio, interval, cycles, min, act, avg, max).
fn parse_stat(line: &str) -> [i64; 8] {
    let f: Vec<&str> = line
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ':')
        .filter(|s| !s.is_empty())
        .collect();
    let v = |k: &str| {
        f[f.iter()
            .position(|x| *x == k)
            .unwrap_or_else(|| panic!("{k} in {line}"))
            + 1]
        .parse()
        .unwrap()
    };
    [
        v("T"),
        v("P"),
        v("I"),
        v("C"),
        v("Min"),
        v("Act"),
        v("Avg"),
        v("Max"),
    ]
}

#[test]
fn quiet_summary_every_thread_runs_all_loops() {
    let out = run_rtlat(&["-t", "2", "-l", "100", "-i", "500", "-q"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("T:")).collect();
    assert_eq!(lines.len(), 2, "{text}");
    let re_shape = |l: &str| {
        // Same widths as cyclictest: "T:%2d (%5d) P:%2d I:%ld C:%7lu Min:%7ld Act:%5ld Avg:%5ld Max:%8ld"
        let c = l.find(" C:").unwrap();
        let min = l.find(" Min:").unwrap();
        assert_eq!(min - c, 3 + 7, "{l}");
        assert_eq!(l.len() - l.find(" Max:").unwrap(), 5 + 8, "{l}");
    };
    for (i, l) in lines.iter().enumerate() {
        re_shape(l);
        let [t, p, iv, c, min, _act, avg, max] = parse_stat(l);
        assert_eq!(t, i as i64);
        assert_eq!(p, 0);
        assert_eq!(iv, 500 + 500 * i as i64, "distance 500 per thread");
        assert_eq!(c, 100, "each thread runs all its loops");
        assert!(min <= avg && avg <= max);
    }
}

#[test]
fn own_cpu_time_only_when_asked() {
    // Default: neither the column nor the key (cyclictest's outputs).
    let (v, text) = rtlat_json(&["-l", "50", "-i", "500", "-q"], "nocpu.json");
    assert!(!text.contains("CPU/cycle"), "{text}");
    assert!(
        v["thread"]["0"].get("own_cpu_us_per_cycle").is_none(),
        "{v}"
    );
    // --own-cpu-time: a positive CPU time per cycle, below the period (the
    // thread sleeps most of each cycle), the same in both places.
    let (v, text) = rtlat_json(
        &["-t", "2", "-l", "50", "-i", "500", "-q", "--own-cpu-time"],
        "cpu.json",
    );
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("T:")).collect();
    assert_eq!(lines.len(), 2, "{text}");
    for (i, l) in lines.iter().enumerate() {
        let (stat, cpu) = l.split_once(" CPU/cycle:").expect(l);
        let max = v["thread"][i.to_string()]["max"].as_i64().unwrap();
        assert!(stat.ends_with(&format!("Max:{max:>8}")), "{l}");
        let us: f64 = cpu.trim().trim_end_matches("us").parse().expect(l);
        let js = v["thread"][i.to_string()]["own_cpu_us_per_cycle"]
            .as_f64()
            .expect("key");
        assert!((us - js).abs() < 0.01, "{us} vs {js}");
        assert!(us > 0.0 && us < 500.0 * 2.0, "{l}");
    }
}

#[test]
fn histogram_to_file_has_cyclictest_layout() {
    let path = temp_path("hist.txt");
    let hf = format!("--histfile={}", path.display());
    let out = run_rtlat(&[
        "-l", "100", "-i", "1000", "-q", "-h", "50", "-d", "100", &hf,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("distance is ignored and set to 0"));
    assert!(
        !stdout(&out).contains("# Histogram"),
        "histogram went to stdout"
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "# Histogram");
    let mut in_buckets = 0;
    for (i, l) in lines[1..51].iter().enumerate() {
        let (idx, count) = l.split_once(' ').unwrap();
        assert_eq!(idx, format!("{i:06}"));
        assert_eq!(count.len(), 6);
        in_buckets += count.parse::<u64>().unwrap();
    }
    let field = |prefix: &str| -> Vec<u64> {
        let l = lines
            .iter()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("{prefix} missing"));
        l[prefix.len()..]
            .split_whitespace()
            .map(|v| v.parse().unwrap())
            .collect()
    };
    assert_eq!(lines[51], format!("# Total: {in_buckets:09}"));
    let overflows = field("# Histogram Overflows:")[0];
    assert_eq!(in_buckets + overflows, 100);
    assert_eq!(field("# Min Latencies:").len(), 1);
    assert_eq!(field("# Avg Latencies:").len(), 1);
    assert_eq!(field("# Max Latencies:").len(), 1);
    assert!(lines.contains(&"# Histogram Overflow at cycle number:"));
    let t0 = lines.iter().find(|l| l.starts_with("# Thread 0:")).unwrap();
    let listed = t0.split(" # ").next().unwrap()["# Thread 0:".len()..]
        .split_whitespace()
        .count() as u64;
    assert_eq!(listed, overflows.min(50));
    assert!(text.ends_with("\n\n"));
}

#[test]
fn usage_errors_exit_2_with_a_message() {
    for args in [
        &["--bogus"][..],
        &["-n"],
        &["-i", "abc"],
        &["-p", "100"],
        &["--policy=fast"],
        &["-h", "0"],
        &["-a", "4096"],
        &["-D", "3x"],
        &["stray"],
    ] {
        let out = run_rtlat(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).starts_with("rtlat: "),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(stdout(&out).is_empty(), "{args:?} printed to stdout");
    }
    let out = run_rtlat(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("--histogram=US"));
}

#[test]
fn unwritable_json_path_fails_before_measuring() {
    let start = Instant::now();
    let out = run_rtlat(&["-D", "1h", "-q", "--json=/nonexistent-dir/x.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot create JSON file"));
    assert!(start.elapsed() < Duration::from_secs(20));
}

#[test]
fn duration_ends_the_run() {
    let start = Instant::now();
    let out = run_rtlat(&["-D", "2", "-i", "10000", "-q"]);
    let took = start.elapsed();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(30),
        "{took:?}"
    );
    let text = stdout(&out);
    let line = text.lines().find(|l| l.starts_with("T: 0")).unwrap();
    let c = parse_stat(line)[3];
    assert!(
        (20..=201).contains(&c),
        "{c} cycles of 10 ms in 2 s (missed periods are skipped on a loaded host)"
    );
}

#[test]
fn sigterm_stops_an_endless_run_cleanly() {
    let child = rtlat(&["-q", "-i", "1000", "-t", "2"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // qemu-user forwards the signal to the emulated program.
    // SAFETY: kill() with a valid pid of our own child and a signal number.
    let r = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(r, 0);
    let start = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(start.elapsed() < Duration::from_secs(10));
    assert!(out.status.success(), "{:?} {}", out.status, stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("T:")).collect();
    assert_eq!(lines.len(), 2, "{text}");
    for l in lines {
        assert!(parse_stat(l)[3] > 10, "{l}");
    }
}

#[test]
fn live_status_uses_cyclictest_screen_layout() {
    let out = run_rtlat(&["-l", "30", "-i", "1000", "-t", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("policy: other/other: loadavg: "), "{text}");
    // Each refresh moves the cursor up over the header, blank line and the
    // thread lines.
    assert!(text.contains("\x1b[4A"), "{text:?}");
    let last = text.rsplit("\x1b[4A").next().unwrap();
    let lines: Vec<&str> = last.lines().collect();
    assert!(lines[0].starts_with("policy: "));
    assert_eq!(lines[1], "");
    assert_eq!(parse_stat(lines[2])[3], 30);
    assert_eq!(parse_stat(lines[3])[3], 30);
}

#[test]
fn verbose_prints_every_sample() {
    let out = run_rtlat(&["-v", "-l", "25", "-i", "500"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let samples: Vec<(u64, u64, i64)> = text
        .lines()
        .filter(|l| l.len() == 26 && l.matches(':').count() == 2)
        .map(|l| {
            let f: Vec<&str> = l.split(':').map(str::trim).collect();
            (
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(samples.len(), 25, "{text}");
    for (i, (t, c, v)) in samples.iter().enumerate() {
        assert_eq!((*t, *c), (0, i as u64));
        assert!(*v >= 0);
    }
}

/// Syscall names (and the start of their arguments) in a `qemu-arm -strace`
/// log. QEMU 7.2 prefixes every syscall with the process id (the same for
/// all threads, not the thread id) and, when threads interleave, a new
/// syscall may start in the middle of a line after an unfinished one; so
/// this scans for every `<pid> <name>(` occurrence.
fn strace_events(log: &str) -> Vec<(String, String)> {
    let pid = log
        .lines()
        .find_map(|l| {
            l.split_whitespace()
                .next()
                .filter(|t| t.bytes().all(|b| b.is_ascii_digit()))
        })
        .expect("no strace output");
    let pat = format!("{pid} ");
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(off) = log[from..].find(&pat) {
        let at = from + off;
        from = at + pat.len();
        if at > 0 && log.as_bytes()[at - 1].is_ascii_alphanumeric() {
            continue;
        }
        let rest = &log[from..];
        let n = rest
            .bytes()
            .take_while(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
            .count();
        if n == 0 || rest.as_bytes().get(n) != Some(&b'(') {
            continue;
        }
        let args: String = rest[n + 1..]
            .chars()
            .take_while(|&c| c != '\n')
            .take(48)
            .collect();
        out.push((rest[..n].to_string(), args));
    }
    out
}

#[test]
fn measuring_loop_makes_only_clock_syscalls() {
    if !have_qemu_arm() {
        eprintln!("SKIPPED: qemu-arm is not installed, cannot trace syscalls");
        return;
    }
    if !cfg!(target_arch = "arm") {
        eprintln!("SKIPPED: qemu-arm -strace needs the armv7 build (cargo test --target armv7-unknown-linux-gnueabihf)");
        return;
    }
    let loops = 50;
    let out = std::process::Command::new("qemu-arm")
        .args([
            "-strace",
            "-L",
            ARM_SYSROOT,
            rtlat_bin(),
            "-t",
            "1",
            "-q",
            "-i",
            "1000",
            "-l",
        ])
        .arg(loops.to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let log = stderr(&out);
    let events = strace_events(&log);
    assert!(events.len() > 20, "strace format not understood:\n{log}");
    // The measuring thread's absolute sleeps: clock_nanosleep(CLOCK_MONOTONIC,
    // TIMER_ABSTIME = 1, …). The main thread's 10 ms status sleeps are
    // relative (flags 0) and may appear in between: they are clock_nanosleep
    // too and so allowed; any other syscall, by either thread, fails the test.
    let is_abs = |e: &(String, String)| {
        e.0.starts_with("clock_nanosleep") && e.1.starts_with("CLOCK_MONOTONIC,1,")
    };
    let first = events
        .iter()
        .position(is_abs)
        .expect("no absolute clock_nanosleep");
    let last = events.iter().rposition(is_abs).unwrap();
    assert_eq!(
        events.iter().filter(|e| is_abs(e)).count(),
        loops,
        "one absolute sleep per loop"
    );
    let window = &events[first..=last];
    let bad: Vec<&(String, String)> = window
        .iter()
        .filter(|(name, _)| {
            !(name.starts_with("clock_nanosleep") || name.starts_with("clock_gettime"))
        })
        .collect();
    assert!(
        bad.is_empty(),
        "syscalls inside the measuring loop: {bad:?}"
    );
    let gettimes = window
        .iter()
        .filter(|e| e.0.starts_with("clock_gettime"))
        .count();
    assert_eq!(gettimes, loops - 1, "one clock_gettime per wake-up");
    // The loop really is the measuring thread's: its set-up comes before it.
    let before: Vec<&str> = events[..first].iter().map(|e| e.0.as_str()).collect();
    assert!(
        before.contains(&"clone"),
        "thread not created before the loop"
    );
    assert!(before.contains(&"sched_setscheduler"));
    assert!(before.contains(&"sched_setaffinity"));
}

#[test]
fn io_file_gets_one_record_per_cycle_and_thread() {
    let path = temp_path("io.txt");
    let io = format!("--io-file={}", path.display());
    let out = run_rtlat(&[
        "-t",
        "2",
        "-l",
        "50",
        "-i",
        "1000",
        "-q",
        &io,
        "--io-size=32",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(text.len(), 2 * 50 * 32);
    let mut seen = [Vec::new(), Vec::new()];
    for line in text.lines() {
        assert_eq!(line.len(), 31, "{line:?}");
        let f: Vec<i64> = line.split(':').map(|v| v.trim().parse().unwrap()).collect();
        assert!(f[2] >= 0, "{line}");
        seen[f[0] as usize].push(f[1]);
    }
    for s in seen {
        // O_APPEND: the threads' records interleave but none is lost or torn.
        assert_eq!(s, (0..50).collect::<Vec<i64>>());
    }
    let lines: Vec<String> = stdout(&out)
        .lines()
        .filter(|l| l.starts_with("T:"))
        .map(String::from)
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| parse_stat(l)[3] == 50));
}

#[test]
fn io_pipe_run_completes() {
    let out = run_rtlat(&["-l", "200", "-i", "500", "-q", "--io-pipe", "--io-size=256"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let line = text.lines().find(|l| l.starts_with("T: 0")).unwrap();
    assert_eq!(parse_stat(line)[3], 200);
}

#[test]
fn io_errors() {
    let out = run_rtlat(&["-l", "10", "-q", "--io-file=/nonexistent-dir/io.txt"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot create I/O file"),
        "{}",
        stderr(&out)
    );
    let out = run_rtlat(&["-l", "10", "-q", "--io-size=300", "--io-pipe"]);
    assert_eq!(out.status.code(), Some(2));
}

/// qemu-user does not know the FlexSC system calls (ENOSYS), like a kernel
/// without them: rtlat must refuse, not fall back to direct writes.
#[test]
fn io_via_flexsc_without_flexsc_fails_clearly() {
    if !cfg!(target_arch = "arm") || runs_natively() {
        eprintln!("SKIPPED: needs the armv7 build under qemu-user (no FlexSC there)");
        return;
    }
    let out = run_rtlat(&["-l", "10", "-q", "--io-pipe", "--io-via=flexsc"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("--io-via=flexsc") && err.contains("FlexSC"),
        "{err}"
    );
    assert!(!stdout(&out).contains("T: 0"), "measured anyway");
}

/// `--io-via=io_uring` where the kernel has io_uring (a native host run):
/// every record of every thread lands in the file once, untorn; where it
/// has none (qemu-user, like a kernel without CONFIG_IO_URING), the run is
/// refused before measuring with the probe's reason, no silent direct write.
#[test]
fn io_via_io_uring_writes_every_record_or_fails_clearly() {
    let path = temp_path("io-uring.txt");
    let io = format!("--io-file={}", path.display());
    let args = [
        "-t",
        "2",
        "-l",
        "50",
        "-i",
        "1000",
        "-q",
        &io,
        "--io-via=io_uring",
    ];
    let out = run_rtlat(&args);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let _ = std::fs::remove_file(&path);
    // The test runs where rtlat runs (natively or under the same qemu-arm).
    match rtlat::uring_io::probe() {
        Ok(()) => {
            assert!(out.status.success(), "{}", stderr(&out));
            assert_eq!(text.len(), 2 * 50 * 64);
            let mut seen = [Vec::new(), Vec::new()];
            for line in text.lines() {
                assert_eq!(line.len(), 63, "{line:?}");
                let f: Vec<i64> = line.split(':').map(|v| v.trim().parse().unwrap()).collect();
                seen[f[0] as usize].push(f[1]);
            }
            for mut s in seen {
                s.sort_unstable();
                assert_eq!(s, (0..50).collect::<Vec<i64>>());
            }
        }
        Err(why) => {
            assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
            assert!(stderr(&out).contains(&why), "{}", stderr(&out));
            assert!(!stdout(&out).contains("T: 0"), "measured anyway");
            assert_eq!(text, "", "records written without io_uring");
        }
    }
}

/// The tests never run in SYS mode: `--io-via=kml` is refused before
/// measuring, saying why, and writes nothing through svc instead.
#[test]
fn io_via_kml_outside_sys_mode_fails_clearly() {
    let path = temp_path("io-kml.txt");
    let io = format!("--io-file={}", path.display());
    let out = run_rtlat(&["-l", "10", "-q", &io, "--io-via=kml"]);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let _ = std::fs::remove_file(&path);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("rtlat: --io-via=kml: "), "{err}");
    if cfg!(target_arch = "arm") {
        assert!(
            err.contains("not SYS mode") || err.contains("no Kernel Mode Linux"),
            "{err}"
        );
        assert!(err.contains("no fallback to svc"), "{err}");
    }
    assert!(!stdout(&out).contains("T: 0"), "measured anyway");
    assert_eq!(text, "", "records written without the trampoline");
}

#[test]
fn measuring_loop_with_direct_io_makes_only_clock_and_write_syscalls() {
    if !have_qemu_arm() || !cfg!(target_arch = "arm") {
        eprintln!("SKIPPED: needs qemu-arm and the armv7 build to trace syscalls");
        return;
    }
    let loops = 40;
    let out = std::process::Command::new("qemu-arm")
        .args([
            "-strace",
            "-L",
            ARM_SYSROOT,
            rtlat_bin(),
            "-q",
            "-i",
            "1000",
            "--io-file=/dev/null",
            "-l",
        ])
        .arg(loops.to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let events = strace_events(&stderr(&out));
    let is_abs = |e: &(String, String)| {
        e.0.starts_with("clock_nanosleep") && e.1.starts_with("CLOCK_MONOTONIC,1,")
    };
    let first = events.iter().position(is_abs).expect("no absolute sleep");
    let last = events.iter().rposition(is_abs).unwrap();
    let window = &events[first..=last];
    let bad: Vec<_> = window
        .iter()
        .filter(|(n, _)| {
            !(n.starts_with("clock_nanosleep") || n.starts_with("clock_gettime") || n == "write")
        })
        .collect();
    assert!(
        bad.is_empty(),
        "syscalls inside the measuring loop: {bad:?}"
    );
    // One 64-byte write per wake-up (the last one follows the last sleep).
    let writes: Vec<_> = window.iter().filter(|e| e.0 == "write").collect();
    assert_eq!(writes.len(), loops - 1, "{writes:?}");
    assert!(writes.iter().all(|w| w.1.contains(",64)")), "{writes:?}");
}
