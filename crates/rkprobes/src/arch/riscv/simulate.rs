//! Simulation of the PC-relative instructions.
//!
//! These read or write the pc, so they cannot run from an out-of-line slot:
//! the probe computes their effect here instead. Each form has one small
//! function that pulls its fields out of the encoding (drawn above it), and
//! [`simulate`] applies the result to a register file. All pure, so the host
//! tests them without a kernel.

use super::insn::{bits, sext, Insn, Reg};

/// Branch condition, compared as `rs1 <cond> rs2`.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Cond {
    Eq,
    Ne,
    /// Signed less than.
    Lt,
    /// Signed greater or equal.
    Ge,
    /// Unsigned less than.
    Ltu,
    /// Unsigned greater or equal.
    Geu,
}

/// A decoded PC-relative instruction. Immediates are byte offsets, already
/// scaled and sign-extended.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum SimOp {
    /// `rd = pc + imm`.
    Auipc { rd: Reg, imm: i64 },
    /// `rd = pc + len; pc += offset`. Also `c.j` (rd = x0).
    Jal { rd: Reg, offset: i64 },
    /// `rd = pc + len; pc = (rs1 + offset) & !1`. Also `c.jr` (rd = x0) and
    /// `c.jalr` (rd = ra).
    Jalr { rd: Reg, rs1: Reg, offset: i64 },
    /// `if rs1 <cond> rs2 { pc += offset }`. Also `c.beqz` / `c.bnez`
    /// (rs2 = x0).
    Branch {
        cond: Cond,
        rs1: Reg,
        rs2: Reg,
        offset: i64,
    },
}

/// Executes `op` found at `pc` with length `len` (2 or 4: the link value is
/// `pc + len`) on the integer registers `x` (`x[0]` is treated as zero on read
/// and left zero). Returns the next pc.
#[inline(always)]
pub fn simulate(op: SimOp, pc: usize, len: usize, x: &mut [usize; 32]) -> usize {
    Bound::new(op, pc, len).run(x)
}

/// A register of a `[usize; 32]` register file, kept as its byte offset
/// (`index * 8`): the hit path reads it with one add and one load.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct RegAt(u8);

impl RegAt {
    fn new(r: Reg) -> RegAt {
        RegAt((r.index() & 31) as u8 * 8)
    }

    #[inline(always)]
    fn slot(self, x: &mut [usize; 32]) -> *mut usize {
        // SAFETY: `new` is the only constructor: the offset is `i * 8` for
        // some `i < 32`, so an aligned word inside `x`.
        unsafe { x.as_mut_ptr().byte_add(self.0 as usize) }
    }

    #[inline(always)]
    fn read(self, x: &mut [usize; 32]) -> usize {
        // SAFETY: an aligned word of `x` (`slot`).
        unsafe { self.slot(x).read() }
    }

    #[inline(always)]
    fn write(self, x: &mut [usize; 32], v: usize) {
        // SAFETY: an aligned word of `x` (`slot`).
        unsafe { self.slot(x).write(v) }
    }
}

/// A simulated instruction bound to the address it was found at. Every
/// address is computed when the probe is placed and branch conditions are
/// reduced to two (`bne` is `beq` with the outcomes swapped; a signed
/// comparison is an unsigned one with both sign bits flipped), so a hit
/// only reads registers, compares and stores. Branches come first: the
/// common case is checked first.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Bound {
    /// Next pc `taken` if `x[rs1] == x[rs2]`, else `other`. Neither is x0
    /// (that is `Zero`).
    Eq {
        rs1: RegAt,
        rs2: RegAt,
        taken: usize,
        other: usize,
    },
    /// Next pc `taken` if `x[rs1] ^ flip < x[rs2] ^ flip` (unsigned), else
    /// `other`.
    Less {
        rs1: RegAt,
        rs2: RegAt,
        flip: usize,
        taken: usize,
        other: usize,
    },
    /// Next pc `taken` if `x[rs] == 0`, else `other` (`beqz`, `bnez`,
    /// `c.beqz`, `c.bnez`: `beq`/`bne` with x0). `rs` is not x0.
    Zero {
        rs: RegAt,
        taken: usize,
        other: usize,
    },
    /// `x[rd] = value` (`auipc`, or a jump's link), then on to `next`.
    Set {
        rd: RegAt,
        value: usize,
        next: usize,
    },
    /// `x[rd] = link`, then on to `(x[rs1] + offset) & !1`.
    Jalr {
        rd: RegAt,
        rs1: RegAt,
        offset: usize,
        link: usize,
    },
}

