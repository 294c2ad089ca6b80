//! Post-link step: embeds the kernel's own symbol table (like Linux
//! kallsyms) into the `KSYMS` static of the linked ELF.
//!
//! The kernel reserves `KSYMS` (see `os/kernel/src/symbols.rs`) as a
//! zero-filled array in `.rodata`. After every build this step reads the
//! ELF's symbol table, encodes the functions into the blob below, and
//! overwrites the whole `KSYMS` area in the file with it (the blob followed
//! by zeros), so running it twice — or after cargo skipped relinking — gives
//! the same, correct table.
//!
//! Blob format (all integers little endian):
//!
//! ```text
//! magic     b"KSYM"
//! count     u32
//! entries   count x { addr: u64, size: u64, name_off: u32, name_len: u32 }
//!           sorted by addr ascending; several entries at one address are
//!           aliases of one function (identical functions the compiler
//!           merged), the preferred name first
//! names     the names' UTF-8 bytes; name_off is relative to the start of
//!           this area (i.e. to the byte after the last entry)
//! ```
//!
//! Only function symbols (`STT_FUNC`) with a non-zero size that lie in an
//! executable section are included, demangled without the hash
//! (`kernel::trap::trap_handler`).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use object::{Object, ObjectSection, ObjectSymbol, SectionKind, SymbolFlags, SymbolSection};

/// The kernel static the table is written into.
pub const KSYMS_SYMBOL: &str = "KSYMS";
pub const MAGIC: &[u8; 4] = b"KSYM";
pub const HEADER_LEN: usize = 8;
pub const ENTRY_LEN: usize = 24;

const STT_FUNC: u8 = 2;

/// One function for the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FuncSym {
    pub addr: u64,
    pub size: u64,
    /// Demangled, without the hash.
    pub name: String,
    /// Global or weak binding (preferred over locals at the same address).
    pub global: bool,
}

/// Demangles a raw symbol name without the hash
/// (`_ZN6kernel4trap12trap_handler17h…E` → `kernel::trap::trap_handler`).
/// Non-Rust names come back unchanged.
pub fn demangle(raw: &str) -> String {
    format!("{:#}", rustc_demangle::demangle(raw))
}

/// Sorts by address and keeps one symbol per address: a global over a
/// local, then the larger size, then the smaller name (deterministic).
pub fn sort_dedup(syms: Vec<FuncSym>) -> Vec<FuncSym> {
    let mut syms = sort_with_aliases(syms);
    syms.dedup_by_key(|s| s.addr);
    syms
}

/// Sorted by address, the preferred name first at each address (see
/// `sort_dedup`), aliases kept: a merged function stays findable by each
/// of its names (e.g. a drop glue the library looks up by name).
pub fn sort_with_aliases(mut syms: Vec<FuncSym>) -> Vec<FuncSym> {
    syms.sort_by(|a, b| {
        a.addr
            .cmp(&b.addr)
            .then(b.global.cmp(&a.global))
            .then(b.size.cmp(&a.size))
            .then(a.name.cmp(&b.name))
    });
    syms.dedup_by(|a, b| a.addr == b.addr && a.name == b.name);
    syms
}

/// Encodes `syms` (in any order, duplicates allowed) into the blob format.
pub fn encode(syms: Vec<FuncSym>) -> Result<Vec<u8>> {
    let syms = sort_with_aliases(syms);
    let count = u32::try_from(syms.len()).context("too many symbols for a u32 count")?;
    let names_len: usize = syms.iter().map(|s| s.name.len()).sum();
    let mut blob = Vec::with_capacity(HEADER_LEN + syms.len() * ENTRY_LEN + names_len);
    blob.extend_from_slice(MAGIC);
    blob.extend_from_slice(&count.to_le_bytes());
    let mut name_off = 0usize;
    for s in &syms {
        let off = u32::try_from(name_off).context("symbol names exceed 4 GiB")?;
        let len = u32::try_from(s.name.len()).context("symbol name exceeds 4 GiB")?;
        blob.extend_from_slice(&s.addr.to_le_bytes());
        blob.extend_from_slice(&s.size.to_le_bytes());
        blob.extend_from_slice(&off.to_le_bytes());
        blob.extend_from_slice(&len.to_le_bytes());
        name_off += s.name.len();
    }
    for s in &syms {
        blob.extend_from_slice(s.name.as_bytes());
    }
    Ok(blob)
}

/// `blob` followed by zeros up to `capacity` bytes, or an error if it does
/// not fit.
pub fn fit(blob: &[u8], capacity: usize) -> Result<Vec<u8>> {
    ensure!(
        blob.len() <= capacity,
        "kernel symbol table needs {} bytes but `{KSYMS_SYMBOL}` holds only {capacity}; \
         raise KSYMS_SIZE in os/kernel/src/symbols.rs",
        blob.len()
    );
    let mut area = blob.to_vec();
    area.resize(capacity, 0);
    Ok(area)
}

