//! Boot: the first instructions of every hart, and the per-hart stacks.
//!
//! OpenSBI enters `_start` on the boot hart with `a0 = hartid`, `a1 = dtb`.
//! Other harts are started later through SBI HSM at `_secondary_start` with
//! `a1 = opaque` (unused). Each hart gets `KERNEL_STACK_SIZE` bytes of stack.

use core::arch::global_asm;

pub const MAX_HARTS: usize = 8;
pub const KERNEL_STACK_SIZE: usize = 64 * 1024;

global_asm!(
    r#"
    .section .text.entry
    /* sp = boot_stack + (hartid + 1) * STACK_SIZE */
    .macro  hart_stack
    la      sp, boot_stack
    li      t0, {stack_size}
    addi    t1, a0, 1
1:  add     sp, sp, t0
    addi    t1, t1, -1
    bnez    t1, 1b
    .endm

    .globl _start
_start:
    hart_stack
    call    rust_main

    .globl _secondary_start
_secondary_start:
    hart_stack
    call    rust_secondary_main

    .section .bss.stack
    .align 12
    .globl boot_stack
boot_stack:
    .space {stack_size} * {max_harts}
    .globl boot_stack_top
boot_stack_top:
"#,
    stack_size = const KERNEL_STACK_SIZE,
    max_harts = const MAX_HARTS,
);

extern "C" {
    pub fn _secondary_start();
}
