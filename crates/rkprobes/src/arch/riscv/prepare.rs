//! From raw text bytes to what a probe does at a hit: the arch interface the
//! core uses (`prepare`, `Prepared::execute`, slot code, irq masking).

use super::decode::{decode, Action, RejectReason};
use super::frame::TrapFrame;
use super::insn::Insn;
use super::simulate::{simulate, Bound, SimOp};
use super::slot;

/// Instructions start on 2-byte boundaries (C extension).
pub const INSN_ALIGN: usize = 2;

/// An instruction accepted for probing, and how a hit executes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prepared {
    pub insn: Insn,
    pub mnemonic: &'static str,
    pub exec: Exec,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exec {
    /// Computed on the trap frame: no slot, no second trap.
    Simulate(SimOp),
    /// Stepped in a slot that ends in a breakpoint.
    OutOfLine,
}

/// What a hit at one address does (`Prepared::at`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Run {
    /// The simulation, bound to the address.
    Simulate(Bound),
    OutOfLine,
}

/// Decodes the instruction at the start of `bytes` (at least the
/// instruction's length). Errors name the instruction and the reason.
pub fn prepare(bytes: &[u8]) -> Result<Prepared, (&'static str, RejectReason)> {
    let insn = Insn::from_bytes(bytes).ok_or(("long", RejectReason::TooLong))?;
    let d = decode(insn);
    let exec = match d.action {
        Action::Simulate(op) => Exec::Simulate(op),
        Action::OutOfLine => Exec::OutOfLine,
        Action::Reject(reason) => return Err((d.mnemonic, reason)),
    };
    Ok(Prepared {
        insn,
        mnemonic: d.mnemonic,
        exec,
    })
}

/// Length of the instruction whose first bytes are `bytes`, for walking a
/// function from its start; `None` if it cannot be read.
pub fn insn_len_at(bytes: &[u8]) -> Option<usize> {
    super::insn::insn_len(u16::from_le_bytes([*bytes.first()?, *bytes.get(1)?]))
}

impl Prepared {
    #[allow(clippy::len_without_is_empty)] // an instruction is never empty
    pub fn len(&self) -> usize {
        self.insn.len()
    }
    pub fn needs_slot(&self) -> bool {
        self.exec == Exec::OutOfLine
    }
    pub fn slot_code(&self) -> [u8; slot::SLOT_SIZE] {
        slot::code(self.insn)
    }
    pub fn slot_return_pc(&self, slot: usize) -> usize {
        slot::return_pc(slot, self.insn)
    }
    /// What a hit does with this instruction at `addr`.
    pub fn at(&self, addr: usize) -> Run {
        match self.exec {
            Exec::Simulate(op) => Run::Simulate(Bound::new(op, addr, self.len())),
            Exec::OutOfLine => Run::OutOfLine,
        }
    }
    /// Whether a hit leaves the registers a call keeps (`gp`, `tp`,
    /// `s0`-`s11`) as they are in the frame: true unless a simulation
    /// writes one (`auipc s0`, `jal s1`; only hand-written code does). A
    /// copy run out of line writes live registers, not the frame.
    pub fn keeps_callee_saved(&self) -> bool {
        let rd = match self.exec {
            Exec::Simulate(
                SimOp::Auipc { rd, .. } | SimOp::Jal { rd, .. } | SimOp::Jalr { rd, .. },
            ) => rd,
            Exec::Simulate(SimOp::Branch { .. }) | Exec::OutOfLine => return true,
        };
        !matches!(rd.index(), 3 | 4 | 8 | 9 | 18..=27)
    }
    /// Runs a simulated instruction found at `pc` on `tf`, pc included.
    #[inline(always)]
    pub fn simulate(&self, op: SimOp, pc: usize, tf: &mut TrapFrame) {
        tf.sepc = simulate(op, pc, self.len(), &mut tf.x);
    }
}

const SSTATUS_SPIE: usize = 1 << 5;

/// Makes the return from this trap keep interrupts masked (for stepping a
/// slot); returns what `restore_irqs` needs.
#[inline(always)]
pub fn mask_irqs_on_return(tf: &mut TrapFrame) -> bool {
    let was = tf.sstatus & SSTATUS_SPIE != 0;
    tf.sstatus &= !SSTATUS_SPIE;
    was
}

/// Undoes `mask_irqs_on_return` on the slot's own trap frame.
#[inline(always)]
pub fn restore_irqs(tf: &mut TrapFrame, was_enabled: bool) {
    if was_enabled {
        tf.sstatus |= SSTATUS_SPIE;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepared(raw: u32) -> Prepared {
        prepare(&raw.to_le_bytes()).expect("accepted")
    }

    /// Only a simulation that writes `gp`, `tp` or `s0`-`s11` in the frame
    /// needs them restored.
    #[test]
    fn which_hits_keep_the_callee_saved_registers() {
        let keeps = [
            0x00b5_0533, // add a0, a0, a1 (out of line)
            0x0000_0517, // auipc a0, 0
            0x0100_00ef, // jal ra, +16
            0x00b5_0463, // beq a0, a1, +8
            0x0000_8067, // ret (jalr x0, 0(ra))
        ];
        for raw in keeps {
            assert!(prepared(raw).keeps_callee_saved(), "{raw:#010x}");
        }
        let writes = [
            0x0000_0417, // auipc s0, 0
            0x0100_04ef, // jal s1, +16
            0x0000_8d67, // jalr s10, 0(ra)
            0x0000_0217, // auipc tp, 0
        ];
        for raw in writes {
            assert!(!prepared(raw).keeps_callee_saved(), "{raw:#010x}");
        }
    }
}
