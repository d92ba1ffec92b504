# The latency lab's kernel variants (docs/latency-lab.md), added to those
# of kernel/kernel.mk the same way (make KERNEL_VARIANT=<name> ...: the
# same sources and patches, these fragments merged after LINUX_FRAGMENTS,
# built in build/kernel-<name>/). make lab compares them with the normal
# kernel ("rt"). (A file of its own: the normal kernel's build depends on
# kernel/kernel.mk, and these variants change nothing in it.)
#   rt-nofeatures  FlexSC, Kernel Mode Linux and vaddr_to_paddr off
#   nonrt          PREEMPT_VOLUNTARY instead of PREEMPT_RT
# They are kernels for measuring, not for the guest test suite
# (make KERNEL_VARIANT=rt-nofeatures test fails the FlexSC/KML tests by
# design). Check their configurations in seconds with
# make KERNEL_VARIANT=<name> kernel-config.
LAB_KERNEL_VARIANTS := rt-nofeatures nonrt
KERNEL_VARIANTS += $(LAB_KERNEL_VARIANTS)
LINUX_VARIANT_FRAGMENTS_rt-nofeatures := $(RTFLEX_KERNEL_DIR)/configs/rt-nofeatures.config
LINUX_VARIANT_FRAGMENTS_nonrt := $(RTFLEX_KERNEL_DIR)/configs/nonrt.config
