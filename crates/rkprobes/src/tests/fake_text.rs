//! The fake kernel text: hand-assembled RISC-V functions, one per test, so
//! tests running in parallel never share a probed address.

use alloc::vec::Vec;

/// One instruction of the fake text.
#[derive(Clone, Copy, Debug)]
pub enum Op {
    C(u16),
    W(u32),
}

impl Op {
    pub fn len(self) -> usize {
        match self {
            Op::C(_) => 2,
            Op::W(_) => 4,
        }
    }
}

// Encodings, checked against the library's decoder below.
pub const C_LI_A0_1: u16 = 0x4505; // c.li a0, 1
pub const C_MV_A1_A0: u16 = 0x85aa; // c.mv a1, a0
pub const C_NOP: u16 = 0x0001; // c.nop
pub const C_RET: u16 = 0x8082; // c.jr ra
pub const C_BEQZ_A0_6: u16 = 0xc119; // c.beqz a0, +6
pub const C_EBREAK: u16 = 0x9002; // c.ebreak
pub const ADDI_A0_A0_5: u32 = 0x0055_0513; // addi a0, a0, 5
pub const ADD_A0_A0_A1: u32 = 0x00b5_0533; // add a0, a0, a1
pub const JAL_RA_16: u32 = 0x0100_00ef; // jal ra, +16
pub const AUIPC_A0_1: u32 = 0x0000_1517; // auipc a0, 0x1
pub const BEQ_A0_A1_8: u32 = 0x00b5_0463; // beq a0, a1, +8
pub const ADDI_A0_ZERO_1: u32 = 0x0010_0513; // addi a0, zero, 1
pub const CSRR_A0_SSTATUS: u32 = 0x1000_2573; // csrr a0, sstatus
pub const EBREAK: u32 = 0x0010_0073; // ebreak

/// Offsets of the instructions of `STANDARD`. 32-bit instructions sit at
/// both 0 and 2 mod 4 (the text is page aligned).
pub mod off {
    pub const C_LI: usize = 0; // out of line
    pub const ADDI: usize = 2; // out of line, 2 mod 4
    pub const ADD: usize = 6; // out of line, 2 mod 4
    pub const JAL: usize = 10; // simulated, 2 mod 4
    pub const C_BEQZ: usize = 14; // simulated
    pub const AUIPC: usize = 16; // simulated, 0 mod 4
    pub const BEQ: usize = 20; // simulated
    pub const ADDI_ZERO: usize = 24; // out of line, 0 mod 4
    pub const CSRR: usize = 28; // refused
    pub const C_MV: usize = 32; // out of line
    pub const C_RET: usize = 34; // simulated
    /// Past the function's end, before the next one: no symbol covers it.
    pub const PADDING: usize = 0x30;
}

/// The body most test functions have.
pub const STANDARD: &[Op] = &[
    Op::C(C_LI_A0_1),
    Op::W(ADDI_A0_A0_5),
    Op::W(ADD_A0_A0_A1),
    Op::W(JAL_RA_16),
    Op::C(C_BEQZ_A0_6),
    Op::W(AUIPC_A0_1),
    Op::W(BEQ_A0_A1_8),
    Op::W(ADDI_A0_ZERO_1),
    Op::W(CSRR_A0_SSTATUS),
    Op::C(C_MV_A1_A0),
    Op::C(C_RET),
];

/// A function whose entry is a 32-bit instruction (a jump probe's place).
pub const WIDE_ENTRY: &[Op] = &[Op::W(ADD_A0_A0_A1), Op::C(C_RET)];

/// Breakpoints nobody registered: `c.ebreak` at +0, `ebreak` at +2.
pub const FOREIGN_BREAKPOINTS: &[Op] = &[Op::C(C_EBREAK), Op::W(EBREAK), Op::C(C_RET)];

/// Function `i` starts at `i * FN_STRIDE` from the start of the text.
pub const FN_STRIDE: usize = 0x40;

/// The function the fake OS blacklists.
pub const BLACKLISTED: &str = "blacklisted";

pub const FUNCTIONS: &[(&str, &[Op])] = &[
    ("patch", STANDARD),
    ("shared", STANDARD),
    ("errors", STANDARD),
    ("walk", STANDARD),
    ("pre_regs", STANDARD),
    ("simulated", STANDARD),
    ("skip", STANDARD),
    ("seed_skip", STANDARD),
    ("in_handler", STANDARD),
    ("nested_outer", STANDARD),
    ("nested_inner", STANDARD),
    ("enable", STANDARD),
    ("listing", STANDARD),
    ("race", STANDARD),
    ("fault", STANDARD),
    ("conc", STANDARD),
    ("jumps", STANDARD),
    ("retprobe", STANDARD),
    ("rkprobes::api::Kprobe::pre::{{closure}}", STANDARD),
    ("foreign", FOREIGN_BREAKPOINTS),
    ("wide_entry", WIDE_ENTRY),
    ("wide_entry_insn_first", WIDE_ENTRY),
    ("light_entry", WIDE_ENTRY),
    (BLACKLISTED, STANDARD),
];

/// The parcels of `ops`, little-endian halves for 32-bit instructions.
pub fn assemble(ops: &[Op]) -> Vec<u16> {
    let mut out = Vec::new();
    for op in ops {
        match *op {
            Op::C(p) => out.push(p),
            Op::W(w) => out.extend([w as u16, (w >> 16) as u16]),
        }
    }
    out
}

pub fn size(ops: &[Op]) -> usize {
    ops.iter().map(|op| op.len()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::current::decode::decode;
    use crate::arch::current::insn::Insn;
    use alloc::vec::Vec;

    /// A typo in an encoding would make every other test check nonsense.
    #[test]
    fn encodings_decode_as_named() {
        let cases: &[(Op, &str)] = &[
            (Op::C(C_LI_A0_1), "c.li"),
            (Op::C(C_MV_A1_A0), "c.mv"),
            (Op::C(C_NOP), "c.nop"),
            (Op::C(C_RET), "c.jr"),
            (Op::C(C_BEQZ_A0_6), "c.beqz"),
            (Op::C(C_EBREAK), "c.ebreak"),
            (Op::W(ADDI_A0_A0_5), "addi"),
            (Op::W(ADD_A0_A0_A1), "add"),
            (Op::W(JAL_RA_16), "jal"),
            (Op::W(AUIPC_A0_1), "auipc"),
            (Op::W(BEQ_A0_A1_8), "beq"),
            (Op::W(ADDI_A0_ZERO_1), "addi"),
            (Op::W(CSRR_A0_SSTATUS), "csrrs"),
            (Op::W(EBREAK), "ebreak"),
        ];
        for &(op, name) in cases {
            let p = assemble(&[op]);
            let insn = Insn::from_parcels(p[0], p.get(1).copied().unwrap_or(0)).unwrap();
            assert_eq!(insn.len(), op.len(), "{op:x?}");
            assert_eq!(decode(insn).mnemonic, name, "{op:x?}");
        }
    }

    #[test]
    fn standard_offsets_match_the_body() {
        let mut at = 0;
        let mut starts = Vec::new();
        for op in STANDARD {
            starts.push(at);
            at += op.len();
        }
        let named = [
            off::C_LI,
            off::ADDI,
            off::ADD,
            off::JAL,
            off::C_BEQZ,
            off::AUIPC,
            off::BEQ,
            off::ADDI_ZERO,
            off::CSRR,
            off::C_MV,
            off::C_RET,
        ];
        assert_eq!(starts, named);
        assert!(size(STANDARD) <= off::PADDING && off::PADDING < FN_STRIDE);
    }
}
