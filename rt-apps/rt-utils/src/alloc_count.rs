//! A counting global allocator, for tests that prove a path does not touch
//! the heap. In the test binary:
//!
//! ```no_run
//! use rt_utils::alloc_count::{heap_ops_during, Counting};
//!
//! #[global_allocator]
//! static ALLOC: Counting = Counting;
//!
//! let n = heap_ops_during(|| { /* the path under test */ });
//! assert_eq!(n, 0);
//! ```
//!
//! It records every allocation, reallocation and deallocation the calling
//! thread makes while [`heap_ops_during`] runs its closure; other threads
//! (tests run in parallel threads of one process) are not counted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The system allocator, counting the calling thread's heap operations
/// while [`heap_ops_during`] tracks them.
#[derive(Debug)]
pub struct Counting;

thread_local! {
    // const-initialised Cells without Drop: accessing them never allocates.
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static HEAP_OPS: Cell<usize> = const { Cell::new(0) };
}

fn note() {
    if TRACKING.try_with(Cell::get).unwrap_or(false) {
        let _ = HEAP_OPS.try_with(|n| n.set(n.get() + 1));
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees carry over; counting has no effect on
// the memory returned.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: forwarded unchanged; the caller upholds alloc's contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: forwarded unchanged; the caller upholds alloc_zeroed's
        // contract.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note();
        // SAFETY: `ptr`/`layout` come from this allocator, i.e. from System.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: `ptr`/`layout` come from this allocator, i.e. from System.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Runs `f` and returns how many heap operations the calling thread made
/// meanwhile. Counts only when [`Counting`] is the global allocator: a test
/// binary should first check that a `Box` counts 2 (alloc and dealloc).
pub fn heap_ops_during(f: impl FnOnce()) -> usize {
    let before = HEAP_OPS.with(Cell::get);
    TRACKING.with(|t| t.set(true));
    f();
    TRACKING.with(|t| t.set(false));
    HEAP_OPS.with(Cell::get) - before
}
