//! The whole user-side protocol against the user-space emulator of the
//! kernel side (`FlexSc::emulated`). On armv7 (qemu-user) the entries'
//! words are real ARM EABI system calls.
#![cfg(target_arch = "arm")]

mod common;

use common::{close, emulated, lock, pipe, tmpfile};
use flexsc::{Call, Config, Error, FlexSc, KernelTimespec, Policy, Stat64};
use rtflex_uapi::flexsc::{self as abi, BLOCKED, BUSY, FREE, MAGIC};
use rtflex_uapi::nr;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

fn getpid() -> usize {
    std::process::id() as usize
}

#[test]
fn real_registration_is_unsupported_under_qemu_user() {
    // qemu-arm answers ENOSYS for the unknown system call 473.
    assert_eq!(
        FlexSc::register(&Config::default()).unwrap_err(),
        Error::Unsupported
    );
    let fx = FlexSc::register_or_fallback(&Config::default()).unwrap();
    assert!(fx.is_fallback());
    assert_eq!(fx.call(Call::getpid()).unwrap(), getpid());
}

#[test]
fn emulated_region_has_the_kernel_layout() {
    let _g = lock();
    let fx = emulated(&Config {
        npages: 3,
        nworkers: 2,
        ..Config::default()
    });
    let (addr, len) = fx.region().unwrap();
    assert_eq!(addr % 4096, 0);
    assert_eq!(len, 4 * 4096);
    assert_eq!(fx.nentries(), 192);
    let c = fx.ctrl_snapshot().unwrap();
    assert_eq!(c.magic, MAGIC);
    assert_eq!(c.version, 1);
    assert_eq!(c.nentries, 192);
    assert_eq!(c.nworkers, 2);
    assert_eq!(c.entries_offset, 4096);
    for i in 0..192 {
        assert_eq!(fx.entry_status(i), Some(FREE));
    }
    assert_eq!(fx.entry_status(192), None);
}

#[test]
fn emulator_checks_the_configuration_like_the_kernel() {
    let _g = lock();
    let bad = [
        Config {
            npages: 0,
            ..Config::default()
        },
        Config {
            npages: 17,
            ..Config::default()
        },
        Config {
            nworkers: 0,
            ..Config::default()
        },
        Config {
            nworkers: 33,
            ..Config::default()
        },
        Config {
            poll_us: 10_001,
            ..Config::default()
        },
        Config {
            policy: Policy::Fifo(0),
            ..Config::default()
        },
        Config {
            policy: Policy::Rr(100),
            ..Config::default()
        },
        Config {
            cpus: 1 << 63,
            ..Config::default()
        },
    ];
    for cfg in bad {
        assert_eq!(
            FlexSc::emulated(&cfg).unwrap_err(),
            Error::Errno(libc::EINVAL),
            "{cfg:?}"
        );
    }
    let fx = emulated(&Config::default());
    assert_eq!(
        FlexSc::emulated(&Config::default()).unwrap_err(),
        Error::Errno(libc::EBUSY)
    );
    drop(fx);
    // Unmapped: the process may register again.
    drop(emulated(&Config::default()));
}

