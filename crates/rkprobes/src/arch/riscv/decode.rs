//! What a probe may do with an instruction: simulate it, step it out of line,
//! or refuse it.
//!
//! Decoding is two steps. [`mnemonic`] names the instruction, checking every
//! opcode, funct and fixed field of RV64GC (I, M, A, F, D, C, Zicsr,
//! Zifencei), so that anything unassigned or reserved is `None`. [`decode`]
//! then maps the name to an action in one table: refused classes first, then
//! the PC-relative ones we simulate, and by default the rest runs out of line.

use core::fmt;

use super::insn::{bits, insn_len, Insn};
use super::simulate::{self, Cond, SimOp};

/// What a probe does with the probed instruction.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Action {
    /// PC-relative: computed by [`simulate::simulate`].
    Simulate(SimOp),
    /// Copied to a slot and executed there, followed by a breakpoint.
    OutOfLine,
    /// Cannot be probed.
    Reject(RejectReason),
}

/// The decoder's verdict on one instruction.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct Decoded {
    /// Lower-case assembler name, e.g. `"c.beqz"`, `"fld"`, `"amoadd.w"`;
    /// `"illegal"` for unassigned or reserved encodings, `"long"` for 48-bit+.
    pub mnemonic: &'static str,
    pub action: Action,
}

/// Why an instruction cannot be probed.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum RejectReason {
    /// Reserved or unknown encoding, or outside RV64GC.
    Illegal,
    /// `ebreak` and `c.ebreak` belong to the probe machinery.
    Ebreak,
    Ecall,
    /// `sret`, `mret`, `wfi`, `sfence.vma`, ...
    Privileged,
    Csr,
    FenceI,
    LoadReserved,
    StoreConditional,
    /// 48-bit or longer encodings.
    TooLong,
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RejectReason::Illegal => "is not a valid RV64GC instruction",
            RejectReason::Ebreak => "is a breakpoint, owned by the debugger or probes",
            RejectReason::Ecall => "is an environment call (trap) to a more privileged mode",
            RejectReason::Privileged => "is privileged (trap return, wfi, sfence.vma)",
            RejectReason::Csr => "reads or writes a CSR",
            RejectReason::FenceI => "synchronizes the instruction stream (fence.i)",
            RejectReason::LoadReserved => {
                "takes a reservation (lr) that the single-step trap would break"
            }
            RejectReason::StoreConditional => {
                "needs a reservation (sc) that the single-step trap would break"
            }
            RejectReason::TooLong => "is 48 bits or longer, outside RV64GC",
        })
    }
}

/// Decides what to do with `insn`.
pub fn decode(insn: Insn) -> Decoded {
    use Action::{OutOfLine, Reject, Simulate};
    use RejectReason::*;

    let Some(mnemonic) = mnemonic(insn) else {
        return Decoded {
            mnemonic: "illegal",
            action: Reject(Illegal),
        };
    };
    let action = match mnemonic {
        // Refused.
        "ebreak" | "c.ebreak" => Reject(Ebreak),
        "ecall" => Reject(Ecall),
        "sret" | "mret" | "wfi" | "sfence.vma" => Reject(Privileged),
        "csrrw" | "csrrs" | "csrrc" | "csrrwi" | "csrrsi" | "csrrci" => Reject(Csr),
        "fence.i" => Reject(FenceI),
        "lr.w" | "lr.d" => Reject(LoadReserved),
        "sc.w" | "sc.d" => Reject(StoreConditional),

        // PC-relative: simulated.
        "auipc" => Simulate(simulate::auipc(insn)),
        "jal" => Simulate(simulate::jal(insn)),
        "jalr" => Simulate(simulate::jalr(insn)),
        "beq" => Simulate(simulate::branch(insn, Cond::Eq)),
        "bne" => Simulate(simulate::branch(insn, Cond::Ne)),
        "blt" => Simulate(simulate::branch(insn, Cond::Lt)),
        "bge" => Simulate(simulate::branch(insn, Cond::Ge)),
        "bltu" => Simulate(simulate::branch(insn, Cond::Ltu)),
        "bgeu" => Simulate(simulate::branch(insn, Cond::Geu)),
        "c.j" => Simulate(simulate::c_j(insn)),
        "c.jr" | "c.jalr" => Simulate(simulate::c_jr_jalr(insn)),
        "c.beqz" | "c.bnez" => Simulate(simulate::c_beqz_bnez(insn)),

        // Everything else only touches registers and memory.
        _ => OutOfLine,
    };
    Decoded { mnemonic, action }
}

/// Decides what to do with the instruction at the start of `bytes`
/// (little-endian). Unlike [`decode`] this also sees 48-bit+ encodings, and
/// refuses them. `None` if `bytes` is shorter than the instruction.
pub fn decode_bytes(bytes: &[u8]) -> Option<Decoded> {
    let lo = u16::from_le_bytes([*bytes.first()?, *bytes.get(1)?]);
    // The spec reserves all-ones parcels as illegal at any length.
    if lo == 0xffff {
        return Some(Decoded {
            mnemonic: "illegal",
            action: Action::Reject(RejectReason::Illegal),
        });
    }
    if insn_len(lo).is_none() {
        return Some(Decoded {
            mnemonic: "long",
            action: Action::Reject(RejectReason::TooLong),
        });
    }
    Insn::from_bytes(bytes).map(decode)
}

/// The assembler name of `insn`, or `None` if the encoding is reserved or not
/// part of RV64GC.
pub fn mnemonic(insn: Insn) -> Option<&'static str> {
    if insn.is_compressed() {
        mnemonic16(insn.raw())
    } else {
        mnemonic32(insn.raw())
    }
}

