//! The kernel's own symbol table (like Linux kallsyms).
//!
//! `KSYMS` is reserved here as zeros; `cargo xtask build` overwrites it in
//! the linked ELF (post-link step, `xtask/src/ksyms.rs`) with a table of
//! every function in kernel text. Format, all integers little endian:
//!
//! ```text
//! magic     b"KSYM"
//! count     u32
//! entries   count x { addr: u64, size: u64, name_off: u32, name_len: u32 }
//!           sorted by addr ascending, one per address
//! names     UTF-8 bytes; name_off is relative to the start of this area
//! ```
//!
//! Names are demangled without the hash (`kernel::trap::trap_handler`).
//! Lookups read the table in place: no allocation, usable before the heap.

use core::str;
use rkprobes::Symbol;
use spin::Once;

pub const KSYMS_SIZE: usize = 1 << 20;

/// Filled in by `cargo xtask build` after linking (post-link step).
#[used]
#[no_mangle]
#[link_section = ".rodata.ksyms"]
pub static KSYMS: [u8; KSYMS_SIZE] = [0; KSYMS_SIZE];

const MAGIC: &[u8; 4] = b"KSYM";
const HEADER_LEN: usize = 8;
const ENTRY_LEN: usize = 24;

/// A validated table: every entry's name is a char-boundary range of
/// `names`, and entries are sorted by address.
#[derive(Clone, Copy)]
pub struct Table {
    entries: &'static [u8],
    names: &'static str,
    entry_count: usize,
    /// Distinct addresses among the entries.
    functions: usize,
}

/// Why a blob is not a usable table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// All zeros where the magic should be: the post-link step never ran.
    Empty,
    BadMagic,
    Truncated,
    Unsorted,
    NameOutOfRange,
    NotUtf8,
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(off..off + 8)?.try_into().ok()?))
}

/// Raw fields of entry `i` of an entries area: (addr, size, name_off, name_len).
fn raw_entry(entries: &[u8], i: usize) -> Option<(u64, u64, usize, usize)> {
    let e = i.checked_mul(ENTRY_LEN)?;
    Some((
        u64_at(entries, e)?,
        u64_at(entries, e + 8)?,
        u32_at(entries, e + 16)? as usize,
        u32_at(entries, e + 20)? as usize,
    ))
}

impl Table {
    /// Parses and fully validates `blob` (trailing bytes after the names
    /// are ignored, so the whole padded `KSYMS` area can be passed).
    pub fn parse(blob: &'static [u8]) -> Result<Table, ParseError> {
        let magic = blob.get(..4).ok_or(ParseError::Truncated)?;
        if magic != MAGIC {
            return Err(if magic == [0; 4] {
                ParseError::Empty
            } else {
                ParseError::BadMagic
            });
        }
        let count = u32_at(blob, 4).ok_or(ParseError::Truncated)? as usize;
        let entries_end = count
            .checked_mul(ENTRY_LEN)
            .and_then(|n| n.checked_add(HEADER_LEN))
            .filter(|&end| end <= blob.len())
            .ok_or(ParseError::Truncated)?;
        let entries = &blob[HEADER_LEN..entries_end];
        let names_area = &blob[entries_end..];

        // Bounds and ordering; the names area ends after the furthest name.
        let mut names_len = 0;
        let mut prev_addr = None;
        let mut functions = 0;
        for i in 0..count {
            let (addr, size, off, len) = raw_entry(entries, i).ok_or(ParseError::Truncated)?;
            // Equal addresses: aliases of one function (identical
            // functions merged by the compiler), the preferred name first.
            if prev_addr.is_some_and(|p| p > addr) {
                return Err(ParseError::Unsorted);
            }
            if prev_addr != Some(addr) {
                functions += 1;
            }
            prev_addr = Some(addr);
            if usize::try_from(addr).is_err() || usize::try_from(size).is_err() {
                return Err(ParseError::NameOutOfRange);
            }
            let end = off
                .checked_add(len)
                .filter(|&end| end <= names_area.len())
                .ok_or(ParseError::NameOutOfRange)?;
            names_len = names_len.max(end);
        }
        let names = str::from_utf8(&names_area[..names_len]).map_err(|_| ParseError::NotUtf8)?;
        for i in 0..count {
            let (_, _, off, len) = raw_entry(entries, i).ok_or(ParseError::Truncated)?;
            if !names.is_char_boundary(off) || !names.is_char_boundary(off + len) {
                return Err(ParseError::NotUtf8);
            }
        }
        Ok(Table {
            entries,
            names,
            entry_count: count,
            functions,
        })
    }

