"""Result bundles (docs/result-bundle.md, the specification): read one from
its directory or its .tar.gz, check it against the specification, and
summarise it.

    from rtflex import bundle
    b = bundle.load("rtflex-smoke-20261205T061530Z.tar.gz")
    b.header["kernel_release"], b.result["status"]
    for run in b.runs:                       # the latency runs, in order
        run.name, run.report, run.hist, run.thread_stats()
    b.tests                                  # protocol.Results of tests/results.log
    bundle.check(b)                          # [] or what breaks the specification

Command line (PYTHONPATH=tools):

    python3 -m rtflex.bundle BUNDLE...       summary and problems of each bundle;
                                             exit 1 if one breaks the specification,
                                             2 if one cannot be read
"""

import json
import os
import re
import sys
import tarfile
import zlib

from . import protocol, rtla, verdict
from .problems import ConsoleProblems
from .report import latency_rows

FORMAT = "rtflex-result-bundle"
# The current version, and the kinds each known version may hold: version 2
# added the latency lab's bundles (kind lab), version 3 their rtla runs
# (rtla's own output instead of a JSON report and histogram); a smoke
# bundle is the same in all, and rtflex-smoke writes 1.
VERSION = 3
KINDS = {1: ("smoke",), 2: ("smoke", "lab"), 3: ("smoke", "lab")}
# The file the host adds to a bundle it fetched from QEMU (make lab): the
# variant and the QEMU command line. Not part of what the guest writes.
HOST_FILE = "host.json"

# The fields of header.json and result.json (the specification's tables)
# and the JSON types each may have.
STR, INT, BOOL, OBJ, LIST, NULL = str, int, bool, dict, list, type(None)
HEADER_FIELDS = {
    "format": (STR,), "version": (INT,), "kind": (STR,), "date": (STR,), "hostname": (STR,),
    "kernel_release": (STR,), "kernel_version": (STR,), "machine": (STR,),
    "config_gz_sha256": (STR, NULL), "cmdline": (STR,), "clocksource": (STR,),
    "clocksources_available": (STR, NULL), "cpus_online": (INT,), "cpu_list": (STR,),
    "cpu_model": (STR,), "isolation": (OBJ,), "sched_rt_runtime_us": (STR, NULL),
    "board_model": (STR, NULL), "board_compatible": (STR,), "emulated": (BOOL,),
    "emulation_evidence": (LIST,), "options": (OBJ,),
}
ISOLATION_FIELDS = ("isolcpus", "nohz_full", "rcu_nocbs", "irqaffinity", "isolated_cpus", "nohz_full_cpus")
OPTION_FIELDS = {"duration_s": (INT,), "latency_args": (STR,), "test_skip": (STR,), "tests": (STR, NULL)}
RESULT_FIELDS = {
    "status": (STR,), "end_date": (STR,), "failures": (LIST,), "probes": (OBJ,),
    "latency": (OBJ,), "tests": (OBJ,),
}
RUN_FIELDS = {"name": (STR,), "tool": (STR,), "command": (STR,), "exit_status": (INT,),
              "json": (STR,), "histogram": (STR,), "output": (STR,)}
# Kind lab (version 2): the runner's options, the verdict and the matrix;
# each run also names its cell, and a skipped one only says why.
LAB_OPTION_FIELDS = {"label": (STR,), "duration_s": (INT, NULL), "loops": (INT, NULL),
                     "interval_us": (INT,), "latency_args": (STR,), "loads": (OBJ,), "tools": (OBJ,),
                     "tuning": (STR, NULL)}
LAB_RESULT_FIELDS = {"status": (STR,), "end_date": (STR,), "failures": (LIST,), "latency": (OBJ,)}
LAB_RUN_FIELDS = dict(RUN_FIELDS, load=(STR,), io=(STR,), status=(STR,), load_alive=(BOOL,))
LAB_SKIPPED_RUN_FIELDS = {"name": (STR,), "load": (STR,), "tool": (STR,), "io": (STR,), "status": (STR,),
                          "reason": (STR,)}
