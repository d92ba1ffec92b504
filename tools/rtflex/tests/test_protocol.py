"""The result protocol: the parser on recorded streams, the emitter
(results.sh, run in a real shell) against the parser, and the drift checks
between the specification's emitter and the parser and guest scripts."""

import glob
import os
import re
import subprocess

import pytest
import recordings

from rtflex import protocol

GUEST_SCRIPTS = os.path.dirname(protocol.EMITTER)


def emit(tmp_path, script, **files):
    """Run SCRIPT (sh) after sourcing results.sh, with the results port in a
    file; FILES are written to tmp_path first. The parsed stream."""
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    out = tmp_path / "results.log"
    env = dict(os.environ, RTFLEX_RESULTS_FILE=str(out))
    subprocess.run(["sh", "-c", f". {protocol.EMITTER}\n{script}"], cwd=tmp_path, env=env, check=True)
    return protocol.parse(out.read_bytes().decode())


# ---- the specification, its emitter and its parser agree -------------------

def test_the_parser_knows_exactly_the_keywords_the_emitter_accepts():
    assert protocol.emitter_keywords() == list(protocol.KEYWORDS)


def test_guest_scripts_send_frames_only_through_the_emitter_with_known_keywords():
    scripts = sorted(glob.glob(os.path.join(GUEST_SCRIPTS, "run-*")))
    assert len(scripts) >= 4, scripts
    for path in scripts:
        with open(path) as f:
            text = f.read()
        assert "rtflex-guest:" not in text.replace("$TESTS_BEGIN_MARKER", ""), \
            f"{path} writes a frame itself instead of through results.sh"
        assert "results.sh" in text, f"{path} does not source results.sh"
        for keyword in re.findall(r"\bframe ([\w-]+)", text):
            assert keyword in protocol.KEYWORDS, f"{path}: frame {keyword}"


def test_the_marker_is_the_emitters():
    with open(protocol.EMITTER) as f:
        assert f'TESTS_BEGIN_MARKER="{protocol.TESTS_BEGIN_MARKER}"' in f.read()


def test_files_arrive_byte_for_byte(tmp_path):
    contents = {"nonl.txt": b"no final newline", "nl.txt": b"two\nlines\n", "empty.txt": b"",
                "blank.txt": b"\n\n", "frame.txt": b"rtflex-guest: end\nrtflex-guest: endfile other\n"}
    script = "frame begin 7.2.13\n" + "".join(f"send_file {n} {n}\n" for n in contents) + "frame end\n"
    res = emit(tmp_path, script, **contents)
    assert res.violations == []
    assert res.files == {n: c.decode() for n, c in contents.items()}
    assert res.ended and res.release == "7.2.13"


def test_streamed_and_captured_runs(tmp_path):
    cap = f"rtflex-test-{os.getpid()}"  # run_captured writes /tmp/NAME.txt and reads /tmp/NAME.json
    res = emit(tmp_path, f"""
frame begin 1
run_streamed partial printf 'no newline'
run_streamed fails sh -c 'echo out; echo err >&2; exit 3'
run_streamed fake sh -c 'echo "rtflex-guest: exit other 0"; echo "rtflex-guest: end"'
run_captured {cap} sh -c 'echo captured; echo "{{\\"a\\": 1}}" > /tmp/{cap}.json'
rm -f /tmp/{cap}.txt /tmp/{cap}.json
frame end
""")
    assert res.violations == []
    partial, fails, fake, captured = res.runs
    assert (partial.output, partial.status, partial.command) == ("no newline", 0, ["printf", "no", "newline"])
    assert (fails.output, fails.status) == ("out\nerr\n", 3)
    # Frame-like lines of a program's output are its output (all but its
    # own closing frame, which only the emitter should write).
    assert fake.output == "rtflex-guest: exit other 0\nrtflex-guest: end\n" and fake.status == 0
    assert (captured.name, captured.output, captured.status) == (cap, "", 0)
    assert res.files[f"{cap}.txt"] == "captured\n"
    assert res.files[f"{cap}.json"] == '{"a": 1}\n'


def test_an_unknown_keyword_is_refused_by_the_emitter(tmp_path):
    res = emit(tmp_path, "frame begin 1\nframe bogus x || true\nframe end\n")
    assert res.errors == ["results.sh: unknown frame keyword 'bogus'"]
    assert res.violations == []


# ---- the parser -------------------------------------------------------------

@pytest.mark.parametrize("stream,violation", [
    ("rtflex-guest: begin 1\nstray text\nrtflex-guest: end\n", "not a frame"),
    ("rtflex-guest: begin 1\nrtflex-guest: reboot\nrtflex-guest: end\n", "unknown keyword 'reboot'"),
    ("rtflex-guest: begin 1\nrtflex-guest: exit a 0\nrtflex-guest: end\n", "without its opening frame"),
    ("rtflex-guest: begin 1\nrtflex-guest: end now\n", "end: wrong arguments"),
    ("rtflex-guest: begin 1\nrtflex-guest: skip\n", "skip: wrong arguments"),
    ("rtflex-guest: begin 1\nrtflex-guest: run a\nrtflex-guest: exit a x\n", "is not a number"),
    ("rtflex-guest: begin 1\nrtflex-guest: file f\nhalf", "file f: block not closed"),
    ("rtflex-guest: run a\nrtflex-guest: exit a 0\n", "no begin frame"),
])
def test_protocol_errors_are_named(stream, violation):
    res = protocol.parse(stream)
    assert any(violation in v for v in res.violations), res.violations


