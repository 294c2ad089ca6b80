//! Jumps over two instructions: a compressed instruction has no room for
//! the 4-byte `jal` of a jump probe, but the `jal` may cover the start of
//! the instruction after it too, whose copy then runs in the detour
//! (`detour.rs`). Safe only when no hart can arrive at the second
//! instruction except through the first: this file checks the code; the
//! OS vouches for harts stopped there (`KprobeOs::wait_harts_out_of`).

use super::decode::{decode, Action};
use super::insn::Insn;
use super::prepare::{Exec, Prepared};
use super::simulate::SimOp;
use core::ops::Range;

/// The instruction after the compressed `first` at `addr` that a `jal` at
/// `addr` may cover as well, or `None` where that is not safe. `read(at)`
/// gives the original instruction at `at` (probes taken into account),
/// `None` where it cannot tell.
///
/// Refused: a first instruction that jumps through a register (a call
/// would leave `addr + 2` as a return address in a frame that may sleep;
/// a plain one may lead anywhere), a second one that cannot run from the
/// detour as it is (PC-relative, or refused by the decoder) or ends
/// outside the function, and any function where something else may lead
/// inside the covered bytes: a direct branch or jump with a target there,
/// an `auipc`-made address there, or a jump through a register other than
/// a return or an `auipc` + `jr` pair (a jump table may land anywhere).
pub fn second_for_jump(
    first: &Prepared,
    addr: usize,
    function: Range<usize>,
    read: impl Fn(usize) -> Option<Insn>,
) -> Option<Insn> {
    if !first.insn.is_compressed() || matches!(first.exec, Exec::Simulate(SimOp::Jalr { .. })) {
        return None;
    }
    let next = addr + first.len();
    let second = read(next)?;
    let covered = next..next + second.len();
    if covered.end > function.end || !runs_anywhere(second) {
        return None;
    }
    // Direct branches and jumps: none may lead inside (the first
    // instruction's own way on is redirected, `Bound::redirect`). Their
    // targets also tell which `jr` only its `auipc` leads to.
    let mut targets = alloc::vec::Vec::new();
    let mut at = function.start;
    while at < function.end {
        let insn = read(at)?;
        if let Action::Simulate(SimOp::Branch { offset, .. } | SimOp::Jal { offset, .. }) =
            decode(insn).action
        {
            let target = at.wrapping_add(offset as usize);
            if at != addr && covered.contains(&target) {
                return None;
            }
            targets.push(target);
        }
        at += insn.len();
    }
    // Jumps through a register, and addresses made by `auipc`.
    let mut at = function.start;
    // The `auipc` just before: its register and the address it made.
    let mut made: Option<(usize, usize)> = None;
    while at < function.end {
        let insn = read(at)?;
        let before = made.take();
        match decode(insn).action {
            Action::Simulate(SimOp::Jalr { rd, rs1, offset }) if rd.index() == 0 => {
                let known = before.filter(|&(reg, _)| reg == rs1.index() && !targets.contains(&at));
                let inside = match known {
                    // A far jump or tail call: its target is known.
                    Some((_, base)) => covered.contains(&(base.wrapping_add(offset as usize) & !1)),
                    // `ret` goes back to a caller; any other, anywhere.
                    None => rs1.index() != 1,
                };
                if inside {
                    return None;
                }
            }
            action => {
                if let Some((rd, base)) = before {
                    if may_address(insn, rd, base, covered.clone()) {
                        return None;
                    }
                }
                if let Action::Simulate(SimOp::Auipc { rd, imm }) = action {
                    made = Some((rd.index(), at.wrapping_add(imm as usize)));
                }
            }
        }
        at += insn.len();
    }
    Some(second)
}