RUN_STATUSES = ("ran", "failed", "skipped")
# Kind lab, version 3: a run of rtla timerlat (format RTLA_FORMAT) has no
# JSON report or histogram file (both null) but rtla's output, and the
# auto-analysis run's file, command, exit status and threshold (all null
# when it did not run).
RTLA_FORMAT = "rtla-timerlat-hist"
LAB_RTLA_RUN_FIELDS = dict(LAB_RUN_FIELDS, json=(NULL,), histogram=(NULL,), format=(STR,),
                           analysis=(STR, NULL), analysis_command=(STR, NULL),
                           analysis_exit_status=(INT, NULL), analysis_threshold_us=(INT, NULL))
TEST_FIELDS = {"log": (STR,), "skip": (STR,), "runner_exit_status": (INT,), "passed": (INT,),
               "failed": (INT,), "skipped": (INT,), "failures": (LIST,)}
# The probes each kind of bundle has.
PROBES = {"smoke": ("preempt_rt", "kml", "flexsc", "vaddr_to_paddr")}
DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
# Slack of the sample-count bounds for a run's start-up and rounding.
SAMPLE_SLACK = 0.10


class BundleError(Exception):
    """The bundle cannot be read at all (not a bundle, an unknown version,
    a broken archive)."""


class Histogram:
    """A --histfile histogram in cyclictest's text format: per thread, the
    bucket counts (bucket in us -> count) and the summary lines."""

    def __init__(self, text):
        self.buckets = []     # per thread: {bucket: count}
        self.summary = {}     # "Total", "Min Latencies", ... -> [int per thread]
        for n, line in enumerate(text.splitlines(), 1):
            if line.startswith("#"):
                key, sep, values = line[1:].partition(":")
                if sep and values.split() and all(v.isdigit() for v in values.split()):
                    self.summary[key.strip()] = [int(v) for v in values.split()]
                continue
            if not line.strip():
                continue
            words = line.split()
            if not all(w.isdigit() for w in words) or len(words) < 2:
                raise ValueError(f"line {n}: not a histogram line: {line[:80]!r}")
            if not self.buckets:
                self.buckets = [{} for _ in words[1:]]
            if len(words) - 1 != len(self.buckets):
                raise ValueError(f"line {n}: {len(words) - 1} columns, {len(self.buckets)} before")
            for thread, count in enumerate(words[1:]):
                if int(count):
                    self.buckets[thread][int(words[0])] = int(count)

    def overflows(self, thread):
        return self.summary.get("Histogram Overflows", [])[thread:thread + 1] or [0]


def percentile(buckets, overflows, q):
    """The q-th percentile (0 < q <= 100) of a histogram: the smallest
    bucket (us) at or below which q% of the samples lie; None if it lies
    among the overflows (beyond the histogram) or there are no samples."""
    total = sum(buckets.values()) + overflows
    if total == 0:
        return None
    need = q / 100 * total
    seen = 0
    for bucket in sorted(buckets):
        seen += buckets[bucket]
        if seen >= need:
            return bucket
    return None


class LatencyRun:
    """One latency run of result.json's latency.runs, with its files."""

    def __init__(self, entry, report, hist, output, timerlat=None, analysis=None):
        self.entry = entry
        self.name = entry.get("name")
        self.tool = entry.get("tool")
        self.command = entry.get("command")
        self.exit_status = entry.get("exit_status")
        self.report = report      # the parsed JSON report, or None
        self.hist = hist          # Histogram, or None
        self.output = output      # text, or None
        self.timerlat = timerlat  # rtla runs: the parsed rtla.TimerlatHist, or None
        self.analysis = analysis  # rtla runs: the auto-analysis run's output, or None

    def is_rtla(self):
        """A run of rtla timerlat (its own output format, no JSON report)."""
        return self.entry.get("format") == RTLA_FORMAT

    def thread_stats(self):
        """Per thread: dict of thread, cycles, min, avg, max (the JSON
        report's) and p50, p99, p99.9 (from its histogram; None beyond
        it)."""
        out = []
        for tid, cycles, lo, avg, hi in latency_rows(json.dumps(self.report)):
            buckets = {int(k): int(v) for k, v in self.report["thread"][str(tid)]["histogram"].items()}
            over = max(0, cycles - sum(buckets.values()))
            stats = {"thread": tid, "cycles": cycles, "min": lo, "avg": avg, "max": hi}
            for q in (50, 99, 99.9):
                stats[f"p{q:g}"] = percentile(buckets, over, q)
            out.append(stats)
        return out


