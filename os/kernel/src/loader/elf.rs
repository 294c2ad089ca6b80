//! Loading an ELF executable into a user address space, and reading its
//! symbol table.

use crate::mm::frame::FRAME_SIZE;
use crate::mm::paging::{R, W, X};
use crate::mm::user::{AddressSpace, OutOfMemory, USER_END};
use core::ops::Range;
use elf::abi::{PF_R, PF_W, PF_X, PT_LOAD, STT_FUNC};
use elf::endian::LittleEndian;
use elf::ElfBytes;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadError {
    NotFound,
    /// Not a RISC-V 64-bit executable the loader understands.
    BadElf,
    /// A segment outside user memory or past the end of the file.
    BadSegment,
    OutOfMemory,
    /// Too many arguments, or one too long.
    BadArgs,
}

impl From<OutOfMemory> for LoadError {
    fn from(_: OutOfMemory) -> Self {
        LoadError::OutOfMemory
    }
}

fn parse(image: &[u8]) -> Result<ElfBytes<'_, LittleEndian>, LoadError> {
    let file = ElfBytes::<LittleEndian>::minimal_parse(image).map_err(|_| LoadError::BadElf)?;
    let ok = file.ehdr.class == elf::file::Class::ELF64
        && file.ehdr.e_machine == elf::abi::EM_RISCV
        && file.ehdr.e_type == elf::abi::ET_EXEC;
    ok.then_some(file).ok_or(LoadError::BadElf)
}

fn page_flags(p_flags: u32) -> u64 {
    let mut flags = 0;
    if p_flags & PF_R != 0 {
        flags |= R;
    }
    if p_flags & PF_W != 0 {
        flags |= W;
    }
    if p_flags & PF_X != 0 {
        flags |= X;
    }
    flags
}

/// Maps every `PT_LOAD` segment of `image` into `space`, each page a
/// private copy with the segment's permissions (text R+X, never W).
/// Returns the entry point.
pub fn load(image: &[u8], space: &mut AddressSpace) -> Result<usize, LoadError> {
    let file = parse(image)?;
    for seg in file.segments().ok_or(LoadError::BadElf)?.iter() {
        if seg.p_type != PT_LOAD || seg.p_memsz == 0 {
            continue;
        }
        let (va, memsz, filesz) = (
            seg.p_vaddr as usize,
            seg.p_memsz as usize,
            seg.p_filesz as usize,
        );
        let end = va.checked_add(memsz).ok_or(LoadError::BadSegment)?;
        let data = file.segment_data(&seg).map_err(|_| LoadError::BadSegment)?;
        if end > USER_END || filesz > memsz || data.len() < filesz {
            return Err(LoadError::BadSegment);
        }
        let flags = page_flags(seg.p_flags);
        let first = va & !(FRAME_SIZE - 1);
        for page in (first..end).step_by(FRAME_SIZE) {
            let frame = space.map_page(page, flags)?;
            // The part of the file that lands in this page; the rest of
            // the page (bss, padding) stays zero.
            let from = page.max(va);
            let to = (page + FRAME_SIZE).min(va + filesz);
            if from < to {
                frame.bytes_mut()[from - page..to - page]
                    .copy_from_slice(&data[from - va..to - va]);
            }
        }
    }
    Ok(file.ehdr.e_entry as usize)
}

/// Address and size of function or object `name` in the program at `path`.
pub fn elf_symbol(path: &str, name: &str) -> Option<(usize, usize)> {
    let file = parse(super::file(path)?).ok()?;
    let (symbols, strings) = file.symbol_table().ok()??;
    symbols
        .iter()
        .find(|s| s.st_value != 0 && strings.get(s.st_name as usize).is_ok_and(|n| n == name))
        .map(|s| (s.st_value as usize, s.st_size as usize))
}

/// The function containing `addr` in the program at `path`: its name, its
/// start and size.
pub fn symbol_at(path: &str, addr: usize) -> Option<(&'static str, usize, usize)> {
    let file = parse(super::file(path)?).ok()?;
    let (symbols, strings) = file.symbol_table().ok()??;
    let sym = symbols.iter().find(|s| {
        s.st_symtype() == STT_FUNC
            && (s.st_value as usize..(s.st_value + s.st_size) as usize).contains(&addr)
    })?;
    Some((
        strings.get(sym.st_name as usize).ok()?,
        sym.st_value as usize,
        sym.st_size as usize,
    ))
}

/// The executable segment of the program at `path`.
pub fn text_range(path: &str) -> Option<Range<usize>> {
    let file = parse(super::file(path)?).ok()?;
    file.segments()?
        .iter()
        .find(|s| s.p_type == PT_LOAD && s.p_flags & PF_X != 0)
        .map(|s| s.p_vaddr as usize..(s.p_vaddr + s.p_memsz) as usize)
}
