//! Memory: the kernel heap, the Sv39 kernel page table, physical frames
//! and user address spaces.
//!
//! Layout (VA): the kernel image and RAM are identity-mapped, the image with
//! per-section permissions (text is read+execute, never writable). All of
//! RAM and the device region are also mapped at `LINEAR_OFFSET + pa`,
//! read+write, never executable: the kernel patches its own text through
//! that alias.

pub mod frame;
pub mod heap;
pub mod paging;
pub mod user;

/// Offset of the read+write linear map of physical memory.
pub const LINEAR_OFFSET: usize = 0xffff_ffc0_0000_0000;

extern "C" {
    pub fn stext();
    pub fn etext();
    pub fn srodata();
    pub fn erodata();
    pub fn sdata();
    pub fn sbss();
    pub fn ebss();
    pub fn ekernel();
    pub fn strap_text();
    pub fn etrap_text();
    pub fn skprobe_slots();
    pub fn ekprobe_slots();
}

pub fn sym(f: unsafe extern "C" fn()) -> usize {
    f as usize
}

/// Writable alias of a kernel (identity-mapped) address.
pub fn linear_alias(addr: usize) -> usize {
    addr + LINEAR_OFFSET
}

/// Where a device register at physical `pa` can be reached right now.
pub fn device_address(pa: usize) -> usize {
    if paging::enabled() {
        pa + LINEAR_OFFSET
    } else {
        pa
    }
}
