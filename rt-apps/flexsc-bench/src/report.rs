//! The results: a Markdown table for people and one JSON line for tools.

use crate::calls::Measured;
use crate::stats::Stats;

/// How the run was set up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setup {
    pub release: String,
    pub online_cpus: usize,
    pub bench_cpu: usize,
    /// `same`, `other`, `all` or a CPU list.
    pub placement: String,
    pub worker_cpus: Vec<usize>,
    pub workers: u32,
    pub npages: u32,
    pub poll_us: u32,
    /// FlexSC completion protocol in force: `batch`, `original`, or `none`
    /// (not registered).
    pub protocol: String,
    /// CPU of the io_uring SQPOLL thread (`SQ_AFF`).
    pub sqpoll_cpu: usize,
    /// Idle time of the SQPOLL thread before it sleeps (ms).
    pub sqpoll_idle_ms: u32,
    pub iters: u32,
    pub warmup: u32,
    pub repeats: u32,
    pub batch_calls: u32,
}

/// A way of making the calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// `svc #0` through glibc's `syscall()`.
    Direct,
    /// Post one FlexSC entry, wait for it (a batch: post B, wait for B).
    FlexSc,
    /// io_uring, one `io_uring_enter` per call or batch (issues inline).
    Uring,
    /// io_uring with a kernel polling thread.
    UringSqpoll,
}

impl Path {
    /// Every path, in the order of the table rows.
    pub const ALL: [Path; 4] = [Path::Direct, Path::FlexSc, Path::Uring, Path::UringSqpoll];

    /// Key in the JSON line.
    pub fn key(self) -> &'static str {
        match self {
            Path::Direct => "direct",
            Path::FlexSc => "flexsc",
            Path::Uring => "io_uring",
            Path::UringSqpoll => "io_uring_sqpoll",
        }
    }

    /// Name in the tables.
    pub fn label(self, batched: bool) -> &'static str {
        match (self, batched) {
            (Path::Direct, _) => "direct",
            (Path::FlexSc, false) => "FlexSC sync",
            (Path::FlexSc, true) => "FlexSC",
            (Path::Uring, _) => "io_uring",
            (Path::UringSqpoll, _) => "io_uring SQPOLL",
        }
    }
}

/// Cost per call of one system call on each path measured: ns per call
/// (wall) and the caller's CPU ns per call.
#[derive(Clone, Debug, PartialEq)]
pub struct PerCall {
    pub call: String,
    /// The direct path first.
    pub results: Vec<(Path, Measured)>,
}

/// Throughput of one system call in batches: calls/s (wall) and the
/// caller's CPU ns per call.
#[derive(Clone, Debug, PartialEq)]
pub struct Batched {
    pub call: String,
    pub batch: usize,
    /// The direct path first.
    pub results: Vec<(Path, Measured)>,
}

/// Everything flexsc-bench measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub setup: Setup,
    /// Every path other than direct: `Ok` when it was measured, else why
    /// not.
    pub paths: Vec<(Path, Result<(), String>)>,
    pub per_call: Vec<PerCall>,
    pub batched: Vec<Batched>,
}

fn ratio(v: f64, direct: f64) -> String {
    if direct > 0.0 && v.is_finite() {
        format!("{:.2}", v / direct)
    } else {
        "n/a".into()
    }
}

/// `median (min-max)` with `digits` decimals.
fn cell(s: &Stats, digits: usize) -> String {
    format!("{:.d$} ({:.d$}-{:.d$})", s.median, s.min, s.max, d = digits)
}

