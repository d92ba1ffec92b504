//! Output in cyclictest 2.4's formats: the status line, the text histogram
//! and the JSON result file.
//!
//! The JSON is written by hand (no serde in the binary) with the same keys,
//! nesting and layout as `rt_write_json()` + cyclictest's `write_stats()`,
//! including the keys that literally end in a colon (`"cmdline:"`,
//! `"rt_test_version:"`). Unlike cyclictest, strings are escaped and a thread
//! without samples gets `"min": 0` and `"avg": 0.00` instead of `nan`, so the
//! file is always valid JSON.

use crate::rt::Uname;
use crate::stats::{Histogram, Summary};
use std::fmt::Write as _;
use std::io::{self, Write};

/// Final data of one measuring thread.
#[derive(Clone, Debug, PartialEq)]
pub struct ThreadReport {
    pub index: usize,
    pub tid: i32,
    pub priority: i32,
    pub interval_us: u32,
    pub summary: Summary,
    /// CPU the thread was pinned to.
    pub cpu: i64,
    /// NUMA node of that CPU, -1 without NUMA.
    pub node: i32,
    pub histogram: Option<Histogram>,
    /// With `--own-cpu-time`: the thread's own CPU time per cycle (us,
    /// `CLOCK_THREAD_CPUTIME_ID` over the loop / cycles); `None` keeps every
    /// output exactly cyclictest's.
    pub own_cpu_us_per_cycle: Option<f64>,
}

/// The `--own-cpu-time` addition to a [`stat_line`] (empty without it).
pub fn own_cpu_suffix(us_per_cycle: Option<f64>) -> String {
    match us_per_cycle {
        Some(v) => format!(" CPU/cycle:{v:8.2}us"),
        None => String::new(),
    }
}

/// cyclictest's `print_stat()` line (without the newline).
pub fn stat_line(
    index: usize,
    tid: i32,
    priority: i32,
    interval_us: u32,
    s: &Summary,
    nsecs: bool,
) -> String {
    let (min, avg) = (s.min_or_zero(), s.avg_trunc());
    if nsecs {
        format!(
            "T:{index:2} ({tid:5}) P:{priority:2} I:{interval_us} C:{:7} Min:{min:7} Act:{:8} Avg:{avg:8} Max:{:8}",
            s.cycles, s.act, s.max
        )
    } else {
        format!(
            "T:{index:2} ({tid:5}) P:{priority:2} I:{interval_us} C:{:7} Min:{min:7} Act:{:5} Avg:{avg:5} Max:{:8}",
            s.cycles, s.act, s.max
        )
    }
}

/// The header cyclictest prints above the live status lines.
pub fn policy_line(policy: &str, loadavg: &str) -> String {
    format!("policy: {policy}: loadavg: {loadavg}          \n")
}

/// One `-v` sample line: `%8d:%8lu:%8ld`.
pub fn verbose_line(index: usize, cycle: u64, value: i64) -> String {
    format!("{index:8}:{cycle:8}:{value:8}")
}

