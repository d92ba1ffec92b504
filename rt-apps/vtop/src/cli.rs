//! The `vtop` command line tool.
//!
//! ```text
//! vtop [-p] [-v] <pid|self> <addr>...             one line per address
//! vtop [-p] [-v] <pid|self> <start> --len N       every page of a range
//! vtop [-p] [-v] <pid|self> <start>-<end>         a range as /proc/<pid>/maps writes it
//! ```
//!
//! Options (parsed with `lexopt`) may come anywhere (`--` ends them); long
//! options may be abbreviated to any unambiguous prefix; short ones may be
//! clustered (`-pv`, `-l64K`). Malformed numbers, unknown options and stray
//! words are usage errors (exit 2), in rtlat's style.

use crate::pagemap::Pagemap;
use crate::resident::{page_starts, walk};
use crate::{page_size, phys_addr, Error, Process};
use std::fs::File;
use std::io::{self, Write};

/// Exit status: every address translated, every page resident.
pub const EXIT_OK: i32 = 0;
/// Exit status: some address failed, some page is not resident, or
/// `--pagemap` disagreed.
pub const EXIT_FAILURE: i32 = 1;
/// Exit status: usage error.
pub const EXIT_USAGE: i32 = 2;

/// One thing to look up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Item {
    /// One address.
    Addr(usize),
    /// Every page overlapping `[start, start + len)`.
    Range { start: usize, len: usize },
}

/// A parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub process: Process,
    pub items: Vec<Item>,
    /// `--pagemap`: cross-check with `/proc/<pid>/pagemap`.
    pub pagemap: bool,
    /// `--verbose`: print every page of a range.
    pub verbose: bool,
}

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    Run(Options),
    Help,
}

/// A usage error (exit status 2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn usage<T>(msg: impl Into<String>) -> Result<T, UsageError> {
    Err(UsageError(msg.into()))
}

/// Long options; a unique prefix of one is accepted too (`--pag`).
const LONG: &[&str] = &["help", "len", "pagemap", "verbose"];

/// Parses the command line (`args[0]` is the program name).
pub fn parse(args: &[String]) -> Result<Parsed, UsageError> {
    use lexopt::Arg::{Long, Short, Value};
    let mut p = lexopt::Parser::from_iter(args);
    // `-l=4K` is `-l` with the value `=4K` (an error), as getopt has it.
    p.set_short_equals(false);
    let mut positional: Vec<String> = Vec::new();
    let mut len: Option<String> = None;
    let mut pagemap = false;
    let mut verbose = false;
    while let Some(arg) = p.next().map_err(|e| UsageError(e.to_string()))? {
        let (arg, name) = match arg {
            Value(v) => {
                positional.push(v.to_string_lossy().into_owned());
                continue;
            }
            Short(c) => (Short(c), format!("-{c}")),
            Long(l) => (Long(long_name(l)?), format!("--{l}")),
        };
        if matches!(arg, Long(l) if l != "len") && p.optional_value().is_some() {
            return usage(format!("option '{name}' takes no value"));
        }
        match arg {
            Short('h') | Long("help") => return Ok(Parsed::Help),
            Short('p') | Long("pagemap") => pagemap = true,
            Short('v') | Long("verbose") => verbose = true,
            Short('l') | Long("len") => {
                let Ok(v) = p.value() else {
                    return usage(format!("option '{name}' needs a length"));
                };
                if len.replace(v.to_string_lossy().into_owned()).is_some() {
                    return usage("--len given twice");
                }
            }
            _ => return usage(format!("unknown option '{name}'")),
        }
    }
    let positional: Vec<&str> = positional.iter().map(String::as_str).collect();
    let Some((&pid, addrs)) = positional.split_first() else {
        return usage("missing process: give a pid or 'self', then addresses");
    };
    let process = parse_pid(pid)?;
    if addrs.is_empty() {
        return usage("missing address");
    }
    let len = len.as_deref().map(parse_len).transpose()?;
    let mut items = Vec::with_capacity(addrs.len());
    for &a in addrs {
        let item = if let Some((s, e)) = a.split_once('-').filter(|(s, _)| !s.is_empty()) {
            if len.is_some() {
                return usage(format!(
                    "'{a}' is already a range: --len applies to single addresses"
                ));
            }
            let (start, end) = (parse_hex(s, a)?, parse_hex(e, a)?);
            if end <= start {
                return usage(format!("'{a}': empty range (the end is exclusive)"));
            }
            Item::Range {
                start,
                len: end - start,
            }
        } else {
            let start = parse_addr(a)?;
            match len {
                None => Item::Addr(start),
                Some(len) => {
                    if start as u128 + len as u128 > usize::MAX as u128 + 1 {
                        return usage(format!("{a} + {len}: beyond the end of the address space"));
                    }
                    Item::Range { start, len }
                }
            }
        };
        items.push(item);
    }
    Ok(Parsed::Run(Options {
        process,
        items,
        pagemap,
        verbose,
    }))
}

