//! The board smoke test, `/usr/bin/rtflex-smoke`, run short in the image:
//! the result bundle it writes (docs/result-bundle.md) is checked against
//! independent oracles (libc's `uname()` and `sysconf()`, `/proc` and
//! `/sys` read here, the system clock, a SHA-256 computed here, the test
//! binary's own `--list`, the JSON reports against their histograms), a
//! failing probe must fail the run and name itself, and bad options are
//! usage errors that write nothing.
//!
//! CI time: the smoke test's nested guest test run is limited to the
//! `kernel` binary (`--tests`) and its latency runs to a few seconds; on a
//! board it runs everything hardware-independent (`/etc/rtflex/smoke.conf`
//! lists the rest, this test among them).
#![cfg(feature = "guest")]

use guest_tests::TmpDir;
use serde_json::Value;
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

const SMOKE: &str = "/usr/bin/rtflex-smoke";
const TEST_DIR: &str = "/usr/lib/rtflex/tests";
const TRUSTED_DIR: &str = "/trusted";
/// The bundle format version this test knows (docs/result-bundle.md).
const BUNDLE_VERSION: u64 = 1;
/// The guest test binary the smoke test's nested run runs here.
const NESTED_TESTS: &str = "kernel";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs the smoke test with `args` and an optional directory put first in
/// PATH.
fn smoke(args: &[&str], path_first: Option<&Path>) -> Output {
    let mut c = Command::new(SMOKE);
    c.args(args);
    if let Some(dir) = path_first {
        let path = std::env::var("PATH").unwrap_or_default();
        c.env("PATH", format!("{}:{path}", dir.display()));
    }
    c.output()
        .unwrap_or_else(|e| panic!("cannot run {SMOKE}: {e}"))
}

