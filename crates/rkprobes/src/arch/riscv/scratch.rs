//! Whether a function leaves `t0` and `t1` free at its entry, so that a
//! function probe's light way in (`detour.rs`) may use them as scratch.
//! No calling convention passes a value in them, but code entered
//! otherwise does: LLVM's machine outliner calls its `OUTLINED_FUNCTION_*`
//! with `jalr t0` and returns with `jr t0`.

use super::insn::Insn;
use core::ops::Range;

const T0: u32 = 5;
const T1: u32 = 6;

/// Whether, in address order, the first instruction of `function` that
/// names `t0` (and the first that names `t1`) writes it without reading
/// it. `read(at)` gives the original instruction at `at`, `None` where it
/// cannot tell (then: not free). An instruction whose registers this
/// cannot tell counts as reading them all.
pub fn entry_leaves_t0_t1_free(
    function: Range<usize>,
    read: impl Fn(usize) -> Option<Insn>,
) -> bool {
    let mut undecided = bit(T0) | bit(T1);
    let mut at = function.start;
    while at < function.end && undecided != 0 {
        let Some(insn) = read(at) else {
            return false;
        };
        let (reads, writes) = uses(insn);
        if reads & undecided != 0 {
            return false;
        }
        undecided &= !writes;
        at += insn.len();
    }
    true
}

fn bit(r: u32) -> u32 {
    1 << r
}

/// The registers `insn` reads and writes, as masks of `x0`..`x31`. Where a
/// field may name a floating point register, it counts as an integer read
/// and never as a write (a false "write" could hide a read after it).
fn uses(insn: Insn) -> (u32, u32) {
    let raw = insn.raw();
    if insn.is_compressed() {
        // Only the 5-bit fields can name `t0`/`t1`; the 3-bit ones name
        // x8..x15.
        let (r7, r2) = (raw >> 7 & 31, raw >> 2 & 31);
        return match (raw & 3, raw >> 13 & 7) {
            (1, 2) | (1, 3) => (bit(r7) & bit(2), bit(r7)), // c.li, c.lui / c.addi16sp
            (1, 0) | (1, 1) | (2, 0) => (bit(r7), bit(r7)), // c.addi, c.addiw, c.slli
            (2, 2) | (2, 3) => (bit(2), bit(r7)),           // c.lwsp, c.ldsp
            (2, 1) => (bit(2), 0),                          // c.fldsp
            (2, 4) => match (raw >> 12 & 1, r2) {
                (0, 0) => (bit(r7), 0),            // c.jr
                (0, _) => (bit(r2), bit(r7)),      // c.mv
                (1, 0) => (bit(r7), bit(1)),       // c.jalr, c.ebreak
                _ => (bit(r7) | bit(r2), bit(r7)), // c.add
            },
            (2, _) => (bit(r2) | bit(2), 0), // c.fsdsp, c.swsp, c.sdsp
            _ => (0, 0),                     // x8..x15 and sp only
        };
    }
    let (rd, rs1, rs2) = (raw >> 7 & 31, raw >> 15 & 31, raw >> 20 & 31);
    match raw & 0x7f {
        0x37 | 0x17 | 0x6f => (0, bit(rd)), // lui, auipc, jal
        0x03 | 0x13 | 0x1b | 0x67 => (bit(rs1), bit(rd)), // loads, op-imm, jalr
        0x33 | 0x3b | 0x2f => (bit(rs1) | bit(rs2), bit(rd)), // op, op-32, amo
        0x23 | 0x63 => (bit(rs1) | bit(rs2), 0), // stores, branches
        0x07 | 0x27 | 0x73 => (bit(rs1), 0), // fp load/store, system
        0x53 | 0x43 | 0x47 | 0x4b | 0x4f => (bit(rs1) | bit(rs2), 0), // fp
        0x0f => (0, 0),                     // fences
        _ => (u32::MAX, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn free(code: &[u32]) -> bool {
        let mut map = BTreeMap::new();
        let mut at = 0x1000;
        for &raw in code {
            let insn = Insn::from_parcels(raw as u16, (raw >> 16) as u16).unwrap();
            map.insert(at, insn);
            at += insn.len();
        }
        entry_leaves_t0_t1_free(0x1000..at, |a| map.get(&a).copied())
    }

    const C_ADDI_SP: u32 = 0x1141; // c.addi sp, -16
    const C_MV_A0_T0: u32 = 0x8516; // c.mv a0, t0
    const C_JR_T0: u32 = 0x8282; // c.jr t0
    const JR_T0: u32 = 0x0002_8067; // jalr x0, 0(t0)
    const LI_T0_1: u32 = 0x0010_0293; // addi t0, zero, 1
    const C_LI_T1_2: u32 = 0x4309; // c.li t1, 2
    const ADD_A0_T0_T1: u32 = 0x0062_8533; // add a0, t0, t1
    const C_RET: u32 = 0x8082;

    /// An ordinary function: `t0`/`t1` unused, or written before read.
    #[test]
    fn ordinary_functions_leave_them_free() {
        assert!(free(&[C_ADDI_SP, C_RET]));
        assert!(free(&[LI_T0_1, C_LI_T1_2, ADD_A0_T0_T1, C_RET]));
    }

    /// Outlined code returns through `t0`; a read before a write is
    /// live-in; a word it cannot tell counts as a read.
    #[test]
    fn a_read_before_a_write_is_not_free() {
        assert!(!free(&[C_MV_A0_T0, C_JR_T0]));
        assert!(!free(&[C_ADDI_SP, JR_T0]));
        assert!(!free(&[LI_T0_1, ADD_A0_T0_T1, C_RET]), "t1 read first");
        assert!(
            !free(&[0x0000_0007 | 5 << 15, LI_T0_1, C_RET]),
            "fld from t0"
        );
        assert!(!free(&[0x0000_005b, C_RET]), "an unknown opcode");
    }
}
