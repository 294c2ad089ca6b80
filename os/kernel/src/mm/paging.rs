//! The Sv39 kernel page table.

use super::{sym, LINEAR_OFFSET};
use alloc::boxed::Box;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

const PAGE: usize = 4096;
const MEGA: usize = 2 << 20;
const GIGA: usize = 1 << 30;

pub const V: u64 = 1 << 0;
pub const R: u64 = 1 << 1;
pub const W: u64 = 1 << 2;
pub const X: u64 = 1 << 3;
pub const U: u64 = 1 << 4;
pub const G: u64 = 1 << 5;
pub const A: u64 = 1 << 6;
pub const D: u64 = 1 << 7;

#[repr(C, align(4096))]
pub struct Table(pub [u64; 512]);

static ENABLED: AtomicBool = AtomicBool::new(false);
static SATP: AtomicUsize = AtomicUsize::new(0);

pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

fn new_table() -> &'static mut Table {
    Box::leak(Box::new(Table([0; 512])))
}

fn pte(pa: usize, flags: u64) -> u64 {
    ((pa as u64 >> 12) << 10) | flags | V | A | D | G
}

fn vpn(va: usize, level: usize) -> usize {
    (va >> (12 + 9 * level)) & 0x1ff
}

/// Maps one page of size 4 KiB (level 0), 2 MiB (1) or 1 GiB (2).
fn map(root: &mut Table, va: usize, pa: usize, level: usize, flags: u64) {
    let mut table = root;
    for l in (level + 1..=2).rev() {
        let entry = &mut table.0[vpn(va, l)];
        if *entry & V == 0 {
            let next = new_table() as *mut Table as usize;
            *entry = ((next as u64 >> 12) << 10) | V;
        }
        let next = ((*entry >> 10) << 12) as usize;
        // SAFETY: `next` is a table this function allocated and leaked.
        table = unsafe { &mut *(next as *mut Table) };
    }
    table.0[vpn(va, level)] = pte(pa, flags);
}

fn map_range_4k(root: &mut Table, start: usize, end: usize, flags: u64) {
    for va in (start..end).step_by(PAGE) {
        map(root, va, va, 0, flags);
    }
}

/// Builds the kernel page table. `ram_end` is the end of physical RAM.
pub fn init(ram_end: usize) {
    let root = new_table();
    map_range_4k(root, sym(super::stext), sym(super::etext), R | X);
    map_range_4k(root, sym(super::srodata), sym(super::erodata), R);
    map_range_4k(root, sym(super::sdata), sym(super::ekernel), R | W);
    for pa in (sym(super::ekernel)..ram_end).step_by(MEGA) {
        map(root, pa, pa, 1, R | W);
    }
    // The linear map: devices (first GiB) and RAM, read+write only.
    for pa in (0..ram_end).step_by(GIGA) {
        map(root, pa + LINEAR_OFFSET, pa, 2, R | W);
    }
    let satp = (8usize << 60) | ((root as *mut Table as usize) >> 12);
    SATP.store(satp, Ordering::Relaxed);
}

/// `satp` value of the kernel page table (user address spaces copy its
/// root entries, and harts return to it between processes).
pub fn kernel_satp() -> usize {
    SATP.load(Ordering::Relaxed)
}

/// Turns paging on for the calling hart.
pub fn enable_hart() {
    let satp = SATP.load(Ordering::Relaxed);
    // SAFETY: the table identity-maps all code and data this hart is
    // using, so execution continues at the same addresses.
    unsafe { core::arch::asm!("csrw satp, {}", "sfence.vma", in(reg) satp) };
    ENABLED.store(true, Ordering::Relaxed);
}

/// The leaf PTE flags mapping `va` in the kernel table, if any.
pub fn flags_of(va: usize) -> Option<u64> {
    let satp = SATP.load(Ordering::Relaxed);
    let mut table = (satp << 12) as *const Table;
    for level in (0..=2).rev() {
        // SAFETY: page tables are leaked and never freed.
        let entry = unsafe { (*table).0[vpn(va, level)] };
        if entry & V == 0 {
            return None;
        }
        if entry & (R | W | X) != 0 {
            return Some(entry & 0xff);
        }
        table = ((entry >> 10) << 12) as *const Table;
    }
    None
}
