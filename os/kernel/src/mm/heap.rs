//! The kernel heap: `buddy_system_allocator` over a region of RAM right
//! after the kernel image, wrapped to count allocations per hart (tests use
//! the count to prove the probe hit path allocates nothing).

use crate::arch::{self, IrqGuard};
use crate::boot::MAX_HARTS;
use buddy_system_allocator::LockedHeap;
use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicUsize, Ordering};

pub const HEAP_SIZE: usize = 32 << 20;

struct CountingHeap {
    heap: LockedHeap<32>,
    allocs: [AtomicUsize; MAX_HARTS],
}

#[global_allocator]
static HEAP: CountingHeap = CountingHeap {
    heap: LockedHeap::empty(),
    allocs: [const { AtomicUsize::new(0) }; MAX_HARTS],
};

// SAFETY: defers to `LockedHeap`, which is a correct allocator; interrupts
// are masked so a trap handler on this hart cannot deadlock on its lock.
unsafe impl GlobalAlloc for CountingHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _irq = IrqGuard::new();
        self.allocs[arch::hart_id()].fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { self.heap.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _irq = IrqGuard::new();
        // SAFETY: same contract as ours.
        unsafe { self.heap.dealloc(ptr, layout) }
    }
}

/// Allocations made so far on the calling hart.
pub fn allocations_on_this_hart() -> usize {
    HEAP.allocs[arch::hart_id()].load(Ordering::Relaxed)
}

/// Returns the end of the heap region.
pub fn init() -> usize {
    let start = super::sym(super::ekernel);
    // SAFETY: [ekernel, ekernel + HEAP_SIZE) is free RAM that nothing else
    // uses (the device tree sits at the top of RAM).
    unsafe { HEAP.heap.lock().init(start, HEAP_SIZE) };
    start + HEAP_SIZE
}
