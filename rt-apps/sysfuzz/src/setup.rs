//! Confinement and the scratch objects of a fuzzing process.
//!
//! A fuzzing process runs as root (vaddr_to_paddr needs CAP_SYS_ADMIN,
//! the trusted copy must be root's), so it cannot be kept from damaging
//! the image by permissions. Instead it is confined before it makes a single
//! random call:
//!
//! * chrooted into its own small tmpfs (the supervisor mounts it, with
//!   /dev/null as its only device), so every path a call can name (openat
//!   with O_CREAT/O_TRUNC, unlinkat, renameat2, mkdirat, ...) is a scratch
//!   file; the FlexSC syscall threads share the process's root directory;
//! * every descriptor it inherited is closed except the statistics memfd,
//!   the O_PATH descriptor of its own executable and its own
//!   /proc/<pid>/maps (read only for crash reports): all other descriptors
//!   are scratch files, pipes and sockets it created there;
//! * at most 96 descriptors, no core dumps, first choice of the OOM killer.
//!
//! The random arguments never name other processes (see `gen`).

use crate::gen::{layout, Pools};
use crate::stats::{MAPS_FD, OWN_FDS};
use rtflex_uapi::flexsc as abi;
use std::ffi::CStr;

/// Highest descriptor a fuzzing process may open (RLIMIT_NOFILE).
pub const MAX_FDS: u64 = 96;

fn errno_text(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

/// Process limits of a fuzzing process: descriptors, no core files, the
/// OOM killer's first choice.
pub fn limit_process() {
    let nofile = libc::rlimit {
        rlim_cur: MAX_FDS as libc::rlim_t,
        rlim_max: MAX_FDS as libc::rlim_t,
    };
    let core = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit reads the two structs on our stack.
    unsafe {
        libc::setrlimit(libc::RLIMIT_NOFILE, &nofile);
        libc::setrlimit(libc::RLIMIT_CORE, &core);
    }
    let _ = std::fs::write("/proc/self/oom_score_adj", "1000");
}

/// Opens this process's /proc/<pid>/maps at [`MAPS_FD`] (close-on-exec: it
/// shows the address space it was opened in), before [`limit_process`]
/// (the descriptor is above the limit) and [`confine`] (which takes /proc
/// away). Without it crash reports go without the mapping.
pub fn open_maps() {
    // SAFETY: open with a NUL-terminated path; dup3 and close only act on
    // descriptors.
    unsafe {
        let fd = libc::open(
            c"/proc/self/maps".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        );
        if fd >= 0 && libc::dup3(fd, MAPS_FD, libc::O_CLOEXEC) == MAPS_FD {
            crate::region::maps_opened();
        }
        if fd >= 0 {
            libc::close(fd);
        }
    }
}

/// chroot into `dir` and close every descriptor but the fuzzer's own
/// ([`OWN_FDS`]: executable, statistics memfd, maps).
pub fn confine(dir: &CStr) -> Result<(), String> {
    // SAFETY: chdir/chroot take NUL-terminated paths; close_range only
    // closes descriptors, none of which any Rust object of this
    // (single-threaded, freshly forked) process owns except std's standard
    // streams, which it never uses afterwards.
    unsafe {
        if libc::chdir(dir.as_ptr()) != 0 {
            return Err(errno_text("chdir scratch"));
        }
        if libc::chroot(c".".as_ptr()) != 0 {
            return Err(errno_text("chroot scratch"));
        }
        if libc::chdir(c"/".as_ptr()) != 0 {
            return Err(errno_text("chdir /"));
        }
        let lo = OWN_FDS[0] as u32;
        let hi = OWN_FDS[OWN_FDS.len() - 1] as u32;
        libc::close_range(0, lo - 1, 0);
        libc::close_range(hi + 1, u32::MAX, 0);
    }
    Ok(())
}

/// Paths of the fixture slots: relative and absolute names inside the
/// chroot, "..", empty, a directory, a socket.
const PATHS: [&[u8]; layout::NPATHS] = [
    b"f0",
    b"f1",
    b"d0",
    b"d0/x",
    b"sock",
    b"../../../../f0",
    b"/",
    b"/f1",
    b"",
    b"nonexistent/x",
    b"d0/",
    b"f2",
    b".",
    b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
];

fn map(len: usize, prot: i32) -> Result<usize, String> {
    // SAFETY: a fresh private anonymous mapping the kernel places where
    // nothing else is.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            prot,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        Err(errno_text("mmap"))
    } else {
        Ok(p as usize)
    }
}

/// Writes `bytes` at offset `off` of the scratch buffer at `base`.
fn put(base: usize, off: usize, bytes: &[u8]) {
    assert!(off + bytes.len() <= layout::LEN);
    // SAFETY: the range lies inside the LEN-byte read-write scratch
    // mapping this process made and owns; nothing else refers to it as a
    // Rust object (the kernel may write it concurrently: these are plain
    // bytes).
    unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), (base + off) as *mut u8, bytes.len()) };
}

