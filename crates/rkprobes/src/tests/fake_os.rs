//! A `KprobeOs` over host memory: a page of "kernel text" followed by a
//! page of slots (atomics, since harts read text while another patches it), a
//! symbol table over the fake functions, a blacklisted function, a log of
//! text writes and icache syncs, and std threads as harts.

use super::fake_text::{self, FN_STRIDE, FUNCTIONS};
use crate::{Config, KprobeOs, Symbol};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::cell::Cell;
use core::ops::Range;
use core::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

const PAGE: usize = 4096;
/// Bytes of the slot area: room for the scratch slots of `MAX_HARTS`
/// harts, detours, and return probes' stubs of their default size.
const SLOTS: usize = 8 * PAGE;

/// The text page, then the slot area: like the demo OS, whose slot section
/// lies inside its kernel text.
#[repr(C, align(4096))]
struct Area {
    text: [AtomicU16; PAGE / 2],
    slots: [AtomicU16; SLOTS / 2],
}

fn range(parcels: &[AtomicU16]) -> Range<usize> {
    let base = parcels.as_ptr() as usize;
    base..base + 2 * parcels.len()
}

/// What the library asked the OS to do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Write { addr: usize, bytes: Vec<u8> },
    Sync,
}

pub struct FakeOs {
    area: &'static Area,
    pristine: Vec<u16>,
    symbols: Vec<Symbol>,
    blacklist: Range<usize>,
    log: Mutex<Vec<Event>>,
    pub relaxes: AtomicUsize,
}

/// Each std thread that touches the library becomes a new hart (about one
/// per test). The library keeps one scratch slot per hart in the slot page.
pub const MAX_HARTS: usize = 128;
static NEXT_HART: AtomicUsize = AtomicUsize::new(0);
std::thread_local! {
    static HART: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// The one fake OS, with the library initialised on it.
pub fn os() -> &'static FakeOs {
    static OS: OnceLock<&'static FakeOs> = OnceLock::new();
    OS.get_or_init(|| {
        let os: &'static FakeOs = Box::leak(Box::new(FakeOs::new()));
        crate::init(
            os,
            Config {
                max_points: 256,
                ..Config::default()
            },
        )
        .expect("init");
        os
    })
}

