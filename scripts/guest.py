#!/usr/bin/env python3
"""Boot an rtflex image in QEMU and talk to it.

  guest.py test     boot in test mode, run the guest tests, print
                    "N passed, N failed" (host test counts included with
                    --host-log), exit non-zero on any failure, hang or
                    kernel report (with --debug-kernel: any report that
                    appears while the tests run, kmemleak's included;
                    those from boot are listed as the baseline)
  guest.py compare  boot, run cyclictest and rtlat with identical
                    parameters, print the comparison table
  guest.py bench    boot (--smp N vCPUs), run flexsc-bench and rtlat with
                    per-cycle I/O (direct and FlexSC), write
                    BUILD_DIR/bench/report-smp<N>.md
  guest.py fuzz     boot, run the system call fuzzer (sysfuzz) for
                    --seconds N (optionally --seed S), exit non-zero on a
                    fuzzer failure, a kernel problem on the console or a hang
  guest.py shell    boot with an interactive console (Ctrl-a x quits)
  guest.py summary  no boot: the closing line for --host-log alone (boards
                    without a QEMU model)

The console (first UART) goes to the terminal or a log file; the guest
scripts stream their results over the second UART (board.mk
BOARD_RESULTS_TTY) into a file, framed by "rtflex-guest:" lines.
"""

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time

# Kernel log lines that mean the kernel is broken: the one list of
# patterns, shared with the guest tests (which compile it in).
KERNEL_PROBLEMS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                    "rt-apps", "guest-tests", "kernel-problems.txt")
# The line the guest test runner writes into the kernel log before the first
# test (TESTS_BEGIN_MARKER in rootfs/overlay/usr/libexec/rtflex/run-guest-tests
# and rt-apps/guest-tests/src/lib.rs): console lines above it are from boot.
TESTS_BEGIN_MARKER = "rtflex-guest: tests begin"
# The kernel's last words before the machine is off (kernel/reboot.c).
# On a debug kernel, reports after it come from the power-off path once
# every test has ended (seen: lockdep's "Invalid wait context" in the
# vexpress power-off handler, a mutex taken from an atomic notifier on
# PREEMPT_RT): listed with the baseline, not counted.
POWER_OFF_MARKER = "reboot: Power down"
TEST_LINE = re.compile(r"^test (\S+) \.\.\. (ok|FAILED|ignored)")
CARGO_RESULT = re.compile(r"test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored")
# Python unittest's closing lines: "Ran N tests in T s", a blank line, then
# "OK" or "FAILED", with "(failures=a, errors=b, skipped=c)" when not zero.
UNITTEST_RESULT = re.compile(r"^Ran (\d+) tests? in \S+\n\n(OK|FAILED)(?: \(([^)\n]*)\))?$", re.M)

ICOUNT = "shift=3,sleep=off"


def load_problem_patterns(path=KERNEL_PROBLEMS_FILE):
    """The patterns of kernel-problems.txt: literal substrings, one per line,
    without comments ('#' lines) and blank lines."""
    with open(path) as f:
        lines = [line.rstrip("\r\n") for line in f]
    patterns = [line for line in lines if line.strip() and not line.startswith("#")]
    if not patterns:
        raise ValueError(f"{path}: no patterns")
    return patterns


_PATTERNS = []


def problem_patterns():
    """The patterns, read once."""
    if not _PATTERNS:
        _PATTERNS.extend(load_problem_patterns())
    return _PATTERNS


def is_kernel_problem(line, patterns=None):
    """True if a kernel log line reports a problem."""
    return any(p in line for p in (patterns if patterns is not None else problem_patterns()))


class ConsoleProblems:
    """Problem lines of a guest console, split at the tests-begin marker and
    at the kernel's power-off message: `boot` (before the marker, or all of
    them if it never came), `run`, and `power_off` (after the tests, while
    the kernel powers the machine off)."""

    def __init__(self, patterns=None):
        self.patterns = patterns if patterns is not None else problem_patterns()
        self.boot = []
        self.run = []
        self.power_off = []
        self.tests_began = False
        self.powering_off = False

    def feed(self, line):
        if TESTS_BEGIN_MARKER in line:
            self.tests_began = True
        elif POWER_OFF_MARKER in line:
            self.powering_off = True
        elif is_kernel_problem(line, self.patterns):
            if self.powering_off:
                self.power_off.append(line)
            else:
                (self.run if self.tests_began else self.boot).append(line)

    def all(self):
        return self.boot + self.run + self.power_off