impl Bound {
    pub fn new(op: SimOp, pc: usize, len: usize) -> Bound {
        let next = pc.wrapping_add(len);
        let idx = RegAt::new;
        match op {
            SimOp::Auipc { rd, imm } => Bound::Set {
                rd: idx(rd),
                value: add(pc, imm),
                next,
            },
            SimOp::Jal { rd, offset } => Bound::Set {
                rd: idx(rd),
                value: next,
                next: add(pc, offset),
            },
            SimOp::Jalr { rd, rs1, offset } => Bound::Jalr {
                rd: idx(rd),
                rs1: idx(rs1),
                offset: offset as usize,
                link: next,
            },
            SimOp::Branch {
                cond,
                rs1,
                rs2,
                offset,
            } => {
                let (rs1, rs2, target) = (idx(rs1), idx(rs2), add(pc, offset));
                let (taken, other) = match cond {
                    Cond::Eq | Cond::Lt | Cond::Ltu => (target, next),
                    Cond::Ne | Cond::Ge | Cond::Geu => (next, target),
                };
                let flip = match cond {
                    Cond::Eq | Cond::Ne => return Bound::equal(rs1, rs2, taken, other),
                    Cond::Lt | Cond::Ge => 1 << (usize::BITS - 1),
                    Cond::Ltu | Cond::Geu => 0,
                };
                Bound::Less {
                    rs1,
                    rs2,
                    flip,
                    taken,
                    other,
                }
            }
        }
    }

    /// `x[rs1] == x[rs2]`, with x0 compared as the constant it is: equal
    /// reads need not trust the frame's x0 word. Both x0: always taken.
    fn equal(rs1: RegAt, rs2: RegAt, taken: usize, other: usize) -> Bound {
        let zero = RegAt::new(Reg::ZERO);
        // Equality is symmetric: x0, if an operand, goes second.
        let (rs1, rs2) = if rs1 == zero { (rs2, rs1) } else { (rs1, rs2) };
        match (rs1 == zero, rs2 == zero) {
            (true, _) => Bound::Set {
                rd: zero,
                value: 0,
                next: taken,
            },
            (false, true) => Bound::Zero {
                rs: rs1,
                taken,
                other,
            },
            (false, false) => Bound::Eq {
                rs1,
                rs2,
                taken,
                other,
            },
        }
    }

    /// The same, going on at `to` wherever it would have gone on at `from`
    /// (a jump over two instructions resumes at the second one's copy).
    /// A jump through a register is left alone: its target is not known.
    pub fn redirect(mut self, from: usize, to: usize) -> Bound {
        let r = |pc: &mut usize| {
            if *pc == from {
                *pc = to;
            }
        };
        match &mut self {
            Bound::Eq { taken, other, .. }
            | Bound::Less { taken, other, .. }
            | Bound::Zero { taken, other, .. } => {
                r(taken);
                r(other);
            }
            Bound::Set { next, .. } => r(next),
            Bound::Jalr { .. } => {}
        }
        self
    }

    /// Executes the instruction on the registers `x`; returns the next pc.
    // In the hit path: kept with it in the section the OS blacklists (a
    // probe here would recurse before any nesting check).
    #[link_section = ".text.rkprobes"]
    #[inline(always)]
    pub fn run(&self, x: &mut [usize; 32]) -> usize {
        // Where an operand may be x0, its word is zeroed first (whatever
        // the frame held there), so reads need no test; a result written
        // to x0 is wiped after.
        match *self {
            Bound::Eq {
                rs1,
                rs2,
                taken,
                other,
            } => pick(rs1.read(x) == rs2.read(x), taken, other),
            Bound::Zero { rs, taken, other } => pick(rs.read(x) == 0, taken, other),
            Bound::Less {
                rs1,
                rs2,
                flip,
                taken,
                other,
            } => {
                x[0] = 0;
                pick(rs1.read(x) ^ flip < rs2.read(x) ^ flip, taken, other)
            }
            Bound::Set { rd, value, next } => {
                rd.write(x, value);
                x[0] = 0;
                next
            }
            Bound::Jalr {
                rd,
                rs1,
                offset,
                link,
            } => {
                x[0] = 0;
                // Read rs1 before writing rd: `jalr ra, 0(ra)` is legal.
                let target = rs1.read(x).wrapping_add(offset) & !1;
                rd.write(x, link);
                x[0] = 0;
                target
            }
        }
    }
}