#[test]
fn calls_give_the_same_results_as_direct_system_calls() {
    let _g = lock();
    let fx = emulated(&Config::default());
    assert_eq!(fx.call(Call::getpid()).unwrap(), getpid());
    assert_eq!(
        fx.call(Call::getppid()).unwrap(),
        std::os::unix::process::parent_id() as usize
    );
    // SAFETY: getuid takes no arguments and cannot fail.
    let uid = unsafe { libc::getuid() };
    assert_eq!(fx.call(Call::getuid()).unwrap(), uid as usize);
    let t = fx.getpid().unwrap();
    assert_eq!(fx.wait(t).unwrap(), getpid());

    let f = tmpfile();
    let fd = f.as_raw_fd();
    assert_eq!(fx.call(Call::write(fd, b"hello flexsc")).unwrap(), 12);
    assert_eq!(fx.call(Call::lseek(fd, 0, libc::SEEK_CUR)).unwrap(), 12);
    let mut buf = [0u8; 5];
    assert_eq!(fx.call(Call::pread64(fd, &mut buf, 6)).unwrap(), 5);
    assert_eq!(&buf, b"flexs");

    // 64-bit offsets above 4 GiB, checked with direct pread.
    let off = (5u64 << 32) + 123;
    assert_eq!(fx.call(Call::pwrite64(fd, b"far", off)).unwrap(), 3);
    let mut d = [0u8; 3];
    f.read_exact_at(&mut d, off).unwrap();
    assert_eq!(&d, b"far");
    let mut st = Stat64::default();
    assert_eq!(fx.call(Call::fstat64(fd, &mut st)).unwrap(), 0);
    assert_eq!(st.st_size as u64, off + 3);
    assert_eq!(fx.call(Call::ftruncate64(fd, 6 << 32)).unwrap(), 0);
    assert_eq!(f.metadata().unwrap().len(), 6 << 32);
    let mut pos = 0i64;
    assert_eq!(
        fx.call(Call::llseek(fd, 1 << 33, &mut pos, libc::SEEK_SET))
            .unwrap(),
        0
    );
    assert_eq!(pos, 1 << 33);

    // Errors come back as errno, as direct calls give them.
    let mut b = [0u8; 4];
    assert_eq!(
        fx.call(Call::read(-1, &mut b)).unwrap_err(),
        Error::Errno(libc::EBADF)
    );
    // SAFETY: a read into a kernel address: the kernel refuses it (EFAULT)
    // and writes nothing into our memory.
    let raw = unsafe { Call::raw(nr::READ, [fd as u32, 0xC000_0000, 4, 0, 0, 0]) };
    assert_eq!(fx.call(raw).unwrap_err(), Error::Errno(libc::EFAULT));
    assert_eq!(
        Call::read(-1, &mut b).run_direct().unwrap_err(),
        libc::EBADF
    );

    let mut ts = KernelTimespec::default();
    let before = Instant::now();
    fx.call(Call::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts))
        .unwrap();
    let mut direct = KernelTimespec::default();
    Call::clock_gettime(libc::CLOCK_MONOTONIC, &mut direct)
        .run_direct()
        .unwrap();
    let ns = |t: KernelTimespec| t.tv_sec as i128 * 1_000_000_000 + t.tv_nsec as i128;
    assert!(ns(direct) >= ns(ts));
    assert!(ns(direct) - ns(ts) <= before.elapsed().as_nanos() as i128 + 1_000_000);
}

#[test]
fn refused_calls_and_bad_entries_complete_with_enosys() {
    let _g = lock();
    let fx = emulated(&Config::default());
    for &(name, n) in abi::REFUSED {
        // SAFETY: refused calls never run; the words are zero anyway.
        let t = unsafe { fx.post_raw(n, [0; 6]) }.unwrap();
        assert_eq!(fx.wait(t), Err(Error::Errno(libc::ENOSYS)), "{name}");
    }
    // SAFETY: unknown number, never runs.
    let t = unsafe { fx.post_raw(0xFF_FFFF, [1, 2, 3, 4, 5, 6]) }.unwrap();
    assert_eq!(fx.wait(t), Err(Error::Errno(libc::ENOSYS)));
    // Still alive and working.
    assert_eq!(fx.call(Call::getpid()).unwrap(), getpid());
}

