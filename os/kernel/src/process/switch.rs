//! The kernel context switch: saves the callee-saved registers of one
//! kernel context and resumes another. `tp` is left alone: it is the
//! hart's id, and a process may resume on another hart.

use core::arch::global_asm;

/// What a switched-out kernel context needs to resume: `ra`, `sp`, `s0..s11`.
#[repr(C)]
#[derive(Debug)]
pub struct Context {
    ra: usize,
    sp: usize,
    s: [usize; 12],
}

/// A context before its first save.
pub const EMPTY: Context = Context {
    ra: 0,
    sp: 0,
    s: [0; 12],
};

impl Context {
    /// A context that starts a new process: it returns to user mode
    /// through the `KernelFrame` at `frame` (the top of its kernel stack).
    pub fn to_user(frame: usize) -> Self {
        Context {
            ra: __enter_user as *const () as usize,
            sp: frame,
            s: [0; 12],
        }
    }
}

global_asm!(
    r#"
    .section .text
    .globl __switch
    .align 2
__switch:
    sd      ra, 0*8(a0)
    sd      sp, 1*8(a0)
    sd      s0, 2*8(a0)
    sd      s1, 3*8(a0)
    sd      s2, 4*8(a0)
    sd      s3, 5*8(a0)
    sd      s4, 6*8(a0)
    sd      s5, 7*8(a0)
    sd      s6, 8*8(a0)
    sd      s7, 9*8(a0)
    sd      s8, 10*8(a0)
    sd      s9, 11*8(a0)
    sd      s10, 12*8(a0)
    sd      s11, 13*8(a0)
    ld      ra, 0*8(a1)
    ld      sp, 1*8(a1)
    ld      s0, 2*8(a1)
    ld      s1, 3*8(a1)
    ld      s2, 4*8(a1)
    ld      s3, 5*8(a1)
    ld      s4, 6*8(a1)
    ld      s5, 7*8(a1)
    ld      s6, 8*8(a1)
    ld      s7, 9*8(a1)
    ld      s8, 10*8(a1)
    ld      s9, 11*8(a1)
    ld      s10, 12*8(a1)
    ld      s11, 13*8(a1)
    ret

    /* First run of a process: sp is its KernelFrame. */
    .globl __enter_user
    .align 2
__enter_user:
    j       __trap_return
"#
);

extern "C" {
    fn __switch(from: *mut Context, to: *const Context);
    fn __enter_user();
}

/// Saves the running kernel context in `from` and resumes `to`; returns
/// when something switches back to `from`.
///
/// # Safety
/// `to` must hold a context saved by `switch` or built by
/// `Context::to_user` whose stack is alive, nobody else may resume it, and
/// interrupts must be masked.
pub unsafe fn switch(from: *mut Context, to: *const Context) {
    // SAFETY: the caller upholds the contract; `__switch` only writes
    // `*from` and loads `*to`.
    unsafe { __switch(from, to) }
}
