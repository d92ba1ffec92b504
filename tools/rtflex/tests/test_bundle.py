"""Result bundles (docs/result-bundle.md): the reader on a bundle the board
smoke test wrote in QEMU, on broken copies of it, and the drift checks
between the specification, its writer (rtflex-smoke) and this reader."""

import io
import json
import os
import re
import shutil
import tarfile

import pytest

from rtflex import bundle
from rtflex.board import TOP

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
RECORDED = os.path.join(DATA, "vexpress-a9-smoke-bundle.tar.gz")
WRITER = os.path.join(TOP, "rootfs", "overlay", "usr", "bin", "rtflex-smoke")
SMOKE_CONF = os.path.join(TOP, "rootfs", "overlay", "etc", "rtflex", "smoke.conf")
SPEC = os.path.join(TOP, "docs", "result-bundle.md")
LAB_WRITER = os.path.join(TOP, "rootfs", "overlay", "usr", "libexec", "rtflex", "lab")


def unpacked(tmp_path):
    """The recorded bundle as a directory under tmp_path."""
    with tarfile.open(RECORDED) as tar:
        # Our own recording; the "data" filter where this Python has it.
        tar.extractall(tmp_path, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    (top,) = os.listdir(tmp_path)
    return tmp_path / top


def edit_json(path, change):
    value = json.loads(path.read_text())
    change(value)
    path.write_text(json.dumps(value, indent=2))


# ---- the recorded bundle ----------------------------------------------------

def test_the_recorded_bundle_is_valid_and_says_what_ran():
    b = bundle.load(RECORDED)
    assert bundle.check(b) == []
    h, r = b.header, b.result
    assert h["kind"] == "smoke" and h["kernel_release"].startswith("7.2.13")
    assert "PREEMPT_RT" in h["kernel_version"]
    assert h["emulated"] is True and any("QEMU" in e for e in h["emulation_evidence"])
    assert h["cpus_online"] == 1 and h["cpu_list"] == "0"
    assert re.fullmatch(r"[0-9a-f]{64}", h["config_gz_sha256"])
    assert r["status"] == "passed" and r["failures"] == []
    assert sorted(r["probes"]) == sorted(bundle.PROBES["smoke"])
    assert [run.name for run in b.runs] == ["rtlat", "cyclictest"]
    assert all(run.exit_status == 0 for run in b.runs)
    # Every hardware-independent guest test ran; the smoke test's list
    # (smoke.conf) was skipped, and nothing else.
    passed, failed, skipped = b.test_counts()
    assert failed == 0 and passed > 0 and {"kernel", "kml", "flexsc", "vtop"} <= {r.name for r in b.tests.runs}
    with open(SMOKE_CONF) as f:
        listed = re.search(r'^SMOKE_TEST_SKIP="([^"]*)"', f.read(), re.M).group(1).split()
    assert h["options"]["test_skip"].split() == listed
    assert h["options"]["tests"] is None
    assert sorted(b.tests.skips) == sorted(listed)
    assert skipped == len(listed) + sum(run.output.count(" ... ignored") for run in b.tests.runs)


def test_percentiles_lie_between_min_and_max():
    b = bundle.load(RECORDED)
    for run in b.runs:
        for s in run.thread_stats():
            assert s["cycles"] > 0
            assert s["min"] <= s["p50"] <= s["p99"] <= s["p99.9"] <= s["max"], (run.name, s)


def test_percentile_of_a_histogram():
    buckets = {10: 50, 11: 49, 40: 1}
    assert bundle.percentile(buckets, 0, 50) == 10
    assert bundle.percentile(buckets, 0, 99) == 11
    assert bundle.percentile(buckets, 0, 99.9) == 40
    assert bundle.percentile(buckets, 0, 100) == 40
    # A percentile among the overflows lies beyond the histogram.
    assert bundle.percentile(buckets, 100, 60) is None
    assert bundle.percentile({}, 0, 50) is None


def test_the_directory_reads_as_the_archive(tmp_path):
    d = bundle.load(str(unpacked(tmp_path)))
    a = bundle.load(RECORDED)
    assert d.files == a.files
    assert bundle.check(d) == []


def test_the_command_line(tmp_path, capsys):
    assert bundle.main([RECORDED]) == 0
    out = capsys.readouterr().out
    assert "smoke bundle" in out and "PASSED" in out and "rtlat thread 0" in out
    d = unpacked(tmp_path)
    os.remove(d / "latency" / "cyclictest.hist")
    assert bundle.main([str(d)]) == 1
    assert "problem: run cyclictest: histogram 'latency/cyclictest.hist' missing" in capsys.readouterr().out
    assert bundle.main([str(tmp_path / "nothing")]) == 2


# ---- broken bundles ---------------------------------------------------------

@pytest.mark.parametrize("name, problem", [
    ("latency/rtlat.json", "latency/rtlat.json missing"),
    ("latency/rtlat.txt", "run rtlat: output 'latency/rtlat.txt' missing"),
    ("tests/results.log", "tests/results.log missing"),
    ("kernel-log.txt", "kernel-log.txt missing"),
])
def test_a_missing_file_is_named(tmp_path, name, problem):
    d = unpacked(tmp_path)
    os.remove(d / name)
    assert problem in bundle.check(bundle.load(str(d)))


def test_without_header_or_result_it_is_no_bundle(tmp_path):
    d = unpacked(tmp_path)
    os.remove(d / "result.json")
    with pytest.raises(bundle.BundleError, match="not a result bundle: result.json missing"):
        bundle.load(str(d))


@pytest.mark.parametrize("field, value, message", [
    ("version", 4, "bundle version 4: this reader knows versions 1, 2, 3"),
    ("kind", "lab", "kind 'lab': version 1 bundles are of kind smoke"),
    ("format", "something-else", "format 'something-else', not 'rtflex-result-bundle'"),
])
def test_another_version_or_format_is_refused(tmp_path, field, value, message):
    d = unpacked(tmp_path)
    edit_json(d / "header.json", lambda h: h.__setitem__(field, value))
    with pytest.raises(bundle.BundleError, match=message):
        bundle.load(str(d))


def test_missing_and_mistyped_fields(tmp_path):
    d = unpacked(tmp_path)

    def change(h):
        del h["clocksource"]
        h["cpus_online"] = "1"
        del h["isolation"]["nohz_full"]
        h["date"] = "yesterday"
    edit_json(d / "header.json", change)
    problems = bundle.check(bundle.load(str(d)))
    assert "header.json: no field 'clocksource'" in problems
    assert "header.json: cpus_online is '1', not int" in problems
    assert "header.json: isolation has no 'nohz_full'" in problems
    assert "header.json date: 'yesterday' is not YYYY-MM-DDTHH:MM:SSZ" in problems


def test_a_verdict_must_follow_from_its_parts(tmp_path):
    d = unpacked(tmp_path)

    def change(r):
        r["probes"]["flexsc"]["ok"] = False
        r["tests"]["passed"] += 1
    edit_json(d / "result.json", change)
    problems = bundle.check(bundle.load(str(d)))
    assert "result.json: probe flexsc failed but is not among the failures" in problems
    assert any(p.startswith("result.json tests: passed/failed/skipped") and "the stream says" in p
               for p in problems), problems

    edit_json(d / "result.json", lambda r: r.__setitem__("status", "failed"))
    assert "result.json: status failed with 0 failure(s)" in bundle.check(bundle.load(str(d)))


def test_a_failed_test_in_the_stream_must_fail_the_bundle(tmp_path):
    d = unpacked(tmp_path)
    log = d / "tests" / "results.log"
    text = log.read_text()
    first_ok = re.search(r"^test (\S+) \.\.\. ok$", text, re.M)
    log.write_text(text[:first_ok.start()] + f"test {first_ok.group(1)} ... FAILED" + text[first_ok.end():])
    problems = bundle.check(bundle.load(str(d)))
    assert any("the stream says" in p for p in problems), problems
    assert "1 guest test(s) failed but the status is passed" in problems


def test_a_stream_cut_short_is_reported(tmp_path):
    d = unpacked(tmp_path)
    log = d / "tests" / "results.log"
    text = log.read_text()
    assert text.endswith("rtflex-guest: end\n")
    log.write_text(text[:-len("rtflex-guest: end\n")])
    assert "tests/results.log: the runner did not reach its end frame" in bundle.check(bundle.load(str(d)))


def test_the_histogram_file_must_agree_with_the_report(tmp_path):
    d = unpacked(tmp_path)
    hist = d / "latency" / "rtlat.hist"
    lines = hist.read_text().splitlines()
    i = next(i for i, line in enumerate(lines) if not line.startswith("#") and int(line.split()[1]) > 0)
    bucket, count = lines[i].split()
    lines[i] = f"{bucket} {int(count) + 1:06d}"
    hist.write_text("\n".join(lines) + "\n")
    problems = bundle.check(bundle.load(str(d)))
    assert "run rtlat thread 0: the histogram file's buckets differ from the JSON report's" in problems
    assert any(p.startswith("run rtlat thread 0: histogram buckets") for p in problems), problems


@pytest.mark.parametrize("factor", [10, 0.5])
def test_a_sample_count_the_duration_cannot_explain_is_reported(tmp_path, factor):
    d = unpacked(tmp_path)
    edit_json(d / "header.json",
              lambda h: h["options"].__setitem__("duration_s", int(factor * h["options"]["duration_s"])))
    assert any(re.fullmatch(r"run rtlat thread 0: \d+ samples in \d+ s at 1000 us with a \d+ us maximum "
                            r"\(expected \d+\.\.\d+\)", p)
               for p in bundle.check(bundle.load(str(d))))


def _tar(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return str(path)


@pytest.mark.parametrize("members, message", [
    ([("a/header.json", b"{}"), ("b/result.json", b"{}")], r"holds one directory, this one \['a', 'b'\]"),
    ([("a/header.json", b"{}"), ("a/../../evil", b"")], "points outside the bundle"),
    ([("/a/header.json", b"{}")], "points outside the bundle"),
    ([("header.json", b"{}")], "outside the bundle's directory"),
])
def test_archives_that_are_not_one_bundle_directory_are_refused(tmp_path, members, message):
    with pytest.raises(bundle.BundleError, match=message):
        bundle.load(_tar(tmp_path / "x.tar.gz", members))


def test_a_broken_archive_is_refused(tmp_path):
    shutil.copy(RECORDED, tmp_path / "cut.tar.gz")
    with open(tmp_path / "cut.tar.gz", "r+b") as f:
        f.truncate(100)
    with pytest.raises(bundle.BundleError, match="not a readable tar archive"):
        bundle.load(str(tmp_path / "cut.tar.gz"))


# ---- the specification, its writer and this reader agree --------------------

def _text(path):
    with open(path) as f:
        return f.read()


def test_writer_reader_and_specification_name_the_same_format_and_version():
    writer = _text(WRITER)
    assert f"BUNDLE_FORMAT={bundle.FORMAT}\n" in writer
    # rtflex-smoke writes version 1, which version 2 keeps for smoke
    # bundles; the lab's runner writes the current version.
    version = int(re.search(r"^BUNDLE_VERSION=(\d+)$", writer, re.M).group(1))
    assert "smoke" in bundle.KINDS[version]
    assert f"BUNDLE_VERSION={bundle.VERSION}\n" in _text(LAB_WRITER)
    assert f"**Format `{bundle.FORMAT}`, version {bundle.VERSION}.**" in _text(SPEC)


def _spec_fields(section):
    """The first column of the field table under '## SECTION'."""
    text = _text(SPEC)
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `(\w+)` \|", body, re.M)


def _writer_fields(file_name):
    """The top-level keys of the JSON the writer's here-document for
    FILE_NAME writes (two-space indentation)."""
    writer = _text(WRITER)
    doc = re.search(r'cat >"\$bundle/' + re.escape(file_name) + r'" <<EOF\n(.*?)\nEOF\n', writer, re.S)
    assert doc, f"no here-document for {file_name} in {WRITER}"
    return re.findall(r'^  "(\w+)":', doc.group(1), re.M)


@pytest.mark.parametrize("section, fields", [
    ("header.json", bundle.HEADER_FIELDS),
    ("result.json", bundle.RESULT_FIELDS),
])
def test_specification_writer_and_reader_have_the_same_fields(section, fields):
    assert _spec_fields(section) == list(fields)
    assert _writer_fields(section) == list(fields)
