//! The posting path does not touch the heap: a counting global allocator
//! records every allocation, reallocation and deallocation the current
//! thread makes while it posts (and waits) through an emulated region.
#![cfg(target_arch = "arm")]

mod common;

use common::{close, lock, pipe, tmpfile};
use flexsc::{Call, Config, FlexSc, KernelTimespec};
use rt_utils::alloc_count::{heap_ops_during, Counting};
use std::os::fd::AsRawFd;

#[global_allocator]
static ALLOC: Counting = Counting;

#[test]
fn counter_sees_allocations() {
    let n = heap_ops_during(|| drop(std::hint::black_box(Box::new(5u64))));
    assert_eq!(n, 2, "the counting allocator must see alloc + dealloc");
}

fn exercise(fx: &FlexSc, fd: i32, r: i32, w: i32) {
    let pid = std::process::id() as usize;
    for k in 0..200u64 {
        fx.pwrite_detached(fd, b"detached record\n", k * 16)
            .unwrap();
        let t = fx.write_copy(w, b"xy").unwrap();
        assert_eq!(fx.wait(t).unwrap(), 2);
        let t = fx.getpid().unwrap();
        assert_eq!(fx.wait(t).unwrap(), pid);
        let [a, b] = fx
            .post_batch([Call::getpid(), Call::sched_yield()])
            .unwrap();
        assert_eq!(fx.wait_all([a, b]), [Ok(pid), Ok(0)]);
        let data = [7u8; 64];
        let mut back = [0u8; 2];
        let mut ts = KernelTimespec::default();
        fx.scope(|s| {
            let t = s.pwrite64(fd, &data, 1 << 20).unwrap();
            let rd = s.read(r, &mut back).unwrap();
            let ct = s.clock_gettime(libc::CLOCK_MONOTONIC, &mut ts).unwrap();
            assert_eq!(s.wait(t).unwrap(), 64);
            assert_eq!(rd.wait().0.unwrap(), 2);
            assert_eq!(ct.wait().0.unwrap(), 0);
        });
        assert_eq!(&back, b"xy");
        assert!(ts.tv_sec > 0 || ts.tv_nsec > 0);
        assert_eq!(fx.call(Call::fsync(fd)).unwrap(), 0);
    }
    fx.drain().unwrap();
}

#[test]
fn posting_and_waiting_do_not_allocate() {
    let _g = lock();
    let fx = FlexSc::emulated(&Config::default()).unwrap();
    let f = tmpfile();
    let (r, w) = pipe();
    // Warm up (lazy statics of std, first use of thread locals).
    exercise(&fx, f.as_raw_fd(), r, w);
    let ops = heap_ops_during(|| exercise(&fx, f.as_raw_fd(), r, w));
    assert_eq!(ops, 0, "heap operations on the posting path");
    close(r);
    close(w);
}

#[test]
fn fallback_mode_does_not_allocate_either() {
    let fx = FlexSc::fallback();
    let f = tmpfile();
    let (r, w) = pipe();
    exercise(&fx, f.as_raw_fd(), r, w);
    let ops = heap_ops_during(|| exercise(&fx, f.as_raw_fd(), r, w));
    assert_eq!(ops, 0, "heap operations in fallback mode");
    close(r);
    close(w);
}