def read_board(path):
    """Variables of a board.mk (NAME := value lines, backslash continued)."""
    board = {}
    with open(path) as f:
        text = f.read().replace("\\\n", " ")
    for line in text.splitlines():
        m = re.match(r"^(\w+)\s*:?=\s*(.*)$", line)
        if m:
            board[m.group(1)] = " ".join(m.group(2).split())
    return board


def qemu_dtb(args, board):
    """The board's DTB, or for boards whose board.mk lists serial ports in
    BOARD_QEMU_SERIAL_NO_DMA (DT aliases) a copy without DMA on those
    ports: QEMU has no model of the i.MX6 SDMA engine, so the kernel's
    DMA transmits on a non-console i.MX UART never complete. Only the
    results port is affected (the console never uses DMA); the image's
    own DTB is left as it is."""
    aliases = board.get("BOARD_QEMU_SERIAL_NO_DMA", "").split()
    if not aliases:
        return args.dtb
    out = os.path.join(args.build_dir, "qemu-" + os.path.basename(args.dtb))
    os.makedirs(args.build_dir, exist_ok=True)
    with open(args.dtb, "rb") as src, open(out, "wb") as dst:
        dst.write(src.read())
    for alias in aliases:
        node = subprocess.run(["fdtget", "-ts", out, "/aliases", alias], check=True,
                              capture_output=True, text=True).stdout.strip()
        for prop in ("dmas", "dma-names"):
            subprocess.run(["fdtput", "-d", out, node, prop], check=True)
    return out


def sd_card(board, sdcard):
    """QEMU options that put SDCARD in the board's SD slot: if=sd, or the
    sd-card device board.mk names in BOARD_QEMU_SD_DEVICE (machines that
    wire no if=sd drive)."""
    if board.get("BOARD_QEMU_SD_DEVICE"):
        return ["-drive", f"if=none,id=sdcard,format=raw,file={sdcard}",
                "-device", f"{board['BOARD_QEMU_SD_DEVICE']},drive=sdcard"]
    return ["-drive", f"if=sd,format=raw,file={sdcard}"]


def qemu_command(args, board, mode, results_path):
    console = board["BOARD_CONSOLE"]
    append = [
        f"console={console},115200",
        f"root={board['BOARD_ROOT_DEVICE']}",
        "rootwait",
        "rw",
    ]
    if mode != "shell":
        append += [f"rtflex.mode={mode}", f"rtflex.results={board['BOARD_RESULTS_TTY']}"]
        skip = board.get("BOARD_GUEST_TEST_SKIP", "").split() + (args.skip or [])
        if mode == "test" and skip:
            append.append("rtflex.skip=" + ",".join(skip))
        if mode == "fuzz":
            append.append(f"rtflex.fuzz_seconds={args.seconds}")
            if args.seed is not None:
                append.append(f"rtflex.fuzz_seed={args.seed}")
    append += args.append or []
    cmd = ["qemu-system-arm"] + with_smp(shlex.split(board["BOARD_QEMU_ARGS"]), args.smp)
    cmd += ["-kernel", args.zimage, "-dtb", qemu_dtb(args, board)]
    cmd += sd_card(board, args.sdcard)
    cmd += ["-append", " ".join(append), "-no-reboot", "-display", "none"]
    # QEMU's serial ports in order; the console is the first one unless
    # the board says otherwise (i.MX6: UART2, ttymxc1, is QEMU's second).
    if mode == "shell":
        console, results = ["-serial", "mon:stdio"], ["-serial", "null"]
        if not args.no_icount:
            cmd += ["-icount", ICOUNT]
    else:
        # Tests and comparisons never modify the image. The fuzzer's guest
        # gets a monitor socket: a hung guest's CPU state is read from it.
        monitor = f"unix:{monitor_path(args)},server,nowait" if mode == "fuzz" else "none"
        cmd += ["-snapshot", "-monitor", monitor, "-icount", ICOUNT]
        console, results = ["-serial", "stdio"], ["-serial", f"file:{results_path}"]
    if board.get("BOARD_QEMU_CONSOLE_SERIAL", "1") == "2":
        cmd += results + console
    else:
        cmd += console + results
    return cmd


def monitor_path(args):
    return os.path.join(args.build_dir, "fuzz-monitor.sock")


def monitor_command(path, command):
    """One QEMU human-monitor command over its unix socket; its output."""
    import socket
    out = b""
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(3)
            sock.connect(path)
            sock.sendall(command.encode() + b"\n")
            time.sleep(1)
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                out += data
    except OSError:
        pass
    return out.decode("utf-8", "replace").replace("\r", "")


