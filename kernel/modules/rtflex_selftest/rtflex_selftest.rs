// SPDX-License-Identifier: GPL-2.0-only OR MIT

//! rtflex self-test module: proves that Rust modules built against the
//! rtflex kernel load, run and unload.
//!
//! On load it computes a checksum of its `seed` parameter with checked
//! arithmetic in a `KVec` (exercising the kernel allocator from Rust) and
//! logs it; the guest test recomputes the same value in user space and
//! compares. On unload it logs that it is gone.

use kernel::prelude::*;

module! {
    type: RtflexSelftest,
    name: "rtflex_selftest",
    authors: ["rtflex developers"],
    description: "rtflex: Rust module load/unload self-test",
    license: "Dual MIT/GPL",
    params: {
        seed: u32 {
            default: 1,
            description: "Seed for the self-test checksum",
        },
    },
}

/// Number of terms in the self-test series.
const TERMS: usize = 64;

struct RtflexSelftest {
    checksum: u32,
}

/// Sum of `seed * i` wrapping, for i in 1..=TERMS, built in a kernel vector.
fn checksum(seed: u32) -> Result<u32> {
    let mut terms = KVec::with_capacity(TERMS, GFP_KERNEL)?;
    for i in 1..=TERMS as u32 {
        terms.push(seed.wrapping_mul(i), GFP_KERNEL)?;
    }
    Ok(terms.iter().fold(0u32, |acc, t| acc.wrapping_add(*t)))
}

impl kernel::Module for RtflexSelftest {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let seed = *module_parameters::seed.value();
        let checksum = checksum(seed)?;
        pr_info!("loaded: seed={} checksum={}\n", seed, checksum);
        Ok(RtflexSelftest { checksum })
    }
}

impl Drop for RtflexSelftest {
    fn drop(&mut self) {
        pr_info!("unloaded: checksum={}\n", self.checksum);
    }
}
