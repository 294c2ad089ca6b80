//! RISC-V instruction words and registers as types.
//!
//! An [`Insn`] is one whole instruction (16 or 32 bits) with its length; a
//! [`Reg`] is an integer register number. Decoding lives in `decode.rs`.

/// An integer register, `x0` to `x31`.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Hash)]
pub struct Reg(pub u8);

impl Reg {
    pub const ZERO: Reg = Reg(0);
    pub const RA: Reg = Reg(1);
    pub const SP: Reg = Reg(2);
    pub const GP: Reg = Reg(3);
    pub const TP: Reg = Reg(4);
    pub const T0: Reg = Reg(5);
    pub const S0: Reg = Reg(8);
    pub const A0: Reg = Reg(10);

    /// The register named by a 5-bit field (only the low 5 bits count).
    pub const fn from_field(bits: u32) -> Reg {
        Reg((bits & 0x1f) as u8)
    }

    /// The register named by a 3-bit compressed field (`rs1'`, `rs2'`,
    /// `rd'`), which can only name `x8`..`x15`.
    pub const fn from_compressed_field(bits: u32) -> Reg {
        Reg(8 + (bits & 0x7) as u8)
    }

    /// Index into a register file array.
    pub const fn index(self) -> usize {
        (self.0 & 0x1f) as usize
    }
}

/// Code the library writes (detours, stubs): `words` (instructions) and
/// then `quads` (8-byte literals), little-endian, from the start; the
/// rest zero. Panics if they do not fit in `N` bytes.
pub fn code_bytes<const N: usize>(words: &[u32], quads: &[u64]) -> [u8; N] {
    let mut out = [0u8; N];
    let bytes = words
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .chain(quads.iter().flat_map(|q| q.to_le_bytes()));
    for (o, b) in out.iter_mut().zip(bytes) {
        *o = b;
    }
    assert!(words.len() * 4 + quads.len() * 8 <= N, "code does not fit");
    out
}

/// `ebreak`, the 32-bit breakpoint.
pub const EBREAK: u32 = 0x0010_0073;
/// `c.ebreak`, the 16-bit breakpoint (what probes write).
pub const C_EBREAK: u16 = 0x9002;

/// Length in bytes from the first 16-bit parcel: `Some(2)` or `Some(4)`;
/// `None` for 48-bit and longer encodings.
///
/// ```text
///   xxxxxxxxxxxxxxaa  aa != 11       16-bit
///   xxxxxxxxxxxbbb11  bbb != 111     32-bit
///   xxxxxxxxxxx11111                 48-bit or longer
/// ```
pub const fn insn_len(first_parcel: u16) -> Option<usize> {
    if first_parcel & 0b11 != 0b11 {
        Some(2)
    } else if first_parcel & 0b1_1100 != 0b1_1100 {
        Some(4)
    } else {
        None
    }
}

/// One 16- or 32-bit instruction.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct Insn {
    /// For a 16-bit instruction the upper half is zero.
    raw: u32,
    len: u8,
}

impl Insn {
    /// Builds an instruction from its two parcels in memory order; `hi` is
    /// ignored when `lo` announces a 16-bit instruction. `None` for 48-bit+.
    pub const fn from_parcels(lo: u16, hi: u16) -> Option<Insn> {
        match insn_len(lo) {
            Some(2) => Some(Insn {
                raw: lo as u32,
                len: 2,
            }),
            Some(_) => Some(Insn {
                raw: lo as u32 | (hi as u32) << 16,
                len: 4,
            }),
            None => None,
        }
    }

    /// Reads an instruction from little-endian bytes. `None` if fewer bytes
    /// are given than the first parcel announces, or for 48-bit+.
    pub fn from_bytes(b: &[u8]) -> Option<Insn> {
        let lo = u16::from_le_bytes([*b.first()?, *b.get(1)?]);
        match insn_len(lo)? {
            2 => Insn::from_parcels(lo, 0),
            _ => Insn::from_parcels(lo, u16::from_le_bytes([*b.get(2)?, *b.get(3)?])),
        }
    }

    /// The encoding; the upper 16 bits are zero for a compressed instruction.
    pub const fn raw(&self) -> u32 {
        self.raw
    }

    /// Length in bytes, 2 or 4.
    #[allow(clippy::len_without_is_empty)] // an instruction is never empty
    pub const fn len(&self) -> usize {
        self.len as usize
    }

    /// True for a 16-bit (C extension) instruction.
    pub const fn is_compressed(&self) -> bool {
        self.len == 2
    }

    /// Little-endian bytes; only the first [`len`](Self::len) are meaningful.
    pub const fn to_bytes(&self) -> [u8; 4] {
        self.raw.to_le_bytes()
    }
}

/// Bits `hi..=lo` of `raw`, shifted down to bit 0.
pub(crate) const fn bits(raw: u32, hi: u32, lo: u32) -> u32 {
    (raw >> lo) & ((1 << (hi - lo + 1)) - 1)
}

/// Sign-extends the low `width` bits of `value`.
pub(crate) const fn sext(value: u32, width: u32) -> i64 {
    let shift = 64 - width;
    (((value as u64) << shift) as i64) >> shift
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths() {
        assert_eq!(insn_len(0x0000), Some(2));
        assert_eq!(insn_len(C_EBREAK), Some(2));
        assert_eq!(insn_len(0x0073), Some(4));
        assert_eq!(insn_len(0x001f), None); // 48-bit
        assert_eq!(insn_len(0x003f), None); // 64-bit
        assert_eq!(insn_len(0x007f), None); // 80-bit+
        assert_eq!(insn_len(0xffff), None);
    }

    #[test]
    fn parcels_and_bytes() {
        let e = Insn::from_parcels(0x0073, 0x0010).unwrap();
        assert_eq!(e.raw(), EBREAK);
        assert_eq!(e.len(), 4);
        assert!(!e.is_compressed());
        assert_eq!(e.to_bytes(), [0x73, 0x00, 0x10, 0x00]);
        assert_eq!(Insn::from_bytes(&e.to_bytes()), Some(e));
        assert_eq!(Insn::from_bytes(&[0x73, 0x00, 0x10]), None);

        let c = Insn::from_parcels(C_EBREAK, 0xdead).unwrap();
        assert_eq!(c.raw(), 0x9002);
        assert_eq!(c.len(), 2);
        assert!(c.is_compressed());
        assert_eq!(Insn::from_bytes(&[0x02, 0x90]), Some(c));
        assert_eq!(&c.to_bytes()[..2], &[0x02, 0x90]);

        assert_eq!(Insn::from_bytes(&[0x02]), None);
        assert_eq!(Insn::from_bytes(&[]), None);
        assert_eq!(Insn::from_parcels(0x001f, 0), None);
        assert_eq!(Insn::from_bytes(&[0x1f, 0, 0, 0, 0, 0]), None);
    }

    #[test]
    fn helpers() {
        assert_eq!(bits(0xf0, 7, 4), 0xf);
        assert_eq!(bits(0x8000_0000, 31, 31), 1);
        assert_eq!(sext(0xfff, 12), -1);
        assert_eq!(sext(0x7ff, 12), 0x7ff);
        assert_eq!(sext(0x800, 12), -2048);
        assert_eq!(sext(0x8000_0000, 32), -0x8000_0000);
        assert_eq!(Reg::from_field(33), Reg(1));
        assert_eq!(Reg::from_compressed_field(7), Reg(15));
    }
}
