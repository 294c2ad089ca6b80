//! The register frame the library reads and writes at a breakpoint.
//!
//! The OS's trap entry saves registers in exactly this layout (`repr(C)`:
//! `x0..x31`, then `sepc`, then `sstatus`), so a trap frame can be handed
//! to the library without copying. `x[0]` is saved but always read as zero.

/// Registers of an interrupted RISC-V context, kernel or user.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrapFrame {
    /// General purpose registers `x0..x31` (`x[2]` is `sp`, `x[10]` is `a0`).
    pub x: [usize; 32],
    /// The interrupted pc.
    pub sepc: usize,
    /// `sstatus` at the time of the trap (SPP, SPIE, ...).
    pub sstatus: usize,
}

/// The seed API's name for a user-mode register frame: same layout.
pub type UserContext = TrapFrame;

impl TrapFrame {
    pub const RA: usize = 1;
    pub const SP: usize = 2;
    pub const A0: usize = 10;

    /// The pc of the interrupted instruction.
    pub fn pc(&self) -> usize {
        self.sepc
    }
    pub fn set_pc(&mut self, pc: usize) {
        self.sepc = pc;
    }
    /// Register `i` (x0 reads as zero).
    pub fn reg(&self, i: usize) -> usize {
        if i == 0 {
            0
        } else {
            self.x[i]
        }
    }
    /// Writes register `i`; writes to x0 are dropped.
    pub fn set_reg(&mut self, i: usize, v: usize) {
        if i != 0 {
            self.x[i] = v;
        }
    }
    /// Integer argument `n` (`a0..a7`) by the calling convention.
    pub fn arg(&self, n: usize) -> usize {
        self.x[Self::A0 + n]
    }
    /// First return register `a0`.
    pub fn ret(&self) -> usize {
        self.x[Self::A0]
    }
    /// Second return register `a1`.
    pub fn ret2(&self) -> usize {
        self.x[Self::A0 + 1]
    }
    pub fn ra(&self) -> usize {
        self.x[Self::RA]
    }
    pub fn sp(&self) -> usize {
        self.x[Self::SP]
    }
}
