//! The OS hooks for probes in user programs (`impl UprobeOs`): processes,
//! their private text pages and slot page, and the program files.

use crate::mm::frame::FRAME_SIZE;
use crate::mm::paging::{R, X};
use crate::process::{self, Process};
use crate::{arch, loader};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::ops::Range;
use elf::abi::PT_LOAD;
use elf::endian::LittleEndian;
use elf::ElfBytes;
use rkprobes::uprobe::{ProcessId, SLOT_PAGE_SIZE};
use rkprobes::UprobeOs;

/// Where every probed process gets its slot page: the page just below the
/// program (linked at 0x10000), within `jal` reach of its text, so a slot
/// jumps straight back after its instruction (no second trap).
pub const SLOT_PAGE_VA: usize = 0x10000 - FRAME_SIZE;

const _: () = assert!(SLOT_PAGE_SIZE == FRAME_SIZE);

pub struct DemoUprobeOs;

pub static UPROBE_OS: DemoUprobeOs = DemoUprobeOs;

pub fn init() {
    rkprobes::init_uprobes(&UPROBE_OS);
}

fn find(pid: ProcessId) -> Option<Arc<Process>> {
    process::find(pid as usize).filter(|p| !p.has_exited())
}

impl UprobeOs for DemoUprobeOs {
    #[link_section = ".text.trap"]
    fn hart_id(&self) -> usize {
        arch::hart_id()
    }

    #[link_section = ".text.trap"]
    fn current_process(&self) -> Option<ProcessId> {
        process::current_pid().map(|pid| pid as ProcessId)
    }

    /// Both from the hart's own slot (the hit path runs with interrupts
    /// masked).
    #[link_section = ".text.trap"]
    fn current(&self) -> Option<(ProcessId, usize)> {
        let hart = arch::hart_id();
        process::current_pid().map(|pid| (pid as ProcessId, hart))
    }

    #[link_section = ".text.trap"]
    fn current_thread(&self) -> u64 {
        process::current_tid() as u64
    }

    fn process_path(&self, pid: ProcessId) -> Option<String> {
        find(pid).map(|p| p.path())
    }

    fn processes_running(&self, path: &str) -> Vec<ProcessId> {
        process::all()
            .iter()
            .filter(|p| p.path() == path)
            .map(|p| p.pid() as ProcessId)
            .collect()
    }

    fn read_user(&self, pid: ProcessId, va: usize, buf: &mut [u8]) -> bool {
        find(pid).is_some_and(|p| process::copy_from_user(&p, va, buf).is_ok())
    }

    fn write_user_text(&self, pid: ProcessId, path: &str, va: usize, bytes: &[u8]) -> bool {
        find(pid).is_some_and(|p| process::user_text_write_if_running(&p, path, va, bytes).is_ok())
    }

    fn map_slot_page(&self, pid: ProcessId, path: &str) -> Option<usize> {
        let p = find(pid)?;
        process::map_user_page_if_running(&p, path, SLOT_PAGE_VA, R | X).ok()?;
        Some(SLOT_PAGE_VA)
    }

    fn read_file_text(&self, path: &str, va: usize, buf: &mut [u8]) -> bool {
        read_file(path, va, buf).is_some()
    }

    fn text_range(&self, path: &str) -> Option<Range<usize>> {
        loader::text_range(path)
    }

    fn elf_symbol(&self, path: &str, name: &str) -> Option<(usize, usize)> {
        loader::elf_symbol(path, name)
    }

    fn function_at(&self, path: &str, addr: usize) -> Option<(usize, usize)> {
        loader::symbol_at(path, addr).map(|(_, start, size)| (start, size))
    }
}

/// Copies the file's loaded bytes at `va` (within one segment's file part).
fn read_file(path: &str, va: usize, buf: &mut [u8]) -> Option<()> {
    let file = ElfBytes::<LittleEndian>::minimal_parse(loader::file(path)?).ok()?;
    let seg = file.segments()?.iter().find(|s| {
        let start = s.p_vaddr as usize;
        s.p_type == PT_LOAD && va >= start && va + buf.len() <= start + s.p_filesz as usize
    })?;
    let data = file.segment_data(&seg).ok()?;
    let from = va - seg.p_vaddr as usize;
    buf.copy_from_slice(data.get(from..from + buf.len())?);
    Some(())
}
