//! `servo decode`: a log as a table, as CSV, or summarised.

use super::options::DecodeOptions;
use super::run::{EXIT_ERROR, EXIT_OK};
use crate::control::State;
use crate::telemetry::{DecodeError, Header, Record, HEADER_SIZE, RECORD_SIZE};
use std::fmt::Write as _;

/// A decoded log.
#[derive(Clone, Debug, PartialEq)]
pub struct Log {
    pub header: Header,
    pub records: Vec<Record>,
    /// Bytes after the last whole record (a torn write).
    pub trailing: usize,
}

/// Decodes a whole log.
pub fn parse(bytes: &[u8]) -> Result<Log, String> {
    let header = Header::decode(bytes).map_err(|e| match e {
        DecodeError::Short => format!(
            "not a servo log: {} bytes, shorter than the {HEADER_SIZE}-byte header",
            bytes.len()
        ),
        DecodeError::Magic => "not a servo log (no RTFLXSRV header)".to_string(),
        DecodeError::Version(v) => format!(
            "log format version {v}; this servo reads version {}",
            crate::telemetry::VERSION
        ),
        DecodeError::Layout => "the log's header or record size is not this version's".to_string(),
        DecodeError::Via(c) => format!("unknown log path code {c} in the header"),
    })?;
    let body = &bytes[HEADER_SIZE..];
    let records = body
        .chunks_exact(RECORD_SIZE)
        .map(|c| Record::decode(c.try_into().expect("chunk of RECORD_SIZE")))
        .collect();
    Ok(Log {
        header,
        records,
        trailing: body.len() % RECORD_SIZE,
    })
}

fn state_name(r: &Record) -> String {
    match State::from_codes(r.state, r.fault) {
        Some(State::Fault(f)) => format!(
            "fault({})",
            match f {
                crate::control::Fault::EncoderLoss => "encoder-loss",
                crate::control::Fault::Saturated => "saturated",
                crate::control::Fault::HomingTimeout => "homing-timeout",
                crate::control::Fault::EncoderError => "encoder-error",
                crate::control::Fault::Hardware => "hardware",
            }
        ),
        Some(s) => s.name().to_string(),
        None => format!("?{}/{}", r.state, r.fault),
    }
}

/// The CSV form: a header line, then one line per record, values exactly
/// as recorded (floats in their shortest round-trip form).
pub fn csv(log: &Log) -> String {
    let mut s = String::from(
        "cycle,time_ns,state,fault,flags,setpoint,position,output,latency_ns,compute_ns,prev_loop_ns,lost,overruns\n",
    );
    for r in &log.records {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{},{},{}",
            r.cycle,
            r.time_ns,
            r.state,
            r.fault,
            r.flags,
            r.setpoint,
            r.position,
            r.output,
            r.latency_ns,
            r.compute_ns,
            r.prev_loop_ns,
            r.lost,
            r.overruns
        );
    }
    s
}

/// The table form.
pub fn table(log: &Log) -> String {
    let h = &log.header;
    let mut s = format!(
        "# servo log v{}: {} records via {}, period {} us, kp {} ki {} kd {} limit {}\n",
        crate::telemetry::VERSION,
        log.records.len(),
        h.via.name(),
        h.period_ns / 1000,
        h.kp,
        h.ki,
        h.kd,
        h.limit
    );
    s.push_str("#    cycle    time_ms state        setpoint position   output latency_us compute_us loop_us  lost overruns\n");
    let t0 = h.start_ns;
    for r in &log.records {
        let _ = writeln!(
            s,
            "{:>10} {:>10.3} {:<12} {:>8.2} {:>8} {:>8.4} {:>10.1} {:>10.1} {:>7.1} {:>5} {:>8}",
            r.cycle,
            r.time_ns.saturating_sub(t0) as f64 / 1e6,
            state_name(r),
            r.setpoint,
            r.position,
            r.output,
            f64::from(r.latency_ns) / 1e3,
            f64::from(r.compute_ns) / 1e3,
            f64::from(r.prev_loop_ns) / 1e3,
            r.lost,
            r.overruns
        );
    }
    if log.trailing != 0 {
        let _ = writeln!(s, "# {} trailing bytes (a torn last record)", log.trailing);
    }
    s
}

