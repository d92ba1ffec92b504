#!/usr/bin/env python3
"""Checks rtflex-uapi against the patched kernel tree (make check-uapi).

1. Every constant, structure size and alignment, field offset and field size
   of the crate is a C `_Static_assert` (printed by the crate's example
   `kernel_header_checks`), compiled for ARM against the patched kernel's
   UAPI headers: linux/flexsc.h, asm/auxvec.h, asm/stat.h,
   linux/time_types.h, linux/sched.h, and the system call numbers generated
   from arch/arm/tools/syscall.tbl by the kernel's own scripts/syscallhdr.sh.
2. Nothing our patches add to a UAPI header or to syscall.tbl is left out:
   every macro a patch defines in a uapi/ header, every member of every
   structure it adds there and every system call it adds must be named by
   a check (so a new constant or field fails until the crate has it).
3. The crate's FlexSC allow-list equals the kernel's (kernel/flexsc/allow.rs).

Usage: check-kernel-headers.py --linux-src DIR [--patches DIR] [--cc CC]
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))

# Patched-tree header -> where the C file includes it from.
HEADERS = {
    "include/uapi/linux/flexsc.h": "linux/flexsc.h",
    "include/uapi/linux/sched.h": "linux/sched.h",
    "include/uapi/linux/time_types.h": "linux/time_types.h",
    "arch/arm/include/uapi/asm/auxvec.h": "asm/auxvec.h",
    "arch/arm/include/uapi/asm/stat.h": "asm/stat.h",
}

# Macros our patches add to UAPI headers that are not user-space ABI.
NOT_ABI = {
    # Sizes the kernel's own copy of the auxiliary vector (mm->saved_auxv).
    "AT_VECTOR_SIZE_ARCH": "kernel-internal",
}


def fail(msg):
    print(f"check-uapi: FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


def example(*args):
    cmd = ["cargo", "run", "--quiet", "--locked", "-p", "rtflex-uapi",
           "--example", "kernel_header_checks", "--", *args]
    r = subprocess.run(cmd, cwd=TOP, capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"{' '.join(cmd)}:\n{r.stderr}")
    return r.stdout


def patch_additions(patch_dir):
    """What the patch series adds: UAPI macros, UAPI structures with their
    members, and system calls (name -> number)."""
    macros, structs, syscalls = set(), {}, {}
    patches = sorted(f for f in os.listdir(patch_dir) if f.endswith(".patch"))
    if not patches:
        fail(f"no patches in {patch_dir}")
    for name in patches:
        path = None
        struct = None
        with open(os.path.join(patch_dir, name), encoding="utf-8") as f:
            for line in f:
                m = re.match(r"\+\+\+ b/(\S+)", line)
                if m:
                    path, struct = m.group(1), None
                    continue
                if path is None or not line.startswith("+"):
                    continue
                added = line[1:]
                if path.endswith("arch/arm/tools/syscall.tbl"):
                    m = re.match(r"(\d+)\s+\w+\s+(\w+)", added)
                    if m:
                        syscalls[m.group(2)] = int(m.group(1))
                    continue
                if "/uapi/" not in path or not path.endswith(".h"):
                    continue
                m = re.match(r"#define\s+(\w+)", added)
                if m and not m.group(1).startswith("_UAPI_") and not m.group(1).endswith("_H"):
                    macros.add(m.group(1))
                m = re.match(r"struct\s+(\w+)\s*\{", added)
                if m:
                    struct = structs.setdefault(m.group(1), set())
                    continue
                if struct is not None:
                    if added.startswith("}"):
                        struct = None
                        continue
                    m = re.match(r"\s*[\w ]+?\s+(\w+)\s*(\[[^\]]*\])?\s*;", added)
                    if m:
                        struct.add(m.group(1))
    return macros, structs, syscalls


def kernel_allow_list(linux_src):
    path = os.path.join(linux_src, "kernel/flexsc/allow.rs")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"const ALLOWED: &\[\(u32, &str\)\] = &\[(.*?)\n\];", text, re.S)
    if not m:
        fail(f"no ALLOWED table in {path}")
    return sorted((int(n), s) for n, s in re.findall(r'\((\d+),\s*"(\w+)"\)', m.group(1)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--linux-src", required=True, help="the patched kernel tree")
    ap.add_argument("--patches", default=os.path.join(TOP, "kernel/patches/linux"))
    ap.add_argument("--cc", default="arm-linux-gnueabihf-gcc")
    a = ap.parse_args()
    src = a.linux_src
    if not os.path.isfile(os.path.join(src, "arch/arm/tools/syscall.tbl")):
        fail(f"{src} is not a kernel tree (run 'make kernel-source')")
    if shutil.which(a.cc) is None:
        fail(f"{a.cc} not found: run 'make deps'")

    checks = example("c")
    with tempfile.TemporaryDirectory(prefix="check-uapi.") as tmp:
        inc = os.path.join(tmp, "include")
        for rel, dest in HEADERS.items():
            os.makedirs(os.path.dirname(os.path.join(inc, dest)), exist_ok=True)
            shutil.copy(os.path.join(src, rel), os.path.join(inc, dest))
        subprocess.run(["sh", os.path.join(src, "scripts/syscallhdr.sh"), "--abis", "common,eabi",
                        os.path.join(src, "arch/arm/tools/syscall.tbl"),
                        os.path.join(inc, "unistd-eabi.h")], check=True)
        c_file = os.path.join(tmp, "checks.c")
        with open(c_file, "w", encoding="utf-8") as f:
            f.write(checks)
        r = subprocess.run([a.cc, "-std=gnu11", "-fsyntax-only", "-Werror", "-I", inc, c_file],
                           capture_output=True, text=True)
        if r.returncode != 0:
            fail(f"the crate differs from the kernel headers in {src}:\n{r.stderr}")

    macros, structs, syscalls = patch_additions(a.patches)
    missing = [m for m in sorted(macros) if m not in NOT_ABI and not re.search(rf"\b{m}\b", checks)]
    for s, members in sorted(structs.items()):
        missing += [f"struct {s}.{m}" for m in sorted(members)
                    if f"offsetof(struct {s}, {m})" not in checks]
    missing += [f"system call {n} ({nr})" for n, nr in sorted(syscalls.items())
                if f"__NR_{n} ==" not in checks]
    if missing:
        fail("added by kernel/patches but not in rtflex-uapi (or its checks): " + ", ".join(missing))
    if not macros or not structs or not syscalls:
        fail(f"found nothing our patches add in {a.patches} (macros {len(macros)}, "
             f"structures {len(structs)}, system calls {len(syscalls)})")

    kernel = kernel_allow_list(src)
    ours = sorted((int(n), s) for n, s in (l.split() for l in example("allow-list").splitlines()))
    if kernel != ours:
        only_k = sorted(set(kernel) - set(ours))
        only_o = sorted(set(ours) - set(kernel))
        fail(f"FlexSC allow-list differs from {src}/kernel/flexsc/allow.rs: "
             f"only in the kernel {only_k}, only in rtflex-uapi {only_o}")

    n = checks.count("_Static_assert")
    print(f"check-uapi: rtflex-uapi matches {src}: {n} static checks, "
          f"{len(macros)} UAPI macros, {len(structs)} structures, {len(syscalls)} system calls "
          f"added by the patches covered, allow-list of {len(kernel)} calls equal")


if __name__ == "__main__":
    main()