impl FakeOs {
    fn new() -> Self {
        let area: &'static Area = Box::leak(Box::new(Area {
            text: [const { AtomicU16::new(0) }; PAGE / 2],
            slots: [const { AtomicU16::new(0) }; SLOTS / 2],
        }));
        let base = range(&area.text).start;
        let mut pristine = alloc::vec![fake_text::C_NOP; PAGE / 2];
        let mut symbols = Vec::new();
        for (i, (name, ops)) in FUNCTIONS.iter().enumerate() {
            let start = i * FN_STRIDE;
            let code = fake_text::assemble(ops);
            pristine[start / 2..start / 2 + code.len()].copy_from_slice(&code);
            symbols.push(Symbol {
                name,
                addr: base + start,
                size: fake_text::size(ops),
            });
        }
        assert!(FUNCTIONS.len() * FN_STRIDE <= PAGE, "fake text is full");
        for (cell, &p) in area.text.iter().zip(&pristine) {
            cell.store(p, Ordering::Relaxed);
        }
        let black = symbols
            .iter()
            .find(|s| s.name == fake_text::BLACKLISTED)
            .expect("blacklisted function");
        let blacklist = black.addr..black.addr + black.size;
        FakeOs {
            area,
            pristine,
            symbols,
            blacklist,
            log: Mutex::new(Vec::new()),
            relaxes: AtomicUsize::new(0),
        }
    }

    /// The fake function `name` (panics if there is none).
    pub fn func(&self, name: &str) -> Symbol {
        self.symbol_by_name(name)
            .unwrap_or_else(|| panic!("no fake function {name}"))
    }

    /// Address `off` bytes into function `name`.
    pub fn addr(&self, name: &str, off: usize) -> usize {
        self.func(name).addr + off
    }

    fn cell(&self, addr: usize) -> Option<&AtomicU16> {
        assert!(addr.is_multiple_of(2), "odd parcel address {addr:#x}");
        let whole = range(&self.area.text).start..range(&self.area.slots).end;
        let i = addr.checked_sub(whole.start)? / 2;
        (whole.contains(&addr)).then(|| {
            if i < PAGE / 2 {
                &self.area.text[i]
            } else {
                &self.area.slots[i - PAGE / 2]
            }
        })
    }

    /// Current bytes at `addr` (text or slots); `n` even.
    pub fn bytes(&self, addr: usize, n: usize) -> Vec<u8> {
        (0..n)
            .step_by(2)
            .flat_map(|i| {
                let cell = self.cell(addr + i).expect("read outside the fake pages");
                cell.load(Ordering::SeqCst).to_le_bytes()
            })
            .collect()
    }

    /// The bytes the text had before any probe; `n` even.
    pub fn pristine(&self, addr: usize, n: usize) -> Vec<u8> {
        let start = (addr - range(&self.area.text).start) / 2;
        self.pristine[start..start + n / 2]
            .iter()
            .flat_map(|p| p.to_le_bytes())
            .collect()
    }

    /// Length of the original instruction at `addr`.
    pub fn insn_len(&self, addr: usize) -> usize {
        let p = self.pristine(addr, 2);
        if p[0] & 0b11 == 0b11 {
            4
        } else {
            2
        }
    }

    /// The whole text and slot area, for "nothing changed" checks.
    pub fn snapshot(&self) -> (Vec<u8>, Vec<u8>) {
        let t = range(&self.area.text);
        let s = range(&self.area.slots);
        (self.bytes(t.start, PAGE), self.bytes(s.start, SLOTS))
    }

    /// Number of events logged so far; `events_since` returns the rest.
    pub fn log_len(&self) -> usize {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub fn events_since(&self, start: usize) -> Vec<Event> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)[start..].to_vec()
    }
}

impl KprobeOs for FakeOs {
    fn write_text(&self, addr: usize, bytes: &[u8]) {
        assert!(bytes.len().is_multiple_of(2), "odd write {bytes:x?}");
        for (i, pair) in bytes.chunks(2).enumerate() {
            let cell = self
                .cell(addr + 2 * i)
                .unwrap_or_else(|| panic!("write outside text and slots at {addr:#x}"));
            cell.store(u16::from_le_bytes([pair[0], pair[1]]), Ordering::SeqCst);
        }
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Event::Write {
                addr,
                bytes: bytes.to_vec(),
            });
    }

    fn sync_icache_all_harts(&self) {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Event::Sync);
    }

    fn hart_id(&self) -> usize {
        HART.with(|h| {
            if h.get() == usize::MAX {
                let id = NEXT_HART.fetch_add(1, Ordering::Relaxed);
                assert!(id < MAX_HARTS, "more test threads than fake harts");
                h.set(id);
            }
            h.get()
        })
    }

    fn max_harts(&self) -> usize {
        MAX_HARTS
    }

    fn text_range(&self) -> Range<usize> {
        range(&self.area.text).start..range(&self.area.slots).end
    }

    fn slot_area(&self) -> Range<usize> {
        range(&self.area.slots)
    }

    fn symbol_at(&self, addr: usize) -> Option<Symbol> {
        self.symbols.iter().find(|s| s.contains(addr)).copied()
    }

    fn symbol_by_name(&self, name: &str) -> Option<Symbol> {
        self.symbols.iter().find(|s| s.name == name).copied()
    }

    fn is_blacklisted(&self, addr: usize) -> bool {
        self.blacklist.contains(&addr)
    }

    fn relax(&self) {
        self.relaxes.fetch_add(1, Ordering::Relaxed);
        // Fewer CPUs than test harts: let the harts we wait for run.
        std::thread::yield_now();
    }
}
