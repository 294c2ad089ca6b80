//! The library's one global instance, created by `init`.

use crate::arch::current::SLOT_SIZE;
use crate::hart::HartState;
use crate::os::KprobeOs;
use crate::registry::Registry;
use crate::table::Table;
use alloc::boxed::Box;
use core::ops::Range;
use core::sync::atomic::AtomicU64;
use spin::{Mutex, Once};

/// Sizes fixed at `init`, so the hit path never allocates.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Most distinct probed addresses at once.
    pub max_points: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_points: 16 * 1024,
        }
    }
}

pub(crate) struct Kprobes {
    pub os: &'static dyn KprobeOs,
    pub table: Table,
    pub harts: Box<[HartState]>,
    pub slots: Range<usize>,
    pub registry: Mutex<Registry>,
    pub unowned: AtomicU64,
}

static KPROBES: Once<Kprobes> = Once::new();

#[inline(always)]
pub(crate) fn get() -> Option<&'static Kprobes> {
    KPROBES.get()
}

/// Sets the library up for `os`. Call once, before registering probes and
/// before breakpoints can reach `kprobes_trap_handler`. Later calls are
/// ignored.
pub fn init(os: &'static dyn KprobeOs, config: Config) {
    KPROBES.call_once(|| {
        let slots = os.slot_area();
        // The first slots are each hart's scratch slot (see `hit.rs`).
        let shared = slots.start + os.max_harts() * SLOT_SIZE..slots.end;
        Kprobes {
            os,
            table: Table::new(config.max_points * 2),
            harts: (0..os.max_harts()).map(|_| HartState::default()).collect(),
            registry: Mutex::new(Registry::new(shared, config.max_points)),
            slots,
            unowned: AtomicU64::new(0),
        }
    });
}

impl Kprobes {
    #[inline(always)]
    pub fn hart(&self) -> &HartState {
        &self.harts[self.os.hart_id()]
    }

    /// This hart's scratch slot, for re-executing an instruction whose
    /// probe was just removed.
    pub fn scratch_slot(&self) -> usize {
        self.slots.start + self.os.hart_id() * SLOT_SIZE
    }
}
