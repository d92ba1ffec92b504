//! The results: a Markdown table for people and one JSON line for tools.

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
    pub iters: u32,
    pub warmup: u32,
    pub repeats: u32,
    pub batch_calls: u32,
}

/// Cost per call of one system call (ns).
#[derive(Clone, Debug, PartialEq)]
pub struct PerCall {
    pub call: String,
    pub direct: Stats,
    /// `None` when FlexSC was not measured.
    pub flexsc: Option<Stats>,
}

/// Throughput of one system call in batches (calls/s).
#[derive(Clone, Debug, PartialEq)]
pub struct Batched {
    pub call: String,
    pub batch: usize,
    pub direct: Stats,
    pub flexsc: Option<Stats>,
}

/// Everything flexsc-bench measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub setup: Setup,
    /// `Ok` when FlexSC was measured, else why not.
    pub flexsc: Result<(), String>,
    pub per_call: Vec<PerCall>,
    pub batched: Vec<Batched>,
}

fn ratio(flexsc: Option<&Stats>, direct: &Stats) -> String {
    match flexsc {
        Some(f) if direct.median > 0.0 => format!("{:.2}", f.median / direct.median),
        _ => "n/a".into(),
    }
}

/// `median (min-max)` with `digits` decimals.
fn cell(s: Option<&Stats>, digits: usize) -> String {
    match s {
        Some(s) => format!("{:.d$} ({:.d$}-{:.d$})", s.median, s.min, s.max, d = digits),
        None => "n/a".into(),
    }
}