#[test]
fn a_blocked_call_does_not_stall_the_others() {
    let _g = lock();
    let fx = emulated(&Config {
        nworkers: 2,
        ..Config::default()
    });
    let (r, w) = pipe();
    let f = tmpfile();
    let mut buf = [0u8; 8];
    fx.scope(|s| {
        let rd = s.read(r, &mut buf).unwrap();
        let wr = s.write(f.as_raw_fd(), b"independent").unwrap();
        assert_eq!(s.wait(wr).unwrap(), 11);
        let st = fx.status(rd.ticket()).unwrap();
        assert!(st == BUSY || st == BLOCKED, "blocked read's entry is {st}");
        assert!(!fx.is_done(rd.ticket()));
        assert_eq!(fx.call(Call::write(w, b"wake")).unwrap(), 4);
        let (n, got) = rd.wait();
        assert_eq!(n.unwrap(), 4);
        assert_eq!(&got[..4], b"wake");
    });
    close(r);
    close(w);
}

#[test]
fn a_scope_waits_for_leaked_and_dropped_tickets() {
    let _g = lock();
    let fx = emulated(&Config::default());
    let (r, w) = pipe();
    let mut a = [0u8; 3];
    let mut b = [0u8; 3];
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        // SAFETY: writing 6 bytes from a live buffer to our pipe.
        assert_eq!(unsafe { libc::write(w, b"abcdef".as_ptr().cast(), 6) }, 6);
        w
    });
    let t0 = Instant::now();
    let escaped = fx.scope(|s| {
        let ta = s.read(r, &mut a).unwrap();
        let _leaked = std::mem::ManuallyDrop::new(ta);
        let tb = s.read(r, &mut b).unwrap();
        drop(tb);
        // A plain ticket may leave the scope, but its entry does not.
        s.post(Call::getpid()).unwrap()
    });
    // Both reads completed before the scope returned.
    assert!(t0.elapsed() >= Duration::from_millis(150));
    let mut all = [a, b].concat();
    all.sort_unstable();
    assert_eq!(&all, b"abcdef");
    assert_eq!(fx.wait(escaped), Err(Error::BadTicket));
    close(writer.join().unwrap());
    close(r);
    for i in 0..fx.nentries() {
        assert_eq!(fx.entry_status(i), Some(FREE), "entry {i}");
    }
}

