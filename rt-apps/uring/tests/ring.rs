//! The ring against the kernel: every completion comes back once with its
//! tag and the result the same call returns directly, writes land where
//! their offsets say, a full ring refuses more, and SQPOLL rings (pinned
//! and not, woken after their thread slept) do the same. qemu-user has no
//! io_uring (ENOSYS) and some sandboxes forbid it (EPERM): there the tests
//! say SKIPPED and return; in the guest image and on a Linux host they run.

use std::collections::BTreeSet;
use std::os::fd::AsFd;
use uring::{nop, write, Sqpoll, Uring};

/// A ring, or `None` (with the reason printed) where io_uring is missing.
fn ring(entries: u32, sqpoll: Option<Sqpoll>) -> Option<Uring> {
    match Uring::with_sqpoll(entries, sqpoll) {
        Ok(r) => Some(r),
        Err(e)
            if e.raw_os_error() == Some(libc_enosys())
                || e.raw_os_error() == Some(libc_eperm()) =>
        {
            eprintln!("SKIPPED: no io_uring here (qemu-user or a sandbox): {e}");
            None
        }
        Err(e) => panic!("io_uring set-up ({sqpoll:?}): {e}"),
    }
}

fn libc_enosys() -> i32 {
    rustix::io::Errno::NOSYS.raw_os_error()
}

fn libc_eperm() -> i32 {
    rustix::io::Errno::PERM.raw_os_error()
}

fn temp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("uring-test-{}-{name}", std::process::id()))
}

fn modes() -> [Option<Sqpoll>; 3] {
    [
        None,
        Some(Sqpoll {
            idle_ms: 1,
            cpu: None,
        }),
        Some(Sqpoll {
            idle_ms: 1,
            cpu: Some(0),
        }),
    ]
}

#[test]
fn nops_complete_once_each_and_a_full_ring_refuses() {
    for mode in modes() {
        let Some(mut r) = ring(8, mode) else { return };
        assert_eq!(r.is_sqpoll(), mode.is_some());
        let n = r.sq_entries();
        assert!(n >= 8, "{n}");
        for round in 0..3u64 {
            // An SQPOLL thread may not have moved the SQ head past the last
            // round's entries yet (see sq_space); bounded wait.
            let t0 = std::time::Instant::now();
            while r.sq_space() < n {
                assert!(
                    t0.elapsed().as_secs() < 10,
                    "{mode:?}: the SQ head never caught up"
                );
                std::thread::yield_now();
            }
            assert_eq!(r.sq_space(), n);
            for i in 0..u64::from(n) {
                assert!(r.push(&nop(round * 100 + i)), "{mode:?} push {i}");
            }
            assert!(
                !r.push(&nop(999)),
                "{mode:?}: a full ring took one more entry"
            );
            assert_eq!(r.in_flight(), n);
            r.submit_and_wait(n).unwrap();
            assert!(
                r.ready() >= n,
                "{mode:?}: waited for {n}, {} ready",
                r.ready()
            );
            let mut seen = BTreeSet::new();
            r.reap(|tag, res| {
                assert_eq!(res, 0, "{mode:?}: NOP {tag}");
                assert!(seen.insert(tag), "{mode:?}: {tag} completed twice");
            });
            let want: BTreeSet<u64> = (0..u64::from(n)).map(|i| round * 100 + i).collect();
            assert_eq!(seen, want, "{mode:?}");
            assert_eq!((r.in_flight(), r.ready()), (0, 0));
            // Long enough for an SQPOLL thread to go to sleep (idle 1 ms):
            // the next round must wake it.
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

#[test]
fn writes_land_at_their_offsets_with_the_direct_result() {
    for (k, mode) in modes().into_iter().enumerate() {
        let Some(mut r) = ring(16, mode) else { return };
        let path = temp(&format!("writes-{k}"));
        let f = std::fs::File::create(&path).unwrap();
        let chunks: Vec<[u8; 16]> = (0..10u8).map(|i| [b'a' + i; 16]).collect();
        // Out of order on purpose: the offsets, not the order, place them.
        for i in (0..10).rev() {
            let sqe = write(f.as_fd(), chunks[i].as_ptr(), 16, i as u64 * 16, i as u64);
            assert!(r.push(&sqe));
        }
        let mut results = Vec::new();
        r.wait_all(|tag, res| results.push((tag, res))).unwrap();
        results.sort();
        assert_eq!(
            results,
            (0..10).map(|i| (i, 16)).collect::<Vec<_>>(),
            "{mode:?}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), chunks.concat(), "{mode:?}");
        // Errors come back as -errno, as the direct call returns them: a
        // descriptor opened read-only cannot be written (EBADF).
        let ro = std::fs::File::open(&path).unwrap();
        assert!(r.push(&write(ro.as_fd(), chunks[0].as_ptr(), 16, 0, 77)));
        let mut got = Vec::new();
        r.wait_all(|tag, res| got.push((tag, res))).unwrap();
        assert_eq!(
            got,
            vec![(77, -rustix::io::Errno::BADF.raw_os_error())],
            "{mode:?}"
        );
        // Offset u64::MAX: the file position, as write(2).
        let mut results = Vec::new();
        let devnull = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .unwrap();
        assert!(r.push(&write(devnull.as_fd(), chunks[1].as_ptr(), 16, u64::MAX, 5)));
        r.wait_all(|tag, res| results.push((tag, res))).unwrap();
        assert_eq!(results, vec![(5, 16)], "{mode:?}");
        let _ = std::fs::remove_file(&path);
    }
}

#[test]
fn submit_without_waiting_then_reap_later() {
    let Some(mut r) = ring(4, None) else { return };
    assert!(r.push(&nop(1)));
    assert!(r.push(&nop(2)));
    r.submit().unwrap();
    // A plain ring issues NOPs inline in io_uring_enter: both are done.
    assert_eq!(r.ready(), 2);
    assert_eq!(r.in_flight(), 2);
    let mut tags = Vec::new();
    r.reap(|t, res| tags.push((t, res)));
    tags.sort();
    assert_eq!(tags, vec![(1, 0), (2, 0)]);
    // Nothing queued, nothing to wait for: no call, no hang.
    r.submit_and_wait(5).unwrap();
    r.wait_all(|_, _| panic!("nothing was in flight")).unwrap();
}

#[test]
fn bad_set_up_is_an_error() {
    // Not a power of two is rounded up by the kernel; 0 entries is EINVAL.
    match Uring::new(0, None) {
        Err(e) if e.raw_os_error() == Some(libc_enosys()) => {
            eprintln!("SKIPPED: no io_uring here: {e}")
        }
        Err(e) => assert_eq!(
            e.raw_os_error(),
            Some(rustix::io::Errno::INVAL.raw_os_error()),
            "{e}"
        ),
        Ok(_) => panic!("a ring of 0 entries was set up"),
    }
}
