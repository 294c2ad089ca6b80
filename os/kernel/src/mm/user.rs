//! User address spaces: one Sv39 page table per process.
//!
//! User memory lives below `USER_END` (root entries 0 and 1); every other
//! root entry is copied from the kernel table, so the kernel (identity map
//! of its image at 0x8000_0000, the linear map in the high half) is present
//! in every process. Each user page is a private frame: nothing is shared
//! between processes, so writing a process's page through the kernel's
//! linear alias (`pa + LINEAR_OFFSET`) only affects that process.

use super::frame::{Frame, FRAME_SIZE};
use super::paging::{self, A, D, R, U, V, W, X};
use super::LINEAR_OFFSET;
use alloc::collections::btree_map::{BTreeMap, Entry};
use alloc::vec::Vec;

/// End of user virtual memory: root index 2 holds the kernel's identity map.
pub const USER_END: usize = 0x8000_0000;

const ENTRIES: usize = 512;

/// A user access that the page table does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserFault {
    pub va: usize,
}

/// Physical memory ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfMemory;

pub struct AddressSpace {
    root: Frame,
    /// Second- and third-level tables of the user half.
    tables: Vec<Frame>,
    /// User page (virtual address) -> its private frame.
    pages: BTreeMap<usize, Frame>,
}

fn vpn(va: usize, level: usize) -> usize {
    (va >> (12 + 9 * level)) & 0x1ff
}

fn pte_pa(pte: u64) -> usize {
    ((pte >> 10) << 12) as usize
}

/// The page table at physical `pa`, through the linear map.
fn table_at(pa: usize) -> *mut [u64; ENTRIES] {
    (pa + LINEAR_OFFSET) as *mut [u64; ENTRIES]
}

impl AddressSpace {
    /// An address space with the kernel mapped and no user pages.
    pub fn new() -> Result<Self, OutOfMemory> {
        let root = Frame::alloc().ok_or(OutOfMemory)?;
        let kernel_root = (paging::kernel_satp() & ((1 << 44) - 1)) << 12;
        // SAFETY: the kernel root table is leaked and never changes after
        // boot; the new root is ours and not yet in use.
        unsafe {
            let (kernel, new) = (&*table_at(kernel_root), &mut *table_at(root.pa()));
            let first_kernel = vpn(USER_END, 2);
            debug_assert!(kernel[..first_kernel].iter().all(|e| e & V == 0));
            new[first_kernel..].copy_from_slice(&kernel[first_kernel..]);
        }
        Ok(AddressSpace {
            root,
            tables: Vec::new(),
            pages: BTreeMap::new(),
        })
    }

    pub fn satp(&self) -> usize {
        (8usize << 60) | (self.root.pa() >> 12)
    }

    /// The leaf entry for `va`, creating intermediate tables if `create`.
    fn leaf(&mut self, va: usize, create: bool) -> Result<Option<*mut u64>, OutOfMemory> {
        let mut table = self.root.pa();
        for level in [2, 1] {
            // SAFETY: `table` is this address space's root or one of its
            // own tables (the user half holds no kernel tables).
            let entry = unsafe { &mut (*table_at(table))[vpn(va, level)] };
            if *entry & V == 0 {
                if !create {
                    return Ok(None);
                }
                let next = Frame::alloc().ok_or(OutOfMemory)?;
                *entry = ((next.pa() as u64 >> 12) << 10) | V;
                self.tables.push(next);
            }
            table = pte_pa(*entry);
        }
        // SAFETY: as above, a last-level table of this address space.
        Ok(Some(unsafe { &mut (*table_at(table))[vpn(va, 0)] }))
    }

