"""The guest commands: boot the image in a mode, judge what it sent, report.

  test     run the guest tests; "N passed, N failed, N skipped" (host test
           counts included with --host-log); non-zero on any failure, hang
           or kernel report (with --debug-kernel: any report that appears
           while the tests run, kmemleak's included; those from boot are
           listed as the baseline)
  compare  run cyclictest and rtlat with identical parameters, print the
           comparison table
  bench    (--smp N vCPUs) kml-bench, flexsc-bench and rtlat with per-cycle
           I/O; writes BUILD_DIR/bench/report-smp<N>.md
  profile  two boots with the tbcount QEMU plugin (FlexSC, then --direct-only):
           the instructions per call of a FlexSC batch by function;
           writes BUILD_DIR/profile/report-<protocol>-<batch>.md
  fuzz     the system call fuzzer for --seconds N (--seed S repeats a run);
           non-zero on a fuzzer failure, a kernel problem or a hang
  lab      the latency lab's matrix (loads x tools) for one kernel variant;
           the guest's result bundle goes to BUILD_DIR/<bundle name>/
           (docs/latency-lab.md); non-zero if a cell or the bundle failed
  shell    an interactive console (Ctrl-a x quits)
  summary  no boot: the closing line of --host-log alone (boards without a
           QEMU model)
"""

import json
import os
import shlex
import shutil
import time

from . import qemu, report, runner, uboot
from .runner import log
from .verdict import boot_failures, evaluate_fuzz_run, evaluate_test_run, host_counts


def system_map(kernel):
    """The kernel build's System.map for its arch/arm/boot/zImage."""
    return os.path.normpath(os.path.join(os.path.dirname(kernel), "..", "..", "..", "System.map"))


def monitor_path(args):
    return os.path.join(args.build_dir, "fuzz-monitor.sock")


def boot(args, mode, name=None, stall=None, timeout=None, plugin=None):
    """Boot in MODE; the logs are BUILD_DIR/NAME-results.log and
    NAME-console.log (NAME: the mode by default). PLUGIN: see
    qemu.qemu_command."""
    os.makedirs(args.build_dir, exist_ok=True)
    name = name or mode
    results_path = os.path.join(args.build_dir, f"{name}-results.log")
    monitor = None
    on_stall = None
    if mode == "fuzz":
        # A hung guest's CPU state is read over the QEMU monitor.
        monitor = monitor_path(args)
        if os.path.exists(monitor):
            os.remove(monitor)
        on_stall = lambda: runner.cpu_state(monitor, system_map(args.kernel))  # noqa: E731
    options = dict(skip=args.skip or (), append=args.append or (), fuzz_seconds=getattr(args, "seconds", None),
                   fuzz_seed=getattr(args, "seed", None), lab=getattr(args, "lab_options", None))
    sdcard, card_cmdline, want = uboot_card(args, qemu.kernel_cmdline(args.board, mode, **options))
    dtb = qemu.dtb_for_qemu(args.board, args.dtb, args.build_dir, args.smp) if args.dtb else None
    cmd = qemu.qemu_command(args.board, args.kernel, dtb, sdcard, mode=mode, results=results_path,
                            smp=args.smp, monitor=monitor, card_cmdline=card_cmdline,
                            icount=getattr(args, "use_icount", True), plugin=plugin, **options)
    timeout = (timeout or args.timeout) * args.timeout_factor
    if args.timeout_factor != 1:
        log(f"guest timeout {timeout:.0f} s ({args.timeout} s x {args.timeout_factor:g})")
    b = runner.boot(cmd, results_path, os.path.join(args.build_dir, f"{name}-console.log"),
                    timeout, stall=stall, on_stall=on_stall, verbose=args.verbose)
    b.command = cmd
    # Boards QEMU boots through U-Boot: what the console shows of the boot chain.
    b.boot_checks = []
    if want:
        with open(b.console_path, "rb") as f:
            b.boot_checks = uboot.check_boot(f.read().decode("utf-8", "replace"), want)
    return b


def uboot_card(args, cmdline):
    """For a board QEMU boots through U-Boot: the card that carries the
    kernel command line CMDLINE (uboot.card_for_boot), CMDLINE, and what the
    boot must show (uboot.Expected). Other boards: the card, None, None."""
    if not args.board.qemu_uboot:
        return args.sdcard, None, None
    uboot.require_firmware(args.board)
    card = uboot.card_for_boot(args.board, args.sdcard, cmdline, args.build_dir)
    return card, cmdline, uboot.expected(args.board, cmdline, card)


def boot_check_failures(b):
    """The failed boot-chain checks of boot B (boards booted through U-Boot)."""
    return [f"uboot::{name}: {failure}" for name, failure, _ in b.boot_checks if failure]


