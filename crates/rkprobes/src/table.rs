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

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn point(addr: usize) -> *mut ProbePoint {
        let add = crate::arch::current::prepare(&0x00b5_0533u32.to_le_bytes()).unwrap();
        Box::into_raw(Box::new(ProbePoint::new(
            addr,
            add,
            Default::default(),
            Box::new([]),
        )))
    }

    fn found(t: &Table, addr: usize) -> Option<usize> {
        t.lookup(addr).map(|p| p.addr)
    }

    /// Addresses `2 * buckets` bytes apart start at the same bucket: they
    /// are all found, also past a removed one (its tombstone), and the
    /// probe sequence wraps around the end of the array.
    #[test]
    fn colliding_addresses_wrap_and_survive_removals() {
        let t = Table::new(16);
        let stride = 2 * 16;
        let last = 0x8020_0000 + 2 * 15; // the last bucket: wraps at once
        let addrs: Vec<usize> = (0..5).map(|k| last + k * stride).collect();
        let mut points = Vec::new();
        for &a in &addrs {
            let p = point(a);
            assert_eq!(t.publish(p), Ok(core::ptr::null_mut()));
            points.push(p);
        }
        for &a in &addrs {
            assert_eq!(found(&t, a), Some(a));
        }
        assert_eq!(found(&t, last + 5 * stride), None);
        assert_eq!(found(&t, last + 2), None);
        // Remove one in the middle of the run: the later ones are still
        // reached, and a new address takes the tombstone's bucket.
        assert_eq!(t.remove(addrs[1]), Some(points[1]));
        assert_eq!(found(&t, addrs[1]), None);
        for &a in addrs.iter().filter(|&&a| a != addrs[1]) {
            assert_eq!(found(&t, a), Some(a));
        }
        let again = point(last + 7 * stride);
        assert_eq!(t.publish(again), Ok(core::ptr::null_mut()));
        assert_eq!(found(&t, last + 7 * stride), Some(last + 7 * stride));
        // The run starts at the last bucket: the removed one was bucket 0.
        assert_eq!(t.buckets[0].load(Ordering::Relaxed), again);
        // Publishing at a present address swaps the point and returns the
        // old one.
        let newer = point(addrs[3]);
        assert_eq!(t.publish(newer), Ok(points[3]));
        assert!(core::ptr::eq(t.lookup(addrs[3]).unwrap(), newer));
        for p in points.into_iter().chain([again, newer]) {
            // SAFETY: made by `point`, no reader left.
            drop(unsafe { Box::from_raw(p) });
        }
    }

    /// A full table refuses a new address and changes nothing.
    #[test]
    fn a_full_table_refuses_and_keeps_what_it_has() {
        let t = Table::new(16);
        let points: Vec<_> = (0..16).map(|k| point(0x8030_0000 + 4 * k)).collect();
        for &p in &points {
            assert!(t.publish(p).is_ok());
        }
        let extra = point(0x8040_0000);
        assert_eq!(t.publish(extra), Err(()));
        assert_eq!(found(&t, 0x8040_0000), None);
        for k in 0..16 {
            assert_eq!(found(&t, 0x8030_0000 + 4 * k), Some(0x8030_0000 + 4 * k));
        }
        for p in points.into_iter().chain([extra]) {
            // SAFETY: made by `point`, no reader left.
            drop(unsafe { Box::from_raw(p) });
        }
    }
}
