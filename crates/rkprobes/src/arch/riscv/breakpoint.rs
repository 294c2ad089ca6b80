//! Breakpoint encodings and the order in which they are written.
//!
//! A 16-bit instruction is replaced by `c.ebreak` in one aligned 16-bit
//! store. A 32-bit instruction gets a full `ebreak`, but it may sit at an
//! address that is 2 mod 4, where a 32-bit store is not atomic for another
//! hart's instruction fetch. So it is written parcel by parcel, with a sync
//! of every hart in between, such that at every moment the bytes at `addr`
//! decode as the original instruction, as `c.ebreak` (the stale upper
//! parcel is never executed) or as `ebreak`: a hart either runs the
//! original or traps at `addr`, never a torn instruction.

use super::insn::{insn_len, Insn, C_EBREAK, EBREAK};

/// One 16-bit store of a patch sequence: offset from the probe address and
/// the parcel written there. Every store is followed by a sync of all harts.
pub type Parcel = (usize, u16);

/// A short sequence of parcel stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PatchSeq {
    steps: [Parcel; 3],
    len: usize,
}

impl PatchSeq {
    pub fn steps(&self) -> &[Parcel] {
        &self.steps[..self.len]
    }
}

fn parcels(raw: u32) -> (u16, u16) {
    (raw as u16, (raw >> 16) as u16)
}

/// Stores that turn `orig` into a breakpoint.
pub fn arm(orig: Insn) -> PatchSeq {
    if orig.is_compressed() {
        return PatchSeq {
            steps: [(0, C_EBREAK); 3],
            len: 1,
        };
    }
    let (lo, hi) = parcels(EBREAK);
    PatchSeq {
        steps: [(0, C_EBREAK), (2, hi), (0, lo)],
        len: 3,
    }
}

/// Stores that turn the breakpoint back into `orig`.
pub fn disarm(orig: Insn) -> PatchSeq {
    let (lo, hi) = parcels(orig.raw());
    if orig.is_compressed() {
        return PatchSeq {
            steps: [(0, lo); 3],
            len: 1,
        };
    }
    PatchSeq {
        steps: [(0, C_EBREAK), (2, hi), (0, lo)],
        len: 3,
    }
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

    fn apply(mem: &mut [u16; 2], step: Parcel) {
        mem[step.0 / 2] = step.1;
    }

    /// Every intermediate state of arming and disarming a 32-bit
    /// instruction is the original, `c.ebreak` or `ebreak`.
    #[test]
    fn every_intermediate_state_is_original_or_a_breakpoint() {
        let orig = Insn::from_parcels(0x0513, 0x0010).unwrap(); // addi a0, zero, 1
        let mut mem = [0x0513u16, 0x0010];
        let ok = |m: &[u16; 2]| is_breakpoint(m[0], m[1]) || *m == [0x0513, 0x0010];
        for &step in arm(orig).steps() {
            apply(&mut mem, step);
            assert!(ok(&mem), "{mem:x?}");
        }
        assert_eq!(mem[0] as u32 | (mem[1] as u32) << 16, EBREAK);
        for &step in disarm(orig).steps() {
            apply(&mut mem, step);
            assert!(ok(&mem), "{mem:x?}");
        }
        assert_eq!(mem, [0x0513, 0x0010]);
    }

    #[test]
    fn compressed_uses_one_c_ebreak() {
        let orig = Insn::from_parcels(0x4505, 0).unwrap(); // c.li a0, 1
        assert_eq!(arm(orig).steps(), &[(0, C_EBREAK)]);
        assert_eq!(disarm(orig).steps(), &[(0, 0x4505)]);
    }
}
