"""The judgement of a guest run: test counts and failures of a test boot,
the fuzzer's verdict, and the counts of a host test log."""

import re

from .problems import kmemleak_leaks
from .protocol import TESTS_BEGIN_MARKER

# libtest's line per test.
TEST_LINE = re.compile(r"^test (\S+) \.\.\. (ok|FAILED|ignored)")
CARGO_RESULT = re.compile(r"test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored")
# pytest's closing line: "==== 3 failed, 40 passed, 2 skipped in 1.23s ====".
PYTEST_RESULT = re.compile(r"^=+ ((?:\d+ (?:passed|failed|skipped|errors?|xfailed|xpassed|"
                           r"deselected|warnings?)(?:, )?)+) in [\d.]+s(?: \([^)]*\))? =+$", re.M)


def protocol_failures(results, why):
    """Failures a results stream itself shows: error frames, and protocol
    violations unless the guest already stopped for a known reason (then a
    cut-off stream is expected and `why` says it once)."""
    out = [f"guest: {e}" for e in results.errors]
    if not why:
        out += [f"results protocol: {v}" for v in results.violations[:5]]
    return out


def boot_failures(results, problems, why):
    """What fails any boot: a kernel problem on the console, the stream's
    own failures (protocol_failures) and a guest that stopped early."""
    out = []
    if problems.all():
        out.append("kernel log on the console: " + "; ".join(problems.all()[:5]))
    out += protocol_failures(results, why)
    if why:
        out.append(f"guest: {why}")
    return out


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


def evaluate_test_run(results, problems, why, debug_kernel=False, patterns=None):
    """Judge a test boot from the parsed results stream (protocol.Results),
    the console's problem lines (problems.ConsoleProblems) and why the guest
    stopped early (None if it did not).

    Kernel reports from boot (console lines before the tests-begin marker,
    kmemleak's first scan) fail the run on the normal kernel; on a debug
    kernel they are upstream noise we cannot fix here: they become the
    baseline, listed but not counted, and only reports that appear while
    the tests run fail it. A debug kernel must also show that its checkers
    were working: the marker came, kmemleak scanned before and after the
    tests, and lockdep, which switches itself off after its first report,
    was still on when the tests began."""
    run = TestRun()
    for step in results.steps:
        if not hasattr(step, "output"):  # a skip frame
            run.tests.append(f"{step.name} ... ignored (not run here: board.mk BOARD_GUEST_TEST_SKIP "
                             f"or the kernel variant's LINUX_VARIANT_GUEST_SKIP)")
            run.ignored += 1
            continue
        failed_tests = 0
        for line in step.output.splitlines():
            m = TEST_LINE.match(line)
            if not m:
                continue
            name = f"{step.name}::{m.group(1)}"
            run.tests.append(f"{name} ... {m.group(2)}")
            if m.group(2) == "ok":
                run.passed += 1
            elif m.group(2) == "ignored":
                run.ignored += 1
            else:
                failed_tests += 1
                run.fail(name)
        # A binary that failed without a failed test line crashed (or did
        # not start); one with failed tests is not counted twice.
        if step.status is None:
            if not why:
                run.fail(f"{step.name}: test binary did not finish")
        elif step.status != 0 and failed_tests == 0:
            run.fail(f"{step.name}: test binary exited with {step.status}")

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

    begin = results.files.get("kmemleak-begin.txt")
    end = results.files.get("kmemleak-end.txt")
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

    if debug_kernel:
        locks_begin = results.facts.get("debug-locks begin")
        locks_end = results.facts.get("debug-locks end")
        if locks_begin is None:
            if not why:
                run.fail("lockdep's state was not reported (no /proc/lockdep_stats: a kernel without "
                         "PROVE_LOCKING?)")
        elif locks_begin != "1":
            run.fail("lockdep was already off when the tests began (a boot-time report switched it "
                     "off, see the baseline): the tests' locking went unchecked")
        elif locks_end is not None and locks_end != "1":
            run.fail("lockdep switched itself off during the tests (after the report above): "
                     "later locking went unchecked")
        elif locks_end is None and not why:
            run.fail("lockdep's state after the tests was not reported")

    for f in protocol_failures(results, why):
        run.fail(f)
    if why:
        run.fail(f"guest: {why}")
    return run


class FuzzRun:
    """The verdict of a fuzz boot: sysfuzz's output lines, the failures and
    the seed it printed (None if none)."""

    def __init__(self, output, failures, seed):
        self.output = output
        self.failures = failures
        self.seed = seed


def evaluate_fuzz_run(results, problems, why, name="sysfuzz"):
    """Fails on a missing or non-zero exit of the fuzzer (run NAME), a
    kernel problem on the console, a protocol error and a guest that
    stopped answering (`why`)."""
    run = results.run(name)
    output = run.output.splitlines() if run else []
    failures = []
    if run is None or run.status is None:
        failures.append(f"{name} did not finish")
    elif run.status != 0:
        verdict = [line for line in output if line.startswith(f"{name}: FAIL")]
        failures.append(f"{name} exited with {run.status}: {verdict[-1] if verdict else 'no verdict'}")
    failures += boot_failures(results, problems, why)
    seed = next((m.group(1) for m in map(re.compile(rf"^{name}: seed (\d+)").match, output) if m), None)
    return FuzzRun(output, failures, int(seed) if seed is not None else None)


def count_results(text):
    """(passed, failed, ignored) over a host test log: cargo/libtest
    "test result:" lines (check-patches and the image checks print them
    too) and pytest's closing line."""
    passed = failed = ignored = 0
    for m in CARGO_RESULT.finditer(text):
        passed += int(m.group(1))
        failed += int(m.group(2))
        ignored += int(m.group(3))
    for m in PYTEST_RESULT.finditer(text):
        for count, what in (part.split(" ", 1) for part in m.group(1).split(", ")):
            if what in ("passed", "xpassed"):
                passed += int(count)
            elif what in ("failed", "error", "errors"):
                failed += int(count)
            elif what in ("skipped", "xfailed"):
                ignored += int(count)
    return passed, failed, ignored


def host_counts(path):
    """count_results of a host test log file; (0, 0, 0) without one."""
    if not path:
        return 0, 0, 0
    with open(path, errors="replace") as f:
        return count_results(f.read())
