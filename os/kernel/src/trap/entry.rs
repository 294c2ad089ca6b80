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
    .irp i, 1,3,4,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    sd      x\i, \i*8(sp)
    .endr
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
    .irp i, 1,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    ld      x\i, \i*8(sp)
    .endr
    ld      sp, 2*8(sp)
    sret
"#,
    frame = const core::mem::size_of::<super::KernelFrame>(),
);

extern "C" {
    pub fn __trap_entry();
    pub fn __trap_return();
}
