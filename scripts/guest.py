#!/usr/bin/env python3
"""Boot an rtflex image in QEMU and talk to it.

  guest.py test     boot in test mode, run the guest tests, print
                    "N passed, N failed" (host test counts included with
                    --host-log), exit non-zero on any failure, hang or oops
  guest.py compare  boot, run cyclictest and rtlat with identical
                    parameters, print the comparison table
  guest.py bench    boot (--smp N vCPUs), run flexsc-bench and rtlat with
                    per-cycle I/O (direct and FlexSC), write
                    BUILD_DIR/bench/report-smp<N>.md
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

# Kernel log lines that mean the kernel is broken.
KERNEL_PROBLEMS = re.compile(
    r"Kernel panic|Internal error: Oops|Oops:|BUG:|WARNING:|Unable to handle kernel|"
    r"------------\[ cut here \]------------|rcu_.* self-detected stall|"
    r"sleeping function called from invalid context"
)
TEST_LINE = re.compile(r"^test (\S+) \.\.\. (ok|FAILED|ignored)")
CARGO_RESULT = re.compile(r"test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored")

ICOUNT = "shift=3,sleep=off"


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
        if mode == "test" and board.get("BOARD_GUEST_TEST_SKIP"):
            append.append("rtflex.skip=" + ",".join(board["BOARD_GUEST_TEST_SKIP"].split()))
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
        # Tests and comparisons never modify the image.
        cmd += ["-snapshot", "-monitor", "none", "-icount", ICOUNT]
        console, results = ["-serial", "stdio"], ["-serial", f"file:{results_path}"]
    if board.get("BOARD_QEMU_CONSOLE_SERIAL", "1") == "2":
        cmd += results + console
    else:
        cmd += console + results
    return cmd


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


def boot(args, board, mode, name=None):
    """Boot the guest in MODE; return (results text, console problems, why).
    NAME (default: MODE) names the log files."""
    os.makedirs(args.build_dir, exist_ok=True)
    name = name or mode
    results_path = os.path.join(args.build_dir, f"{name}-results.log")
    console_path = os.path.join(args.build_dir, f"{name}-console.log")
    for p in (results_path, console_path):
        if os.path.exists(p):
            os.remove(p)
    cmd = qemu_command(args, board, mode, results_path)
    print("[rtflex] " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    problems = []

    def pump():
        with open(console_path, "wb") as log:
            for raw in proc.stdout:
                log.write(raw)
                log.flush()
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if args.verbose:
                    print("  | " + line, flush=True)
                if KERNEL_PROBLEMS.search(line):
                    problems.append(line)

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
    while True:
        if proc.poll() is not None:
            break
        now = time.monotonic()
        if guest_ended(results()):
            ended_at = ended_at or now
            if now - ended_at > 30:  # ended but did not power off: stop it
                proc.kill()
                break
        elif any("Kernel panic" in p for p in problems):
            why = "kernel panic"
            time.sleep(2)
            proc.kill()
            break
        elif now - start > args.timeout:
            why = f"timeout after {args.timeout} s"
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


def host_counts(path):
    passed = failed = ignored = 0
    if path:
        with open(path, errors="replace") as f:
            for m in CARGO_RESULT.finditer(f.read()):
                passed += int(m.group(1))
                failed += int(m.group(2))
                ignored += int(m.group(3))
    return passed, failed, ignored


def cmd_test(args, board):
    text, problems, why = boot(args, board, "test")
    passed = failed = ignored = 0
    failures = []
    current = None
    current_failed = 0
    for line in text.splitlines():
        if line.startswith("rtflex-guest: run "):
            current, current_failed = line.split()[-1], 0
            continue
        m = re.match(r"^rtflex-guest: skip (\S+)$", line)
        if m:
            print(f"  guest {m.group(1)} ... ignored (not run on this board: board.mk BOARD_GUEST_TEST_SKIP)")
            ignored += 1
            continue
        m = re.match(r"^rtflex-guest: exit (\S+) (-?\d+)$", line)
        if m:
            if m.group(2) != "0" and current_failed == 0:
                failed += 1
                failures.append(f"{m.group(1)}: test binary exited with {m.group(2)}")
            continue
        m = TEST_LINE.match(line)
        if m:
            name = f"{current}::{m.group(1)}"
            print(f"  guest {name} ... {m.group(2)}")
            if m.group(2) == "ok":
                passed += 1
            elif m.group(2) == "ignored":
                ignored += 1
            else:
                failed += 1
                current_failed += 1
                failures.append(name)
    if problems:
        failed += 1
        failures.append("kernel log on the console: " + "; ".join(problems[:5]))
    if why:
        failed += 1
        failures.append(f"guest: {why}")
    if failures:
        print("[rtflex] failures:")
        for f in failures:
            print(f"  - {f}")
        print(f"[rtflex] results: {os.path.join(args.build_dir, 'test-results.log')}")
    print(f"[rtflex] guest: {passed} passed, {failed} failed, {ignored} ignored")
    hp, hf, hi = host_counts(args.host_log)
    if args.host_log:
        if args.host_rc != 0 and hf == 0:
            hf = 1  # cargo failed without a failing test: a build error
        print(f"[rtflex] host:  {hp} passed, {hf} failed, {hi} ignored ({args.host_log})")
    total_failed = failed + hf
    print(f"{passed + hp} passed, {total_failed} failed, {ignored + hi} skipped")
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
    if why or problems:
        print(f"[rtflex] comparison failed: {why or ''} {'; '.join(problems[:3])}")
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
        "binary, SYS mode). The trampoline saves the exception entry and exit, which "
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
    if problems:
        failures.append("kernel log on the console: " + "; ".join(problems[:3]))
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


def cmd_shell(args, board):
    cmd = qemu_command(args, board, "shell", None)
    print("[rtflex] " + " ".join(shlex.quote(c) for c in cmd))
    print("[rtflex] interactive console; quit with Ctrl-a x", flush=True)
    os.execvp(cmd[0], cmd)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["test", "compare", "bench", "shell", "summary"])
    p.add_argument("--board-dir")
    p.add_argument("--build-dir")
    p.add_argument("--zimage")
    p.add_argument("--dtb")
    p.add_argument("--sdcard")
    p.add_argument("--timeout", type=int, default=int(os.environ.get("RTFLEX_GUEST_TIMEOUT", 900)))
    p.add_argument("--host-log", help="cargo test output to add to the totals")
    p.add_argument("--host-rc", type=int, default=0, help="cargo test exit code")
    p.add_argument("--no-icount", action="store_true", help="shell: run at full speed")
    p.add_argument("--smp", type=int, choices=range(1, 5), metavar="N",
                   help="number of vCPUs (1-4; default: the board's BOARD_QEMU_ARGS)")
    p.add_argument("-v", "--verbose", action="store_true", help="echo the guest console")
    args = p.parse_args()
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
            "shell": cmd_shell}[args.mode](args, board)


if __name__ == "__main__":
    sys.exit(main())
