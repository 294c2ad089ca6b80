//! The per-process slot page and other pure helpers of uprobes.
//!
//! ```text
//!  page + 0            page + 8            page + 16           ...
//!  | ebreak (return    | slot 1: insn,     | slot 2            |
//!  |  trampoline)      |  ebreak           |                   |
//! ```
//! Every probed instruction that is stepped out of line owns one slot
//! index, the same in every process, so the slot's pc alone says which
//! probe a thread is stepping: a thread preempted in its slot may resume
//! on any hart, and threads of one process on several harts share the
//! page without per-hart state.

use crate::arch::current::{insn::EBREAK, SLOT_SIZE};

/// Bytes of the slot page.
pub const SLOT_PAGE_SIZE: usize = 4096;
/// Slot indices: 0 is the return trampoline, 1.. are probes' slots.
pub const MAX_SLOTS: usize = SLOT_PAGE_SIZE / SLOT_SIZE;

/// Offset of slot `index` in the page.
pub fn slot_offset(index: usize) -> usize {
    index * SLOT_SIZE
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
            classify(8),
            Some(SlotTrap::Slot {
                index: 1,
                within: 0
            })
        );
        assert_eq!(
            classify(8 * 5 + 4),
            Some(SlotTrap::Slot {
                index: 5,
                within: 4
            })
        );
        assert_eq!(classify(SLOT_PAGE_SIZE), None);
        assert_eq!(slot_offset(3), 24);
        assert_eq!(MAX_SLOTS, 512);
        assert_eq!(trampoline_code(), [0x73, 0, 0x10, 0]);
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
