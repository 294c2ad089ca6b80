//! Programs: the read-only file table of user programs embedded in the
//! kernel image, and the ELF loader that maps them into an address space.
//!
//! The ELF files keep their symbol tables, so probes can name a place in a
//! program as `(path, symbol + offset)`: see [`elf_symbol`].

mod elf;
mod files;

pub use self::elf::{elf_symbol, load, symbol_at, text_range, LoadError};
pub use files::{file, paths};
