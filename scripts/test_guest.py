#!/usr/bin/env python3
"""Unit tests of scripts/guest.py's judgement of a guest test run: the
kernel-problem patterns (the list shared with the guest tests), the split
of the console at the tests-begin marker, the debug-kernel rules (boot
baseline, kmemleak, lockdep) and the host test counts. No QEMU needed:

    python3 -m unittest discover -s scripts -p 'test_*.py'   (make test runs it)
"""

import argparse
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import guest  # noqa: E402

# A guest console as QEMU shows it: boot, then the runner's marker, then
# the test run.
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


def results(debug_locks=("1", "1"), kmemleak=(KMEMLEAK_BOOT, ""), extra=""):
    """What run-guest-tests sends over the results port."""
    out = ["rtflex-guest: begin 7.2.13-debug"]
    if debug_locks[0] is not None:
        out.append(f"rtflex-guest: debug-locks begin {debug_locks[0]}")
    if kmemleak[0] is not None:
        out += ["rtflex-guest: file kmemleak-begin.txt", kmemleak[0],
                "rtflex-guest: endfile kmemleak-begin.txt"]
    out += [
        "rtflex-guest: skip flexsc",
        "rtflex-guest: run kernel",
        "rtflex-guest: skip kernel::kernel_has_rust",
        "running 2 tests",
        "test kernel_is_preempt_rt ... ok",
        "test running_kernel_is_the_pinned_release ... ok",
        "test result: ok. 2 passed; 0 failed; 0 ignored; 0 measured; 1 filtered out",
        "rtflex-guest: exit kernel 0",
        "rtflex-guest: run vtop",
        "test oracle ... FAILED",
        "rtflex-guest: exit vtop 101",
        "rtflex-guest: run kml",
        "rtflex-guest: exit kml 139",
    ]
    out.append(extra)
    if debug_locks[1] is not None:
        out.append(f"rtflex-guest: debug-locks end {debug_locks[1]}")
    if kmemleak[1] is not None:
        out += ["rtflex-guest: file kmemleak-end.txt", kmemleak[1],
                "rtflex-guest: endfile kmemleak-end.txt"]
    out.append("rtflex-guest: end")
    return "\n".join(out) + "\n"


def console(text=CONSOLE):
    c = guest.ConsoleProblems()
    for line in text.splitlines():
        c.feed(line)
    return c


class Patterns(unittest.TestCase):
    def test_the_shared_list_loads_without_comments(self):
        patterns = guest.load_problem_patterns()
        self.assertGreaterEqual(len(patterns), 20)
        for p in ("BUG:", "WARNING:", "UBSAN:", "ODEBUG:", "unreferenced object",
                  "possible circular locking", "Invalid wait context", "suspicious RCU usage"):
            self.assertIn(p, patterns)
        self.assertFalse([p for p in patterns if p.startswith("#") or not p.strip()])

    def test_a_list_without_patterns_is_an_error(self):
        with tempfile.NamedTemporaryFile("w", suffix=".txt") as f:
            f.write("# only a comment\n\n")
            f.flush()
            with self.assertRaises(ValueError):
                guest.load_problem_patterns(f.name)

    def test_reports_match_and_ordinary_lines_do_not(self):
        for line in ("[ 5.0] BUG: KASAN: slab-out-of-bounds in foo+0x1/0x2",
                     "[ 5.0] =============================================================================",
                     "[ 5.0] ODEBUG: activate active (active state 1) object: c1 object type: timer_list",
                     "[ 5.0] INFO: task kworker/0:1:12 blocked for more than 120 seconds."):
            self.assertTrue(guest.is_kernel_problem(line), line)
        for line in ("[ 0.1] kfence: initialized - using 2097152 bytes for 255 objects",
                     "[15.1] rtflex-guest: tests begin"):
            self.assertFalse(guest.is_kernel_problem(line), line)


