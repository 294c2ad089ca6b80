//! Names for addresses and addresses for names, through the OS's table.

use crate::error::{Error, Result};
use crate::global;
use core::fmt;

/// Formats an address as `name+0xoff` when the OS knows the function.
pub struct Describe(pub usize);

impl fmt::Display for Describe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match global::get().and_then(|kp| kp.os.symbol_at(self.0)) {
            Some(sym) => write!(f, "{}+{:#x}", sym.name, self.0 - sym.addr),
            None => write!(f, "{:#x}", self.0),
        }
    }
}

/// Resolves `name` or `name+offset` (offset in decimal or `0x` hex).
pub fn resolve(spec: &str) -> Result<usize> {
    let kp = global::get().ok_or(Error::NotInitialized)?;
    let (name, off) = match spec.rsplit_once('+') {
        Some((name, off)) => (name, parse_offset(off).ok_or(Error::UnknownSymbol)?),
        None => (spec, 0),
    };
    let sym = kp
        .os
        .symbol_by_name(name.trim())
        .ok_or(Error::UnknownSymbol)?;
    if off >= sym.size.max(1) {
        return Err(Error::UnknownSymbol);
    }
    Ok(sym.addr + off)
}

fn parse_offset(s: &str) -> Option<usize> {
    let s = s.trim();
    match s.strip_prefix("0x") {
        Some(hex) => usize::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_offset;

    #[test]
    fn offsets_parse_in_hex_and_decimal() {
        assert_eq!(parse_offset("0x10"), Some(16));
        assert_eq!(parse_offset("12"), Some(12));
        assert_eq!(parse_offset("zz"), None);
    }
}