def kernel_symbol(args, pc):
    """The symbol+offset of address PC in the kernel's System.map, or ''."""
    path = os.path.join(os.path.dirname(args.zimage), "..", "..", "..", "System.map")
    best = None
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3 and parts[1] in "tTwW":
                    addr = int(parts[0], 16)
                    if addr <= pc and (best is None or addr > best[0]):
                        best = (addr, parts[2])
    except OSError:
        return ""
    return f"{best[1]}+{pc - best[0]:#x}" if best else ""


def cpu_state(args, samples=5):
    """Where a hung guest's CPU is: a few samples of PC, mode and symbol."""
    lines = []
    for _ in range(samples):
        regs = monitor_command(monitor_path(args), "info registers")
        pc = re.search(r"R15=([0-9a-f]{8})", regs)
        psr = re.search(r"PSR=([0-9a-f]{8}) \S+ (\w+)", regs)
        if not pc:
            lines.append("(no registers from the QEMU monitor)")
            break
        addr = int(pc.group(1), 16)
        where = kernel_symbol(args, addr) if addr >= 0xBF000000 else "user space"
        lines.append(f"pc {addr:#010x} ({where}), psr {psr.group(1) if psr else '?'} "
                     f"{psr.group(2) if psr else ''}")
        time.sleep(1)
    return lines


def with_smp(qemu_args, smp):
    """QEMU_ARGS with "-smp SMP" instead of the board's CPU count (if SMP)."""
    if not smp:
        return qemu_args
    out = []
    skip = False
    for i, a in enumerate(qemu_args):
        if skip:
            skip = False
            continue
        if a == "-smp":
            skip = i + 1 < len(qemu_args)
            continue
        if a.startswith("-smp="):
            continue
        out.append(a)
    return out + ["-smp", str(smp)]


def guest_ended(text):
    """True once the guest runner sent its closing line (not "endfile")."""
    return re.search(r"^rtflex-guest: end$", text, re.M) is not None