/// A long option by its name or a prefix of exactly one name.
fn long_name(name: &str) -> Result<&'static str, UsageError> {
    rt_utils::args::long_option(name, LONG).or_else(|found| match found[..] {
        [] => usage(format!("unknown option '--{name}'")),
        _ => usage(format!("option '--{name}' is ambiguous")),
    })
}

fn parse_pid(s: &str) -> Result<Process, UsageError> {
    if s == "self" {
        return Ok(Process::Current);
    }
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return usage(format!("'{s}' is not a pid (a positive number, or 'self')"));
    }
    match s.parse::<libc::pid_t>() {
        Ok(0) => usage("pid 0: say 'self' for vtop itself"),
        Ok(pid) => Ok(Process::Pid(pid)),
        Err(_) => usage(format!("pid '{s}' is out of range")),
    }
}

fn digits(s: &str, radix: u32, what: &str) -> Result<u128, UsageError> {
    if s.is_empty() || !s.chars().all(|c| c.is_digit(radix)) {
        let kind = if radix == 16 { "hex" } else { "decimal" };
        return usage(format!("'{what}' is not a {kind} number"));
    }
    u128::from_str_radix(s, radix).or_else(|_| usage(format!("'{what}' is too large")))
}

fn to_usize(v: u128, what: &str) -> Result<usize, UsageError> {
    usize::try_from(v).or_else(|_| usage(format!("'{what}' does not fit in an address")))
}

/// An address: `0x` hex or decimal.
pub fn parse_addr(s: &str) -> Result<usize, UsageError> {
    let v = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => digits(hex, 16, s)?,
        None => digits(s, 10, s)?,
    };
    to_usize(v, s)
}

/// One end of a `start-end` range: hex, `0x` optional (as in
/// `/proc/<pid>/maps`). `whole` is the argument, for messages.
fn parse_hex(s: &str, whole: &str) -> Result<usize, UsageError> {
    let hex = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return usage(format!(
            "'{whole}' is not a range: want hex START-END as in /proc/<pid>/maps"
        ));
    }
    to_usize(digits(hex, 16, whole)?, whole)
}

