"""The judgement of guest runs: kernel-problem patterns (the list shared with
the guest tests), the console split at the tests-begin marker, test counts
and failures (pass, fail, crash, kernel problem, timeout), the debug-kernel
rules (boot baseline, kmemleak, lockdep), the fuzzer's verdict and the host
test counts. Recorded runs first, then constructed cases for what no
recording shows (moved from scripts/test_guest.py)."""

import re

import pytest
import recordings

from rtflex import problems, protocol
from rtflex.verdict import count_results, evaluate_fuzz_run, evaluate_test_run

# ---- recorded runs ------------------------------------------------------------


def libtest_lines(name, verdict):
    """How many 'test X ... VERDICT' lines a recorded results log has."""
    return len(re.findall(rf"^test \S+ \.\.\. {verdict}$", recordings.text(f"{name}-results.log"), re.M))


def test_a_recorded_passing_run():
    name = "vexpress-a9-test"
    console = recordings.console(name)
    assert console.tests_began and console.all() == []
    run = evaluate_test_run(recordings.results(name), console, None)
    assert run.failures == [] and run.baseline == []
    assert (run.passed, run.failed, run.ignored) == (libtest_lines(name, "ok"), 0, 1) == (70, 0, 1)
    assert "sysfuzz::a_short_fuzz_run_finds_no_kernel_problem ... ignored" in run.tests
    assert run.tests[0] == "rtlat::rtlat_agrees_with_cyclictest ... ok"


def test_a_recorded_timeout_is_one_failure():
    # The same image with --timeout 45: the guest was stopped inside kml.
    name = "vexpress-a9-test-timeout"
    run = evaluate_test_run(recordings.results(name), recordings.console(name), "timeout after 45 s")
    assert run.failures == ["guest: timeout after 45 s"]
    assert run.passed == libtest_lines(name, "ok") == 37
    # Without the runner's reason, the cut-off stream speaks for itself.
    run = evaluate_test_run(recordings.results(name), recordings.console(name), None)
    assert run.failures == ["kml: test binary did not finish",
                            "results protocol: run kml: block not closed at the end of the stream"]


def test_a_recorded_run_with_failed_tests_counts_each_once():
    # The kernel before the KML hardening: 8 of the kml tests failed, the
    # binary exited with 101 (libtest's failure status: not a second failure).
    name = "kml-old-kernel-test"
    run = evaluate_test_run(recordings.results(name), recordings.console(name), None)
    assert run.failures == [f"kml::{t}" for t in (
        "dynamic_program_in_trusted_fails_with_enoexec",
        "mount_onto_trusted_makes_nothing_trusted",
        "nobody_outside_group_kml_cannot_exec_a_trusted_program_by_any_name",
        "personality_flags_are_cleared_for_a_trusted_program",
        "ptrace_attach_racing_exec_never_gets_a_sys_mode_tracee",
        "root_without_cap_sys_admin_cannot_exec_a_trusted_program",
        "same_uid_cannot_trace_or_access_a_trusted_program",
        "unlinked_or_replaced_program_is_not_trusted_through_an_old_fd")]
    assert run.passed == libtest_lines(name, "ok") == 16  # 15 of kml, 1 of kernel_log
    assert run.ignored == 5  # the five binaries that run skipped
    assert run.failed == 8


def test_a_recorded_debug_kernel_run_passes_with_its_power_off_report_as_baseline():
    name = "vexpress-a9-debug-test"
    res, console = recordings.results(name), recordings.console(name)
    assert console.tests_began and console.boot == [] and console.run == []
    assert console.power_off == ["[  437.429019] [ BUG: Invalid wait context ]"]
    run = evaluate_test_run(res, console, None, debug_kernel=True)
    assert run.failures == []
    assert run.passed == libtest_lines(name, "ok")
    assert run.ignored == 2 + libtest_lines(name, "ignored")
    assert run.baseline == ["console, at power-off after the tests: [  437.429019] [ BUG: Invalid wait context ]"]
    # The same console fails a normal kernel: any report counts there.
    run = evaluate_test_run(res, console, None, debug_kernel=False)
    assert run.failures == ["kernel log on the console: [  437.429019] [ BUG: Invalid wait context ]"]


