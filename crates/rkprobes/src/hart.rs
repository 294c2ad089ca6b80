//! Per-hart state of the hit path, and the grace period built on it.
//!
//! Each hart touches only its own `HartState` (nested traps on one hart
//! included), so the hit path needs no lock. `inside` counts how deep the
//! hart is in the hit path, from the breakpoint trap until the probed
//! instruction has run (through the slot, if it steps one) and every handler
//! returned; `epoch` moves each time it drops back to zero. A removed probe
//! point is freed only after every hart was seen outside (`synchronize`).

use crate::point::ProbePoint;
use core::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicUsize, Ordering};

#[repr(align(64))] // one cache line per hart: no false sharing
#[derive(Default)]
pub(crate) struct HartState {
    inside: AtomicUsize,
    epoch: AtomicUsize,
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
        let was = self.inside.fetch_add(1, Ordering::Relaxed);
        // Pairs with the fence in `synchronize`: either the remover sees us
        // inside, or we see the table without the removed point.
        fence(Ordering::SeqCst);
        was != 0
    }

    #[inline(always)]
    pub fn leave(&self) {
        if self.inside.fetch_sub(1, Ordering::Release) == 1 {
            self.epoch.fetch_add(1, Ordering::Release);
        }
    }

    pub fn is_inside(&self) -> bool {
        self.inside.load(Ordering::Relaxed) != 0
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
    pub fn begin_scratch_step(&self, addr: usize, len: usize, irqs_were_on: bool) {
        self.step_irqs.store(irqs_were_on, Ordering::Relaxed);
        self.scratch_len.store(len, Ordering::Relaxed);
        self.scratch_addr.store(addr, Ordering::Relaxed);
    }

    /// Ends a scratch step: (address, length, irqs were on).
    #[inline(always)]
    pub fn take_scratch_step(&self) -> Option<(usize, usize, bool)> {
        let addr = self.scratch_addr.swap(0, Ordering::Relaxed);
        (addr != 0).then(|| {
            (
                addr,
                self.scratch_len.load(Ordering::Relaxed),
                self.step_irqs.load(Ordering::Relaxed),
            )
        })
    }
}

/// Waits until no hart can still hold a reference taken before this call.
/// The caller must be outside the hit path itself.
pub(crate) fn synchronize(harts: &[HartState], relax: impl Fn()) {
    fence(Ordering::SeqCst);
    for h in harts.iter() {
        if h.inside.load(Ordering::SeqCst) == 0 {
            continue;
        }
        let seen = h.epoch.load(Ordering::Acquire);
        while h.inside.load(Ordering::Acquire) != 0 && h.epoch.load(Ordering::Acquire) == seen {
            relax();
        }
    }
}
