//! Physical page frames for user memory: the RAM after the kernel heap,
//! handed out 4 KiB at a time.
//!
//! Free frames form a list threaded through the frames themselves (reached
//! through the linear map), so the allocator needs no memory of its own.
//! The pool starts after boot has parsed the device tree, which lies near
//! the end of RAM: from then on that memory is free.

use super::LINEAR_OFFSET;
use crate::arch::IrqGuard;
use spin::Mutex;

pub const FRAME_SIZE: usize = 4096;

struct Pool {
    /// Frames in `[next_unused, end)` were never handed out.
    next_unused: usize,
    end: usize,
    /// Physical address of the first freed frame, 0 if none.
    free_head: usize,
    free_count: usize,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    next_unused: 0,
    end: 0,
    free_head: 0,
    free_count: 0,
});

/// Hands `[start, end)` (physical) to the allocator.
pub fn init(start: usize, end: usize) {
    let mut pool = POOL.lock();
    pool.next_unused = start.next_multiple_of(FRAME_SIZE);
    pool.end = end & !(FRAME_SIZE - 1);
}

/// Frames that can still be allocated.
pub fn free_frames() -> usize {
    let _irq = IrqGuard::new();
    let pool = POOL.lock();
    (pool.end - pool.next_unused) / FRAME_SIZE + pool.free_count
}

/// One owned, zero-filled 4 KiB frame of physical memory; returned to the
/// pool when dropped.
#[derive(Debug)]
pub struct Frame {
    pa: usize,
}

impl Frame {
    /// A zeroed frame, or `None` when physical memory is exhausted.
    pub fn alloc() -> Option<Frame> {
        let pa = {
            let _irq = IrqGuard::new();
            let mut pool = POOL.lock();
            if pool.free_head != 0 {
                let pa = pool.free_head;
                // SAFETY: a free frame's first word holds the next free
                // frame; nobody else owns a frame on the free list.
                pool.free_head = unsafe { *((pa + LINEAR_OFFSET) as *const usize) };
                pool.free_count -= 1;
                pa
            } else if pool.next_unused < pool.end {
                pool.next_unused += FRAME_SIZE;
                pool.next_unused - FRAME_SIZE
            } else {
                return None;
            }
        };
        let mut frame = Frame { pa };
        frame.bytes_mut().fill(0);
        Some(frame)
    }

    pub fn pa(&self) -> usize {
        self.pa
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the frame is RAM owned by `self`, mapped read+write at
        // its linear alias in every address space.
        unsafe { core::slice::from_raw_parts((self.pa + LINEAR_OFFSET) as *const u8, FRAME_SIZE) }
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`, and `&mut self` makes this the only view.
        unsafe { core::slice::from_raw_parts_mut((self.pa + LINEAR_OFFSET) as *mut u8, FRAME_SIZE) }
    }
}

impl Drop for Frame {
    fn drop(&mut self) {
        let _irq = IrqGuard::new();
        let mut pool = POOL.lock();
        // SAFETY: the frame is ours until it is on the list; its first word
        // becomes the link.
        unsafe { *((self.pa + LINEAR_OFFSET) as *mut usize) = pool.free_head };
        pool.free_head = self.pa;
        pool.free_count += 1;
    }
}
