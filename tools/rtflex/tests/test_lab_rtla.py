"""rtla timerlat in the latency lab (docs/latency-lab.md, docs/result-bundle.md
"rtla runs"): the parser of `rtla timerlat hist` output (tools/rtflex/rtla.py),
the bundle reader and the report on a bundle the lab's runner wrote in QEMU
with rtla (vexpress-a9, the rt kernel, loads idle and hackbench x
cyclictest and rtla, 2 s per cell), on broken copies of it, and a bundle
without rtla runs (version 2) that still renders."""

import json
import os
import re
import tarfile

import pytest

from rtflex import bundle, lab_report, rtla

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
RECORDED = os.path.join(DATA, "vexpress-a9-lab-rtla.tar.gz")
WITHOUT_RTLA = os.path.join(DATA, "vexpress-a9-lab-rt.tar.gz")
LOADS, TOOLS = ["idle", "hackbench"], ["cyclictest", "rtla"]


def unpacked(tmp_path):
    dest = tmp_path / "rtla"
    with tarfile.open(RECORDED) as tar:
        tar.extractall(dest, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    (top,) = os.listdir(dest)
    return dest / top


def edit_json(path, change):
    value = json.loads(path.read_text())
    change(value)
    path.write_text(json.dumps(value, indent=2))


def recorded_output(name="idle-rtla"):
    return bundle.load(RECORDED).run(name).output


def _all_section(text):
    """The ALL: section of rtla's output: row -> [irq, thread, user]."""
    rows = {}
    after = text.split("\nALL:", 1)[1]
    for line in after.splitlines()[1:]:
        words = line.split()
        if words and words[0].endswith(":"):
            rows[words[0][:-1]] = [int(w) for w in words[1:]]
    return rows


# ---- the parser ----------------------------------------------------------------

@pytest.mark.parametrize("name", [f"{load}-rtla" for load in LOADS])
def test_the_parser_reads_a_recorded_hist_and_agrees_with_its_all_section(name):
    text = recorded_output(name)
    h = rtla.parse_hist(text)
    assert h.cpus == [0] and h.kinds() == ["irq", "thread", "user"]
    # rtla's own clock of the session (days hh:mm:ss): the 2 s cell, or a
    # little more under load (rtla checks -d once a second).
    assert re.fullmatch(r"0 00:00:0[2-5]", h.duration), h.duration
    # The one CPU's columns are the ALL: section that rtla computes itself
    # (the parser stops before it): an independent check of the columns.
    all_rows = _all_section(text)
    cols = h.columns[0]
    for i, kind in enumerate(("irq", "thread", "user")):
        c = cols[kind]
        assert [c.count, c.min, c.avg, c.max] == [all_rows[r][i] for r in ("count", "min", "avg", "max")]
        assert sum(c.buckets.values()) + c.over == c.count
        assert c.min <= c.percentile(50) <= c.percentile(99) <= c.percentile(99.9) <= c.max
        assert c.percentile(100) == c.max
    # Per sample the IRQ comes before the thread's wake-up, which comes
    # before the return to user space.
    assert cols["irq"].max <= cols["thread"].max <= cols["user"].max
    assert cols["irq"].avg <= cols["thread"].avg <= cols["user"].avg


def test_the_parser_reads_several_cpus():
    text = "\n".join([
        "# RTLA timerlat histogram", "# Time unit is microseconds (us)", "# Duration:   0 00:00:01",
        "Index   IRQ-000   Thr-000   IRQ-001   Thr-001",
        "5             2         0         1         0",
        "40            0         2         0         0",
        "41            0         0         0         1",
        "over:         0         0         0         0",
        "count:        2         2         1         1",
        "min:          5        40         5        41",
        "avg:          5        40         5        41",
        "max:          5        40         5        41",
        "ALL:        IRQ       Thr",
        "count:        3         3",
    ])
    h = rtla.parse_hist(text)
    assert h.cpus == [0, 1] and h.kinds() == ["irq", "thread"]
    assert h.columns[1]["thread"].buckets == {41: 1} and h.columns[0]["irq"].count == 2


@pytest.mark.parametrize("change, message", [
    (lambda t: "no rtla here\n", "before the column line"),
    (lambda t: "", "no column line"),
    (lambda t: re.sub(r"(?m)^max:.*\n", "", t), r"no max: row"),
    (lambda t: re.sub(r"(?m)^count: +(\d+)", lambda m: f"count:     {int(m.group(1)) + 1}", t, count=1),
     "buckets .* != count"),
    (lambda t: t.replace("Thr-000", "Foo-000"), "is not IRQ-N, Thr-N or Usr-N"),
    (lambda t: re.sub(r"(?m)^(over: +\d+ +\d+) +\d+", r"\1", t, count=1), "2 values, 3 columns"),
    (lambda t: re.sub(r"(?m)^min: +(\d+)", "min:    999", t, count=1), "out of order"),
])
def test_the_parser_refuses_broken_output_naming_what_is_wrong(change, message):
    with pytest.raises(ValueError, match=message):
        rtla.parse_hist(change(recorded_output()))


def test_the_analysis_is_the_text_from_rtlas_stop_line():
    b = bundle.load(RECORDED)
    for run in b.runs:
        if not run.is_rtla():
            continue
        e = run.entry
        text = rtla.analysis(run.analysis)
        if e["analysis_exit_status"] == 2:
            assert text.startswith("## CPU 0 hit stop tracing, analyzing it ##")
            # rtla stopped at a sample whose thread latency reached the
            # threshold: its analysis says so.
            m = re.search(r"Thread latency:\s+([\d.]+) us", text)
            assert m and float(m.group(1)) >= e["analysis_threshold_us"], text
        else:
            assert e["analysis_exit_status"] == 0 and text is None
    assert rtla.analysis("rtla timerlat top: nothing hit\n") is None


# ---- the bundle ----------------------------------------------------------------

def test_the_recorded_bundle_is_valid_and_holds_the_rtla_runs():
    b = bundle.load(RECORDED)
    assert bundle.check(b) == []
    h = b.header
    assert h["version"] == 3 and h["kind"] == "lab" and b.label() == "rt"
    assert list(h["options"]["loads"]) == LOADS and list(h["options"]["tools"]) == TOOLS
    assert h["options"]["tools"]["rtla"].startswith("rtla timerlat hist -u -P f:90 -p 1000 ")
    assert [r.name for r in b.runs] == [f"{load}-{tool}" for load in LOADS for tool in TOOLS]
    for load in LOADS:
        run = b.run(f"{load}-rtla")
        assert run.is_rtla() and run.report is None and run.timerlat is not None
        assert run.entry["analysis_threshold_us"] == run.timerlat.columns[0]["thread"].max
        assert run.entry["analysis_command"].endswith(f"-E 2000 -T {run.entry['analysis_threshold_us']}")
    lines = "\n".join(bundle.summary(b))
    assert "idle-rtla CPU 0: " in lines and "auto-analysis" in lines


def test_a_version_2_reader_would_not_know_it_and_this_one_knows_both():
    assert bundle.KINDS[3] == ("smoke", "lab") and "lab" in bundle.KINDS[2]
    assert bundle.load(WITHOUT_RTLA).header["version"] == 2


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "runs" / "hackbench-rtla.txt").unlink(),
     r"run hackbench-rtla: rtla output 'runs/hackbench-rtla.txt' missing"),
    (lambda d: (d / "runs" / "idle-rtla.txt").write_text("rtla: could not enable timerlat\n"),
     r"run idle-rtla: runs/idle-rtla.txt: not rtla timerlat hist output"),
    (lambda d: (d / "runs" / "idle-rtla.aa.txt").unlink(),
     r"run idle-rtla: auto-analysis output 'runs/idle-rtla.aa.txt' missing"),
    (lambda d: edit_json(d / "result.json", lambda r: r["latency"]["runs"][1].pop("analysis_threshold_us")),
     r"result.json run idle-rtla: no field 'analysis_threshold_us'"),
    (lambda d: edit_json(d / "result.json", lambda r: r["latency"]["runs"][3].update(json="runs/x.json")),
     r"result.json run hackbench-rtla: json is 'runs/x.json', not null"),
])
def test_a_broken_rtla_run_is_refused_naming_the_run(tmp_path, damage, message):
    d = unpacked(tmp_path)
    damage(d)
    with pytest.raises(lab_report.ReportError, match=message):
        lab_report.load_all([str(d)])


