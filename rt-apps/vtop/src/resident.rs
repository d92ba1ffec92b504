//! "Is all of this buffer in RAM?": the real-time use case.
//!
//! A real-time application locks its memory (`mlockall(MCL_CURRENT |
//! MCL_FUTURE)`, or `mlock()` of its buffers) so that no page fault can
//! delay it. [`check_resident`] asks the kernel, page by page, whether every
//! page of a range is present, and reports the runs of pages that are not,
//! with the reason ([`Error::NotPresent`]: never touched or swapped out;
//! [`Error::NotMapped`]: a hole in the range).

use crate::{page_size, phys_addr, Error, Process};

/// A run of consecutive pages that failed the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gap {
    /// Address of the first page of the run (page aligned).
    pub start: usize,
    /// Number of pages in the run.
    pub pages: usize,
    /// Why these pages are not resident.
    pub error: Error,
}

/// The result of [`check_resident`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Residency {
    /// Address of the first page checked (the range's start, rounded down).
    pub start: usize,
    /// Number of pages checked: every page that overlaps the range.
    pub pages: usize,
    /// Number of those pages that are present.
    pub resident: usize,
    /// Page size used.
    pub page_size: usize,
    /// The pages that are not present, in address order.
    pub gaps: Vec<Gap>,
}

impl Residency {
    /// Every page of the range is present.
    pub fn all_resident(&self) -> bool {
        self.resident == self.pages
    }

    /// End of the last page checked (exclusive); 64-bit because the last
    /// page of the address space ends at 2^32 on a 32-bit machine.
    pub fn end(&self) -> u64 {
        self.start as u64 + (self.pages as u64) * self.page_size as u64
    }
}

/// The start addresses of the pages that overlap `[start, start + len)`,
/// in order. Empty if `len` is 0; a range running past the end of the
/// address space stops at its last page.
pub fn page_starts(
    start: usize,
    len: usize,
    page_size: usize,
) -> impl ExactSizeIterator<Item = usize> {
    assert!(page_size.is_power_of_two(), "page size {page_size}");
    let first = start & !(page_size - 1);
    let ps = page_size as u128;
    let end = (start as u128 + len as u128).min(usize::MAX as u128 + 1);
    let count = if len == 0 {
        0
    } else {
        (end - first as u128).div_ceil(ps) as usize
    };
    (0..count).map(move |i| first + i * page_size)
}

/// Checks that every page overlapping `[start, start + len)` in `process`
/// is present. Per-page problems (not present, not mapped, kernel address)
/// are reported in [`Residency::gaps`]; an error that concerns the whole
/// process (no privilege, no such process, kernel without the system call)
/// is returned as `Err`.
///
/// Like [`phys_addr`], this does not fault pages in, and it is a snapshot.
pub fn check_resident(process: Process, start: usize, len: usize) -> Result<Residency, Error> {
    walk(
        start,
        len,
        page_size(),
        |addr| phys_addr(process, addr),
        |_, _| {},
    )
}