def test_a_recorded_fuzz_failure():
    name = "vexpress-a9-fuzz-fail"
    fuzz = evaluate_fuzz_run(recordings.results(name), recordings.console(name), None)
    assert fuzz.failures == ["sysfuzz exited with 1: sysfuzz: FAIL (seed 160325643885338562): "
                             "4 problem.overdue"]
    assert fuzz.seed == 160325643885338562
    assert fuzz.output[0].startswith("sysfuzz: seed 160325643885338562")


def test_a_recorded_fuzz_pass():
    name = "vexpress-a9-fuzz-pass"
    fuzz = evaluate_fuzz_run(recordings.results(name), problems.ConsoleProblems(), None)
    assert fuzz.failures == [] and fuzz.seed == 248949299890305875
    assert fuzz.output[-1] == "sysfuzz: PASS (seed 248949299890305875)"


def test_recorded_host_log_counts():
    # make test's host log of 2026-12-05: cargo test, the unittest run of
    # the old scripts/test_guest.py (not counted any more), check-patches
    # and the image checks.
    text = recordings.text("host-test.log")
    passed, failed, ignored = count_results(text)
    assert (failed, ignored) == (0, 0)
    cargo = sum(int(n) for n in re.findall(r"^test result: \w+\. (\d+) passed", text, re.M))
    assert passed == cargo == 183


# ---- kernel-problem patterns and the console -------------------------------

CONSOLE = """\
[    0.000000] Booting Linux on physical CPU 0x0
[    0.000000] Linux version 7.2.13-debug (rtflex@rtflex) #1 SMP PREEMPT_RT
[    0.100000] kmemleak: Kernel memory leak detector initialized (mem pool available: 15000)
[    2.000000] ------------[ cut here ]------------
[    2.000001] WARNING: CPU: 0 PID: 1 at drivers/foo/bar.c:12 bar_probe+0x10/0x20
[   15.100000] rtflex-guest: tests begin
[   30.000000] UBSAN: shift-out-of-bounds in kernel/flexsc/glue.c:88:20
[   31.000000] rtflex_selftest: loaded: seed=1 checksum=2080
"""

KMEMLEAK_BOOT = """\
unreferenced object 0xc2a3b000 (size 64):
  comm "swapper/0", pid 1, jiffies 4294937296
  hex dump (first 32 bytes):
    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  ................
  backtrace (crc 2d5a1f0e):
    kmemleak_alloc+0x30/0x80
    __kmalloc_cache_noprof+0x1c8/0x2c0
    foo_driver_probe+0x24/0x90
    really_probe+0xe4/0x3c0

"""

KMEMLEAK_RUN = """\
unreferenced object (percpu) 0xc3000000 (size 128):
  comm "flexsc", pid 212, jiffies 4294967000
  backtrace (crc 11):
    kmemleak_alloc_percpu+0x30/0x80
    flexsc_register+0x100/0x400

"""


def console(text=CONSOLE):
    return problems.ConsoleProblems().feed_text(text)


def test_the_shared_list_loads_without_comments():
    patterns = problems.load_patterns()
    assert len(patterns) >= 20
    for p in ("BUG:", "WARNING:", "UBSAN:", "ODEBUG:", "unreferenced object",
              "possible circular locking", "Invalid wait context", "suspicious RCU usage"):
        assert p in patterns
    assert not [p for p in patterns if p.startswith("#") or not p.strip()]


def test_a_list_without_patterns_is_an_error(tmp_path):
    path = tmp_path / "kernel-problems.txt"
    path.write_text("# only a comment\n\n")
    with pytest.raises(ValueError, match="no patterns"):
        problems.load_patterns(str(path))


