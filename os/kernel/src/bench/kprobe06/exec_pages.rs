//! Executable pages for the `kprobe` crate's instruction slots.
//!
//! The crate asks for one page per probed address and writes the copied
//! instruction through the very pointer it later jumps to, so the page must
//! be writable and executable at one address. The demo OS maps nothing
//! that way (text is R+X, the linear alias R+W), so the benchmark takes a
//! 2 MiB-aligned block of heap and sets X on its 2 MiB leaf entries: a
//! bench-only W+X region, outside every test build.

use crate::mm::paging::{R, V, W, X};
use crate::smp;
use alloc::vec::Vec;
use core::alloc::Layout;
use spin::{Mutex, Once};

const PAGE: usize = 4096;
const MEGA: usize = 2 << 20;
/// 2,048 pages: one per probe for the 1,000-probe rows, with room to spare.
const POOL_BYTES: usize = 8 << 20;

static FREE: Mutex<Vec<usize>> = Mutex::new(Vec::new());
static POOL: Once<Result<usize, &'static str>> = Once::new();

/// Sets the pool up once; the error says why it could not be.
pub fn init() -> Result<(), &'static str> {
    let pool = POOL.call_once(|| {
        let layout = Layout::from_size_align(POOL_BYTES, MEGA).map_err(|_| "bad layout")?;
        // SAFETY: the layout has a non-zero size.
        let base = unsafe { alloc::alloc::alloc(layout) } as usize;
        if base == 0 {
            return Err("heap has no 8 MiB block for kprobe's slots");
        }
        for mega in (base..base + POOL_BYTES).step_by(MEGA) {
            make_executable(mega)?;
        }
        // Every hart that may run a slot drops its cached translations.
        let flush = |_| {
            // SAFETY: flushing the TLB has no memory effect.
            unsafe { core::arch::asm!("sfence.vma") };
        };
        if smp::online() > 1 {
            smp::run_on_all(true, &flush);
        } else {
            flush(0);
        }
        *FREE.lock() = (base..base + POOL_BYTES).step_by(PAGE).rev().collect();
        Ok(base)
    });
    pool.map(|_| ())
}

/// Sets X on the 2 MiB leaf entry that maps `va` in the kernel page table.
fn make_executable(va: usize) -> Result<(), &'static str> {
    let satp: usize;
    // SAFETY: reading satp has no side effect.
    unsafe { core::arch::asm!("csrr {}, satp", out(reg) satp) };
    let root = (satp & ((1 << 44) - 1)) << 12;
    let vpn = |level: usize| (va >> (12 + 9 * level)) & 0x1ff;
    // SAFETY: the kernel's page tables are leaked heap pages, identity
    // mapped read+write; the root entry is only read.
    let top = unsafe { *(root as *const u64).add(vpn(2)) };
    if top & V == 0 || top & (R | W | X) != 0 {
        return Err("heap is not mapped by 2 MiB pages");
    }
    let leaf = (((top >> 10) << 12) as *mut u64).wrapping_add(vpn(1));
    // SAFETY: `leaf` is the 2 MiB entry of a page-table page, as above;
    // the page it maps is our own allocation, so no other mapping changes.
    unsafe {
        if *leaf & (V | R | W) != V | R | W {
            return Err("heap is not mapped by 2 MiB read+write pages");
        }
        *leaf |= X;
    }
    Ok(())
}

/// One page. The crate writes through the pointer without a null check, so
/// running out is a panic here rather than a fault there.
pub fn alloc() -> *mut u8 {
    let page = FREE.lock().pop();
    page.expect("kprobe exec page pool exhausted") as *mut u8
}

pub fn free(page: *mut u8) {
    FREE.lock().push(page as usize);
}

/// Pages handed out and not given back.
pub fn in_use() -> usize {
    match POOL.get() {
        Some(Ok(_)) => POOL_BYTES / PAGE - FREE.lock().len(),
        _ => 0,
    }
}