#[inline(always)]
fn pick(holds: bool, taken: usize, other: usize) -> usize {
    if holds {
        taken
    } else {
        other
    }
}

/// Address arithmetic wraps, as in hardware.
fn add(base: usize, offset: i64) -> usize {
    base.wrapping_add(offset as usize)
}

// ---------------------------------------------------------------------------
// Field extraction, one function per encoding. The decoder has already
// checked opcode and funct fields; these only pull out operands.
// ---------------------------------------------------------------------------

//  31                        12 11     7 6       0
// +----------------------------+--------+---------+
// |         imm[31:12]         |   rd   | 0010111 |  auipc
// +----------------------------+--------+---------+
pub(crate) fn auipc(insn: Insn) -> SimOp {
    let raw = insn.raw();
    SimOp::Auipc {
        rd: Reg::from_field(bits(raw, 11, 7)),
        imm: sext(raw & 0xffff_f000, 32),
    }
}

//  31      30          21     20     19        12 11     7 6       0
// +-------+--------------+-------+-----------+--------+---------+
// |imm[20]|  imm[10:1]   |imm[11]| imm[19:12]|   rd   | 1101111 |  jal
// +-------+--------------+-------+-----------+--------+---------+
pub(crate) fn jal(insn: Insn) -> SimOp {
    let raw = insn.raw();
    let imm = bits(raw, 31, 31) << 20
        | bits(raw, 19, 12) << 12
        | bits(raw, 20, 20) << 11
        | bits(raw, 30, 21) << 1;
    SimOp::Jal {
        rd: Reg::from_field(bits(raw, 11, 7)),
        offset: sext(imm, 21),
    }
}

//  31          20 19    15 14  12 11     7 6       0
// +--------------+--------+------+--------+---------+
// |  imm[11:0]   |  rs1   | 000  |   rd   | 1100111 |  jalr
// +--------------+--------+------+--------+---------+
pub(crate) fn jalr(insn: Insn) -> SimOp {
    let raw = insn.raw();
    SimOp::Jalr {
        rd: Reg::from_field(bits(raw, 11, 7)),
        rs1: Reg::from_field(bits(raw, 19, 15)),
        offset: sext(bits(raw, 31, 20), 12),
    }
}

//  31      30      25 24   20 19   15 14  12 11      8     7    6       0
// +-------+----------+-------+-------+------+---------+-------+---------+
// |imm[12]|imm[10:5] |  rs2  |  rs1  |funct3|imm[4:1] |imm[11]| 1100011 |
// +-------+----------+-------+-------+------+---------+-------+---------+
//   funct3: 000 beq, 001 bne, 100 blt, 101 bge, 110 bltu, 111 bgeu
pub(crate) fn branch(insn: Insn, cond: Cond) -> SimOp {
    let raw = insn.raw();
    let imm = bits(raw, 31, 31) << 12
        | bits(raw, 7, 7) << 11
        | bits(raw, 30, 25) << 5
        | bits(raw, 11, 8) << 1;
    SimOp::Branch {
        cond,
        rs1: Reg::from_field(bits(raw, 19, 15)),
        rs2: Reg::from_field(bits(raw, 24, 20)),
        offset: sext(imm, 13),
    }
}