/// The function symbols of `file` that belong in the table.
pub fn collect_functions(file: &object::File<'_>) -> Vec<FuncSym> {
    let mut out = Vec::new();
    for sym in file.symbols() {
        let SymbolFlags::Elf { st_info, .. } = sym.flags() else {
            continue;
        };
        if st_info & 0xf != STT_FUNC || sym.size() == 0 {
            continue;
        }
        let SymbolSection::Section(index) = sym.section() else {
            continue;
        };
        let Ok(section) = file.section_by_index(index) else {
            continue;
        };
        if section.kind() != SectionKind::Text {
            continue;
        }
        let Ok(raw) = sym.name() else {
            continue;
        };
        if raw.is_empty() {
            continue;
        }
        out.push(FuncSym {
            addr: sym.address(),
            size: sym.size(),
            name: demangle(raw),
            global: !sym.is_local(),
        });
    }
    out
}

/// Where the `KSYMS` area lives in the ELF file: `(file offset, size)`.
pub fn ksyms_file_range(file: &object::File<'_>) -> Result<(usize, usize)> {
    let mut found = BTreeMap::new();
    for sym in file.symbols() {
        if sym.name() == Ok(KSYMS_SYMBOL) {
            found.insert(sym.address(), sym);
        }
    }
    let sym = match found.len() {
        0 => bail!(
            "the kernel ELF has no `{KSYMS_SYMBOL}` symbol \
             (is os/kernel/src/symbols.rs compiled in and used?)"
        ),
        1 => found.into_values().next().expect("one entry"),
        n => bail!("the kernel ELF has {n} `{KSYMS_SYMBOL}` symbols at different addresses"),
    };
    ensure!(
        sym.size() > 0,
        "`{KSYMS_SYMBOL}` has size 0 in the symbol table"
    );
    let SymbolSection::Section(index) = sym.section() else {
        bail!("`{KSYMS_SYMBOL}` is not defined in a section");
    };
    let section = file
        .section_by_index(index)
        .context("`KSYMS` section index")?;
    let (sec_off, sec_size) = section.file_range().with_context(|| {
        format!(
            "`{KSYMS_SYMBOL}` lies in section {:?}, which has no bytes in the file (NOBITS?)",
            section.name().unwrap_or("?")
        )
    })?;
    let start = sym
        .address()
        .checked_sub(section.address())
        .context("`KSYMS` lies before its section")?;
    let end = start + sym.size();
    ensure!(
        end <= sec_size,
        "`{KSYMS_SYMBOL}` ({:#x}+{:#x}) runs past its section's file data",
        sym.address(),
        sym.size()
    );
    let offset = usize::try_from(sec_off + start)?;
    Ok((offset, usize::try_from(sym.size())?))
}

/// Rewrites the `KSYMS` area of the ELF image `data` in place with the
/// table built from its own symbol table. Returns the number of symbols.
pub fn embed(data: &mut [u8]) -> Result<usize> {
    let (offset, capacity, blob, count) = {
        let file = object::File::parse(&*data).context("parsing the kernel ELF")?;
        let (offset, capacity) = ksyms_file_range(&file)?;
        let syms = sort_dedup(collect_functions(&file));
        ensure!(!syms.is_empty(), "the kernel ELF has no function symbols");
        let count = syms.len();
        (offset, capacity, encode(syms)?, count)
    };
    let area = fit(&blob, capacity)?;
    data[offset..offset + capacity].copy_from_slice(&area);
    Ok(count)
}

