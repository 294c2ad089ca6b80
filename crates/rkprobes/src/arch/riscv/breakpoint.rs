//! Breakpoint encodings and the order in which they are written.
//!
//! A 16-bit instruction is replaced by `c.ebreak` in one aligned 16-bit
//! store. A 32-bit one (by `ebreak`, or a jump probe's `jal`) is written
//! parcel by parcel, with a sync of every hart in between, such that at
//! every moment the bytes at `addr` decode as the original instruction, as
//! `c.ebreak` (the stale upper parcel is never executed) or as the new
//! one: a hart either runs the original, traps at `addr` or takes the
//! jump, never a torn instruction. That holds at 4-byte aligned addresses
//! too: a fetch may read the two parcels of a word at different times
//! (QEMU's translator does, and the base ISA does not promise otherwise),
//! so one word store is not enough; where only one parcel changes, one
//! parcel store is.

use super::insn::{insn_len, Insn, C_EBREAK, EBREAK};

/// One store of a patch sequence: offset from the probe address and the
/// bytes written there in one aligned store (2 or 4 of them). Every store
/// is followed by a sync of all harts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Store {
    pub offset: usize,
    bytes: [u8; 4],
    len: usize,
}

impl Store {
    fn parcel(offset: usize, v: u16) -> Self {
        let b = v.to_le_bytes();
        Store {
            offset,
            bytes: [b[0], b[1], 0, 0],
            len: 2,
        }
    }
    pub fn bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// A short sequence of parcel stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PatchSeq {
    steps: [Store; 3],
    len: usize,
}

impl PatchSeq {
    pub fn steps(&self) -> &[Store] {
        &self.steps[..self.len]
    }

    fn one(s: Store) -> Self {
        PatchSeq {
            steps: [s; 3],
            len: 1,
        }
    }

    /// Parcel by parcel through `c.ebreak`, for a 32-bit instruction whose
    /// two parcels both change: first parcel to `c.ebreak`, then the
    /// second parcel, then the first parcel to its final value.
    fn through_c_ebreak(lo: u16, hi: u16) -> Self {
        let steps = [
            Store::parcel(0, C_EBREAK),
            Store::parcel(2, hi),
            Store::parcel(0, lo),
        ];
        PatchSeq { steps, len: 3 }
    }
}

fn parcels(raw: u32) -> (u16, u16) {
    (raw as u16, (raw >> 16) as u16)
}

/// Stores that turn `orig`, at `addr`, into a breakpoint.
pub fn arm(orig: Insn, addr: usize) -> PatchSeq {
    if orig.is_compressed() {
        return PatchSeq::one(Store::parcel(0, C_EBREAK));
    }
    arm_with(orig, addr, ebreak())
}

/// Stores that turn the 32-bit `orig`, at `addr`, into the 32-bit `new`
/// (`ebreak`, or a jump probe's `jal`); see `replace_32`.
pub fn arm_with(orig: Insn, addr: usize, new: Insn) -> PatchSeq {
    debug_assert!(!orig.is_compressed() && !new.is_compressed());
    replace_32(orig.raw(), new.raw(), addr)
}

/// Stores that turn the 32-bit `from` at `addr` into the 32-bit `to`.
///
/// Even at a 4-byte aligned address one word store is not enough: an
/// instruction fetch may read the two parcels at different times (QEMU's
/// TCG translator does: two 16-bit loads), and a hart that sees the low
/// parcel of one instruction with the high parcel of the other runs a
/// third one (`add` + the upper half of a `jal` is an ALU op on other
/// registers, `jal`'s lower half + `beq`'s upper half jumps anywhere).
/// A store of one parcel is seen whole, so a word whose parcels both
/// change goes through `c.ebreak` as at 2 mod 4: with a sync of every
/// hart between the stores, a hart sees `from`, `c.ebreak` or `to`.
fn replace_32(from: u32, to: u32, addr: usize) -> PatchSeq {
    let (flo, fhi) = parcels(from);
    let (lo, hi) = parcels(to);
    if addr.is_multiple_of(4) && fhi == hi {
        return PatchSeq::one(Store::parcel(0, lo));
    }
    if addr.is_multiple_of(4) && flo == lo {
        return PatchSeq::one(Store::parcel(2, hi));
    }
    PatchSeq::through_c_ebreak(lo, hi)
}