//  15  13 12                                    2 1  0
// +------+---------------------------------------+----+
// | 101  | imm[11|4|9:8|10|6|7|3:1|5]            | 01 |  c.j
// +------+---------------------------------------+----+
pub(crate) fn c_j(insn: Insn) -> SimOp {
    let raw = insn.raw();
    let imm = bits(raw, 12, 12) << 11
        | bits(raw, 11, 11) << 4
        | bits(raw, 10, 9) << 8
        | bits(raw, 8, 8) << 10
        | bits(raw, 7, 7) << 6
        | bits(raw, 6, 6) << 7
        | bits(raw, 5, 3) << 1
        | bits(raw, 2, 2) << 5;
    SimOp::Jal {
        rd: Reg::ZERO,
        offset: sext(imm, 12),
    }
}

//  15  13 12 11       7 6        2 1  0
// +------+--+----------+----------+----+
// | 100  |0 | rs1!=0   |  00000   | 10 |  c.jr   (jalr x0, 0(rs1))
// | 100  |1 | rs1!=0   |  00000   | 10 |  c.jalr (jalr ra, 0(rs1))
// +------+--+----------+----------+----+
pub(crate) fn c_jr_jalr(insn: Insn) -> SimOp {
    let raw = insn.raw();
    let rd = if bits(raw, 12, 12) == 1 {
        Reg::RA
    } else {
        Reg::ZERO
    };
    SimOp::Jalr {
        rd,
        rs1: Reg::from_field(bits(raw, 11, 7)),
        offset: 0,
    }
}