#[test]
fn detached_writes_are_reaped_and_drain_reports_the_first_error() {
    let _g = lock();
    let fx = emulated(&Config::default());
    let f = tmpfile();
    let line = b"0123456789abcdef\n";
    // Far more than the 64 entries: later posts reap earlier ones.
    for k in 0..500u64 {
        loop {
            match fx.pwrite_detached(f.as_raw_fd(), line, k * line.len() as u64) {
                Ok(()) => break,
                Err(Error::Full) => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        }
    }
    fx.drain().unwrap();
    assert_eq!(f.metadata().unwrap().len(), 500 * line.len() as u64);
    let mut all = vec![0u8; 500 * line.len()];
    f.read_exact_at(&mut all, 0).unwrap();
    assert!(all.chunks(line.len()).all(|c| c == line));

    fx.write_detached(-1, b"lost").unwrap();
    fx.write_detached(f.as_raw_fd(), b"x").unwrap();
    assert_eq!(fx.drain(), Err(Error::Errno(libc::EBADF)));
    assert_eq!(fx.drain(), Ok(()));
    assert_eq!(
        fx.write_detached(1, &[0; 257]).unwrap_err(),
        Error::TooLarge
    );
    // The copy is taken at post time: the source may change at once.
    let mut data = *b"before";
    let t = fx.pwrite_copy(f.as_raw_fd(), &data, 0).unwrap();
    data.copy_from_slice(b"after!");
    assert_eq!(fx.wait(t).unwrap(), 6);
    let mut back = [0u8; 6];
    f.read_exact_at(&mut back, 0).unwrap();
    assert_eq!(&back, b"before");
    assert_eq!(&data, b"after!");
}

#[test]
fn full_region_then_detach_frees_entries() {
    let _g = lock();
    let fx = emulated(&Config::default());
    let tickets: Vec<_> = (0..64).map(|_| fx.getpid().unwrap()).collect();
    assert_eq!(fx.getpid().unwrap_err(), Error::Full);
    let refs: Vec<&_> = tickets.iter().collect();
    assert_eq!(
        fx.wait_some(&refs, 64, Some(Duration::from_secs(10))),
        Ok(64)
    );
    for t in tickets {
        fx.detach(t);
    }
    assert_eq!(fx.call(Call::getpid()).unwrap(), getpid());
    for i in 0..64 {
        assert_eq!(fx.entry_status(i), Some(FREE), "entry {i}");
    }
}

#[test]
fn batches_waits_and_kernel_wait() {
    let _g = lock();
    let fx = emulated(&Config {
        nworkers: 3,
        poll_us: 0,
        ..Config::default()
    });
    let [a, b, c, d] = fx
        .post_batch([
            Call::getpid(),
            Call::getuid(),
            Call::sched_yield(),
            Call::getpid(),
        ])
        .unwrap();
    // SAFETY: getuid takes no arguments.
    let uid = unsafe { libc::getuid() } as usize;
    assert_eq!(
        fx.wait_all([a, b, c, d]),
        [Ok(getpid()), Ok(uid), Ok(0), Ok(getpid())]
    );
    // A batch that does not fit takes nothing.
    let held: Vec<_> = (0..62).map(|_| fx.getpid().unwrap()).collect();
    assert_eq!(
        fx.post_batch([Call::getpid(), Call::getpid(), Call::getpid()])
            .unwrap_err(),
        Error::Full
    );
    let two = fx.post_batch([Call::getpid(), Call::getpid()]).unwrap();
    // All 64 entries are DONE once the calls ran.
    assert_eq!(fx.kernel_wait(64, Some(Duration::from_secs(10))), Ok(64));
    assert_eq!(fx.kernel_wait(65, None), Err(Error::Errno(libc::EINVAL)));
    for t in held.into_iter().chain(two) {
        assert_eq!(fx.wait(t).unwrap(), getpid());
    }
    assert_eq!(
        fx.kernel_wait(1, Some(Duration::from_millis(50))),
        Err(Error::TimedOut)
    );
    // Tickets of another FlexSc are refused.
    let other = FlexSc::fallback();
    let t = other.post(Call::getpid()).unwrap();
    assert_eq!(fx.wait(t), Err(Error::BadTicket));
}

#[test]
fn many_threads_post_concurrently() {
    let _g = lock();
    let fx = emulated(&Config {
        npages: 2,
        nworkers: 4,
        ..Config::default()
    });
    let f = tmpfile();
    let fd = f.as_raw_fd();
    std::thread::scope(|ts| {
        for th in 0..4u64 {
            let fx = &fx;
            ts.spawn(move || {
                for k in 0..150u64 {
                    let rec = [th as u8 + b'a'; 8];
                    let off = (th * 150 + k) * 8;
                    let t = loop {
                        match fx.pwrite_copy(fd, &rec, off) {
                            Err(Error::Full) => std::thread::yield_now(),
                            r => break r.unwrap(),
                        }
                    };
                    if k % 3 == 0 {
                        fx.detach(t);
                    } else {
                        assert_eq!(fx.wait(t).unwrap(), 8);
                    }
                    let t = loop {
                        match fx.getpid() {
                            Err(Error::Full) => std::thread::yield_now(),
                            r => break r.unwrap(),
                        }
                    };
                    assert_eq!(fx.wait(t).unwrap(), getpid());
                }
            });
        }
    });
    fx.drain().unwrap();
    let mut all = vec![0u8; 4 * 150 * 8];
    f.read_exact_at(&mut all, 0).unwrap();
    for (i, c) in all.chunks(150 * 8).enumerate() {
        assert!(c.iter().all(|&b| b == b'a' + i as u8), "thread {i}");
    }
}

#[test]
fn forked_child_cannot_use_the_region() {
    let _g = lock();
    let fx = emulated(&Config::default());
    // (qemu-user ignores MADV_DONTFORK, so whether the emulated region is
    // mapped in the child is not checked here; the guest tests check it
    // for the kernel's region.)
    // SAFETY: the child only calls async-signal-safe functions and reads
    // atomics / process-local state before _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let code = if !fx.is_forked() {
            1
        } else if fx.getpid().unwrap_err() != Error::Forked {
            2
        } else if fx.call(Call::getpid()).unwrap_err() != Error::Forked {
            3
        } else if fx.ctrl_snapshot().is_some() || fx.entry_status(0).is_some() {
            4
        } else {
            0
        };
        std::mem::forget(fx);
        // SAFETY: leave the child without running destructors.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child status {status:#x}"
    );
    assert_eq!(fx.call(Call::getpid()).unwrap(), getpid());
}