fn cpus(list: &[usize]) -> String {
    list.iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

impl Report {
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
             on CPU(s) {} ({}), {} syscall page(s), poll {} us. Median (min-max) of {} repeats; \
             cost per call: {} calls per repeat after {} warm-up calls; throughput: {} calls per \
             repeat.\n\n",
            s.release,
            s.online_cpus,
            s.bench_cpu,
            s.workers,
            cpus(&s.worker_cpus),
            s.placement,
            s.npages,
            s.poll_us,
            s.repeats,
            s.iters,
            s.warmup,
            s.batch_calls
        ));
        if let Err(why) = &self.flexsc {
            out.push_str(&format!("FlexSC not measured: {why}\n\n"));
        }
        out.push_str("| call | direct ns/call | FlexSC sync ns/call | FlexSC/direct |\n");
        out.push_str("|---|---:|---:|---:|\n");
        for p in &self.per_call {
            out.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                p.call,
                cell(Some(&p.direct), 0),
                cell(p.flexsc.as_ref(), 0),
                ratio(p.flexsc.as_ref(), &p.direct)
            ));
        }
        out.push('\n');
        out.push_str("| call | batch | direct calls/s | FlexSC calls/s | FlexSC/direct |\n");
        out.push_str("|---|---:|---:|---:|---:|\n");
        for b in &self.batched {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                b.call,
                b.batch,
                cell(Some(&b.direct), 0),
                cell(b.flexsc.as_ref(), 0),
                ratio(b.flexsc.as_ref(), &b.direct)
            ));
        }
        out
    }

    /// One line of JSON (no trailing newline), starting `{"flexsc_bench":1,`.
    pub fn json(&self) -> String {
        let s = &self.setup;
        let mut o = String::from("{\"flexsc_bench\":1");
        o.push_str(&format!(
            ",\"release\":{},\"online_cpus\":{},\"bench_cpu\":{},\"placement\":{},\
             \"worker_cpus\":[{}],\"workers\":{},\"npages\":{},\"poll_us\":{},\"iters\":{},\
             \"warmup\":{},\"repeats\":{},\"batch_calls\":{}",
            string(&s.release),
            s.online_cpus,
            s.bench_cpu,
            string(&s.placement),
            cpus(&s.worker_cpus),
            s.workers,
            s.npages,
            s.poll_us,
            s.iters,
            s.warmup,
            s.repeats,
            s.batch_calls
        ));
        o.push_str(",\"flexsc\":");
        match &self.flexsc {
            Ok(()) => o.push_str("\"ok\""),
            Err(why) => o.push_str(&string(why)),
        }
        o.push_str(",\"per_call_ns\":[");
        for (i, p) in self.per_call.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            o.push_str(&format!(
                "{{\"call\":{},\"direct\":{},\"flexsc\":{}}}",
                string(&p.call),
                stats(Some(&p.direct)),
                stats(p.flexsc.as_ref())
            ));
        }
        o.push_str("],\"batched_calls_per_s\":[");
        for (i, b) in self.batched.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            o.push_str(&format!(
                "{{\"call\":{},\"batch\":{},\"direct\":{},\"flexsc\":{}}}",
                string(&b.call),
                b.batch,
                stats(Some(&b.direct)),
                stats(b.flexsc.as_ref())
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

    fn report(flexsc: bool) -> Report {
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
                iters: 2000,
                warmup: 200,
                repeats: 5,
                batch_calls: 2048,
            },
            flexsc: if flexsc {
                Ok(())
            } else {
                Err("kernel without FlexSC".into())
            },
            per_call: vec![PerCall {
                call: "getpid".into(),
                direct: st(900.0, 1000.4, 1100.0),
                flexsc: flexsc.then(|| st(20000.0, 25000.0, 26000.0)),
            }],
            batched: vec![Batched {
                call: "write".into(),
                batch: 64,
                direct: st(400000.0, 500000.0, 510000.0),
                flexsc: flexsc.then(|| st(100.0, 250000.0, f64::INFINITY)),
            }],
        }
    }

    #[test]
    fn markdown_tables() {
        let md = report(true).markdown();
        assert!(md.starts_with("#### flexsc-bench: syscall threads on the other CPU\n"));
        assert!(md.contains("on CPU(s) 1 (other)"), "{md}");
        assert!(
            md.contains("| getpid | 1000 (900-1100) | 25000 (20000-26000) | 24.99 |\n"),
            "{md}"
        );
        assert!(
            md.contains("| write | 64 | 500000 (400000-510000) | 250000 (100-inf) | 0.50 |\n"),
            "{md}"
        );
        // Every table row has the header's number of columns.
        for table in md.split("\n\n").filter(|t| t.starts_with('|')) {
            let cols: Vec<usize> = table.lines().map(|l| l.matches('|').count()).collect();
            assert!(cols.iter().all(|&c| c == cols[0]), "{table}");
        }
        let md = report(false).markdown();
        assert!(md.contains("FlexSC not measured: kernel without FlexSC"));
        assert!(
            md.contains("| getpid | 1000 (900-1100) | n/a | n/a |"),
            "{md}"
        );
    }

    #[test]
    fn json_line_parses_and_has_the_numbers() {
        for flexsc in [true, false] {
            let j = report(flexsc).json();
            assert!(!j.contains('\n'));
            assert!(j.starts_with("{\"flexsc_bench\":1,"));
            let v: serde_json::Value =
                serde_json::from_str(&j).unwrap_or_else(|e| panic!("{e}: {j}"));
            assert_eq!(v["release"], "7.2.13-rt \"x\"");
            assert_eq!(v["worker_cpus"], serde_json::json!([1]));
            assert_eq!(v["per_call_ns"][0]["direct"]["median"], 1000.4);
            if flexsc {
                assert_eq!(v["flexsc"], "ok");
                assert_eq!(
                    v["batched_calls_per_s"][0]["flexsc"]["max"],
                    serde_json::Value::Null
                );
                assert_eq!(v["batched_calls_per_s"][0]["batch"], 64);
            } else {
                assert_eq!(v["flexsc"], "kernel without FlexSC");
                assert!(v["per_call_ns"][0]["flexsc"].is_null());
            }
        }
        assert_eq!(string("a\u{1}\t"), "\"a\\u0001\\t\"");
    }
}