/// Stores that turn the breakpoint (or jump probe's `jal`, `armed`) at
/// `addr` back into `orig`.
pub fn disarm_from(orig: Insn, addr: usize, armed: Insn) -> PatchSeq {
    let (lo, _) = parcels(orig.raw());
    if orig.is_compressed() {
        return PatchSeq::one(Store::parcel(0, lo));
    }
    replace_32(armed.raw(), orig.raw(), addr)
}

/// The compressed instruction (or breakpoint) `first` followed by the
/// first parcel of `second`: the word a jump over two replaces.
fn covered(first: u16, second: Insn) -> u32 {
    first as u32 | (second.raw() & 0xffff) << 16
}

/// Stores that turn the compressed `first` at `addr` and the first parcel
/// of `second` after it into the jump `jal` (see `region.rs`). When the
/// second parcel changes, the first step writes `c.ebreak` alone: the OS
/// must then make sure no hart is stopped at `addr + 2` before the next
/// store (`KprobeOs::wait_harts_out_of`).
pub fn arm_over_two(first: Insn, second: Insn, addr: usize, jal: Insn) -> PatchSeq {
    replace_32(covered(first.raw() as u16, second), jal.raw(), addr)
}

/// Stores that turn the jump `jal` at `addr` back into `first` and the
/// first parcel of `second`.
pub fn disarm_over_two(first: Insn, second: Insn, addr: usize, jal: Insn) -> PatchSeq {
    replace_32(jal.raw(), covered(first.raw() as u16, second), addr)
}

/// Stores that turn the jump `jal` at `addr` over a compressed instruction
/// and the first parcel of `second` into `c.ebreak` followed by that
/// parcel again (a probe is about to be placed on `second`).
pub fn uncover(second: Insn, addr: usize, jal: Insn) -> PatchSeq {
    replace_32(jal.raw(), covered(C_EBREAK, second), addr)
}

/// Stores that turn the breakpoint at `addr` back into `orig`.
pub fn disarm(orig: Insn, addr: usize) -> PatchSeq {
    disarm_from(orig, addr, ebreak())
}

fn ebreak() -> Insn {
    Insn::from_parcels(EBREAK as u16, (EBREAK >> 16) as u16).unwrap()
}

/// True if the parcel(s) are `ebreak` or `c.ebreak`.
pub fn is_breakpoint(lo: u16, hi: u16) -> bool {
    lo == C_EBREAK || (lo as u32 | (hi as u32) << 16) == EBREAK
}

