"""The board tables of docs/boards.md, generated from the board facts.

docs/boards.md (the flashing and first-boot guide) is written by hand
except for blocks between two marker lines, which this module writes from
board/<b>/board.mk (through rtflex.board) and the board's SD card layout
(the genimage.cfg rtflex.generate makes from it):

    <!-- generated: boards ... -->            every board: what boots it,
    <!-- end generated: boards -->            its console, its QEMU machine
    <!-- generated: board NAME ... -->        one board: image, boot loader,
    <!-- end generated: board NAME -->        boot partition, command line,
                                              console, flashing commands

and checks blocks it does not write: a console log recorded from a real
boot of a board, quoted in the guide,

    <!-- recorded console: NAME -->
    <!-- end recorded console: NAME -->

must show the board's current kernel command line (U-Boot's `append:` line,
the kernel's `Kernel command line:`), or it was recorded from another
configuration and has to be recorded again.

`python3 -m rtflex.generate check` reports any difference (drift(),
also in `make test`); `python3 -m rtflex.generate update-docs` rewrites the
generated blocks (update()) and adds a section for a board the guide has
none for yet.
"""

import os
import re

from rtflex.board import TOP, BoardError, board_names, load_board
from rtflex.generate import GenerateError, disk_signature, genimage_cfg

DOC = os.path.join("docs", "boards.md")
# What the guide says to the reader about the generated blocks.
_HOW = "tools/rtflex/boards_doc.py from board.mk; `python3 -m rtflex.generate update-docs` rewrites it"


class DocError(GenerateError):
    """A guide whose marker lines are broken (unpaired, unknown, twice)."""


def _begin(key):
    return f"<!-- generated: {key} ({_HOW}) -->"


def _end(key):
    return f"<!-- end generated: {key} -->"


# ---- facts for the guide ------------------------------------------------------

def console_settings(board):
    """(tty, baud) of the board's serial console, as its kernel command line
    (rtflex.board kernel_cmdline) has them: console=<tty>,<baud>."""
    for word in board.kernel_cmdline:
        m = re.fullmatch(r"console=([^,]+),(\d+)", word)
        if m:
            return m.group(1), int(m.group(2))
    raise BoardError(f"board {board.name}: no console=<tty>,<baud> in its kernel command line "
                     f"{' '.join(board.kernel_cmdline)}")