/// Whether `insn`, right after an `auipc` that left `base` in `x[rd]`,
/// may make an address inside `covered` (to be jumped to, maybe from
/// elsewhere: a return address set by hand, a resume address). Known only
/// where `insn` uses `x[rd]` up: a jump through it, an `addi` or a load
/// that overwrites it (one address, or data); anything else leaves it
/// live, or adds any 12-bit offset: near enough counts.
fn may_address(insn: Insn, rd: usize, base: usize, covered: Range<usize>) -> bool {
    let raw = insn.raw();
    let rs1 = (raw >> 15 & 31) as usize;
    let dest = (raw >> 7 & 31) as usize;
    let imm = ((raw as i32) >> 20) as isize as usize;
    let near = base.wrapping_sub(2048) < covered.end && covered.start < base.wrapping_add(2048);
    if insn.is_compressed() || rs1 != rd {
        return near;
    }
    match (raw & 0x7f, raw >> 12 & 7) {
        // A call through it: control goes there (its link is its own).
        (0x67, 0) => covered.contains(&base.wrapping_add(imm)),
        // addi into the same register.
        (0x13, 0) if dest == rd => covered.contains(&base.wrapping_add(imm)),
        // A load into the same register: data.
        (0x03, _) if dest == rd => false,
        _ => near,
    }
}