    /// Maps a fresh zeroed frame at page `va` with `flags` (R/W/X) for user
    /// mode. A page that is already mapped keeps its frame and gains the
    /// flags (two segments sharing a page). Returns the page's frame.
    pub fn map_page(&mut self, va: usize, flags: u64) -> Result<&mut Frame, OutOfMemory> {
        assert!(
            va.is_multiple_of(FRAME_SIZE) && va < USER_END,
            "bad user page {va:#x}"
        );
        let leaf = self.leaf(va, true)?.expect("created");
        let frame = match self.pages.entry(va) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(Frame::alloc().ok_or(OutOfMemory)?),
        };
        // SAFETY: `leaf` points into one of this address space's tables.
        unsafe {
            let old = *leaf & (R | W | X);
            *leaf = ((frame.pa() as u64 >> 12) << 10) | old | flags | U | V | A | D;
        }
        Ok(frame)
    }

    /// Physical address and PTE flags of user address `va`.
    pub fn translate(&self, va: usize) -> Option<(usize, u64)> {
        if va >= USER_END {
            return None;
        }
        let mut table = self.root.pa();
        for level in [2, 1, 0] {
            // SAFETY: tables of this address space, see `leaf`.
            let entry = unsafe { (*table_at(table))[vpn(va, level)] };
            if entry & V == 0 {
                return None;
            }
            if level == 0 {
                return Some((pte_pa(entry) + va % FRAME_SIZE, entry & 0x3ff));
            }
            table = pte_pa(entry);
        }
        None
    }

    /// Calls `f(linear_alias, len, offset_in_buf)` for each piece of
    /// `[va, va + len)` within one page, checking every page carries
    /// `need` (plus U).
    fn for_each_piece(
        &self,
        va: usize,
        len: usize,
        need: u64,
        mut f: impl FnMut(usize, usize, usize),
    ) -> Result<(), UserFault> {
        let mut done = 0;
        while done < len {
            let at = va.checked_add(done).ok_or(UserFault { va })?;
            let (pa, flags) = self.translate(at).ok_or(UserFault { va: at })?;
            if flags & (need | U) != need | U {
                return Err(UserFault { va: at });
            }
            let n = (FRAME_SIZE - at % FRAME_SIZE).min(len - done);
            f(pa + LINEAR_OFFSET, n, done);
            done += n;
        }
        Ok(())
    }

    /// Reads user memory that is mapped with at least `need`.
    pub fn read(&self, va: usize, buf: &mut [u8], need: u64) -> Result<(), UserFault> {
        self.for_each_piece(va, buf.len(), need, |alias, n, off| {
            // SAFETY: `alias` is the linear alias of a frame this address
            // space owns, valid for `n` bytes.
            let src = unsafe { core::slice::from_raw_parts(alias as *const u8, n) };
            buf[off..off + n].copy_from_slice(src);
        })
    }

    /// Writes user memory mapped with at least `need`, through the linear
    /// alias: the kernel may write pages the user cannot (text).
    pub fn write(&self, va: usize, bytes: &[u8], need: u64) -> Result<(), UserFault> {
        self.for_each_piece(va, bytes.len(), need, |alias, n, off| {
            // A 2- or 4-byte piece aligned to its size is one store: a
            // thread running this text on another hart fetches either the
            // old or the new instruction (uprobes' breakpoints).
            match bytes[off..off + n] {
                [a, b] if alias.is_multiple_of(2) => {
                    // SAFETY: as in `read`, aligned to 2.
                    unsafe { (alias as *mut u16).write_volatile(u16::from_le_bytes([a, b])) };
                    return;
                }
                [a, b, c, d] if alias.is_multiple_of(4) => {
                    // SAFETY: as in `read`, aligned to 4.
                    unsafe { (alias as *mut u32).write_volatile(u32::from_le_bytes([a, b, c, d])) };
                    return;
                }
                _ => {}
            }
            for (i, b) in bytes[off..off + n].iter().enumerate() {
                // SAFETY: as in `read`; volatile so that a 2-byte patch is
                // not merged or split in surprising ways.
                unsafe { ((alias + i) as *mut u8).write_volatile(*b) };
            }
        })
    }

    /// A private copy (fork): same mappings, each page copied to a new frame.
    pub fn try_clone(&self) -> Result<Self, OutOfMemory> {
        let mut copy = AddressSpace::new()?;
        for (&va, frame) in &self.pages {
            let (_, flags) = self.translate(va).expect("owned page is mapped");
            copy.map_page(va, flags & (R | W | X))?
                .bytes_mut()
                .copy_from_slice(frame.bytes());
        }
        Ok(copy)
    }

    /// User pages mapped.
    pub fn page_count(&self) -> usize {
        self.pages.len()
    }
}