def _size_kib(text, where):
    """genimage's size or offset (512, 1K, 69K, 4M) in KiB."""
    m = re.fullmatch(r"(\d+)([KMG]?)", text.strip())
    if not m:
        raise DocError(f"{where}: cannot read the size {text!r}")
    value = int(m.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[m.group(2)]
    if value % 1024:
        raise DocError(f"{where}: {text} is not a whole number of KiB")
    return value // 1024


def raw_writes(genimage_text, where="genimage.cfg"):
    """The images an SD card layout writes outside the partition table:
    [(image, offset in KiB)], in layout order (e.g. i.MX6 boot loaders at
    1 KiB). The boot partition's files (e.g. AM57xx's MLO) are not raw."""
    writes = []
    for m in re.finditer(r"^\s*partition\s+(\S+)\s*\{(.*?)^\s*\}", genimage_text, re.M | re.S):
        body = m.group(2)
        if not re.search(r"^\s*in-partition-table\s*=\s*(false|\"false\"|no)\s*$", body, re.M):
            continue
        image = re.search(r'^\s*image\s*=\s*"([^"]+)"', body, re.M)
        offset = re.search(r"^\s*offset\s*=\s*(\S+)", body, re.M)
        if not image or not offset:
            raise DocError(f"{where}: partition {m.group(1)} outside the partition table needs an image "
                           "and an offset")
        writes.append((image.group(1), _size_kib(offset.group(1), where)))
    return writes


def _boot_partition_files(genimage_text):
    """The files of the FAT boot partition (vfat files = {...} and file
    lines), as genimage.cfg names them there."""
    files = []
    for m in re.finditer(r"files\s*=\s*\{([^}]*)\}", genimage_text):
        files += re.findall(r'"([^"]+)"', m.group(1))
    files += re.findall(r"^\s*file\s+(\S+)\s*\{", genimage_text, re.M)
    return files


def boot_partition_offset(genimage_text, where="genimage.cfg"):
    """Where the FAT boot partition (image boot.vfat) starts, in KiB (None:
    the layout has no such partition)."""
    for m in re.finditer(r"^\s*partition\s+(\S+)\s*\{(.*?)^\s*\}", genimage_text, re.M | re.S):
        if re.search(r'^\s*image\s*=\s*"boot.vfat"', m.group(2), re.M):
            offset = re.search(r"^\s*offset\s*=\s*(\S+)", m.group(2), re.M)
            if not offset:
                raise DocError(f"{where}: the boot partition {m.group(1)} has no offset")
            return _size_kib(offset.group(1), where)
    return None


def _kib_text(kib):
    return f"{kib // 1024} MiB" if kib % 1024 == 0 else f"{kib} KiB"


def _boot_loader(board, genimage_text):
    """One line: which boot loader the card has and where."""
    raw = dict(raw_writes(genimage_text, f"board {board.name} layout"))
    if board.uboot_files:
        names = [os.path.basename(f) for f in board.uboot_files]
        where = [f"`{n}` raw at {raw[n]} KiB" if n in raw else f"`{n}` in the FAT boot partition" for n in names]
        configs = sorted({os.path.basename(os.path.dirname(f)) for f in board.uboot_files})
        return (f"Debian `{board.uboot_package}` (U-Boot build `{'`, `'.join(configs)}`): "
                + ", ".join(where))
    if board.uboot_user_files:
        where = [f"`{n}` raw at {raw[n]} KiB" if n in raw else f"`{n}` in the FAT boot partition"
                 for n in board.uboot_user_files]
        return ("**none from Debian**: yours, given as `UBOOT_DIR=` to `make` or written afterwards: "
                + ", ".join(where))
    if getattr(board, "qemu_uboot", ""):
        return f"none on the card: QEMU's firmware is U-Boot (`{board.qemu_uboot}`)"
    return "none: QEMU loads the kernel and device tree itself (`-kernel`, `-dtb`)"


def _root_note(board):
    """How the kernel finds a root= PARTUUID: the MBR disk signature."""
    if not board.root_device.startswith("PARTUUID="):
        return ""
    return f" (partition 2 of the disk whose MBR signature is `{disk_signature(board)}`, whatever the slot)"


def _cell(text):
    return text.replace("|", "\\|")


# ---- the generated blocks ------------------------------------------------------

def overview_block(boards):
    """The table of every board."""
    lines = ["| board | what it is | boot loader on the card | serial console | QEMU |",
             "|---|---|---|---|---|"]
    for b in boards:
        tty, baud = console_settings(b)
        if b.uboot_files:
            loader = f"Debian `{b.uboot_package}`"
        elif b.uboot_user_files:
            loader = "yours (Debian has none)"
        else:
            loader = "none"
        qemu = f"`-M {b.qemu_machine}`" if b.has_qemu else "no model"
        lines.append(f"| [`{b.name}`](#{b.name}) | {_cell(b.description)} | {loader} | `{tty}` {baud} 8N1 | {qemu} |")
    return "\n".join(lines)


def board_block(board, top=TOP):
    """The facts and flashing commands of one board."""
    layout = genimage_cfg(board, top)
    tty, baud = console_settings(board)
    image = f"build/{board.name}/sdcard.img"
    files = _boot_partition_files(layout)
    boot_at = boot_partition_offset(layout, f"board {board.name} layout")
    rows = [
        ("SD card image", f"`{image}` and its block map `{image}.bmap` (`make BOARD={board.name}`)"),
        ("boot loader", _boot_loader(board, layout)),
        ("boot partition (FAT, partition 1" + (f", from {_kib_text(boot_at)})" if boot_at is not None else ")"),
         ", ".join(f"`{f}`" for f in files)),
    ]
    if board.has_uboot and len(board.dtbs) > 1:
        rows.append(("device tree", f"U-Boot picks one of {', '.join(f'`{n}`' for n in board.dtb_names)} "
                                    "by its `$fdtfile` (`fdtdir /` in `extlinux.conf`)"))
    elif board.has_uboot and board.dtbs:
        rows.append(("device tree", f"`{board.dtb_names[0]}`, which U-Boot loads by its `$fdtfile` "
                                    "(`fdtdir /` in `extlinux.conf`)"))
    elif board.dtbs:
        rows.append(("device tree", f"`{os.path.basename(board.dtb)}` (QEMU's `-dtb`)"))
    rows += [
        ("kernel command line", f"`{' '.join(board.kernel_cmdline)}`"
                                + (" (`extlinux/extlinux.conf`)" if board.has_uboot else " (QEMU's `-append`)")),
        ("root file system", f"ext4, partition 2: `root={board.root_device}`" + _root_note(board)),
        ("serial console", f"`{tty}`, {baud} baud, 8N1, no flow control"),
    ]
    if board.has_qemu:
        rows.append(("QEMU", f"`-M {board.qemu_machine}`: `make BOARD={board.name} qemu`"))
    lines = ["| | |", "|---|---|"] + [f"| {k} | {_cell(v)} |" for k, v in rows]
    if not (board.uboot_files or board.uboot_user_files):
        return "\n".join(lines)  # no boot loader on the card: a QEMU board, nothing to flash
    raw_user = [(f, kib) for f, kib in raw_writes(layout, f"board {board.name} layout")
                if f in board.uboot_user_files]
    lines += ["", "```sh",
              f"sudo bmaptool copy {image} /dev/sdX",
              "# or, without bmaptool:",
              f"sudo dd if={image} of=/dev/sdX bs=4M conv=fsync status=progress"]
    if raw_user:
        lines.append("# your boot loader onto a card written without one:")
        lines += [f"sudo dd if={f} of=/dev/sdX bs=1k seek={kib} conv=fsync" for f, kib in raw_user]
    lines.append("```")
    return "\n".join(lines)


def blocks(top=TOP):
    """Every generated block: {key: text}, keys "boards" and "board NAME"."""
    boards = [load_board(n, top) for n in board_names(top)]
    out = {"boards": overview_block(boards)}
    for b in boards:
        out[f"board {b.name}"] = board_block(b, top)
    return out


# ---- reading and writing the guide ---------------------------------------------

_MARK = re.compile(r"^<!-- (end )?(generated|recorded console): ?(.*?)(?: \(.*\))? -->$")


def _split(text, where):
    """The guide as a list of parts: plain text (str) or a marked block
    (kind, key, inner text)."""
    parts, lines, open_block = [], [], None
    for number, line in enumerate(text.splitlines(keepends=True), 1):
        m = _MARK.match(line.rstrip("\n"))
        if not m:
            lines.append(line)
            continue
        end, kind, key = bool(m.group(1)), m.group(2), m.group(3).strip()
        if not end:
            if open_block:
                raise DocError(f"{where}:{number}: {kind} block {key!r} inside the block {open_block[1]!r}")
            parts.append("".join(lines))
            lines, open_block = [line], (kind, key, number)
        else:
            if not open_block or (open_block[0], open_block[1]) != (kind, key):
                raise DocError(f"{where}:{number}: end of a {kind} block {key!r} that is not open")
            lines.append(line)
            parts.append((kind, key, "".join(lines[1:-1]), lines[0], lines[-1]))
            lines, open_block = [], None
    if open_block:
        raise DocError(f"{where}:{open_block[2]}: {open_block[0]} block {open_block[1]!r} has no end line")
    parts.append("".join(lines))
    return parts


def _recorded_problems(key, inner, where, top):
    """A recorded console log must show the board's current command line."""
    try:
        board = load_board(key, top)
    except BoardError as e:
        return [f"{where}: recorded console of {key!r}: {e}"]
    want = " ".join(board.kernel_cmdline)
    problems = []
    for label in ("append: ", "Kernel command line: "):
        seen = [line.split(label, 1)[1].strip() for line in inner.splitlines() if label in line]
        problems += [f"{where}: the recorded console of {key} shows `{label}{s}` but the board's "
                     f"kernel command line is now `{want}`: record it again" for s in seen if s != want]
    return problems


def render(text, top=TOP, where=DOC):
    """TEXT (the guide) with its generated blocks rewritten, a section added
    for each board without one: (new text, names of the boards added).
    Raises DocError for broken markers or a block of a board that does not
    exist."""
    want = blocks(top)
    parts = _split(text, where)
    seen = set()
    out = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
            continue
        kind, key, inner, begin, end = part
        if kind == "recorded console":
            out.append(begin + inner + end)
            continue
        if key not in want:
            raise DocError(f"{where}: generated block {key!r} is of no board (boards: "
                           f"{', '.join(board_names(top))}): remove its section by hand")
        if key in seen:
            raise DocError(f"{where}: generated block {key!r} appears twice")
        seen.add(key)
        out.append(f"{_begin(key)}\n{want[key]}\n{_end(key)}\n")
    result = "".join(out)
    if "boards" not in seen:
        raise DocError(f"{where}: no `{_begin('boards')}` block (the table of all boards)")
    added = []
    for key in want:
        if key not in seen:
            name = key.split(" ", 1)[1]
            added.append(name)
            result = (result.rstrip("\n") + f"\n\n## {name}\n\nNo flashing guide for this board yet.\n\n"
                      + f"{_begin(key)}\n{want[key]}\n{_end(key)}\n")
    return result, added


def drift(top=TOP):
    """Problems of the committed guide: generated blocks that differ from
    what the facts give, missing or extra blocks, stale recorded consoles."""
    path = os.path.join(top, DOC)
    if not os.path.isfile(path):
        return [f"{DOC} missing (the flashing guide with the board tables)"]
    with open(path) as f:
        text = f.read()
    try:
        new, added = render(text, top)
        problems = [f"{DOC}: no section for board {name}: `python3 -m rtflex.generate update-docs` "
                    "adds one with its table; then write its guide" for name in added]
        for part in _split(text, DOC):
            if not isinstance(part, str) and part[0] == "recorded console":
                problems += _recorded_problems(part[1], part[2], DOC, top)
    except (DocError, BoardError) as e:
        return [str(e)]
    if new != text and not added:
        problems.insert(0, f"{DOC}: its board tables differ from board/*/board.mk: run "
                           "`python3 -m rtflex.generate update-docs` (PYTHONPATH=tools)")
    return problems


def update(top=TOP):
    """Rewrite the guide's generated blocks. Returns True if it changed."""
    path = os.path.join(top, DOC)
    with open(path) as f:
        text = f.read()
    new, _ = render(text, top)
    if new == text:
        return False
    with open(path, "w") as f:
        f.write(new)
    return True
