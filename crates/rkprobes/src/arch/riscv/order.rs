//! The two memory orderings the hit path needs, at what RVWMO (the RISC-V
//! memory model, ISA vol. 1) charges for them. Elsewhere, and in host
//! tests, they fall back to the portable orderings that give the same.

#[cfg(not(target_arch = "riscv64"))]
use core::sync::atomic::{fence, Ordering};
use core::sync::atomic::{AtomicPtr, AtomicUsize};

/// Loads a pointer that was published with a release store, for reads
/// through it (Linux's `rcu_dereference`).
///
/// On RISC-V one `ld`, no fence: RVWMO keeps a load after an earlier load
/// its address depends on (preserved program order, rule 9), so reads
/// through the pointer see what was written before it was published. The
/// `asm!` hides the value from the compiler, which therefore cannot read
/// through the pointer before it is loaded (nor guess it).
#[inline(always)]
pub fn load_published<T>(cell: &AtomicPtr<T>) -> *mut T {
    #[cfg(target_arch = "riscv64")]
    {
        let p: *mut T;
        // SAFETY: an aligned 8-byte load from a live `AtomicPtr`, atomic
        // on RV64; it writes nothing.
        unsafe {
            core::arch::asm!(
                "ld {p}, 0({cell})",
                cell = in(reg) cell.as_ptr(),
                p = lateout(reg) p,
                options(nostack, readonly, preserves_flags),
            );
        }
        p
    }
    #[cfg(not(target_arch = "riscv64"))]
    cell.load(Ordering::Acquire)
}

/// `load_published` of a `static` cell, addressed from the pc inside the
/// `asm!` (`auipc` + `ld`, where the generic one computes the address
/// first).
macro_rules! load_published_static {
    ($cell:path) => {{
        #[cfg(target_arch = "riscv64")]
        {
            let p: usize;
            // SAFETY: an aligned 8-byte load of a live static `AtomicPtr`
            // (as `load_published`); it writes nothing.
            unsafe {
                core::arch::asm!(
                    "ld {p}, {cell}",
                    cell = sym $cell,
                    p = out(reg) p,
                    options(nostack, readonly, preserves_flags),
                );
            }
            p as *mut _
        }
        #[cfg(not(target_arch = "riscv64"))]
        {
            $crate::arch::current::order::load_published(&$cell)
        }
    }};
}
pub(crate) use load_published_static;

/// Adds `v` to `word` and returns the old value, ordered before every later
/// memory access of this hart (a full fence after the add).
///
/// On RISC-V one `amoadd.d.aqrl`: an AMO is a single memory operation, and
/// its acquire bit keeps every later access after all of it, its store
/// included (preserved program order, rule 5).
#[inline(always)]
pub fn add_then_fence(word: &AtomicUsize, v: usize) -> usize {
    #[cfg(target_arch = "riscv64")]
    {
        let old: usize;
        // SAFETY: an atomic add on a live, aligned `AtomicUsize`.
        unsafe {
            core::arch::asm!(
                "amoadd.d.aqrl {old}, {v}, ({word})",
                word = in(reg) word.as_ptr(),
                v = in(reg) v,
                old = lateout(reg) old,
                options(nostack, preserves_flags),
            );
        }
        old
    }
    #[cfg(not(target_arch = "riscv64"))]
    {
        let old = word.fetch_add(v, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        old
    }
}
