//! The per-process slot page and other pure helpers of uprobes.
//!
//! ```text
//!  page + 0            page + 16                               page + 32
//!  | ebreak (return    | slot 1: insn, jal back | insn, ebreak  | slot 2 ...
//!  |  trampoline)      | (JUMP_AT)              | (STEP_AT)     |
//! ```
//! A slot runs its instruction and jumps straight back after the probe
//! (no second trap) when the page is within `jal` reach (±1 MiB) of the
//! probe; else, or when a post handler must see the result, the copy at
//! `STEP_AT` ends in a breakpoint that brings the thread back to the
//! library. Every probed instruction that is stepped out of line owns one slot
//! index, the same in every process, so the slot's pc alone says which
//! probe a thread is stepping: a thread preempted in its slot may resume
//! on any hart, and threads of one process on several harts share the
//! page without per-hart state.

use crate::arch::current::detour::jal;
use crate::arch::current::insn::{Insn, EBREAK};

/// Bytes of the slot page.
pub const SLOT_PAGE_SIZE: usize = 4096;
/// Bytes of one slot: two copies of the instruction, 8 bytes each.
pub const SLOT_SIZE: usize = 16;
/// Slot indices: 0 is the return trampoline, 1.. are probes' slots.
pub const MAX_SLOTS: usize = SLOT_PAGE_SIZE / SLOT_SIZE;
/// The copy followed by a jump back.
pub const JUMP_AT: usize = 0;
/// The copy followed by `ebreak`.
pub const STEP_AT: usize = 8;

/// Offset of slot `index` in the page.
pub fn slot_offset(index: usize) -> usize {
    index * SLOT_SIZE
}

/// The `jal x0` from the jump copy of the slot at `slot` (its address) back
/// to after the instruction at `addr`, if within reach.
pub fn jump_back(insn: Insn, slot: usize, addr: usize) -> Option<u32> {
    jal(0, slot + JUMP_AT + insn.len(), addr + insn.len())
}

/// Whether the jump copy of a slot at `slot` reaches back to `addr` (a
/// cheap form of `jump_back(..).is_some()` for the hit path).
#[inline(always)]
pub fn in_reach(slot: usize, addr: usize) -> bool {
    // Both ends move by the same instruction length; keep a margin for it.
    slot.abs_diff(addr) < (1 << 20) - SLOT_SIZE
}

/// The bytes of the slot at `slot` for `insn` probed at `addr`. Without a
/// reachable jump the first copy also ends in `ebreak` (and is not used).
pub fn slot_code(insn: Insn, slot: usize, addr: usize) -> [u8; SLOT_SIZE] {
    let mut out = [0u8; SLOT_SIZE];
    let len = insn.len();
    let back = jump_back(insn, slot, addr).unwrap_or(EBREAK);
    for (at, tail) in [(JUMP_AT, back), (STEP_AT, EBREAK)] {
        out[at..at + len].copy_from_slice(&insn.to_bytes()[..len]);
        out[at + len..at + len + 4].copy_from_slice(&tail.to_le_bytes());
    }
    out
}

/// The trampoline's code: a return through it traps once more.
pub fn trampoline_code() -> [u8; 4] {
    EBREAK.to_le_bytes()
}

/// What a trap at `offset` in the slot page is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotTrap {
    /// A return probe's function returned through the trampoline.
    Return,
    /// Inside slot `index`, `within` bytes from its start.
    Slot { index: usize, within: usize },
}

pub fn classify(offset: usize) -> Option<SlotTrap> {
    if offset >= SLOT_PAGE_SIZE {
        return None;
    }
    let (index, within) = (offset / SLOT_SIZE, offset % SLOT_SIZE);
    Some(match (index, within) {
        (0, 0) => SlotTrap::Return,
        (0, _) => return None,
        _ => SlotTrap::Slot { index, within },
    })
}

/// Splits `name`, `name+off` (hex with `0x`, or decimal).
pub fn split_spec(spec: &str) -> Option<(&str, usize)> {
    let (name, off) = match spec.rsplit_once('+') {
        Some((name, off)) => {
            let off = off.trim();
            let off = match off.strip_prefix("0x") {
                Some(hex) => usize::from_str_radix(hex, 16).ok()?,
                None => off.parse().ok()?,
            };
            (name.trim(), off)
        }
        None => (spec.trim(), 0),
    };
    (!name.is_empty()).then_some((name, off))
}