def save_files(results, outdir):
    """The files the guest sent, into OUTDIR (emptied first: never mix in an
    earlier run's files)."""
    os.makedirs(outdir, exist_ok=True)
    for old in os.listdir(outdir):
        os.remove(os.path.join(outdir, old))
    for name, content in results.files.items():
        with open(os.path.join(outdir, name), "w") as f:
            f.write(content)


def closing_line(guest_counts, host_log, host_rc):
    """Print the host part and the closing "N passed, N failed, N skipped"
    line; return the exit status."""
    gp, gf, gi = guest_counts
    hp, hf, hi = host_counts(host_log)
    if host_log:
        if host_rc != 0 and hf == 0:
            hf = 1  # the host tests failed without a failing test: a build error
        log(f"host:  {hp} passed, {hf} failed, {hi} ignored ({host_log})")
    print(f"{gp + hp} passed, {gf + hf} failed, {gi + hi} skipped")
    return 1 if gf + hf else 0


def choose_icount(args, smp):
    """Sets args.use_icount from --icount for SMP vCPUs (qemu.use_icount)
    and says so when the run is host-timed."""
    args.use_icount = qemu.use_icount(args.icount, smp)
    if not args.use_icount:
        log(f"{smp} vCPUs: no -icount (--icount {args.icount}): times are host-timed, "
            "so this host's load is in them")


def cmd_test(args):
    choose_icount(args, args.smp or 1)
    b = boot(args, "test")
    run = evaluate_test_run(b.results, b.problems, b.why, args.debug_kernel)
    # The boot chain through U-Boot: one test each, listed first (boot order).
    chain = []
    for name, failure, note in b.boot_checks:
        chain.append(f"uboot::{name} ... " + ("FAILED" if failure else "ok" + (f" ({note})" if note else "")))
        if failure:
            run.fail(f"uboot::{name}: {failure}")
        else:
            run.passed += 1
    run.tests[:0] = chain
    # Files the guest sent (kmemleak reports), for a closer look.
    outdir = os.path.join(args.build_dir, "test-files")
    save_files(b.results, outdir)
    for t in run.tests:
        print(f"  guest {t}")
    if run.baseline:
        log(f"boot-time kernel reports (before the tests began; the baseline: "
            f"listed, not counted): {len(run.baseline)}")
        for line in run.baseline:
            print(f"  = {line}")
    if run.failures:
        log("failures:")
        for f in run.failures:
            print(f"  - {f}")
        log(f"results: {b.results_path}, console: {b.console_path}, files: {outdir}/")
    log(f"guest: {run.passed} passed, {run.failed} failed, {run.ignored} ignored")
    return closing_line((run.passed, run.failed, run.ignored), args.host_log, args.host_rc)


def cmd_summary(args):
    """Boards without a QEMU model: the closing line of the host part."""
    log("guest: none (this board has no QEMU model)")
    return closing_line((0, 0, 0), args.host_log, args.host_rc)


def cmd_compare(args):
    b = boot(args, "compare")
    outdir = os.path.join(args.build_dir, "compare")
    save_files(b.results, outdir)
    lines, failures = report.compare_table(b.results, args.board.qemu_machine)
    failures += boot_failures(b.results, b.problems, b.why) + boot_check_failures(b)
    if failures:
        log("comparison failed: " + "; ".join(failures))
        log(f"results: {b.results_path}, console: {b.console_path}")
        return 1
    print()
    print("\n".join(lines))
    print()
    log(f"reports and histograms: {outdir}/")
    return 0


def cmd_bench(args):
    smp = args.smp or 1
    args.smp = smp
    choose_icount(args, smp)
    b = boot(args, "bench", f"bench-smp{smp}")
    outdir = os.path.join(args.build_dir, "bench", f"smp{smp}")
    save_files(b.results, outdir)
    text, failures = report.bench_report(b.results, args.board.qemu_machine, smp, icount=args.use_icount)
    failures += boot_failures(b.results, b.problems, b.why) + boot_check_failures(b)
    if failures:
        text += "\nProblems in this run:\n\n" + "".join(f"- {f}\n" for f in failures)
    path = os.path.join(args.build_dir, "bench", f"report-smp{smp}.md")
    with open(path, "w") as f:
        f.write(text)
    print()
    print(text)
    log(f"report: {path}; raw outputs: {outdir}/")
    if failures:
        log("bench failed: " + "; ".join(failures))
        return 1
    return 0


