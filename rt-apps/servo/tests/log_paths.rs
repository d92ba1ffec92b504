//! Every telemetry path end to end: the control loop runs against the
//! simulated plant, a tee keeps the records the loop made, and the log the
//! path wrote must decode to exactly those records, complete and in order;
//! and the loop makes no heap operation with any path (a counting
//! allocator, as rtlat's tests/noalloc.rs).

use rt_utils::alloc_count::{heap_ops_during, Counting};
use servo::app::decode;
use servo::app::log::{
    logger_thread, DirectLog, FlexScLog, LogPath, NoLog, Outcome, Queue, RecordBytes, Target,
    ThreadLog, UringLog,
};
use servo::app::run::{run_loop, LoopSettings, SimRig};
use servo::control::{Config, Controller};
use servo::profile::Move;
use servo::sim::SimPlant;
use servo::telemetry::{Header, LogVia, Record};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};

#[global_allocator]
static ALLOC: Counting = Counting;

const CYCLES: u64 = 300;

fn settings() -> LoopSettings {
    LoopSettings {
        period_ns: 1_000_000,
        loops: CYCLES,
        duration_ns: 0,
        // Several syncs in a short run.
        sync_every_ns: 50_000_000,
    }
}

fn plant() -> SimPlant {
    SimPlant::new(plant::Params::parse(plant::DEFAULT_PARAMS).unwrap())
}

fn controller() -> Controller {
    Controller::new(Config {
        homing: None,
        moves: [Move {
            target: 40.0,
            dwell_ns: 0,
        }]
        .into_iter()
        .collect(),
        ..Config::default()
    })
    .unwrap()
}

/// Keeps every record the loop posts (in pre-allocated memory) and passes
/// it on.
struct Tee<'a, L> {
    inner: L,
    kept: &'a mut Vec<RecordBytes>,
}

impl<L: LogPath> LogPath for Tee<'_, L> {
    fn post(&mut self, cycle: u32, rec: &RecordBytes) {
        assert!(self.kept.len() < self.kept.capacity(), "tee full");
        self.kept.push(*rec);
        self.inner.post(cycle, rec);
    }
    fn sync(&mut self) {
        self.inner.sync()
    }
    fn lost(&self) -> u32 {
        self.inner.lost()
    }
}

fn header(via: LogVia) -> [u8; servo::telemetry::HEADER_SIZE] {
    Header {
        via,
        period_ns: 1_000_000,
        start_ns: 0,
        kp: 0.06,
        ki: 0.02,
        kd: 0.002,
        limit: 1.0,
    }
    .encode()
}

fn temp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("servo-{}-{name}", std::process::id()))
}

/// A log file with its header written, as `servo run` opens it.
fn file_target(name: &str, via: LogVia) -> (Target, std::path::PathBuf) {
    let path = temp(name);
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(&header(via)).unwrap();
    (
        Target {
            file,
            seekable: true,
        },
        path,
    )
}

/// Runs the loop through `log` (with the tee), returns what the loop made.
fn run_through<L: LogPath>(log: L) -> (Vec<RecordBytes>, L) {
    let plant = plant();
    let mut rig = SimRig::new(&plant, controller());
    let mut kept = Vec::with_capacity(CYCLES as usize);
    let stop = AtomicBool::new(false);
    let mut tee = Tee {
        inner: log,
        kept: &mut kept,
    };
    let (stats, r) = run_loop(&mut rig, &mut tee, &settings(), &stop);
    assert!(r.is_ok());
    assert_eq!(stats.cycles, CYCLES);
    let log = tee.inner;
    (kept, log)
}

/// The log decodes to exactly the records the loop made, in order.
fn check(bytes: &[u8], via: LogVia, kept: &[RecordBytes], out: &Outcome) {
    assert_eq!(out.error, None, "{via:?}");
    assert_eq!((out.written, out.lost), (CYCLES, 0), "{via:?}");
    let log = decode::parse(bytes).unwrap();
    assert_eq!(log.header.via, via);
    assert_eq!(log.trailing, 0);
    let want: Vec<Record> = kept.iter().map(Record::decode).collect();
    assert_eq!(
        log.records, want,
        "{via:?}: the log is not what the loop made"
    );
    for (i, r) in log.records.iter().enumerate() {
        assert_eq!(r.cycle as usize, i);
        assert_eq!(r.lost, 0);
    }
    // The controller moved the motor: the records are not all alike.
    assert!(
        log.records.last().unwrap().position > 20,
        "{:?}",
        log.records.last()
    );
}

#[test]
fn the_counting_allocator_counts() {
    assert_eq!(
        heap_ops_during(|| drop(std::hint::black_box(Box::new(5u64)))),
        2
    );
}

#[test]
fn direct_writes_reach_a_file_and_a_pipe() {
    let (t, path) = file_target("direct.log", LogVia::Direct);
    let (kept, log) = run_through(DirectLog::new(t));
    let out = log.finish();
    check(&std::fs::read(&path).unwrap(), LogVia::Direct, &kept, &out);
    let _ = std::fs::remove_file(&path);

    let (mut rd, mut wr) = rtlat::rt::pipe().unwrap();
    wr.write_all(&header(LogVia::Direct)).unwrap();
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        rd.read_to_end(&mut v).unwrap();
        v
    });
    let (kept, log) = run_through(DirectLog::new(Target {
        file: wr,
        seekable: false,
    }));
    let out = log.finish();
    check(&reader.join().unwrap(), LogVia::Direct, &kept, &out);
}

