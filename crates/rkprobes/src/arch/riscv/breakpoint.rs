//! Breakpoint encodings and the order in which they are written.
//!
//! A 16-bit instruction is replaced by `c.ebreak` in one aligned 16-bit
//! store, a 32-bit one at a 4-byte aligned address by `ebreak` in one
//! aligned 32-bit store. A 32-bit instruction at an address that is 2 mod 4
//! cannot be replaced in one store that another hart's fetch sees whole. So
//! it is written parcel by parcel, with a sync of every hart in between,
//! such that at every moment the bytes at `addr` decode as the original
//! instruction, as `c.ebreak` (the stale upper parcel is never executed) or
//! as `ebreak`: a hart either runs the original or traps at `addr`, never a
//! torn instruction.

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
    fn word(v: u32) -> Self {
        Store {
            offset: 0,
            bytes: v.to_le_bytes(),
            len: 4,
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

    /// Parcel by parcel through `c.ebreak`, for a 32-bit instruction at
    /// 2 mod 4: first parcel to `c.ebreak`, then the second parcel, then
    /// the first parcel to its final value.
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
    arm_with(
        orig,
        addr,
        Insn::from_parcels(EBREAK as u16, (EBREAK >> 16) as u16).unwrap(),
    )
}

/// Stores that turn the 32-bit `orig`, at `addr`, into the 32-bit `new`
/// (`ebreak`, or a jump probe's `jal`). At 2 mod 4 the way goes through
/// `c.ebreak`: a hart sees the original, `c.ebreak` or `new`.
pub fn arm_with(orig: Insn, addr: usize, new: Insn) -> PatchSeq {
    debug_assert!(!orig.is_compressed() && !new.is_compressed());
    if addr.is_multiple_of(4) {
        return PatchSeq::one(Store::word(new.raw()));
    }
    let (lo, hi) = parcels(new.raw());
    PatchSeq::through_c_ebreak(lo, hi)
}

/// Stores that turn the breakpoint at `addr` back into `orig`.
pub fn disarm(orig: Insn, addr: usize) -> PatchSeq {
    let (lo, hi) = parcels(orig.raw());
    if orig.is_compressed() {
        return PatchSeq::one(Store::parcel(0, lo));
    }
    if addr.is_multiple_of(4) {
        return PatchSeq::one(Store::word(orig.raw()));
    }
    PatchSeq::through_c_ebreak(lo, hi)
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

    #[test]
    fn aligned_32_bit_is_one_word_store() {
        let orig = Insn::from_parcels(0x0513, 0x0010).unwrap();
        let seq = arm(orig, 0x1000);
        assert_eq!(seq.steps().len(), 1);
        assert_eq!(seq.steps()[0].bytes(), EBREAK.to_le_bytes());
        assert_eq!(disarm(orig, 0x1000).steps()[0].bytes(), orig.to_bytes());
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
