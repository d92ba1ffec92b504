"""rtflex: the host tool of the rtflex project.

One package for what the host does around an image: board and kernel
facts (board) and the files derived from them (generate), the QEMU command
line of a board (qemu), booting a guest and talking to it (runner, guest),
the guest-to-host result protocol (protocol; its specification is beside
its emitter, rootfs/overlay/usr/libexec/rtflex/results.sh), the
kernel-problem patterns shared with the guest tests (problems), the
judgement of a run (verdict), reports (report) and the SD card image
checks (image).

Run it as ``python3 -m rtflex <command> --help`` with ``tools/`` on
PYTHONPATH, or through ``scripts/rtflex``. Standard library only; its
tests (tests/, pytest) run in ``make test``.
"""