//  15  13 12      10 9    7 6            2 1  0
// +------+----------+------+--------------+----+
// | 110  |imm[8|4:3]| rs1' |imm[7:6|2:1|5]| 01 |  c.beqz (beq rs1', x0)
// | 111  |imm[8|4:3]| rs1' |imm[7:6|2:1|5]| 01 |  c.bnez (bne rs1', x0)
// +------+----------+------+--------------+----+
pub(crate) fn c_beqz_bnez(insn: Insn) -> SimOp {
    let raw = insn.raw();
    let imm = bits(raw, 12, 12) << 8
        | bits(raw, 6, 5) << 6
        | bits(raw, 2, 2) << 5
        | bits(raw, 11, 10) << 3
        | bits(raw, 4, 3) << 1;
    let cond = if bits(raw, 13, 13) == 0 {
        Cond::Eq
    } else {
        Cond::Ne
    };
    SimOp::Branch {
        cond,
        rs1: Reg::from_compressed_field(bits(raw, 9, 7)),
        rs2: Reg::ZERO,
        offset: sext(imm, 9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(raw: u32) -> SimOp {
        let insn = Insn::from_parcels(raw as u16, (raw >> 16) as u16).unwrap();
        match super::super::decode::decode(insn).action {
            super::super::decode::Action::Simulate(op) => op,
            other => panic!("{raw:#x}: expected Simulate, got {other:?}"),
        }
    }

    /// A redirected bound goes to the new place instead of the old one,
    /// taken or not, and elsewhere as before.
    #[test]
    fn redirect_replaces_one_next_pc() {
        let (pc, copy) = (0x8020_0000, 0x8028_0014);
        let mut x = [0usize; 32];
        // c.bnez a0, +8: taken goes on past, not taken to the next one.
        let b = Bound::new(op(0xe501), pc, 2).redirect(pc + 2, copy);
        x[10] = 1;
        assert_eq!(b.run(&mut x), pc + 8);
        x[10] = 0;
        assert_eq!(b.run(&mut x), copy);
        // c.bnez a0, +2: both ways lead to the next instruction.
        let b = Bound::new(op(0xe109), pc, 2).redirect(pc + 2, copy);
        for v in [0, 1] {
            x[10] = v;
            assert_eq!(b.run(&mut x), copy, "a0 = {v}");
        }
        // c.j +2, and a bne whose target is the redirected pc.
        assert_eq!(
            Bound::new(op(0xa009), pc, 2)
                .redirect(pc + 2, copy)
                .run(&mut x),
            copy
        );
        let bne = Bound::new(op(0x00b5_1463), pc, 4).redirect(pc + 8, copy); // bne a0, a1, +8
        x[10] = 5;
        x[11] = 6;
        assert_eq!(bne.run(&mut x), copy);
        x[11] = 5;
        assert_eq!(bne.run(&mut x), pc + 4);
    }

    /// The branch conditions as the ISA states them: the reference the
    /// reduced forms of `Bound` are checked against.
    fn holds(cond: Cond, a: usize, b: usize) -> bool {
        match cond {
            Cond::Eq => a == b,
            Cond::Ne => a != b,
            Cond::Lt => (a as isize) < (b as isize),
            Cond::Ge => (a as isize) >= (b as isize),
            Cond::Ltu => a < b,
            Cond::Geu => a >= b,
        }
    }

    /// Every condition, on operands around zero, the sign boundary and
    /// the extremes (and equal pairs): the bound branch goes where the
    /// ISA says, for rs1/rs2 in either order and with x0 as an operand.
    #[test]
    fn bound_branches_agree_with_the_isa() {
        let edges = [
            0usize,
            1,
            2,
            0x7fff_ffff_ffff_fffe,
            0x7fff_ffff_ffff_ffff,
            0x8000_0000_0000_0000,
            0x8000_0000_0000_0001,
            usize::MAX - 1,
            usize::MAX,
        ];
        let conds = [Cond::Eq, Cond::Ne, Cond::Lt, Cond::Ge, Cond::Ltu, Cond::Geu];
        let (pc, offset) = (0x8000_1000usize, -0x40i64);
        for cond in conds {
            for (rs1, rs2) in [(5u8, 6u8), (6, 5), (0, 6), (5, 0), (0, 0)] {
                for &a in &edges {
                    for &b in &edges {
                        let mut x = [0usize; 32];
                        (x[5], x[6]) = (a, b);
                        let op = SimOp::Branch {
                            cond,
                            rs1: Reg(rs1),
                            rs2: Reg(rs2),
                            offset,
                        };
                        let (va, vb) = (x[rs1 as usize], x[rs2 as usize]);
                        let want = match holds(cond, va, vb) {
                            true => pc.wrapping_add(offset as usize),
                            false => pc + 4,
                        };
                        // A frame's x0 word holds whatever was there.
                        x[0] = 0x5a5a_0000_0000_0001;
                        assert_eq!(
                            simulate(op, pc, 4, &mut x),
                            want,
                            "{cond:?} {va:#x} {vb:#x}"
                        );
                    }
                }
            }
        }
    }

    fn regs() -> [usize; 32] {
        core::array::from_fn(|i| 0x1000 * i)
    }

    // Short constructors so the table below stays one case per line.
    fn au(rd: Reg, imm: i64) -> SimOp {
        SimOp::Auipc { rd, imm }
    }
    fn j(rd: Reg, offset: i64) -> SimOp {
        SimOp::Jal { rd, offset }
    }
    fn jr(rd: Reg, rs1: Reg, offset: i64) -> SimOp {
        SimOp::Jalr { rd, rs1, offset }
    }
    fn b(cond: Cond, rs1: Reg, rs2: Reg, offset: i64) -> SimOp {
        SimOp::Branch {
            cond,
            rs1,
            rs2,
            offset,
        }
    }

    // Encodings assembled by hand from the ISA manual, cross-checked against
    // well-known disassembly (`j .-4` = ffdff06f, `bnez a0,.-4` = fe051ee3...).
    #[test]
    fn decode_fields() {
        use Cond::*;
        let (z, ra, t0, s0, a0, a1, a5) = (
            Reg::ZERO,
            Reg::RA,
            Reg::T0,
            Reg::S0,
            Reg(10),
            Reg(11),
            Reg(15),
        );
        let cases: &[(u32, SimOp)] = &[
            (0x1234_5297, au(t0, 0x1234_5000)), // auipc t0, 0x12345
            (0xffff_f517, au(a0, -0x1000)),
            (0x8000_0017, au(z, -0x8000_0000)), // most negative
            (0x7fff_f017, au(z, 0x7fff_f000)),  // most positive
            (0x0100_00ef, j(ra, 0x10)),         // jal ra, 0x10
            (0xffdf_f06f, j(z, -4)),            // j .-4
            (0x7fff_f06f, j(z, 0xf_fffe)),      // max
            (0x8000_006f, j(z, -0x10_0000)),    // min
            (0x0010_00ef, j(ra, 0x800)),        // imm[11] alone
            (0x0000_10ef, j(ra, 0x1000)),       // imm[12] alone
            (0x0000_8067, jr(z, ra, 0)),        // ret
            (0xff80_80e7, jr(ra, ra, -8)),      // jalr ra, -8(ra)
            (0x7ff7_80e7, jr(ra, a5, 2047)),
            (0x8007_8067, jr(z, a5, -2048)),
            (0x00b5_0463, b(Eq, a0, a1, 8)),   // beq a0, a1, .+8
            (0xfe05_1ee3, b(Ne, a0, z, -4)),   // bnez a0, .-4
            (0x7e00_0fe3, b(Eq, z, z, 4094)),  // max
            (0x8000_0063, b(Eq, z, z, -4096)), // min
            (0x0000_00e3, b(Eq, z, z, 0x800)), // imm[11] alone
            (0x00b5_4463, b(Lt, a0, a1, 8)),
            (0x00b5_5463, b(Ge, a0, a1, 8)),
            (0x00b5_6463, b(Ltu, a0, a1, 8)),
            (0x00b5_7463, b(Geu, a0, a1, 8)),
            (0xa001, j(z, 0)),         // c.j .
            (0xbffd, j(z, -2)),        // c.j .-2
            (0xaffd, j(z, 2046)),      // max
            (0xb001, j(z, -2048)),     // min
            (0xa011, j(z, 4)),         // imm[3:1] = 010
            (0x8082, jr(z, ra, 0)),    // c.jr ra (ret)
            (0x9782, jr(ra, a5, 0)),   // c.jalr a5
            (0x9082, jr(ra, ra, 0)),   // c.jalr ra
            (0xc101, b(Eq, a0, z, 0)), // c.beqz a0, .
            (0xfc7d, b(Ne, s0, z, -2)),
            (0xec7d, b(Ne, s0, z, 254)),  // max
            (0xd001, b(Eq, s0, z, -256)), // min
            (0xc009, b(Eq, s0, z, 2)),    // imm[1] alone
        ];
        for &(raw, want) in cases {
            assert_eq!(op(raw), want, "{raw:#x}");
        }
    }

    #[test]
    fn auipc_and_jumps() {
        let mut x = regs();
        let pc = 0x8020_0000;
        assert_eq!(simulate(op(0xffff_f517), pc, 4, &mut x), pc + 4);
        assert_eq!(x[10], pc - 0x1000);

        let mut x = regs();
        assert_eq!(simulate(op(0x0100_00ef), pc, 4, &mut x), pc + 0x10);
        assert_eq!(x[1], pc + 4);

        let mut x = regs();
        assert_eq!(simulate(op(0xffdf_f06f), pc, 4, &mut x), pc - 4);
        assert_eq!(x, regs(), "jal x0 links nowhere");

        // jalr ra, -8(ra): the target uses the old ra.
        let mut x = regs();
        x[1] = 0x9000_0001;
        assert_eq!(simulate(op(0xff80_80e7), pc, 4, &mut x), 0x8fff_fff8);
        assert_eq!(x[1], pc + 4);

        // jalr clears bit 0 of the target.
        let mut x = regs();
        x[15] = 0x4000;
        assert_eq!(simulate(op(0x7ff7_80e7), pc, 4, &mut x), 0x4000 + 2046);

        // c.jalr a5 links pc + 2; c.jr ra does not link.
        let mut x = regs();
        assert_eq!(simulate(op(0x9782), pc, 2, &mut x), 0xf000);
        assert_eq!(x[1], pc + 2);
        let mut x = regs();
        assert_eq!(simulate(op(0x8082), pc, 2, &mut x), 0x1000);
        assert_eq!(x, regs());

        // c.jalr ra: rd == rs1.
        let mut x = regs();
        assert_eq!(simulate(op(0x9082), pc, 2, &mut x), 0x1000);
        assert_eq!(x[1], pc + 2);

        // c.j
        let mut x = regs();
        assert_eq!(simulate(op(0xb001), pc, 2, &mut x), pc - 2048);
        assert_eq!(x, regs());

        // Address arithmetic wraps like hardware.
        let mut x = regs();
        assert_eq!(simulate(op(0xffdf_f06f), 0, 4, &mut x), usize::MAX - 3);
    }

    #[test]
    fn x0_rules() {
        // jalr x0 as rd does not write; x0 as rs1 reads zero even if x[0]
        // holds garbage (the slot is left zero, as x0 reads).
        let mut x = regs();
        x[0] = 0xdead_beef;
        let jalr = SimOp::Jalr {
            rd: Reg::ZERO,
            rs1: Reg::ZERO,
            offset: 0x101,
        };
        assert_eq!(simulate(jalr, 0x100, 4, &mut x), 0x100);
        assert_eq!(x[0], 0, "x0 never gets a result");

        let auipc = SimOp::Auipc {
            rd: Reg::ZERO,
            imm: 0x1000,
        };
        x[0] = 0xdead_beef;
        assert_eq!(simulate(auipc, 0x100, 4, &mut x), 0x104);
        assert_eq!(x[0], 0);

        let b = SimOp::Branch {
            cond: Cond::Eq,
            rs1: Reg::ZERO,
            rs2: Reg(5),
            offset: 64,
        };
        (x[0], x[5]) = (0xdead_beef, 0);
        assert_eq!(simulate(b, 0x100, 4, &mut x), 0x140, "x0 reads as zero");
        x[5] = 0xdead_beef;
        assert_eq!(simulate(b, 0x100, 4, &mut x), 0x104, "x[5] != 0: not taken");
    }

    #[test]
    fn branch_conditions() {
        const NEG1: usize = usize::MAX;
        const MIN: usize = 1 << 63;
        const MAX: usize = (1 << 63) - 1;
        // (cond, a, b, taken)
        let cases = [
            (Cond::Eq, 5, 5, true),
            (Cond::Eq, 5, 6, false),
            (Cond::Ne, 5, 6, true),
            (Cond::Ne, NEG1, NEG1, false),
            (Cond::Lt, NEG1, 0, true), // -1 < 0 signed
            (Cond::Lt, 0, NEG1, false),
            (Cond::Lt, MIN, MAX, true),
            (Cond::Lt, 3, 3, false),
            (Cond::Ge, 0, NEG1, true),
            (Cond::Ge, NEG1, 0, false),
            (Cond::Ge, 3, 3, true),
            (Cond::Ge, MAX, MIN, true),
            (Cond::Ltu, 0, NEG1, true), // 0 < 2^64-1 unsigned
            (Cond::Ltu, NEG1, 0, false),
            (Cond::Ltu, MAX, MIN, true),
            (Cond::Ltu, 3, 3, false),
            (Cond::Geu, NEG1, 0, true),
            (Cond::Geu, 0, NEG1, false),
            (Cond::Geu, 3, 3, true),
            (Cond::Geu, MAX, MIN, false),
        ];
        let pc: usize = 0x8000_1000;
        for (cond, a, b, taken) in cases {
            let mut x = regs();
            x[10] = a;
            x[11] = b;
            let before = x;
            for offset in [-4096i64, -2, 8, 4094] {
                let op = SimOp::Branch {
                    cond,
                    rs1: Reg(10),
                    rs2: Reg(11),
                    offset,
                };
                let want = if taken {
                    pc.wrapping_add(offset as usize)
                } else {
                    pc + 4
                };
                assert_eq!(simulate(op, pc, 4, &mut x), want, "{cond:?} {a:#x} {b:#x}");
                assert_eq!(x, before, "branches write no register");
            }
        }
        // Decoded branches behave the same: blt a0, a1, 8 / bltu a0, a1, 8.
        let mut x = regs();
        x[10] = NEG1;
        x[11] = 1;
        assert_eq!(simulate(op(0x00b5_4463), pc, 4, &mut x), pc + 8);
        assert_eq!(simulate(op(0x00b5_6463), pc, 4, &mut x), pc + 4);
        // c.beqz / c.bnez: not-taken falls through to pc + 2.
        x[8] = 0;
        assert_eq!(simulate(op(0xd001), pc, 2, &mut x), pc - 256);
        assert_eq!(simulate(op(0xec7d), pc, 2, &mut x), pc + 2);
        x[8] = 7;
        assert_eq!(simulate(op(0xd001), pc, 2, &mut x), pc + 2);
        assert_eq!(simulate(op(0xec7d), pc, 2, &mut x), pc + 254);
    }
}
