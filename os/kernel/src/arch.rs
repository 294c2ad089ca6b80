//! Small RISC-V register helpers: CSRs, hart identity, interrupt masking.

use core::arch::asm;

/// Bits of `sstatus`.
pub const SSTATUS_SIE: usize = 1 << 1;
pub const SSTATUS_SPP: usize = 1 << 8;
pub const SSTATUS_FS_INITIAL: usize = 1 << 13;

macro_rules! csr_read {
    ($csr:literal) => {{
        let v: usize;
        // SAFETY: reading a CSR has no side effect on memory.
        unsafe { asm!(concat!("csrr {}, ", $csr), out(reg) v) };
        v
    }};
}

pub fn scause() -> usize {
    csr_read!("scause")
}
pub fn stval() -> usize {
    csr_read!("stval")
}
pub fn time() -> u64 {
    csr_read!("time") as u64
}

/// The hart id kept in `tp` while running in the kernel.
#[inline(always)]
pub fn hart_id() -> usize {
    let id: usize;
    // SAFETY: reading tp; the kernel keeps its hart id there.
    unsafe { asm!("mv {}, tp", out(reg) id) };
    id
}

/// # Safety
/// Must be called once per hart during boot, before anything reads `hart_id`.
pub unsafe fn set_hart_id(id: usize) {
    // SAFETY: the caller guarantees this is the per-hart boot path.
    unsafe { asm!("mv tp, {}", in(reg) id) };
}

pub fn irq_enable() {
    // SAFETY: setting sstatus.SIE only allows interrupts to be taken.
    unsafe { asm!("csrs sstatus, {}", in(reg) SSTATUS_SIE) };
}

/// Masks interrupts and returns whether they were enabled.
pub fn irq_disable() -> bool {
    let old: usize;
    // SAFETY: clearing sstatus.SIE only masks interrupts.
    unsafe { asm!("csrrc {}, sstatus, {}", out(reg) old, in(reg) SSTATUS_SIE) };
    old & SSTATUS_SIE != 0
}

/// Interrupts masked for the guard's lifetime, restored on drop.
pub struct IrqGuard(bool);

impl IrqGuard {
    pub fn new() -> Self {
        Self(irq_disable())
    }
}

impl Drop for IrqGuard {
    fn drop(&mut self) {
        if self.0 {
            irq_enable();
        }
    }
}

pub fn fence_i() {
    // SAFETY: an instruction fence has no effect on memory safety.
    unsafe { asm!("fence.i") };
}

pub fn wfi() {
    // SAFETY: waits for an interrupt; no memory effect.
    unsafe { asm!("wfi") };
}
