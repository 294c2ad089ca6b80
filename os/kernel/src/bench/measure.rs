//! Counting instructions: `instret` around N calls of a target function,
//! interrupts masked so timer ticks stay out of the count. Under
//! `-icount shift=0,sleep=off` the count is exact and the same on every
//! run.
//!
//! `instret` under QEMU `-icount` (7.2 and 10.0 alike) is not per hart: it
//! reads the global instruction count, every hart's instructions. On a
//! 1-hart machine that is the hart's own count. With several harts the
//! bench measures a window instead (`window`): every online hart takes
//! part, all of them run their N calls at once, and a hart with nothing
//! to do waits in `wfi` (a halted hart retires nothing), so the window's
//! global count is the harts' workloads plus a fixed choreography that
//! the probed and unprobed runs share.

use super::targets::TargetFn;
use crate::arch::{self, IrqGuard};
use crate::smp;
use core::hint::black_box;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// Calls per hart in a measured loop.
pub const N: u64 = 10_000;

/// Instructions retired so far (under QEMU `-icount`: by all harts).
#[inline(always)]
pub fn instret() -> u64 {
    let v: u64;
    // SAFETY: reading a counter CSR has no side effect (OpenSBI enables
    // S-mode access through scounteren).
    unsafe { core::arch::asm!("csrr {}, instret", out(reg) v) };
    v
}

/// Instructions `f` costs, interrupts masked. Exact on a 1-hart machine
/// (see the module comment).
pub fn counted(f: impl FnOnce()) -> u64 {
    let _irq = IrqGuard::new();
    let start = instret();
    f();
    instret() - start
}

/// `n` calls of `target`. Not inlined, so the runs with and without a
/// probe execute the same loop.
#[inline(never)]
fn call_loop(target: TargetFn, n: u64) {
    for i in 0..n {
        // SAFETY: bench targets follow the C ABI and touch only
        // caller-saved registers.
        black_box(unsafe { target(black_box(i as usize), 1) });
    }
}

/// Instructions retired by `n` calls of `target` on this hart, on a
/// 1-hart machine.
pub fn calls(target: TargetFn, n: u64) -> u64 {
    counted(|| call_loop(target, n))
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

/// Instructions retired by `n` calls of `target` on each of the chosen
/// harts, all of them at once: the sum over those harts (plus, with
/// several harts online, the window's fixed choreography).
pub fn calls_on(harts: Harts, target: TargetFn, n: u64) -> u64 {
    if smp::online() == 1 {
        calls(target, n)
    } else {
        window(harts, target, n)
    }
}

/// Supervisor software interrupt bit of `sie` / `sip`.
const SSI: usize = 1 << 1;

/// Only IPIs may end a `wfi` while the guard lives (`sie` = SSIE: a
/// pending timer interrupt would make `wfi` return at once); the old
/// `sie` comes back on drop.
struct OnlyIpis(usize);

impl OnlyIpis {
    fn new() -> Self {
        let old: usize;
        // SAFETY: changes which interrupt sources are enabled; interrupts
        // are masked (sstatus.SIE clear) by the caller, nothing is taken.
        unsafe { core::arch::asm!("csrrw {}, sie, {}", out(reg) old, in(reg) SSI) };
        Self(old)
    }
}

impl Drop for OnlyIpis {
    fn drop(&mut self) {
        // SAFETY: restores the interrupt sources saved in `new`.
        unsafe { core::arch::asm!("csrw sie, {}", in(reg) self.0) };
    }
}

/// Clears a pending IPI (sip.SSIP). Not `smp::on_ipi`: a second caller
/// of that changes how the trap handler (its other caller) is compiled,
/// and with it every trap-based row.
fn clear_ipi() {
    // SAFETY: clears the supervisor software interrupt's pending bit only.
    unsafe { core::arch::asm!("csrc sip, {}", in(reg) SSI) };
}

/// Halts in `wfi` until `flag` is set. A halted hart retires nothing;
/// each wake-up (the IPI that sets the flag, at most one stale IPI)
/// costs a few instructions.
fn park_until(flag: &AtomicBool) {
    while !flag.load(Ordering::Acquire) {
        arch::wfi();
        clear_ipi();
    }
}

/// The shared state of one `window`.
#[derive(Default)]
struct Window {
    parked: AtomicUsize,
    go: AtomicBool,
    finished: AtomicUsize,
    release: AtomicBool,
    start: AtomicU64,
    end: AtomicU64,
}

/// One measured window with every online hart taking part: `n` calls of
/// `target` on the boot hart (`Harts::One`) or on every hart
/// (`Harts::All`); returns the global `instret` delta of the window.
///
/// Choreography, interrupts masked and only IPIs enabled on every hart:
/// 1. the other harts count themselves parked and halt in `wfi`; the boot
///    hart waits for all of them (outside the window), reads `instret`
///    (start) and wakes them with one IPI;
/// 2. the working harts run their calls;
/// 3. each hart counts itself finished; all but the last halt in `wfi`,
///    the last reads `instret` (end) and wakes them.
///
/// Inside the window no hart spins: they run the workload or are halted,
/// and the rest (one IPI out and one in per hart, the counters, a hart
/// that reaches `wfi` just after the start) is the same few hundred
/// instructions with or without a probe, and cancels out of a per-hit
/// figure (probed window minus unprobed window).
fn window(harts: Harts, target: TargetFn, n: u64) -> u64 {
    let online = smp::online();
    let boot = arch::hart_id();
    let w = Window::default();
    smp::run_on_all(true, &|hart| {
        let _irq = IrqGuard::new();
        let _ipis = OnlyIpis::new();
        clear_ipi();
        if hart == boot {
            while w.parked.load(Ordering::Acquire) < online - 1 {
                core::hint::spin_loop();
            }
            w.start.store(instret(), Ordering::Relaxed);
            w.go.store(true, Ordering::Release);
            smp::ipi_others();
        } else {
            w.parked.fetch_add(1, Ordering::AcqRel);
            park_until(&w.go);
        }
        if hart == boot || harts == Harts::All {
            call_loop(target, n);
        }
        if w.finished.fetch_add(1, Ordering::AcqRel) == online - 1 {
            w.end.store(instret(), Ordering::Relaxed);
            w.release.store(true, Ordering::Release);
            smp::ipi_others();
        } else {
            park_until(&w.release);
        }
        // A stale wake-up IPI must not stay pending.
        clear_ipi();
    });
    w.end.load(Ordering::Relaxed) - w.start.load(Ordering::Relaxed)
}

/// Per-hit cost: (probed − base) / hits, with `hits` calls in each.
pub fn per_hit(base: u64, probed: u64, hits: u64) -> f64 {
    probed.wrapping_sub(base) as i64 as f64 / hits as f64
}
