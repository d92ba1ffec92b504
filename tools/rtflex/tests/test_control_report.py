"""The control-loop benchmark's table (control_report.py) from a bench
stream in the shape run-bench-control sends."""

from rtflex import control_report, protocol, report

RUN_OUTPUT = """[run]
command: servo run -p 80 -a 0 -i 1000 -D 10 --dwell=200 {logargs}
cycles: 10000
compute_max_ns: 66000
fault: {fault}
interval_us: 1000
latency_ns: min 27000 avg 36593 max {max}
log_via: {via}
loop_ns: avg 27565 max 70000
overruns: {overruns}
records_lost: {lost}
records_written: 10000
state: run
[cpu]
ticks: 105
seconds: 7
[plant]
plant-sim: ready: /dev/gpiochip2 (gpio-sim.0, label rtflex-plant), position 150, 2000 Hz
plant-sim: done: 20000 steps at 2000 Hz in 10.5 s, {late} late; lag avg 35 us max 54 us
"""

# The log of a path that dropped records has holes that decode as zeros:
# min and avg come from servo's own summary, only p99 from the log.
DECODE = """[decode]
records: 10000
log_via: {via}
missing: 0
latency_ns: min 0 avg 13495 p99 {p99} max {max}
loop_ns: min 20000 avg 27565 p99 60000 max 70000
overruns: {overruns}
"""


def stream(runs):
    """A bench stream with one control_loop run per (via, load, numbers)."""
    text = "rtflex-guest: begin 7.2.13\nrtflex-guest: cpus 1\n"
    for via, load, n in runs:
        name = f"control-{via}-{load}"
        logargs = "" if via == "none" else f"--log=/var/tmp/bench-control.log --log-via={via}"
        body = RUN_OUTPUT.format(logargs=logargs, via=via, **n)
        if via != "none":
            body += DECODE.format(via=via, **n)
        text += (f"rtflex-guest: run {name} control_loop {via} {load}\n\n"
                 f"rtflex-guest: exit {name} 0\n"
                 f"rtflex-guest: file {name}.txt\n{body}\nrtflex-guest: endfile {name}.txt\n")
    return protocol.parse(text + "rtflex-guest: end\n")


def numbers(max_ns, p99=40000, overruns=0, lost=0, late=0, fault="none"):
    return {"max": max_ns, "p99": p99, "overruns": overruns, "lost": lost, "late": late,
            "fault": fault}


def test_one_row_per_run_with_the_ratio_to_the_no_log_run_of_its_load():
    res = stream([("none", "none", numbers(60000)), ("direct", "none", numbers(90000, overruns=2)),
                  ("thread", "none", numbers(63000)),
                  ("none", "sd", numbers(80000)), ("direct", "sd", numbers(9800000, overruns=40))])
    text, failures = report.bench_report(res, "vexpress-a9", 1)
    assert failures == []
    rows = [line for line in text.splitlines() if line.startswith("| ") and "| cycles |" not in line]
    assert rows == [
        "| none | none | 10000 | 27 | 37 | n/a | 60 | 1.00 | 28 | 70 | 150 | 0 | 0 | 0 | run |",
        "| direct | none | 10000 | 27 | 37 | 40 | 90 | 1.50 | 28 | 70 | 150 | 2 | 0 | 0 | run |",
        "| thread | none | 10000 | 27 | 37 | 40 | 63 | 1.05 | 28 | 70 | 150 | 0 | 0 | 0 | run |",
        "| none | sd | 10000 | 27 | 37 | n/a | 80 | 1.00 | 28 | 70 | 150 | 0 | 0 | 0 | run |",
        "| direct | sd | 10000 | 27 | 37 | 40 | 9800 | 122.50 | 28 | 70 | 150 | 40 | 0 | 0 | run |",
    ]
    # Each distinct command once.
    assert "- `servo run -p 80 -a 0 -i 1000 -D 10 --dwell=200 --log=/var/tmp/bench-control.log " \
           "--log-via=direct`" in text
    assert text.count("--log-via=direct`") == 1


def test_a_fault_is_reported_and_a_missing_summary_is_a_failure():
    res = stream([("direct", "sd", numbers(60000, fault="encoder loss"))])
    text, failures = report.bench_report(res, "vexpress-a9", 1)
    assert failures == []
    assert [line for line in text.splitlines() if line.startswith("| direct | sd |")] == [
        "| direct | sd | 10000 | 27 | 37 | 40 | 60 | n/a | 28 | 70 | 150 | 0 | 0 | 0 "
        "| fault: encoder loss |"]
    res = protocol.parse("rtflex-guest: begin 7.2.13\nrtflex-guest: cpus 1\n"
                         "rtflex-guest: run control-direct-sd control_loop direct sd\n\n"
                         "rtflex-guest: exit control-direct-sd 1\n"
                         "rtflex-guest: file control-direct-sd.txt\n[run]\ncommand: servo run\n"
                         "servo: cannot open log\n\nrtflex-guest: endfile control-direct-sd.txt\n"
                         "rtflex-guest: end\n")
    text, failures = report.bench_report(res, "vexpress-a9", 1)
    assert failures == ["control-direct-sd exited with 1", "control-direct-sd: servo printed no summary"]
    assert "| direct | sd | failed |" in text


def test_parts_and_numbers():
    parts = control_report.sections("x\n[run]\na: 1\n[time]\nuser 0.5\n")
    assert parts == {"run": ["a: 1"], "time": ["user 0.5"]}
    assert control_report.stats("min 1 avg 2 p99 3 max 4") == {"min": 1, "avg": 2, "p99": 3, "max": 4}
    assert control_report.key_values(["a: 1", "a: 2", "b: x: y"]) == {"a": "1", "b": "x: y"}


def test_cpu_per_cycle_from_clock_ticks():
    # 0.5 s of CPU in 5 s of 500 us cycles (10000 cycles): 50 us a cycle.
    assert control_report.cpu_per_cycle({"ticks": "50", "seconds": "5"}, "500") == 50
    assert control_report.cpu_per_cycle({"ticks": "x", "seconds": "5"}, "1000") is None
    assert control_report.cpu_per_cycle({}, "1000") is None
    assert control_report.cpu_per_cycle({"ticks": "1", "seconds": "0"}, "1000") is None
