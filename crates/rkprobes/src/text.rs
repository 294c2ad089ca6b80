//! Reading kernel text. Reads are direct (text is readable); writes go
//! through the OS (`KprobeOs::write_text`), which owns the writable alias.

/// Reads up to 4 bytes of text at `addr`, parcel by parcel (`n` is 2 or 4).
///
/// The caller has checked that `addr..addr + n` lies in the OS's text range.
pub(crate) fn read(addr: usize, n: usize) -> [u8; 4] {
    let mut out = [0u8; 4];
    for i in (0..n).step_by(2) {
        // SAFETY: the caller guarantees the range is mapped, readable text;
        // parcels are 2-byte aligned.
        let parcel = unsafe { ((addr + i) as *const u16).read_volatile() };
        out[i..i + 2].copy_from_slice(&parcel.to_le_bytes());
    }
    out
}