fn cpus(list: &[usize]) -> String {
    list.iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn direct_of(results: &[(Path, Measured)]) -> Option<&Measured> {
    results
        .iter()
        .find(|(p, _)| *p == Path::Direct)
        .map(|(_, m)| m)
}

impl Report {
    /// The status of `path` (direct is always measured).
    pub fn status(&self, path: Path) -> Result<(), String> {
        if path == Path::Direct {
            return Ok(());
        }
        self.paths
            .iter()
            .find(|(p, _)| *p == path)
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| Err("not run".into()))
    }

    /// The Markdown section: a header paragraph and two tables.
    pub fn markdown(&self) -> String {
        let s = &self.setup;
        let mut out = String::new();
        out.push_str(&format!(
            "#### flexsc-bench: syscall threads on the {} CPU\n\n",
            match s.placement.as_str() {
                "same" => "same".to_string(),
                "other" => "other".to_string(),
                "all" => "every".to_string(),
                l => format!("listed ({l})"),
            }
        ));
        out.push_str(&format!(
            "Linux {}, {} CPU(s) online; bench thread on CPU {}; FlexSC: {} syscall thread(s) \
             on CPU(s) {} ({}), {} syscall page(s), poll {} us, {} protocol; io_uring SQPOLL: polling thread \
             on CPU {}, idle {} ms (io_uring's unit; FlexSC's poll is in us). Median (min-max) \
             of {} repeats; cost per call: {} calls per repeat after {} warm-up calls; \
             throughput: {} calls per repeat. \"caller CPU\" is the bench thread's own CPU \
             time (CLOCK_THREAD_CPUTIME_ID) per call, read around the same loops: what the \
             posting thread pays, without the syscall or polling threads' work. io_uring's \
             getpid rows are IORING_OP_NOP (the floor of a call through the ring). \
             Every result is checked (pid, 0 for a NOP, 64 bytes written).\n\n",
            s.release,
            s.online_cpus,
            s.bench_cpu,
            s.workers,
            cpus(&s.worker_cpus),
            s.placement,
            s.npages,
            s.poll_us,
            s.protocol,
            s.sqpoll_cpu,
            s.sqpoll_idle_ms,
            s.repeats,
            s.iters,
            s.warmup,
            s.batch_calls
        ));
        for (path, status) in &self.paths {
            if let Err(why) = status {
                out.push_str(&format!("{} not measured: {why}\n\n", path.label(false)));
            }
        }
        out.push_str(
            "| call | path | ns/call | caller CPU ns/call | ns/call / direct | caller CPU / direct |\n",
        );
        out.push_str("|---|---|---:|---:|---:|---:|\n");
        for p in &self.per_call {
            let d = direct_of(&p.results);
            for (path, m) in &p.results {
                out.push_str(&format!(
                    "| {} | {} | {} | {} | {} | {} |\n",
                    p.call,
                    path.label(false),
                    cell(&m.wall, 0),
                    cell(&m.cpu, 0),
                    d.map_or("n/a".into(), |d| ratio(m.wall.median, d.wall.median)),
                    d.map_or("n/a".into(), |d| ratio(m.cpu.median, d.cpu.median)),
                ));
            }
        }
        out.push('\n');
        out.push_str(
            "| call | batch | path | calls/s | caller CPU ns/call | calls/s / direct | caller CPU / direct |\n",
        );
        out.push_str("|---|---:|---|---:|---:|---:|---:|\n");
        for b in &self.batched {
            let d = direct_of(&b.results);
            for (path, m) in &b.results {
                out.push_str(&format!(
                    "| {} | {} | {} | {} | {} | {} | {} |\n",
                    b.call,
                    b.batch,
                    path.label(true),
                    cell(&m.wall, 0),
                    cell(&m.cpu, 0),
                    d.map_or("n/a".into(), |d| ratio(m.wall.median, d.wall.median)),
                    d.map_or("n/a".into(), |d| ratio(m.cpu.median, d.cpu.median)),
                ));
            }
        }
        out
    }

    /// One line of JSON (no trailing newline), starting `{"flexsc_bench":1,`.
    /// Per path (`direct`, `flexsc`, `io_uring`, `io_uring_sqpoll`): the
    /// wall figure, and under `caller_cpu_ns` the caller's CPU ns per call;
    /// `null` for a path not measured, whose top-level key says why.
    pub fn json(&self) -> String {
        let s = &self.setup;
        let mut o = String::from("{\"flexsc_bench\":1");
        o.push_str(&format!(
            ",\"release\":{},\"online_cpus\":{},\"bench_cpu\":{},\"placement\":{},\
             \"worker_cpus\":[{}],\"workers\":{},\"npages\":{},\"poll_us\":{},\"protocol\":{},\
             \"sqpoll_cpu\":{},\"sqpoll_idle_ms\":{},\"iters\":{},\
             \"warmup\":{},\"repeats\":{},\"batch_calls\":{}",
            string(&s.release),
            s.online_cpus,
            s.bench_cpu,
            string(&s.placement),
            cpus(&s.worker_cpus),
            s.workers,
            s.npages,
            s.poll_us,
            string(&s.protocol),
            s.sqpoll_cpu,
            s.sqpoll_idle_ms,
            s.iters,
            s.warmup,
            s.repeats,
            s.batch_calls
        ));
        for path in &Path::ALL[1..] {
            o.push_str(&format!(",{}:", string(path.key())));
            match self.status(*path) {
                Ok(()) => o.push_str("\"ok\""),
                Err(why) => o.push_str(&string(&why)),
            }
        }
        let paths = |results: &[(Path, Measured)]| {
            let get = |path: Path| results.iter().find(|(p, _)| *p == path).map(|(_, m)| m);
            let mut wall = String::new();
            let mut cpu = String::new();
            for (i, path) in Path::ALL.iter().enumerate() {
                let m = get(*path);
                let sep = if i > 0 { "," } else { "" };
                wall.push_str(&format!(
                    ",{}:{}",
                    string(path.key()),
                    stats(m.map(|m| &m.wall))
                ));
                cpu.push_str(&format!(
                    "{sep}{}:{}",
                    string(path.key()),
                    stats(m.map(|m| &m.cpu))
                ));
            }
            format!("{wall},\"caller_cpu_ns\":{{{cpu}}}")
        };
        o.push_str(",\"per_call_ns\":[");
        for (i, p) in self.per_call.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            o.push_str(&format!(
                "{{\"call\":{}{}}}",
                string(&p.call),
                paths(&p.results)
            ));
        }
        o.push_str("],\"batched_calls_per_s\":[");
        for (i, b) in self.batched.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            o.push_str(&format!(
                "{{\"call\":{},\"batch\":{}{}}}",
                string(&b.call),
                b.batch,
                paths(&b.results)
            ));
        }
        o.push_str("]}");
        o
    }
}