def test_a_block_closes_only_with_its_own_name():
    res = protocol.parse("rtflex-guest: begin 1\nrtflex-guest: run a\nrtflex-guest: exit b 0\n"
                         "rtflex-guest: exit a 0 extra\nrtflex-guest: exit a 1\nrtflex-guest: end\n")
    assert res.violations == []
    assert res.runs[0].status == 1
    assert res.runs[0].output == "rtflex-guest: exit b 0\nrtflex-guest: exit a 0 extra"


def test_carriage_returns_are_dropped():
    res = protocol.parse("rtflex-guest: begin 1\r\nrtflex-guest: cpus 2\r\nrtflex-guest: end\r\n")
    assert (res.release, res.facts, res.ended, res.violations) == ("1", {"cpus": "2"}, True, [])


def test_a_stream_cut_off_in_a_run_keeps_its_output():
    res = protocol.parse("rtflex-guest: begin 1\nrtflex-guest: run kml /x --y\ntest a ... ok\ntest b")
    assert not res.ended
    assert res.runs[0].status is None and res.runs[0].output == "test a ... ok\ntest b"
    assert res.violations == ["run kml: block not closed at the end of the stream"]


# ---- recorded streams ---------------------------------------------------------

def test_recorded_test_run():
    res = recordings.results("vexpress-a9-test")
    assert res.violations == [] and res.errors == [] and res.facts == {} and res.files == {}
    assert res.release == "7.2.13" and res.ended and res.skips == []
    names = ["rtlat", "flexsc", "flexsc_hostile", "kernel", "kml", "sysfuzz", "vtop", "kernel_log"]
    assert [r.name for r in res.runs] == names  # rtlat first, kernel_log last (run-guest-tests)
    for run in res.runs:
        assert run.status == 0
        assert run.command == [f"/usr/lib/rtflex/tests/{run.name}", "--test-threads=1", "--show-output"]
        # libtest's own output, which ends with an empty line; the emitter's
        # line break is not part of it.
        assert run.output.startswith("\nrunning ") and run.output.endswith("s\n\n")


def test_recorded_run_cut_off_by_a_timeout():
    res = recordings.results("vexpress-a9-test-timeout")
    assert not res.ended
    assert [(r.name, r.status) for r in res.runs][-2:] == [("kernel", 0), ("kml", None)]
    assert res.violations == ["run kml: block not closed at the end of the stream"]


def test_recorded_compare_and_fuzz_runs():
    res = recordings.results("vexpress-a9-compare")
    assert res.violations == [] and res.ended
    assert res.facts == {"args": "-m -p 90 -i 1013 -l 10000 -h 400 -q"}
    runs = [(r.name, r.command[0], r.status) for r in res.runs]
    assert runs == [("cyclictest", "cyclictest", 0), ("rtlat", "rtlat", 0)]
    assert sorted(res.files) == ["cyclictest.json", "cyclictest.txt", "rtlat.json", "rtlat.txt"]
    res = recordings.results("vexpress-a9-fuzz-pass")
    assert res.violations == [] and res.ended
    (run,) = res.runs
    assert (run.name, run.command, run.status) == ("sysfuzz", ["/usr/bin/sysfuzz", "--seconds", "20", "--kml", "on"], 0)


def test_recorded_debug_kernel_test_run():
    res = recordings.results("vexpress-a9-debug-test")
    assert res.violations == [] and res.errors == []
    assert res.release == "7.2.13-debug" and res.ended
    assert res.facts == {"debug-locks begin": "1", "debug-locks end": "1"}
    # Empty kmemleak reports: the emitter's line break is not content.
    assert res.files == {"kmemleak-begin.txt": "", "kmemleak-end.txt": ""}
    names = ["flexsc", "flexsc_hostile", "kernel", "kml", "sysfuzz", "vtop", "kernel_log"]
    assert [r.name for r in res.runs] == names
    assert all(r.status == 0 for r in res.runs)
    assert res.skips == ["rtlat", "kml::ptrace_attach_racing_exec_never_gets_a_sys_mode_tracee"]


def test_recorded_skips_of_a_board_and_a_failed_binary():
    res = recordings.results("imx6q-sabrelite-test")
    assert res.violations == []
    assert res.skips == ["rtlat", "kml::ptrace_attach_racing_exec_never_gets_a_sys_mode_tracee"]
    res = recordings.results("kml-old-kernel-test")
    assert res.violations == []
    assert [(r.name, r.status) for r in res.runs] == [("kml", 101), ("kernel_log", 0)]
    assert res.run("kml").output.count(" ... FAILED") == 8


def test_recorded_fuzz_run_of_an_older_emitter():
    # Recorded before run_streamed: "run sysfuzz --seconds 120", no line
    # break of the emitter after the output.
    res = recordings.results("vexpress-a9-fuzz-fail")
    assert res.violations == []
    (run,) = res.runs
    assert (run.name, run.command, run.status) == ("sysfuzz", ["--seconds", "120"], 1)
    assert run.output.splitlines()[-1].startswith("sysfuzz: FAIL (seed 160325643885338562)")
