//! The address -> probe point table the hit path reads without a lock.
//!
//! Open addressing over a fixed array of atomic pointers, sized at `init`.
//! Writers (registration, under the registry lock) publish a fully built
//! point with one release store; readers load it as published pointers
//! (`arch::order::load_published`). Removed entries become tombstones so
//! lookups keep probing past them.

use crate::point::ProbePoint;
use alloc::boxed::Box;
use core::sync::atomic::{AtomicPtr, Ordering};

pub(crate) struct Table {
    buckets: Box<[AtomicPtr<ProbePoint>]>,
    mask: usize,
}

/// Marks a removed entry. Never dereferenced.
fn tombstone() -> *mut ProbePoint {
    core::ptr::dangling_mut()
}

impl Table {
    /// A table of at least `capacity` buckets (rounded up to a power of 2).
    pub fn new(capacity: usize) -> Self {
        let n = capacity.next_power_of_two().max(16);
        let buckets = (0..n)
            .map(|_| AtomicPtr::new(core::ptr::null_mut()))
            .collect();
        Table {
            buckets,
            mask: n - 1,
        }
    }

    /// Bytes of the bucket array.
    pub fn bytes(&self) -> usize {
        self.buckets.len() * core::mem::size_of::<AtomicPtr<ProbePoint>>()
    }

    /// Index of the first bucket to probe for `addr`.
    #[inline(always)]
    fn start(&self, addr: usize) -> usize {
        // The address itself (instructions are 2-byte aligned): probed
        // addresses are spread over the text or packed in a few runs, and
        // linear probing handles both, where a multiplicative hash would
        // cost the hit path a constant load and a multiply.
        (addr >> 1) & self.mask
    }

    /// The point at `addr`. The caller must be `inside` the hit path (or
    /// hold the registry lock) for the reference to stay valid.
    #[inline(always)]
    pub fn lookup(&self, addr: usize) -> Option<&ProbePoint> {
        let mut i = self.start(addr);
        for _ in 0..=self.mask {
            let p = crate::arch::current::order::load_published(&self.buckets[i]);
            if p.is_null() {
                return None;
            }
            if p != tombstone() {
                // SAFETY: non-null, non-tombstone entries point to live
                // points; they are freed only after a grace period that
                // waits for every hart inside the hit path.
                let point = unsafe { &*p };
                if point.addr == addr {
                    return Some(point);
                }
            }
            i = (i + 1) & self.mask;
        }
        None
    }

    fn find_bucket(&self, addr: usize) -> Option<&AtomicPtr<ProbePoint>> {
        let mut i = self.start(addr);
        for _ in 0..=self.mask {
            let b = &self.buckets[i];
            let p = b.load(Ordering::Acquire);
            if p.is_null() {
                return None;
            }
            // SAFETY: as in `lookup`; the caller holds the registry lock.
            if p != tombstone() && unsafe { (*p).addr } == addr {
                return Some(b);
            }
            i = (i + 1) & self.mask;
        }
        None
    }

    /// Publishes `point`, replacing the one at its address; returns the old
    /// pointer (to retire after a grace period) or an error when full.
    /// Caller holds the registry lock.
    pub fn publish(&self, point: *mut ProbePoint) -> Result<*mut ProbePoint, ()> {
        // SAFETY: the caller passes a live point.
        let addr = unsafe { (*point).addr };
        if let Some(b) = self.find_bucket(addr) {
            return Ok(b.swap(point, Ordering::AcqRel));
        }
        let mut i = self.start(addr);
        for _ in 0..=self.mask {
            let b = &self.buckets[i];
            let p = b.load(Ordering::Acquire);
            if p.is_null() || p == tombstone() {
                b.store(point, Ordering::Release);
                return Ok(core::ptr::null_mut());
            }
            i = (i + 1) & self.mask;
        }
        Err(())
    }

    /// Unpublishes the point at `addr`; returns it. Caller holds the lock.
    pub fn remove(&self, addr: usize) -> Option<*mut ProbePoint> {
        self.find_bucket(addr)
            .map(|b| b.swap(tombstone(), Ordering::AcqRel))
    }
}
