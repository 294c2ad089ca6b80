//! The OS hooks: how this kernel hosts rkprobes (`impl KprobeOs`).

use crate::boot::MAX_HARTS;
use crate::mm::{self, sym};
use crate::{arch, smp, symbols};
use core::ops::Range;
use rkprobes::{KprobeOs, Symbol};

pub struct DemoOs;

pub static OS: DemoOs = DemoOs;

/// Name prefixes of code that runs inside the hit path or that the hit path
/// relies on: probing it would recurse.
const NO_PROBE_PREFIXES: &[&str] = &["rkprobes::", "<rkprobes::", "kernel::rkprobes_os::"];

impl KprobeOs for DemoOs {
    fn write_text(&self, addr: usize, bytes: &[u8]) {
        let alias = mm::linear_alias(addr);
        // A 2- or 4-byte write at an address aligned to its size is one
        // store: other harts fetch either the old or the new instruction.
        match *bytes {
            [a, b] if addr.is_multiple_of(2) => {
                // SAFETY: the linear map covers all kernel text read+write.
                unsafe { (alias as *mut u16).write_volatile(u16::from_le_bytes([a, b])) };
                return;
            }
            [a, b, c, d] if addr.is_multiple_of(4) => {
                // SAFETY: as above, aligned to 4.
                unsafe { (alias as *mut u32).write_volatile(u32::from_le_bytes([a, b, c, d])) };
                return;
            }
            _ => {}
        }
        for (i, b) in bytes.iter().enumerate() {
            // SAFETY: as above, byte by byte.
            unsafe { ((alias + i) as *mut u8).write_volatile(*b) };
        }
    }

    fn sync_icache_all_harts(&self) {
        smp::sync_icache_all();
    }

    /// This kernel can tell where every other hart was interrupted, and
    /// never preempts kernel code (`smp::wait_harts_out_of`).
    fn can_wait_harts_out_of(&self) -> bool {
        true
    }

    fn wait_harts_out_of(&self, ranges: &[Range<usize>]) {
        smp::wait_harts_out_of(ranges);
    }

    fn sync_icache_local(&self) {
        arch::fence_i();
    }

    #[link_section = ".text.trap"]
    fn hart_id(&self) -> usize {
        arch::hart_id()
    }

    /// The `time` CSR, for async probes' timings (runs in the hit path).
    #[link_section = ".text.trap"]
    fn now_ticks(&self) -> u64 {
        arch::time()
    }

    fn max_harts(&self) -> usize {
        MAX_HARTS
    }

    fn text_range(&self) -> Range<usize> {
        sym(mm::stext)..sym(mm::etext)
    }

    fn slot_area(&self) -> Range<usize> {
        sym(mm::skprobe_slots)..sym(mm::ekprobe_slots)
    }

    fn symbol_at(&self, addr: usize) -> Option<Symbol> {
        symbols::symbol_at(addr)
    }

    fn symbol_by_name(&self, name: &str) -> Option<Symbol> {
        symbols::symbol_by_name(name)
    }

    fn is_blacklisted(&self, addr: usize) -> bool {
        let trap_text = sym(mm::strap_text)..sym(mm::etrap_text);
        let boot = sym(mm::stext)..trap_text.start;
        trap_text.contains(&addr)
            || boot.contains(&addr)
            || symbols::symbol_at(addr)
                .is_some_and(|s| NO_PROBE_PREFIXES.iter().any(|p| s.name.starts_with(p)))
    }
}

pub fn init() {
    rkprobes::init(&OS, rkprobes::Config::default()).expect("rkprobes: slot area too small");
}