class Bundle:
    """A read bundle: its files (relative name -> bytes), the parsed header
    and result, the latency runs and the guest test stream."""

    def __init__(self, source, files):
        self.source = source
        self.files = files
        self.problems = []    # what reading found (check() adds the rest)
        self.header = self._json("header.json")
        self.result = self._json("result.json")
        if self.header is None or self.result is None:
            raise BundleError(f"{source}: not a result bundle: " + "; ".join(self.problems))
        if self.header.get("format") != FORMAT:
            raise BundleError(f"{source}: header.json: format {self.header.get('format')!r}, "
                              f"not {FORMAT!r}")
        version = self.header.get("version")
        if version not in KINDS:
            raise BundleError(f"{source}: bundle version {version!r}: this reader "
                              f"knows versions {', '.join(map(str, KINDS))} (docs/result-bundle.md)")
        if self.header.get("kind") not in KINDS[version]:
            raise BundleError(f"{source}: header.json: kind {self.header.get('kind')!r}: version {version} "
                              f"bundles are of kind {' or '.join(KINDS[version])}")
        self.kind = self.header["kind"]
        host = self.files.get(HOST_FILE)
        self.host = self._json(HOST_FILE) if host is not None else None
        self.runs = []
        runs = self.result.get("latency", {}).get("runs", []) if isinstance(self.result.get("latency"), dict) else []
        for entry in runs if isinstance(runs, list) else []:
            if not isinstance(entry, dict):
                self.problems.append(f"result.json: latency run {entry!r} is not an object")
                continue
            if entry.get("status") == "skipped":
                self.runs.append(LatencyRun(entry, None, None, None))
                continue
            if entry.get("format") == RTLA_FORMAT:
                self.runs.append(self._rtla_run(entry))
                continue
            report = self._json(entry.get("json")) if isinstance(entry.get("json"), str) else None
            hist = None
            text = self.text(entry.get("histogram")) if isinstance(entry.get("histogram"), str) else None
            if text is None:
                self.problems.append(f"run {entry.get('name')}: histogram {entry.get('histogram')!r} missing")
            else:
                try:
                    hist = Histogram(text)
                except ValueError as e:
                    self.problems.append(f"{entry['histogram']}: {e}")
            output = self.text(entry.get("output")) if isinstance(entry.get("output"), str) else None
            self.runs.append(LatencyRun(entry, report, hist, output))
        tests = self.result.get("tests") if isinstance(self.result.get("tests"), dict) else {}
        log = self.text(tests.get("log", "tests/results.log")) if self.kind == "smoke" else None
        self.tests = protocol.parse(log) if log is not None else None

    def _rtla_run(self, entry):
        """An rtla run: its output parsed (a problem naming the run when it
        is missing or is not rtla timerlat hist output) and the
        auto-analysis run's output."""
        name = entry.get("name")
        output = self.text(entry.get("output")) if isinstance(entry.get("output"), str) else None
        timerlat = None
        if output is None:
            self.problems.append(f"run {name}: rtla output {entry.get('output')!r} missing")
        elif entry.get("exit_status") == 0:
            try:
                timerlat = rtla.parse_hist(output)
            except ValueError as e:
                self.problems.append(f"run {name}: {entry.get('output')}: not rtla timerlat hist output: {e}")
        analysis = None
        if isinstance(entry.get("analysis"), str):
            analysis = self.text(entry["analysis"])
            if analysis is None:
                self.problems.append(f"run {name}: auto-analysis output {entry['analysis']!r} missing")
        return LatencyRun(entry, None, None, output, timerlat, analysis)

    def label(self):
        """What this bundle is in a comparison: the lab's label (the kernel
        variant), else the kernel release."""
        options = self.header.get("options") if isinstance(self.header.get("options"), dict) else {}
        return options.get("label") or str(self.header.get("kernel_release"))

    def run(self, name):
        """The run called NAME, or None."""
        return next((r for r in self.runs if r.name == name), None)

    def text(self, name):
        """A file's content as text (UTF-8, invalid bytes replaced), or
        None if the bundle has no such file."""
        data = self.files.get(name)
        return None if data is None else data.decode("utf-8", errors="replace")

    def _json(self, name):
        text = self.text(name)
        if text is None:
            self.problems.append(f"{name} missing")
            return None
        try:
            value = json.loads(text)
        except ValueError as e:
            self.problems.append(f"{name} does not parse: {e}")
            return None
        if not isinstance(value, dict):
            self.problems.append(f"{name} is not a JSON object")
            return None
        return value

    def test_counts(self):
        """(passed, failed, skipped) of tests/results.log as the host judges
        a test run (verdict.evaluate_test_run; no console here)."""
        run = verdict.evaluate_test_run(self.tests, ConsoleProblems([]), None, patterns=[])
        return run.passed, run.failed, run.ignored


