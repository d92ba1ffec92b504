//! `/proc/<pid>/pagemap`: the kernel's other answer to "where is this page?",
//! used as an independent oracle for [`crate::phys_addr`].
//!
//! The file holds one native-endian 64-bit entry per virtual page, at offset
//! `(addr / page_size) * 8` (see the kernel's
//! `Documentation/admin-guide/mm/pagemap.rst`):
//!
//! | bits | meaning |
//! |---|---|
//! | 0-54 | page frame number if present (swap type and offset if swapped) |
//! | 55 | PTE is soft-dirty |
//! | 56 | page exclusively mapped |
//! | 57 | PTE is uffd-wp write-protected |
//! | 58-60 | zero |
//! | 61 | file page or shared anonymous page |
//! | 62 | swapped |
//! | 63 | present |
//!
//! Readers without `CAP_SYS_ADMIN` get the flags but a zero PFN.

use crate::{page_size, Process};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

/// Bit 63: a page is present (mapped in the page tables).
pub const PRESENT: u64 = 1 << 63;
/// Bit 62: the page is swapped out.
pub const SWAPPED: u64 = 1 << 62;
/// Bit 61: a file page or a shared anonymous page.
pub const FILE_OR_SHARED_ANON: u64 = 1 << 61;
/// Bit 56: the page is mapped exclusively (by this process only).
pub const EXCLUSIVE: u64 = 1 << 56;
/// Bit 55: the PTE is soft-dirty.
pub const SOFT_DIRTY: u64 = 1 << 55;
/// Bits 0-54: the page frame number of a present page.
pub const PFN_MASK: u64 = (1 << 55) - 1;

/// One pagemap entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PagemapEntry(pub u64);

impl PagemapEntry {
    /// A page is present.
    pub fn is_present(self) -> bool {
        self.0 & PRESENT != 0
    }

    /// The page is swapped out.
    pub fn is_swapped(self) -> bool {
        self.0 & SWAPPED != 0
    }

    /// A file page or a shared anonymous page (page cache, shmem).
    pub fn is_file_or_shared_anon(self) -> bool {
        self.0 & FILE_OR_SHARED_ANON != 0
    }

    /// Mapped by this process only.
    pub fn is_exclusive(self) -> bool {
        self.0 & EXCLUSIVE != 0
    }

    /// The PTE is soft-dirty.
    pub fn is_soft_dirty(self) -> bool {
        self.0 & SOFT_DIRTY != 0
    }

    /// The page frame number, if a page is present. Zero when the reader
    /// lacks `CAP_SYS_ADMIN` (the kernel hides PFNs).
    pub fn pfn(self) -> Option<u64> {
        self.is_present().then_some(self.0 & PFN_MASK)
    }

    /// The physical address of `addr`, if its page is present:
    /// PFN × page size + offset of `addr` in the page.
    pub fn phys_addr(self, addr: usize, page_size: usize) -> Option<u64> {
        let ps = page_size as u64;
        self.pfn().map(|pfn| pfn * ps + addr as u64 % ps)
    }
}

/// A pagemap file (or, for tests, anything holding entries in its format).
#[derive(Debug)]
pub struct Pagemap<R> {
    reader: R,
    page_size: usize,
}

impl Pagemap<File> {
    /// Opens `/proc/<pid>/pagemap` (`/proc/self/pagemap` for the caller).
    /// Another process's pagemap needs ptrace read access to it.
    pub fn open(process: Process) -> io::Result<Pagemap<File>> {
        let path = format!("{}/pagemap", process.proc_dir());
        let file =
            File::open(&path).map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))?;
        Ok(Pagemap::new(file, page_size()))
    }
}

impl<R: Read + Seek> Pagemap<R> {
    /// Entries read from `reader`, for pages of `page_size` bytes.
    pub fn new(reader: R, page_size: usize) -> Pagemap<R> {
        assert!(page_size.is_power_of_two(), "page size {page_size}");
        Pagemap { reader, page_size }
    }

    /// The entry of the page that contains `addr`.
    pub fn entry(&mut self, addr: usize) -> io::Result<PagemapEntry> {
        let offset = (addr / self.page_size) as u64 * 8;
        self.reader.seek(SeekFrom::Start(offset))?;
        let mut buf = [0u8; 8];
        self.reader.read_exact(&mut buf).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{addr:#x}: no pagemap entry (beyond the user address space)"),
                )
            } else {
                e
            }
        })?;
        Ok(PagemapEntry(u64::from_ne_bytes(buf)))
    }

    /// The physical address of `addr` (page frame and offset), `None` if
    /// no page is present there. A present page with a zero PFN is an error
    /// of kind `PermissionDenied`: the kernel hides PFNs from readers
    /// without `CAP_SYS_ADMIN` (a genuine physical page 0 is reserved on
    /// the boards rtflex supports and never mapped to user space).
    pub fn phys_addr(&mut self, addr: usize) -> io::Result<Option<u64>> {
        let entry = self.entry(addr)?;
        match entry.pfn() {
            None => Ok(None),
            Some(0) => Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "pagemap hides page frame numbers (needs CAP_SYS_ADMIN)",
            )),
            Some(_) => Ok(entry.phys_addr(addr, self.page_size)),
        }
    }
}