/// Value at quantile `q` of sorted values (nearest rank).
fn quantile(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The summary: `key: value` lines.
pub fn summary(log: &Log) -> String {
    let rs = &log.records;
    let mut s = String::new();
    let mut kv = |k: &str, v: String| {
        let _ = writeln!(s, "{k}: {v}");
    };
    kv("records", rs.len().to_string());
    kv("log_via", log.header.via.name().to_string());
    kv("period_us", (log.header.period_ns / 1000).to_string());
    // Cycle numbers: gaps are records that never reached the log.
    let mut missing = 0u64;
    let mut out_of_order = 0u64;
    let mut sorted: Vec<u32> = rs.iter().map(|r| r.cycle).collect();
    for w in rs.windows(2) {
        if w[1].cycle <= w[0].cycle {
            out_of_order += 1;
        }
    }
    sorted.sort_unstable();
    sorted.dedup();
    if let (Some(first), Some(last)) = (sorted.first(), sorted.last()) {
        missing = u64::from(last - first) + 1 - sorted.len() as u64;
        kv("cycles", format!("{first}..{last}"));
    }
    kv("missing", missing.to_string());
    kv("out_of_order", out_of_order.to_string());
    kv("duplicates", (rs.len() - sorted.len()).to_string());
    let stats = |name: &str, mut v: Vec<u32>| {
        v.sort_unstable();
        let avg = if v.is_empty() {
            0
        } else {
            v.iter().map(|&x| u64::from(x)).sum::<u64>() / v.len() as u64
        };
        format!(
            "{name}: min {} avg {} p99 {} max {}",
            v.first().copied().unwrap_or(0),
            avg,
            quantile(&v, 0.99),
            v.last().copied().unwrap_or(0)
        )
    };
    let lines = [
        stats("latency_ns", rs.iter().map(|r| r.latency_ns).collect()),
        stats("compute_ns", rs.iter().map(|r| r.compute_ns).collect()),
        // Record 0 has no previous cycle.
        stats(
            "loop_ns",
            rs.iter()
                .filter(|r| r.cycle != 0)
                .map(|r| r.prev_loop_ns)
                .collect(),
        ),
    ];
    for l in lines {
        let _ = writeln!(s, "{l}");
    }
    let last = rs.iter().max_by_key(|r| r.cycle);
    let mut kv = |k: &str, v: String| {
        let _ = writeln!(s, "{k}: {v}");
    };
    kv("overruns", last.map_or(0, |r| r.overruns).to_string());
    kv("lost_reported", last.map_or(0, |r| r.lost).to_string());
    kv("final_state", last.map_or("none".into(), state_name));
    if let Some(r) = last {
        kv("final_position", r.position.to_string());
        kv("final_setpoint", r.setpoint.to_string());
    }
    kv("trailing_bytes", log.trailing.to_string());
    s
}

/// `servo decode`.
pub fn run(o: &DecodeOptions) -> i32 {
    let bytes = match std::fs::read(&o.path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("servo: cannot read '{}': {e}", o.path);
            return EXIT_ERROR;
        }
    };
    let log = match parse(&bytes) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("servo: {}: {e}", o.path);
            return EXIT_ERROR;
        }
    };
    let text = if o.csv {
        csv(&log)
    } else if o.summary {
        summary(&log)
    } else {
        table(&log)
    };
    print!("{text}");
    EXIT_OK
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::LogVia;

    fn log_bytes(cycles: &[u32]) -> Vec<u8> {
        let h = Header {
            via: LogVia::Thread,
            period_ns: 1_000_000,
            start_ns: 5_000_000,
            kp: 0.06,
            ki: 0.02,
            kd: 0.002,
            limit: 1.0,
        };
        let mut b = h.encode().to_vec();
        for &c in cycles {
            let r = Record {
                cycle: c,
                state: 2,
                time_ns: 5_000_000 + u64::from(c) * 1_000_000,
                setpoint: c as f32 * 0.5,
                position: c as i32,
                output: -0.125,
                latency_ns: 1000 * (c + 1),
                lost: 1,
                ..Record::default()
            };
            b.extend_from_slice(&r.encode());
        }
        b
    }

    #[test]
    fn csv_gives_the_exact_values() {
        let log = parse(&log_bytes(&[0, 1, 2])).unwrap();
        let text = csv(&log);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[0].starts_with("cycle,time_ns,state,fault,flags,setpoint,position,output"));
        assert_eq!(lines[3], "2,7000000,2,0,0,1,2,-0.125,3000,0,0,1,0");
    }

    #[test]
    fn summary_counts_gaps_order_and_quantiles() {
        let mut b = log_bytes(&[0, 1, 3, 2, 5]);
        b.extend_from_slice(&[0; 7]);
        let log = parse(&b).unwrap();
        assert_eq!(log.trailing, 7);
        let s = summary(&log);
        assert!(s.contains("records: 5\n"), "{s}");
        assert!(s.contains("missing: 1\n"), "{s}");
        assert!(s.contains("out_of_order: 1\n"), "{s}");
        assert!(
            s.contains("latency_ns: min 1000 avg 3200 p99 6000 max 6000\n"),
            "{s}"
        );
        assert!(s.contains("final_position: 5\n"), "{s}");
        assert!(s.contains("trailing_bytes: 7\n"), "{s}");
        assert!(table(&log).contains("trailing bytes"));
    }

    #[test]
    fn bad_logs_are_refused_clearly() {
        assert!(parse(b"short").unwrap_err().contains("shorter than"));
        let mut b = log_bytes(&[]);
        b[0] = b'x';
        assert!(parse(&b).unwrap_err().contains("no RTFLXSRV header"));
        assert_eq!(quantile(&[], 0.99), 0);
        assert_eq!(quantile(&[1, 2, 3, 4], 0.5), 2);
    }
}
