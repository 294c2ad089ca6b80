//! Per-hart state of the hit path, and the grace period built on it.
//!
//! Each hart touches only its own `HartState` (nested traps on one hart
//! included), so the hit path needs no lock. Its `state` word holds how
//! deep the hart is in the hit path (the low bits), from the breakpoint
//! trap until the probed instruction has run (through the slot, if it
//! steps one) and every handler returned, and an epoch (the high bits)
//! that moves each time the depth drops back to zero. A removed probe
//! point is freed only after every hart was seen outside (`synchronize`).

use crate::point::ProbePoint;
use core::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicUsize, Ordering};

/// Bits of `state` below the epoch: the depth (a nested hit runs no
/// handlers, so depths stay tiny; 11 bits keep the masks in one
/// instruction).
const DEPTH_BITS: u32 = 11;
const DEPTH: usize = (1 << DEPTH_BITS) - 1;
/// Depth 1 -> 0 and epoch + 1, as one add.
const DEPTH_STEP_OUT: usize = (1 << DEPTH_BITS) - 1;

#[repr(align(64))] // one cache line per hart: no false sharing
#[derive(Default)]
pub(crate) struct HartState {
    /// `epoch << DEPTH_BITS | depth`.
    state: AtomicUsize,
    /// The point whose slot this hart is stepping, or null.
    step_point: AtomicPtr<ProbePoint>,
    /// For the step: were interrupts enabled, and is it a nested hit.
    step_irqs: AtomicBool,
    step_nested: AtomicBool,
    /// A scratch step in progress: the address whose instruction runs in
    /// this hart's scratch slot (0: none) and its length.
    scratch_addr: AtomicUsize,
    scratch_len: AtomicUsize,
}

pub(crate) struct Step {
    pub point: *const ProbePoint,
    pub irqs_were_on: bool,
    pub nested: bool,
}

impl HartState {
    /// Announces that this hart may now hold probe references. Returns
    /// whether it already was inside: a hit from a handler (or from code a
    /// handler calls) is nested. The hit path runs with interrupts masked,
    /// so nothing else on this hart can be inside meanwhile.
    #[inline(always)]
    pub fn enter(&self) -> bool {
        // The fence after the add pairs with the one in `synchronize`:
        // either the remover sees us inside, or we see the table without
        // the removed point.
        let was = crate::arch::current::order::add_then_fence(&self.state, 1);
        was & DEPTH != 0
    }

    /// Leaves what `enter` (which returned `nested`) entered. Only this
    /// hart changes its state, so the depth is known: leaving the
    /// outermost level moves the epoch in the same add.
    #[inline(always)]
    pub fn leave(&self, nested: bool) {
        let step = match nested {
            true => 1usize.wrapping_neg(),
            false => DEPTH_STEP_OUT,
        };
        self.state.fetch_add(step, Ordering::Release);
    }

    pub fn is_inside(&self) -> bool {
        self.state.load(Ordering::Relaxed) & DEPTH != 0
    }

    #[inline(always)]
    pub fn begin_step(&self, step: Step) {
        self.step_irqs.store(step.irqs_were_on, Ordering::Relaxed);
        self.step_nested.store(step.nested, Ordering::Relaxed);
        self.step_point
            .store(step.point as *mut _, Ordering::Relaxed);
    }

    /// Ends the step in progress, if any.
    #[inline(always)]
    pub fn take_step(&self) -> Option<Step> {
        let point = self
            .step_point
            .swap(core::ptr::null_mut(), Ordering::Relaxed);
        (!point.is_null()).then(|| Step {
            point,
            irqs_were_on: self.step_irqs.load(Ordering::Relaxed),
            nested: self.step_nested.load(Ordering::Relaxed),
        })
    }
}

impl HartState {
    #[inline(always)]
    pub fn begin_scratch_step(&self, addr: usize, len: usize, irqs_were_on: bool, nested: bool) {
        self.step_irqs.store(irqs_were_on, Ordering::Relaxed);
        self.step_nested.store(nested, Ordering::Relaxed);
        self.scratch_len.store(len, Ordering::Relaxed);
        self.scratch_addr.store(addr, Ordering::Relaxed);
    }