def test_reports_match_and_ordinary_lines_do_not():
    for line in ("[ 5.0] BUG: KASAN: slab-out-of-bounds in foo+0x1/0x2",
                 "[ 5.0] =============================================================================",
                 "[ 5.0] ODEBUG: activate active (active state 1) object: c1 object type: timer_list",
                 "[ 5.0] INFO: task kworker/0:1:12 blocked for more than 120 seconds."):
        assert problems.is_kernel_problem(line), line
    for line in ("[ 0.1] kfence: initialized - using 2097152 bytes for 255 objects",
                 "[15.1] rtflex-guest: tests begin"):
        assert not problems.is_kernel_problem(line), line


def test_the_console_splits_at_the_marker():
    c = console()
    assert c.tests_began
    assert len(c.boot) == 2 and "cut here" in c.boot[0]
    assert c.run == ["[   30.000000] UBSAN: shift-out-of-bounds in kernel/flexsc/glue.c:88:20"]


def test_without_the_marker_everything_is_boot():
    c = console(CONSOLE.replace("rtflex-guest: tests begin", "something else"))
    assert not c.tests_began
    assert len(c.boot) == 3 and c.run == []


def test_one_kmemleak_summary_per_leak():
    leaks = problems.kmemleak_leaks(KMEMLEAK_BOOT + KMEMLEAK_RUN)
    assert len(leaks) == 2
    assert leaks[0] == ('unreferenced object 0xc2a3b000 (size 64); comm "swapper/0", pid 1, '
                        'jiffies 4294937296; backtrace: kmemleak_alloc < __kmalloc_cache_noprof < '
                        'foo_driver_probe < really_probe')
    assert "(percpu)" in leaks[1] and "flexsc_register" in leaks[1]
    assert problems.kmemleak_leaks("") == []


# ---- constructed test runs ------------------------------------------------------

def results(debug_locks=("1", "1"), kmemleak=(KMEMLEAK_BOOT, ""), extra=None):
    """A results stream as run-guest-tests sends it (results.sh's grammar),
    parsed."""
    out = ["rtflex-guest: begin 7.2.13-debug"]
    if debug_locks[0] is not None:
        out.append(f"rtflex-guest: debug-locks begin {debug_locks[0]}")
    if kmemleak[0] is not None:
        out += ["rtflex-guest: file kmemleak-begin.txt", kmemleak[0], "rtflex-guest: endfile kmemleak-begin.txt"]
    out += [
        "rtflex-guest: skip flexsc",
        "rtflex-guest: skip kernel::kernel_has_rust",
        "rtflex-guest: run kernel /usr/lib/rtflex/tests/kernel --test-threads=1 --show-output "
        "--exact --skip kernel_has_rust",
        "running 2 tests",
        "test kernel_is_preempt_rt ... ok",
        "test running_kernel_is_the_pinned_release ... ok",
        "test result: ok. 2 passed; 0 failed; 0 ignored; 0 measured; 1 filtered out",
        "",
        "rtflex-guest: exit kernel 0",
        "rtflex-guest: run vtop /usr/lib/rtflex/tests/vtop --test-threads=1 --show-output",
        "test oracle ... FAILED",
        "",
        "rtflex-guest: exit vtop 101",
        "rtflex-guest: run kml /usr/lib/rtflex/tests/kml --test-threads=1 --show-output",
        "",
        "rtflex-guest: exit kml 139",
    ]
    if extra:
        out.append(extra)
    if debug_locks[1] is not None:
        out.append(f"rtflex-guest: debug-locks end {debug_locks[1]}")
    if kmemleak[1] is not None:
        out += ["rtflex-guest: file kmemleak-end.txt", kmemleak[1], "rtflex-guest: endfile kmemleak-end.txt"]
    out.append("rtflex-guest: end")
    res = protocol.parse("\n".join(out) + "\n")
    assert res.violations == []
    return res


