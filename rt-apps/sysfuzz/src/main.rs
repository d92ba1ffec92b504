//! sysfuzz: a fuzzer for rtflex's own system calls, run inside the booted
//! image as root. See `sysfuzz --help` and rt-apps/sysfuzz/README.md.

mod gen;
mod kmlfuzz;
mod kmsg;
mod region;
mod setup;
mod stats;
mod supervisor;
mod worker;

use supervisor::{KmlMode, Options};

const USAGE: &str = "\
usage: sysfuzz [--seed N] [--seconds N] [--procs N] [--threads N]
               [--kml auto|on|off] [--trusted PATH] [--scratch DIR]

Fuzzes vaddr_to_paddr (472), flexsc_register (473), flexsc_wait (474), the
FlexSC syscall pages and the Kernel Mode Linux entry, from several threads
and processes, with fork, exec, thread exit, munmap, signals and exit_group
mixed in. Run it as root in the rtflex image.

  --seed N       seed of the pseudo-random choices (decimal or 0x hex;
                 default: random, printed at the start)
  --seconds N    time to start new fuzzing processes (default 30)
  --procs N      fuzzing processes at a time, 1-16 (default 3)
  --threads N    threads per fuzzing process, 1-16 (default 3)
  --kml MODE     Kernel Mode Linux part: auto (when the trusted copy is this
                 program, the default), on (required), off
  --trusted PATH the trusted copy (default /trusted/sysfuzz; install a copy
                 of this static program there, root, 0755, to use it)
  --scratch DIR  where the scratch tmpfs mounts go (default /tmp)

It fails (exit 1) on any kernel-log problem (oops, BUG, WARNING, ...), a
process not gone after SIGKILL (kernel hang), a process that does not end
by itself when it must, a fuzzing process that crashes, a result that
breaks the documented contract, or a kind of call or event that never ran.
Exit 2: bad usage or an unusable system.";

fn die(msg: &str) -> ! {
    eprintln!("sysfuzz: {msg}");
    eprintln!("{USAGE}");
    std::process::exit(2)
}

fn number(opt: &str, v: Option<&String>, lo: u64, hi: u64) -> u64 {
    let Some(v) = v else {
        die(&format!("{opt} needs a value"))
    };
    let parsed = match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => v.parse::<u64>(),
    };
    match parsed {
        Ok(n) if (lo..=hi).contains(&n) => n,
        _ => die(&format!("{opt} needs a number {lo}-{hi}, got '{v}'")),
    }
}

fn random_seed() -> u64 {
    let mut s = [0u8; 8];
    // SAFETY: getrandom writes at most 8 bytes into `s`.
    let n = unsafe { libc::getrandom(s.as_mut_ptr().cast(), 8, 0) };
    if n == 8 {
        u64::from_ne_bytes(s)
    } else {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // Internal modes: the image exec'd by a fuzzing process, and the
    // trusted (Kernel Mode Linux) worker.
    match args.get(1).map(String::as_str) {
        Some("--exec-child") if args.len() == 5 => {
            let n = |i: usize| args[i].parse::<u64>().unwrap_or(1);
            worker::exec_child(n(2), n(3), n(4) as u32);
        }
        Some("--kml-worker") if args.len() == 5 => {
            let n = |i: usize| args[i].parse::<u64>().unwrap_or(1);
            let dir = std::ffi::CString::new(args[4].clone()).unwrap_or_default();
            kmlfuzz::run(n(2), n(3), &dir);
        }
        _ => {}
    }
    let mut o = Options {
        seed: 0,
        seconds: 30,
        procs: 3,
        threads: 3,
        kml: KmlMode::Auto,
        trusted: "/trusted/sysfuzz".into(),
        scratch: "/tmp".into(),
    };
    let mut seed = None;
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let (opt, inline) = match a.split_once('=') {
            Some((o, v)) if o.starts_with("--") => (o, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let mut value = || inline.clone().or_else(|| it.next().cloned());
        match opt {
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            "--seed" => seed = Some(number(opt, value().as_ref(), 0, u64::MAX)),
            "--seconds" => o.seconds = number(opt, value().as_ref(), 1, 7 * 24 * 3600),
            "--procs" => o.procs = number(opt, value().as_ref(), 1, 16) as u32,
            "--threads" => o.threads = number(opt, value().as_ref(), 1, 16) as u32,
            "--kml" => {
                o.kml = match value().as_deref() {
                    Some("auto") => KmlMode::Auto,
                    Some("on") => KmlMode::On,
                    Some("off") => KmlMode::Off,
                    v => die(&format!("--kml needs auto, on or off, got {v:?}")),
                }
            }
            "--trusted" => o.trusted = value().unwrap_or_else(|| die("--trusted needs a path")),
            "--scratch" => {
                o.scratch = value().unwrap_or_else(|| die("--scratch needs a directory"))
            }
            _ => die(&format!("unknown argument '{a}'")),
        }
    }
    o.seed = seed.unwrap_or_else(random_seed);
    std::process::exit(supervisor::run(o));
}
