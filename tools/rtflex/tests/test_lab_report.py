"""The latency lab's bundles and report (docs/latency-lab.md): the reader
and the report generator on two bundles the lab's runner wrote in QEMU
(vexpress-a9, the rt kernel with and without the tuning profile; make lab
with LAB_DURATION=2 LAB_LOADS=idle,hackbench
LAB_TOOLS=cyclictest,rtlat,rtlat-flexsc), on broken copies of them, and
the host's side of a lab boot (the kernel command line)."""

import json
import os
import re
import tarfile

import pytest

from rtflex import bundle, guest, lab_report, qemu
from rtflex.board import load_board

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
RECORDED = {v: os.path.join(DATA, f"vexpress-a9-lab-{v}.tar.gz") for v in ("rt", "rt-tuned")}
LOADS, TOOLS = ["idle", "hackbench"], ["cyclictest", "rtlat", "rtlat-flexsc"]


def unpacked(tmp_path, variant):
    """The recorded bundle of VARIANT as a directory under tmp_path."""
    dest = tmp_path / variant
    with tarfile.open(RECORDED[variant]) as tar:
        tar.extractall(dest, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    (top,) = os.listdir(dest)
    return dest / top


def edit_json(path, change):
    value = json.loads(path.read_text())
    change(value)
    path.write_text(json.dumps(value, indent=2))


# ---- the recorded bundles ---------------------------------------------------

@pytest.mark.parametrize("variant", ["rt", "rt-tuned"])
def test_the_recorded_bundles_are_valid_and_hold_the_matrix(variant):
    b = bundle.load(RECORDED[variant])
    assert bundle.check(b) == []
    h = b.header
    assert h["version"] == 2 and h["kind"] == "lab" and b.label() == variant
    assert "PREEMPT_RT" in h["kernel_version"] and h["emulated"] is True
    assert list(h["options"]["loads"]) == LOADS and list(h["options"]["tools"]) == TOOLS
    assert [r.name for r in b.runs] == [f"{load}-{tool}" for load in LOADS for tool in TOOLS]
    assert b.result["status"] == "passed"
    # The tuning profile is on the kernel command line of the tuned boot
    # only, and it changed what the profile changes.
    assert (h["options"]["tuning"] is not None) == (variant == "rt-tuned")
    assert h["sched_rt_runtime_us"] == ("-1" if variant == "rt-tuned" else "1000000")
    # host.json: the QEMU command line ran under -icount.
    cmd = b.host["qemu_command"]
    assert cmd[cmd.index("-icount") + 1] == qemu.ICOUNT and b.host["variant"] == variant


def test_a_run_has_duration_over_interval_samples():
    b = bundle.load(RECORDED["rt"])
    for run in b.runs:
        (s,) = run.thread_stats()
        assert 0.9 * 2000 <= s["cycles"] <= 2000, (run.name, s)
        assert s["min"] <= s["p50"] <= s["p99"] <= s["p99.9"] <= s["max"]


# ---- the report ---------------------------------------------------------------

def _rows(md, first_cell):
    """The table rows of the Markdown lines MD whose first cell is FIRST_CELL."""
    return [[c.strip() for c in line.strip("|").split("|")] for line in md
            if line.startswith(f"| {first_cell} |")]


def test_the_report_says_what_the_reports_say():
    bundles = lab_report.load_all([RECORDED["rt-tuned"], RECORDED["rt"]])
    assert [b.label() for b in bundles] == ["rt", "rt-tuned"]   # rt first, whatever the order given
    md, plots = lab_report.build(bundles)
    text = "\n".join(md)
    assert "ratios against **rt**" in text
    # Per run: the numbers are the JSON report's (min, max, avg) and the
    # histogram's percentiles, read here independently.
    for b in bundles:
        for run in b.runs:
            t = run.report["thread"]["0"]
            row = next(r for r in _rows(md, run.name) if r[4] == str(t["cpu"]) and
                       r[5] == str(t["cycles"]) and r[6] == str(t["min"]) and r[11] == str(t["max"]))
            assert float(row[7]) == pytest.approx(float(t["avg"]), abs=0.05)
            counts = sorted((int(k), v) for k, v in t["histogram"].items())
            seen = 0
            for bucket, count in counts:
                seen += count
                if seen >= 0.5 * t["cycles"]:
                    assert row[8] == str(bucket)
                    break
    # The comparison: per tool a row per load, with the ratio of the
    # tuned variant's max to rt's.
    hack = _rows(md, "hackbench")
    assert len(hack) == len(TOOLS)
    for tool, row in zip(TOOLS, hack):
        m = {b.label(): b.run(f"hackbench-{tool}").report["thread"]["0"] for b in bundles}
        assert row[1].endswith(f"/ {m['rt']['max']}") and row[2].endswith(f"/ {m['rt-tuned']['max']}")
        assert row[3].split(", ")[1] == f"{m['rt-tuned']['max'] / m['rt']['max']:.2f}"
    # A histogram per tool and load, a curve per variant.
    assert sorted(p[0] for p in plots) == sorted(f"{t}-{load}" for t in TOOLS for load in LOADS)
    assert all([s[0] for s in series] == ["rt", "rt-tuned"] for _, _, series in plots)
    _, plots = lab_report.build(bundles, plot_tools=["cyclictest"])
    assert sorted(p[0] for p in plots) == sorted(f"cyclictest-{load}" for load in LOADS)
    with pytest.raises(lab_report.ReportError, match="--plot-tools: oslat: not among the runs' tools"):
        lab_report.build(bundles, plot_tools=["oslat"])


def test_the_report_files(tmp_path):
    pytest.importorskip("matplotlib")
    bundles = lab_report.load_all([RECORDED["rt"], RECORDED["rt-tuned"]])
    md_path, html_path = lab_report.write(bundles, str(tmp_path))
    md = open(md_path).read()
    pngs = sorted(os.listdir(tmp_path / "plots"))
    assert len(pngs) == len(TOOLS) * len(LOADS)
    for name in pngs:
        assert f"(plots/{name})" in md
        assert (tmp_path / "plots" / name).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    page = open(html_path).read()
    # Self-contained: every plot inline, nothing loaded from elsewhere.
    assert page.count('src="data:image/png;base64,') == len(pngs)
    assert not re.search(r'(src|href)="(?!data:)', page)
    assert "<table>" in page and "<h1>Latency lab report</h1>" in page


def test_a_directory_of_bundles_and_the_command_line(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    unpacked(tmp_path / "in", "rt")
    unpacked(tmp_path / "in", "rt-tuned")
    assert lab_report.main(["--out", str(tmp_path / "out"), str(tmp_path / "in")]) == 0
    assert "lab report:" in capsys.readouterr().out
    assert os.path.exists(tmp_path / "out" / "report.html")


# ---- bad and partial bundles ----------------------------------------------------

def _error(paths, capsys, status):
    assert lab_report.main(["--out", "/nonexistent/never-written"] + [str(p) for p in paths]) == status
    return capsys.readouterr().err


def test_a_missing_run_is_named(tmp_path, capsys):
    d = unpacked(tmp_path, "rt")
    edit_json(d / "result.json",
              lambda r: r["latency"].__setitem__("runs", [x for x in r["latency"]["runs"]
                                                          if x["name"] != "hackbench-rtlat"]))
    err = _error([d], capsys, 1)
    assert "run hackbench-rtlat (load hackbench, tool rtlat) missing from result.json" in err


def test_a_missing_file_is_named(tmp_path, capsys):
    d = unpacked(tmp_path, "rt")
    os.remove(d / "runs" / "idle-cyclictest.hist")
    os.remove(d / "runs" / "hackbench-rtlat.json")
    err = _error([d], capsys, 1)
    assert "run idle-cyclictest: histogram 'runs/idle-cyclictest.hist' missing" in err
    assert "runs/hackbench-rtlat.json missing" in err


def test_a_failed_run_must_be_among_the_failures(tmp_path):
    d = unpacked(tmp_path, "rt")
    edit_json(d / "result.json", lambda r: r["latency"]["runs"][0].__setitem__("status", "failed"))
    assert "run idle-cyclictest: failed but is not among the failures" in bundle.check(bundle.load(str(d)))


def test_a_sample_count_the_loops_cannot_explain(tmp_path):
    d = unpacked(tmp_path, "rt")

    def change(h):
        h["options"]["duration_s"] = None
        h["options"]["loops"] = 1500
    edit_json(d / "header.json", change)
    problems = bundle.check(bundle.load(str(d)))
    assert any(re.fullmatch(r"run idle-rtlat thread 0: \d+ samples, the run asked for 1500 loops", p)
               for p in problems), problems


def test_a_skipped_run_has_no_files_and_shows_why(tmp_path):
    d = unpacked(tmp_path, "rt")

    def change(r):
        for run in r["latency"]["runs"]:
            if run["tool"] == "rtlat-flexsc":
                for key in ("command", "exit_status", "load_alive", "json", "histogram", "output"):
                    del run[key]
                run.update(status="skipped", reason="the kernel has no CONFIG_FLEXSC=y (/proc/config.gz)")
    edit_json(d / "result.json", change)
    for f in os.listdir(d / "runs"):
        if "rtlat-flexsc" in f:
            os.remove(d / "runs" / f)
    b = bundle.load(str(d))
    assert bundle.check(b) == []
    md, _ = lab_report.build([b])
    assert any("skipped: the kernel has no CONFIG_FLEXSC=y" in line for line in md)


def test_io_uring_and_kml_cells_skipped_by_a_kernel_without_them(tmp_path):
    """The runner's rtlat-io_uring and rtlat-kml cells (rootfs/overlay/usr/
    libexec/rtflex/lab), as a kernel without CONFIG_IO_URING and
    CONFIG_KERNEL_MODE_LINUX skips them: the bundle is valid, the report
    names each skipped cell with its reason, and a cell missing from
    result.json is still named."""
    d = unpacked(tmp_path, "rt")
    why = {"rtlat-io_uring": ("io_uring", "the kernel has no CONFIG_IO_URING=y (/proc/config.gz)"),
           "rtlat-kml": ("kml", "the kernel has no CONFIG_KERNEL_MODE_LINUX=y (/proc/config.gz)")}

    def header(h):
        for tool in why:
            h["options"]["tools"][tool] = f"rtlat {h['options']['latency_args']} --io-via={why[tool][0]}"
    edit_json(d / "header.json", header)

    def result(r):
        runs = []
        for load in LOADS:
            runs += [run for run in r["latency"]["runs"] if run["load"] == load]
            runs += [{"name": f"{load}-{tool}", "load": load, "tool": tool, "io": io,
                      "status": "skipped", "reason": reason} for tool, (io, reason) in why.items()]
        r["latency"]["runs"] = runs
    edit_json(d / "result.json", result)
    b = bundle.load(str(d))
    assert bundle.check(b) == []
    md, _ = lab_report.build([b])
    for load in LOADS:
        for tool, (_, reason) in why.items():
            assert any(f"{load}-{tool}" in line and f"skipped: {reason}" in line for line in md), (load, tool)

    def drop_one(r):
        r["latency"]["runs"] = [run for run in r["latency"]["runs"] if run["name"] != "idle-rtlat-kml"]
    edit_json(d / "result.json", drop_one)
    assert "run idle-rtlat-kml (load idle, tool rtlat-kml) missing from result.json" in \
        bundle.check(bundle.load(str(d)))


def test_other_input_is_refused_with_a_reason(tmp_path, capsys):
    smoke = os.path.join(DATA, "vexpress-a9-smoke-bundle.tar.gz")
    assert "a smoke bundle, not a lab bundle" in _error([smoke], capsys, 2)
    assert "two bundles with the label rt" in _error([RECORDED["rt"], RECORDED["rt"]], capsys, 2)
    (tmp_path / "empty").mkdir()
    assert "no result bundle in this directory" in _error([tmp_path / "empty"], capsys, 2)
    assert "no such bundle or directory" in _error([tmp_path / "nothing"], capsys, 2)
    with pytest.raises(lab_report.ReportError, match="--reference nonrt: no bundle has that label"):
        lab_report.build(lab_report.load_all([RECORDED["rt"]]), reference="nonrt")


def test_merged_threads_and_their_percentiles():
    report = {"thread": {"0": {"cycles": 4, "min": 10, "avg": 11.0, "max": 12, "cpu": 0,
                               "histogram": {"10": 2, "12": 2}},
                         "1": {"cycles": 6, "min": 20, "avg": 20.0, "max": 30, "cpu": 1,
                               "histogram": {"20": 5}}}}
    run = bundle.LatencyRun({"name": "x"}, report, None, None)
    m = lab_report.merged(run)
    assert (m["cycles"], m["min"], m["max"]) == (10, 10, 30)
    assert m["avg"] == pytest.approx((4 * 11 + 6 * 20) / 10)
    assert m["buckets"] == {10: 2, 12: 2, 20: 5} and m["overflows"] == 1
    assert (m["p50"], m["p99"]) == (20, None)     # p99 lies among the overflow


# ---- the host's side of a lab boot ------------------------------------------------

def test_the_lab_options_go_on_the_kernel_command_line():
    board = load_board("qemu-vexpress-a9")
    words = qemu.kernel_cmdline(board, "lab", lab={"label": "rt", "duration": 5, "loops": None,
                                                   "loads": "idle,sd", "tools": None})
    assert words[-5:] == ["rtflex.mode=lab", f"rtflex.results={board.results_tty}", "rtflex.lab_label=rt",
                          "rtflex.lab_duration=5", "rtflex.lab_loads=idle,sd"]
    with pytest.raises(ValueError, match="white space"):
        qemu.kernel_cmdline(board, "lab", lab={"label": "a b"})
    assert guest.lab_cmdline(1, False) == []
    assert guest.lab_cmdline(1, True) == ["rtflex.tune", "quiet"]
    assert guest.lab_cmdline(4, True) == ["rtflex.tune", "quiet", "isolcpus=3", "irqaffinity=0-2"]
