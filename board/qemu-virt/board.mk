# QEMU's generic virt machine (qemu-system-arm -M virt), booted the way a
# real board boots its card: U-Boot, here QEMU's firmware (-bios), runs
# distro boot on a virtio disk holding the card image, reads
# extlinux/extlinux.conf from the FAT boot partition, loads the zImage and
# starts it with the kernel command line of that file; the kernel finds the
# root partition by PARTUUID. The other QEMU boards get the kernel and DTB
# from QEMU (-kernel, -dtb) and never read the boot partition.
BOARD_DESCRIPTION := QEMU virt (Cortex-A15; card booted by U-Boot from a virtio disk)
# No device tree on the card: QEMU generates the virt machine's own from
# its options (RAM, CPUs, GIC, virtio-mmio slots), U-Boot runs on it and
# hands it to the kernel (its fdt_addr). Linux has no DTS of this machine,
# and a fixed one would go wrong as soon as a QEMU option changes.
BOARD_DTBS :=
BOARD_DTB :=
# U-Boot is not on the card: Debian's u-boot-qemu (qemu_arm) on the host,
# which make deps (scripts/setup-host.sh) installs.
BOARD_QEMU_UBOOT_PACKAGE := u-boot-qemu
BOARD_QEMU_UBOOT := /usr/lib/u-boot/qemu_arm/u-boot.bin
BOARD_CONSOLE := ttyAMA0
# virt has one UART (the console): the guest tests stream their results
# over a virtio console, hvc0 in the guest.
BOARD_RESULTS_TTY := hvc0
BOARD_QEMU_RESULTS_PORT := virtio-console
BOARD_ROOT_DEVICE := PARTUUID=7274666c-02
BOARD_QEMU_MACHINE := virt
# The card as a virtio-mmio disk (virt's "-drive if=virtio" would be a PCI
# device, and the kernel has no PCI).
BOARD_QEMU_SD_DEVICE := virtio-blk-device
# Cortex-A15 (virt's default for qemu-system-arm, named here): our kernel
# has no LPAE, which the Cortex-A15 does not need. No network card: virt's
# default one (virtio-net-pci) wants its boot ROM, efi-virtio.rom from
# ipxe-qemu, which qemu-system-arm only recommends (make deps installs
# without recommends), and nothing here uses a network.
BOARD_QEMU_ARGS := -cpu cortex-a15 -smp 1 -m 512M -nic none
BOARD_BENCH_SMP := 1