/// Whether `insn` runs the same from a detour's copy: not PC-relative
/// (but a jump through a register with no link), not refused.
fn runs_anywhere(insn: Insn) -> bool {
    match decode(insn).action {
        Action::OutOfLine => true,
        Action::Simulate(SimOp::Jalr { rd, .. }) => rd.index() == 0,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::riscv::prepare::prepare;
    use std::collections::BTreeMap;

    /// A function at 0x1000 made of `code` (16- and 32-bit encodings).
    fn function(code: &[u32]) -> (BTreeMap<usize, Insn>, Range<usize>) {
        let mut at = 0x1000;
        let mut map = BTreeMap::new();
        for &raw in code {
            let insn = Insn::from_parcels(raw as u16, (raw >> 16) as u16).unwrap();
            map.insert(at, insn);
            at += insn.len();
        }
        (map, 0x1000..at)
    }

    fn check(code: &[u32], addr: usize) -> Option<u32> {
        let (map, range) = function(code);
        let first = prepare(&map[&addr].raw().to_le_bytes()).unwrap();
        second_for_jump(&first, addr, range, |at| map.get(&at).copied()).map(|i| i.raw())
    }

    const C_ADDI_SP: u32 = 0x1141; // c.addi sp, -16
    const C_SDSP_RA: u32 = 0xe406; // c.sdsp ra, 8(sp)
    const ADD: u32 = 0x00b5_0533; // add a0, a0, a1
    const RET: u32 = 0x8082; // c.jr ra

    #[test]
    fn a_usual_prologue_is_covered() {
        let code = [C_ADDI_SP, C_SDSP_RA, ADD, RET];
        assert_eq!(check(&code, 0x1000), Some(C_SDSP_RA));
        // A 32-bit second instruction, and `ret` as the second one.
        assert_eq!(check(&[C_ADDI_SP, ADD, RET], 0x1000), Some(ADD));
        assert_eq!(check(&[0x852e, RET], 0x1000), Some(RET)); // c.mv a0, a1
    }

    #[test]
    fn anything_else_leading_inside_refuses() {
        // A `beq a0, a1` at 0x1006 (after a `c.nop`): back to 0x1000, the
        // probed instruction, is fine; to 0x1002, the covered one, is not.
        let beq = |off: i32| {
            let o = off as u32;
            (o >> 12 & 1) << 31
                | (o >> 5 & 0x3f) << 25
                | 11 << 20
                | 10 << 15
                | (o >> 1 & 0xf) << 8
                | (o >> 11 & 1) << 7
                | 0x63
        };
        assert_eq!(
            check(&[C_ADDI_SP, C_SDSP_RA, 0x0001, beq(-6), RET], 0x1000),
            Some(C_SDSP_RA)
        );
        assert_eq!(
            check(&[C_ADDI_SP, C_SDSP_RA, 0x0001, beq(-4), RET], 0x1000),
            None
        );
        // A jump through a register that is not a return.
        assert_eq!(check(&[C_ADDI_SP, C_SDSP_RA, 0x8782, RET], 0x1000), None); // c.jr a5
                                                                               // A tail call (`auipc t1, 0` + `jr imm(t1)`): its target is known.
        let jr_t1 = |imm: i32| ((imm as u32) << 20) | 6 << 15 | 0x67;
        let tail = |imm| check(&[C_ADDI_SP, C_SDSP_RA, 0x0000_0317, jr_t1(imm)], 0x1000);
        assert_eq!(tail(0x100), Some(C_SDSP_RA), "to elsewhere");
        assert_eq!(tail(-2), None, "auipc at 0x1004 - 2: the covered one");
        // A `jr` that a branch also leads to: t1 may hold anything there.
        let beq_a0_a1_8 = 0x00b5_0463; // at 0x1004, to the `jr` at 0x100c
        let nop = 0x0000_0013;
        let f = |third| {
            check(
                &[C_ADDI_SP, C_SDSP_RA, third, 0x0000_0317, jr_t1(0x100)],
                0x1000,
            )
        };
        assert_eq!(f(nop), Some(C_SDSP_RA));
        assert_eq!(f(beq_a0_a1_8), None);
        // The first instruction's own branch to the second is fine.
        assert_eq!(check(&[0xe109, C_SDSP_RA, RET], 0x1000), Some(C_SDSP_RA)); // c.bnez a0, +2
    }

    /// An address made with `auipc` inside the covered bytes (a return
    /// or resume address set by hand) refuses; one elsewhere, or a data
    /// access, does not.
    #[test]
    fn auipc_made_addresses_inside_refuse() {
        // auipc t0, 0 at 0x1004, then addi t0, t0, imm: t0 = 0x1004 + imm.
        let addi = |imm: i32| ((imm as u32) << 20) | 5 << 15 | 5 << 7 | 0x13;
        let auipc_t0 = 0x0000_0297;
        let f = |second: u32| check(&[C_ADDI_SP, C_SDSP_RA, auipc_t0, second, RET], 0x1000);
        assert_eq!(f(addi(-2)), None, "0x1002, the covered one");
        assert_eq!(f(addi(-4)), Some(C_SDSP_RA), "0x1000, the probed one");
        assert_eq!(f(addi(8)), Some(C_SDSP_RA));
        // ld t0, -2(t0): a load that uses the address up.
        let ld = ((-2i32 as u32) << 20) | 5 << 15 | 3 << 12 | 5 << 7 | 0x03;
        assert_eq!(f(ld), Some(C_SDSP_RA));
        // ld t1, -2(t0) leaves t0 live for later: refused.
        assert_eq!(f(ld & !(31 << 7) | 6 << 7), None);
        // addi t1, t0, 8: the same.
        assert_eq!(f(addi(8) & !(31 << 7) | 6 << 7), None);
        // Anything else on t0 near the covered bytes: refused.
        assert_eq!(f(0x0053_0333), None); // add t1, t1, t0
    }

    #[test]
    fn instructions_that_cannot_be_covered() {
        // A second instruction that is PC-relative, or that links.
        assert_eq!(check(&[C_ADDI_SP, 0x0000_0517, RET], 0x1000), None); // auipc a0, 0
        assert_eq!(check(&[C_ADDI_SP, 0x9782, RET], 0x1000), None); // c.jalr a5
                                                                    // A first instruction that jumps through a register.
        assert_eq!(check(&[0x9782, C_SDSP_RA, RET], 0x1000), None); // c.jalr a5
        assert_eq!(check(&[RET, C_SDSP_RA], 0x1000), None);
        // A 32-bit first instruction (it has a jump of its own), and a
        // second one past the function's end.
        assert_eq!(check(&[ADD, C_SDSP_RA, RET], 0x1000), None);
        assert_eq!(check(&[C_SDSP_RA, C_ADDI_SP], 0x1002), None);
    }
}