fn words(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|w| w.to_ne_bytes()).collect()
}

/// Makes the scratch objects in the current directory and the fuzzing
/// memory, and returns them as pools. `kml` is the [kml] page, or 0.
pub fn pools(kml: usize) -> Result<Pools, String> {
    let mut p = Pools {
        kml,
        ..Pools::default()
    };
    p.scratch = map(
        layout::LEN + abi::PAGE_SIZE,
        libc::PROT_READ | libc::PROT_WRITE,
    )?;
    // SAFETY: the last page of our own fresh mapping becomes a guard page.
    if unsafe {
        libc::mprotect(
            (p.scratch + layout::LEN) as *mut libc::c_void,
            abi::PAGE_SIZE,
            libc::PROT_NONE,
        )
    } != 0
    {
        return Err(errno_text("mprotect guard"));
    }
    // Every scratch page present (vaddr_to_paddr must translate them).
    // SAFETY: zeroing our own fresh LEN-byte mapping.
    unsafe { core::ptr::write_bytes(p.scratch as *mut u8, 0, layout::LEN) };
    p.spare = map(abi::region_len(abi::MAX_PAGES), libc::PROT_NONE)?;
    p.untouched = map(abi::PAGE_SIZE, libc::PROT_READ | libc::PROT_WRITE)?;
    p.hole = map(abi::PAGE_SIZE, libc::PROT_NONE)?;

    // Descriptors, all in the scratch directory.
    // The names may hold something else by now (the image exec'd by a
    // fuzzing process finds what random renames and unlinks left, e.g. the
    // socket renamed to f0): remove it and create the file again.
    let open = |path: &CStr, flags: i32| -> Result<i32, String> {
        for _ in 0..2 {
            // SAFETY: NUL-terminated path; a new descriptor.
            let fd = unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC, 0o644) };
            if fd >= 0 {
                return Ok(fd);
            }
            // SAFETY: removing a scratch name in our own chroot.
            unsafe {
                libc::unlink(path.as_ptr());
                libc::rmdir(path.as_ptr());
            }
        }
        // Still taken (a directory that is not empty): a fresh name.
        let fresh = std::ffi::CString::new(format!("new{}", std::process::id())).unwrap();
        // SAFETY: NUL-terminated path; a new descriptor.
        let fd = unsafe {
            libc::open(
                fresh.as_ptr(),
                flags | libc::O_CLOEXEC | libc::O_CREAT,
                0o644,
            )
        };
        if fd >= 0 {
            Ok(fd)
        } else {
            Err(errno_text(&format!("open scratch file {path:?}")))
        }
    };
    let mut fds = Vec::new();
    fds.push(open(c"f0", libc::O_RDWR | libc::O_CREAT)?);
    fds.push(open(c"f1", libc::O_RDWR | libc::O_CREAT)?);
    fds.push(open(
        c"f2",
        libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND,
    )?);
    // SAFETY: mkdir with a NUL-terminated path.
    unsafe { libc::mkdir(c"d0".as_ptr(), 0o755) };
    p.dirfd = open(c".", libc::O_RDONLY | libc::O_DIRECTORY)?;
    fds.push(p.dirfd);
    for k in 0..2 {
        let mut pair = [0i32; 2];
        // SAFETY: pipe2 writes two descriptors into `pair`.
        if unsafe { libc::pipe2(pair.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(errno_text("pipe2"));
        }
        p.drain[k] = pair[0];
        p.feed[k] = pair[1];
        fds.extend(pair);
    }
    for (k, ty) in [(2, libc::SOCK_STREAM), (3, libc::SOCK_DGRAM)] {
        let mut pair = [0i32; 2];
        // SAFETY: socketpair writes two descriptors into `pair`.
        if unsafe { libc::socketpair(libc::AF_UNIX, ty | libc::SOCK_CLOEXEC, 0, pair.as_mut_ptr()) }
            != 0
        {
            return Err(errno_text("socketpair"));
        }
        p.drain[k] = pair[0];
        p.feed[k] = pair[1];
        fds.extend(pair);
    }
    // SAFETY: eventfd and epoll_create1 return new descriptors.
    unsafe {
        fds.push(libc::eventfd(0, libc::EFD_CLOEXEC));
        fds.push(libc::epoll_create1(libc::EPOLL_CLOEXEC));
    }
    // A listening socket at "sock".
    // SAFETY: a new socket; bind reads the sockaddr_un on our stack.
    unsafe {
        let s = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        let mut sa: libc::sockaddr_un = core::mem::zeroed();
        sa.sun_family = libc::AF_UNIX as libc::sa_family_t;
        for (d, s) in sa.sun_path.iter_mut().zip(b"sock") {
            *d = *s as libc::c_char;
        }
        libc::unlink(c"sock".as_ptr());
        libc::bind(
            s,
            &sa as *const libc::sockaddr_un as *const libc::sockaddr,
            core::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
        );
        libc::listen(s, 4);
        fds.push(s);
    }
    // The fuzzer's own writes to wake blocked reads must not block.
    for &fd in &p.feed {
        // SAFETY: F_SETFL on our own descriptor.
        unsafe { libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK) };
    }
    fds.retain(|&fd| fd >= 0);
    fds.truncate(p.fds.len());
    p.nfds = fds.len();
    p.fds[..fds.len()].copy_from_slice(&fds);

    // Fixtures.
    let s = p.scratch;
    for (i, path) in PATHS.iter().enumerate() {
        let mut b = path.to_vec();
        b.push(0);
        put(s, layout::PATHS + 64 * i, &b);
    }
    let mut long: Vec<u8> = b"a/".repeat(layout::LONG_PATH_LEN / 2);
    long.push(0);
    put(s, layout::LONG_PATH, &long);
    // The same timespecs in both layouts; the last is the largest second
    // count each can hold.
    let ts64: [(i64, i64); layout::NTS] = [
        (0, 0),
        (0, 1000),
        (0, 2_000_000),
        (0, 20_000_000),
        (1, 0),
        (-1, 0),
        (0, 1_000_000_000),
        (i64::MAX, 0),
    ];
    let ts32 = ts64.map(|(sec, nsec)| (i32::try_from(sec).unwrap_or(i32::MAX), nsec as i32));
    for (i, (sec, nsec)) in ts32.iter().enumerate() {
        put(
            s,
            layout::TS32 + 8 * i,
            &words(&[*sec as u32, *nsec as u32]),
        );
    }
    for (i, (sec, nsec)) in ts64.iter().enumerate() {
        let mut b = sec.to_ne_bytes().to_vec();
        b.extend(nsec.to_ne_bytes());
        put(s, layout::TS64 + 16 * i, &b);
    }
    let free = (s + layout::FREE) as u32;
    let iov: [(u32, u32); layout::NIOV] = [
        (free, 512),
        (free + 512, 512),
        (free + 4096, 4096),
        (free, 0),
        (0, 16),
        (0xC000_0000, 64),
        (free, 0x7FFF_FFFF),
        (p.hole as u32, 16),
        (free + 8192, 100),
        (p.ro as u32, 64),
        (free + 12288, 1),
        ((s + layout::LEN - 8) as u32, 64),
        (free + 256, 256),
        (0xFFFF_0000, 4096),
        (free + 16384, 1024),
        (free, u32::MAX),
    ];
    for (i, (base, len)) in iov.iter().enumerate() {
        put(s, layout::IOV + 8 * i, &words(&[*base, *len]));
    }
    for i in 0..8 {
        let fd = p.fds[i % p.nfds.max(1)];
        let events = (libc::POLLIN | libc::POLLOUT) as u32;
        put(s, layout::POLLFD + 8 * i, &words(&[fd as u32, events]));
    }
    let mut un = vec![0u8; 110];
    un[..2].copy_from_slice(&(libc::AF_UNIX as u16).to_ne_bytes());
    un[2..6].copy_from_slice(b"sock");
    put(s, layout::SOCKADDR, &un);
    let mut abs = vec![0u8; 110];
    abs[..2].copy_from_slice(&(libc::AF_UNIX as u16).to_ne_bytes());
    abs[3..11].copy_from_slice(b"abstract");
    put(s, layout::SOCKADDR + 128, &abs);
    let mut inet = vec![0u8; 16];
    inet[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
    inet[2..4].copy_from_slice(&9u16.to_be_bytes());
    inet[4..8].copy_from_slice(&[127, 0, 0, 1]);
    put(s, layout::SOCKADDR + 256, &inet);
    // struct msghdr (ARM): name, namelen, iov, iovlen, control, controllen, flags.
    let msg = [
        (s + layout::SOCKADDR) as u32,
        110,
        (s + layout::IOV) as u32,
        2,
        free + 20_000,
        64,
        0,
    ];
    put(s, layout::MSGHDR, &words(&msg));

    // The read-only page: a valid configuration at its start, so that a
    // registration from it gets as far as writing back the address.
    let ro = map(abi::PAGE_SIZE, libc::PROT_READ | libc::PROT_WRITE)?;
    let cfg = abi::Config {
        version: abi::CONFIG_VERSION,
        npages: 1,
        nworkers: 1,
        ..abi::Config::default()
    };
    // SAFETY: our fresh page, then made read-only.
    unsafe {
        core::ptr::write(ro as *mut abi::Config, cfg);
        libc::mprotect(ro as *mut libc::c_void, abi::PAGE_SIZE, libc::PROT_READ);
    }
    p.ro = ro;
    Ok(p)
}
