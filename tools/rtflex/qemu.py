"""The QEMU command line of a board: one function for the guest runner
(test, compare, bench, fuzz, shell) and for Buildroot's start-qemu.sh
(`python3 -m rtflex qemu-command`, which prints it shell-quoted)."""

import os
import subprocess

# Guest time follows the instruction count: 2^3 ns = 8 ns per instruction,
# and an idle guest skips ahead instead of waiting (sleep=off).
ICOUNT = "shift=3,sleep=off"

# Modes of the guest (rtflex.mode= on the kernel command line; rcS runs the
# matching /usr/libexec/rtflex/run-* script). "shell" boots to a console.
MODES = ("test", "compare", "bench", "fuzz", "lab", "shell")


def with_smp(qemu_args, smp):
    """QEMU_ARGS with "-smp SMP" instead of the board's CPU count (if SMP)."""
    if not smp:
        return list(qemu_args)
    out = []
    skip = False
    for i, a in enumerate(qemu_args):
        if skip:
            skip = False
            continue
        if a == "-smp":
            skip = i + 1 < len(qemu_args)
            continue
        if a.startswith("-smp="):
            continue
        out.append(a)
    return out + ["-smp", str(smp)]


def vcpus(qemu_args):
    """The vCPU count that QEMU_ARGS give (-smp N or -smp N,...; 1 without
    -smp, QEMU's default)."""
    count = 1
    for i, a in enumerate(qemu_args):
        value = None
        if a == "-smp" and i + 1 < len(qemu_args):
            value = qemu_args[i + 1]
        elif a.startswith("-smp="):
            value = a[len("-smp="):]
        if value is not None:
            first = value.split(",")[0]
            count = int(first.split("=")[1] if first.startswith("cpus=") else first)
    return count


def sd_card(board, sdcard):
    """QEMU options that put SDCARD in the board's SD slot: if=sd, or the
    sd-card device the board names (machines that wire no if=sd drive)."""
    if board.qemu_sd_device:
        return ["-drive", f"if=none,id=sdcard,format=raw,file={sdcard}",
                "-device", f"{board.qemu_sd_device},drive=sdcard"]
    return ["-drive", f"if=sd,format=raw,file={sdcard}"]


def kernel_cmdline(board, mode="shell", skip=(), fuzz_seconds=None, fuzz_seed=None, append=(), lab=None):
    """The kernel command line of a boot in MODE: the board's own, then
    rtflex.mode, the results port and the mode's parameters (the guest
    scripts read them from /proc/cmdline; LAB: the lab runner's options,
    name -> value, as rtflex.lab_NAME=VALUE for run-lab), then APPEND."""
    words = list(board.kernel_cmdline)
    if mode != "shell":
        words += [f"rtflex.mode={mode}", f"rtflex.results={board.results_tty}"]
        skips = list(board.guest_test_skip) + list(skip)
        if mode == "test" and skips:
            words.append("rtflex.skip=" + ",".join(skips))
        if mode == "fuzz":
            if fuzz_seconds is None:
                raise ValueError("fuzz mode needs fuzz_seconds")
            words.append(f"rtflex.fuzz_seconds={fuzz_seconds}")
            if fuzz_seed is not None:
                words.append(f"rtflex.fuzz_seed={fuzz_seed}")
        if mode == "lab":
            for name, value in (lab or {}).items():
                if value is not None and value != "":
                    if any(c.isspace() for c in str(value)):
                        raise ValueError(f"lab option {name}: {value!r} has white space")
                    words.append(f"rtflex.lab_{name}={value}")
    return words + list(append)


def results_port(board, results):
    """QEMU options that write the guest's results port into the file
    RESULTS (None: the port goes nowhere), as the board carries it: a
    serial port, or a virtio console (hvc0 in the guest)."""
    if board.qemu_results_port == "virtio-console":
        if not results:
            return []
        return ["-chardev", f"file,id=results,path={results}",
                "-device", "virtio-serial-device", "-device", "virtconsole,chardev=results"]
    return ["-serial", f"file:{results}" if results else "null"]