def test_samples_the_cell_cannot_explain_are_named(tmp_path):
    d = unpacked(tmp_path)
    # Half the thread samples gone (the buckets and the count together,
    # so the column itself is consistent).
    text = (d / "runs" / "idle-rtla.txt").read_text()
    h = rtla.parse_hist(text)
    thread = h.columns[0]["thread"]
    biggest = max(thread.buckets, key=thread.buckets.get)
    cut = thread.count // 2
    assert thread.buckets[biggest] > cut, "the recorded run has one dominant bucket"
    out = []
    for line in text.splitlines():
        w = line.split()
        if w and w[0] == str(biggest):
            line = re.sub(rf"^({biggest}\s+\d+\s+)(\d+)", lambda m: m.group(1) + str(int(m.group(2)) - cut), line)
        elif w and w[0] == "count:":
            line = re.sub(r"^(count:\s+\d+\s+)(\d+)", lambda m: m.group(1) + str(int(m.group(2)) - cut), line)
        out.append(line)
    (d / "runs" / "idle-rtla.txt").write_text("\n".join(out) + "\n")
    with pytest.raises(lab_report.ReportError, match=r"run idle-rtla CPU 0: \d+ thread samples in 2 s"):
        lab_report.load_all([str(d)])


# ---- the report ------------------------------------------------------------------