/// Walks instructions from `start` with `len_at(addr)` (the length of the
/// instruction there) until reaching or passing `addr`: whether `addr` is
/// an instruction boundary.
pub fn is_boundary(
    start: usize,
    addr: usize,
    mut len_at: impl FnMut(usize) -> Option<usize>,
) -> bool {
    let mut at = start;
    while at < addr {
        match len_at(at) {
            Some(n) => at += n,
            None => return false,
        }
    }
    at == addr
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_layout() {
        assert_eq!(classify(0), Some(SlotTrap::Return));
        assert_eq!(classify(2), None);
        assert_eq!(
            classify(16),
            Some(SlotTrap::Slot {
                index: 1,
                within: 0
            })
        );
        assert_eq!(
            classify(16 * 5 + 12),
            Some(SlotTrap::Slot {
                index: 5,
                within: 12
            })
        );
        assert_eq!(classify(SLOT_PAGE_SIZE), None);
        assert_eq!(slot_offset(3), 48);
        assert_eq!(MAX_SLOTS, 256);
        assert_eq!(trampoline_code(), [0x73, 0, 0x10, 0]);
    }

    /// Both copies, the first jumping back after the probed instruction
    /// when in reach, else ending in `ebreak` like the second.
    #[test]
    fn slot_copies() {
        let add = Insn::from_parcels(0x0533, 0x00b5).unwrap(); // add a0, a0, a1
        let c_li = Insn::from_parcels(0x4505, 0).unwrap(); // c.li a0, 1
        let (slot, addr) = (0xf010, 0x1_0100);
        let c = slot_code(add, slot, addr);
        let w = |i: usize| u32::from_le_bytes(c[i..i + 4].try_into().unwrap());
        assert_eq!([w(0), w(8), w(12)], [add.raw(), add.raw(), EBREAK]);
        assert_eq!(w(4), jal(0, slot + 4, addr + 4).unwrap());
        let c = slot_code(c_li, slot, addr);
        assert_eq!(&c[..2], &[0x05, 0x45]);
        assert_eq!(c[2..6], jal(0, slot + 2, addr + 2).unwrap().to_le_bytes());
        assert_eq!(&c[8..14], &[0x05, 0x45, 0x73, 0, 0x10, 0]);
        let far = slot_code(add, 0x3fff_f010, addr);
        assert_eq!(far[4..8], EBREAK.to_le_bytes());
        assert!(jump_back(add, 0x3fff_f010, addr).is_none());
        // Where the hit path's quick test says in reach, the encoder can
        // jump (around both edges, every parcel).
        let addr = 0x4000_0000;
        for slot in (addr - (1 << 20) - 32..addr - (1 << 20) + 32)
            .chain(addr + (1 << 20) - 32..addr + (1 << 20) + 32)
            .step_by(2)
        {
            assert!(
                !in_reach(slot, addr) || jump_back(add, slot, addr).is_some(),
                "{slot:#x}"
            );
        }
        for slot in [
            addr - (1 << 20) + 64,
            addr - (1 << 20) - 64,
            addr + (1 << 20) - 64,
            0xf010,
        ] {
            assert_eq!(
                in_reach(slot, addr),
                jump_back(add, slot, addr).is_some(),
                "{slot:#x}"
            );
        }
    }

    #[test]
    fn specs() {
        assert_eq!(split_spec("compute"), Some(("compute", 0)));
        assert_eq!(split_spec("compute+0x10"), Some(("compute", 16)));
        assert_eq!(split_spec("compute + 6"), Some(("compute", 6)));
        assert_eq!(split_spec("compute+zz"), None);
        assert_eq!(split_spec("+4"), None);
    }

    #[test]
    fn boundaries() {
        // 2, 4, 2-byte instructions from 0x100.
        let lens = |a: usize| match a {
            0x100 => Some(2),
            0x102 => Some(4),
            0x106 => Some(2),
            _ => None,
        };
        assert!(is_boundary(0x100, 0x100, lens));
        assert!(is_boundary(0x100, 0x106, lens));
        assert!(!is_boundary(0x100, 0x104, lens));
        assert!(!is_boundary(0x100, 0x10a, lens));
    }
}