// Major opcodes (bits 6:0) of 32-bit instructions.
const LOAD: u32 = 0x03;
const LOAD_FP: u32 = 0x07;
const MISC_MEM: u32 = 0x0f;
const OP_IMM: u32 = 0x13;
const AUIPC: u32 = 0x17;
const OP_IMM_32: u32 = 0x1b;
const STORE: u32 = 0x23;
const STORE_FP: u32 = 0x27;
const AMO: u32 = 0x2f;
const OP: u32 = 0x33;
const LUI: u32 = 0x37;
const OP_32: u32 = 0x3b;
const MADD: u32 = 0x43;
const MSUB: u32 = 0x47;
const NMSUB: u32 = 0x4b;
const NMADD: u32 = 0x4f;
const OP_FP: u32 = 0x53;
const BRANCH: u32 = 0x63;
const JALR: u32 = 0x67;
const JAL: u32 = 0x6f;
const SYSTEM: u32 = 0x73;

//  31     25 24   20 19   15 14  12 11    7 6      0
// +---------+-------+-------+------+-------+--------+
// | funct7  |  rs2  |  rs1  |funct3|  rd   | opcode |
// +---------+-------+-------+------+-------+--------+
fn mnemonic32(raw: u32) -> Option<&'static str> {
    let f3 = bits(raw, 14, 12);
    let f7 = bits(raw, 31, 25);
    let rs2 = bits(raw, 24, 20);
    Some(match bits(raw, 6, 0) {
        LOAD => ["lb", "lh", "lw", "ld", "lbu", "lhu", "lwu"]
            .get(f3 as usize)
            .copied()?,
        LOAD_FP => match f3 {
            0b010 => "flw",
            0b011 => "fld",
            _ => return None,
        },
        MISC_MEM => match f3 {
            // Reserved fm/pred/succ/rs1/rd values must run as a plain fence
            // (spec), so every funct3=000 word is some fence.
            0b000 if raw & 0xfff0_0000 == 0x8330_0000 => "fence.tso",
            0b000 => "fence",
            0b001 => "fence.i",
            _ => return None,
        },
        // RV64 shifts take a 6-bit shamt, so only funct7[6:1] is fixed.
        OP_IMM => match (f3, f7 >> 1) {
            (0b000, _) => "addi",
            (0b001, 0b000000) => "slli",
            (0b010, _) => "slti",
            (0b011, _) => "sltiu",
            (0b100, _) => "xori",
            (0b101, 0b000000) => "srli",
            (0b101, 0b010000) => "srai",
            (0b110, _) => "ori",
            (0b111, _) => "andi",
            _ => return None,
        },
        AUIPC => "auipc",
        OP_IMM_32 => match (f3, f7) {
            (0b000, _) => "addiw",
            (0b001, 0b0000000) => "slliw",
            (0b101, 0b0000000) => "srliw",
            (0b101, 0b0100000) => "sraiw",
            _ => return None,
        },
        STORE => ["sb", "sh", "sw", "sd"].get(f3 as usize).copied()?,
        STORE_FP => match f3 {
            0b010 => "fsw",
            0b011 => "fsd",
            _ => return None,
        },
        AMO => amo(f3, f7 >> 2, rs2)?,
        OP => match (f7, f3) {
            (0b0000000, _) => ["add", "sll", "slt", "sltu", "xor", "srl", "or", "and"][f3 as usize],
            (0b0100000, 0b000) => "sub",
            (0b0100000, 0b101) => "sra",
            (0b0000001, _) => [
                "mul", "mulh", "mulhsu", "mulhu", "div", "divu", "rem", "remu",
            ][f3 as usize],
            _ => return None,
        },
        LUI => "lui",
        OP_32 => match (f7, f3) {
            (0b0000000, 0b000) => "addw",
            (0b0000000, 0b001) => "sllw",
            (0b0000000, 0b101) => "srlw",
            (0b0100000, 0b000) => "subw",
            (0b0100000, 0b101) => "sraw",
            (0b0000001, 0b000) => "mulw",
            (0b0000001, 0b100) => "divw",
            (0b0000001, 0b101) => "divuw",
            (0b0000001, 0b110) => "remw",
            (0b0000001, 0b111) => "remuw",
            _ => return None,
        },
        MADD | MSUB | NMSUB | NMADD => fma(bits(raw, 6, 0), f7 & 0b11, f3)?,
        OP_FP => op_fp(f7, f3, rs2)?,
        BRANCH => match f3 {
            0b000 => "beq",
            0b001 => "bne",
            0b100 => "blt",
            0b101 => "bge",
            0b110 => "bltu",
            0b111 => "bgeu",
            _ => return None,
        },
        JALR if f3 == 0 => "jalr",
        JAL => "jal",
        SYSTEM => system(raw, f3, f7)?,
        // custom-0..3, OP-V, reserved, and JALR with funct3 != 0.
        _ => return None,
    })
}

//  31   27 26 25 24  20 19  15 14  12 11  7 6       0
// +-------+--+--+------+------+------+-----+---------+
// | funct5|aq|rl| rs2  | rs1  | 01w  | rd  | 0101111 |  w: 0 = .w, 1 = .d
// +-------+--+--+------+------+------+-----+---------+
fn amo(f3: u32, f5: u32, rs2: u32) -> Option<&'static str> {
    let (w, d) = match f5 {
        0b00010 if rs2 == 0 => ("lr.w", "lr.d"),
        0b00011 => ("sc.w", "sc.d"),
        0b00001 => ("amoswap.w", "amoswap.d"),
        0b00000 => ("amoadd.w", "amoadd.d"),
        0b00100 => ("amoxor.w", "amoxor.d"),
        0b01100 => ("amoand.w", "amoand.d"),
        0b01000 => ("amoor.w", "amoor.d"),
        0b10000 => ("amomin.w", "amomin.d"),
        0b10100 => ("amomax.w", "amomax.d"),
        0b11000 => ("amominu.w", "amominu.d"),
        0b11100 => ("amomaxu.w", "amomaxu.d"),
        _ => return None,
    };
    match f3 {
        0b010 => Some(w),
        0b011 => Some(d),
        _ => None,
    }
}