/// cyclictest 2.4's `print_hist()` output for `threads` (which must all have
/// a histogram of the same size). Every bucket is printed, including empty
/// ones, followed by the `# Total:` line and the summary lines; `histofall`
/// (`-H`) adds an all-threads column when there is more than one thread.
pub fn histogram_text(threads: &[ThreadReport], histofall: bool) -> String {
    let hists: Vec<&Histogram> = threads
        .iter()
        .filter_map(|t| t.histogram.as_ref())
        .collect();
    let n = hists.len();
    let size = hists.iter().map(|h| h.len()).max().unwrap_or(0);
    let all = histofall && n > 1;
    let mut out = String::with_capacity((size + 10) * (8 + 7 * (n + 1)));
    out.push_str("# Histogram\n");
    for i in 0..size {
        let _ = write!(out, "{i:06} ");
        let mut sum = 0u64;
        for (j, h) in hists.iter().enumerate() {
            let v = h.buckets().get(i).copied().unwrap_or(0);
            sum += v;
            let _ = write!(out, "{v:06}");
            if j + 1 < n {
                out.push('\t');
            }
        }
        if all {
            let _ = write!(out, "\t{sum:06}");
        }
        out.push('\n');
    }
    out.push_str("# Total:");
    let mut total_all = 0u64;
    for h in &hists {
        let t = h.total();
        total_all += t;
        let _ = write!(out, " {t:09}");
    }
    if all {
        let _ = write!(out, " {total_all:09}");
    }
    out.push('\n');
    let with_hist = || threads.iter().filter(|t| t.histogram.is_some());
    out.push_str("# Min Latencies:");
    for t in with_hist() {
        let _ = write!(out, " {:05}", t.summary.min_or_zero());
    }
    out.push_str("\n# Avg Latencies:");
    for t in with_hist() {
        let _ = write!(out, " {:05}", t.summary.avg_trunc());
    }
    out.push_str("\n# Max Latencies:");
    let mut maxmax = 0;
    for t in with_hist() {
        maxmax = maxmax.max(t.summary.max);
        let _ = write!(out, " {:05}", t.summary.max);
    }
    if all {
        let _ = write!(out, " {maxmax:05}");
    }
    out.push_str("\n# Histogram Overflows:");
    let mut alloverflows = 0;
    for h in &hists {
        alloverflows += h.overflows();
        let _ = write!(out, " {:05}", h.overflows());
    }
    if all {
        let _ = write!(out, " {alloverflows:05}");
    }
    out.push_str("\n# Histogram Overflow at cycle number:\n");
    for (i, h) in hists.iter().enumerate() {
        let _ = write!(out, "# Thread {i}:");
        for c in h.outliers() {
            let _ = write!(out, " {c:05}");
        }
        let listed = h.outliers().len() as u64;
        if listed < h.overflows() {
            let _ = write!(out, " # {:05} others", h.overflows() - listed);
        }
        out.push('\n');
    }
    out.push('\n');
    out
}

/// Escapes `s` for use inside a JSON string.
pub fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Run-level data for the JSON header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonInfo {
    pub cmdline: String,
    pub version: String,
    pub start_time: String,
    pub end_time: String,
    pub return_code: i32,
    pub uname: Uname,
    pub realtime: bool,
    pub nsecs: bool,
}

