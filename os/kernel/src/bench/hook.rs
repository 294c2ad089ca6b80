//! The bench's part of the trap handler's breakpoint arm.

use super::{kprobe06, targets};
use crate::trap::KernelFrame;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Whether breakpoints go to the `kprobe` crate (it is under test).
static KPROBE06: AtomicBool = AtomicBool::new(false);

pub fn route_to_kprobe06(on: bool) {
    KPROBE06.store(on, Ordering::SeqCst);
}

/// User address of the user trap floor's `ebreak` while its row runs
/// (0: none). Only the bench program runs then, so the address alone
/// identifies it.
static USER_FLOOR_AT: AtomicUsize = AtomicUsize::new(0);

pub fn set_user_floor(at: usize) {
    USER_FLOOR_AT.store(at, Ordering::SeqCst);
}

/// Called first for every breakpoint from user mode; `true`: handled here.
/// The user trap floor's `ebreak` is skipped with nothing else done: the
/// user trap entry, dispatch and return that every uprobe hit also pays.
#[inline(always)]
pub fn on_user_breakpoint(frame: &mut KernelFrame) -> bool {
    if frame.tf.sepc == USER_FLOOR_AT.load(Ordering::Relaxed) {
        frame.tf.sepc += 4;
        return true;
    }
    false
}

/// Called first for every kernel breakpoint; `true`: handled here.
/// The trap floor's `ebreak` is skipped with nothing else done: the bare
/// trap entry, dispatch and return that every probe hit also pays.
#[inline(always)]
pub fn on_breakpoint(frame: &mut KernelFrame) -> bool {
    if frame.tf.sepc == targets::floor_trap_at() {
        frame.tf.sepc += 4;
        return true;
    }
    KPROBE06.load(Ordering::Relaxed) && kprobe06::handle_breakpoint(frame)
}
