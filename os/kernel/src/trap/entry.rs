//! The one trap entry for every trap, from S-mode or U-mode.
//!
//! Convention: `sscratch` is 0 while the hart runs in the kernel and holds
//! the kernel stack top while it runs in user mode. The entry saves the full
//! integer frame (`KernelFrame`) on the kernel stack and calls
//! `trap_handler(&mut KernelFrame)`; `__trap_return` restores it.

use core::arch::global_asm;

global_asm!(
    r#"
    .section .text.trap
    .globl __trap_entry
    .align 2
__trap_entry:
    csrrw   sp, sscratch, sp
    bnez    sp, 1f
    /* From the kernel: take sp back; sscratch is 0 again. */
    csrrw   sp, sscratch, sp
1:
    addi    sp, sp, -{frame}
    sd      t0, 5*8(sp)
    /* t0 = the interrupted sp: in sscratch if we came from user mode. */
    csrrw   t0, sscratch, zero
    bnez    t0, 2f
    addi    t0, sp, {frame}
2:
    sd      t0, 2*8(sp)
    sd      x1, 1*8(sp)
    sd      x3, 3*8(sp)
    sd      x4, 4*8(sp)
    sd      x6, 6*8(sp)
    sd      x7, 7*8(sp)
    sd      x8, 8*8(sp)
    sd      x9, 9*8(sp)
    sd      x10, 10*8(sp)
    sd      x11, 11*8(sp)
    sd      x12, 12*8(sp)
    sd      x13, 13*8(sp)
    sd      x14, 14*8(sp)
    sd      x15, 15*8(sp)
    sd      x16, 16*8(sp)
    sd      x17, 17*8(sp)
    sd      x18, 18*8(sp)
    sd      x19, 19*8(sp)
    sd      x20, 20*8(sp)
    sd      x21, 21*8(sp)
    sd      x22, 22*8(sp)
    sd      x23, 23*8(sp)
    sd      x24, 24*8(sp)
    sd      x25, 25*8(sp)
    sd      x26, 26*8(sp)
    sd      x27, 27*8(sp)
    sd      x28, 28*8(sp)
    sd      x29, 29*8(sp)
    sd      x30, 30*8(sp)
    sd      x31, 31*8(sp)
    csrr    t0, sepc
    csrr    t1, sstatus
    sd      t0, 32*8(sp)
    sd      t1, 33*8(sp)
    /* From user mode, tp is the user's: reload the kernel's hart id. */
    andi    t1, t1, 0x100
    bnez    t1, 3f
    ld      tp, 34*8(sp)
3:
    mv      a0, sp
    call    trap_handler

    .globl __trap_return
__trap_return:
    ld      t0, 32*8(sp)
    ld      t1, 33*8(sp)
    csrw    sepc, t0
    csrw    sstatus, t1
    andi    t1, t1, 0x100
    bnez    t1, 4f
    /* Back to user mode: remember the kernel's tp and stack top. */
    sd      tp, 34*8(sp)
    addi    t0, sp, {frame}
    csrw    sscratch, t0
4:
    ld      x1, 1*8(sp)
    ld      x3, 3*8(sp)
    ld      x4, 4*8(sp)
    ld      x5, 5*8(sp)
    ld      x6, 6*8(sp)
    ld      x7, 7*8(sp)
    ld      x8, 8*8(sp)
    ld      x9, 9*8(sp)
    ld      x10, 10*8(sp)
    ld      x11, 11*8(sp)
    ld      x12, 12*8(sp)
    ld      x13, 13*8(sp)
    ld      x14, 14*8(sp)
    ld      x15, 15*8(sp)
    ld      x16, 16*8(sp)
    ld      x17, 17*8(sp)
    ld      x18, 18*8(sp)
    ld      x19, 19*8(sp)
    ld      x20, 20*8(sp)
    ld      x21, 21*8(sp)
    ld      x22, 22*8(sp)
    ld      x23, 23*8(sp)
    ld      x24, 24*8(sp)
    ld      x25, 25*8(sp)
    ld      x26, 26*8(sp)
    ld      x27, 27*8(sp)
    ld      x28, 28*8(sp)
    ld      x29, 29*8(sp)
    ld      x30, 30*8(sp)
    ld      x31, 31*8(sp)
    ld      sp, 2*8(sp)
    sret
"#,
    frame = const core::mem::size_of::<super::KernelFrame>(),
);

extern "C" {
    pub fn __trap_entry();
    pub fn __trap_return();
}
