//! Traps from user mode: system calls, breakpoints, and faults, which kill
//! the process (never the kernel).

use super::KernelFrame;
use crate::{process, syscall};
use core::sync::atomic::{AtomicU64, Ordering};

const EXC_USER_ECALL: usize = 8;

/// Breakpoint traps taken from user mode, for tests that count how many
/// traps a uprobe hit costs.
static USER_BREAKPOINTS: AtomicU64 = AtomicU64::new(0);

pub fn user_breakpoints() -> u64 {
    USER_BREAKPOINTS.load(Ordering::Relaxed)
}

/// Handles a synchronous trap taken in user mode.
pub(super) fn user_trap(frame: &mut KernelFrame, scause: usize, stval: usize) {
    match scause {
        // Breakpoints never come here: `trap_handler` sends them to
        // `user_breakpoint` first.
        EXC_USER_ECALL => syscall::syscall(frame),
        _ => {
            // A fault while a probed instruction ran in the slot page is
            // reported at the probe's address.
            rkprobes::Uprobes::get().uprobes_fault_handler(&mut frame.tf);
            let pc = frame.tf.sepc;
            match fault_name(scause) {
                Some((name, true)) => {
                    process::kill(format_args!("{name} (address {stval:#x})"), pc)
                }
                Some((name, false)) => process::kill(format_args!("{name}"), pc),
                None => process::kill(format_args!("exception {scause}"), pc),
            }
        }
    }
}

/// A breakpoint (`ebreak`) in user mode: the bench hook's, a uprobe's (the
/// frame then says where the process resumes), or else a fault that kills
/// the process. Kept small: it is the uprobe hit path.
#[link_section = ".text.trap"]
#[inline(never)]
pub(super) fn user_breakpoint(frame: &mut KernelFrame) {
    // The benchmark's user trap floor.
    #[cfg(feature = "bench")]
    if crate::bench::on_user_breakpoint(frame) {
        return;
    }
    // A test's count; bench builds (which run no tests) leave it out of
    // the uprobe rows.
    #[cfg(not(feature = "bench"))]
    USER_BREAKPOINTS.fetch_add(1, Ordering::Relaxed);
    if !rkprobes::Uprobes::get().uprobes_trap_handler(&mut frame.tf) {
        unowned_breakpoint(frame.tf.sepc);
    }
}

#[cold]
#[inline(never)]
fn unowned_breakpoint(pc: usize) -> ! {
    process::kill(format_args!("breakpoint"), pc)
}

/// The name of exception `scause`, and whether `stval` holds the address.
fn fault_name(scause: usize) -> Option<(&'static str, bool)> {
    Some(match scause {
        0 => ("misaligned fetch", true),
        1 => ("instruction access fault", true),
        2 => ("illegal instruction", false),
        4 => ("misaligned load", true),
        5 => ("load access fault", true),
        6 => ("misaligned store", true),
        7 => ("store access fault", true),
        12 => ("instruction page fault", true),
        13 => ("load page fault", true),
        15 => ("store page fault", true),
        _ => return None,
    })
}
