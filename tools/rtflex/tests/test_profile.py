"""The instruction profile's parsers and arithmetic (tools/rtflex/profile.py)."""

import shutil

import pytest

from rtflex import profile

SYSTEM_MAP = """\
c0008000 T stext
c0100000 T vector_swi
c0100040 t ret_fast_syscall
c0200000 D some_data
c0300000 T flexsc_wait
"""

MAPS = """\
00400000-00470000 r-xp 00000000 b3:02 129        /usr/bin/flexsc-bench
00470000-00472000 r--p 00070000 b3:02 129        /usr/bin/flexsc-bench
b6e00000-b6f00000 r-xp 00000000 b3:02 607        /usr/lib/arm-linux-gnueabihf/libc.so.6
beb6c000-beb6e000 r-xp 00000000 00:00 0          [vdso]
"""


def test_counts_maps_and_symbols_parse():
    assert profile.parse_counts("c0100000 5 10\n400010 3 2\n") == [(0xc0100000, 5, 10), (0x400010, 3, 2)]
    with pytest.raises(ValueError, match="line 2"):
        profile.parse_counts("c0100000 5 10\nc0100000 5\n")
    maps = profile.parse_maps(MAPS)
    assert maps == [(0x400000, 0x470000, 0, "/usr/bin/flexsc-bench"),
                    (0xb6e00000, 0xb6f00000, 0, "/usr/lib/arm-linux-gnueabihf/libc.so.6"),
                    (0xbeb6c000, 0xbeb6e000, 0, "[vdso]")]
    k = profile.Symbols.from_system_map(SYSTEM_MAP)
    # Functions only (the data symbol is not one); a function runs up to the next.
    assert [k.name(a) for a in (0xc0100000, 0xc010003f, 0xc0100040, 0xc0250000, 0xc0300004)] == \
        ["vector_swi", "vector_swi", "ret_fast_syscall", "ret_fast_syscall", "flexsc_wait"]
    assert k.name(0xc0000000) is None
    u = profile.Symbols.from_nm("00001000 T main\n00002000 t helper\n00003000 r table\n")
    assert (u.name(0x1800), u.name(0x2004), u.name(0x3004)) == ("main", "helper", "helper")


def test_instructions_by_function_and_the_difference_per_call():
    kernel = profile.Symbols.from_system_map(SYSTEM_MAP)
    maps = profile.parse_maps(MAPS)
    bench = profile.Symbols.from_nm("00001000 T flexsc::FlexSc::claim\n00002000 T main\n")

    def user(path):
        return bench if path.endswith("flexsc-bench") else profile.Symbols([])

    # Block instructions x executions, per function; an unmapped user
    # address and a file without symbols are named as such.
    counts = [(0xc0100000, 4, 1000), (0xc0100040, 2, 1000), (0xc0300010, 10, 1000),
              (0x401008, 5, 2000), (0x402000, 3, 10), (0xb6e00100, 7, 1), (0x10000, 1, 1)]
    a = profile.by_function(counts, kernel, maps, user)
    assert a == {"k:vector_swi": 4000, "k:ret_fast_syscall": 2000, "k:flexsc_wait": 10000,
                 "flexsc-bench:flexsc::FlexSc::claim": 10000, "flexsc-bench:main": 30,
                 "libc.so.6:?": 7, "?": 1}
    # The run without the FlexSC part: boot and the direct rows cancel out.
    b = profile.by_function([(0xc0100000, 4, 1000), (0xc0100040, 2, 1000), (0x402000, 3, 10)],
                            kernel, maps, user)
    d = profile.difference(a, b)
    assert d["k:vector_swi"] == 0 and d["k:flexsc_wait"] == 10000
    text = profile.report(d, 1000, "FlexSC run-on-wait", "flexsc-bench --calls=getpid")
    lines = text.splitlines()
    assert "1000 calls: **20.0 instructions per call** (kernel 10.0, user space 10.0)." in lines
    rows = [line for line in lines if line.startswith("| ") and "`" in line]
    # Largest first, ties by name; zero rows last.
    assert rows[:2] == ["| 10.0 | 50.0% | `flexsc-bench:flexsc::FlexSc::claim` |",
                        "| 10.0 | 50.0% | `k:flexsc_wait` |"]


def test_rust_symbols_are_demangled_when_llvm_cxxfilt_is_there():
    names = ["k:_RNvMs4_CslpZBnN56Twf_6flexscNtB5_7Context8complete", "k:vector_swi", "?"]
    # Without the tool the names stay as they are.
    assert profile.demangled(names, tools=("no-such-cxxfilt",)) == {n: n for n in names}
    d = profile.demangled(names)
    if shutil.which("llvm-cxxfilt-19") or shutil.which("llvm-cxxfilt"):
        assert d[names[0]] == "k:<flexsc::Context>::complete"
    assert d["k:vector_swi"] == "k:vector_swi" and d["?"] == "?"
