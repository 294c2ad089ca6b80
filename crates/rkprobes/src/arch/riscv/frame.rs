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
    #[inline]
    pub fn ret(&self) -> usize {
        self.x[Self::A0]
    }
    /// Second return register `a1`.
    #[inline]
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

/// What a function probe's call handler (`on_call`) sees at the
/// function's entry: the arguments, `sp`, the return address and the
/// function's address, nothing else. A view of a frame whose other
/// registers the light entry does not save (`detour.rs`), so it has no
/// way to read them.
#[repr(transparent)]
pub struct CallRegs(TrapFrame);

impl CallRegs {
    /// The view of a full frame (a call probe hit through a breakpoint or
    /// through a detour made for other probes).
    #[inline(always)]
    pub fn of(tf: &mut TrapFrame) -> &mut CallRegs {
        // SAFETY: `repr(transparent)` over `TrapFrame`.
        unsafe { &mut *(tf as *mut TrapFrame).cast::<CallRegs>() }
    }
    /// Integer argument `n` (`a0`..`a7`); panics past `a7`. (Floating
    /// point arguments, `fa0`..`fa7`, are not saved.)
    #[inline]
    pub fn arg(&self, n: usize) -> usize {
        self.0.x[Self::arg_reg(n)]
    }
    /// Changes argument `n`: the function sees the new value.
    #[inline]
    pub fn set_arg(&mut self, n: usize, v: usize) {
        self.0.x[Self::arg_reg(n)] = v;
    }
    #[inline]
    fn arg_reg(n: usize) -> usize {
        assert!(n < 8, "a function probe sees a0..a7, not argument {n}");
        TrapFrame::A0 + n
    }
    /// Where the call returns to (the caller, or the stub of another
    /// return probe whose function tail-called this one).
    #[inline]
    pub fn ra(&self) -> usize {
        self.0.ra()
    }
    #[inline]
    pub fn sp(&self) -> usize {
        self.0.sp()
    }
    /// The function's address.
    #[inline]
    pub fn pc(&self) -> usize {
        self.0.pc()
    }
}

/// What a function probe's return handler (`on_return`) sees: the return
/// value, `sp` (the caller's) and where the call returns to. Saved by the
/// light return trampoline (`trampoline.rs`); what the handler writes to
/// the return value is what the caller gets. (A floating point return
/// value, `fa0`/`fa1`, is not saved.)
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReturnRegs {
    a0: usize,
    a1: usize,
    sp: usize,
    pc: usize,
}

impl ReturnRegs {
    /// The first return register, `a0`.
    #[inline]
    pub fn ret(&self) -> usize {
        self.a0
    }
    /// The second return register, `a1` (a two-word return value).
    #[inline]
    pub fn ret2(&self) -> usize {
        self.a1
    }
    /// Changes `a0`: the caller gets the new value.
    #[inline]
    pub fn set_ret(&mut self, v: usize) {
        self.a0 = v;
    }
    /// Changes `a1`.
    #[inline]
    pub fn set_ret2(&mut self, v: usize) {
        self.a1 = v;
    }
    #[inline]
    pub fn sp(&self) -> usize {
        self.sp
    }
    /// Where the call returns to (see `CallRegs::ra`).
    #[inline]
    pub fn pc(&self) -> usize {
        self.pc
    }
    #[inline(always)]
    pub(crate) fn set_pc(&mut self, pc: usize) {
        self.pc = pc;
    }

    /// As the light trampoline saves them (its pc set by the library).
    #[cfg(test)]
    pub(crate) fn saved(a0: usize, a1: usize, sp: usize) -> Self {
        ReturnRegs { a0, a1, sp, pc: 0 }
    }

    /// The view of a full frame at a return, and back: a return handler
    /// given one where the return came through a full frame (a uretprobe).
    pub(crate) fn with_frame(tf: &mut TrapFrame, f: impl FnOnce(&mut ReturnRegs)) {
        let mut r = ReturnRegs {
            a0: tf.ret(),
            a1: tf.ret2(),
            sp: tf.sp(),
            pc: tf.pc(),
        };
        f(&mut r);
        tf.x[TrapFrame::A0] = r.a0;
        tf.x[TrapFrame::A0 + 1] = r.a1;
    }
}

/// Where the light return trampoline's assembly stores `sp`.
#[cfg_attr(not(target_arch = "riscv64"), allow(dead_code))]
pub(crate) const RETURN_REGS_SP: usize = 16;
const _: () = assert!(core::mem::size_of::<ReturnRegs>() == 32);
