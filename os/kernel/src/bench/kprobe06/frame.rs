//! The trap frame seen as the `kprobe` crate's `PtRegs`, without copying.
//!
//! Both are 36 words. `KernelFrame` is `x0..x31, sepc, sstatus, kernel_tp,
//! pad`; `PtRegs` is `epc, x1..x31, status, badaddr, cause, orig_a0`. So
//! the general registers already line up, and moving six words in place
//! turns one into the other: a fair stand-in for an OS whose trap entry
//! saves `PtRegs` directly, rather than charging the crate for a copy.

use crate::arch;
use crate::trap::KernelFrame;
use core::mem::size_of;
use kprobe::PtRegs;

const WORDS: usize = 36;
const _: () = assert!(size_of::<KernelFrame>() == WORDS * 8);
const _: () = assert!(size_of::<PtRegs>() == WORDS * 8);

/// Runs `f` on `frame` viewed as `PtRegs`; the pc and status it leaves
/// there are put back where the trap return expects them.
pub fn with_pt_regs<R>(frame: &mut KernelFrame, f: impl FnOnce(&mut PtRegs) -> R) -> R {
    let w = frame as *mut KernelFrame as *mut [usize; WORDS];
    // SAFETY: `KernelFrame` is `repr(C)` and all usize, exactly WORDS
    // words (asserted above), and we hold its only reference.
    let words = unsafe { &mut *w };
    let (sepc, sstatus, kernel_tp, pad) = (words[32], words[33], words[34], words[35]);
    words[0] = sepc;
    words[32] = sstatus;
    words[33] = arch::stval();
    words[34] = arch::scause();
    words[35] = words[10];
    // SAFETY: `PtRegs` is `repr(C)`, all usize, WORDS words; `words` is not
    // used while this reference lives.
    let r = f(unsafe { &mut *(w as *mut PtRegs) });
    let (epc, status) = (words[0], words[32]);
    words[0] = 0;
    words[32] = epc;
    words[33] = status;
    words[34] = kernel_tp;
    words[35] = pad;
    r
}