#[test]
fn drop_interrupts_calls_that_never_complete() {
    let _g = lock();
    let fx = emulated(&Config::default());
    let (r, w) = pipe();
    let buf: &'static mut [u8] = Box::leak(Box::new([0u8; 4]));
    let t = fx.post(Call::read(r, buf)).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert!(!fx.is_done(&t));
    let t0 = Instant::now();
    fx.shutdown(Duration::from_millis(100));
    assert!(t0.elapsed() < Duration::from_secs(5));
    close(r);
    close(w);
    // The process can register again.
    let fx = emulated(&Config::default());
    assert_eq!(fx.call(Call::getpid()).unwrap(), getpid());
}

/// Both protocols against the emulator: the control page says which is in
/// force; deferred posts are published only by `submit` (or the wait that
/// follows), counted in `ctrl.submitted` with the batch protocol; a batch
/// waiter leaves `wake_at` out of reach once woken; every result is the
/// direct call's.
#[test]
fn both_protocols_run_deferred_batches() {
    let _g = lock();
    for protocol in [
        flexsc::Protocol::Batch,
        flexsc::Protocol::Original,
        flexsc::Protocol::RunOnWait,
    ] {
        let fx = FlexSc::emulated_protocol(
            &Config {
                npages: 1,
                nworkers: 1,
                ..Config::default()
            },
            protocol,
        )
        .unwrap();
        let batch = protocol != flexsc::Protocol::Original;
        assert_eq!(fx.protocol(), protocol);
        let c = fx.ctrl_snapshot().unwrap();
        let features = match protocol {
            flexsc::Protocol::Original => 0,
            flexsc::Protocol::RunOnWait => abi::CFG_BATCH | abi::CFG_RUN_ON_WAIT,
            _ => abi::CFG_BATCH,
        };
        assert_eq!(c.features, features);
        // The one worker may be polling already.
        assert_eq!(c.submitted, 0);
        assert!(c.pollers <= 1, "{c:?}");
        for round in 0..3u32 {
            let tickets: Vec<_> = (0..40)
                // SAFETY: getpid takes no pointers.
                .map(|_| unsafe { fx.post_raw_deferred(nr::GETPID, [0; 6]) }.unwrap())
                .collect();
            if batch {
                assert_eq!(fx.ctrl_snapshot().unwrap().submitted, 40 * round);
            }
            if round == 0 {
                fx.submit();
            }
            // Rounds 1 and 2: the wait publishes them itself.
            let n = fx
                .wait_many(&tickets, tickets.len(), Some(Duration::from_secs(10)))
                .unwrap();
            assert_eq!(n, 40);
            let c = fx.ctrl_snapshot().unwrap();
            if batch {
                assert_eq!(c.submitted, 40 * (round + 1));
                assert!(!abi::reached(c.completions, c.wake_at), "{c:?}");
            } else {
                assert_eq!(c.submitted, 0);
            }
            for t in tickets {
                assert_eq!(fx.wait(t).unwrap(), getpid());
            }
        }
        fx.shutdown(Duration::from_secs(1));
    }
}
