//! The workspace's one io_uring ring (`rt-apps/uring`) on the image's
//! kernel, through flexsc-bench's io_uring rows: plain and SQPOLL rings make
//! the getpid (as `IORING_OP_NOP`), write and pwrite64 calls of the direct
//! path, and flexsc-bench checks every completion against what the direct
//! call returns (a wrong one fails it). The host tests cannot: qemu-user has
//! no io_uring.
#![cfg(feature = "guest")]

use guest_tests::run_ok;
use serde_json::Value;

fn stat(v: &Value, what: &str) -> f64 {
    v["median"]
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: no median in {v}"))
}

#[test]
fn io_uring_rows_plain_and_sqpoll_agree_with_the_direct_calls() {
    let json = "/tmp/guest-test-uring.json";
    let json_arg = format!("--json={json}");
    let out = run_ok(
        "flexsc-bench",
        &[
            "--uring=require",
            "--iters=50",
            "--warmup=5",
            "--repeats=2",
            "--batches=1,8,64",
            "--batch-calls=128",
            "--file=/tmp/guest-test-uring.dat",
            &json_arg,
        ],
    );
    let text = std::fs::read_to_string(json).expect("no JSON report written");
    let v: Value = serde_json::from_str(&text).expect("JSON does not parse");
    assert_eq!(v["io_uring"], "ok", "{out}");
    assert_eq!(v["io_uring_sqpoll"], "ok", "{out}");
    let per_call = v["per_call_ns"].as_array().expect("per_call_ns");
    let calls: Vec<&str> = per_call
        .iter()
        .map(|r| r["call"].as_str().unwrap())
        .collect();
    assert_eq!(calls, ["getpid", "write", "pwrite64"]);
    let batched = v["batched_calls_per_s"].as_array().expect("batched");
    assert_eq!(batched.len(), 6, "getpid and write in batches of 1, 8, 64");
    for row in per_call.iter().chain(batched) {
        for path in ["io_uring", "io_uring_sqpoll"] {
            let what = format!("{} {} {path}", row["call"], row["batch"]);
            assert!(stat(&row[path], &what) > 0.0, "{what}");
            let cpu = stat(&row["caller_cpu_ns"][path], &what);
            assert!(cpu > 0.0, "{what}: caller CPU {cpu}");
        }
    }
    // The caller's CPU time of a synchronous call is part of its wall time
    // (one CPU or more; a little slack for the two clocks).
    for row in per_call {
        for path in ["direct", "io_uring", "io_uring_sqpoll"] {
            let wall = row[path]["max"].as_f64().unwrap();
            let cpu = stat(&row["caller_cpu_ns"][path], path);
            assert!(
                cpu <= wall * 1.05 + 1000.0,
                "{} {path}: CPU {cpu} > wall {wall}",
                row["call"]
            );
        }
    }
    assert!(out.contains("| getpid | io_uring SQPOLL | "), "{out}");
    let _ = std::fs::remove_file(json);
}
