//! Counting breakpoint traps at one address, for tests that check a probe
//! hit took none (a jump probe) or took one (a breakpoint probe).

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

static WATCHED: AtomicUsize = AtomicUsize::new(0);
static TRAPS: AtomicU64 = AtomicU64::new(0);

/// Starts counting kernel breakpoint traps at `addr` (0: none), from zero.
pub fn watch(addr: usize) {
    TRAPS.store(0, Ordering::SeqCst);
    WATCHED.store(addr, Ordering::SeqCst);
}

/// Breakpoint traps at the watched address since `watch`.
pub fn traps() -> u64 {
    TRAPS.load(Ordering::SeqCst)
}

/// Not in bench builds, whose rows would pay for it (tests do not run
/// there).
#[inline(always)]
pub fn on_breakpoint(_pc: usize) {
    #[cfg(not(feature = "bench"))]
    if _pc == WATCHED.load(Ordering::Relaxed) {
        TRAPS.fetch_add(1, Ordering::Relaxed);
    }
}