class Console(unittest.TestCase):
    def test_split_at_the_marker(self):
        c = console()
        self.assertTrue(c.tests_began)
        self.assertEqual(len(c.boot), 2)
        self.assertIn("cut here", c.boot[0])
        self.assertEqual(c.run, ["[   30.000000] UBSAN: shift-out-of-bounds in kernel/flexsc/glue.c:88:20"])

    def test_without_the_marker_everything_is_boot(self):
        c = console(CONSOLE.replace("rtflex-guest: tests begin", "something else"))
        self.assertFalse(c.tests_began)
        self.assertEqual(len(c.boot), 3)
        self.assertEqual(c.run, [])


class PowerOff(unittest.TestCase):
    TEXT = CONSOLE + "[  437.4] reboot: Power down\n[  437.5] [ BUG: Invalid wait context ]\n"

    def test_reports_at_power_off_are_kept_apart(self):
        c = console(self.TEXT)
        self.assertEqual(c.power_off, ["[  437.5] [ BUG: Invalid wait context ]"])
        self.assertEqual(len(c.all()), 4)

    def test_debug_kernel_lists_them_and_the_normal_kernel_fails_on_them(self):
        no_run = self.TEXT.replace("UBSAN: shift-out-of-bounds", "all fine")
        run = guest.evaluate_test_run(results(), console(no_run), None, debug_kernel=True)
        self.assertEqual([f for f in run.failures if not f.startswith(("vtop", "kml"))], [])
        self.assertTrue(any("at power-off" in b and "Invalid wait context" in b for b in run.baseline),
                        run.baseline)
        boot_free = no_run.replace("cut here", "fine").replace("WARNING: CPU", "fine")
        run = guest.evaluate_test_run(results(debug_locks=(None, None), kmemleak=(None, None)),
                                      console(boot_free), None)
        self.assertTrue(any("Invalid wait context" in f for f in run.failures), run.failures)


class Kmemleak(unittest.TestCase):
    def test_one_summary_per_leak(self):
        leaks = guest.kmemleak_leaks(KMEMLEAK_BOOT + KMEMLEAK_RUN)
        self.assertEqual(len(leaks), 2)
        self.assertEqual(leaks[0], 'unreferenced object 0xc2a3b000 (size 64); comm "swapper/0", pid 1, '
                         'jiffies 4294937296; backtrace: kmemleak_alloc < __kmalloc_cache_noprof < '
                         'foo_driver_probe < really_probe')
        self.assertIn("(percpu)", leaks[1])
        self.assertIn("flexsc_register", leaks[1])
        self.assertEqual(guest.kmemleak_leaks(""), [])