#[test]
fn the_logger_thread_writes_everything() {
    let (t, path) = file_target("thread.log", LogVia::Thread);
    let mut queue: Box<Queue> = Box::default();
    let (producer, consumer) = queue.split();
    let (sync, done) = (AtomicBool::new(false), AtomicBool::new(false));
    let (kept, out) = std::thread::scope(|s| {
        let logger = s.spawn(|| logger_thread(consumer, &t, &sync, &done));
        let (kept, log) = run_through(ThreadLog::new(producer, &sync));
        assert_eq!(log.lost(), 0);
        done.store(true, Ordering::Release);
        (kept, logger.join().unwrap())
    });
    check(&std::fs::read(&path).unwrap(), LogVia::Thread, &kept, &out);
    let _ = std::fs::remove_file(&path);
}

/// io_uring where the system has it (qemu-user does not: ENOSYS; the
/// guest tests cover it there).
#[test]
fn io_uring_submissions_land_in_place_plain_and_sqpoll() {
    for (via, idle) in [(LogVia::IoUring, None), (LogVia::IoUringSqpoll, Some(10))] {
        let (t, path) = file_target("uring.log", via);
        let log = match UringLog::new(t, idle) {
            Ok(l) => l,
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
                eprintln!("SKIPPED: no io_uring here (qemu-user?): {e}");
                return;
            }
            Err(e) => panic!("io_uring set-up: {e}"),
        };
        let (kept, log) = run_through(log);
        let out = log.finish();
        check(&std::fs::read(&path).unwrap(), via, &kept, &out);
        let _ = std::fs::remove_file(&path);
    }
}

/// FlexSC against the flexsc library's emulator of the kernel side.
#[test]
#[cfg_attr(
    not(target_arch = "arm"),
    ignore = "ARM EABI only (system call numbers and argument words): make host-test runs it"
)]
fn flexsc_posts_land_in_place() {
    let fx = flexsc::FlexSc::emulated(&flexsc::Config {
        npages: 1,
        nworkers: 1,
        ..flexsc::Config::default()
    })
    .unwrap();
    let (t, path) = file_target("flexsc.log", LogVia::FlexSc);
    let (kept, log) = run_through(FlexScLog::with(fx, t));
    let out = log.finish();
    check(&std::fs::read(&path).unwrap(), LogVia::FlexSc, &kept, &out);
    let _ = std::fs::remove_file(&path);
}

/// The loop itself: no heap operation, with each path.
#[test]
fn the_control_loop_does_not_allocate() {
    fn loop_ops<L: LogPath>(mut log: L) -> (usize, L) {
        let plant = plant();
        let mut rig = SimRig::new(&plant, controller());
        let stop = AtomicBool::new(false);
        let mut r = Ok(());
        let mut cycles = 0;
        let ops = heap_ops_during(|| {
            let (st, res) = run_loop(&mut rig, &mut log, &settings(), &stop);
            cycles = st.cycles;
            r = res;
        });
        assert!(r.is_ok());
        assert_eq!(cycles, CYCLES);
        (ops, log)
    }
    assert_eq!(loop_ops(NoLog).0, 0, "no log");
    let (t, path) = file_target("noalloc-direct.log", LogVia::Direct);
    let (ops, log) = loop_ops(DirectLog::new(t));
    assert_eq!(ops, 0, "direct");
    assert_eq!(log.finish().written, CYCLES);

    let (t, _) = file_target("noalloc-direct.log", LogVia::Thread);
    let mut queue: Box<Queue> = Box::default();
    let (producer, consumer) = queue.split();
    let (sync, done) = (AtomicBool::new(false), AtomicBool::new(false));
    std::thread::scope(|s| {
        let logger = s.spawn(|| logger_thread(consumer, &t, &sync, &done));
        let (ops, _) = loop_ops(ThreadLog::new(producer, &sync));
        assert_eq!(ops, 0, "thread (the loop's side)");
        done.store(true, Ordering::Release);
        assert_eq!(logger.join().unwrap().written, CYCLES);
    });

    let (t, _) = file_target("noalloc-direct.log", LogVia::IoUring);
    match UringLog::new(t, None) {
        Ok(log) => {
            let (ops, log) = loop_ops(log);
            assert_eq!(ops, 0, "io_uring");
            assert_eq!(log.finish().written, CYCLES);
        }
        Err(e) => eprintln!("SKIPPED io_uring part: {e}"),
    }

    if cfg!(target_arch = "arm") {
        let fx = flexsc::FlexSc::emulated(&flexsc::Config {
            npages: 1,
            nworkers: 1,
            ..flexsc::Config::default()
        })
        .unwrap();
        let (t, _) = file_target("noalloc-direct.log", LogVia::FlexSc);
        let (ops, log) = loop_ops(FlexScLog::with(fx, t));
        assert_eq!(ops, 0, "flexsc");
        assert_eq!(log.finish().written, CYCLES);
    }
    let _ = std::fs::remove_file(&path);
}
