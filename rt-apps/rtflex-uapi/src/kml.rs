//! Kernel Mode Linux (patches 0004 and 0005).

/// Auxiliary vector entry with the address of the `[kml]` page of a trusted
/// program (`arch/arm/include/uapi/asm/auxvec.h`): calling it makes a system
/// call without an exception. `getauxval(AT_KML)` is 0 for every other
/// program and on kernels without Kernel Mode Linux.
pub const AT_KML: u32 = 48;
