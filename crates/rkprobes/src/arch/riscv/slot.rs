//! Out-of-line slots: the probed instruction copied to executable memory,
//! followed by an `ebreak` that brings the hart back to the library.
//!
//! ```text
//!  slot + 0          slot + len          slot + len + 4
//!  | probed insn     | ebreak            | (padding)     |
//! ```
//! Only instructions that do not read the pc run here (the decoder
//! guarantees it), so their result does not depend on where they run.

use super::insn::{Insn, EBREAK};

/// Bytes per slot: the longest instruction (4) plus `ebreak` (4).
pub const SLOT_SIZE: usize = 8;

/// The bytes of a slot for `insn`.
pub fn code(insn: Insn) -> [u8; SLOT_SIZE] {
    let mut out = [0u8; SLOT_SIZE];
    let len = insn.len();
    out[..len].copy_from_slice(&insn.to_bytes()[..len]);
    out[len..len + 4].copy_from_slice(&EBREAK.to_le_bytes());
    out
}

/// Where the slot's trailing breakpoint traps.
pub fn return_pc(slot: usize, insn: Insn) -> usize {
    slot + insn.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_is_insn_then_ebreak() {
        let c = Insn::from_parcels(0x4505, 0).unwrap();
        assert_eq!(code(c), [0x05, 0x45, 0x73, 0x00, 0x10, 0x00, 0, 0]);
        let w = Insn::from_parcels(0x0513, 0x0010).unwrap();
        assert_eq!(code(w), [0x13, 0x05, 0x10, 0x00, 0x73, 0x00, 0x10, 0x00]);
        assert_eq!(return_pc(0x1000, w), 0x1004);
    }
}