def cmd_profile(args):
    """Two boots under -icount with the tbcount plugin, FlexSC and
    --direct-only; the difference per function (profile.py)."""
    from . import profile
    out = os.path.join(args.build_dir, "profile")
    os.makedirs(out, exist_ok=True)
    base = list(args.append or [])
    params = [f"rtflex.profile_protocol={args.protocol}", f"rtflex.profile_batch={args.batch}",
              f"rtflex.profile_calls={args.calls}"]
    with open(system_map(args.kernel)) as f:
        kernel = profile.Symbols.from_system_map(f.read())
    cache = {}

    def user_symbols(path):
        if path not in cache:
            cache[path] = profile.Symbols.of_file(os.path.join(args.rootfs, path.lstrip("/")))
        return cache[path]

    totals, failures = {}, []
    for name, direct in (("flexsc", "0"), ("direct", "1")):
        args.append = base + ["rtflex.bench=profile", f"rtflex.profile_direct={direct}"] + params
        counts_path = os.path.join(out, f"{name}.tbcount")
        if os.path.exists(counts_path):
            os.remove(counts_path)
        b = boot(args, "bench", f"profile-{name}", plugin=(args.plugin, counts_path))
        failures += [f"{name}: {f}" for f in boot_failures(b.results, b.problems, b.why) + boot_check_failures(b)]
        if failures:
            break
        save_files(b.results, os.path.join(out, name))
        if not os.path.exists(counts_path):
            failures.append(f"{name}: the plugin wrote no counts ({counts_path})")
            break
        with open(counts_path) as f:
            counts = profile.parse_counts(f.read())
        maps = profile.parse_maps(b.results.files.get("profile-maps.txt", ""))
        if not any(p.endswith("/flexsc-bench") for *_, p in maps):
            failures.append(f"{name}: the guest sent no mappings of flexsc-bench")
            break
        totals[name] = profile.by_function(counts, kernel, maps, user_symbols)
        if name == "flexsc":
            print(b.results.files.get("profile.txt", "").rstrip())
    if failures:
        log("profile failed: " + "; ".join(failures))
        return 1
    command = (f"flexsc-bench --calls=getpid --uring=off --protocol={args.protocol} --batches={args.batch} "
               f"--batch-calls={args.calls} --iters=10 --warmup=10 --repeats=1")
    text = profile.report(profile.difference(totals["flexsc"], totals["direct"]), args.calls,
                          f"FlexSC {args.protocol}, batches of {args.batch} getpid: instructions per call",
                          command)
    text += (f"\nCommand: `make profile` (`scripts/rtflex profile --protocol {args.protocol} --batch {args.batch} "
             f"--calls {args.calls}`): two boots under QEMU -icount {qemu.ICOUNT} with the tbcount plugin "
             "(tools/qemu-plugins/tbcount.c), the second with --direct-only; the table is the first's "
             "instructions minus the second's, per function, divided by the calls. Kernel functions are "
             "`k:`; user-space ones are named by the mapped file.\n")
    path = os.path.join(out, f"report-{args.protocol}-{args.batch}.md")
    with open(path, "w") as f:
        f.write(text)
    print()
    print(text)
    log(f"report: {path}")
    return 0


def cmd_fuzz(args):
    """The verdict is sysfuzz's exit status, plus the console (kernel
    problems) and the guest answering at all."""
    # Guest time follows instructions (-icount): allow for a slow host.
    timeout = max(args.timeout, 3 * args.seconds + 300)
    # sysfuzz prints progress every 10 s of guest time: minutes of silence
    # mean a hung guest.
    b = boot(args, "fuzz", stall=args.stall * args.timeout_factor, timeout=timeout)
    run = evaluate_fuzz_run(b.results, b.problems, b.why)
    run.failures += boot_check_failures(b)
    print("\n".join(run.output))
    if b.problems.all():
        with open(b.console_path, errors="replace") as f:
            lines = [line.rstrip("\r") for line in f.read().splitlines()]
        first = next((i for i, line in enumerate(lines) if line in b.problems.all()), 0)
        log("console from the first kernel problem:")
        for line in lines[max(0, first - 5):first + 60]:
            print("  | " + line)
    replay = (f"make fuzz FUZZ_SECONDS={args.seconds} FUZZ_SEED={run.seed}" if run.seed is not None
              else "(no seed)")
    if run.failures:
        log("fuzz failed: " + "; ".join(run.failures))
        log(f"same random choices again: {replay}")
        log(f"results: {b.results_path}, console: {b.console_path}")
        return 1
    log(f"fuzz passed: {args.seconds} s of fuzzing (same random choices again: {replay})")
    return 0


def lab_cmdline(smp, tune):
    """The kernel command line words of a lab variant: TUNE adds the
    tuning profile's boot parameters (what `rtflex-tune cmdline` prints in
    the guest: rtflex.tune and quiet; on SMP the last CPU isolated, the
    interrupts on the others)."""
    if not tune:
        return []
    words = ["rtflex.tune", "quiet"]
    if smp > 1:
        words += [f"isolcpus={smp - 1}", f"irqaffinity=0-{smp - 2}" if smp > 2 else "irqaffinity=0"]
    return words