def _read_dir(path):
    files = {}
    for root, _, names in os.walk(path):
        for n in names:
            full = os.path.join(root, n)
            with open(full, "rb") as f:
                files[os.path.relpath(full, path).replace(os.sep, "/")] = f.read()
    return files


def _read_tar(path):
    """The files of a bundle archive: one top-level directory, regular
    files and directories only, no absolute or '..' names. Read into
    memory; nothing is written to disk."""
    files, tops = {}, set()
    try:
        with tarfile.open(path, "r:*") as tar:
            _read_members(path, tar, files, tops)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise BundleError(f"{path}: not a readable tar archive: {e}") from e
    if len(tops) != 1:
        raise BundleError(f"{path}: a bundle archive holds one directory, this one {sorted(tops) or 'none'}")
    return files


def _read_members(path, tar, files, tops):
    """The regular files of the archive into files (name inside the top
    directory -> bytes), the top-level names into tops."""
    for m in tar:
        name = m.name[2:] if m.name.startswith("./") else m.name
        parts = [p for p in name.split("/") if p]
        if name.startswith("/") or ".." in parts:
            raise BundleError(f"{path}: member {m.name!r} points outside the bundle")
        if not (m.isfile() or m.isdir()):
            raise BundleError(f"{path}: member {m.name!r} is not a file or directory")
        if not parts:
            continue
        tops.add(parts[0])
        if m.isfile() and len(parts) > 1:
            files["/".join(parts[1:])] = tar.extractfile(m).read()
        elif m.isfile():
            raise BundleError(f"{path}: {m.name!r} is outside the bundle's directory")


def load(path):
    """Read the bundle at path: its directory or its .tar.gz. BundleError
    if it cannot be read at all; problems found while reading are in
    .problems (check() reports them with the rest)."""
    if os.path.isdir(path):
        files = _read_dir(path)
    elif os.path.isfile(path):
        files = _read_tar(path)
    else:
        raise BundleError(f"{path}: no such bundle (a directory or a .tar.gz)")
    return Bundle(path, files)


def _check_fields(where, obj, fields, out):
    for key, types in fields.items():
        if key not in obj:
            out.append(f"{where}: no field {key!r}")
        elif not isinstance(obj[key], types) or (isinstance(obj[key], bool) and BOOL not in types):
            names = " or ".join("null" if t is NULL else t.__name__ for t in types)
            out.append(f"{where}: {key} is {obj[key]!r}, not {names}")


def _interval_us(args):
    words = args.split()
    for i, w in enumerate(words):
        if w in ("-i", "--interval") and i + 1 < len(words) and words[i + 1].isdigit():
            return int(words[i + 1])
        m = re.fullmatch(r"(?:-i|--interval=)(\d+)", w)
        if m:
            return int(m.group(1))
    return 1000  # cyclictest's default