/// Rounding modes 101 and 110 are reserved; 111 is "dynamic" and valid.
fn rm_valid(rm: u32) -> bool {
    rm != 0b101 && rm != 0b110
}

//  31  27 26 25 24  20 19  15 14  12 11  7 6      0
// +------+-----+------+------+------+-----+--------+
// | rs3  | fmt | rs2  | rs1  |  rm  | rd  | opcode |  fmt: 00 = .s, 01 = .d
// +------+-----+------+------+------+-----+--------+
fn fma(opcode: u32, fmt: u32, rm: u32) -> Option<&'static str> {
    if !rm_valid(rm) {
        return None;
    }
    let names = match opcode {
        MADD => ["fmadd.s", "fmadd.d"],
        MSUB => ["fmsub.s", "fmsub.d"],
        NMSUB => ["fnmsub.s", "fnmsub.d"],
        _ => ["fnmadd.s", "fnmadd.d"],
    };
    // fmt 10 (half) and 11 (quad) are outside RV64GC.
    names.get(fmt as usize).copied()
}

//  31    27 26 25 24  20 19  15 14  12 11  7 6       0
// +--------+-----+------+------+------+-----+---------+
// | funct5 | fmt | rs2  | rs1  |rm/f3 | rd  | 1010011 |  fmt: 00 = .s, 01 = .d
// +--------+-----+------+------+------+-----+---------+
fn op_fp(f7: u32, f3: u32, rs2: u32) -> Option<&'static str> {
    let fmt = (f7 & 0b11) as usize;
    if fmt > 1 {
        return None; // half and quad precision are outside RV64GC
    }
    let rm = rm_valid(f3);
    let pick = |names: [&'static str; 2]| Some(names[fmt]);
    match (f7 >> 2, f3, rs2) {
        (0b00000, _, _) if rm => pick(["fadd.s", "fadd.d"]),
        (0b00001, _, _) if rm => pick(["fsub.s", "fsub.d"]),
        (0b00010, _, _) if rm => pick(["fmul.s", "fmul.d"]),
        (0b00011, _, _) if rm => pick(["fdiv.s", "fdiv.d"]),
        (0b01011, _, 0) if rm => pick(["fsqrt.s", "fsqrt.d"]),
        (0b00100, 0b000, _) => pick(["fsgnj.s", "fsgnj.d"]),
        (0b00100, 0b001, _) => pick(["fsgnjn.s", "fsgnjn.d"]),
        (0b00100, 0b010, _) => pick(["fsgnjx.s", "fsgnjx.d"]),
        (0b00101, 0b000, _) => pick(["fmin.s", "fmin.d"]),
        (0b00101, 0b001, _) => pick(["fmax.s", "fmax.d"]),
        // fcvt between precisions: rs2 names the source format.
        (0b01000, _, 1) if rm && fmt == 0 => Some("fcvt.s.d"),
        (0b01000, _, 0) if rm && fmt == 1 => Some("fcvt.d.s"),
        (0b10100, 0b000, _) => pick(["fle.s", "fle.d"]),
        (0b10100, 0b001, _) => pick(["flt.s", "flt.d"]),
        (0b10100, 0b010, _) => pick(["feq.s", "feq.d"]),
        // fcvt to / from integers: rs2 = 0 w, 1 wu, 2 l, 3 lu.
        (0b11000, _, 0..=3) if rm => Some(
            [
                ["fcvt.w.s", "fcvt.wu.s", "fcvt.l.s", "fcvt.lu.s"],
                ["fcvt.w.d", "fcvt.wu.d", "fcvt.l.d", "fcvt.lu.d"],
            ][fmt][rs2 as usize],
        ),
        (0b11010, _, 0..=3) if rm => Some(
            [
                ["fcvt.s.w", "fcvt.s.wu", "fcvt.s.l", "fcvt.s.lu"],
                ["fcvt.d.w", "fcvt.d.wu", "fcvt.d.l", "fcvt.d.lu"],
            ][fmt][rs2 as usize],
        ),
        (0b11100, 0b000, 0) => pick(["fmv.x.w", "fmv.x.d"]),
        (0b11100, 0b001, 0) => pick(["fclass.s", "fclass.d"]),
        (0b11110, 0b000, 0) => pick(["fmv.w.x", "fmv.d.x"]),
        _ => None,
    }
}

//  31          20 19  15 14  12 11  7 6       0
// +--------------+------+------+-----+---------+
// |  funct12/csr | rs1  |funct3| rd  | 1110011 |
// +--------------+------+------+-----+---------+
fn system(raw: u32, f3: u32, f7: u32) -> Option<&'static str> {
    match f3 {
        0b000 => match raw {
            0x0000_0073 => Some("ecall"),
            0x0010_0073 => Some("ebreak"),
            0x1020_0073 => Some("sret"),
            0x3020_0073 => Some("mret"),
            0x1050_0073 => Some("wfi"),
            _ if f7 == 0b0001001 && bits(raw, 11, 7) == 0 => Some("sfence.vma"),
            _ => None,
        },
        0b001 => Some("csrrw"),
        0b010 => Some("csrrs"),
        0b011 => Some("csrrc"),
        0b101 => Some("csrrwi"),
        0b110 => Some("csrrsi"),
        0b111 => Some("csrrci"),
        _ => None,
    }
}

