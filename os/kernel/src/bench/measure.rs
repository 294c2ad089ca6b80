//! Counting instructions: `instret` around N calls of a target function on
//! the hart doing the work, interrupts masked so timer ticks stay out of
//! the count. Under `-icount shift=0,sleep=off` the count is exact and the
//! same on every run.

use super::targets::TargetFn;
use crate::arch::IrqGuard;
use crate::boot::MAX_HARTS;
use crate::smp;
use core::hint::black_box;
use core::sync::atomic::{AtomicU64, Ordering};

/// Calls per hart in a measured loop.
pub const N: u64 = 10_000;

/// Instructions retired by this hart so far.
#[inline(always)]
pub fn instret() -> u64 {
    let v: u64;
    // SAFETY: reading a counter CSR has no side effect (OpenSBI enables
    // S-mode access through scounteren).
    unsafe { core::arch::asm!("csrr {}, instret", out(reg) v) };
    v
}

/// Instructions `f` costs on this hart, interrupts masked.
pub fn counted(f: impl FnOnce()) -> u64 {
    let _irq = IrqGuard::new();
    let start = instret();
    f();
    instret() - start
}

/// Instructions retired by `n` calls of `target` on this hart. Not inlined,
/// so the runs with and without a probe execute the same loop.
#[inline(never)]
pub fn calls(target: TargetFn, n: u64) -> u64 {
    counted(|| {
        for i in 0..n {
            // SAFETY: bench targets follow the C ABI and touch only
            // caller-saved registers.
            black_box(unsafe { target(black_box(i as usize), 1) });
        }
    })
}

/// Where a workload runs: the boot hart alone or every online hart at once.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Harts {
    One,
    All,
}

impl Harts {
    pub fn count(self) -> usize {
        match self {
            Harts::One => 1,
            Harts::All => smp::online(),
        }
    }
}

/// `calls(target, n)` on the chosen harts; each hart's own count, by hart id.
pub fn calls_on(harts: Harts, target: TargetFn, n: u64) -> [Option<u64>; MAX_HARTS] {
    let mut out = [None; MAX_HARTS];
    match harts {
        Harts::One => out[crate::arch::hart_id()] = Some(calls(target, n)),
        Harts::All => {
            let counts = [const { AtomicU64::new(u64::MAX) }; MAX_HARTS];
            smp::run_on_all(true, &|hart| {
                counts[hart].store(calls(target, n), Ordering::Relaxed);
            });
            for (o, c) in out.iter_mut().zip(&counts) {
                let c = c.load(Ordering::Relaxed);
                *o = (c != u64::MAX).then_some(c);
            }
        }
    }
    out
}

/// Per-hit cost: each hart's (probed − base) / n, averaged over harts.
pub fn per_hit(base: &[Option<u64>; MAX_HARTS], probed: &[Option<u64>; MAX_HARTS], n: u64) -> f64 {
    let deltas: alloc::vec::Vec<f64> = base
        .iter()
        .zip(probed)
        .filter_map(|(b, p)| {
            Some((p.as_ref()?.wrapping_sub(*b.as_ref()?)) as i64 as f64 / n as f64)
        })
        .collect();
    deltas.iter().sum::<f64>() / deltas.len().max(1) as f64
}