def check(b):
    """What breaks the specification in bundle b, one line each ([] if
    nothing): missing files and fields, wrong types, a verdict that does
    not follow from its parts, reports and histograms that disagree, test
    counts that are not what the stream says."""
    out = list(b.problems)
    h, r = b.header, b.result
    lab = b.kind == "lab"
    _check_fields("header.json", h, HEADER_FIELDS, out)
    if isinstance(h.get("isolation"), dict):
        out += [f"header.json: isolation has no {k!r}" for k in ISOLATION_FIELDS if k not in h["isolation"]]
    if isinstance(h.get("options"), dict):
        _check_fields("header.json options", h["options"], LAB_OPTION_FIELDS if lab else OPTION_FIELDS, out)
    _check_fields("result.json", r, LAB_RESULT_FIELDS if lab else RESULT_FIELDS, out)
    for where, date in (("header.json date", h.get("date")), ("result.json end_date", r.get("end_date"))):
        if isinstance(date, str) and not DATE.match(date):
            out.append(f"{where}: {date!r} is not YYYY-MM-DDTHH:MM:SSZ")
    for name in ("summary.txt", "kernel-log.txt"):
        if name not in b.files:
            out.append(f"{name} missing")

    # The verdict follows from the failures, and every failed probe is one.
    failures = r.get("failures") if isinstance(r.get("failures"), list) else []
    if r.get("status") not in ("passed", "failed"):
        out.append(f"result.json: status {r.get('status')!r} is neither passed nor failed")
    elif (r["status"] == "failed") != bool(failures):
        out.append(f"result.json: status {r['status']} with {len(failures)} failure(s)")
    probes = r.get("probes") if isinstance(r.get("probes"), dict) else {}
    for name in PROBES.get(h.get("kind"), ()):
        if name not in probes:
            out.append(f"result.json: no probe {name!r}")
    for name, p in probes.items():
        if not isinstance(p, dict) or not isinstance(p.get("ok"), bool) or not isinstance(p.get("detail"), str):
            out.append(f"result.json: probe {name}: not {{ok: boolean, detail: string}}: {p!r}")
        elif not p["ok"] and not any(isinstance(f, str) and p["detail"] in f for f in failures):
            out.append(f"result.json: probe {name} failed but is not among the failures")

    # Latency runs: files present, reports and histograms agree, the
    # samples asked for are there.
    options = h.get("options") if isinstance(h.get("options"), dict) else {}
    duration = options.get("duration_s")
    loops = options.get("loops") if lab else None
    interval = _interval_us(options.get("latency_args") or "")
    latency = r.get("latency") if isinstance(r.get("latency"), dict) else {}
    if not isinstance(latency.get("runs"), list) or not latency.get("runs"):
        out.append("result.json: latency.runs: no runs")
    if lab:
        out += _check_matrix(b, options)
    for run in b.runs:
        where = f"run {run.name}"
        if lab:
            status = run.entry.get("status")
            skipped = status == "skipped"
            _check_fields(f"result.json run {run.name}", run.entry,
                          LAB_SKIPPED_RUN_FIELDS if skipped else LAB_RTLA_RUN_FIELDS if run.is_rtla()
                          else LAB_RUN_FIELDS, out)
            if status not in RUN_STATUSES:
                out.append(f"{where}: status {status!r} is not one of {', '.join(RUN_STATUSES)}")
            if skipped:
                continue
            if status == "failed":
                if not any(isinstance(f, str) and f.startswith(f"{run.name}: ") for f in failures):
                    out.append(f"{where}: failed but is not among the failures")
            elif run.exit_status != 0 or run.entry.get("load_alive") is False:
                out.append(f"{where}: status ran, but exit status {run.exit_status} and load alive "
                           f"{run.entry.get('load_alive')}")
        else:
            _check_fields(f"result.json run {run.name}", run.entry, RUN_FIELDS, out)
        if run.output is None:
            out.append(f"{where}: output {run.entry.get('output')!r} missing")
        if run.exit_status != 0:
            if not lab and not any(isinstance(f, str) and f.startswith(f"latency: {run.tool}") for f in failures):
                out.append(f"{where}: exit status {run.exit_status} but no latency failure")
            continue
        if lab and run.is_rtla():
            out += _check_rtla(run, h.get("cpus_online"), duration, loops, interval)
            continue
        if run.report is None or run.hist is None:
            continue
        try:
            stats = run.thread_stats()
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            out.append(f"{where}: {run.entry.get('json')}: not a latency report: {e}")
            continue
        if run.report.get("num_threads") != len(stats):
            out.append(f"{where}: num_threads {run.report.get('num_threads')}, {len(stats)} threads reported")
        if len(stats) != h.get("cpus_online"):
            out.append(f"{where}: {len(stats)} threads, not one per online CPU ({h.get('cpus_online')})")
        totals = run.hist.summary.get("Total", [])
        if len(run.hist.buckets) != len(stats) or len(totals) != len(stats):
            out.append(f"{where}: {run.entry.get('histogram')} has {len(run.hist.buckets)} thread column(s) "
                       f"and {len(totals)} total(s), the report {len(stats)} thread(s)")
            continue
        for s in stats:
            t = s["thread"]
            in_json = {int(k): int(v) for k, v in run.report["thread"][str(t)]["histogram"].items()}
            if run.hist.buckets[t] != in_json:
                out.append(f"{where} thread {t}: the histogram file's buckets differ from the JSON report's")
            in_file = sum(run.hist.buckets[t].values())
            if totals[t] != in_file:
                out.append(f"{where} thread {t}: # Total {totals[t]}, the buckets hold {in_file}")
            if in_file + run.hist.overflows(t)[0] != s["cycles"]:
                out.append(f"{where} thread {t}: histogram buckets {in_file} + overflows "
                           f"{run.hist.overflows(t)[0]} != {s['cycles']} cycles")
            if isinstance(loops, int) and s["cycles"] != loops:
                out.append(f"{where} thread {t}: {s['cycles']} samples, the run asked for {loops} loops")
            if isinstance(duration, int) and interval:
                # A cycle lasts one period, or up to its latency more when
                # the wake-up came after the next deadline (which is then
                # skipped): duration/(period + max) <= cycles <= duration/period.
                most = duration * 1_000_000 // interval
                least = duration * 1_000_000 // (interval + max(0, s["max"]))
                if not least * (1 - SAMPLE_SLACK) <= s["cycles"] <= most + 1:
                    out.append(f"{where} thread {t}: {s['cycles']} samples in {duration} s at {interval} us "
                               f"with a {s['max']} us maximum (expected {least}..{most})")

    if lab:
        return out
    # The guest tests: the stream is complete and says what result.json says.
    tests = r.get("tests") if isinstance(r.get("tests"), dict) else {}
    _check_fields("result.json tests", tests, TEST_FIELDS, out)
    if b.tests is None:
        out.append(f"{tests.get('log', 'tests/results.log')} missing")
    else:
        out += [f"tests/results.log: {v}" for v in b.tests.violations[:5]]
        if not b.tests.ended:
            out.append("tests/results.log: the runner did not reach its end frame")
        counts = b.test_counts()
        said = tuple(tests.get(k) for k in ("passed", "failed", "skipped"))
        if counts != said:
            out.append(f"result.json tests: passed/failed/skipped {said}, the stream says {counts}")
        if counts[1] and r.get("status") != "failed":
            out.append(f"{counts[1]} guest test(s) failed but the status is {r.get('status')}")
    return out