//  15  13 12  11  10 9      7 6    5 4     2 1  0
// +------+--+------+---------+------+-------+----+
// |funct3|  |      |rd/rs1   |      |  rs2  | op |   op: quadrant 0, 1, 2
// +------+--+------+---------+------+-------+----+
fn mnemonic16(raw: u32) -> Option<&'static str> {
    let f3 = bits(raw, 15, 13);
    let b12 = bits(raw, 12, 12);
    let rd = bits(raw, 11, 7); // also rs1 in quadrant 2
    let rs2 = bits(raw, 6, 2);
    let imm6 = b12 << 5 | rs2; // the CI-format immediate, bits 12 and 6:2
    Some(match (bits(raw, 1, 0), f3) {
        // Quadrant 0. An all-zero word is illegal (it is caught here too:
        // c.addi4spn with a zero immediate is reserved).
        (0b00, 0b000) if bits(raw, 12, 5) != 0 => "c.addi4spn",
        (0b00, 0b001) => "c.fld",
        (0b00, 0b010) => "c.lw",
        (0b00, 0b011) => "c.ld",
        (0b00, 0b101) => "c.fsd",
        (0b00, 0b110) => "c.sw",
        (0b00, 0b111) => "c.sd",

        // Quadrant 1. rd = x0 forms of c.addi, c.li, c.lui are HINTs and
        // execute as no-ops, so they are valid.
        (0b01, 0b000) if rd == 0 => "c.nop",
        (0b01, 0b000) => "c.addi",
        (0b01, 0b001) if rd != 0 => "c.addiw", // RV64: no c.jal here
        (0b01, 0b010) => "c.li",
        (0b01, 0b011) if rd == 2 && imm6 != 0 => "c.addi16sp",
        (0b01, 0b011) if rd != 2 && imm6 != 0 => "c.lui",
        (0b01, 0b100) => match (bits(raw, 11, 10), b12, bits(raw, 6, 5)) {
            (0b00, _, _) => "c.srli",
            (0b01, _, _) => "c.srai",
            (0b10, _, _) => "c.andi",
            (0b11, 0, 0b00) => "c.sub",
            (0b11, 0, 0b01) => "c.xor",
            (0b11, 0, 0b10) => "c.or",
            (0b11, 0, 0b11) => "c.and",
            (0b11, 1, 0b00) => "c.subw",
            (0b11, 1, 0b01) => "c.addw",
            _ => return None,
        },
        (0b01, 0b101) => "c.j",
        (0b01, 0b110) => "c.beqz",
        (0b01, 0b111) => "c.bnez",

        // Quadrant 2.
        (0b10, 0b000) => "c.slli",
        (0b10, 0b001) => "c.fldsp",
        (0b10, 0b010) if rd != 0 => "c.lwsp",
        (0b10, 0b011) if rd != 0 => "c.ldsp",
        (0b10, 0b100) => match (b12, rd, rs2) {
            (0, 0, 0) => return None, // c.jr x0 is reserved
            (0, _, 0) => "c.jr",
            (0, _, _) => "c.mv",
            (1, 0, 0) => "c.ebreak",
            (1, _, 0) => "c.jalr",
            _ => "c.add",
        },
        (0b10, 0b101) => "c.fsdsp",
        (0b10, 0b110) => "c.swsp",
        (0b10, 0b111) => "c.sdsp",

        // Quadrant 0 funct3=100 is reserved; rd=0 c.lwsp, c.ldsp, c.addiw;
        // zero-immediate c.addi4spn, c.addi16sp, c.lui.
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::riscv::insn::{Reg, C_EBREAK, EBREAK};
    use std::collections::BTreeMap;
    use std::format;
    use std::string::String;

    /// Deterministic xorshift64: no rand crate, same sample every run.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn next32(&mut self) -> u32 {
            (self.next() >> 32) as u32
        }
    }

    fn insn(raw: u32) -> Insn {
        Insn::from_parcels(raw as u16, (raw >> 16) as u16).expect("16 or 32-bit")
    }

    fn action(raw: u32) -> Action {
        decode(insn(raw)).action
    }

    fn name(raw: u32) -> &'static str {
        decode(insn(raw)).mnemonic
    }

    // ---------------------------------------------------------------------
    // Hand-checked table: one or more encodings per class.
    // ---------------------------------------------------------------------

    #[test]
    fn rejected_classes() {
        use RejectReason::*;
        let cases: &[(u32, &str, RejectReason)] = &[
            (EBREAK, "ebreak", Ebreak),
            (C_EBREAK as u32, "c.ebreak", Ebreak),
            (0x0000_0073, "ecall", Ecall),
            (0x1020_0073, "sret", Privileged),
            (0x3020_0073, "mret", Privileged),
            (0x1050_0073, "wfi", Privileged),
            (0x1200_0073, "sfence.vma", Privileged),
            (0x12b5_8073, "sfence.vma", Privileged), // sfence.vma a1, a1
            (0x3401_1073, "csrrw", Csr),
            (0x1000_2573, "csrrs", Csr), // csrr a0, sstatus
            (0x1000_3573, "csrrc", Csr),
            (0x1001_5073, "csrrwi", Csr),
            (0x1001_6073, "csrrsi", Csr),
            (0x1001_7073, "csrrci", Csr),
            (0x0000_100f, "fence.i", FenceI),
            (0x1005_252f, "lr.w", LoadReserved),
            (0x1005_352f, "lr.d", LoadReserved),
            (0x18b6_252f, "sc.w", StoreConditional),
            (0x18b6_352f, "sc.d", StoreConditional),
            // Illegal or reserved.
            (0x0000, "illegal", Illegal),      // all-zero 16-bit
            (0x0004, "illegal", Illegal),      // c.addi4spn, nzuimm = 0
            (0x8000, "illegal", Illegal),      // quadrant 0, funct3 = 100
            (0x2001, "illegal", Illegal),      // c.addiw x0 (c.jal is RV32 only)
            (0x6101, "illegal", Illegal),      // c.addi16sp 0
            (0x6501, "illegal", Illegal),      // c.lui a0, 0
            (0x8002, "illegal", Illegal),      // c.jr x0
            (0x4002, "illegal", Illegal),      // c.lwsp x0
            (0x6002, "illegal", Illegal),      // c.ldsp x0
            (0x9c41, "illegal", Illegal),      // 100 1 11 xxx 10 xxx 01: reserved (Zcb)
            (0x8200_1013, "illegal", Illegal), // slli with funct6 = 100000
            (0x0000_9067, "illegal", Illegal), // jalr, funct3 = 001
            (0x0000_2063, "illegal", Illegal), // branch funct3 = 010
            (0x0000_7003, "illegal", Illegal), // load funct3 = 111
            (0x0000_4023, "illegal", Illegal), // store funct3 = 100
            (0x0000_000b, "illegal", Illegal), // custom-0
            (0x0000_0057, "illegal", Illegal), // OP-V
            (0x02b5_5553, "illegal", Illegal), // fadd.d, rm = 101 reserved
            (0x02b5_6553, "illegal", Illegal), // fadd.d, rm = 110 reserved
            (0x04b5_7543, "illegal", Illegal), // fmadd.h (Zfh)
            (0x06b5_7543, "illegal", Illegal), // fmadd.q (Q)
            (0x0000_4073, "illegal", Illegal), // SYSTEM funct3 = 100
            (0x0020_0073, "illegal", Illegal), // SYSTEM funct3 = 0, unknown funct12
            (0x0000_200f, "illegal", Illegal), // cbo.* (Zicbom)
            (0x1015_252f, "illegal", Illegal), // lr.w with rs2 != 0
            (0x2800_252f, "illegal", Illegal), // amocas.w (Zacas)
            (0x0a00_0033, "illegal", Illegal), // OP funct7 = 0000101 (Zbb)
        ];
        for &(raw, want_name, reason) in cases {
            let d = decode(insn(raw));
            assert_eq!(d.mnemonic, want_name, "{raw:#x}");
            assert_eq!(d.action, Action::Reject(reason), "{raw:#x}");
        }
    }

    #[test]
    fn out_of_line() {
        let cases: &[(u32, &str)] = &[
            (0xff01_0113, "addi"), // addi sp, sp, -16
            (0x0011_3423, "sd"),   // sd ra, 8(sp)
            (0x0081_3083, "ld"),
            (0x1234_5537, "lui"),
            (0x02b5_0533, "mul"),
            (0x00b6_252f, "amoadd.w"),
            (0x00b6_352f, "amoadd.d"),
            (0x0005_3507, "fld"),
            (0x02b5_7553, "fadd.d"), // rm = dyn
            (0x02b5_0553, "fadd.d"), // rm = rne
            (0x0330_000f, "fence"),
            (0x8330_000f, "fence.tso"),
            (0x0100_000f, "fence"), // pause (Zihintpause) is a fence hint
            (0x4000_d513, "srai"),
            (0x03f5_1513, "slli"), // shamt 63
            (0xc200_0553, "fcvt.w.d"),
            (0xe200_0553, "fmv.x.d"),
            (0x1141, "c.addi"), // addi sp, sp, -16
            (0xe406, "c.sdsp"),
            (0x60a2, "c.ldsp"),
            (0x852e, "c.mv"),
            (0x4501, "c.li"),
            (0x0001, "c.nop"),
            (0x2085, "c.addiw"),
            (0x1000, "c.addi4spn"), // with nzuimm != 0
            (0x2000, "c.fld"),
            (0xa000, "c.fsd"),
            (0x2002, "c.fldsp"),
            (0xa002, "c.fsdsp"),
            (0x4082, "c.lwsp"),
            (0xc006, "c.swsp"),
            (0x7139, "c.addi16sp"), // addi sp, sp, -64
            (0x6505, "c.lui"),
            (0x9d2d, "c.addw"),
            (0x8d05, "c.sub"),
            (0x8d7d, "c.and"),
            (0x1502, "c.slli"), // shamt 32: RV64 only
            (0x9101, "c.srli"), // shamt 32
            (0x9501, "c.srai"), // shamt 32
            (0x9d2a, "c.add"),  // rd != 0, rs2 != 0
        ];
        for &(raw, want) in cases {
            let d = decode(insn(raw));
            assert_eq!(
                (d.mnemonic, d.action),
                (want, Action::OutOfLine),
                "{raw:#x}"
            );
        }
    }

    #[test]
    fn byte_level_entry() {
        let long = decode_bytes(&[0x1f, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!(long.action, Action::Reject(RejectReason::TooLong));
        let long64 = decode_bytes(&[0x3f, 0, 0, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!(long64.action, Action::Reject(RejectReason::TooLong));
        // All ones is reserved as illegal at any length.
        let ones = decode_bytes(&[0xff; 4]).unwrap();
        assert_eq!(ones.action, Action::Reject(RejectReason::Illegal));
        assert_eq!(decode_bytes(&[0x13]), None);
        assert_eq!(decode_bytes(&[0x13, 0x01, 0x01]), None);
        let addi = decode_bytes(&0xff01_0113u32.to_le_bytes()).unwrap();
        assert_eq!((addi.mnemonic, addi.action), ("addi", Action::OutOfLine));
        let cj = decode_bytes(&[0x01, 0xa0]).unwrap();
        assert_eq!(cj.mnemonic, "c.j");
    }

    #[test]
    fn reasons_display() {
        assert_eq!(format!("{}", RejectReason::Csr), "reads or writes a CSR");
        for r in [
            RejectReason::Illegal,
            RejectReason::Ebreak,
            RejectReason::Ecall,
            RejectReason::Privileged,
            RejectReason::FenceI,
            RejectReason::LoadReserved,
            RejectReason::StoreConditional,
            RejectReason::TooLong,
        ] {
            assert!(!format!("{r}").is_empty());
        }
    }

    // ---------------------------------------------------------------------
    // Cross-check against independent decoders.
    // ---------------------------------------------------------------------

    fn target() -> riscv_isa::Target {
        riscv_isa::Target {
            xlen: riscv_isa::Xlen::Rv64,
            privileged: true,
            supervisor_mode: true,
            m: true,
            a: true,
            f: true,
            d: true,
            c: true,
            zicsr: true,
            zifencei: true,
            ..Default::default()
        }
    }

    /// `FCVT_S_D { .. }` -> `"fcvt.s.d"`, `C_ADDI4SPN { .. }` -> `"c.addi4spn"`.
    fn variant_name<T: core::fmt::Debug>(t: &T) -> String {
        let s = format!("{t:?}");
        s.split([' ', '{', '('])
            .next()
            .unwrap()
            .to_lowercase()
            .replace('_', ".")
    }

    /// The PC-relative ops as riscv-isa sees them, in our terms.
    fn their_simop(i: &riscv_isa::Instruction, c: Option<riscv_isa::Compressed>) -> Option<SimOp> {
        use riscv_isa::Compressed as C;
        use riscv_isa::Instruction as I;
        let r = |n: u32| Reg(n as u8);
        let o = |n: i32| i64::from(n);
        let br = |cond, rs1, rs2, offset| {
            Some(SimOp::Branch {
                cond,
                rs1: r(rs1),
                rs2: r(rs2),
                offset: o(offset),
            })
        };
        if let Some(c) = c {
            return match c {
                C::C_J { offset } => Some(SimOp::Jal {
                    rd: Reg::ZERO,
                    offset: o(offset),
                }),
                C::C_JR { rs1 } => Some(SimOp::Jalr {
                    rd: Reg::ZERO,
                    rs1: r(rs1),
                    offset: 0,
                }),
                C::C_JALR { rs1 } => Some(SimOp::Jalr {
                    rd: Reg::RA,
                    rs1: r(rs1),
                    offset: 0,
                }),
                C::C_BEQZ { rs1, offset } => br(Cond::Eq, rs1, 0, offset),
                C::C_BNEZ { rs1, offset } => br(Cond::Ne, rs1, 0, offset),
                _ => None,
            };
        }
        match *i {
            I::AUIPC { rd, imm } => Some(SimOp::Auipc {
                rd: r(rd),
                imm: o((imm << 12) as i32),
            }),
            I::JAL { rd, offset } => Some(SimOp::Jal {
                rd: r(rd),
                offset: o(offset),
            }),
            I::JALR { rd, rs1, offset } => Some(SimOp::Jalr {
                rd: r(rd),
                rs1: r(rs1),
                offset: o(offset),
            }),
            I::BEQ { rs1, rs2, offset } => br(Cond::Eq, rs1, rs2, offset),
            I::BNE { rs1, rs2, offset } => br(Cond::Ne, rs1, rs2, offset),
            I::BLT { rs1, rs2, offset } => br(Cond::Lt, rs1, rs2, offset),
            I::BGE { rs1, rs2, offset } => br(Cond::Ge, rs1, rs2, offset),
            I::BLTU { rs1, rs2, offset } => br(Cond::Ltu, rs1, rs2, offset),
            I::BGEU { rs1, rs2, offset } => br(Cond::Geu, rs1, rs2, offset),
            _ => None,
        }
    }

    /// The action an instruction of this (independently decoded) name must
    /// get, for everything that is not PC-relative.
    fn expected_action(name: &str) -> Action {
        use RejectReason::*;
        match name {
            "ebreak" | "c.ebreak" => Action::Reject(Ebreak),
            "ecall" => Action::Reject(Ecall),
            "mret" | "sret" | "wfi" | "sfence.vma" => Action::Reject(Privileged),
            n if n.starts_with("csrr") => Action::Reject(Csr),
            "fence.i" => Action::Reject(FenceI),
            "lr.w" | "lr.d" => Action::Reject(LoadReserved),
            "sc.w" | "sc.d" => Action::Reject(StoreConditional),
            _ => Action::OutOfLine,
        }
    }

    /// Encodings riscv-isa accepts that the spec reserves (so we say
    /// Illegal), with why. riscv-isa's compressed decoder skips these checks.
    fn reserved16(raw: u32) -> Option<&'static str> {
        let (q, f3, b12, rd, rs2) = (
            bits(raw, 1, 0),
            bits(raw, 15, 13),
            bits(raw, 12, 12),
            bits(raw, 11, 7),
            bits(raw, 6, 2),
        );
        match (q, f3) {
            (0, 0) if bits(raw, 12, 5) == 0 => Some("c.addi4spn with nzuimm = 0 is reserved"),
            (1, 1) if rd == 0 => Some("c.addiw with rd = x0 is reserved"),
            (1, 3) if b12 == 0 && rs2 == 0 => Some("c.lui / c.addi16sp with imm = 0 are reserved"),
            (1, 4) if bits(raw, 11, 10) == 3 && b12 == 1 && bits(raw, 6, 5) >= 2 => {
                Some("reserved slot (Zcb); riscv-isa puts c.and here, a bug: c.and has bit 12 = 0")
            }
            (2, 2) | (2, 3) if rd == 0 => Some("c.lwsp / c.ldsp with rd = x0 are reserved"),
            (2, 4) if b12 == 0 && rd == 0 && rs2 == 0 => Some("c.jr with rs1 = x0 is reserved"),
            _ => None,
        }
    }

    /// Valid RV64C encodings riscv-isa 0.3.1 does not decode, with why.
    fn riscv_isa_misses16(raw: u32) -> Option<&'static str> {
        let (q, f3, b12) = (bits(raw, 1, 0), bits(raw, 15, 13), bits(raw, 12, 12));
        match (q, f3, bits(raw, 11, 10)) {
            (2, 0, _) | (1, 4, 0) | (1, 4, 1) if b12 == 1 => {
                Some("riscv-isa takes only shamt < 32 for c.slli/c.srli/c.srai; RV64C allows 63")
            }
            (1, 4, 3) if b12 == 0 && bits(raw, 6, 5) == 3 => Some("riscv-isa misplaces c.and"),
            _ => None,
        }
    }

    /// Reserved rounding modes: riscv-isa does not check rm.
    fn reserved32(raw: u32) -> Option<&'static str> {
        let fp = matches!(bits(raw, 6, 0), MADD | MSUB | NMSUB | NMADD | OP_FP);
        (fp && matches!(bits(raw, 14, 12), 0b101 | 0b110))
            .then_some("rounding mode 101/110 is reserved")
    }

    /// Valid RV64GC encodings riscv-isa 0.3.1 does not decode.
    fn riscv_isa_misses32(raw: u32) -> Option<&'static str> {
        (bits(raw, 6, 0) == MISC_MEM && bits(raw, 14, 12) == 0 && bits(raw, 31, 28) != 0).then_some(
            "fence with fm != 0 (fence.tso; reserved fm runs as fence): riscv-isa wants fm = 0",
        )
    }

    #[derive(Default)]
    struct Tally {
        checked: usize,
        agreed_valid: usize,
        simulated: usize,
        exceptions: BTreeMap<&'static str, usize>,
    }

    /// Compares our verdict on one 16/32-bit encoding with riscv-isa's.
    fn cross_check(raw: u32, t: &mut Tally) {
        let ours = insn(raw);
        let d = decode(ours);
        let compressed = ours.is_compressed();
        let bytes = ours.to_bytes();
        let (their_full, their_len) = riscv_isa::decode_le_bytes(&bytes, &target()).unwrap();
        let their_c = compressed.then(|| riscv_isa::decode_compressed(raw as u16, &target()));
        let their_valid = match their_c {
            Some(c) => c != riscv_isa::Compressed::UNIMP,
            None => their_full != riscv_isa::Instruction::UNIMP,
        };
        let their_name = match their_c {
            Some(c) => variant_name(&c),
            None => variant_name(&their_full),
        };
        let our_valid = d.action != Action::Reject(RejectReason::Illegal);
        let (reserved, misses) = if compressed {
            (reserved16(raw), riscv_isa_misses16(raw))
        } else {
            (reserved32(raw), riscv_isa_misses32(raw))
        };
        t.checked += 1;
        match (our_valid, their_valid) {
            (true, true) => {
                t.agreed_valid += 1;
                assert_eq!(their_len, ours.len(), "{raw:#x}: length");
                assert_eq!(d.mnemonic, their_name, "{raw:#x}: mnemonic");
                match their_simop(&their_full, their_c) {
                    Some(op) => {
                        t.simulated += 1;
                        assert_eq!(d.action, Action::Simulate(op), "{raw:#x} {their_name}");
                    }
                    None => assert_eq!(
                        d.action,
                        expected_action(&their_name),
                        "{raw:#x} {their_name}"
                    ),
                }
            }
            (false, true) => {
                let why = reserved.unwrap_or_else(|| {
                    panic!("{raw:#x}: we say illegal, riscv-isa says {their_name}")
                });
                *t.exceptions.entry(why).or_default() += 1;
            }
            (true, false) => {
                let why = misses.unwrap_or_else(|| {
                    panic!("{raw:#x}: we say {}, riscv-isa says unknown", d.mnemonic)
                });
                *t.exceptions.entry(why).or_default() += 1;
                // Still must be a sane, non-PC-relative, out-of-line insn.
                assert_eq!(d.action, Action::OutOfLine, "{raw:#x} {}", d.mnemonic);
            }
            (false, false) => {}
        }
    }

    /// Every 16-bit encoding (and every first parcel of a 32-bit one)
    /// classifies without panic, and all compressed ones agree with riscv-isa.
    #[test]
    fn all_16_bit_encodings() {
        let mut t = Tally::default();
        let mut long = 0;
        for lo in 0..=u16::MAX {
            match Insn::from_parcels(lo, 0x1234) {
                Some(i) if i.is_compressed() => cross_check(u32::from(lo), &mut t),
                Some(i) => {
                    decode(i);
                }
                None => long += 1,
            }
        }
        std::println!(
            "16-bit: {} compressed checked, {} valid in both, {} simulated, {long} long; exceptions {:?}",
            t.checked, t.agreed_valid, t.simulated, t.exceptions
        );
        assert_eq!(t.checked, 3 * 16384);
        assert_eq!(long, 2048);
        // Each listed exception must actually be hit (no dead entries).
        assert_eq!(t.exceptions.len(), 8, "{:?}", t.exceptions);
    }

    /// A second opinion for compressed names: raki (no F/D compressed forms).
    #[test]
    fn compressed_against_raki() {
        use raki::{Decode, Isa, OpcodeKind};
        let mut agreed = 0;
        let mut zicfiss = 0;
        let mut raki_ebreak_bug = 0;
        for raw in (0..=u16::MAX).filter(|r| r & 3 != 3) {
            let Ok(theirs) = raw.decode(Isa::Rv64) else {
                continue;
            };
            let d = decode(insn(u32::from(raw)));
            let name = match theirs.opc {
                OpcodeKind::C(c) => format!("c.{}", variant_name(&c)),
                // Zicfiss (shadow stack) reuses reserved c.lui encodings.
                _ => {
                    assert_eq!(d.action, Action::Reject(RejectReason::Illegal), "{raw:#x}");
                    zicfiss += 1;
                    continue;
                }
            };
            if d.action == Action::Reject(RejectReason::Illegal) {
                assert!(
                    reserved16(u32::from(raw)).is_some(),
                    "{raw:#x}: raki says {name}"
                );
                continue;
            }
            // raki bug: it names every `100 1 00000 xxxxx 10` c.ebreak; only
            // rs2 = 0 is, the rest are c.add x0, rs2 (HINTs).
            if raw & 0xff83 == 0x9002 && raw != C_EBREAK {
                assert_eq!(
                    (name.as_str(), d.mnemonic),
                    ("c.ebreak", "c.add"),
                    "{raw:#x}"
                );
                raki_ebreak_bug += 1;
                continue;
            }
            assert_eq!(d.mnemonic, name, "{raw:#x}");
            agreed += 1;
        }
        std::println!(
            "raki: {agreed} compressed encodings agree, {zicfiss} Zicfiss, \
             {raki_ebreak_bug} c.add HINTs raki calls c.ebreak"
        );
        assert_eq!(raki_ebreak_bug, 31);
        assert!(agreed > 30_000);
    }

    /// 32-bit: every (opcode, funct3, funct7, rs2) combination with random
    /// other fields, then 2 million random words.
    #[test]
    fn sampled_32_bit_encodings() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut t = Tally::default();
        let maybe_zero = |rng: &mut Rng| {
            if rng.next() & 3 == 0 {
                0
            } else {
                rng.next32() & 0x1f
            }
        };
        for opcode in (0..32u32)
            .map(|o| o << 2 | 0b11)
            .filter(|o| o & 0x1c != 0x1c)
        {
            for f3 in 0..8 {
                for f7 in 0..128 {
                    for rs2 in 0..32 {
                        let rd = maybe_zero(&mut rng);
                        let rs1 = maybe_zero(&mut rng);
                        let raw = f7 << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | rd << 7 | opcode;
                        cross_check(raw, &mut t);
                    }
                }
            }
        }
        let structured = t.checked;
        let mut long = 0;
        for _ in 0..2_000_000 {
            let raw = rng.next32() | 0b11;
            match Insn::from_parcels(raw as u16, (raw >> 16) as u16) {
                Some(_) => cross_check(raw, &mut t),
                None => {
                    long += 1;
                    let d = decode_bytes(&[raw.to_le_bytes(), [0; 4]].concat()).unwrap();
                    assert!(matches!(d.action, Action::Reject(_)));
                }
            }
        }
        // Fully random words, any length: no panic.
        for _ in 0..500_000 {
            let _ = decode_bytes(&rng.next().to_le_bytes());
        }
        std::println!(
            "32-bit: {structured} structured + {} random checked, {long} long, {} valid in both, \
             {} simulated; exceptions {:?}",
            t.checked - structured,
            t.agreed_valid,
            t.simulated,
            t.exceptions
        );
        assert_eq!(t.exceptions.len(), 2, "{:?}", t.exceptions);
        assert!(t.simulated > 10_000);
    }

    /// The simulated set, stated independently of the decode table: exactly
    /// the PC-relative opcodes and compressed forms are simulated.
    #[test]
    fn simulated_set_is_exactly_pc_relative() {
        for raw in (0..=u16::MAX).filter(|r| r & 3 != 3).map(u32::from) {
            let (q, f3) = (bits(raw, 1, 0), bits(raw, 15, 13));
            let cj = q == 1 && f3 >= 5;
            let jr = q == 2 && f3 == 4 && bits(raw, 11, 7) != 0 && bits(raw, 6, 2) == 0;
            let sim = matches!(action(raw), Action::Simulate(_));
            assert_eq!(sim, cj || jr, "{raw:#x} {}", name(raw));
        }
        let mut rng = Rng(1);
        for _ in 0..200_000 {
            let raw = rng.next32() | 3;
            if raw & 0x1c == 0x1c {
                continue;
            }
            let pcrel = match bits(raw, 6, 0) {
                AUIPC | JAL => true,
                JALR => bits(raw, 14, 12) == 0,
                BRANCH => !matches!(bits(raw, 14, 12), 2 | 3),
                _ => false,
            };
            assert_eq!(
                matches!(action(raw), Action::Simulate(_)),
                pcrel,
                "{raw:#x}"
            );
        }
    }

    #[test]
    fn every_mnemonic_is_reachable() {
        // Collect the names seen over all 16-bit encodings plus a dense
        // 32-bit sample, so a misspelled table entry shows up as unseen.
        let mut seen = std::collections::BTreeSet::new();
        for lo in (0..=u16::MAX).filter(|r| r & 3 != 3) {
            seen.insert(name(u32::from(lo)));
        }
        assert_eq!(seen.len(), 38, "{seen:?}"); // 37 RV64C forms + "illegal"
    }
}