fn describe(out: &Output) -> String {
    format!(
        "{} ({})\n--- stdout\n{}--- stderr\n{}",
        SMOKE,
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// The bundle directory named by the last line of the smoke test's
/// output, `rtflex-smoke: bundle: DIR.tar.gz`; checks that both exist.
fn bundle_of(out: &Output, parent: &Path) -> PathBuf {
    let stdout = text(&out.stdout);
    let last = stdout.lines().next_back().unwrap_or_default();
    let tarball = last
        .strip_prefix("rtflex-smoke: bundle: ")
        .unwrap_or_else(|| panic!("the last line does not name the bundle: {}", describe(out)));
    let dir = PathBuf::from(
        tarball
            .strip_suffix(".tar.gz")
            .unwrap_or_else(|| panic!("{tarball} is not a .tar.gz")),
    );
    assert_eq!(dir.parent(), Some(parent), "bundle outside --output-dir");
    assert!(Path::new(tarball).is_file(), "{tarball} missing");
    assert!(dir.is_dir(), "{} missing", dir.display());
    dir
}

fn json(dir: &Path, name: &str) -> Value {
    let p = dir.join(name);
    let t = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&t).unwrap_or_else(|e| panic!("{} does not parse: {e}\n{t}", p.display()))
}

fn read(p: impl AsRef<Path>) -> String {
    let p = p.as_ref();
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every file under `dir`, by path relative to it, with its content.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).expect("read_dir") {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).expect("under base");
                out.insert(rel.display().to_string(), std::fs::read(&p).expect("read"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

// ---------------------------------------------------------------------------
// Oracles computed here.

/// SHA-256 (FIPS 180-4), for the configuration hash of the header.
fn sha256(data: &[u8]) -> String {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for block in msg.chunks(64) {
        let mut w = [0u32; 64];
        for (i, word) in block.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *x = x.wrapping_add(y);
        }
    }
    h.iter().map(|x| format!("{x:08x}")).collect()
}

/// Seconds since the epoch of a UTC time written `YYYY-MM-DDTHH:MM:SSZ`.
fn epoch_of(date: &str) -> i64 {
    let n = |r: std::ops::Range<usize>| -> i64 {
        date.get(r)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("'{date}' is not YYYY-MM-DDTHH:MM:SSZ"))
    };
    assert!(
        date.len() == 20 && &date[4..5] == "-" && &date[10..11] == "T" && date.ends_with('Z'),
        "'{date}' is not YYYY-MM-DDTHH:MM:SSZ"
    );
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    // Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// libc's `uname()`: (release, version).
fn uname() -> (String, String) {
    // SAFETY: utsname is plain byte arrays; uname() fills it.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a writable utsname.
    assert_eq!(unsafe { libc::uname(&mut u) }, 0, "uname");
    let s = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f
            .iter()
            .take_while(|&&c| c != 0)
            .map(|c| c.to_ne_bytes()[0])
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    (s(&u.release), s(&u.version))
}

/// The value of kernel command line parameter `name` (None if absent).
fn cmdline_param(cmdline: &str, name: &str) -> Option<String> {
    cmdline
        .split_whitespace()
        .filter_map(|w| {
            if w == name {
                Some(String::new())
            } else {
                w.strip_prefix(name)
                    .and_then(|r| r.strip_prefix('='))
                    .map(str::to_string)
            }
        })
        .next_back()
}

/// The summary lines of a histogram file in cyclictest's format: the
/// bucket counts summed per thread, and the "# Total:" and
/// "# Histogram Overflows:" values per thread.
struct HistFile {
    bucket_sums: Vec<u64>,
    totals: Vec<u64>,
    overflows: Vec<u64>,
}

fn hist_file(t: &str) -> HistFile {
    let nums = |rest: &str| -> Vec<u64> {
        rest.split_whitespace()
            .map(|v| {
                v.parse()
                    .unwrap_or_else(|_| panic!("histogram value '{v}'"))
            })
            .collect()
    };
    let mut h = HistFile {
        bucket_sums: Vec::new(),
        totals: Vec::new(),
        overflows: Vec::new(),
    };
    for line in t.lines() {
        if let Some(r) = line.strip_prefix("# Total:") {
            h.totals = nums(r);
        } else if let Some(r) = line.strip_prefix("# Histogram Overflows:") {
            h.overflows = nums(r);
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let v = nums(line);
            if h.bucket_sums.is_empty() {
                h.bucket_sums = vec![0; v.len() - 1];
            }
            assert_eq!(v.len() - 1, h.bucket_sums.len(), "histogram line '{line}'");
            for (s, c) in h.bucket_sums.iter_mut().zip(&v[1..]) {
                *s += c;
            }
        }
    }
    h
}

/// The names of the tests of a guest test binary, from its own `--list`.
fn listed_tests(binary: &str) -> Vec<String> {
    let out = Command::new(format!("{TEST_DIR}/{binary}"))
        .arg("--list")
        .output()
        .expect("run --list");
    text(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_suffix(": test").map(str::to_string))
        .collect()
}

fn trusted_listing() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(TRUSTED_DIR)
        .expect("/trusted")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

// ---------------------------------------------------------------------------

#[test]
fn sha256_of_this_test_matches_the_standard_vectors() {
    // FIPS 180-2, appendix B.1 and B.2.
    assert_eq!(
        sha256(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        sha256(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
    );
    assert_eq!(epoch_of("2000-03-01T00:00:00Z"), 951_868_800);
}

#[test]
fn smoke_test_bundle_agrees_with_the_system() {
    let scratch = TmpDir::new("smoke-bundle");
    let duration = 2u64;
    let trusted_before = trusted_listing();
    let t0 = now();
    let out = smoke(
        &[
            &format!("--duration={duration}"),
            &format!("--tests={NESTED_TESTS}"),
            "--output-dir",
            scratch.dir().to_str().expect("utf-8 path"),
        ],
        None,
    );
    let t1 = now();
    assert!(out.status.success(), "{}", describe(&out));
    let dir = bundle_of(&out, scratch.dir());
    assert_eq!(
        trusted_listing(),
        trusted_before,
        "the KML probe stayed in /trusted"
    );

    // The archive holds exactly the directory, byte for byte.
    let unpacked = scratch.dir().join("unpacked");
    std::fs::create_dir(&unpacked).expect("mkdir");
    let tarball = format!("{}.tar.gz", dir.display());
    let st = Command::new("tar")
        .args(["-xzf", &tarball, "-C"])
        .arg(&unpacked)
        .status()
        .expect("tar");
    assert!(st.success(), "tar -xzf {tarball}");
    let name = dir.file_name().expect("name");
    assert_eq!(
        tree(&unpacked.join(name)),
        tree(&dir),
        "archive and directory differ"
    );

    // The header against the system.
    let h = json(&dir, "header.json");
    assert_eq!(h["format"], "rtflex-result-bundle");
    assert_eq!(h["version"], BUNDLE_VERSION);
    assert_eq!(h["kind"], "smoke");
    let (release, version) = uname();
    assert_eq!(h["kernel_release"], release.as_str());
    assert_eq!(h["kernel_version"], version.as_str());
    // SAFETY: sysconf has no preconditions.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    assert_eq!(h["cpus_online"], online as u64, "CPU count");
    let cmdline = read("/proc/cmdline");
    assert_eq!(h["cmdline"], cmdline.trim());
    let cs = read("/sys/devices/system/clocksource/clocksource0/current_clocksource");
    assert_eq!(h["clocksource"], cs.trim());
    // QEMU's virt machine has no model in its device tree.
    let model = std::fs::read_to_string("/proc/device-tree/model").ok();
    let want = model.map_or(Value::Null, |m| Value::from(m.trim_end_matches('\0')));
    assert_eq!(h["board_model"], want);
    let config = std::fs::read("/proc/config.gz").expect("/proc/config.gz");
    assert_eq!(h["config_gz_sha256"], sha256(&config).as_str());
    for p in ["isolcpus", "nohz_full", "rcu_nocbs", "irqaffinity"] {
        let want = cmdline_param(&cmdline, p).map_or(Value::Null, Value::from);
        assert_eq!(h["isolation"][p], want, "isolation.{p}");
    }
    // The guest tests run only under QEMU.
    assert_eq!(h["emulated"], true, "emulation not detected: {h}");
    assert!(
        !h["emulation_evidence"]
            .as_array()
            .expect("evidence")
            .is_empty(),
        "no evidence: {h}"
    );
    let date = epoch_of(h["date"].as_str().expect("date"));
    assert!(
        (t0 - 1..=t1).contains(&date),
        "date {} is not between the start ({t0}) and end ({t1}) of the run",
        h["date"]
    );
    assert_eq!(h["options"]["duration_s"], duration);
    assert_eq!(h["options"]["tests"], NESTED_TESTS);

    // The verdict: everything passed on the rtflex kernel.
    let r = json(&dir, "result.json");
    assert_eq!(r["status"], "passed", "{r}");
    assert_eq!(r["failures"], serde_json::json!([]));
    for p in ["preempt_rt", "kml", "flexsc", "vaddr_to_paddr"] {
        assert_eq!(r["probes"][p]["ok"], true, "probe {p}: {r}");
    }
    let kml = read(dir.join("probes/kml-sys.txt"));
    assert!(
        kml.lines().any(|l| l == "mode=sys"),
        "probes/kml-sys.txt: {kml}"
    );

    // Latency: each tool ran one thread per online CPU for the duration, at
    // the period asked for, and its JSON report and histogram file agree.
    let args = h["options"]["latency_args"].as_str().expect("latency_args");
    let words: Vec<&str> = args.split_whitespace().collect();
    let interval_us: u64 = words
        .iter()
        .position(|w| *w == "-i")
        .and_then(|i| words.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no -i in '{args}'"));
    let runs = r["latency"]["runs"].as_array().expect("runs");
    let tools: Vec<&str> = runs
        .iter()
        .map(|r| r["tool"].as_str().expect("tool"))
        .collect();
    assert_eq!(tools, ["rtlat", "cyclictest"]);
    for run in runs {
        let tool = run["tool"].as_str().expect("tool");
        assert_eq!(run["exit_status"], 0, "{tool}");
        let j = json(&dir, run["json"].as_str().expect("json"));
        let hist = hist_file(&read(
            dir.join(run["histogram"].as_str().expect("histogram")),
        ));
        assert_eq!(j["num_threads"], online as u64, "{tool} threads");
        for t in 0..online as usize {
            let th = &j["thread"][t.to_string()];
            let cycles = th["cycles"].as_u64().expect("cycles");
            let max = th["max"].as_u64().expect("max");
            // A cycle lasts one period, or up to its latency more when the
            // wake-up came after the next deadline (which is then skipped;
            // QEMU's sabrelite wakes up milliseconds late): at most
            // duration/period cycles, at least duration/(period + max),
            // less a tenth for the start-up.
            let most = duration * 1_000_000 / interval_us;
            let least = duration * 1_000_000 / (interval_us + max);
            assert!(
                cycles * 10 >= least * 9 && cycles <= most + 1,
                "{tool} thread {t}: {cycles} cycles in {duration} s at {interval_us} us, max {max} us"
            );
            let in_json: u64 = th["histogram"]
                .as_object()
                .expect("histogram")
                .values()
                .map(|v| v.as_u64().expect("count"))
                .sum();
            assert_eq!(hist.totals.get(t), Some(&in_json), "{tool}: # Total");
            assert_eq!(hist.bucket_sums.get(t), Some(&in_json), "{tool}: buckets");
            assert_eq!(
                in_json + hist.overflows.get(t).copied().unwrap_or(0),
                cycles,
                "{tool} thread {t}: every sample in the histogram or its overflows"
            );
        }
    }

    // The nested guest test run: every test of the selected binary passed
    // (its own --list is the oracle), every other binary was skipped.
    let log = read(dir.join("tests/results.log"));
    let listed = listed_tests(NESTED_TESTS);
    assert!(!listed.is_empty(), "{NESTED_TESTS} --list gave no tests");
    for t in &listed {
        assert!(
            log.lines().any(|l| l == format!("test {t} ... ok")),
            "{NESTED_TESTS}::{t} did not pass in the bundle's tests/results.log"
        );
    }
    let mut skips = 0;
    for e in std::fs::read_dir(TEST_DIR).expect("test dir") {
        let name = e.expect("entry").file_name().to_string_lossy().into_owned();
        if name != NESTED_TESTS {
            skips += 1;
            assert!(
                log.lines()
                    .any(|l| l == format!("rtflex-guest: skip {name}")),
                "{name} was not skipped"
            );
        }
    }
    assert_eq!(r["tests"]["passed"], listed.len() as u64);
    assert_eq!(r["tests"]["failed"], 0);
    // The smoke's own list (smoke.conf) may name single tests of the
    // selected binary too; each skip frame and ignored test counts once.
    let skip_frames = log
        .lines()
        .filter(|l| l.starts_with("rtflex-guest: skip "))
        .count();
    let ignored = log
        .lines()
        .filter(|l| l.starts_with("test ") && l.contains(" ... ignored"))
        .count();
    assert!(skip_frames >= skips);
    assert_eq!(r["tests"]["skipped"], (skip_frames + ignored) as u64);
    assert!(
        log.ends_with("rtflex-guest: end\n"),
        "the nested run did not end"
    );

    // summary.txt holds what the command printed, all but the last line.
    let stdout = text(&out.stdout);
    let printed: Vec<&str> = stdout.lines().collect();
    let summary = read(dir.join("summary.txt"));
    assert_eq!(
        summary.lines().collect::<Vec<_>>(),
        printed[..printed.len() - 1]
    );
    assert!(summary.contains("rtflex-smoke: PASSED"), "{summary}");
}

#[test]
fn a_failing_probe_fails_the_run_and_says_which() {
    let scratch = TmpDir::new("smoke-failing");
    // A flexsc-bench that fails as one on a kernel without FlexSC would:
    // the smoke test must report FlexSC as not working, exit 1 and still
    // write the whole bundle.
    let fake = scratch.dir().join("bin");
    std::fs::create_dir(&fake).expect("mkdir");
    let script = fake.join("flexsc-bench");
    std::fs::write(
        &script,
        "#!/bin/sh\necho 'flexsc-bench: flexsc_register: Function not implemented (os error 38)' >&2\nexit 1\n",
    )
    .expect("write");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let bundles = scratch.dir().join("out");
    let out = smoke(
        &[
            "--duration=1",
            &format!("--tests={NESTED_TESTS}"),
            &format!("--output-dir={}", bundles.display()),
        ],
        Some(&fake),
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stdout = text(&out.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("FlexSC") && l.contains("NO: flexsc-bench exited with 1")),
        "{}",
        describe(&out)
    );
    assert!(
        stdout.contains("rtflex-smoke: FAILED:"),
        "{}",
        describe(&out)
    );
    let dir = bundle_of(&out, &bundles);
    let r = json(&dir, "result.json");
    assert_eq!(r["status"], "failed");
    let failures = r["failures"].as_array().expect("failures");
    assert_eq!(failures.len(), 1, "{r}");
    let f = failures[0].as_str().expect("text");
    assert!(
        f.starts_with("FlexSC: ") && f.contains("Function not implemented"),
        "{f}"
    );
    assert_eq!(r["probes"]["flexsc"]["ok"], false);
    for p in ["preempt_rt", "kml", "vaddr_to_paddr"] {
        assert_eq!(r["probes"][p]["ok"], true, "probe {p}: {r}");
    }
    assert_eq!(r["tests"]["failed"], 0, "{r}");
}

#[test]
fn bad_options_and_non_root_are_refused_without_a_bundle() {
    let scratch = TmpDir::new("smoke-usage");
    let dir = scratch.dir().join("never");
    let dir_arg = format!("--output-dir={}", dir.display());
    for (args, says) in [
        (vec!["--duration=abc"], "--duration"),
        (vec!["--duration=0"], "--duration"),
        (vec!["--duration"], "needs a value"),
        (vec!["--tests=nosuch"], "nosuch"),
        (vec!["--tests=../kernel"], "not a test binary name"),
        (vec!["--bogus"], "--bogus"),
    ] {
        // The output directory first: an option without its value is last.
        let mut all = vec![dir_arg.as_str()];
        all.extend(&args);
        let out = smoke(&all, None);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", describe(&out));
        assert!(
            text(&out.stderr).contains(says),
            "{args:?}: {}",
            describe(&out)
        );
    }
    let out = Command::new(SMOKE)
        .arg(&dir_arg)
        .uid(guest_tests::NOBODY)
        .gid(guest_tests::NOBODY)
        .output()
        .expect("run as nobody");
    assert_eq!(out.status.code(), Some(2), "as nobody: {}", describe(&out));
    assert!(text(&out.stderr).contains("root"), "{}", describe(&out));
    assert!(!dir.exists(), "a refused run created {}", dir.display());
    let help = smoke(&["--help"], None);
    assert!(help.status.success() && text(&help.stdout).contains("--duration"));
}