def _check_rtla(run, cpus, duration, loops, interval):
    """An rtla run that ran: a column of each kind per online CPU, sample
    counts the run's length explains, and an auto-analysis where rtla says
    it stopped at the threshold."""
    out, where, t = [], f"run {run.name}", run.timerlat
    if t is None:
        return out  # why is among the reading problems
    if len(t.cpus) != cpus:
        out.append(f"{where}: rtla measured CPUs {t.cpus}, not one per online CPU ({cpus})")
    if loops is not None and interval:
        duration = -(-loops * interval // 1_000_000)  # the runner's rtla -d
    for cpu in t.cpus:
        kinds = t.columns[cpu]
        lacking = [k for k in rtla.KINDS.values() if k not in kinds]
        if lacking:
            out.append(f"{where} CPU {cpu}: no {', '.join(lacking)} latency column (rtla -u gives all three)")
            continue
        thread = kinds["thread"]
        if isinstance(duration, int) and interval:
            # rtla's -d is checked by a loop that wakes once a second, so
            # it may run a little over (2008 samples in "2 s" seen): the
            # slack on both sides.
            most = duration * 1_000_000 // interval
            least = duration * 1_000_000 // (interval + max(0, thread.max or 0))
            if not least * (1 - SAMPLE_SLACK) <= thread.count <= most * (1 + SAMPLE_SLACK) + 1:
                out.append(f"{where} CPU {cpu}: {thread.count} thread samples in {duration} s at {interval} us "
                           f"with a {thread.max} us maximum (expected {least}..{most})")
    status = run.entry.get("analysis_exit_status")
    if status == 2 and run.analysis is not None and rtla.analysis(run.analysis) is None:
        out.append(f"{where}: {run.entry.get('analysis')}: rtla stopped at the threshold (exit status 2) "
                   "but printed no auto-analysis")
    if status is not None and status not in (0, 2) and not run.entry.get("status") == "failed":
        out.append(f"{where}: the auto-analysis run exited with {status}, but the run is not failed")
    return out


def _check_matrix(b, options):
    """A lab bundle holds one run per load and tool of its options, named
    LOAD-TOOL, with its files (a skipped run: none)."""
    out = []
    loads = options.get("loads") if isinstance(options.get("loads"), dict) else {}
    tools = options.get("tools") if isinstance(options.get("tools"), dict) else {}
    names = [run.name for run in b.runs]
    for load in loads:
        for tool in tools:
            name = f"{load}-{tool}"
            if name not in names:
                out.append(f"run {name} (load {load}, tool {tool}) missing from result.json")
            elif names.count(name) > 1:
                out.append(f"run {name} appears {names.count(name)} times in result.json")
    for run in b.runs:
        if run.entry.get("load") not in loads or run.entry.get("tool") not in tools:
            out.append(f"run {run.name}: load {run.entry.get('load')!r} or tool {run.entry.get('tool')!r} "
                       "is not among the header's options")
        elif run.name != f"{run.entry['load']}-{run.entry['tool']}":
            out.append(f"run {run.name}: not named after its load and tool")
    return out


def summary(b):
    """The bundle in a few lines: the system, the verdict, the runs."""
    h, r = b.header, b.result
    lines = [
        f"{b.source}: {h.get('kind')} bundle of {h.get('date')}: {str(r.get('status')).upper()}",
        f"  kernel {h.get('kernel_release')} ({h.get('kernel_version')}), config sha256 "
        f"{(h.get('config_gz_sha256') or 'none')[:16]}",
        f"  board {h.get('board_model')}, {h.get('cpus_online')} CPU(s) ({h.get('cpu_list')}), "
        f"clocksource {h.get('clocksource')}, emulated: {'yes' if h.get('emulated') else 'no'}",
    ]
    iso = {k: v for k, v in (h.get("isolation") or {}).items() if v}
    lines.append("  isolation: " + (", ".join(f"{k}={v}" for k, v in iso.items()) or "none"))
    for name, p in (r.get("probes") or {}).items():
        if isinstance(p, dict):
            lines.append(f"  probe {name}: {'ok' if p.get('ok') else 'FAILED'}: {p.get('detail')}")
    for run in b.runs:
        try:
            stats = run.thread_stats() if run.report else []
        except (ValueError, KeyError, TypeError, AttributeError):
            stats = []
        for s in stats:
            pct = ", ".join(f"{k} {'beyond' if s[k] is None else s[k]}" for k in ("p50", "p99", "p99.9"))
            lines.append(f"  {run.name} thread {s['thread']}: {s['cycles']} samples, min {s['min']}, "
                         f"avg {s['avg']:g}, max {s['max']} us; {pct} us")
    for run in b.runs:
        for cpu in run.timerlat.cpus if run.timerlat else []:
            cols = run.timerlat.columns[cpu]
            lines.append(f"  {run.name} CPU {cpu}: {cols['thread'].count if 'thread' in cols else '?'} samples; "
                         + "; ".join(f"{k} min {c.min}, avg {c.avg}, max {c.max} us" for k, c in cols.items()))
        if run.analysis is not None:
            lines.append(f"  {run.name}: auto-analysis: "
                         + ("stopped at " if rtla.analysis(run.analysis) else "did not reach ")
                         + f"{run.entry.get('analysis_threshold_us')} us")
    for run in b.runs:
        if run.entry.get("status") == "skipped":
            lines.append(f"  {run.name}: skipped: {run.entry.get('reason')}")
    if b.kind == "smoke":
        t = r.get("tests") or {}
        lines.append(f"  guest tests: {t.get('passed')} passed, {t.get('failed')} failed, {t.get('skipped')} skipped")
    lines += [f"  failure: {f}" for f in r.get("failures") or []]
    return lines


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    rc = 0
    for path in argv:
        try:
            b = load(path)
        except BundleError as e:
            print(f"rtflex.bundle: error: {e}", file=sys.stderr)
            rc = 2
            continue
        print("\n".join(summary(b)))
        problems = check(b)
        for p in problems:
            print(f"  problem: {p}")
        if problems:
            print(f"{path}: {len(problems)} problem(s): not a valid bundle (docs/result-bundle.md)")
            rc = max(rc, 1)
    return rc


if __name__ == "__main__":
    sys.exit(main())
