//! Return probes (`ProbeType::SyncFunc`): catch a function's return by
//! replacing `ra` at its entry with the probe's trampoline stub.
//!
//! Every call in flight is its own `Instance`, found again at the return by
//! the stack pointer, which a function restores before it returns: so
//! recursion, the same function on several harts, and a task that sleeps
//! inside the function and wakes on another hart all stay apart. Tail calls
//! into the same probe share a stack pointer: the newest instance (highest
//! `seq`) is the one returning. Instances come from a per-probe pool of
//! `maxactive`, taken and released without locks; a call that finds none
//! runs normally and counts as missed.

use crate::arch::current::{trampoline, TrapFrame};
use crate::global::{self, Kprobes};
use crate::point::{EntryAction, PreAction, Probe, RetData};
use alloc::boxed::Box;
use core::ops::Range;
use core::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};

const FREE: u8 = 0;
/// Taken by an entry that is still filling it in.
const CLAIMED: u8 = 1;
/// Filled in; only its own call's return (or `reclaim_stack`) frees it.
const READY: u8 = 2;

/// One call in flight. The return looks only at `READY` instances: their
/// fields were written before the release store of `state`, and change only
/// after this call's own return, or belong to a later call whose stack
/// pointer cannot be this one's.
#[derive(Default)]
struct Instance {
    state: AtomicU8,
    ret_addr: AtomicUsize,
    sp: AtomicUsize,
    seq: AtomicU64,
    data: [AtomicUsize; 4],
}

/// The return-probe half of a `SyncFunc` probe.
pub(crate) struct RetState {
    /// Address of this probe's trampoline stub (in the slot area).
    pub stub: usize,
    instances: Box<[Instance]>,
    /// Calls whose return is still to be caught: the probe (and its stub)
    /// must outlive them, even after unregistration.
    pub in_flight: AtomicUsize,
    next_seq: AtomicU64,
}

impl RetState {
    pub fn new(stub: usize, maxactive: usize) -> Self {
        RetState {
            stub,
            instances: (0..maxactive.max(1)).map(|_| Instance::default()).collect(),
            in_flight: AtomicUsize::new(0),
            next_seq: AtomicU64::new(0),
        }
    }

    pub fn maxactive(&self) -> usize {
        self.instances.len()
    }

    #[inline(always)]
    fn acquire(&self) -> Option<&Instance> {
        let inst = self.instances.iter().find(|i| {
            i.state
                .compare_exchange(FREE, CLAIMED, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        })?;
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        Some(inst)
    }

    #[inline(always)]
    fn release(&self, inst: &Instance) {
        inst.state.store(FREE, Ordering::Release);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// The newest busy instance entered with stack pointer `sp`. A quick
    /// look at each stack pointer first (most instances fail there); a
    /// candidate's state is then read (acquire) before its stack pointer
    /// again: the return may run on another hart than the entry that filled
    /// the instance in.
    #[inline(always)]
    fn find(&self, sp: usize) -> Option<&Instance> {
        self.instances
            .iter()
            .filter(|i| {
                i.sp.load(Ordering::Relaxed) == sp
                    && i.state.load(Ordering::Acquire) == READY
                    && i.sp.load(Ordering::Relaxed) == sp
            })
            .max_by_key(|i| i.seq.load(Ordering::Relaxed))
    }
}

/// At the function's entry breakpoint (not nested): takes an instance,
/// runs the entry handler and, unless it cancels, diverts `ra`.
#[link_section = ".text.rkprobes"]
pub(crate) fn on_entry(probe: &Probe, ret: &RetState, tf: &mut TrapFrame) -> PreAction {
    let Some(inst) = ret.acquire() else {
        probe.count_miss();
        return PreAction::Continue;
    };
    probe.count_hit();
    let mut data: RetData = [0; 4];
    let (action, entry) = match &probe.pre {
        Some(pre) => pre.call(tf, &mut data),
        None => (PreAction::Continue, EntryAction::Continue),
    };
    if entry == EntryAction::Cancel {
        ret.release(inst);
        return action;
    }
    for (slot, v) in inst.data.iter().zip(data) {
        slot.store(v, Ordering::Relaxed);
    }
    inst.ret_addr.store(tf.ra(), Ordering::Relaxed);
    inst.sp.store(tf.sp(), Ordering::Relaxed);
    inst.seq.store(
        ret.next_seq.fetch_add(1, Ordering::Relaxed),
        Ordering::Relaxed,
    );
    inst.state.store(READY, Ordering::Release);
    tf.set_reg(TrapFrame::RA, ret.stub);
    action
}

/// Called by the trampoline with the registers at the function's return
/// (`a0`/`a1` hold the return value; the stub address is in `t0`). Runs the
/// return handler and returns the real return address.
#[no_mangle]
#[link_section = ".text.rkprobes"]
pub extern "C" fn rkprobes_ret_handler(tf: &mut TrapFrame) -> usize {
    let stub = tf.x[trampoline::STUB_REG];
    // SAFETY: the stub names a probe that stays alive while it has calls
    // in flight, and this call is one of them until `release` below.
    let probe = unsafe { &*(trampoline::stub_probe(stub) as *const Probe) };
    let ret = probe
        .ret
        .as_ref()
        .expect("a return stub always belongs to a SyncFunc probe");
    let Some(inst) = ret.find(tf.sp()) else {
        // Cannot happen unless the stack was switched under the function;
        // there is no return address to go back to.
        panic!(
            "rkprobes: return to {stub:#x} with no instance for sp {:#x}",
            tf.sp()
        );
    };
    let real = inst.ret_addr.load(Ordering::Relaxed);
    tf.set_reg(TrapFrame::RA, real);
    tf.set_pc(real);
    let live = probe.registered.load(Ordering::Acquire) && probe.is_enabled();
    if let (Some(post), true, Some(kp)) = (&probe.post, live, global::get()) {
        // Inside the hit path while the handler runs: a probe it hits is
        // nested, and the registry refuses changes from it.
        let hart = kp.hart();
        if hart.enter() {
            probe.count_miss();
        } else {
            let data: RetData = core::array::from_fn(|i| inst.data[i].load(Ordering::Relaxed));
            post.call(tf, &data);
        }
        hart.leave();
    }
    ret.release(inst);
    real
}

/// Releases the instances of calls whose frames lie in `stack` and will
/// never return (their task exited or its stack is being freed). Returns
/// how many were reclaimed.
pub fn reclaim_stack(stack: Range<usize>) -> usize {
    let Some(kp) = global::get() else {
        return 0;
    };
    let Ok(reg) = kp.registry() else {
        return 0;
    };
    let mut n = 0;
    for probe in reg.probes.values().chain(reg.zombies()) {
        if let Some(ret) = &probe.ret {
            n += reclaim_in(ret, &stack);
        }
    }
    n
}

fn reclaim_in(ret: &RetState, stack: &Range<usize>) -> usize {
    let mut n = 0;
    for inst in ret.instances.iter() {
        let ready = inst.state.load(Ordering::Acquire) == READY;
        if ready && stack.contains(&inst.sp.load(Ordering::Relaxed)) {
            ret.release(inst);
            n += 1;
        }
    }
    n
}

/// Default pool size, as Linux: max(10, 2 * harts).
pub(crate) fn default_maxactive(kp: &Kprobes) -> usize {
    (2 * kp.os.max_harts()).max(10)
}
