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

use supervisor::{Mode, Options};

const USAGE: &str = "\
usage: sysfuzz [--seed N] [--seconds N] [--procs N] [--threads N]
               [--kml auto|on|off] [--flexsc auto|on|off] [--trusted PATH]
               [--scratch DIR]

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
  --flexsc MODE  FlexSC part (flexsc_register, flexsc_wait, syscall pages):
                 auto (when the kernel has FlexSC, the default), on
                 (required), off; without it the lifecycle events stay
                 and the process endings run without calls in flight
  --time-factor N  multiply every time budget by N, 1-20 (default 1;
                 process lifetimes, the grace before a process is overdue
                 or hung): for kernels N times slower (debug variants)
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

/// The value of option `opt`: a number `lo..=hi`, decimal or `0x` hex.
fn number(p: &mut lexopt::Parser, opt: &str, lo: u64, hi: u64) -> Result<u64, String> {
    let v = value(p, &format!("{opt} needs a value"))?;
    let parsed = match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => v.parse::<u64>(),
    };
    match parsed {
        Ok(n) if (lo..=hi).contains(&n) => Ok(n),
        _ => Err(format!("{opt} needs a number {lo}-{hi}, got '{v}'")),
    }
}

/// The value of the option just seen (`--opt=value` or `--opt value`).
fn value(p: &mut lexopt::Parser, missing: &str) -> Result<String, String> {
    match p.value() {
        Ok(v) => Ok(v.to_string_lossy().into_owned()),
        Err(_) => Err(missing.to_string()),
    }
}

/// The value of option `opt`: auto, on or off.
fn mode(p: &mut lexopt::Parser, opt: &str) -> Result<Mode, String> {
    match value(p, &format!("{opt} needs a value"))?.as_str() {
        "auto" => Ok(Mode::Auto),
        "on" => Ok(Mode::On),
        "off" => Ok(Mode::Off),
        v => Err(format!("{opt} needs auto, on or off, got '{v}'")),
    }
}