class Judgement(unittest.TestCase):
    def test_counts_tests_skips_and_crashed_binaries(self):
        run = guest.evaluate_test_run(results(), console(""), None)
        self.assertEqual((run.passed, run.ignored), (2, 2))
        # vtop::oracle failed (its exit code is not counted twice); kml crashed.
        self.assertIn("vtop::oracle", run.failures)
        self.assertIn("kml: test binary exited with 139", run.failures)
        self.assertFalse([f for f in run.failures if f.startswith("vtop: ")])

    def failures(self, run):
        """The failures other than the two of the sample's test binaries."""
        return [f for f in run.failures if not f.startswith(("vtop", "kml"))]

    def test_normal_kernel_fails_on_boot_reports_too(self):
        run = guest.evaluate_test_run(results(debug_locks=(None, None), kmemleak=(None, None)),
                                      console(), None)
        self.assertEqual(len(self.failures(run)), 1)
        self.assertIn("WARNING: CPU: 0", self.failures(run)[0])
        self.assertEqual(run.baseline, [])

    def test_debug_kernel_lists_the_boot_baseline_and_fails_on_new_reports(self):
        boot_only = CONSOLE.replace("UBSAN: shift-out-of-bounds", "all fine")
        run = guest.evaluate_test_run(results(), console(boot_only), None, debug_kernel=True)
        self.assertEqual(self.failures(run), [])
        self.assertEqual(len(run.baseline), 3)  # two console lines, one kmemleak leak
        self.assertTrue(run.baseline[2].startswith("kmemleak: unreferenced object 0xc2a3b000"))

        run = guest.evaluate_test_run(results(), console(), None, debug_kernel=True)
        self.assertEqual(len(self.failures(run)), 1)
        self.assertIn("UBSAN: shift-out-of-bounds", self.failures(run)[0])

    def test_debug_kernel_fails_on_a_leak_of_the_test_run(self):
        ok = console(CONSOLE.replace("UBSAN:", "fine"))
        run = guest.evaluate_test_run(results(kmemleak=("", KMEMLEAK_RUN)), ok, None,
                                      debug_kernel=True)
        self.assertEqual(len(self.failures(run)), 1)
        self.assertIn("1 new leak(s) during the tests", self.failures(run)[0])
        self.assertIn("flexsc_register", self.failures(run)[0])

    def test_debug_kernel_needs_its_checkers(self):
        ok = console(CONSOLE.replace("UBSAN:", "fine"))
        for kwargs, expect in (
                ({"kmemleak": (None, None)}, ["no kmemleak scan before", "no kmemleak scan after"]),
                ({"kmemleak": ("", None)}, ["no kmemleak scan after"]),
                ({"debug_locks": (None, None)}, ["lockdep's state was not reported"]),
                ({"debug_locks": ("0", "0")}, ["already off when the tests began"]),
                ({"debug_locks": ("1", "0")}, ["switched itself off during the tests"]),
                ({"debug_locks": ("1", None)}, ["lockdep's state after the tests"]),
                ({"extra": "rtflex-guest: kmemleak-error scan end: sh: write error: Device or "
                           "resource busy"}, ["kmemleak: scan end"])):
            run = guest.evaluate_test_run(results(**kwargs), ok, None, debug_kernel=True)
            got = self.failures(run)
            self.assertEqual(len(got), len(expect), (kwargs, got))
            for want, failure in zip(expect, got):
                self.assertIn(want, failure)
        # The same results are fine for a normal kernel, which has neither.
        clean = console("[ 0.0] Booting Linux\n[15.1] rtflex-guest: tests begin\n")
        run = guest.evaluate_test_run(results(debug_locks=(None, None), kmemleak=(None, None)),
                                      clean, None)
        self.assertEqual(self.failures(run), [])
        run = guest.evaluate_test_run(results(), console(""), None, debug_kernel=True)
        self.assertEqual(len(self.failures(run)), 1)
        self.assertIn("no 'rtflex-guest: tests begin' line", self.failures(run)[0])

    def test_a_hang_is_one_failure_not_a_list_of_missing_reports(self):
        text = "rtflex-guest: begin 7.2.13-debug\n"
        run = guest.evaluate_test_run(text, console(""), "timeout after 3600 s", debug_kernel=True)
        self.assertEqual(run.failures, ["guest: timeout after 3600 s"])


class HostCounts(unittest.TestCase):
    def test_cargo_and_unittest_summaries_add_up(self):
        log = ("test result: ok. 10 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out\n"
               "test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out\n"
               "----------------------------------------------------------------------\n"
               "Ran 12 tests in 0.031s\n\nFAILED (failures=1, errors=1, skipped=2)\n"
               "Ran 4 tests in 0.001s\n\nOK\n")
        self.assertEqual(guest.count_results(log), (10 + 3 + 8 + 4, 2 + 2, 1 + 2))


class CommandLine(unittest.TestCase):
    def test_variant_skips_and_arguments_reach_the_kernel_command_line(self):
        board = {"BOARD_CONSOLE": "ttyAMA0", "BOARD_ROOT_DEVICE": "/dev/mmcblk0p2",
                 "BOARD_RESULTS_TTY": "ttyAMA1", "BOARD_GUEST_TEST_SKIP": "rtlat",
                 "BOARD_QEMU_ARGS": "-M vexpress-a9 -smp 1 -m 512M"}
        args = argparse.Namespace(smp=None, zimage="zImage", dtb="x.dtb", sdcard="sd.img",
                                  skip=["flexsc", "kernel::kernel_has_rust"],
                                  append=["kasan_multi_shot"], no_icount=False)
        cmd = guest.qemu_command(args, board, "test", "results.log")
        append = cmd[cmd.index("-append") + 1].split()
        self.assertIn("rtflex.skip=rtlat,flexsc,kernel::kernel_has_rust", append)
        self.assertIn("kasan_multi_shot", append)
        args.skip, args.append = None, None
        cmd = guest.qemu_command(args, board, "test", "results.log")
        self.assertIn("rtflex.skip=rtlat", cmd[cmd.index("-append") + 1].split())


