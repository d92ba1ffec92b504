//! Scheduling policy and priority, memory locking.

use std::io;

/// Sets the calling thread's policy (`libc::SCHED_*`, flags such as
/// `SCHED_RESET_ON_FORK` included) and priority: `sched_setscheduler(0, …)`
/// acts on the calling thread on Linux.
pub fn set_scheduler(policy: libc::c_int, priority: i32) -> io::Result<()> {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: `param` is a valid sched_param that outlives the call; pid 0
    // names the calling thread.
    if unsafe { libc::sched_setscheduler(0, policy, &param) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Raises the soft `RLIMIT_RTPRIO` to `priority` when the hard limit allows
/// it (cyclictest does this before retrying a refused `SCHED_FIFO`).
/// Returns whether the limit was raised.
pub fn raise_rtprio_limit(policy: libc::c_int, priority: i32) -> bool {
    // SAFETY: takes a plain integer, no memory access.
    let policy_max = unsafe { libc::sched_get_priority_max(policy) };
    if policy_max < 0 {
        return false;
    }
    let mut rlim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `rlim` is a valid, writable rlimit owned by this frame.
    if unsafe { libc::getrlimit(libc::RLIMIT_RTPRIO, &mut rlim) } != 0 {
        return false;
    }
    let lim = |v: libc::rlim_t| {
        if v == libc::RLIM_INFINITY {
            policy_max as i64
        } else {
            v as i64
        }
    };
    let (soft, hard) = (lim(rlim.rlim_cur), lim(rlim.rlim_max));
    let prio = priority as i64;
    if prio > soft && prio <= hard {
        rlim.rlim_cur = prio as libc::rlim_t;
        // SAFETY: `rlim` is a valid rlimit that outlives the call.
        return unsafe { libc::setrlimit(libc::RLIMIT_RTPRIO, &rlim) } == 0;
    }
    false
}

/// `mlockall(MCL_CURRENT | MCL_FUTURE)`.
pub fn mlockall() -> io::Result<()> {
    // SAFETY: mlockall takes only flags and touches no memory of ours.
    if unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sched_other_is_always_allowed_and_checked() {
        set_scheduler(libc::SCHED_OTHER, 0).unwrap();
        let e = set_scheduler(libc::SCHED_OTHER, 5).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
        // SAFETY: pid 0 is the calling thread; no memory is touched.
        assert_eq!(unsafe { libc::sched_getscheduler(0) }, libc::SCHED_OTHER);
        // Nothing to raise for SCHED_OTHER's priority 0.
        assert!(!raise_rtprio_limit(libc::SCHED_OTHER, 0));
    }
}
