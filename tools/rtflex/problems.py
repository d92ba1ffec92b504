"""Kernel problems: the pattern list shared with the guest tests, the
console split at the test runner's marker, and kmemleak reports.

The one list of patterns is rt-apps/guest-tests/kernel-problems.txt: the
guest tests compile it in (rt-apps/guest-tests/src/lib.rs, include_str!),
this module reads it. Its format: one literal, case-sensitive substring
per line; blank lines and lines starting with '#' are not patterns.
"""

import os
import re

from .board import TOP
from .protocol import TESTS_BEGIN_MARKER

KERNEL_PROBLEMS_FILE = os.path.join(TOP, "rt-apps", "guest-tests", "kernel-problems.txt")

# The kernel's last words before the machine is off (kernel/reboot.c).
# On a debug kernel, reports after it come from the power-off path once
# every test has ended (seen: lockdep's "Invalid wait context" in the
# vexpress power-off handler, a mutex taken from an atomic notifier on
# PREEMPT_RT): listed with the baseline, not counted.
POWER_OFF_MARKER = "reboot: Power down"


def load_patterns(path=KERNEL_PROBLEMS_FILE):
    """The patterns of a kernel-problems list (see the module doc)."""
    with open(path) as f:
        lines = [line.rstrip("\r\n") for line in f]
    patterns = [line for line in lines if line.strip() and not line.startswith("#")]
    if not patterns:
        raise ValueError(f"{path}: no patterns (only comments and blank lines)")
    return patterns


_PATTERNS = []


def patterns():
    """The shared list's patterns, read once."""
    if not _PATTERNS:
        _PATTERNS.extend(load_patterns())
    return _PATTERNS


def is_kernel_problem(line, pattern_list=None):
    """True if a kernel log line reports a problem (contains a pattern)."""
    return any(p in line for p in (patterns() if pattern_list is None else pattern_list))


class ConsoleProblems:
    """Problem lines of a guest console, split at the test runner's marker
    line (protocol.TESTS_BEGIN_MARKER) and at the kernel's power-off
    message: `boot` (before the marker, or all of them if it never came),
    `run` (while the tests ran) and `power_off` (after the tests, while the
    kernel powers the machine off). Fed one console line at a time."""

    def __init__(self, pattern_list=None):
        self.patterns = patterns() if pattern_list is None else pattern_list
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

    def feed_text(self, text):
        """Feed every line of a console log (as QEMU wrote it: CR LF)."""
        for line in text.splitlines():
            self.feed(line.rstrip("\r"))
        return self

    def all(self):
        return self.boot + self.run + self.power_off

    def panicked(self):
        return any("Kernel panic" in p for p in self.all())


def kmemleak_leaks(report, pattern_list=None):
    """One summary line per leak of a kmemleak report (the text of
    /sys/kernel/debug/kmemleak): its header line, which matches a problem
    pattern ("unreferenced object ..."), the allocating task and the first
    frames of the allocation's backtrace."""
    leaks = []
    for block in re.split(r"^(?=\S)", report, flags=re.M):
        lines = block.splitlines()
        if not lines or not is_kernel_problem(lines[0], pattern_list):
            continue
        comm = next((line.strip() for line in lines if line.strip().startswith("comm ")), "")
        frames_at = next((i for i, line in enumerate(lines) if line.strip().startswith("backtrace")), None)
        trace = []
        if frames_at is not None:
            trace = [line.strip().split("+")[0] for line in lines[frames_at + 1:] if line.strip()][:5]
        parts = [lines[0].rstrip(":"), comm, "backtrace: " + " < ".join(trace) if trace else ""]
        leaks.append("; ".join(x for x in parts if x))
    return leaks