/// [`check_resident`] with the translation supplied by the caller, which
/// also sees every page's result (`on_page`), for the CLI's verbose mode
/// and for tests.
pub fn walk(
    start: usize,
    len: usize,
    page_size: usize,
    mut translate: impl FnMut(usize) -> Result<u64, Error>,
    mut on_page: impl FnMut(usize, Result<u64, Error>),
) -> Result<Residency, Error> {
    let pages = page_starts(start, len, page_size);
    let mut r = Residency {
        start: start & !(page_size - 1),
        pages: pages.len(),
        resident: 0,
        page_size,
        gaps: Vec::new(),
    };
    for page in pages {
        let result = translate(page);
        on_page(page, result);
        match result {
            Ok(_) => r.resident += 1,
            Err(e) if e.is_per_address() => match r.gaps.last_mut() {
                Some(g) if g.error == e && g.start + g.pages * page_size == page => g.pages += 1,
                _ => r.gaps.push(Gap {
                    start: page,
                    pages: 1,
                    error: e,
                }),
            },
            Err(e) => return Err(e),
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_overlapping_a_range() {
        let p = |s, l| page_starts(s, l, 4096).collect::<Vec<_>>();
        assert_eq!(p(0x1000, 0x1000), [0x1000]);
        assert_eq!(p(0x1000, 0x1001), [0x1000, 0x2000]);
        // Unaligned start: the first page is the one containing it.
        assert_eq!(p(0x1fff, 2), [0x1000, 0x2000]);
        assert_eq!(p(0x1234, 1), [0x1000]);
        assert_eq!(p(0x1234, 0), Vec::<usize>::new());
        assert_eq!(page_starts(0x10000, 64 * 1024, 4096).len(), 16);
        assert_eq!(page_starts(0x10000, 64 * 1024, 16384).len(), 4);
        // The last page of the address space, and a range running past it.
        let top = usize::MAX & !0xfff;
        assert_eq!(p(top, 0x1000), [top]);
        assert_eq!(p(top - 0x1000, usize::MAX), [top - 0x1000, top]);
    }

    /// A fake address space: pages 0x10000..0x18000 mapped, 0x12000 and
    /// 0x13000 not present, 0x16000 not mapped.
    fn fake(addr: usize) -> Result<u64, Error> {
        match addr {
            0x12000 | 0x13000 => Err(Error::NotPresent),
            0x16000 => Err(Error::NotMapped),
            0x10000..0x18000 => Ok(0x6000_0000 + addr as u64),
            _ => Err(Error::NotMapped),
        }
    }

    #[test]
    fn gaps_are_runs_of_the_same_error() {
        let mut seen = Vec::new();
        let r = walk(0x10010, 0x8000 - 0x10, 4096, fake, |a, res| {
            seen.push((a, res))
        })
        .unwrap();
        assert_eq!(r.start, 0x10000);
        assert_eq!(r.end(), 0x18000);
        assert_eq!((r.pages, r.resident), (8, 5));
        assert!(!r.all_resident());
        assert_eq!(
            r.gaps,
            [
                Gap {
                    start: 0x12000,
                    pages: 2,
                    error: Error::NotPresent
                },
                Gap {
                    start: 0x16000,
                    pages: 1,
                    error: Error::NotMapped
                },
            ]
        );
        assert_eq!(seen.len(), 8);
        assert_eq!(seen[1], (0x11000, Ok(0x6001_1000)));
        assert_eq!(seen[2], (0x12000, Err(Error::NotPresent)));

        // Different errors next to each other are different gaps; a hole
        // between two runs of the same error splits them too.
        let r = walk(0x15000, 0x5000, 4096, fake, |_, _| {}).unwrap();
        assert_eq!(r.resident, 2);
        assert_eq!(
            r.gaps,
            [
                Gap {
                    start: 0x16000,
                    pages: 1,
                    error: Error::NotMapped
                },
                Gap {
                    start: 0x18000,
                    pages: 2,
                    error: Error::NotMapped
                },
            ]
        );

        let r = walk(0x10000, 0x2000, 4096, fake, |_, _| {}).unwrap();
        assert!(r.all_resident() && r.gaps.is_empty());
        // An empty range is vacuously resident.
        let r = walk(0x10000, 0, 4096, fake, |_, _| panic!("no pages")).unwrap();
        assert!(r.all_resident() && r.pages == 0);
    }

    #[test]
    fn whole_process_errors_stop_the_walk() {
        let mut calls = 0;
        let r = walk(
            0x10000,
            0x10000,
            4096,
            |_| {
                calls += 1;
                Err(Error::PermissionDenied)
            },
            |_, _| {},
        );
        assert_eq!(r, Err(Error::PermissionDenied));
        assert_eq!(calls, 1);
        let r = walk(
            0x10000,
            0x3000,
            4096,
            |a| {
                if a == 0x11000 {
                    Err(Error::NoSuchProcess)
                } else {
                    Ok(1)
                }
            },
            |_, _| {},
        );
        assert_eq!(r, Err(Error::NoSuchProcess));
    }

    #[test]
    fn kernel_addresses_are_per_page() {
        let r = walk(
            0xbf00_0000 - 0x2000,
            0x4000,
            4096,
            |a| {
                if a >= 0xbf00_0000 {
                    Err(Error::KernelAddress)
                } else {
                    Ok(a as u64)
                }
            },
            |_, _| {},
        )
        .unwrap();
        assert_eq!(r.resident, 2);
        assert_eq!(
            r.gaps,
            [Gap {
                start: 0xbf00_0000,
                pages: 2,
                error: Error::KernelAddress
            }]
        );
    }
}