class Fuzz(unittest.TestCase):
    RUN = ("rtflex-guest: begin 7.2.13\n"
           "rtflex-guest: run sysfuzz --seconds 20\n"
           "sysfuzz: seed 42 (replay: sysfuzz --seed 42 --seconds 20)\n"
           "sysfuzz: PASS (seed 42)\n"
           "rtflex-guest: exit sysfuzz {rc}\n"
           "rtflex-guest: end\n")

    def test_a_passing_run_has_its_output_and_seed(self):
        out, failures, seed = guest.evaluate_fuzz_run(self.RUN.format(rc=0), guest.ConsoleProblems([]), None)
        self.assertEqual(failures, [])
        self.assertEqual(seed, 42)
        self.assertEqual(out[-1], "sysfuzz: PASS (seed 42)")

    def test_exit_status_console_reports_and_hangs_fail(self):
        text = self.RUN.format(rc=1).replace("PASS", "FAIL")
        _, failures, _ = guest.evaluate_fuzz_run(text, guest.ConsoleProblems([]), None)
        self.assertEqual(failures, ["sysfuzz exited with 1: sysfuzz: FAIL (seed 42)"])
        problems = guest.ConsoleProblems(["BUG:"])
        problems.feed("[ 9.0] BUG: sleeping function called")
        _, failures, _ = guest.evaluate_fuzz_run(self.RUN.format(rc=0), problems, None)
        self.assertEqual(len(failures), 1)
        self.assertIn("BUG: sleeping", failures[0])
        text = self.RUN.split("sysfuzz: PASS")[0]
        _, failures, _ = guest.evaluate_fuzz_run(text, guest.ConsoleProblems([]), "no output for 180 s")
        self.assertEqual(failures, ["sysfuzz did not finish", "guest: no output for 180 s"])

    def test_fuzz_mode_passes_its_time_and_seed_and_opens_a_monitor(self):
        board = {"BOARD_CONSOLE": "ttyAMA0", "BOARD_ROOT_DEVICE": "/dev/mmcblk0p2",
                 "BOARD_RESULTS_TTY": "ttyAMA1", "BOARD_QEMU_ARGS": "-M vexpress-a9 -smp 1 -m 512M"}
        args = argparse.Namespace(smp=None, zimage="zImage", dtb="x.dtb", sdcard="sd.img", skip=None,
                                  append=None, no_icount=False, seconds=120, seed=7, build_dir="b")
        cmd = guest.qemu_command(args, board, "fuzz", "results.log")
        append = cmd[cmd.index("-append") + 1].split()
        self.assertIn("rtflex.mode=fuzz", append)
        self.assertIn("rtflex.fuzz_seconds=120", append)
        self.assertIn("rtflex.fuzz_seed=7", append)
        self.assertEqual(cmd[cmd.index("-monitor") + 1], "unix:b/fuzz-monitor.sock,server,nowait")
        args.seed = None
        cmd = guest.qemu_command(args, board, "fuzz", "results.log")
        self.assertFalse(any(a.startswith("rtflex.fuzz_seed") for a in cmd[cmd.index("-append") + 1].split()))
        cmd = guest.qemu_command(args, board, "test", "results.log")
        self.assertEqual(cmd[cmd.index("-monitor") + 1], "none")

    def test_kernel_symbols_come_from_system_map(self):
        with tempfile.TemporaryDirectory() as d:
            boot = os.path.join(d, "arch", "arm", "boot")
            os.makedirs(boot)
            with open(os.path.join(d, "System.map"), "w") as f:
                f.write("c0100000 T _stext\nc01002e0 T kml_syscall_entry\nc0200000 D some_data\n")
            args = argparse.Namespace(zimage=os.path.join(boot, "zImage"))
            self.assertEqual(guest.kernel_symbol(args, 0xC01002E8), "kml_syscall_entry+0x8")
            self.assertEqual(guest.kernel_symbol(args, 0xC0100004), "_stext+0x4")
            self.assertEqual(guest.kernel_symbol(args, 0xB0000000), "")


if __name__ == "__main__":
    unittest.main()