    /// Functions (aliases not counted).
    pub fn count(&self) -> usize {
        self.functions
    }

    /// Entry `i` (0-based, in address order).
    pub fn get(&self, i: usize) -> Option<Symbol> {
        if i >= self.entry_count {
            return None;
        }
        let (addr, size, off, len) = raw_entry(self.entries, i)?;
        Some(Symbol {
            // Validated in `parse`: in range and on char boundaries.
            name: self.names.get(off..off + len)?,
            addr: addr as usize,
            size: size as usize,
        })
    }

    fn addr_of(&self, i: usize) -> usize {
        raw_entry(self.entries, i).map_or(usize::MAX, |e| e.0 as usize)
    }

    /// The function containing `addr`.
    pub fn symbol_at(&self, addr: usize) -> Option<Symbol> {
        // Number of entries starting at or below `addr` (binary search).
        let (mut lo, mut hi) = (0, self.entry_count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.addr_of(mid) <= addr {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let mut i = lo.checked_sub(1)?;
        while i > 0 && self.addr_of(i - 1) == self.addr_of(i) {
            i -= 1;
        }
        let sym = self.get(i)?;
        sym.contains(addr).then_some(sym)
    }

    /// The first (lowest-addressed) function named exactly `name`, by
    /// its own name or an alias.
    pub fn symbol_by_name(&self, name: &str) -> Option<Symbol> {
        (0..self.entry_count)
            .filter_map(|i| self.get(i))
            .find(|s| s.name == name)
    }

    /// All functions, sorted by address, each once (by its preferred name).
    pub fn iter(&self) -> impl Iterator<Item = Symbol> {
        let table = *self;
        (0..table.entry_count)
            .filter(move |&i| i == 0 || table.addr_of(i - 1) != table.addr_of(i))
            .filter_map(move |i| table.get(i))
    }
}

static TABLE: Once<Table> = Once::new();

/// The `KSYMS` area as the post-link step left it. `black_box` hides the
/// pointer's origin so the compiler cannot fold reads to the zeros it was
/// compiled with.
fn blob() -> &'static [u8] {
    core::hint::black_box(&KSYMS)
}

fn table() -> &'static Table {
    TABLE.call_once(|| match Table::parse(blob()) {
        Ok(table) => table,
        Err(ParseError::Empty) => panic!(
            "kernel symbol table (KSYMS) is empty: build the kernel with \
             `cargo xtask build` (its post-link step fills it in)"
        ),
        Err(e) => panic!("kernel symbol table (KSYMS) is corrupt: {e:?}"),
    })
}

/// Parses and validates the table once; panics if the post-link step did
/// not run. Lookups also initialize on first use.
pub fn init() {
    let table = table();
    log::info!("ksyms: {} kernel functions", table.count());
}

/// The function containing `addr`.
pub fn symbol_at(addr: usize) -> Option<Symbol> {
    table().symbol_at(addr)
}

/// The function named exactly `name` (demangled, without hash).
pub fn symbol_by_name(name: &str) -> Option<Symbol> {
    table().symbol_by_name(name)
}

/// Every function, sorted by address.
#[allow(dead_code)] // for tools that walk every function
pub fn all() -> impl Iterator<Item = Symbol> {
    table().iter()
}

pub fn count() -> usize {
    table().count()
}