/// Writes the JSON result in cyclictest 2.4's layout.
pub fn write_json(w: &mut dyn Write, info: &JsonInfo, threads: &[ThreadReport]) -> io::Result<()> {
    let mut o = String::new();
    let e = json_escape;
    let u = &info.uname;
    let _ = write!(
        o,
        "{{\n  \"file_version\": 1,\n  \"cmdline:\": \"{}\",\n  \"rt_test_version:\": \"{}\",\n  \"start_time\": \"{}\",\n  \"end_time\": \"{}\",\n  \"return_code\": {},\n",
        e(&info.cmdline),
        e(&info.version),
        e(&info.start_time),
        e(&info.end_time),
        info.return_code
    );
    let _ = write!(
        o,
        "  \"sysinfo\": {{\n    \"sysname\": \"{}\",\n    \"nodename\": \"{}\",\n    \"release\": \"{}\",\n    \"version\": \"{}\",\n    \"machine\": \"{}\",\n    \"realtime\": {}\n  }},\n",
        e(&u.sysname),
        e(&u.nodename),
        e(&u.release),
        e(&u.version),
        e(&u.machine),
        info.realtime as i32
    );
    let _ = write!(
        o,
        "  \"num_threads\": {},\n  \"resolution_in_ns\": {},\n  \"thread\": {{\n",
        threads.len(),
        info.nsecs as u32
    );
    for (i, t) in threads.iter().enumerate() {
        let _ = write!(o, "    \"{i}\": {{\n      \"histogram\": {{");
        let mut first = true;
        if let Some(h) = &t.histogram {
            for (bucket, &count) in h.buckets().iter().enumerate().filter(|(_, &c)| c != 0) {
                o.push_str(if first { "\n" } else { ",\n" });
                let _ = write!(o, "        \"{bucket}\": {count}");
                first = false;
            }
        }
        if !first {
            o.push('\n');
        }
        let s = &t.summary;
        let _ = write!(
            o,
            "      }},\n      \"cycles\": {},\n      \"min\": {},\n      \"max\": {},\n      \"avg\": {:.2},\n{}      \"cpu\": {},\n      \"node\": {}\n    }}{}\n",
            s.cycles,
            s.min_or_zero(),
            s.max,
            s.avg(),
            match t.own_cpu_us_per_cycle {
                Some(v) if v.is_finite() => format!("      \"own_cpu_us_per_cycle\": {v:.2},\n"),
                Some(_) => "      \"own_cpu_us_per_cycle\": null,\n".to_string(),
                None => String::new(),
            },
            t.cpu,
            t.node,
            if i + 1 == threads.len() { "" } else { "," }
        );
    }
    o.push_str("  }\n}\n");
    w.write_all(o.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::collections::BTreeSet;

    // Fixtures are real cyclictest 2.4 (Debian bookworm armhf) output, see
    // tests/fixtures/README.md for the exact commands.
    const CT_HIST_1: &str = include_str!("../tests/fixtures/cyclictest-2.40-h2000.txt");
    const CT_HIST_2H: &str = include_str!("../tests/fixtures/cyclictest-2.40-t2-H300.txt");
    const CT_HIST_N: &str = include_str!("../tests/fixtures/cyclictest-2.40-N-h100.txt");
    const CT_QUIET: &str = include_str!("../tests/fixtures/cyclictest-2.40-t2-quiet.txt");
    const CT_QUIET_N: &str = include_str!("../tests/fixtures/cyclictest-2.40-t2-quiet-N.txt");
    const CT_JSON_H: &str = include_str!("../tests/fixtures/cyclictest-2.40.json");
    const CT_JSON_T2: &str = include_str!("../tests/fixtures/cyclictest-2.40-t2-H300.json");
    const CT_JSON_NOHIST: &str = include_str!("../tests/fixtures/cyclictest-2.40-nohist.json");

    fn nums(line: &str, prefix: &str) -> Vec<i64> {
        line.strip_prefix(prefix)
            .unwrap_or_else(|| panic!("{line:?} lacks {prefix:?}"))
            .split_whitespace()
            .map(|v| v.parse().unwrap())
            .collect()
    }

    /// Rebuilds the thread data from cyclictest's histogram output; returns
    /// the reports and whether a -H summary column is present.
    fn parse_ct_histogram(text: &str) -> (Vec<ThreadReport>, bool) {
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "# Histogram");
        let mut buckets: Vec<Vec<u64>> = Vec::new();
        let mut k = 1;
        while !lines[k].starts_with('#') {
            let (idx, rest) = lines[k].split_once(' ').unwrap();
            assert_eq!(idx.parse::<usize>().unwrap(), k - 1);
            let cols: Vec<u64> = rest.split('\t').map(|v| v.parse().unwrap()).collect();
            if buckets.is_empty() {
                buckets = vec![Vec::new(); cols.len()];
            }
            for (b, v) in buckets.iter_mut().zip(cols) {
                b.push(v);
            }
            k += 1;
        }
        let total = nums(lines[k], "# Total:");
        let min = nums(lines[k + 1], "# Min Latencies:");
        let avg = nums(lines[k + 2], "# Avg Latencies:");
        let max = nums(lines[k + 3], "# Max Latencies:");
        let ovf = nums(lines[k + 4], "# Histogram Overflows:");
        assert_eq!(lines[k + 5], "# Histogram Overflow at cycle number:");
        let n = min.len();
        let histofall = total.len() > n;
        if histofall {
            buckets.pop();
        }
        let reports = (0..n)
            .map(|i| {
                let line = lines[k + 6 + i];
                let body = line.strip_prefix(&format!("# Thread {i}:")).unwrap();
                let outliers: Vec<u64> = body
                    .split(" # ")
                    .next()
                    .unwrap()
                    .split_whitespace()
                    .map(|v| v.parse().unwrap())
                    .collect();
                let hist = Histogram::from_parts(buckets[i].clone(), ovf[i] as u64, &outliers);
                let cycles = hist.total() + hist.overflows();
                let summary = Summary {
                    cycles,
                    min: min[i],
                    max: max[i],
                    act: 0,
                    sum: avg[i] * cycles as i64,
                };
                ThreadReport {
                    index: i,
                    tid: 0,
                    priority: 0,
                    interval_us: 1000,
                    summary,
                    cpu: 0,
                    node: -1,
                    histogram: Some(hist),
                    own_cpu_us_per_cycle: None,
                }
            })
            .collect();
        (reports, histofall)
    }

    /// cyclictest's stdout for -h minus the `/dev/cpu_dma_latency` line.
    fn hist_part(text: &str) -> &str {
        &text[text.find("# Histogram").unwrap()..]
    }

    #[test]
    fn histogram_text_matches_cyclictest_single_thread() {
        let expected = hist_part(CT_HIST_1);
        let (reports, histofall) = parse_ct_histogram(expected);
        assert!(!histofall);
        assert_eq!(reports.len(), 1);
        assert_eq!(histogram_text(&reports, false), expected);
    }

    #[test]
    fn histogram_text_matches_cyclictest_two_threads_histofall() {
        let expected = hist_part(CT_HIST_2H);
        let (reports, histofall) = parse_ct_histogram(expected);
        assert!(histofall);
        assert_eq!(reports.len(), 2);
        assert_eq!(histogram_text(&reports, true), expected);
        // Without -H the summary column disappears.
        let plain = histogram_text(&reports, false);
        assert!(plain.lines().nth(1).unwrap().matches('\t').count() == 1);
    }

    #[test]
    fn histogram_text_matches_cyclictest_nsecs_with_overflows() {
        let expected = hist_part(CT_HIST_N);
        let (reports, _) = parse_ct_histogram(expected);
        assert!(reports[0].histogram.as_ref().unwrap().overflows() > 0);
        assert_eq!(histogram_text(&reports, false), expected);
    }

    #[test]
    fn histogram_lists_at_most_size_overflows_then_others() {
        let mut h = Histogram::new(3);
        for c in 0..7 {
            h.record(if c == 1 { 2 } else { 50 }, c);
        }
        let mut s = Summary::new();
        for v in [50, 2, 50, 50, 50, 50, 50] {
            s.add(v);
        }
        let r = ThreadReport {
            index: 0,
            tid: 1,
            priority: 0,
            interval_us: 1000,
            summary: s,
            cpu: 0,
            node: -1,
            histogram: Some(h),
            own_cpu_us_per_cycle: None,
        };
        let text = histogram_text(&[r], false);
        let expected =
            "# Histogram\n000000 000000\n000001 000000\n000002 000001\n# Total: 000000001\n\
                        # Min Latencies: 00002\n# Avg Latencies: 00043\n# Max Latencies: 00050\n\
                        # Histogram Overflows: 00006\n# Histogram Overflow at cycle number:\n\
                        # Thread 0: 00000 00002 00003 # 00003 others\n\n";
        assert_eq!(text, expected);
    }

    fn parse_stat_line(l: &str) -> (usize, i32, i32, u32, Summary) {
        // T: 0 (13940) P: 0 I:1000 C:     50 Min:     72 Act:   85 Avg:   85 Max:     188
        let f: Vec<&str> = l
            .split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ':')
            .filter(|s| !s.is_empty())
            .collect();
        let v = |key: &str| -> i64 {
            f[f.iter().position(|x| *x == key).unwrap() + 1]
                .parse()
                .unwrap()
        };
        let cycles = v("C") as u64;
        let s = Summary {
            cycles,
            min: v("Min"),
            max: v("Max"),
            act: v("Act"),
            sum: v("Avg") * cycles as i64,
        };
        (
            v("T") as usize,
            f[2].parse().unwrap(),
            v("P") as i32,
            v("I") as u32,
            s,
        )
    }

    #[test]
    fn stat_line_matches_cyclictest() {
        for (text, nsecs) in [(CT_QUIET, false), (CT_QUIET_N, true)] {
            let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("T:")).collect();
            assert_eq!(lines.len(), 2);
            for l in lines {
                let (i, tid, p, iv, s) = parse_stat_line(l);
                assert_eq!(stat_line(i, tid, p, iv, &s, nsecs), l);
            }
        }
        let mut s = Summary::new();
        s.add(7);
        assert_eq!(
            stat_line(1, 123, 80, 200, &s, false),
            "T: 1 (  123) P:80 I:200 C:      1 Min:      7 Act:    7 Avg:    7 Max:       7"
        );
        assert_eq!(
            stat_line(0, 9, 0, 1000, &Summary::new(), true),
            "T: 0 (    9) P: 0 I:1000 C:      0 Min:      0 Act:       0 Avg:       0 Max:       0"
        );
    }

    #[test]
    fn small_formats() {
        assert_eq!(verbose_line(0, 12, 57), "       0:      12:      57");
        assert_eq!(
            policy_line("fifo", "0.10 0.05 0.01 1/99 123"),
            "policy: fifo: loadavg: 0.10 0.05 0.01 1/99 123          \n"
        );
    }

    #[test]
    fn escaping() {
        assert_eq!(json_escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(json_escape("x\ny\t\u{1}"), "x\\ny\\t\\u0001");
        assert_eq!(json_escape("ünï"), "ünï");
    }

    /// Key paths of a JSON document; thread indices and histogram buckets
    /// are replaced by `*`. Each path carries the value's JSON type.
    pub(crate) fn key_paths(v: &Value) -> BTreeSet<String> {
        fn walk(v: &Value, path: &str, out: &mut BTreeSet<String>) {
            let ty = match v {
                Value::Null => "null",
                Value::Bool(_) => "bool",
                Value::Number(_) => "number",
                Value::String(_) => "string",
                Value::Array(_) => "array",
                Value::Object(_) => "object",
            };
            out.insert(format!("{path}: {ty}"));
            if let Value::Object(m) = v {
                for (k, child) in m {
                    let wild = path.ends_with(".thread") || path.ends_with(".histogram");
                    let key = if wild { "*" } else { k.as_str() };
                    walk(child, &format!("{path}.{key}"), out);
                }
            }
        }
        let mut out = BTreeSet::new();
        walk(v, "$", &mut out);
        out
    }

    fn report(i: usize, hist: Option<Histogram>, samples: &[i64]) -> ThreadReport {
        let mut s = Summary::new();
        for &v in samples {
            s.add(v);
        }
        ThreadReport {
            index: i,
            tid: 100 + i as i32,
            priority: 80,
            interval_us: 1000,
            summary: s,
            cpu: i as i64,
            node: -1,
            histogram: hist,
            own_cpu_us_per_cycle: None,
        }
    }

    fn info(cmdline: &str) -> JsonInfo {
        JsonInfo {
            cmdline: cmdline.into(),
            version: crate::VERSION.into(),
            start_time: "Sun, 22 Nov 2026 04:08:48 +0000".into(),
            end_time: "Sun, 22 Nov 2026 04:08:49 +0000".into(),
            return_code: 0,
            uname: Uname {
                sysname: "Linux".into(),
                nodename: "vm".into(),
                release: "7.2.13-rt".into(),
                version: "#1 SMP PREEMPT_RT".into(),
                machine: "armv7l".into(),
            },
            realtime: true,
            nsecs: false,
        }
    }

    fn to_string(info: &JsonInfo, threads: &[ThreadReport]) -> String {
        let mut buf = Vec::new();
        write_json(&mut buf, info, threads).unwrap();
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn own_cpu_time_adds_one_key_and_a_stat_suffix_only_when_asked() {
        let ct: Value = serde_json::from_str(CT_JSON_T2).unwrap();
        let mut h = Histogram::new(300);
        h.record(17, 0);
        let mut r0 = report(0, Some(h.clone()), &[17]);
        let mut r1 = report(1, Some(h), &[17]);
        r0.own_cpu_us_per_cycle = Some(12.5);
        r1.own_cpu_us_per_cycle = Some(f64::NAN);
        let v: Value = serde_json::from_str(&to_string(&info("rtlat"), &[r0, r1])).unwrap();
        assert_eq!(
            v["thread"]["0"]["own_cpu_us_per_cycle"].as_f64(),
            Some(12.5)
        );
        assert!(v["thread"]["1"]["own_cpu_us_per_cycle"].is_null());
        let mut want = key_paths(&ct);
        want.insert("$.thread.*.own_cpu_us_per_cycle: number".into());
        want.insert("$.thread.*.own_cpu_us_per_cycle: null".into());
        assert_eq!(key_paths(&v), want);
        assert_eq!(own_cpu_suffix(None), "");
        assert_eq!(own_cpu_suffix(Some(2.125)), " CPU/cycle:    2.12us");
    }

    #[test]
    fn json_key_set_equals_cyclictest() {
        let ct: Value = serde_json::from_str(CT_JSON_T2).unwrap();
        let mut h0 = Histogram::new(300);
        let mut h1 = Histogram::new(300);
        for (c, v) in [17, 24, 900].into_iter().enumerate() {
            h0.record(v, c as u64);
            h1.record(v + 1, c as u64);
        }
        let ours = to_string(
            &info("rtlat -t 2 -H 300"),
            &[
                report(0, Some(h0), &[17, 24, 900]),
                report(1, Some(h1), &[18, 25, 901]),
            ],
        );
        let v: Value = serde_json::from_str(&ours).unwrap();
        assert_eq!(key_paths(&v), key_paths(&ct));
        assert!(v.get("cmdline:").is_some() && v.get("rt_test_version:").is_some());
        assert_eq!(v["thread"]["1"]["histogram"]["18"], 1);
        assert_eq!(v["thread"]["1"]["histogram"].as_object().unwrap().len(), 2);
        assert_eq!(v["thread"]["0"]["avg"].as_f64(), Some(313.67));
        assert_eq!(v["sysinfo"]["realtime"], 1);
        assert_eq!(v["num_threads"], 2);
        assert_eq!(v["rt_test_version:"], crate::VERSION);
    }

    #[test]
    fn json_layout_matches_cyclictest_byte_for_byte() {
        // Re-create cyclictest's own run (-l 30 -q, no histogram) and compare
        // the whole text apart from the values that differ per program.
        let ct: Value = serde_json::from_str(CT_JSON_NOHIST).unwrap();
        let t = &ct["thread"]["0"];
        let cycles = t["cycles"].as_u64().unwrap();
        let avg = t["avg"].as_f64().unwrap();
        let summary = Summary {
            cycles,
            min: t["min"].as_i64().unwrap(),
            max: t["max"].as_i64().unwrap(),
            act: 0,
            sum: (avg * cycles as f64).round() as i64,
        };
        let r = ThreadReport {
            index: 0,
            tid: 0,
            priority: 0,
            interval_us: 1000,
            summary,
            cpu: t["cpu"].as_i64().unwrap(),
            node: t["node"].as_i64().unwrap() as i32,
            histogram: None,
            own_cpu_us_per_cycle: None,
        };
        let s = |k: &str| ct[k].as_str().unwrap().to_string();
        let si = |k: &str| ct["sysinfo"][k].as_str().unwrap().to_string();
        let inf = JsonInfo {
            cmdline: s("cmdline:"),
            version: s("rt_test_version:"),
            start_time: s("start_time"),
            end_time: s("end_time"),
            return_code: 0,
            uname: Uname {
                sysname: si("sysname"),
                nodename: si("nodename"),
                release: si("release"),
                version: si("version"),
                machine: si("machine"),
            },
            realtime: false,
            nsecs: false,
        };
        assert_eq!(to_string(&inf, &[r]), CT_JSON_NOHIST);
    }

    #[test]
    fn json_histogram_layout_matches_cyclictest() {
        // The histogram object of cyclictest's -h 2000 run, re-created.
        let ct: Value = serde_json::from_str(CT_JSON_H).unwrap();
        let mut h = Histogram::new(2000);
        let mut cycle = 0;
        for (k, n) in ct["thread"]["0"]["histogram"].as_object().unwrap() {
            for _ in 0..n.as_u64().unwrap() {
                h.record(k.parse().unwrap(), cycle);
                cycle += 1;
            }
        }
        let ours = to_string(&info("x"), &[report(0, Some(h), &[1])]);
        let grab = |t: &str| {
            let a = t.find("      \"histogram\"").unwrap();
            let b = t.find("      \"cycles\"").unwrap();
            t[a..b].to_string()
        };
        assert_eq!(grab(&ours), grab(CT_JSON_H));
        assert!(grab(CT_JSON_NOHIST).contains("\"histogram\": {      },"));
        let empty = to_string(&info("x"), &[report(0, Some(Histogram::new(5)), &[9])]);
        assert_eq!(grab(&empty), grab(CT_JSON_NOHIST));
    }

    #[test]
    fn json_is_valid_with_zero_cycles_and_odd_strings() {
        let mut inf = info("rtlat --json=\"a b\"\\ \u{7}\n");
        inf.nsecs = true;
        let out = to_string(
            &inf,
            &[
                report(0, Some(Histogram::new(4)), &[]),
                report(1, None, &[]),
            ],
        );
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["cmdline:"], "rtlat --json=\"a b\"\\ \u{7}\n");
        assert_eq!(v["resolution_in_ns"], 1);
        assert_eq!(v["thread"]["0"]["cycles"], 0);
        assert_eq!(v["thread"]["0"]["min"], 0);
        assert_eq!(v["thread"]["0"]["avg"].as_f64(), Some(0.0));
        assert!(out.contains("\"avg\": 0.00,"));
        // And with no thread at all.
        let v: Value = serde_json::from_str(&to_string(&info("x"), &[])).unwrap();
        assert_eq!(v["num_threads"], 0);
    }
}
