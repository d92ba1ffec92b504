"""The guest-to-host result protocol: one parser.

The specification is beside its one emitter, in
rootfs/overlay/usr/libexec/rtflex/results.sh (read it first): frames
"rtflex-guest: KEYWORD ARGUMENTS", blocks opened by `run`/`file` and closed
by the matching `exit`/`endfile`, one emitter line break at the end of each
block's payload that the receiver drops. This module follows it;
tests/test_protocol.py checks that the keywords here and the ones the
emitter accepts are the same.
"""

import os
import re

from .board import TOP

PREFIX = "rtflex-guest: "
# Written by the test runner into the kernel log (results.sh).
TESTS_BEGIN_MARKER = "rtflex-guest: tests begin"

EMITTER = os.path.join(TOP, "rootfs", "overlay", "usr", "libexec", "rtflex", "results.sh")

# The keywords of results.sh's grammar: keyword -> (number of one-word
# arguments, whether free text may follow them).
KEYWORDS = {
    "begin": (0, True),         # begin RELEASE
    "cpus": (1, False),         # cpus N
    "args": (0, True),          # args ARGS...
    "rtlat-args": (0, True),    # rtlat-args ARGS...
    "debug-locks": (1, True),   # debug-locks WHEN STATE
    "skip": (1, False),         # skip NAME
    "run": (1, True),           # run NAME [COMMAND...]
    "exit": (2, False),         # exit NAME STATUS
    "file": (1, False),         # file NAME
    "endfile": (1, False),      # endfile NAME
    "error": (0, True),         # error TEXT
    "end": (0, False),          # end
}


class Run:
    """One `run` block: NAME, the COMMAND words, the streamed output and the
    exit status (None: the block never closed)."""

    def __init__(self, name, command):
        self.name = name
        self.command = command
        self.output = ""
        self.status = None

    def __repr__(self):
        return f"Run({self.name!r}, status={self.status!r})"


class Skip:
    """One `skip` frame."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"Skip({self.name!r})"


class Results:
    """What a results stream said, in the terms of the specification."""

    def __init__(self):
        self.release = None         # begin RELEASE
        self.ended = False          # the end frame came
        self.steps = []             # Run and Skip, in stream order
        self.files = {}             # file NAME -> content (byte-exact text)
        self.facts = {}             # cpus, args, rtlat-args, "debug-locks WHEN"
        self.errors = []            # error TEXT
        self.violations = []        # what broke the grammar (protocol errors)

    @property
    def runs(self):
        return [s for s in self.steps if isinstance(s, Run)]

    @property
    def skips(self):
        return [s.name for s in self.steps if isinstance(s, Skip)]

    def run(self, name):
        """The last run called NAME, or None."""
        return next((r for r in reversed(self.runs) if r.name == name), None)


def _split_frame(line):
    """(keyword, argument string) of a frame line, or None."""
    if not line.startswith(PREFIX):
        return None
    keyword, _, rest = line[len(PREFIX):].partition(" ")
    return keyword, rest


def parse(text):
    """Parse a results stream (str) into Results."""
    res = Results()
    lines = text.replace("\r", "").split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the line break that ends the stream's last line
    block = None  # [kind ("run" or "file"), NAME, payload lines, Run or None]
    for n, line in enumerate(lines, 1):
        frame = _split_frame(line)
        if block is not None:
            kind, name, body, run = block
            closing = {"run": "exit", "file": "endfile"}[kind]
            words = frame[1].split(" ") if frame and frame[0] == closing else []
            if words[:1] == [name] and len(words) == (2 if kind == "run" else 1):
                # The payload lines joined: that drops the one line break
                # the emitter added after the payload.
                payload = "\n".join(body)
                if kind == "file":
                    res.files[name] = payload
                else:
                    run.output = payload
                    if re.fullmatch(r"-?\d+", words[1]):
                        run.status = int(words[1])
                    else:
                        res.violations.append(f"line {n}: exit {name}: status {words[1]!r} is not a number")
                block = None
            else:
                body.append(line)
            continue
        if frame is None:
            res.violations.append(f"line {n}: not a frame, outside any block: {line[:120]!r}")
            continue
        keyword, rest = frame
        if keyword not in KEYWORDS:
            res.violations.append(f"line {n}: unknown keyword {keyword!r}")
            continue
        nwords, text_allowed = KEYWORDS[keyword]
        parts = rest.split(" ", nwords) if nwords else [rest]
        words, more = parts[:nwords], (parts[nwords] if len(parts) > nwords else "")
        if len(words) < nwords or "" in words or (more and not text_allowed):
            res.violations.append(f"line {n}: {keyword}: wrong arguments {rest!r}")
            continue
        if keyword == "begin":
            res.release = more
        elif keyword == "end":
            res.ended = True
        elif keyword in ("args", "rtlat-args"):
            res.facts[keyword] = more
        elif keyword == "cpus":
            res.facts["cpus"] = words[0]
        elif keyword == "debug-locks":
            res.facts[f"debug-locks {words[0]}"] = more
        elif keyword == "skip":
            res.steps.append(Skip(words[0]))
        elif keyword == "error":
            res.errors.append(more)
        elif keyword == "run":
            run = Run(words[0], more.split())
            res.steps.append(run)
            block = ["run", words[0], [], run]
        elif keyword == "file":
            block = ["file", words[0], [], None]
        else:  # exit or endfile outside their block
            res.violations.append(f"line {n}: {keyword} {rest} without its opening frame")
    if block is not None:
        kind, name, body, run = block
        res.violations.append(f"{kind} {name}: block not closed at the end of the stream")
        if run is not None:
            run.output = "\n".join(body)
    if (res.steps or res.files or res.facts) and res.release is None:
        res.violations.append("no begin frame")
    return res


def emitter_keywords(path=EMITTER):
    """The keywords the emitter's frame() accepts: its case pattern
    "begin | cpus | ... | end)"."""
    with open(path) as f:
        text = f.read()
    m = re.search(r"^frame\(\) \{\n\tcase \"\$1\" in\n\t([^)\n]*)\) ;;$", text, re.M)
    if not m:
        raise ValueError(f"{path}: no frame() with a case of keywords")
    return [k.strip() for k in m.group(1).split("|")]
