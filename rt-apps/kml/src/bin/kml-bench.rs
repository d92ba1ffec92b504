//! kml-bench: the cost of a system call through `svc` and through the
//! Kernel Mode Linux trampoline.
//!
//! Run it twice: as `/usr/bin/kml-bench` (USR mode: `svc` only) and, copied
//! from `/usr/lib/rtflex/kml/` into `/trusted` for the run, as
//! `/trusted/kml-bench` (SYS mode: `svc` and the trampoline). It prints
//! Markdown table rows: call, path, mode, loops and nanoseconds per call
//! (CLOCK_MONOTONIC_RAW over the whole loop).
//!
//! ```text
//! kml-bench [--loops N] [--header]
//! ```
//!
//! Under QEMU with `-icount`, guest time counts instructions: the numbers
//! compare code path lengths, not the exception cost a real CPU pays.

use std::os::fd::AsRawFd;
use std::time::Instant;

use kml::Via;

fn main() {
    let (loops, header) = parse().unwrap_or_else(|e| usage(&e.to_string()));
    let mode = kml::mode()
        .map(kml::Mode::name)
        .unwrap_or_else(|| "none".into());
    let mut paths = vec![("svc", Via::Svc)];
    if kml::available() {
        paths.push(("trampoline", Via::Trampoline));
    }
    let null = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .unwrap_or_else(|e| fail(&format!("open /dev/null: {e}")));
    let fd = null.as_raw_fd();
    if header {
        println!("| call | path | mode | loops | ns/call |");
        println!("|---|---|---|---:|---:|");
    }
    for (name, via) in &paths {
        let via = *via;
        row("getpid", name, &mode, loops, || {
            std::hint::black_box(kml::getpid_via(via));
        });
        row("clock_gettime64 (syscall)", name, &mode, loops, || {
            let t = kml::clock_gettime_via(via, libc::CLOCK_MONOTONIC);
            std::hint::black_box(t.unwrap_or_else(|e| fail(&format!("clock_gettime: {e}"))));
        });
        row("write 1 byte to /dev/null", name, &mode, loops, || {
            let n = kml::write_via(via, fd, b"x");
            std::hint::black_box(n.unwrap_or_else(|e| fail(&format!("write: {e}"))));
        });
    }
}

fn row(call: &str, path: &str, mode: &str, loops: u32, mut f: impl FnMut()) {
    for _ in 0..loops / 100 + 1 {
        f(); // warm up
    }
    let t0 = Instant::now();
    for _ in 0..loops {
        f();
    }
    let ns = t0.elapsed().as_nanos() as f64 / f64::from(loops);
    println!("| {call} | {path} | {mode} | {loops} | {ns:.1} |");
}

const USAGE: &str = "usage: kml-bench [--loops N] [--header]";

/// The command line: calls per measurement (`--loops`, default 100000) and
/// whether to print the table header first (`--header`).
fn parse() -> Result<(u32, bool), lexopt::Error> {
    use lexopt::prelude::*;
    let (mut loops, mut header) = (100_000, false);
    let mut p = lexopt::Parser::from_env();
    while let Some(arg) = p.next()? {
        match arg {
            Long("loops") => loops = p.value()?.parse::<std::num::NonZeroU32>()?.get(),
            Long("header") => header = true,
            Short('h') | Long("help") => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => return Err(arg.unexpected()),
        }
    }
    Ok((loops, header))
}

fn usage(msg: &str) -> ! {
    eprintln!("kml-bench: {msg}");
    eprintln!("{USAGE}");
    std::process::exit(2);
}

fn fail(msg: &str) -> ! {
    eprintln!("kml-bench: {msg}");
    std::process::exit(1);
}