def cmd_lab(args):
    from . import bundle
    board_smp = [a for a, b in zip(args.board.qemu_args, args.board.qemu_args[1:]) if b and a == "-smp"]
    smp = args.smp or (int(args.board.qemu_args[args.board.qemu_args.index("-smp") + 1]) if board_smp else 1)
    args.smp = smp
    choose_icount(args, smp)
    args.append = list(args.append or []) + lab_cmdline(smp, args.tune)
    args.lab_options = {"label": args.variant, "duration": args.duration, "loops": args.loops,
                        "loads": args.loads, "tools": args.tools}
    loads = len((args.loads or "x,x,x,x,x,x").split(","))
    tools = (args.tools or "x,x,x,x").split(",")
    # An rtla cell is two runs (measuring, then analysing), and its
    # analysis run parses a trace buffer full of the load's events: under
    # the grinder on a busy host it took over 10 min for a 10 s cell
    # (docs/latency-lab.md, "rtla under load"). It counts as 8 cells.
    cells = loads * sum(8 if t == "rtla" else 1 for t in tools)
    per_cell = (args.loops / 1000 if args.loops else (args.duration or 5)) + 4
    # A busy guest's second takes several host seconds (measured: a 5 s
    # cell with a load, about 34 s on 2 loaded host cores): a generous
    # bound, only for "it ends at all".
    timeout = max(args.timeout, int(cells * per_cell * 10) + 300)
    started = time.monotonic()
    b = boot(args, "lab", f"lab-{args.variant}", timeout=timeout)
    host_seconds = round(time.monotonic() - started, 1)
    failures = boot_failures(b.results, b.problems, b.why) + boot_check_failures(b)
    run = b.results.run("lab") if b.results else None
    if run is not None:
        print(run.output.rstrip())
    # The bundle's files, back into a directory per bundle.
    names = sorted({n.split("/", 1)[0] for n in b.results.files if "/" in n})
    out = os.path.join(args.build_dir, "bundles")
    if os.path.isdir(out):
        for old in os.listdir(out):
            shutil.rmtree(os.path.join(out, old))
    os.makedirs(out, exist_ok=True)
    for path, content in b.results.files.items():
        parts = path.split("/")
        if len(parts) < 2 or any(p in ("", ".", "..") for p in parts):
            failures.append(f"the guest sent a file outside a bundle: {path!r}")
            continue
        full = os.path.join(out, *parts)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(content)
    if not names:
        failures.append("the guest sent no bundle")
    for name in names:
        with open(os.path.join(out, name, bundle.HOST_FILE), "w") as f:
            json.dump({"variant": args.variant, "board": args.board.name,
                       "qemu_machine": args.board.qemu_machine, "smp": smp,
                       "qemu_command": b.command, "icount": args.use_icount,
                       "host_seconds": host_seconds}, f, indent=2)
        try:
            bd = bundle.load(os.path.join(out, name))
        except bundle.BundleError as e:
            failures.append(str(e))
            continue
        failures += [f"{name}: {p}" for p in bundle.check(bd)]
        # The kernel that ran is the variant's (a board QEMU boots through
        # U-Boot boots the card's kernel, whatever --kernel says).
        rt = "PREEMPT_RT" in bd.header.get("kernel_version", "")
        if rt != (args.variant != "nonrt"):
            failures.append(f"{name}: variant {args.variant}, but the kernel that ran says "
                            f"'{bd.header.get('kernel_version')}'")
        failures += [f"{name}: {f}" for f in bd.result.get("failures") or []]
        log(f"bundle: {os.path.join(out, name)}")
    if failures:
        log("lab failed: " + "; ".join(failures[:10]))
        log(f"results: {b.results_path}, console: {b.console_path}")
        return 1
    return 0


def cmd_shell(args):
    # Through U-Boot: the card itself (writable), or with --append a copy.
    sdcard, card_cmdline, _ = uboot_card(args, qemu.kernel_cmdline(args.board, "shell", append=args.append or ()))
    dtb = qemu.dtb_for_qemu(args.board, args.dtb, args.build_dir, args.smp) if args.dtb else None
    cmd = qemu.qemu_command(args.board, args.kernel, dtb, sdcard, mode="shell", smp=args.smp,
                            icount=not args.no_icount, append=args.append or (), card_cmdline=card_cmdline)
    log(shlex.join(cmd))
    log("interactive console; quit with Ctrl-a x")
    os.execvp(cmd[0], cmd)