/// A JSON number (finite; anything else is `null`).
fn number(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.1}")
    } else {
        "null".into()
    }
}

fn stats(s: Option<&Stats>) -> String {
    match s {
        Some(s) => format!(
            "{{\"min\":{},\"median\":{},\"max\":{},\"n\":{}}}",
            number(s.min),
            number(s.median),
            number(s.max),
            s.n
        ),
        None => "null".into(),
    }
}

/// A JSON string literal.
pub fn string(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(min: f64, median: f64, max: f64) -> Stats {
        Stats {
            min,
            median,
            max,
            n: 5,
        }
    }

    fn m(wall: Stats, cpu: Stats) -> Measured {
        Measured { wall, cpu }
    }

    fn report(others: bool) -> Report {
        let mut pc = vec![(
            Path::Direct,
            m(st(900.0, 1000.4, 1100.0), st(800.0, 900.0, 1000.0)),
        )];
        let mut bt = vec![(
            Path::Direct,
            m(st(400000.0, 500000.0, 510000.0), st(1.0, 2000.0, 3.0)),
        )];
        if others {
            pc.push((
                Path::FlexSc,
                m(st(20000.0, 25000.0, 26000.0), st(400.0, 450.0, 500.0)),
            ));
            pc.push((Path::UringSqpoll, m(st(1.0, 2.0, 3.0), st(1.0, 1.0, 1.0))));
            bt.push((
                Path::FlexSc,
                m(st(100.0, 250000.0, f64::INFINITY), st(1.0, 1000.0, 3.0)),
            ));
        }
        Report {
            setup: Setup {
                release: "7.2.13-rt \"x\"".into(),
                online_cpus: 2,
                bench_cpu: 0,
                placement: "other".into(),
                worker_cpus: vec![1],
                workers: 1,
                npages: 2,
                poll_us: 0,
                protocol: "batch".into(),
                sqpoll_cpu: 1,
                sqpoll_idle_ms: 1,
                iters: 2000,
                warmup: 200,
                repeats: 5,
                batch_calls: 2048,
            },
            paths: if others {
                vec![
                    (Path::FlexSc, Ok(())),
                    (Path::Uring, Err("io_uring_setup: ENOSYS".into())),
                    (Path::UringSqpoll, Ok(())),
                ]
            } else {
                vec![
                    (Path::FlexSc, Err("kernel without FlexSC".into())),
                    (Path::Uring, Err("--uring=off".into())),
                    (Path::UringSqpoll, Err("--uring=off".into())),
                ]
            },
            per_call: vec![PerCall {
                call: "getpid".into(),
                results: pc,
            }],
            batched: vec![Batched {
                call: "write".into(),
                batch: 64,
                results: bt,
            }],
        }
    }

    #[test]
    fn markdown_tables() {
        let md = report(true).markdown();
        assert!(md.starts_with("#### flexsc-bench: syscall threads on the other CPU\n"));
        assert!(md.contains("on CPU(s) 1 (other)"), "{md}");
        assert!(md.contains("polling thread on CPU 1, idle 1 ms"), "{md}");
        assert!(
            md.contains("io_uring not measured: io_uring_setup: ENOSYS\n"),
            "{md}"
        );
        assert!(
            md.contains("| getpid | direct | 1000 (900-1100) | 900 (800-1000) | 1.00 | 1.00 |\n"),
            "{md}"
        );
        assert!(
            md.contains(
                "| getpid | FlexSC sync | 25000 (20000-26000) | 450 (400-500) | 24.99 | 0.50 |\n"
            ),
            "{md}"
        );
        assert!(
            md.contains("| getpid | io_uring SQPOLL | 2 (1-3) | 1 (1-1) | 0.00 | 0.00 |\n"),
            "{md}"
        );
        assert!(
            md.contains("| write | 64 | FlexSC | 250000 (100-inf) | 1000 (1-3) | 0.50 | 0.50 |\n"),
            "{md}"
        );
        // Every table row has the header's number of columns.
        for table in md.split("\n\n").filter(|t| t.starts_with('|')) {
            let cols: Vec<usize> = table.lines().map(|l| l.matches('|').count()).collect();
            assert!(cols.iter().all(|&c| c == cols[0]), "{table}");
        }
        let md = report(false).markdown();
        assert!(md.contains("FlexSC sync not measured: kernel without FlexSC"));
        assert!(md.contains("io_uring SQPOLL not measured: --uring=off"));
        assert!(!md.contains("| getpid | FlexSC"), "{md}");
        assert_eq!(md.matches("| getpid | ").count(), 1, "{md}");
    }

    #[test]
    fn json_line_parses_and_has_the_numbers() {
        for others in [true, false] {
            let j = report(others).json();
            assert!(!j.contains('\n'));
            assert!(j.starts_with("{\"flexsc_bench\":1,"));
            let v: serde_json::Value =
                serde_json::from_str(&j).unwrap_or_else(|e| panic!("{e}: {j}"));
            assert_eq!(v["release"], "7.2.13-rt \"x\"");
            assert_eq!(v["worker_cpus"], serde_json::json!([1]));
            assert_eq!(v["sqpoll_idle_ms"], 1);
            assert_eq!(v["per_call_ns"][0]["direct"]["median"], 1000.4);
            assert_eq!(
                v["per_call_ns"][0]["caller_cpu_ns"]["direct"]["median"],
                900.0
            );
            if others {
                assert_eq!(v["flexsc"], "ok");
                assert_eq!(v["io_uring"], "io_uring_setup: ENOSYS");
                assert_eq!(v["io_uring_sqpoll"], "ok");
                assert!(v["per_call_ns"][0]["io_uring"].is_null());
                assert_eq!(v["per_call_ns"][0]["io_uring_sqpoll"]["max"], 3.0);
                assert_eq!(
                    v["per_call_ns"][0]["caller_cpu_ns"]["flexsc"]["median"],
                    450.0
                );
                assert_eq!(
                    v["batched_calls_per_s"][0]["flexsc"]["max"],
                    serde_json::Value::Null
                );
                assert_eq!(v["batched_calls_per_s"][0]["batch"], 64);
            } else {
                assert_eq!(v["flexsc"], "kernel without FlexSC");
                assert!(v["per_call_ns"][0]["flexsc"].is_null());
                assert!(v["per_call_ns"][0]["caller_cpu_ns"]["flexsc"].is_null());
            }
        }
        assert_eq!(string("a\u{1}\t"), "\"a\\u0001\\t\"");
    }
}