/// A length: `0x` hex or decimal, with an optional `K`, `M` or `G` suffix
/// (KiB, MiB, GiB). Must be positive.
pub fn parse_len(s: &str) -> Result<usize, UsageError> {
    let (num, mult) = match s.char_indices().last() {
        Some((i, 'K' | 'k')) => (&s[..i], 1u128 << 10),
        Some((i, 'M' | 'm')) => (&s[..i], 1 << 20),
        Some((i, 'G' | 'g')) => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    let v = match num.strip_prefix("0x").or_else(|| num.strip_prefix("0X")) {
        Some(hex) => digits(hex, 16, s)?,
        None => digits(num, 10, s)?,
    };
    let v = v
        .checked_mul(mult)
        .ok_or_else(|| UsageError(format!("length '{s}' is too large")))?;
    if v == 0 {
        return usage("--len 0: nothing to check");
    }
    to_usize(v, s)
}

/// Where answers come from: the kernel, or a fake in tests.
pub trait Backend {
    /// Page size of the target.
    fn page_size(&self) -> usize;
    /// [`crate::phys_addr`] of `addr` in the target process.
    fn phys_addr(&mut self, addr: usize) -> Result<u64, Error>;
    /// [`crate::pagemap_phys_addr`] of `addr` in the target process.
    fn pagemap(&mut self, addr: usize) -> io::Result<Option<u64>>;
}

/// The real backend: the system call and `/proc/<pid>/pagemap`.
pub struct Kernel {
    process: Process,
    pagemap: Option<Pagemap<File>>,
}

impl Kernel {
    pub fn new(process: Process) -> Kernel {
        Kernel {
            process,
            pagemap: None,
        }
    }
}

impl Backend for Kernel {
    fn page_size(&self) -> usize {
        page_size()
    }

    fn phys_addr(&mut self, addr: usize) -> Result<u64, Error> {
        phys_addr(self.process, addr)
    }

    fn pagemap(&mut self, addr: usize) -> io::Result<Option<u64>> {
        if self.pagemap.is_none() {
            self.pagemap = Some(Pagemap::open(self.process)?);
        }
        self.pagemap.as_mut().expect("just opened").phys_addr(addr)
    }
}

/// A virtual address as printed: `0x` and all digits of the word.
pub fn fmt_vaddr(a: u64) -> String {
    format!("{a:#0w$x}", w = 2 + 2 * std::mem::size_of::<usize>())
}

/// A physical address as printed: `0x` and 16 digits.
pub fn fmt_paddr(a: u64) -> String {
    format!("{a:#018x}")
}

/// Whether the system call's and pagemap's answers agree; `None` when
/// pagemap gave no comparable answer, or the call failed for a reason
/// pagemap cannot confirm.
fn agrees(sys: &Result<u64, Error>, pm: &io::Result<Option<u64>>) -> Option<bool> {
    match (sys, pm) {
        (Ok(a), Ok(Some(b))) => Some(a == b),
        (Ok(_), Ok(None)) => Some(false),
        (Err(Error::NotPresent | Error::NotMapped), Ok(p)) => Some(p.is_none()),
        _ => None,
    }
}

/// `0x76f01234 -> 0x000000008f3a1234` or `0x00001000: not mapped: ...`.
fn line(addr: usize, sys: &Result<u64, Error>) -> String {
    match sys {
        Ok(pa) => format!("{} -> {}", fmt_vaddr(addr as u64), fmt_paddr(*pa)),
        Err(e) => format!("{}: {e}", fmt_vaddr(addr as u64)),
    }
}

/// `  pagemap: 0x...`, `  pagemap: not present`, with ` (differs!)` when
/// it disagrees.
fn pagemap_note(pm: &io::Result<Option<u64>>, agree: Option<bool>) -> String {
    let what = match pm {
        Ok(Some(pa)) => fmt_paddr(*pa),
        Ok(None) => "not present".to_string(),
        Err(e) => format!("error: {e}"),
    };
    let differs = if agree == Some(false) {
        " (differs!)"
    } else {
        ""
    };
    format!("  pagemap: {what}{differs}")
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// Looks up every item of `opts` with `backend`, writes the results to
/// `out`, and returns the exit status ([`EXIT_OK`] or [`EXIT_FAILURE`]).
pub fn run(opts: &Options, backend: &mut dyn Backend, out: &mut dyn Write) -> io::Result<i32> {
    let mut ok = true;
    for item in &opts.items {
        ok &= match *item {
            Item::Addr(addr) => one_address(opts, backend, out, addr)?,
            Item::Range { start, len } => range(opts, backend, out, start, len)?,
        };
    }
    Ok(if ok { EXIT_OK } else { EXIT_FAILURE })
}

fn one_address(
    opts: &Options,
    backend: &mut dyn Backend,
    out: &mut dyn Write,
    addr: usize,
) -> io::Result<bool> {
    let sys = backend.phys_addr(addr);
    let mut text = line(addr, &sys);
    let mut ok = sys.is_ok();
    if opts.pagemap {
        let pm = backend.pagemap(addr);
        let agree = agrees(&sys, &pm);
        ok &= agree != Some(false);
        text += &pagemap_note(&pm, agree);
    }
    writeln!(out, "{text}")?;
    Ok(ok)
}

fn range(
    opts: &Options,
    backend: &mut dyn Backend,
    out: &mut dyn Write,
    start: usize,
    len: usize,
) -> io::Result<bool> {
    let ps = backend.page_size();
    let first = start & !(ps - 1);
    let count = page_starts(start, len, ps).len();
    let span = format!(
        "{}-{}",
        fmt_vaddr(first as u64),
        fmt_vaddr(first as u64 + count as u64 * ps as u64)
    );

    let mut pages: Vec<String> = Vec::new();
    let mut differing: Vec<String> = Vec::new();
    let (mut agreeing, mut uncompared) = (0usize, 0usize);
    let mut first_pm_error: Option<String> = None;
    let mut results: Vec<(usize, Result<u64, Error>)> = Vec::new();
    // The walk needs the backend for translations; pagemap queries follow.
    let walked = walk(
        start,
        len,
        ps,
        |a| backend.phys_addr(a),
        |a, r| results.push((a, r)),
    );
    for &(addr, sys) in &results {
        let mut text = format!("  {}", line(addr, &sys));
        if opts.pagemap && walked.is_ok() {
            let pm = backend.pagemap(addr);
            let agree = agrees(&sys, &pm);
            match agree {
                Some(true) => agreeing += 1,
                Some(false) => differing.push(format!("{text}{}", pagemap_note(&pm, agree))),
                None => {
                    uncompared += 1;
                    if let (Err(e), None) = (&pm, &first_pm_error) {
                        first_pm_error = Some(e.to_string());
                    }
                }
            }
            text += &pagemap_note(&pm, agree);
        }
        if opts.verbose {
            pages.push(text);
        }
    }

    let r = match walked {
        Ok(r) => r,
        Err(e) => {
            writeln!(out, "{span}: {e}")?;
            return Ok(false);
        }
    };
    if r.all_resident() {
        writeln!(out, "{span}: {}, all resident", plural(r.pages, "page"))?;
    } else {
        writeln!(
            out,
            "{span}: {}, {} resident, {} not:",
            plural(r.pages, "page"),
            r.resident,
            r.pages - r.resident
        )?;
        for g in &r.gaps {
            let end = g.start as u64 + (g.pages * ps) as u64;
            writeln!(
                out,
                "  {}-{} ({}): {}",
                fmt_vaddr(g.start as u64),
                fmt_vaddr(end),
                plural(g.pages, "page"),
                g.error
            )?;
        }
    }
    for p in &pages {
        writeln!(out, "{p}")?;
    }
    if opts.pagemap {
        if !opts.verbose {
            for d in &differing {
                writeln!(out, "{d}")?;
            }
        }
        if differing.is_empty() {
            write!(out, "  pagemap: agrees on {}", plural(agreeing, "page"))?;
        } else {
            write!(
                out,
                "  pagemap: DIFFERS on {} of {}",
                differing.len(),
                plural(r.pages, "page")
            )?;
        }
        match first_pm_error {
            Some(e) if uncompared > 0 => writeln!(out, ", could not compare {uncompared}: {e}")?,
            _ if uncompared > 0 => writeln!(out, ", could not compare {uncompared}")?,
            _ => writeln!(out)?,
        }
    }
    Ok(r.all_resident() && differing.is_empty())
}

/// The `--help` text.
pub fn help_text() -> String {
    format!(
        "\
Usage: vtop [OPTIONS] <pid|self> <addr>...
       vtop [OPTIONS] <pid|self> <start> --len N
       vtop [OPTIONS] <pid|self> <start>-<end>

Translate virtual addresses of a process into physical addresses with the
rtflex vaddr_to_paddr() system call (ARM EABI system call 472).

Arguments:
  <pid|self>     process (or thread) ID; 'self' is vtop itself
  <addr>         a virtual address: hex with 0x (0x76f01234) or decimal
  <start>-<end>  a range as /proc/<pid>/maps writes it: hex, 0x optional,
                 end exclusive; checks every page of it

Options:
  -l, --len N    check every page of [addr, addr + N) instead of one address;
                 N is decimal or 0x hex, with an optional K, M or G suffix
                 (KiB, MiB, GiB)
  -p, --pagemap  also ask /proc/<pid>/pagemap (an independent answer) and
                 compare; a disagreement counts as a failure
  -v, --verbose  for a range, print every page, not only the summary
  -h, --help     print this help

Output: one line per address, e.g.
  0x76f01234 -> 0x000000008f3a1234
  0x00001000: not mapped: no mapping contains this address
and for a range a summary plus the runs of pages that are not resident:
  0x76f00000-0x76f10000: 16 pages, 13 resident, 3 not:
    0x76f04000-0x76f07000 (3 pages): not present: never touched or swapped out

What the system call returns: the physical address of that very byte, i.e.
the page frame plus the offset within the page, always 64 bits wide (with
LPAE, ARM physical addresses reach 40 bits). Errors:
  not present        ENOENT  in a mapping, but no page there: never touched,
                             swapped out, or being migrated
  not mapped         EFAULT  no mapping contains the address
  kernel address     EINVAL  at or above TASK_SIZE (incl. the vectors page)
  permission denied  EPERM   the caller lacks CAP_SYS_ADMIN
  no ptrace access   EACCES  the ptrace rules deny access to the process
                             (CAP_SYS_ADMIN alone does not replace them)
  no such process    ESRCH   or it has no address space (kernel thread,
                             zombie)
  kernel lacks vaddr_to_paddr()
                     ENOSYS  {enosys}

Privilege: root, or CAP_SYS_ADMIN (physical addresses help rowhammer-style
attacks; /proc/<pid>/pagemap hides them too). Another process also needs
ptrace read access (same user and dumpable, or CAP_SYS_PTRACE).

vtop only looks: it never faults a page in. A page that was only read maps
the shared zero page (the same physical address everywhere); write to it, or
mlock() it, to get its own page. The answer is a snapshot: mlock() keeps
pages resident, but the kernel may still migrate them (compaction), and
copy-on-write, KSM or reclaim of unlocked pages can change it right after.

Checking that a real-time application's memory is resident: after the
application called mlockall(MCL_CURRENT | MCL_FUTURE) (cyclictest -m,
rtlat -m), check its regions page by page, e.g. its stack and heap:
  grep -E 'stack|heap' /proc/<pid>/maps
  vtop <pid> 7ea5c000-7ea7d000                   # one region from maps
  vtop <pid> 0x7ea5c000 --len 132K               # the same
  vtop --pagemap <pid> 0x76f01234                # one buffer, cross-checked
Exit status 0 means every page is resident; pages reported 'not present'
were never touched (or were swapped out): the application did not lock or
prefault them.

Exit status: 0 all addresses translated (all pages resident); 1 some address
failed, some page is not resident, or --pagemap disagreed; 2 usage error.
",
        enosys = if crate::SYSCALL_NUMBER.is_some() {
            "not an rtflex kernel".to_string()
        } else {
            format!(
                "this vtop is an {} build: the call\n{:29}exists only on 32-bit ARM",
                std::env::consts::ARCH,
                ""
            )
        },
    )
}

/// Runs vtop with `args` (including the program name); returns the exit
/// status.
pub fn main_with_args(args: &[String]) -> i32 {
    let opts = match parse(args) {
        Ok(Parsed::Run(o)) => o,
        Ok(Parsed::Help) => {
            print!("{}", help_text());
            return EXIT_OK;
        }
        Err(e) => {
            eprintln!("vtop: {e}");
            eprintln!("Try 'vtop --help' for more information.");
            return EXIT_USAGE;
        }
    };
    let mut backend = Kernel::new(opts.process);
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match run(&opts, &mut backend, &mut out).and_then(|code| out.flush().map(|()| code)) {
        Ok(code) => code,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => EXIT_FAILURE,
        Err(e) => {
            eprintln!("vtop: {e}");
            EXIT_FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn args(line: &str) -> Vec<String> {
        std::iter::once("vtop")
            .chain(line.split_whitespace())
            .map(String::from)
            .collect()
    }

    fn opts(line: &str) -> Options {
        match parse(&args(line)) {
            Ok(Parsed::Run(o)) => o,
            other => panic!("{line}: {other:?}"),
        }
    }

    fn err(line: &str) -> String {
        match parse(&args(line)) {
            Err(UsageError(m)) => m,
            other => panic!("{line}: expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn pid_and_addresses() {
        let o = opts("1234 0x76f01234 4096 0XABC");
        assert_eq!(o.process, Process::Pid(1234));
        assert_eq!(
            o.items,
            [Item::Addr(0x76f0_1234), Item::Addr(4096), Item::Addr(0xabc)]
        );
        assert!(!o.pagemap && !o.verbose);
        assert_eq!(opts("self 0").process, Process::Current);
        assert_eq!(opts("self 0").items, [Item::Addr(0)]);
    }

    #[test]
    fn options_anywhere_clustered_and_abbreviated() {
        let o = opts("--pagemap 1 0x1000 -v");
        assert!(o.pagemap && o.verbose);
        let o = opts("-pv 1 0x1000");
        assert!(o.pagemap && o.verbose);
        let o = opts("--pag --verb 1 0x1000");
        assert!(o.pagemap && o.verbose);
        // After "--" everything is positional (here: not an option, a bad address).
        assert!(err("1 -- -p").contains("'-p' is not a decimal number"));
        assert_eq!(parse(&args("-h")), Ok(Parsed::Help));
        assert_eq!(parse(&args("1 0x1000 --help")), Ok(Parsed::Help));
        assert_eq!(parse(&args("--he")), Ok(Parsed::Help));
        assert_eq!(parse(&args("-vh nonsense")), Ok(Parsed::Help));
    }

    #[test]
    fn len_turns_addresses_into_ranges() {
        let range = |start, len| Item::Range { start, len };
        assert_eq!(opts("1 0x10000 --len 64K").items, [range(0x10000, 65536)]);
        assert_eq!(
            opts("1 0x10000 --len=0x2000").items,
            [range(0x10000, 0x2000)]
        );
        assert_eq!(opts("1 -l1M 0x10000").items, [range(0x10000, 1 << 20)]);
        assert_eq!(opts("1 -pl 5 0x10000").items, [range(0x10000, 5)]);
        assert!(opts("1 -pl 5 0x10000").pagemap);
        assert_eq!(
            opts("1 --le 2k 8 16").items,
            [range(8, 2048), range(16, 2048)]
        );
        assert_eq!(opts("1 -l 1G 0").items, [range(0, 1 << 30)]);
        assert_eq!(parse_len("3m"), Ok(3 << 20));
        assert_eq!(parse_len("0x10K"), Ok(16 << 10));
    }

    #[test]
    fn maps_style_ranges() {
        // Exactly what /proc/<pid>/maps prints: hex without 0x.
        assert_eq!(
            opts("42 7ea5c000-7ea7d000").items,
            [Item::Range {
                start: 0x7ea5_c000,
                len: 0x21000
            }]
        );
        assert_eq!(
            opts("42 0x1000-0x3000 0x5000").items,
            [
                Item::Range {
                    start: 0x1000,
                    len: 0x2000
                },
                Item::Addr(0x5000)
            ]
        );
        assert!(err("42 3000-1000").contains("empty range"));
        assert!(err("42 1000-1000").contains("empty range"));
        assert!(err("42 1000-xyz").contains("want hex START-END"));
        assert!(err("42 -1000").contains("unknown option '-1'"));
        assert!(err("42 1000- ").contains("want hex START-END"));
        assert!(err("42 1000-2000 --len 4K").contains("already a range"));
    }

    #[test]
    fn usage_errors() {
        assert!(err("").contains("missing process"));
        assert!(err("1234").contains("missing address"));
        assert!(err("abc 0x1000").contains("'abc' is not a pid"));
        assert!(err("0 0x1000").contains("say 'self'"));
        assert!(err("99999999999 0x1000").contains("out of range"));
        assert!(err("1 0xzz").contains("'0xzz' is not a hex number"));
        assert!(err("1 0x").contains("is not a hex number"));
        assert!(err("1 12ab").contains("'12ab' is not a decimal number"));
        assert!(err("1 +12").contains("not a decimal number"));
        assert!(err("1 0x123456789abcdef0123456789abcdef01").contains("too large"));
        assert!(err("1 0x1000 --len 0").contains("nothing to check"));
        assert!(err("1 0x1000 --len").contains("needs a length"));
        assert!(err("1 0x1000 --len 4Q").contains("not a decimal number"));
        assert!(err("1 0x1000 -l 1 -l 2").contains("twice"));
        assert!(err("1 0x1000 --frobnicate").contains("unknown option '--frobnicate'"));
        assert!(err("1 0x1000 -x").contains("unknown option '-x'"));
        assert!(err("1 0x1000 --pagemap=yes").contains("takes no value"));
        assert!(err("1 0x1000 --=3").contains("unknown option"));
        // A range may end exactly at the top of the address space, not beyond.
        let top = format!("{:#x}", usize::MAX & !0xfff);
        assert_eq!(
            opts(&format!("1 {top} --len 4K")).items,
            [Item::Range {
                start: usize::MAX & !0xfff,
                len: 4096
            }]
        );
        assert!(err(&format!("1 {top} --len 8K")).contains("beyond the end"));
        if usize::BITS == 32 {
            assert!(err("1 0x100000000").contains("does not fit"));
            assert!(err("1 0x1000 --len 4G").contains("does not fit"));
        }
    }

    /// A fake process: page -> result of the system call for that page
    /// (page frame base or error); pagemap agrees unless overridden.
    struct Fake {
        pages: HashMap<usize, Result<u64, Error>>,
        pagemap: HashMap<usize, Option<u64>>,
        pagemap_fails: bool,
        calls: usize,
    }

    impl Fake {
        fn new(pages: &[(usize, Result<u64, Error>)]) -> Fake {
            Fake {
                pages: pages.iter().copied().collect(),
                pagemap: HashMap::new(),
                pagemap_fails: false,
                calls: 0,
            }
        }
    }

    impl Backend for Fake {
        fn page_size(&self) -> usize {
            4096
        }
        fn phys_addr(&mut self, addr: usize) -> Result<u64, Error> {
            self.calls += 1;
            let r = self.pages.get(&(addr & !0xfff)).copied();
            r.unwrap_or(Err(Error::NotMapped))
                .map(|base| base + (addr & 0xfff) as u64)
        }
        fn pagemap(&mut self, addr: usize) -> io::Result<Option<u64>> {
            if self.pagemap_fails {
                return Err(io::Error::new(io::ErrorKind::PermissionDenied, "nope"));
            }
            if let Some(&v) = self.pagemap.get(&(addr & !0xfff)) {
                return Ok(v.map(|b| b + (addr & 0xfff) as u64));
            }
            match self.phys_addr(addr) {
                Ok(pa) => Ok(Some(pa)),
                Err(Error::NotPresent | Error::NotMapped) => Ok(None),
                Err(e) => Err(e.into()),
            }
        }
    }

    fn run_on(fake: &mut Fake, line: &str) -> (i32, String) {
        let mut out = Vec::new();
        let code = run(&opts(line), fake, &mut out).unwrap();
        (code, String::from_utf8(out).unwrap())
    }

    fn v(a: u64) -> String {
        fmt_vaddr(a)
    }

    #[test]
    fn address_formats() {
        assert_eq!(fmt_paddr(0x8f3a_1234), "0x000000008f3a1234");
        assert_eq!(fmt_paddr(0xff_8f3a_1234), "0x000000ff8f3a1234");
        if usize::BITS == 32 {
            assert_eq!(fmt_vaddr(0x76f0_1234), "0x76f01234");
            assert_eq!(fmt_vaddr(0), "0x00000000");
        } else {
            assert_eq!(fmt_vaddr(0x76f0_1234), "0x0000000076f01234");
        }
    }

    #[test]
    fn one_line_per_address_and_the_exit_status() {
        let mut f = Fake::new(&[
            (0x76f0_1000, Ok(0x8f3a_1000)),
            (0x76f0_2000, Err(Error::NotPresent)),
        ]);
        let (code, out) = run_on(&mut f, "1 0x76f01234");
        assert_eq!(code, EXIT_OK);
        assert_eq!(out, format!("{} -> 0x000000008f3a1234\n", v(0x76f0_1234)));

        let (code, out) = run_on(&mut f, "1 0x76f01234 0x76f02000 0");
        assert_eq!(code, EXIT_FAILURE);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[1],
            format!(
                "{}: not present: never touched or swapped out",
                v(0x76f0_2000)
            )
        );
        assert!(lines[2].starts_with(&format!("{}: not mapped", v(0))));
    }

    #[test]
    fn pagemap_cross_check() {
        let mut f = Fake::new(&[
            (0x1000, Ok(0x6000_0000)),
            (0x2000, Ok(0x6000_1000)),
            (0x3000, Err(Error::NotPresent)),
        ]);
        let (code, out) = run_on(&mut f, "-p 1 0x1010 0x3000");
        assert_eq!(code, EXIT_FAILURE, "0x3000 is not present");
        assert_eq!(
            out,
            format!(
                "{} -> 0x0000000060000010  pagemap: 0x0000000060000010\n\
                 {}: not present: never touched or swapped out  pagemap: not present\n",
                v(0x1010),
                v(0x3000)
            )
        );
        let (code, _) = run_on(&mut f, "-p 1 0x1010 0x2000");
        assert_eq!(code, EXIT_OK);

        // A disagreement is a failure, whichever side has a page.
        f.pagemap.insert(0x2000, Some(0x7000_0000));
        f.pagemap.insert(0x3000, Some(0x7000_1000));
        let (code, out) = run_on(&mut f, "--pagemap 1 0x2008");
        assert_eq!(code, EXIT_FAILURE);
        assert!(
            out.ends_with("pagemap: 0x0000000070000008 (differs!)\n"),
            "{out}"
        );
        let (code, out) = run_on(&mut f, "--pagemap 1 0x3000");
        assert_eq!(code, EXIT_FAILURE);
        assert!(out.contains("(differs!)"), "{out}");
        // Without --pagemap nobody asks pagemap.
        let (code, out) = run_on(&mut f, "1 0x2008");
        assert_eq!(code, EXIT_OK);
        assert!(!out.contains("pagemap"));

        // An unreadable pagemap is shown but is not a disagreement.
        f.pagemap_fails = true;
        let (code, out) = run_on(&mut f, "-p 1 0x1000");
        assert_eq!(code, EXIT_OK);
        assert!(out.ends_with("pagemap: error: nope\n"), "{out}");
    }

    #[test]
    fn range_summary_and_gaps() {
        let mut pages: Vec<(usize, Result<u64, Error>)> = (0x10..0x20)
            .map(|p| (p << 12, Ok(0x6000_0000 + ((p as u64) << 12))))
            .collect();
        pages[4].1 = Err(Error::NotPresent);
        pages[5].1 = Err(Error::NotPresent);
        pages[6].1 = Err(Error::NotPresent);
        pages.pop(); // 0x1f000 unmapped
        let mut f = Fake::new(&pages);

        let (code, out) = run_on(&mut f, "1 0x10000 --len 16K");
        assert_eq!(code, EXIT_OK);
        assert_eq!(
            out,
            format!("{}-{}: 4 pages, all resident\n", v(0x10000), v(0x14000))
        );

        let (code, out) = run_on(&mut f, "1 10000-20000");
        assert_eq!(code, EXIT_FAILURE);
        assert_eq!(
            out,
            format!(
                "{}-{}: 16 pages, 12 resident, 4 not:\n  \
                 {}-{} (3 pages): not present: never touched or swapped out\n  \
                 {}-{} (1 page): not mapped: no mapping contains this address\n",
                v(0x10000),
                v(0x20000),
                v(0x14000),
                v(0x17000),
                v(0x1f000),
                v(0x20000)
            )
        );

        // Unaligned start and length: every page they touch.
        let (_, out) = run_on(&mut f, "1 0x10fff --len 2");
        assert!(
            out.starts_with(&format!("{}-{}: 2 pages", v(0x10000), v(0x12000))),
            "{out}"
        );

        // Verbose: every page, after the summary.
        let (_, out) = run_on(&mut f, "-v 1 0x13000 --len 8K");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4, "{out}");
        assert_eq!(lines[2], format!("  {} -> 0x0000000060013000", v(0x13000)));
        assert_eq!(
            lines[3],
            format!(
                "  {}: not present: never touched or swapped out",
                v(0x14000)
            )
        );
    }

    #[test]
    fn range_stops_on_whole_process_errors() {
        let mut f = Fake::new(&[(0x1000, Err(Error::PermissionDenied))]);
        let (code, out) = run_on(&mut f, "1 0x1000 --len 1M");
        assert_eq!(code, EXIT_FAILURE);
        assert_eq!(
            out,
            format!(
                "{}-{}: permission denied: needs CAP_SYS_ADMIN (run as root)\n",
                v(0x1000),
                v(0x101000)
            )
        );
        assert_eq!(f.calls, 1, "one call is enough to know");
    }

    #[test]
    fn range_with_pagemap() {
        let mut f = Fake::new(&[
            (0x1000, Ok(0x6000_1000)),
            (0x2000, Ok(0x6000_2000)),
            (0x3000, Err(Error::NotPresent)),
        ]);
        let (code, out) = run_on(&mut f, "-p 1 0x1000 --len 8K");
        assert_eq!(code, EXIT_OK);
        assert!(out.ends_with("  pagemap: agrees on 2 pages\n"), "{out}");

        let (code, out) = run_on(&mut f, "-p 1 0x1000 --len 12K");
        assert_eq!(code, EXIT_FAILURE, "0x3000 not resident");
        assert!(out.ends_with("  pagemap: agrees on 3 pages\n"), "{out}");

        f.pagemap.insert(0x2000, Some(0x7000_0000));
        let (code, out) = run_on(&mut f, "-p 1 0x1000 --len 8K");
        assert_eq!(code, EXIT_FAILURE);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        assert_eq!(
            lines[1],
            format!(
                "  {} -> 0x0000000060002000  pagemap: 0x0000000070000000 (differs!)",
                v(0x2000)
            )
        );
        assert_eq!(lines[2], "  pagemap: DIFFERS on 1 of 2 pages");

        f.pagemap_fails = true;
        let (code, out) = run_on(&mut f, "-p 1 0x1000 --len 8K");
        assert_eq!(code, EXIT_OK);
        assert!(
            out.ends_with("  pagemap: agrees on 0 pages, could not compare 2: nope\n"),
            "{out}"
        );
    }

    #[test]
    fn help_explains_the_call() {
        let h = help_text();
        for needle in [
            "Usage: vtop",
            "472",
            "offset within the page",
            "64 bits",
            "LPAE",
            "CAP_SYS_ADMIN",
            "never faults a page in",
            "snapshot",
            "migrate",
            "mlockall",
            "--len",
            "/proc/<pid>/maps",
            "zero page",
            "ENOENT",
            "EFAULT",
            "EINVAL",
            "EPERM",
            "EACCES",
            "ESRCH",
            "ENOSYS",
            "Exit status",
        ] {
            assert!(h.contains(needle), "help lacks {needle:?}");
        }
        assert!(
            h.lines().all(|l| l.len() <= 80),
            "help wider than 80 columns"
        );
    }
}