/// The pagemap entry of the page containing `addr` in `process`.
pub fn pagemap_entry(process: Process, addr: usize) -> io::Result<PagemapEntry> {
    Pagemap::open(process)?.entry(addr)
}

/// The physical address of `addr` in `process` according to
/// `/proc/<pid>/pagemap`: `Some(PFN × page size + offset)`, or `None` if no
/// page is present. See [`Pagemap::phys_addr`].
pub fn pagemap_phys_addr(process: Process, addr: usize) -> io::Result<Option<u64>> {
    Pagemap::open(process)?.phys_addr(addr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A pagemap image with these entries for pages 0, 1, 2, ...
    fn image(entries: &[u64]) -> Cursor<Vec<u8>> {
        Cursor::new(entries.iter().flat_map(|e| e.to_ne_bytes()).collect())
    }

    #[test]
    fn entry_bits_decode() {
        let e = PagemapEntry(PRESENT | EXCLUSIVE | SOFT_DIRTY | 0x8f3a1);
        assert!(e.is_present() && e.is_exclusive() && e.is_soft_dirty());
        assert!(!e.is_swapped() && !e.is_file_or_shared_anon());
        assert_eq!(e.pfn(), Some(0x8f3a1));
        assert_eq!(e.phys_addr(0x76f0_1234, 4096), Some(0x8f3a_1234));

        // The PFN field is 55 bits: flags above it never leak into it.
        let e = PagemapEntry(u64::MAX);
        assert_eq!(e.pfn(), Some((1 << 55) - 1));

        // LPAE: a PFN beyond 32-bit physical addresses stays 64-bit.
        let e = PagemapEntry(PRESENT | FILE_OR_SHARED_ANON | 0x80_0000);
        assert!(e.is_file_or_shared_anon());
        assert_eq!(e.phys_addr(0x1fff, 4096), Some(0x8_0000_0fff));

        // Swapped: bits 0-54 are a swap entry, not a PFN.
        let e = PagemapEntry(SWAPPED | 0x1234);
        assert!(e.is_swapped() && !e.is_present());
        assert_eq!(e.pfn(), None);
        assert_eq!(e.phys_addr(0x1000, 4096), None);

        assert_eq!(PagemapEntry(0).pfn(), None);
        // 16 KiB pages: the offset is the low 14 bits.
        assert_eq!(
            PagemapEntry(PRESENT | 3).phys_addr(0x7ffe_5abc, 16384),
            Some(3 * 16384 + 0x1abc)
        );
    }

    #[test]
    fn entries_are_read_at_the_page_index() {
        let mut pm = Pagemap::new(
            image(&[0, PRESENT | 0x60001, SWAPPED | 7, PRESENT | 0x9f000]),
            4096,
        );
        assert_eq!(pm.phys_addr(0x0000).unwrap(), None);
        assert_eq!(pm.phys_addr(0x1000).unwrap(), Some(0x6000_1000));
        assert_eq!(pm.phys_addr(0x1fff).unwrap(), Some(0x6000_1fff));
        assert_eq!(pm.phys_addr(0x2abc).unwrap(), None);
        assert!(pm.entry(0x2abc).unwrap().is_swapped());
        // Out of order: every read seeks.
        assert_eq!(pm.phys_addr(0x3008).unwrap(), Some(0x9f00_0008));
        assert_eq!(pm.phys_addr(0x1004).unwrap(), Some(0x6000_1004));
    }

    #[test]
    fn hidden_pfn_and_short_file_are_errors() {
        let mut pm = Pagemap::new(image(&[PRESENT | EXCLUSIVE]), 4096);
        let e = pm.phys_addr(0x10).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        assert!(e.to_string().contains("CAP_SYS_ADMIN"), "{e}");
        // A present page with a hidden PFN is still "present" for the entry.
        assert!(pm.entry(0x10).unwrap().is_present());

        let e = pm.entry(0x1000).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("0x1000"), "{e}");

        // Half an entry is not an entry.
        let mut pm = Pagemap::new(Cursor::new(vec![0u8; 12]), 4096);
        assert!(pm.entry(0x1000).is_err());
        assert_eq!(pm.entry(0).unwrap(), PagemapEntry(0));
    }

    #[test]
    fn own_pagemap_is_readable() {
        // Any kernel: a stack variable in use is present; without
        // CAP_SYS_ADMIN the PFN is hidden.
        let x = std::hint::black_box(7u64);
        let addr = &x as *const u64 as usize;
        if crate::tests::under_qemu_user() {
            // qemu-user passes /proc/self/pagemap through: it describes
            // qemu's own (host) address space, not the guest's addresses.
            assert!(Pagemap::open(Process::Current).is_ok());
            return;
        }
        let entry = pagemap_entry(Process::Current, addr).unwrap();
        assert!(entry.is_present(), "{entry:?}");
        match pagemap_phys_addr(Process::Current, addr) {
            Ok(Some(pa)) => assert_eq!(pa % page_size() as u64, (addr % page_size()) as u64),
            Ok(None) => panic!("present entry but no address"),
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::PermissionDenied),
        }
        let e = pagemap_entry(Process::Pid(i32::MAX), addr).unwrap_err();
        assert!(e.to_string().contains("/proc/2147483647/pagemap"), "{e}");
    }
}
