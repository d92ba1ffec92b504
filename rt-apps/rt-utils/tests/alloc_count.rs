//! The counting allocator counts exactly the calling thread's heap
//! operations inside `heap_ops_during`.

use rt_utils::alloc_count::{heap_ops_during, Counting};

#[global_allocator]
static ALLOC: Counting = Counting;

#[test]
fn counts_this_threads_operations_only_while_tracking() {
    let n = heap_ops_during(|| drop(std::hint::black_box(Box::new(5u64))));
    assert_eq!(n, 2, "alloc + dealloc");
    let mut v: Vec<u8> = Vec::with_capacity(1);
    let n = heap_ops_during(|| v.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 9]));
    assert_eq!(n, 1, "one realloc");
    assert_eq!(heap_ops_during(|| v[0] = 7), 0);
    // Another thread's allocations are not ours.
    let t = std::thread::spawn(|| {
        for _ in 0..100 {
            drop(std::hint::black_box(vec![0u8; 64]));
        }
    });
    let n = heap_ops_during(|| std::thread::sleep(std::time::Duration::from_millis(20)));
    t.join().unwrap();
    assert_eq!(n, 0);
}