/// Length of whatever instruction starts with `lo` (for stepping over a
/// breakpoint nobody owns).
pub fn len_of(lo: u16) -> usize {
    insn_len(lo).unwrap_or(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(mem: &mut [u8; 4], step: &Store) {
        mem[step.offset..step.offset + step.bytes().len()].copy_from_slice(step.bytes());
    }

    fn parcels_of(mem: &[u8; 4]) -> (u16, u16) {
        (
            u16::from_le_bytes([mem[0], mem[1]]),
            u16::from_le_bytes([mem[2], mem[3]]),
        )
    }

    /// Every intermediate state of arming and disarming a 32-bit
    /// instruction at 2 mod 4 is the original, `c.ebreak` or `ebreak`.
    #[test]
    fn every_intermediate_state_is_original_or_a_breakpoint() {
        let orig = Insn::from_parcels(0x0513, 0x0010).unwrap(); // addi a0, zero, 1
        let original = orig.to_bytes();
        let mut mem = original;
        let ok = |m: &[u8; 4]| {
            let (lo, hi) = parcels_of(m);
            is_breakpoint(lo, hi) || *m == original
        };
        let seq = arm(orig, 0x1002);
        assert_eq!(seq.steps().len(), 3);
        for step in seq.steps() {
            apply(&mut mem, step);
            assert!(ok(&mem), "{mem:x?}");
        }
        assert_eq!(u32::from_le_bytes(mem), EBREAK);
        for step in disarm(orig, 0x1002).steps() {
            apply(&mut mem, step);
            assert!(ok(&mem), "{mem:x?}");
        }
        assert_eq!(mem, original);
    }

    /// An instruction fetch may read the two parcels of an aligned word at
    /// different times (QEMU's translator does): every mix of old and new
    /// parcels a fetch can see must be the old word, a breakpoint or the
    /// new word.
    fn no_torn_state(from: u32, to: u32, seq: &PatchSeq) {
        let mut mem = from.to_le_bytes();
        let ok = |m: [u8; 4]| {
            let (lo, _) = parcels_of(&m);
            lo == C_EBREAK || u32::from_le_bytes(m) == from || u32::from_le_bytes(m) == to
        };
        for step in seq.steps() {
            let before = mem;
            apply(&mut mem, step);
            // A fetch that read the low parcel before the store and the
            // high one after it, or the other way round.
            let (bl, bh) = parcels_of(&before);
            let (al, ah) = parcels_of(&mem);
            for (lo, hi) in [(bl, ah), (al, bh), (al, ah)] {
                let m = (lo as u32 | (hi as u32) << 16).to_le_bytes();
                assert!(ok(m), "{from:#x} -> {to:#x}: {:#x}", u32::from_le_bytes(m));
            }
        }
        assert_eq!(u32::from_le_bytes(mem), to);
    }

    #[test]
    fn aligned_32_bit_goes_through_c_ebreak() {
        let orig = Insn::from_parcels(0x0593, 0x0020).unwrap(); // addi a1, zero, 2
        let seq = arm(orig, 0x1000);
        assert_eq!(seq.steps().len(), 3);
        no_torn_state(orig.raw(), EBREAK, &seq);
        no_torn_state(EBREAK, orig.raw(), &disarm(orig, 0x1000));
        // addi a0, zero, 1 shares its upper parcel with ebreak.
        let orig = Insn::from_parcels(0x0513, 0x0010).unwrap();
        assert_eq!(arm(orig, 0x1000).steps().len(), 1);
        no_torn_state(orig.raw(), EBREAK, &arm(orig, 0x1000));
        no_torn_state(EBREAK, orig.raw(), &disarm(orig, 0x1000));
        // add a0, a0, a1 <-> a jump probe's jal (the smp churn's torn
        // words: 0x70d40533 and 0x00b5506f).
        let add = Insn::from_parcels(0x0533, 0x00b5).unwrap();
        let jal = Insn::from_parcels(0x506f, 0x5554).unwrap();
        no_torn_state(add.raw(), jal.raw(), &arm_with(add, 0x1000, jal));
        no_torn_state(jal.raw(), add.raw(), &disarm_from(add, 0x1000, jal));
        // One parcel changes: one parcel store.
        let same_hi = Insn::from_parcels(0x0073, 0x0010).unwrap();
        let other = Insn::from_parcels(0x0533, 0x0010).unwrap();
        let seq = arm_with(other, 0x1000, same_hi);
        assert_eq!(seq.steps().len(), 1);
        no_torn_state(other.raw(), same_hi.raw(), &seq);
    }

    /// A jump over two instructions: `c.ebreak` first (the OS then waits
    /// for harts stopped after it), the parcel after it only behind it.
    #[test]
    fn a_jump_over_two_goes_through_c_ebreak() {
        let c_li = Insn::from_parcels(0x4505, 0).unwrap(); // c.li a0, 1
        let c_mv = Insn::from_parcels(0x852e, 0).unwrap(); // c.mv a0, a1
        let jal = Insn::from_parcels(0x506f, 0x5554).unwrap();
        let from = 0x852e_4505;
        for addr in [0x1000, 0x1002] {
            let seq = arm_over_two(c_li, c_mv, addr, jal);
            assert_eq!(seq.steps().len(), 3);
            assert_eq!(seq.steps()[0], Store::parcel(0, C_EBREAK));
            assert_eq!(seq.steps()[1].offset, 2);
            no_torn_state(from, jal.raw(), &seq);
            no_torn_state(jal.raw(), from, &disarm_over_two(c_li, c_mv, addr, jal));
            let uncovered = C_EBREAK as u32 | 0x852e << 16;
            no_torn_state(jal.raw(), uncovered, &uncover(c_mv, addr, jal));
        }
    }

    #[test]
    fn compressed_uses_one_c_ebreak() {
        let orig = Insn::from_parcels(0x4505, 0).unwrap(); // c.li a0, 1
        assert_eq!(arm(orig, 0x1002).steps()[0].bytes(), C_EBREAK.to_le_bytes());
        assert_eq!(
            disarm(orig, 0x1002).steps()[0].bytes(),
            0x4505u16.to_le_bytes()
        );
    }
}