def _rows(md, first_cell):
    return [[c.strip() for c in line.strip("|").split("|")] for line in md
            if line.startswith(f"| {first_cell} |")]


def test_the_report_shows_rtlas_columns_and_the_analysis():
    (b,) = lab_report.load_all([RECORDED])
    md, plots = lab_report.build([b])
    text = "\n".join(md)
    assert "## rtla timerlat" in text
    # Per run and CPU: IRQ, thread and user with percentiles, the parser's numbers.
    for load in LOADS:
        run = b.run(f"{load}-rtla")
        cols = run.timerlat.columns[0]
        (row,) = [r for r in _rows(md, "rt") if r[1] == run.name]
        want = [str(cols["thread"].count)]
        for kind in ("irq", "thread", "user"):
            c = cols[kind]
            want += [str(c.min), str(c.avg), str(c.percentile(99)), str(c.percentile(99.9)), str(c.max)]
        assert row[3:] == want
        # The variants table: max IRQ / thread / user.
        (vrow,) = _rows(md, load)[-1:]
        assert vrow[1] == f"{cols['irq'].max} / {cols['thread'].max} / {cols['user'].max}"
        # The auto-analysis, verbatim.
        analysis = rtla.analysis(run.analysis)
        if analysis is not None:
            assert analysis in text
    # rtla is not among the cyclictest-format tools (no empty "skipped" rows).
    assert "### rtla\n" not in text and not any("skipped: None" in line for line in md)
    assert not any("rtla" in name for name, _, _ in plots)
    html = lab_report.to_html(md, {name: b"" for name, _, _ in plots})
    assert "<pre>## CPU 0 hit stop tracing, analyzing it ##" in html or "no sample reached it" in html


def test_a_bundle_without_rtla_renders_without_its_section():
    bundles = lab_report.load_all([WITHOUT_RTLA])
    md, _ = lab_report.build(bundles)
    assert "## rtla timerlat" not in "\n".join(md)


def test_bundles_with_and_without_rtla_render_together(tmp_path):
    d = unpacked(tmp_path)
    edit_json(d / "header.json", lambda h: h["options"].update(label="rt-rtla"))
    bundles = lab_report.load_all([WITHOUT_RTLA, str(d)])
    md, _ = lab_report.build(bundles)
    text = "\n".join(md)
    assert "## rtla timerlat" in text
    # The bundle without rtla has no rtla runs: "-" in its column.
    (row,) = _rows(md, "idle")[-1:]
    assert row[1] == "-" and "/" in row[2]