    /// Ends a scratch step: (address, length, irqs were on, nested).
    #[inline(always)]
    pub fn take_scratch_step(&self) -> Option<(usize, usize, bool, bool)> {
        let addr = self.scratch_addr.swap(0, Ordering::Relaxed);
        (addr != 0).then(|| {
            (
                addr,
                self.scratch_len.load(Ordering::Relaxed),
                self.step_irqs.load(Ordering::Relaxed),
                self.step_nested.load(Ordering::Relaxed),
            )
        })
    }
}

/// Waits until no hart can still hold a reference taken before this call.
/// The caller must be outside the hit path itself.
pub(crate) fn synchronize(harts: &[HartState], relax: impl Fn()) {
    fence(Ordering::SeqCst);
    for h in harts.iter() {
        let seen = h.state.load(Ordering::SeqCst);
        if seen & DEPTH == 0 {
            continue;
        }
        // Inside since before the call: wait until it is out (depth 0) or
        // has been out since (a newer epoch).
        loop {
            let now = h.state.load(Ordering::Acquire);
            if now & DEPTH == 0 || now >> DEPTH_BITS != seen >> DEPTH_BITS {
                break;
            }
            relax();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::thread;
    use std::time::Duration;

    fn epoch(h: &HartState) -> usize {
        h.state.load(Ordering::Relaxed) >> DEPTH_BITS
    }

    /// A nested enter reports itself; only leaving the outermost level
    /// gets the hart outside and moves the epoch, once.
    #[test]
    fn depth_and_epoch() {
        let h = HartState::default();
        assert!(!h.enter());
        assert!(h.enter(), "second level is nested");
        h.leave(true);
        assert!(h.is_inside());
        assert_eq!(epoch(&h), 0);
        h.leave(false);
        assert!(!h.is_inside());
        assert_eq!(epoch(&h), 1);
        assert!(!h.enter(), "a new hit is not nested");
        h.leave(false);
        assert_eq!((h.is_inside(), epoch(&h)), (false, 2));
    }

    /// Runs `synchronize(harts)` on another thread while `hold` runs here;
    /// `hold` first waits a moment and sees whether it returned. Returns
    /// whether it has returned once `hold` is done.
    fn synchronize_while(harts: &[HartState], hold: impl FnOnce(&dyn Fn() -> bool)) -> bool {
        let done = AtomicBool::new(false);
        thread::scope(|s| {
            s.spawn(|| {
                synchronize(harts, thread::yield_now);
                done.store(true, Ordering::SeqCst);
            });
            hold(&|| {
                thread::sleep(Duration::from_millis(30));
                done.load(Ordering::SeqCst)
            });
        });
        done.load(Ordering::SeqCst)
    }

    /// `synchronize` waits for a hart that was inside before it began,
    /// until it leaves or has left since (inside again: a later hit that
    /// cannot hold what the caller removed).
    #[test]
    fn synchronize_waits_for_harts_inside_before_it() {
        for reenter in [false, true] {
            let harts: [HartState; 2] = Default::default();
            harts[1].enter();
            let done = synchronize_while(&harts, |returned| {
                assert!(!returned(), "returned while hart 1 is inside");
                harts[1].leave(false);
                if reenter {
                    harts[1].enter();
                }
            });
            assert!(done);
            assert_eq!(harts[1].is_inside(), reenter);
        }
    }

    /// A nested leave does not end the grace period; the outermost does.
    #[test]
    fn nested_leave_does_not_end_the_grace_period() {
        let harts: [HartState; 1] = Default::default();
        assert!(!harts[0].enter());
        assert!(harts[0].enter());
        let done = synchronize_while(&harts, |returned| {
            assert!(!returned(), "returned while the hart is inside");
            harts[0].leave(true);
            assert!(!returned(), "returned after a nested leave");
            harts[0].leave(false);
        });
        assert!(done);
    }
}
