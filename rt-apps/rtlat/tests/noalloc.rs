//! Proves that the measuring loop does not touch the heap: a counting global
//! allocator records every allocation, reallocation and deallocation made by
//! the current thread while the loop runs, with the default (no) action and
//! with the per-cycle I/O action (`--io-pipe`, `--io-file`), direct,
//! through FlexSC (the flexsc library's emulator of the kernel side) and
//! through io_uring (where the kernel has it: not under qemu-user).

use rt_utils::alloc_count::{heap_ops_during, Counting};
use rtlat::action::{CycleAction, DirectWriter, IoAction, IoDest, NoAction};
use rtlat::measure::{Measurement, ThreadSpec};
use rtlat::options::{Clock, Policy};
use rtlat::stats::{LiveStats, VALBUF_SIZE};
use std::sync::atomic::AtomicBool;

#[global_allocator]
static ALLOC: Counting = Counting;

fn spec(histogram: usize, nsecs: bool) -> ThreadSpec {
    ThreadSpec {
        index: 0,
        cpu: None,
        policy: Policy::Other,
        priority: 0,
        interval_us: 200,
        clock: Clock::Monotonic,
        max_cycles: 300,
        duration_s: 0,
        nsecs,
        histogram,
    }
}

#[test]
fn counter_sees_allocations() {
    let n = heap_ops_during(|| drop(std::hint::black_box(Box::new(5u64))));
    assert_eq!(n, 2, "the counting allocator must see alloc + dealloc");
}

#[test]
fn measuring_loop_does_not_allocate() {
    for (histogram, nsecs, ring) in [(0, false, 0), (1000, false, VALBUF_SIZE), (5, true, 0)] {
        let live = LiveStats::new(ring);
        let stop = AtomicBool::new(false);
        let mut m = Measurement::new(&spec(histogram, nsecs), &live, &stop, NoAction);
        let mut result = Ok(());
        let ops = heap_ops_during(|| result = m.run_loop());
        assert!(result.is_ok());
        assert_eq!(
            ops, 0,
            "heap operations inside the loop (hist {histogram}, ns {nsecs})"
        );
        let (summary, hist) = m.into_results();
        assert_eq!(summary.cycles, 300);
        if let Some(h) = hist {
            assert_eq!(h.total() + h.overflows(), 300);
        }
    }
}

#[test]
fn measuring_loop_with_direct_io_does_not_allocate() {
    let path = std::env::temp_dir().join(format!("rtlat-noalloc-{}.txt", std::process::id()));
    for (dest, size) in [
        (IoDest::Pipe, 64),
        (IoDest::Pipe, 256),
        (IoDest::File(std::fs::File::create(&path).unwrap()), 1),
        (IoDest::File(std::fs::File::create(&path).unwrap()), 64),
    ] {
        let what = format!("{dest:?} {size}");
        let live = LiveStats::new(VALBUF_SIZE);
        let stop = AtomicBool::new(false);
        let mut m = Measurement::new(
            &spec(100, false),
            &live,
            &stop,
            IoAction::new(dest, size, DirectWriter),
        );
        m.action_mut().prepare().unwrap();
        let mut result = Ok(());
        let ops = heap_ops_during(|| result = m.run_loop());
        assert!(result.is_ok(), "{what}: {result:?}");
        assert_eq!(ops, 0, "heap operations inside the loop ({what})");
        assert_eq!(m.action_mut().records(), 300, "{what}");
        m.action_mut().finish().unwrap();
        assert_eq!(m.into_results().0.cycles, 300);
    }
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 300 * 64);
    let _ = std::fs::remove_file(&path);
}

#[test]
#[cfg_attr(
    not(target_arch = "arm"),
    ignore = "ARM EABI only (system call numbers and argument words): make host-test runs it"
)]
fn measuring_loop_with_flexsc_io_does_not_allocate() {
    let cfg = flexsc::Config {
        npages: 1,
        nworkers: 1,
        ..flexsc::Config::default()
    };
    let fx = std::sync::Arc::new(flexsc::FlexSc::emulated(&cfg).expect("emulator"));
    let live = LiveStats::new(0);
    let stop = AtomicBool::new(false);
    let action = IoAction::new(IoDest::Pipe, 64, rtlat::flexsc_io::FlexScWriter::new(fx));
    let mut m = Measurement::new(&spec(100, false), &live, &stop, action);
    m.action_mut().prepare().unwrap();
    let mut result = Ok(());
    let ops = heap_ops_during(|| result = m.run_loop());
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(ops, 0, "heap operations inside the loop (FlexSC writes)");
    assert_eq!(m.action_mut().records(), 300);
    m.action_mut().finish().unwrap();
}

#[test]
fn measuring_loop_with_io_uring_does_not_allocate() {
    let writer = match rtlat::uring_io::UringWriter::new() {
        Ok(w) => w,
        Err(e) => {
            eprintln!("SKIPPED: no io_uring here ({e})");
            return;
        }
    };
    let live = LiveStats::new(0);
    let stop = AtomicBool::new(false);
    let action = IoAction::new(IoDest::Pipe, 64, writer);
    let mut m = Measurement::new(&spec(100, false), &live, &stop, action);
    m.action_mut().prepare().unwrap();
    let mut result = Ok(());
    let ops = heap_ops_during(|| result = m.run_loop());
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(ops, 0, "heap operations inside the loop (io_uring writes)");
    assert_eq!(m.action_mut().records(), 300);
    // finish() checks that the pipe's reader got every record.
    m.action_mut().finish().unwrap();
}