def failures(run):
    """The failures other than the two of the sample's test binaries."""
    return [f for f in run.failures if not f.startswith(("vtop", "kml"))]


def test_counts_tests_skips_and_crashed_binaries():
    run = evaluate_test_run(results(), console(""), None)
    assert (run.passed, run.ignored) == (2, 2)
    # vtop::oracle failed (its exit status is not counted twice); kml crashed.
    assert "vtop::oracle" in run.failures
    assert "kml: test binary exited with 139" in run.failures
    assert not [f for f in run.failures if f.startswith("vtop: ")]


def test_normal_kernel_fails_on_boot_reports_too():
    run = evaluate_test_run(results(debug_locks=(None, None), kmemleak=(None, None)), console(), None)
    assert len(failures(run)) == 1 and "WARNING: CPU: 0" in failures(run)[0]
    assert run.baseline == []


def test_debug_kernel_lists_the_boot_baseline_and_fails_on_new_reports():
    boot_only = CONSOLE.replace("UBSAN: shift-out-of-bounds", "all fine")
    run = evaluate_test_run(results(), console(boot_only), None, debug_kernel=True)
    assert failures(run) == []
    assert len(run.baseline) == 3  # two console lines, one kmemleak leak
    assert run.baseline[2].startswith("kmemleak: unreferenced object 0xc2a3b000")
    run = evaluate_test_run(results(), console(), None, debug_kernel=True)
    assert len(failures(run)) == 1 and "UBSAN: shift-out-of-bounds" in failures(run)[0]


def test_reports_at_power_off_are_listed_on_a_debug_kernel():
    text = CONSOLE.replace("UBSAN: shift-out-of-bounds", "all fine") + \
        "[  437.4] reboot: Power down\n[  437.5] [ BUG: Invalid wait context ]\n"
    c = console(text)
    assert c.power_off == ["[  437.5] [ BUG: Invalid wait context ]"] and len(c.all()) == 3
    run = evaluate_test_run(results(), c, None, debug_kernel=True)
    assert failures(run) == []
    assert any("at power-off" in b and "Invalid wait context" in b for b in run.baseline)


def test_debug_kernel_fails_on_a_leak_of_the_test_run():
    ok = console(CONSOLE.replace("UBSAN:", "fine"))
    run = evaluate_test_run(results(kmemleak=("", KMEMLEAK_RUN)), ok, None, debug_kernel=True)
    assert len(failures(run)) == 1
    assert "1 new leak(s) during the tests" in failures(run)[0] and "flexsc_register" in failures(run)[0]


@pytest.mark.parametrize("kwargs,expect", [
    ({"kmemleak": (None, None)}, ["no kmemleak scan before", "no kmemleak scan after"]),
    ({"kmemleak": ("", None)}, ["no kmemleak scan after"]),
    ({"debug_locks": (None, None)}, ["lockdep's state was not reported"]),
    ({"debug_locks": ("0", "0")}, ["already off when the tests began"]),
    ({"debug_locks": ("1", "0")}, ["switched itself off during the tests"]),
    ({"debug_locks": ("1", None)}, ["lockdep's state after the tests"]),
    ({"extra": "rtflex-guest: error kmemleak: scan end: sh: write error: Device or resource busy"},
     ["guest: kmemleak: scan end: sh: write error"]),
])
def test_debug_kernel_needs_its_checkers(kwargs, expect):
    ok = console(CONSOLE.replace("UBSAN:", "fine"))
    got = failures(evaluate_test_run(results(**kwargs), ok, None, debug_kernel=True))
    assert len(got) == len(expect), got
    for want, failure in zip(expect, got):
        assert want in failure