def boot(args, board, mode, name=None, stall=None):
    """Boot the guest in MODE; return (results text, console problems (a
    ConsoleProblems), why). NAME (default: MODE) names the log files. With
    STALL, a guest that sends no results for STALL s counts as hung (its
    CPU state, read from the fuzz mode's monitor, goes to `why`)."""
    os.makedirs(args.build_dir, exist_ok=True)
    name = name or mode
    results_path = os.path.join(args.build_dir, f"{name}-results.log")
    console_path = os.path.join(args.build_dir, f"{name}-console.log")
    for p in (results_path, console_path):
        if os.path.exists(p):
            os.remove(p)
    cmd = qemu_command(args, board, mode, results_path)
    print("[rtflex] " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    timeout = args.timeout * args.timeout_factor
    if args.timeout_factor != 1:
        print(f"[rtflex] guest timeout {timeout:.0f} s ({args.timeout} s x {args.timeout_factor:g})",
              flush=True)
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    problems = ConsoleProblems()

    def pump():
        with open(console_path, "wb") as log:
            for raw in proc.stdout:
                log.write(raw)
                log.flush()
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if args.verbose:
                    print("  | " + line, flush=True)
                problems.feed(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()

    def results():
        try:
            with open(results_path, "rb") as f:
                return f.read().decode("utf-8", "replace").replace("\r", "")
        except FileNotFoundError:
            return ""

    why = None
    ended_at = None
    last_size, last_growth = -1, time.monotonic()
    while True:
        if proc.poll() is not None:
            break
        now = time.monotonic()
        if guest_ended(results()):
            ended_at = ended_at or now
            if now - ended_at > 30:  # ended but did not power off: stop it
                proc.kill()
                break
        elif any("Kernel panic" in p for p in problems.all()):
            why = "kernel panic"
            time.sleep(2)
            proc.kill()
            break
        elif now - start > timeout:
            why = f"timeout after {timeout:.0f} s"
            proc.kill()
            break
        elif stall:
            size = os.path.getsize(results_path) if os.path.exists(results_path) else 0
            if size != last_size:
                last_size, last_growth = size, now
            elif now - last_growth > stall:
                why = f"no output from the guest for {stall} s (hung); CPU: " + "; ".join(cpu_state(args))
                proc.kill()
                break
        time.sleep(0.5)
    proc.wait()
    reader.join(timeout=5)
    elapsed = time.monotonic() - start
    text = results()
    if why is None and not guest_ended(text):
        why = f"guest stopped before finishing (qemu exit {proc.returncode})"
    print(f"[rtflex] guest ran {elapsed:.1f} s; console log: {console_path}", flush=True)
    return text, problems, why


def frames(text):
    """Files the guest sent: {name: content}."""
    files = {}
    for m in re.finditer(r"^rtflex-guest: file (\S+)\n(.*?)^rtflex-guest: endfile \1$",
                         text, re.S | re.M):
        files[m.group(1)] = m.group(2)
    return files


def count_results(text):
    """(passed, failed, ignored) over the cargo/libtest "test result:" lines
    and the Python unittest summaries of a host test log."""
    passed = failed = ignored = 0
    for m in CARGO_RESULT.finditer(text):
        passed += int(m.group(1))
        failed += int(m.group(2))
        ignored += int(m.group(3))
    for m in UNITTEST_RESULT.finditer(text):
        counts = dict(kv.split("=", 1) for kv in (m.group(3) or "").split(", ") if "=" in kv)
        bad = int(counts.get("failures", 0)) + int(counts.get("errors", 0)) + \
            int(counts.get("unexpected successes", 0))
        skipped = int(counts.get("skipped", 0)) + int(counts.get("expected failures", 0))
        passed += int(m.group(1)) - bad - skipped
        failed += bad
        ignored += skipped
    return passed, failed, ignored


def host_counts(path):
    if not path:
        return 0, 0, 0
    with open(path, errors="replace") as f:
        return count_results(f.read())


def kmemleak_leaks(report, patterns=None):
    """One summary line per leak of a kmemleak report (the text of
    /sys/kernel/debug/kmemleak): the header line that matches a problem
    pattern ("unreferenced object ..."), the allocating task and the first
    frames of the allocation's backtrace."""
    leaks = []
    for block in re.split(r"^(?=\S)", report, flags=re.M):
        lines = block.splitlines()
        if not lines or not is_kernel_problem(lines[0], patterns):
            continue
        comm = next((l.strip() for l in lines if l.strip().startswith("comm ")), "")
        frames_at = next((i for i, l in enumerate(lines) if l.strip().startswith("backtrace")), None)
        trace = []
        if frames_at is not None:
            trace = [l.strip().split("+")[0] for l in lines[frames_at + 1:] if l.strip()][:5]
        leaks.append("; ".join(x for x in (lines[0].rstrip(":"), comm,
                                          "backtrace: " + " < ".join(trace) if trace else "") if x))
    return leaks


class TestRun:
    """What a test boot showed: counts, one line per test, failures, and the
    boot-time baseline of kernel reports."""

    def __init__(self):
        self.passed = self.failed = self.ignored = 0
        self.tests = []
        self.failures = []
        self.baseline = []

    def fail(self, what):
        self.failed += 1
        self.failures.append(what)


def evaluate_test_run(text, problems, why, debug_kernel=False, patterns=None):
    """Judge a test boot from the results the guest sent (TEXT), the console
    problem lines (a ConsoleProblems) and why it stopped early (or None).

    Kernel reports from boot (console lines before the tests-begin marker,
    kmemleak's first scan) fail the run on the normal kernel; on a debug
    kernel they are upstream noise we cannot fix here: they become the
    baseline, listed but not counted, and only reports that appear while
    the tests run fail it. A debug kernel must also show that its checkers
    were working: the marker came, kmemleak scanned before and after the
    tests, and lockdep, which switches itself off after its first report,
    was still on when the tests began."""
    run = TestRun()
    current = None
    current_failed = 0
    for line in text.splitlines():
        if line.startswith("rtflex-guest: run "):
            current, current_failed = line.split()[-1], 0
            continue
        m = re.match(r"^rtflex-guest: skip (\S+)$", line)
        if m:
            run.tests.append(f"{m.group(1)} ... ignored (not run here: board.mk BOARD_GUEST_TEST_SKIP "
                             f"or the kernel variant's LINUX_VARIANT_GUEST_SKIP)")
            run.ignored += 1
            continue
        m = re.match(r"^rtflex-guest: exit (\S+) (-?\d+)$", line)
        if m:
            if m.group(2) != "0" and current_failed == 0:
                run.fail(f"{m.group(1)}: test binary exited with {m.group(2)}")
            continue
        m = TEST_LINE.match(line)
        if m:
            name = f"{current}::{m.group(1)}"
            run.tests.append(f"{name} ... {m.group(2)}")
            if m.group(2) == "ok":
                run.passed += 1
            elif m.group(2) == "ignored":
                run.ignored += 1
            else:
                current_failed += 1
                run.fail(name)

    if debug_kernel:
        run.baseline += [f"console: {p}" for p in problems.boot]
        run.baseline += [f"console, at power-off after the tests: {p}" for p in problems.power_off]
        if problems.run:
            run.fail("kernel reports while the tests ran (console): " + "; ".join(problems.run[:5]))
        if not problems.tests_began and not why:
            run.fail(f"no '{TESTS_BEGIN_MARKER}' line on the console: boot and test-run reports "
                     "cannot be told apart")
    elif problems.all():
        run.fail("kernel log on the console: " + "; ".join(problems.all()[:5]))

    files = frames(text)
    for m in re.finditer(r"^rtflex-guest: kmemleak-error (.*)$", text, re.M):
        run.fail(f"kmemleak: {m.group(1)}")
    begin = files.get("kmemleak-begin.txt")
    end = files.get("kmemleak-end.txt")
    if begin is not None:
        leaks = kmemleak_leaks(begin, patterns)
        if debug_kernel:
            run.baseline += [f"kmemleak: {leak}" for leak in leaks]
        elif leaks:
            run.fail(f"kmemleak: {len(leaks)} leak(s) at boot: " + " | ".join(leaks[:3]))
    if end is not None:
        leaks = kmemleak_leaks(end, patterns)
        if leaks:
            run.fail(f"kmemleak: {len(leaks)} new leak(s) during the tests: " + " | ".join(leaks[:3]))
    if debug_kernel and not why:
        for when, report in (("before", begin), ("after", end)):
            if report is None:
                run.fail(f"no kmemleak scan {when} the tests (a kernel without DEBUG_KMEMLEAK, "
                         "or debugfs not mounted)")

    locks = dict(re.findall(r"^rtflex-guest: debug-locks (begin|end) (\S*)$", text, re.M))
    if debug_kernel:
        if "begin" not in locks:
            if not why:
                run.fail("lockdep's state was not reported (no /proc/lockdep_stats: a kernel without "
                         "PROVE_LOCKING?)")
        elif locks["begin"] != "1":
            run.fail("lockdep was already off when the tests began (a boot-time report switched it "
                     "off, see the baseline): the tests' locking went unchecked")
        elif "end" in locks and locks["end"] != "1":
            run.fail("lockdep switched itself off during the tests (after the report above): "
                     "later locking went unchecked")
        elif "end" not in locks and not why:
            run.fail("lockdep's state after the tests was not reported")

    if why:
        run.fail(f"guest: {why}")
    return run


def cmd_test(args, board):
    text, problems, why = boot(args, board, "test")
    run = evaluate_test_run(text, problems, why, args.debug_kernel)
    # Files the guest sent (kmemleak reports), for a closer look.
    outdir = os.path.join(args.build_dir, "test-files")
    os.makedirs(outdir, exist_ok=True)
    for old in os.listdir(outdir):
        os.remove(os.path.join(outdir, old))
    for name, content in frames(text).items():
        with open(os.path.join(outdir, name), "w") as f:
            f.write(content)
    for t in run.tests:
        print(f"  guest {t}")
    if run.baseline:
        print(f"[rtflex] boot-time kernel reports (before the tests began; the baseline: "
              f"listed, not counted): {len(run.baseline)}")
        for b in run.baseline:
            print(f"  = {b}")
    if run.failures:
        print("[rtflex] failures:")
        for f in run.failures:
            print(f"  - {f}")
        print(f"[rtflex] results: {os.path.join(args.build_dir, 'test-results.log')}, "
              f"console: {os.path.join(args.build_dir, 'test-console.log')}, files: {outdir}/")
    print(f"[rtflex] guest: {run.passed} passed, {run.failed} failed, {run.ignored} ignored")
    hp, hf, hi = host_counts(args.host_log)
    if args.host_log:
        if args.host_rc != 0 and hf == 0:
            hf = 1  # cargo failed without a failing test: a build error
        print(f"[rtflex] host:  {hp} passed, {hf} failed, {hi} ignored ({args.host_log})")
    total_failed = run.failed + hf
    print(f"{run.passed + hp} passed, {total_failed} failed, {run.ignored + hi} skipped")
    return 1 if total_failed else 0


def cmd_compare(args, board):
    text, problems, why = boot(args, board, "compare")
    files = frames(text)
    m = re.search(r"^rtflex-guest: args (.*)$", text, re.M)
    cargs = m.group(1) if m else "?"
    m = re.search(r"^rtflex-guest: begin (.*)$", text, re.M)
    release = m.group(1) if m else "?"
    outdir = os.path.join(args.build_dir, "compare")
    os.makedirs(outdir, exist_ok=True)
    for name, content in files.items():
        with open(os.path.join(outdir, name), "w") as f:
            f.write(content)
    if why or problems.all():
        print(f"[rtflex] comparison failed: {why or ''} {'; '.join(problems.all()[:3])}")
        return 1
    rows = []
    for tool in ("cyclictest", "rtlat"):
        try:
            report = json.loads(files[f"{tool}.json"])
        except (KeyError, ValueError) as e:
            print(f"[rtflex] no usable JSON from {tool}: {e}")
            print(files.get(f"{tool}.txt", ""))
            return 1
        for tid, t in sorted(report["thread"].items(), key=lambda kv: int(kv[0])):
            rows.append((tool, tid, t["cycles"], t["min"], float(t["avg"]), t["max"]))
    print()
    print(f"Wake-up latency, {board['BOARD_QEMU_MACHINE']} under QEMU -icount {ICOUNT}, Linux {release}")
    print("(guest time follows instruction count, 8 ns per instruction: this compares")
    print(" code paths, it does not predict a board's microseconds)")
    print(f"parameters for both tools: {cargs}")
    print()
    print(f"{'tool':<12}{'thread':>7}{'cycles':>9}{'min us':>9}{'avg us':>9}{'max us':>9}")
    for tool, tid, cycles, mn, avg, mx in rows:
        print(f"{tool:<12}{tid:>7}{cycles:>9}{mn:>9}{avg:>9.2f}{mx:>9}")
    c = [r for r in rows if r[0] == "cyclictest"]
    r = [r for r in rows if r[0] == "rtlat"]
    for a, b in zip(c, r):
        print(f"{'difference':<12}{a[1]:>7}{b[2] - a[2]:>9}{b[3] - a[3]:>+9}"
              f"{b[4] - a[4]:>+9.2f}{b[5] - a[5]:>+9}")
    print()
    print(f"[rtflex] reports and histograms: {outdir}/")
    return 0


def bench_report(text, board, smp):
    """The Markdown report of one bench boot and the list of failures."""
    files = frames(text)
    failures = []
    for m in re.finditer(r"^rtflex-guest: exit (\S+) (-?\d+)$", text, re.M):
        if m.group(2) != "0":
            failures.append(f"{m.group(1)} exited with {m.group(2)}")
    m = re.search(r"^rtflex-guest: begin (.*)$", text, re.M)
    release = m.group(1) if m else "?"
    m = re.search(r"^rtflex-guest: rtlat-args (.*)$", text, re.M)
    rtlat_args = m.group(1) if m else "?"
    m = re.search(r"^rtflex-guest: cpus (\d+)$", text, re.M)
    cpus = m.group(1) if m else "?"
    if cpus != str(smp):
        failures.append(f"the guest saw {cpus} CPU(s), not {smp}")
    out = [
        f"## {smp} vCPU(s): {board['BOARD_QEMU_MACHINE']}, QEMU -icount {ICOUNT}, Linux {release}",
        "",
        f"Command: `make bench` (this part: `scripts/guest.py bench --smp {smp}`, "
        f"kernel command line `rtflex.mode=bench`, guest script "
        f"`/usr/libexec/rtflex/run-bench`). Guest time follows the instruction count "
        f"(8 ns per instruction): the numbers compare code paths, not a board's "
        f"microseconds.",
        "",
        "### kml-bench: system call entry, svc vs the Kernel Mode Linux trampoline",
        "",
        "`/usr/bin/kml-bench --header` (USR mode) and `/trusted/kml-bench` (the same "
        "binary, copied into `/trusted` for this run: SYS mode). The trampoline saves "
        "the exception entry and exit, which "
        "icount does not price: a real CPU pays more for them than these numbers show.",
        "",
    ]
    for name in ("kml-bench-usr.txt", "kml-bench-sys.txt"):
        rows = [l for l in files.get(name, "").splitlines() if l.startswith("|")]
        if not rows:
            failures.append(f"no {name[:-4]} output")
            out.append(f"({name[:-4]}: no output)")
        out += rows
    out += [
        "",
        "### flexsc-bench: cost per call and batched throughput",
        "",
    ]
    benches = sorted((n for n in files if n.startswith("flexsc-bench-") and n.endswith(".txt")),
                     key=lambda n: (n != "flexsc-bench-same.txt", n))
    if not benches:
        out += ["(no flexsc-bench output)", ""]
        failures.append("no flexsc-bench output")
    for name in benches:
        placement = name[len("flexsc-bench-"):-len(".txt")]
        out.append(f"`flexsc-bench --workers-on={placement}`:")
        out.append("")
        body = [l for l in files[name].rstrip("\n").splitlines()
                if not l.startswith('{"flexsc_bench":')]
        while body and not body[-1].strip():
            body.pop()
        out += body
        out.append("")
        if f"flexsc-bench-{placement}.json" not in files:
            failures.append(f"flexsc-bench --workers-on={placement}: no JSON")
    out += [
        "### rtlat: wake-up latency with one write per cycle",
        "",
        f"`rtlat {rtlat_args}` plus the I/O options of each row (64-byte records; "
        "`--io-file` is on tmpfs; FlexSC: one SCHED_OTHER syscall thread).",
        "",
        "| I/O options | thread | cycles | min us | avg us | max us |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    runs = [("rtlat-none", "(none)"),
            ("rtlat-pipe-direct", "--io-pipe --io-via=direct"),
            ("rtlat-pipe-flexsc", "--io-pipe --io-via=flexsc"),
            ("rtlat-file-direct", "--io-file=/tmp/rtlat-io.dat --io-via=direct"),
            ("rtlat-file-flexsc", "--io-file=/tmp/rtlat-io.dat --io-via=flexsc")]
    for name, label in runs:
        try:
            report = json.loads(files[f"{name}.json"])
            threads = sorted(report["thread"].items(), key=lambda kv: int(kv[0]))
        except (KeyError, ValueError) as e:
            why = (files.get(f"{name}.txt") or "no output").strip().splitlines()
            out.append(f"| `{label}` | failed: {why[-1] if why else e} | | | | |")
            failures.append(f"{name}: no usable JSON")
            continue
        for tid, t in threads:
            out.append(f"| `{label}` | {tid} | {t['cycles']} | {t['min']} | "
                       f"{float(t['avg']):.2f} | {t['max']} |")
    out.append("")
    return "\n".join(out) + "\n", failures


def cmd_bench(args, board):
    smp = args.smp or 1
    text, problems, why = boot(args, board, "bench", f"bench-smp{smp}")
    outdir = os.path.join(args.build_dir, "bench", f"smp{smp}")
    os.makedirs(outdir, exist_ok=True)
    for old in os.listdir(outdir):  # never mix in an earlier run's files
        os.remove(os.path.join(outdir, old))
    for name, content in frames(text).items():
        with open(os.path.join(outdir, name), "w") as f:
            f.write(content)
    report, failures = bench_report(text, board, smp)
    if problems.all():
        failures.append("kernel log on the console: " + "; ".join(problems.all()[:3]))
    if why:
        failures.append(f"guest: {why}")
    if failures:
        report += "\nProblems in this run:\n\n" + "".join(f"- {f}\n" for f in failures)
    path = os.path.join(args.build_dir, "bench", f"report-smp{smp}.md")
    with open(path, "w") as f:
        f.write(report)
    print()
    print(report)
    print(f"[rtflex] report: {path}; raw outputs: {outdir}/")
    if failures:
        print("[rtflex] bench failed: " + "; ".join(failures))
        return 1
    return 0


def evaluate_fuzz_run(text, problems, why):
    """The verdict of a fuzz boot: (sysfuzz's output lines, failures, seed or
    None). Fails on a missing or non-zero exit of sysfuzz, a kernel problem
    on the console, and a guest that stopped answering (`why`)."""
    out = []
    inside = False
    for line in text.splitlines():
        if line.startswith("rtflex-guest: run sysfuzz"):
            inside = True
            continue
        if line.startswith("rtflex-guest: exit sysfuzz"):
            inside = False
        if inside:
            out.append(line)
    failures = []
    m = re.search(r"^rtflex-guest: exit sysfuzz (-?\d+)$", text, re.M)
    if not m:
        failures.append("sysfuzz did not finish")
    elif m.group(1) != "0":
        verdict = [line for line in out if line.startswith("sysfuzz: FAIL")]
        failures.append(f"sysfuzz exited with {m.group(1)}: {verdict[-1] if verdict else 'no verdict'}")
    if problems.all():
        failures.append("kernel log on the console: " + "; ".join(problems.all()[:5]))
    if why:
        failures.append(f"guest: {why}")
    seed = re.search(r"^sysfuzz: seed (\d+)", text, re.M)
    return out, failures, (int(seed.group(1)) if seed else None)


def cmd_fuzz(args, board):
    """Boot in fuzz mode; the verdict is sysfuzz's exit status, plus the
    console (kernel problems) and the guest answering at all."""
    # Guest time follows instructions (-icount): allow for a slow host.
    args.timeout = max(args.timeout, 3 * args.seconds + 300)
    # sysfuzz prints progress every 10 s of guest time: minutes of silence
    # mean a hung guest.
    if os.path.exists(monitor_path(args)):
        os.remove(monitor_path(args))
    text, problems, why = boot(args, board, "fuzz", stall=args.stall * args.timeout_factor)
    out, failures, seed = evaluate_fuzz_run(text, problems, why)
    print("\n".join(out))
    console = os.path.join(args.build_dir, "fuzz-console.log")
    if problems.all():
        with open(console, errors="replace") as f:
            lines = f.read().splitlines()
        first = next((i for i, line in enumerate(lines) if line.rstrip("\r") in problems.all()), 0)
        print("[rtflex] console from the first kernel problem:")
        for line in lines[max(0, first - 5):first + 60]:
            print("  | " + line)
    replay = f"make fuzz FUZZ_SECONDS={args.seconds} FUZZ_SEED={seed}" if seed is not None else "(no seed)"
    if failures:
        print("[rtflex] fuzz failed: " + "; ".join(failures))
        print(f"[rtflex] same random choices again: {replay}")
        print(f"[rtflex] results: {os.path.join(args.build_dir, 'fuzz-results.log')}, console: {console}")
        return 1
    print(f"[rtflex] fuzz passed: {args.seconds} s of fuzzing (same random choices again: {replay})")
    return 0


def cmd_shell(args, board):
    cmd = qemu_command(args, board, "shell", None)
    print("[rtflex] " + " ".join(shlex.quote(c) for c in cmd))
    print("[rtflex] interactive console; quit with Ctrl-a x", flush=True)
    os.execvp(cmd[0], cmd)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["test", "compare", "bench", "fuzz", "shell", "summary"])
    p.add_argument("--board-dir")
    p.add_argument("--build-dir")
    p.add_argument("--zimage")
    p.add_argument("--dtb")
    p.add_argument("--sdcard")
    p.add_argument("--timeout", type=int, default=int(os.environ.get("RTFLEX_GUEST_TIMEOUT", 900)),
                   help="host seconds a guest run may take (default: $RTFLEX_GUEST_TIMEOUT or 900)")
    p.add_argument("--timeout-factor", type=float, default=1.0, metavar="F",
                   help="multiply --timeout by F (slower debug kernels)")
    p.add_argument("--debug-kernel", action="store_true",
                   help="test: the kernel is a debug variant: boot-time kernel reports are a "
                        "listed baseline, only reports during the tests fail; kmemleak scans and "
                        "lockdep must be working")
    p.add_argument("--skip", action="append", metavar="NAME",
                   help="test: also skip test binary NAME or test BINARY::TEST (repeatable)")
    p.add_argument("--append", action="append", metavar="ARG",
                   help="add ARG to the kernel command line (repeatable)")
    p.add_argument("--host-log", help="cargo test output to add to the totals")
    p.add_argument("--host-rc", type=int, default=0, help="cargo test exit code")
    p.add_argument("--no-icount", action="store_true", help="shell: run at full speed")
    p.add_argument("--smp", type=int, choices=range(1, 5), metavar="N",
                   help="number of vCPUs (1-4; default: the board's BOARD_QEMU_ARGS)")
    p.add_argument("--seconds", type=int, default=600,
                   help="fuzz: fuzzing time in guest seconds (default 600)")
    p.add_argument("--seed", type=int, help="fuzz: the seed of a run to repeat its random choices")
    p.add_argument("--stall", type=int, default=180,
                   help="fuzz: host seconds without output after which the guest counts as hung "
                        "(default 180)")
    p.add_argument("-v", "--verbose", action="store_true", help="echo the guest console")
    args = p.parse_args()
    if args.timeout_factor <= 0:
        p.error("--timeout-factor must be positive")
    if args.mode == "summary":
        # Boards without a QEMU model: the closing line of the host part.
        hp, hf, hi = host_counts(args.host_log)
        if args.host_rc != 0 and hf == 0:
            hf = 1
        print(f"[rtflex] host:  {hp} passed, {hf} failed, {hi} ignored ({args.host_log})")
        print("[rtflex] guest: none (this board has no QEMU model)")
        print(f"{hp} passed, {hf} failed, {hi} skipped")
        return 1 if hf else 0
    for opt in ("board_dir", "build_dir", "zimage", "dtb", "sdcard"):
        if not getattr(args, opt):
            p.error(f"--{opt.replace('_', '-')} is required for {args.mode}")
    for f in (args.zimage, args.dtb, args.sdcard):
        if not os.path.exists(f):
            sys.exit(f"[rtflex] error: {f} missing: run 'make image' first")
    board = read_board(os.path.join(args.board_dir, "board.mk"))
    if not board.get("BOARD_QEMU_MACHINE"):
        sys.exit(f"[rtflex] error: board {os.path.basename(args.board_dir)} has no QEMU model: "
                 "its SD image is for the real board (see README, \"Flashing\"). "
                 "Boards that boot in QEMU: the ones with BOARD_QEMU_MACHINE in board/*/board.mk.")
    return {"test": cmd_test, "compare": cmd_compare, "bench": cmd_bench,
            "fuzz": cmd_fuzz, "shell": cmd_shell}[args.mode](args, board)


if __name__ == "__main__":
    sys.exit(main())
