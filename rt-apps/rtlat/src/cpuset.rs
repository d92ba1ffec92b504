//! CPU list parsing for `-a/--affinity` and `--mainaffinity`.
//!
//! cyclictest hands the string to libnuma's `numa_parse_cpustring_all()`.
//! The accepted syntax here is the same subset people use with cyclictest:
//!
//! * `all`: every configured CPU;
//! * a comma-separated list of CPUs and inclusive ranges: `0`, `3-5,0`;
//! * a leading `!` inverts the list (all configured CPUs except these);
//! * a leading `+` makes the numbers relative to the CPUs this process may
//!   run on (`+0-1` = the first two allowed CPUs).
//!
//! As in cyclictest, a list with `!` or `+` is intersected with the current
//! affinity. A CPU number outside the configured CPUs, a malformed list or an
//! empty result is an error.

/// Error text for a CPU list that cannot be used.
pub type CpuSetError = String;

/// Parses `spec` into a sorted, de-duplicated list of CPU numbers.
///
/// `max_cpus` is the number of configured CPUs (`_SC_NPROCESSORS_CONF`),
/// `allowed` the CPUs of the current affinity mask (sorted).
pub fn parse_cpuset(
    spec: &str,
    max_cpus: usize,
    allowed: &[usize],
) -> Result<Vec<usize>, CpuSetError> {
    let bad = |why: &str| format!("invalid CPU list '{spec}': {why}");
    let mut s = spec.trim();
    if s.is_empty() {
        return Err(bad("empty"));
    }
    let invert = s.starts_with('!');
    if invert {
        s = &s[1..];
    }
    let relative = s.starts_with('+');
    if relative {
        s = &s[1..];
    }

    let mut mask = vec![false; max_cpus];
    if s == "all" {
        mask.iter_mut().for_each(|b| *b = true);
    } else {
        for item in s.split(',') {
            let (lo, hi) = match item.split_once('-') {
                Some((a, b)) => (a, b),
                None => (item, item),
            };
            let lo = resolve_cpu(lo, max_cpus, allowed, relative).map_err(|e| bad(&e))?;
            let hi = resolve_cpu(hi, max_cpus, allowed, relative).map_err(|e| bad(&e))?;
            if hi < lo {
                return Err(bad(&format!("range {item} is reversed")));
            }
            mask[lo..=hi].iter_mut().for_each(|b| *b = true);
        }
    }
    if invert {
        mask.iter_mut().for_each(|b| *b = !*b);
    }
    if invert || relative {
        for (cpu, bit) in mask.iter_mut().enumerate() {
            if !allowed.contains(&cpu) {
                *bit = false;
            }
        }
    }
    let cpus: Vec<usize> = mask
        .iter()
        .enumerate()
        .filter_map(|(cpu, &set)| set.then_some(cpu))
        .collect();
    if cpus.is_empty() {
        return Err(bad("no CPU selected"));
    }
    Ok(cpus)
}

fn resolve_cpu(
    num: &str,
    max_cpus: usize,
    allowed: &[usize],
    relative: bool,
) -> Result<usize, String> {
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("'{num}' is not a CPU number"));
    }
    let n: usize = num
        .parse()
        .map_err(|_| format!("'{num}' is out of range"))?;
    let cpu = if relative {
        *allowed
            .get(n)
            .ok_or_else(|| format!("+{n}: only {} CPUs are allowed", allowed.len()))?
    } else {
        n
    };
    if cpu >= max_cpus {
        return Err(format!(
            "CPU {cpu} does not exist (CPUs 0-{} configured)",
            max_cpus.saturating_sub(1)
        ));
    }
    Ok(cpu)
}

/// Formats a CPU list compactly (`0-3,6`), for messages.
pub fn format_cpuset(cpus: &[usize]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < cpus.len() {
        let start = cpus[i];
        let mut end = start;
        while i + 1 < cpus.len() && cpus[i + 1] == end + 1 {
            i += 1;
            end = cpus[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}-{end}"));
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL4: [usize; 4] = [0, 1, 2, 3];

    #[test]
    fn single_list_and_ranges() {
        assert_eq!(parse_cpuset("2", 4, &ALL4).unwrap(), vec![2]);
        assert_eq!(parse_cpuset("3-5,0", 8, &ALL4).unwrap(), vec![0, 3, 4, 5]);
        assert_eq!(parse_cpuset("1,1,0-1", 4, &ALL4).unwrap(), vec![0, 1]);
        assert_eq!(parse_cpuset("all", 3, &ALL4).unwrap(), vec![0, 1, 2]);
    }

    #[test]
    fn invert_and_relative_use_current_affinity() {
        let allowed = [1, 2, 3];
        assert_eq!(parse_cpuset("!1", 4, &allowed).unwrap(), vec![2, 3]);
        assert_eq!(parse_cpuset("+0-1", 4, &allowed).unwrap(), vec![1, 2]);
        assert!(parse_cpuset("+3", 4, &allowed).is_err());
    }

    #[test]
    fn errors() {
        for bad in [
            "", "x", "1-", "-1", "2-1", "0,,1", "4", "0-9", "1.5", "!0-3",
        ] {
            assert!(
                parse_cpuset(bad, 4, &ALL4).is_err(),
                "{bad:?} should be rejected"
            );
        }
        let e = parse_cpuset("7", 4, &ALL4).unwrap_err();
        assert!(e.contains("CPU 7 does not exist"), "{e}");
    }

    #[test]
    fn formats() {
        assert_eq!(format_cpuset(&[0, 1, 2, 3, 6, 8, 9]), "0-3,6,8-9");
        assert_eq!(format_cpuset(&[5]), "5");
    }
}