/// Parses the command line (`args[0]` is the program name); `None`: show
/// the help. Without `--seed` the seed is random.
fn parse(args: &[String]) -> Result<Option<Options>, String> {
    use lexopt::Arg::{Long, Short, Value};
    let mut o = Options {
        seed: 0,
        seconds: 30,
        procs: 3,
        threads: 3,
        kml: Mode::Auto,
        flexsc: Mode::Auto,
        time_factor: 1,
        trusted: "/trusted/sysfuzz".into(),
        scratch: "/tmp".into(),
    };
    let mut seed = None;
    let mut p = lexopt::Parser::from_iter(args);
    while let Some(arg) = p.next().map_err(|e| e.to_string())? {
        match arg {
            Short('h') | Long("help") => return Ok(None),
            Long("seed") => seed = Some(number(&mut p, "--seed", 0, u64::MAX)?),
            Long("seconds") => o.seconds = number(&mut p, "--seconds", 1, 7 * 24 * 3600)?,
            Long("procs") => o.procs = number(&mut p, "--procs", 1, 16)? as u32,
            Long("threads") => o.threads = number(&mut p, "--threads", 1, 16)? as u32,
            Long("kml") => o.kml = mode(&mut p, "--kml")?,
            Long("flexsc") => o.flexsc = mode(&mut p, "--flexsc")?,
            Long("time-factor") => o.time_factor = number(&mut p, "--time-factor", 1, 20)? as u32,
            Long("trusted") => o.trusted = value(&mut p, "--trusted needs a path")?,
            Long("scratch") => o.scratch = value(&mut p, "--scratch needs a directory")?,
            Short(c) => return Err(format!("unknown option '-{c}'")),
            Long(l) => return Err(format!("unknown option '--{l}'")),
            Value(v) => return Err(format!("unexpected argument '{}'", v.to_string_lossy())),
        }
    }
    o.seed = seed.unwrap_or_else(random_seed);
    Ok(Some(o))
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
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    // Internal modes: the image exec'd by a fuzzing process, and the
    // trusted (Kernel Mode Linux) worker.
    match args.get(1).map(String::as_str) {
        Some("--exec-child") if args.len() == 6 => {
            let n = |i: usize| args[i].parse::<u64>().unwrap_or(1);
            worker::exec_child(n(2), n(3), n(4) as u32, n(5) != 0);
        }
        Some("--kml-worker") if args.len() == 6 => {
            let n = |i: usize| args[i].parse::<u64>().unwrap_or(1);
            let dir = std::ffi::CString::new(args[4].clone()).unwrap_or_default();
            kmlfuzz::run(n(2), n(3), &dir, n(5).clamp(1, 20) as u32);
        }
        _ => {}
    }
    let o = match parse(&args) {
        Ok(Some(o)) => o,
        Ok(None) => {
            println!("{USAGE}");
            return;
        }
        Err(e) => die(&e),
    };
    std::process::exit(supervisor::run(o));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(line: &str) -> Result<Option<Options>, String> {
        let args: Vec<String> = std::iter::once("sysfuzz")
            .chain(line.split_whitespace())
            .map(String::from)
            .collect();
        parse(&args)
    }

    fn run(line: &str) -> Options {
        parsed(line).expect(line).expect(line)
    }

    #[test]
    fn defaults_and_every_option() {
        let o = run("");
        assert_eq!((o.seconds, o.procs, o.threads), (30, 3, 3));
        assert_eq!((o.kml, o.flexsc), (Mode::Auto, Mode::Auto));
        assert_eq!(
            (o.trusted.as_str(), o.scratch.as_str()),
            ("/trusted/sysfuzz", "/tmp")
        );
        let o = run(
            "--seed 0x10 --seconds=5 --procs 16 --threads=1 --kml off --trusted=/t/f --scratch /s",
        );
        assert_eq!((o.seed, o.seconds, o.procs, o.threads), (16, 5, 16, 1));
        assert_eq!(o.kml, Mode::Off);
        assert_eq!((o.trusted.as_str(), o.scratch.as_str()), ("/t/f", "/s"));
        assert_eq!(run("--seed=42 --kml=on").seed, 42);
        assert_eq!(run("--kml=on").kml, Mode::On);
        assert_eq!(run("--flexsc off").flexsc, Mode::Off);
        assert_eq!(run("--flexsc=on").flexsc, Mode::On);
        assert_eq!(run("").time_factor, 1);
        assert_eq!(run("--time-factor 4").time_factor, 4);
        assert_eq!(
            parsed("--time-factor=21").map(|_| ()).unwrap_err(),
            "--time-factor needs a number 1-20, got '21'"
        );
        assert!(parsed("-h").unwrap().is_none());
        assert!(parsed("--procs 2 --help --procs 99").unwrap().is_none());
    }

    #[test]
    fn usage_errors() {
        let err = |line: &str| parsed(line).map(|_| ()).expect_err(line);
        assert_eq!(err("--procs 17"), "--procs needs a number 1-16, got '17'");
        assert_eq!(
            err("--seconds=0"),
            "--seconds needs a number 1-604800, got '0'"
        );
        assert_eq!(
            err("--seed=x"),
            "--seed needs a number 0-18446744073709551615, got 'x'"
        );
        assert_eq!(err("--threads"), "--threads needs a value");
        assert_eq!(
            err("--kml maybe"),
            "--kml needs auto, on or off, got 'maybe'"
        );
        assert_eq!(
            err("--flexsc=no"),
            "--flexsc needs auto, on or off, got 'no'"
        );
        assert_eq!(err("--flexsc"), "--flexsc needs a value");
        assert_eq!(err("--trusted"), "--trusted needs a path");
        assert_eq!(err("--bogus=1"), "unknown option '--bogus'");
        assert_eq!(err("-x"), "unknown option '-x'");
        assert_eq!(err("stray"), "unexpected argument 'stray'");
    }
}
