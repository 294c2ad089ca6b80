//! Trap dispatch: breakpoints go to rkprobes, timer ticks to the timer
//! (and preempt a user process), traps from user mode to `user.rs`,
//! anything unexpected is reported with its address.

mod entry;
mod user;
pub use user::user_breakpoints;
pub mod watch;

use crate::arch;
use crate::boot::MAX_HARTS;
use core::sync::atomic::{AtomicUsize, Ordering};
use rkprobes::TrapFrame;

/// What the trap entry saves: the library's register frame plus the
/// kernel's `tp`, kept here while a hart runs in user mode.
#[repr(C)]
pub struct KernelFrame {
    pub tf: TrapFrame,
    pub kernel_tp: usize,
    _pad: usize,
}

impl KernelFrame {
    /// A frame to enter (or resume) a context with `tf`.
    pub fn new(tf: TrapFrame) -> Self {
        KernelFrame {
            tf,
            kernel_tp: 0,
            _pad: 0,
        }
    }
}

const INTERRUPT: usize = 1 << 63;
const S_SOFT: usize = 1;
const S_TIMER: usize = 5;
const EXC_BREAKPOINT: usize = 3;

/// Installs the trap vector on this hart and lets kernel code use the FPU
/// (probed F/D instructions run in the kernel).
pub fn init_hart() {
    // SAFETY: sets sstatus.FS to Initial; no memory effect.
    unsafe { core::arch::asm!("csrs sstatus, {}", in(reg) arch::SSTATUS_FS_INITIAL) };
    // SAFETY: `__trap_entry` is 4-byte aligned, so it is a valid direct-mode
    // vector; sscratch = 0 marks "running in the kernel".
    unsafe {
        core::arch::asm!(
            "csrw stvec, {}",
            "csrw sscratch, zero",
            in(reg) entry::__trap_entry as *const () as usize,
        )
    };
}

#[no_mangle]
#[link_section = ".text.trap"]
extern "C" fn trap_handler(frame: &mut KernelFrame) {
    // Read both cause registers first: any probe hit in the code below
    // (a nested breakpoint trap) overwrites them.
    let scause = arch::scause();
    let stval = arch::stval();
    let from_user = frame.tf.sstatus & arch::SSTATUS_SPP == 0;
    if from_user {
        // User code runs with the FPU off (see process/image.rs); the
        // kernel's probed F/D instructions need it on.
        // SAFETY: sets sstatus.FS to Initial; no memory effect.
        unsafe { core::arch::asm!("csrs sstatus, {}", in(reg) arch::SSTATUS_FS_INITIAL) };
        // The uprobe hit path first, past the other traps' dispatch.
        if scause == EXC_BREAKPOINT {
            return user::user_breakpoint(frame);
        }
    } else if scause == EXC_BREAKPOINT {
        // The seed's integration: every kernel breakpoint goes to rkprobes
        // (after the bench hook and a test's trap count), which reports and
        // steps over one that is not a probe's.
        // The benchmark's trap floor, and the `kprobe` crate while it
        // is the implementation under test.
        #[cfg(feature = "bench")]
        if crate::bench::on_breakpoint(frame) {
            return;
        }
        watch::on_breakpoint(frame.tf.sepc);
        return rkprobes::kprobes_trap_handler(&mut frame.tf);
    }
    dispatch(frame, scause, stval, from_user);
}

/// Every trap but a breakpoint.
#[link_section = ".text.trap"]
#[inline(never)]
fn dispatch(frame: &mut KernelFrame, scause: usize, stval: usize, from_user: bool) {
    if scause & INTERRUPT != 0 {
        match scause & !INTERRUPT {
            S_TIMER => {
                crate::timer::on_tick();
                // A tick in user mode ends the process's time slice.
                if from_user {
                    crate::process::yield_now();
                    // Another thread called `exit` meanwhile.
                    crate::process::exit_if_exiting();
                }
            }
            // A hart in user mode is outside kernel text: no pc.
            S_SOFT => crate::smp::on_ipi(if from_user { 0 } else { frame.tf.sepc }),
            other => panic!("unexpected interrupt {other}"),
        }
        return;
    }
    match (scause, from_user) {
        (_, false) => kernel_fault(&mut frame.tf, scause, stval),
        (_, true) => user::user_trap(frame, scause, stval),
    }
}

/// Per hart: where to resume after a fault a test provoked on purpose (0:
/// none expected), and the pc the fault was reported at.
static EXPECT_FAULT: [AtomicUsize; MAX_HARTS] = [const { AtomicUsize::new(0) }; MAX_HARTS];
static FAULT_AT: [AtomicUsize; MAX_HARTS] = [const { AtomicUsize::new(0) }; MAX_HARTS];

/// Runs `f` expecting it to fault; execution resumes at `resume`. Returns
/// the pc the fault was reported at, if one happened.
pub fn expect_fault(resume: usize, f: impl FnOnce()) -> Option<usize> {
    let h = arch::hart_id();
    FAULT_AT[h].store(0, Ordering::Relaxed);
    EXPECT_FAULT[h].store(resume, Ordering::Relaxed);
    f();
    EXPECT_FAULT[h].store(0, Ordering::Relaxed);
    Some(FAULT_AT[h].load(Ordering::Relaxed)).filter(|&pc| pc != 0)
}

fn kernel_fault(tf: &mut TrapFrame, scause: usize, stval: usize) {
    // A fault while a probe's instruction ran out of line is reported at
    // the probe's own address.
    let pc = rkprobes::kprobes_fault_handler(tf).unwrap_or(tf.sepc);
    let h = arch::hart_id();
    let resume = EXPECT_FAULT[h].swap(0, Ordering::Relaxed);
    if resume != 0 {
        FAULT_AT[h].store(pc, Ordering::Relaxed);
        tf.sepc = resume;
        return;
    }
    panic!("kernel fault: scause {scause:#x}, stval {stval:#x}, pc {pc:#x}");
}
