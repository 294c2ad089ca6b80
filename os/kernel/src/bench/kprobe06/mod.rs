//! The `kprobe` crate 0.6 (crates.io) hosted by the demo OS, so it can run
//! the same workloads as rkprobes.
//!
//! - `aux_ops.rs`: the host operations the crate requires;
//! - `exec_pages.rs`: W+X pages for its instruction slots;
//! - `frame.rs`: the trap frame handed to it as `PtRegs`.
//!
//! While it is under test, the bench hook in the trap handler sends every
//! breakpoint here (`handle_breakpoint`), both the probe's and the one
//! after the slot's instruction.

mod aux_ops;
mod exec_pages;
mod frame;

use super::tracer::{Handlers, Memory, Tracer};
use crate::trap::KernelFrame;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use aux_ops::DemoAux;
use core::mem::size_of;
use core::sync::atomic::{AtomicUsize, Ordering};
use kprobe::{
    KretprobeBuilder, ProbeBuilder, ProbeData, ProbeInstallError, ProbeManager, ProbePointList,
    PtRegs,
};

/// The crate's lock type parameter: spin's mutex through `lock_api`.
type Lock = spin::Mutex<()>;
type Probe = kprobe::Kprobe<Lock, DemoAux>;
type Kretprobe = kprobe::Kretprobe<Lock, DemoAux>;
type Point = kprobe::ProbePoint<DemoAux>;
type UniProbe = kprobe::UniProbe<Lock, DemoAux>;

static MANAGER: ProbeManager<Lock, DemoAux> = ProbeManager::new();
static POINTS: spin::Mutex<ProbePointList<DemoAux>> = spin::Mutex::new(BTreeMap::new());
static LIVE: AtomicUsize = AtomicUsize::new(0);

fn empty_handler(_data: &dyn ProbeData, _regs: &mut PtRegs) {}

/// The crate's breakpoint entry, on the trap frame. `false`: not its own.
pub fn handle_breakpoint(frame: &mut KernelFrame) -> bool {
    frame::with_pt_regs(frame, |regs| {
        kprobe::kprobe_handler_from_break(&MANAGER, regs).is_some()
    })
}

/// Calls in flight per return probe (`maxactive`): the bench's calls do
/// not nest.
const MAXACTIVE: u32 = 4;

/// A probe of either kind the crate registers.
pub enum Probe06 {
    K(Arc<Probe>),
    /// A return probe: entry through a kprobe on the function's first
    /// instruction, return through the crate's trampoline (no trap); its
    /// instances live on `aux_ops`'s per-hart stacks.
    Ret(Arc<Kretprobe>),
}

pub struct Kprobe06;

impl Kprobe06 {
    pub fn new() -> Result<Self, &'static str> {
        exec_pages::init()?;
        Ok(Kprobe06)
    }
}

fn explain(e: ProbeInstallError) -> String {
    let why = match e {
        ProbeInstallError::UnsupportedInstruction => {
            ": kprobe 0.6 refuses auipc, jal, jalr, branches, fence and system \
             instructions (it neither simulates nor relocates them)"
        }
        // Its 16-bit decoder's verdict on quadrant 1, funct3 1/5/6/7.
        ProbeInstallError::UnsafeInstruction => {
            ": kprobe 0.6 refuses c.j, c.beqz, c.bnez (and c.addiw, which it \
             takes for RV32's c.jal) as PC-relative"
        }
        _ => "",
    };
    alloc::format!("{e:?}{why}")
}

/// Bytes the crate allocates per probe on a distinct address, from its
/// types: the probe and its point (each in an `Arc`), one `UniProbe` in a
/// one-element `Vec` in each of the manager's two maps, and the point
/// list's entry. Keys and values only: B-tree node slack is left out, so
/// this is a lower bound.
const BOOKKEEPING_PER_PROBE: usize = {
    let arc = 2 * size_of::<usize>();
    let key = size_of::<usize>();
    size_of::<Probe>()
        + arc
        + size_of::<Point>()
        + arc
        + 2 * (key + size_of::<Vec<UniProbe>>() + size_of::<UniProbe>())
        + key
        + size_of::<Arc<Point>>()
};

impl Tracer for Kprobe06 {
    const IMPL: &'static str = "kprobe-0.6";
    type Probe = Probe06;

    fn register(&self, addr: usize, handlers: Handlers) -> Result<Probe06, String> {
        let b = ProbeBuilder::<DemoAux>::new()
            .with_symbol_addr(addr)
            .with_enable(true)
            .with_pre_handler(empty_handler);
        let probe = match handlers {
            Handlers::Pre => kprobe::register_kprobe(&MANAGER, &mut POINTS.lock(), b),
            Handlers::PrePost => kprobe::register_kprobe(
                &MANAGER,
                &mut POINTS.lock(),
                b.with_post_handler(empty_handler),
            ),
            Handlers::EntryReturn | Handlers::CallReturn => {
                aux_ops::reserve_ret_stacks(MAXACTIVE as usize);
                let b = KretprobeBuilder::<Lock>::new(MAXACTIVE)
                    .with_symbol_addr(addr)
                    .with_enable(true)
                    .with_entry_handler(empty_handler)
                    .with_ret_handler(empty_handler);
                let probe =
                    kprobe::register_kretprobe(&MANAGER, &mut POINTS.lock(), b).map_err(explain)?;
                LIVE.fetch_add(1, Ordering::Relaxed);
                return Ok(Probe06::Ret(probe));
            }
        }
        .map_err(explain)?;
        LIVE.fetch_add(1, Ordering::Relaxed);
        Ok(Probe06::K(probe))
    }

    fn unregister(&self, probe: Probe06) -> Result<(), String> {
        match probe {
            Probe06::K(p) => kprobe::unregister_kprobe(&MANAGER, &mut POINTS.lock(), p),
            Probe06::Ret(p) => kprobe::unregister_kretprobe(&MANAGER, &mut POINTS.lock(), p),
        }
        LIVE.fetch_sub(1, Ordering::Relaxed);
        Ok(())
    }

    fn hits(&self, _probe: &Probe06) -> Option<u64> {
        None
    }

    fn memory(&self) -> Memory {
        Memory {
            slot_bytes: exec_pages::in_use() * 4096,
            bookkeeping_bytes: LIVE.load(Ordering::Relaxed) * BOOKKEEPING_PER_PROBE,
            fixed_bytes: 0,
        }
    }

    const MEMORY_NOTE: &'static str = "slots: exec pages handed out; bookkeeping: from the \
        crate's type sizes per probe (B-tree node slack not counted, a lower bound)";
}
