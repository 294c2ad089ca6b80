//! Timer interrupts through SBI: a periodic tick on every hart.

use crate::arch;
use core::sync::atomic::{AtomicU64, Ordering};

/// QEMU virt's timebase frequency.
pub const TICKS_PER_SEC: u64 = 10_000_000;
const INTERVAL: u64 = TICKS_PER_SEC / 100;
const SIE_STIE: usize = 1 << 5;

pub static TICKS: AtomicU64 = AtomicU64::new(0);

fn arm() {
    sbi_rt::set_timer(arch::time() + INTERVAL);
}

pub fn init_hart() {
    arm();
    // SAFETY: enabling the supervisor timer interrupt source only.
    unsafe { core::arch::asm!("csrs sie, {}", in(reg) SIE_STIE) };
}

pub fn on_tick() {
    TICKS.fetch_add(1, Ordering::Relaxed);
    arm();
}

pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}