/// The post-link step: embeds the symbol table into the ELF at `elf`.
/// Cheap and idempotent; run it after every build.
pub fn post_link(elf: &Path) -> Result<()> {
    let mut data = std::fs::read(elf).with_context(|| format!("reading {}", elf.display()))?;
    let count = embed(&mut data).with_context(|| format!("ksyms for {}", elf.display()))?;
    let tmp = elf.with_extension("ksyms-tmp");
    std::fs::write(&tmp, &data).with_context(|| format!("writing {}", tmp.display()))?;
    let perms = std::fs::metadata(elf)?.permissions();
    std::fs::set_permissions(&tmp, perms)?;
    std::fs::rename(&tmp, elf).with_context(|| format!("replacing {}", elf.display()))?;
    eprintln!("xtask: ksyms: {count} functions embedded");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Independent decoder following the format in the module docs.
    fn decode(blob: &[u8]) -> Vec<(u64, u64, String)> {
        let u32_at = |o: usize| u32::from_le_bytes(blob[o..o + 4].try_into().unwrap());
        let u64_at = |o: usize| u64::from_le_bytes(blob[o..o + 8].try_into().unwrap());
        assert_eq!(&blob[..4], b"KSYM");
        let count = u32_at(4) as usize;
        let names = 8 + count * 24;
        (0..count)
            .map(|i| {
                let e = 8 + i * 24;
                let (off, len) = (u32_at(e + 16) as usize, u32_at(e + 20) as usize);
                let name = std::str::from_utf8(&blob[names + off..names + off + len]).unwrap();
                (u64_at(e), u64_at(e + 8), name.to_string())
            })
            .collect()
    }

    fn f(addr: u64, size: u64, name: &str, global: bool) -> FuncSym {
        FuncSym {
            addr,
            size,
            name: name.to_string(),
            global,
        }
    }

    #[test]
    fn round_trip() {
        let blob = encode(vec![
            f(0x8020_0000, 0x10, "kernel::main", true),
            f(0x8020_0010, 0x24, "kernel::trap::trap_handler", false),
            f(0x8020_0040, 4, "λ::ünïcode", false),
        ])
        .unwrap();
        assert_eq!(
            decode(&blob),
            vec![
                (0x8020_0000, 0x10, "kernel::main".to_string()),
                (0x8020_0010, 0x24, "kernel::trap::trap_handler".to_string()),
                (0x8020_0040, 4, "λ::ünïcode".to_string()),
            ]
        );
        let names_len =
            "kernel::main".len() + "kernel::trap::trap_handler".len() + "λ::ünïcode".len();
        assert_eq!(blob.len(), 8 + 3 * 24 + names_len);
    }

    #[test]
    fn empty_table_is_just_the_header() {
        let blob = encode(Vec::new()).unwrap();
        assert_eq!(blob, b"KSYM\0\0\0\0");
        assert!(decode(&blob).is_empty());
    }

    #[test]
    fn sorts_by_address() {
        let blob = encode(vec![
            f(0x300, 1, "c", true),
            f(0x100, 1, "a", true),
            f(0x200, 1, "b", true),
        ])
        .unwrap();
        let addrs: Vec<u64> = decode(&blob).iter().map(|e| e.0).collect();
        assert_eq!(addrs, [0x100, 0x200, 0x300]);
        let names: Vec<String> = decode(&blob).into_iter().map(|e| e.2).collect();
        assert_eq!(names, ["a", "b", "c"]);
    }

    /// Merged functions keep every name, the preferred (global) one first.
    #[test]
    fn aliases_kept_preferred_first() {
        for syms in [
            vec![f(0x100, 8, "local", false), f(0x100, 8, "global", true)],
            vec![f(0x100, 8, "global", true), f(0x100, 8, "local", false)],
        ] {
            let mut all = syms;
            all.push(f(0x200, 4, "other", false));
            all.push(f(0x200, 4, "other", false)); // the same symbol twice
            let decoded = decode(&encode(all).unwrap());
            assert_eq!(
                decoded,
                vec![
                    (0x100, 8, "global".to_string()),
                    (0x100, 8, "local".to_string()),
                    (0x200, 4, "other".to_string())
                ]
            );
        }
    }

    #[test]
    fn order_is_deterministic_among_equals() {
        let a = encode(vec![f(0x100, 8, "zz", false), f(0x100, 8, "aa", false)]).unwrap();
        let b = encode(vec![f(0x100, 8, "aa", false), f(0x100, 8, "zz", false)]).unwrap();
        assert_eq!(a, b);
        let names: Vec<String> = decode(&a).into_iter().map(|e| e.2).collect();
        assert_eq!(names, ["aa", "zz"]);
        let one: Vec<String> = sort_dedup(vec![f(0x100, 8, "zz", false), f(0x100, 8, "aa", false)])
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(one, ["aa"]);
    }

    #[test]
    fn fit_pads_with_zeros_and_rejects_overflow() {
        let blob = encode(vec![f(0x100, 8, "abc", true)]).unwrap();
        let area = fit(&blob, blob.len() + 16).unwrap();
        assert_eq!(&area[..blob.len()], &blob[..]);
        assert!(area[blob.len()..].iter().all(|&b| b == 0));
        assert_eq!(fit(&blob, blob.len()).unwrap(), blob);
        let err = fit(&blob, blob.len() - 1).unwrap_err().to_string();
        assert!(err.contains("KSYMS_SIZE"), "{err}");
    }

    #[test]
    fn demangles_without_hash() {
        assert_eq!(
            demangle("_ZN6kernel4trap12trap_handler17h0123456789abcdefE"),
            "kernel::trap::trap_handler"
        );
        assert_eq!(demangle("_start"), "_start");
        assert_eq!(demangle("memcpy"), "memcpy");
    }
}