def qemu_command(board, kernel, dtb, sdcard, mode="shell", results=None, smp=None, icount=True,
                 monitor=None, skip=(), append=(), fuzz_seconds=None, fuzz_seed=None, card_cmdline=None,
                 lab=None, plugin=None):
    """The qemu-system-arm command (a list) that boots BOARD with KERNEL,
    DTB and the SD card image SDCARD.

    shell: an interactive console on stdio (QEMU's monitor with Ctrl-a c),
    the results port unused, the image writable. Other modes: the console
    on stdout, the results port into the file RESULTS, -snapshot (the image
    is never changed), MONITOR (a unix socket path) or no QEMU monitor.
    ICOUNT (guest time from the instruction count) is on unless the caller
    turns it off (the latency lab and the benchmarks on several vCPUs, see
    use_icount).

    A board that QEMU boots through U-Boot (BOARD_QEMU_UBOOT) gets U-Boot as
    its firmware and no kernel, DTB or command line: U-Boot boots the card,
    KERNEL and DTB are not used, and the kernel command line is the one in
    the card's extlinux.conf, the board's own unless CARD_CMDLINE (a list of
    words) says the card carries another (tools/rtflex/uboot.py writes
    one). A run whose command line the card does not carry is refused.
    PLUGIN: (path of the tbcount TCG plugin, file it writes its counts to)."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r} (modes: {', '.join(MODES)})")
    if not board.has_qemu:
        raise ValueError(f"board {board.name} has no QEMU model")
    cmdline = kernel_cmdline(board, mode, skip, fuzz_seconds, fuzz_seed, append, lab)
    cmd = ["qemu-system-arm"] + with_smp(board.qemu_args, smp)
    if board.qemu_uboot:
        carried = list(board.kernel_cmdline if card_cmdline is None else card_cmdline)
        if carried != cmdline:
            raise ValueError(f"board {board.name} boots through U-Boot, which takes the kernel command line "
                             f"from the card's extlinux.conf: this run needs '{' '.join(cmdline)}' there, "
                             f"the card has '{' '.join(carried)}' (rtflex.uboot.card_for_boot makes such a card)")
        cmd += ["-bios", board.qemu_uboot]
        cmd += sd_card(board, sdcard)
    else:
        cmd += ["-kernel", kernel, "-dtb", dtb]
        cmd += sd_card(board, sdcard)
        cmd += ["-append", " ".join(cmdline)]
    cmd += ["-no-reboot", "-display", "none"]
    if mode == "shell":
        console, port = ["-serial", "mon:stdio"], results_port(board, None)
        if icount:
            cmd += ["-icount", ICOUNT]
    else:
        if not results:
            raise ValueError(f"mode {mode} needs a results file")
        cmd += ["-snapshot", "-monitor", f"unix:{monitor},server,nowait" if monitor else "none"]
        if icount:
            cmd += ["-icount", ICOUNT]
        console, port = ["-serial", "stdio"], results_port(board, results)
    if plugin:
        cmd += ["-plugin", f"{plugin[0]},out={plugin[1]}"]
    # QEMU's serial ports in order; the console is the first one unless the
    # board says otherwise (i.MX6: UART2, ttymxc1, is QEMU's second).
    cmd += port + console if board.qemu_console_serial == 2 else console + port
    return cmd


def use_icount(choice, smp):
    """Whether a lab or bench run uses -icount: CHOICE "on" or "off", or "auto": on
    for one vCPU, off for several. With several vCPUs under -icount QEMU
    runs them one after the other in one host thread, and stop_machine()
    (the clocksource switch at boot, fix_kernmem_perms and mark_rodata_ro
    after the root mount) waits for a vCPU that is inside its tick
    interrupt and rarely gets its turn: vexpress-a15 -smp 2 hung there in
    5 of 5 boots without isolcpus=1 and spent 307 s and 768 s of guest time
    in the two later calls with it; sabrelite -smp 4 stalled after the
    root mount. Without -icount (MTTCG: one host thread per vCPU) the same
    image boots in 10-23 s, and its latencies are host-timed."""
    if choice not in ("auto", "on", "off"):
        raise ValueError(f"icount: {choice!r} is not auto, on or off")
    return choice == "on" or (choice == "auto" and smp == 1)


def dtb_for_qemu(board, dtb, out_dir, smp=None):
    """The DTB to boot under QEMU: DTB itself, or a copy in OUT_DIR that
    the board's facts change for QEMU (the image's own DTB is left as it
    is; needs fdtget/fdtput from device-tree-compiler):

    - BOARD_QEMU_SERIAL_NO_DMA: no DMA on those serial ports (DT aliases).
      QEMU has no model of the i.MX6 SDMA engine, so the kernel's DMA
      transmits on a non-console i.MX UART never complete. Only the results
      port is affected (the console never uses DMA).
    - BOARD_QEMU_DT_CPUS_FROM_SMP: only the CPUs QEMU has, SMP (default:
      the board's -smp), the others' /cpus/cpu@N nodes removed."""
    cpus = vcpus(with_smp(board.qemu_args, smp)) if board.qemu_dt_cpus_from_smp else None
    if not board.qemu_serial_no_dma and cpus is None:
        return dtb
    out = os.path.join(out_dir, "qemu-" + os.path.basename(dtb))
    os.makedirs(out_dir, exist_ok=True)
    with open(dtb, "rb") as src, open(out, "wb") as dst:
        dst.write(src.read())
    for alias in board.qemu_serial_no_dma:
        node = subprocess.run(["fdtget", "-ts", out, "/aliases", alias], check=True,
                              capture_output=True, text=True).stdout.strip()
        for prop in ("dmas", "dma-names"):
            subprocess.run(["fdtput", "-d", out, node, prop], check=True)
    if cpus is not None:
        nodes = subprocess.run(["fdtget", "-l", out, "/cpus"], check=True, capture_output=True,
                               text=True).stdout.split()
        others = [n for n in nodes if not n.startswith("cpu@")]
        if others:
            raise ValueError(f"{dtb}: /cpus has {', '.join(others)}, which may name CPUs: "
                             "cannot remove CPUs from it")
        described = sorted(nodes, key=lambda n: int(n.split("@")[1], 16))
        if cpus > len(described):
            raise ValueError(f"{dtb} describes {len(described)} CPUs, QEMU is given {cpus}")
        for node in described[cpus:]:
            subprocess.run(["fdtput", "-r", out, f"/cpus/{node}"], check=True)
    return out
