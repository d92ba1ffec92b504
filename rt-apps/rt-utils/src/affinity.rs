//! CPU affinity of the calling thread and CPU counts.

use std::io;

/// Bits in a `cpu_set_t`: the highest CPU number it can hold, plus one.
const CAPACITY: usize = 8 * core::mem::size_of::<libc::cpu_set_t>();

/// Pins the calling thread to `cpus` (for the main thread: the process
/// leader). `EINVAL` for a CPU number a `cpu_set_t` cannot hold.
pub fn set_affinity(cpus: &[usize]) -> io::Result<()> {
    // SAFETY: cpu_set_t is a plain bit array for which all-zero is the
    // empty set.
    let mut set: libc::cpu_set_t = unsafe { core::mem::zeroed() };
    for &cpu in cpus {
        if cpu >= CAPACITY {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        // SAFETY: `cpu` was checked to be below the set's capacity in bits,
        // so CPU_SET writes inside `set`.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 names
    // the calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, core::mem::size_of_val(&set), &set) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Pins the calling thread to one CPU.
pub fn pin_to(cpu: usize) -> io::Result<()> {
    set_affinity(&[cpu])
}

/// The CPUs of a bitmap (bit N: CPU N), as [`set_affinity`] takes them.
pub fn cpus_of_mask(mask: u64) -> Vec<usize> {
    (0..64).filter(|&c| mask & (1 << c) != 0).collect()
}

/// CPUs in the calling thread's affinity mask, sorted.
pub fn current_affinity() -> io::Result<Vec<usize>> {
    // SAFETY: cpu_set_t is a plain bit array for which all-zero is valid.
    let mut set: libc::cpu_set_t = unsafe { core::mem::zeroed() };
    // SAFETY: `set` is a valid, writable cpu_set_t of the size passed; pid
    // 0 names the calling thread.
    let rc = unsafe { libc::sched_getaffinity(0, core::mem::size_of_val(&set), &mut set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((0..CAPACITY)
        // SAFETY: every index is below the set's capacity in bits, so
        // CPU_ISSET reads inside `set`.
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect())
}

/// Number of configured CPUs (`_SC_NPROCESSORS_CONF`), at least 1.
pub fn configured_cpus() -> usize {
    // SAFETY: sysconf takes an integer name and touches no memory of ours.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_CONF) };
    n.max(1) as usize
}

/// Number of online CPUs (`_SC_NPROCESSORS_ONLN`), at least 1.
pub fn online_cpus() -> usize {
    // SAFETY: sysconf takes an integer name and touches no memory of ours.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    n.max(1) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affinity_round_trip() {
        let cpus = current_affinity().unwrap();
        assert!(!cpus.is_empty());
        assert!(configured_cpus() >= online_cpus());
        pin_to(cpus[0]).unwrap();
        assert_eq!(current_affinity().unwrap(), [cpus[0]]);
        set_affinity(&cpus).unwrap();
        assert_eq!(current_affinity().unwrap(), cpus);
        let e = set_affinity(&[CAPACITY]).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
    }

    #[test]
    fn masks_become_cpu_lists() {
        assert_eq!(cpus_of_mask(0), Vec::<usize>::new());
        assert_eq!(cpus_of_mask(0b1011), [0, 1, 3]);
        assert_eq!(cpus_of_mask(1 << 63), [63]);
    }
}