def test_a_normal_kernel_needs_no_checkers_but_a_debug_kernel_needs_the_marker():
    clean = console("[ 0.0] Booting Linux\n[15.1] rtflex-guest: tests begin\n")
    run = evaluate_test_run(results(debug_locks=(None, None), kmemleak=(None, None)), clean, None)
    assert failures(run) == []
    run = evaluate_test_run(results(), console(""), None, debug_kernel=True)
    assert len(failures(run)) == 1 and "no 'rtflex-guest: tests begin' line" in failures(run)[0]


def test_a_hang_is_one_failure_not_a_list_of_missing_reports():
    res = protocol.parse("rtflex-guest: begin 7.2.13-debug\nrtflex-guest: run kml /k\ntest a ... ok\n")
    run = evaluate_test_run(res, console(""), "timeout after 3600 s", debug_kernel=True)
    assert run.failures == ["guest: timeout after 3600 s"]
    assert run.passed == 1


def test_a_stream_that_breaks_the_protocol_fails():
    res = protocol.parse("rtflex-guest: begin 7.2.13\nrtflex-guest: run a\nrtflex-guest: exit a 0\n"
                         "garbage\nrtflex-guest: end\n")
    run = evaluate_test_run(res, console(""), None)
    assert run.failures == ["results protocol: line 4: not a frame, outside any block: 'garbage'"]


# ---- the fuzzer, constructed -----------------------------------------------------

FUZZ = ("rtflex-guest: begin 7.2.13\n"
        "rtflex-guest: run sysfuzz /usr/bin/sysfuzz --seconds 20 --kml on\n"
        "sysfuzz: seed 42 (replay: sysfuzz --seed 42 --seconds 20)\n"
        "sysfuzz: PASS (seed 42)\n"
        "\n"
        "rtflex-guest: exit sysfuzz {rc}\n"
        "rtflex-guest: end\n")


def test_a_passing_fuzz_run_has_its_output_and_seed():
    fuzz = evaluate_fuzz_run(protocol.parse(FUZZ.format(rc=0)), problems.ConsoleProblems([]), None)
    assert fuzz.failures == [] and fuzz.seed == 42
    assert fuzz.output[-1] == "sysfuzz: PASS (seed 42)"


def test_fuzz_console_reports_and_hangs_fail():
    c = problems.ConsoleProblems(["BUG:"])
    c.feed("[ 9.0] BUG: sleeping function called")
    fuzz = evaluate_fuzz_run(protocol.parse(FUZZ.format(rc=0)), c, None)
    assert len(fuzz.failures) == 1 and "BUG: sleeping" in fuzz.failures[0]
    cut = FUZZ.split("sysfuzz: PASS")[0]
    fuzz = evaluate_fuzz_run(protocol.parse(cut), problems.ConsoleProblems([]), "no output for 180 s")
    assert fuzz.failures == ["sysfuzz did not finish", "guest: no output for 180 s"]


# ---- host test logs ---------------------------------------------------------------

def test_cargo_and_pytest_summaries_add_up():
    log = ("test result: ok. 10 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out\n"
           "test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out\n"
           "=========== 1 failed, 40 passed, 2 skipped, 1 warning in 1.52s ===========\n"
           "==================== 12 passed in 0.31s ====================\n")
    assert count_results(log) == (10 + 3 + 40 + 12, 2 + 1, 1 + 2)


def test_the_closing_line_adds_the_host_counts(capsys):
    from rtflex import guest
    log = recordings.path("host-test.log")
    assert guest.closing_line((70, 0, 1), log, 0) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "253 passed, 0 failed, 1 skipped"
    # The host tests failed without a failing test line (a build error).
    assert guest.closing_line((70, 0, 1), log, 101) == 1
    assert capsys.readouterr().out.splitlines()[-1] == "253 passed, 1 failed, 1 skipped"
    assert guest.closing_line((0, 2, 0), None, 0) == 1
    assert capsys.readouterr().out.splitlines()[-1] == "0 passed, 2 failed, 0 skipped"
