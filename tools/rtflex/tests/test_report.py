"""Reports: the benchmark report and the rtlat/cyclictest comparison, from
recorded bench and compare runs; the runs are learned from the stream."""

import copy
import json

import pytest
import recordings

from rtflex import protocol, report
from rtflex.qemu import ICOUNT

BENCH = "vexpress-a9-bench-smp1"


@pytest.fixture
def bench():
    return recordings.results(BENCH)


def test_latency_rows_of_a_recorded_rtlat_report(bench):
    assert report.latency_rows(bench.files["rtlat-none.json"]) == [(0, 5000, 27, 35.59, 49)]
    with pytest.raises(ValueError):
        report.latency_rows("")
    with pytest.raises(ValueError):
        report.latency_rows('{"thread": {"0": {"cycles": 1}}}')


def test_the_recorded_bench_report(bench):
    text, failures = report.bench_report(bench, "vexpress-a9", 1)
    assert failures == []
    lines = text.splitlines()
    assert lines[0] == f"## 1 vCPU(s): vexpress-a9, QEMU -icount {ICOUNT}, Linux 7.2.13"
    # kml-bench: both runs' commands and their tables' rows.
    assert "`/usr/bin/kml-bench --header` and `/trusted/kml-bench`" in text
    kml_rows = [line for line in lines if line.startswith("| ") and line.split("|")[2].strip() in ("svc", "trampoline")]
    assert len(kml_rows) == 9 and sum(" usr " in r for r in kml_rows) == 3
    # flexsc-bench: the run's command without its --json, then its tables.
    assert "`flexsc-bench --workers-on=same`:" in lines
    assert '{"flexsc_bench":' not in text
    # rtlat: one row per run, labelled by the run's own I/O options.
    rows = [line for line in lines if line.startswith("| `")]
    assert rows == [
        "| `(none)` | 0 | 5000 | 27 | 35.59 | 49 | n/a |",
        "| `--io-pipe --io-via=direct` | 0 | 5000 | 27 | 35.55 | 326 | n/a |",
        "| `--io-pipe --io-via=flexsc` | 0 | 5000 | 27 | 35.34 | 164 | n/a |",
        "| `--io-file=/tmp/rtlat-io.dat --io-via=direct` | 0 | 5000 | 27 | 35.32 | 49 | n/a |",
        "| `--io-file=/tmp/rtlat-io.dat --io-via=flexsc` | 0 | 5000 | 27 | 35.30 | 53 | n/a |",
    ]
    assert "`rtlat -m -p 90 -i 1000 -l 5000 -h 400 -q -t 1 -a 0` plus the I/O options" in text


def test_a_bench_without_icount_says_it_is_host_timed(bench):
    text, failures = report.bench_report(bench, "vexpress-a9", 1, icount=False)
    assert failures == []
    lines = text.splitlines()
    assert lines[0] == "## 1 vCPU(s): vexpress-a9, QEMU without -icount (host-timed), Linux 7.2.13"
    assert "`scripts/rtflex bench --smp 1 --icount off`" in text
    assert "instruction count" not in text.split("###")[0]


def test_own_cpu_column_from_the_json(bench):
    with_cpu = copy.deepcopy(bench)
    doc = json.loads(with_cpu.files["rtlat-none.json"])
    doc["thread"]["0"]["own_cpu_us_per_cycle"] = 21.5
    with_cpu.files["rtlat-none.json"] = json.dumps(doc)
    assert report.own_cpu(with_cpu.files["rtlat-none.json"]) == {0: 21.5}
    assert report.own_cpu(bench.files["rtlat-none.json"]) == {0: None}
    assert report.own_cpu("not json") == {}
    text, failures = report.bench_report(with_cpu, "vexpress-a9", 1)
    assert failures == []
    assert "| `(none)` | 0 | 5000 | 27 | 35.59 | 49 | 21.50 |" in text.splitlines()


def test_bench_failures_are_named(bench):
    _, failures = report.bench_report(bench, "vexpress-a9", 2)
    assert failures == ["the guest saw 1 CPU(s), not 2"]
    broken = copy.deepcopy(bench)
    del broken.files["rtlat-pipe-flexsc.json"]
    del broken.files["flexsc-bench-same.json"]
    broken.run("kml-bench-sys").status = 139
    broken.files["kml-bench-sys.txt"] = "Illegal instruction\n"
    text, failures = report.bench_report(broken, "vexpress-a9", 1)
    assert failures == ["kml-bench-sys exited with 139", "kml-bench-sys: no table in its output",
                        "flexsc-bench-same: no JSON report", "rtlat-pipe-flexsc: no usable JSON report"]
    assert "| `--io-pipe --io-via=flexsc` | failed: # Thread 0: | | | | | |" in text


def test_a_run_of_a_new_program_gets_its_own_section():
    res = protocol.parse("rtflex-guest: begin 7.2.13\nrtflex-guest: cpus 1\n"
                         "rtflex-guest: run newbench-a /usr/bin/newbench --fast\n\nrtflex-guest: exit newbench-a 0\n"
                         "rtflex-guest: file newbench-a.txt\nresult 42\n\nrtflex-guest: endfile newbench-a.txt\n"
                         "rtflex-guest: end\n")
    text, failures = report.bench_report(res, "vexpress-a9", 1)
    assert failures == []
    assert "### newbench-a: `/usr/bin/newbench --fast`\n\n```\nresult 42\n```" in text


def test_the_recorded_comparison():
    lines, failures = report.compare_table(recordings.results("vexpress-a9-compare"), "vexpress-a9")
    assert failures == []
    assert lines[0] == f"Wake-up latency, vexpress-a9 under QEMU -icount {ICOUNT}, Linux 7.2.13"
    assert lines[3] == "parameters for both tools: -m -p 90 -i 1013 -l 10000 -h 400 -q"
    assert lines[-4:] == [
        "cyclictest        0    10000       26    36.96       64",
        "rtlat             0    10000       26    37.15       74",
        "difference        0        0       +0    +0.19      +10",
        "(difference: rtlat minus cyclictest)",
    ]


def test_a_comparison_without_a_report_fails():
    res = recordings.results("vexpress-a9-compare")
    res.files["rtlat.json"] = "{"
    res.files["rtlat.txt"] = "rtlat: cannot lock memory\n"
    lines, failures = report.compare_table(res, "vexpress-a9")
    assert lines == [] and failures == ["rtlat: no usable JSON report (rtlat: cannot lock memory)"]
    res = recordings.results("vexpress-a9-compare")
    res.steps.pop()
    _, failures = report.compare_table(res, "vexpress-a9")
    assert failures == ["expected two runs to compare, the guest sent 1"]
    res = recordings.results("vexpress-a9-compare")
    res.runs[1].status = 1
    _, failures = report.compare_table(res, "vexpress-a9")
    assert failures == ["rtlat exited with 1"]
