//! Copies from user memory that end at an inaccessible page make progress.
//!
//! A `write(2)` to a file from a buffer whose first bytes are readable and
//! whose next page is not must write the readable bytes (or fail with
//! `EFAULT`), and end. On ARM the block copy of `copy_from_user()` loads
//! several words before it stores them, so a fault a few bytes in used to
//! report nothing copied; `generic_perform_write()` then faults the
//! readable bytes in, sees them readable and retries: forever (killable,
//! but a SCHED_FIFO thread doing this owns its CPU). sysfuzz found it
//! (rt-apps/sysfuzz). rtflex's kernel copies the tail byte by byte up to the
//! fault (patch "ARM: uaccess: copy_from_user copies up to the faulting
//! byte").
//!
//! Oracle: the bytes that reach the file, read back with `read(2)`, against
//! the bytes of the buffer; and the call returning at all (each case runs
//! in a child that is killed after 5 s of guest time, thousands of times
//! what the call needs; the first case that does not end stops the test).
#![cfg(feature = "guest")]

use guest_tests::{exited_with, run_in_child, TmpDir};
use std::time::Duration;

/// The MMU page size, as the kernel reports it.
fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    assert!(n > 0, "sysconf(_SC_PAGESIZE) = {n}");
    n as usize
}

/// One page of data followed by a PROT_NONE page; returns the data page.
fn page_before_hole() -> Result<*mut u8, String> {
    let page = page_size();
    // SAFETY: a fresh private anonymous mapping of two pages; nothing else
    // refers to it.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            2 * page,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(format!("mmap: {}", std::io::Error::last_os_error()));
    }
    let data = p.cast::<u8>();
    // SAFETY: the second page of the mapping made above.
    let r = unsafe { libc::mprotect(data.add(page).cast(), page, libc::PROT_NONE) };
    if r != 0 {
        return Err(format!("mprotect: {}", std::io::Error::last_os_error()));
    }
    for i in 0..page {
        // SAFETY: inside the readable, writable first page.
        unsafe { *data.add(i) = (i * 7 + 3) as u8 };
    }
    Ok(data)
}

/// write(2) of `readable` bytes before the hole plus `beyond` bytes of the
/// hole, to a file on tmpfs (shmem) or on the root file system (ext4),
/// then the file's contents checked.
fn write_up_to_hole(path: &str, readable: usize, beyond: usize) -> Result<(), String> {
    let data = page_before_hole()?;
    let cpath = std::ffi::CString::new(path).map_err(|e| e.to_string())?;
    // SAFETY: a NUL-terminated path.
    let fd = unsafe {
        libc::open(
            cpath.as_ptr(),
            libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
            0o600,
        )
    };
    if fd < 0 {
        return Err(format!("open {path}: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: the start lies in the readable page; the kernel checks the
    // rest (it may not be readable: that is the test).
    let start = unsafe { data.add(page_size() - readable) };
    // SAFETY: write(2) reads at most `readable + beyond` bytes from `start`
    // and reports faults as EFAULT.
    let n = unsafe { libc::write(fd, start.cast(), readable + beyond) };
    let err = std::io::Error::last_os_error();
    let what = format!("write of {readable} readable + {beyond} inaccessible bytes to {path}");
    let written = match n {
        n if n > 0 => n as usize,
        -1 if err.raw_os_error() == Some(libc::EFAULT) => 0,
        _ => {
            return Err(format!(
                "{what} = {n} ({err}), want 1..={readable} or EFAULT"
            ))
        }
    };
    if written > readable {
        return Err(format!(
            "{what} wrote {written} bytes, more than were readable"
        ));
    }
    let mut back = vec![0u8; readable + 16];
    // SAFETY: reading into a live buffer of that size.
    let got = unsafe { libc::pread(fd, back.as_mut_ptr().cast(), back.len(), 0) };
    // SAFETY: closing our own descriptor.
    unsafe { libc::close(fd) };
    if got != written as isize {
        return Err(format!("{what}: wrote {written}, file holds {got} bytes"));
    }
    for (i, &b) in back[..written].iter().enumerate() {
        // SAFETY: inside the readable page.
        let want = unsafe { *start.add(i) };
        if b != want {
            return Err(format!(
                "{what}: byte {i} in the file is {b:#x}, want {want:#x}"
            ));
        }
    }
    Ok(())
}

fn check_all(dir: &str) {
    let mut failures = Vec::new();
    'cases: for readable in [1, 2, 3, 4, 5, 8, 31, 33, 64] {
        for beyond in [1, 60, page_size()] {
            let path = format!("{dir}/copy-{readable}-{beyond}");
            let end = run_in_child(Duration::from_secs(5), || {
                write_up_to_hole(&path, readable, beyond)
            });
            let _ = std::fs::remove_file(&path);
            let what = format!("write(2) of {readable} readable + {beyond} inaccessible bytes");
            match end.status {
                None => {
                    failures.push(format!("{what}: did not return within 5 s (killed)"));
                    break 'cases;
                }
                Some(st) if exited_with(st, 0) && end.report.is_empty() => {}
                Some(st) => failures.push(format!("{what}: wait status {st:#x}: {}", end.report)),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A directory on the root file system (ext4), removed on drop.
struct RootDir(String);

impl Drop for RootDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn write_from_bytes_before_an_inaccessible_page_to_tmpfs_ends() {
    // TmpDir is under /tmp, a tmpfs (shmem_write_begin/end).
    let tmp = TmpDir::new("uaccess");
    check_all(tmp.path("").trim_end_matches('/'));
}

#[test]
fn write_from_bytes_before_an_inaccessible_page_to_ext4_ends() {
    let dir = RootDir(format!("/uaccess-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir.0);
    std::fs::create_dir(&dir.0).unwrap_or_else(|e| panic!("{}: {e}", dir.0));
    check_all(&dir.0);
}
