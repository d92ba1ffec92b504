"""Instruction profile of a FlexSC path (make profile, docs/flexsc-bench.md).

The guest runs `flexsc-bench --calls=getpid --batches=B --batch-calls=N`
for one FlexSC protocol twice, in two boots under -icount with the tbcount
QEMU plugin (tools/qemu-plugins/tbcount.c), which counts the instructions
executed per translation block: once with FlexSC and once with
--direct-only. The difference of the two counts is what the N FlexSC calls
cost (boot, the direct rows and the rest cancel out, to a few instructions
per call); divided by N it is the instructions per call, named by function:
kernel addresses with the kernel's System.map, user addresses with the
process's mappings (sent by the guest) and the symbols of the mapped files
in the root file system tree.
"""

import bisect
import collections
import re
import subprocess

KERNEL_BASE = 0xc0000000

MAPS_LINE = re.compile(r"([0-9a-f]+)-([0-9a-f]+) r-xp ([0-9a-f]+) \S+ \d+\s+(\S+)$")


def parse_counts(text):
    """The plugin's output: a list of (vaddr, instructions, executions)."""
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if len(parts) != 3:
            raise ValueError(f"tbcount line {n}: {line!r} is not 'VADDR INSNS EXECUTIONS'")
        rows.append((int(parts[0], 16), int(parts[1]), int(parts[2])))
    return rows


def parse_maps(text):
    """The executable mappings of /proc/PID/maps: (start, end, offset, path)."""
    maps = []
    for line in text.splitlines():
        m = MAPS_LINE.match(line.strip())
        if m:
            maps.append((int(m[1], 16), int(m[2], 16), int(m[3], 16), m[4]))
    return maps


class Symbols:
    """Function start addresses and names; name(addr) is the function at or
    below ADDR (None below the first)."""

    def __init__(self, pairs):
        pairs = sorted(pairs)
        self.addrs = [a for a, _ in pairs]
        self.names = [n for _, n in pairs]

    def name(self, addr):
        i = bisect.bisect_right(self.addrs, addr) - 1
        return self.names[i] if i >= 0 else None

    @classmethod
    def from_system_map(cls, text):
        return cls([(int(a, 16), n) for a, t, n, *_ in (line.split() for line in text.splitlines())
                    if t in "tTwW"])

    @classmethod
    def from_nm(cls, text):
        pairs = []
        for line in text.splitlines():
            parts = line.split(None, 2)
            if len(parts) == 3 and parts[1] in "tTwW":
                pairs.append((int(parts[0], 16), parts[2]))
        return cls(pairs)

    @classmethod
    def of_file(cls, path):
        """The functions of an ELF file (its symbol table, else its dynamic
        symbols; none if it has neither or nm fails)."""
        for dyn in ([], ["-D"]):
            r = subprocess.run(["nm", "-C", "--defined-only", *dyn, path], capture_output=True, text=True)
            if r.returncode == 0 and r.stdout.strip():
                return cls.from_nm(r.stdout)
        return cls([])


def by_function(counts, kernel, maps, user_symbols):
    """Instructions per function name: kernel addresses as k:NAME, user
    addresses as FILE:NAME (FILE the mapped file's name) through MAPS and
    user_symbols(path) -> Symbols; anything else as '?'."""
    total = collections.Counter()
    for vaddr, insns, executions in counts:
        if vaddr >= KERNEL_BASE:
            name = f"k:{kernel.name(vaddr) or '?'}"
        else:
            name = "?"
            for start, end, offset, path in maps:
                if start <= vaddr < end:
                    sym = user_symbols(path).name(vaddr - start + offset)
                    name = f"{path.rsplit('/', 1)[-1]}:{sym or '?'}"
                    break
        total[name] += insns * executions
    return total


def demangled(names, tools=("llvm-cxxfilt-19", "llvm-cxxfilt")):
    """NAMES with Rust symbols (_R..., the kernel's System.map has them
    mangled) demangled by LLVM's cxxfilt, when there is one; a dict."""
    mangled = sorted({n.split(":", 1)[1] for n in names if ":_R" in n})
    out = {n: n for n in names}
    if not mangled:
        return out
    for tool in tools:
        try:
            r = subprocess.run([tool], input="\n".join(mangled) + "\n", capture_output=True, text=True)
        except FileNotFoundError:
            continue
        plain = r.stdout.splitlines()
        if r.returncode == 0 and len(plain) == len(mangled):
            table = dict(zip(mangled, plain))
            for n in names:
                prefix, _, sym = n.partition(":")
                if sym in table:
                    out[n] = f"{prefix}:{table[sym]}"
            break
    return out


def difference(a, b):
    """A minus B per name."""
    return {k: a.get(k, 0) - b.get(k, 0) for k in set(a) | set(b)}


def report(diff, calls, title, command, top=40):
    """Markdown: total and per-call instructions, then the TOP functions by
    instructions per call (kernel and user space apart in the totals)."""
    total = sum(diff.values())
    kernel = sum(v for k, v in diff.items() if k.startswith("k:"))
    lines = [
        f"## {title}",
        "",
        f"`{command}`",
        "",
        f"{calls} calls: **{total / calls:.1f} instructions per call** "
        f"(kernel {kernel / calls:.1f}, user space {(total - kernel) / calls:.1f}).",
        "",
        "| instructions per call | share | function |",
        "|---:|---:|---|",
    ]
    rows = sorted(diff.items(), key=lambda kv: (-abs(kv[1]), kv[0]))[:top]
    names = demangled([name for name, _ in rows])
    for name, v in rows:
        share = 100 * v / total if total else 0.0
        lines.append(f"| {v / calls:.1f} | {share:.1f}% | `{names[name]}` |")
    return "\n".join(lines) + "\n"
