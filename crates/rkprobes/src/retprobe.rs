//! Return probes (`ProbeType::SyncFunc`): catch a function's return by
//! replacing `ra` at its entry with the probe's trampoline stub.
//!
//! Every call in flight is its own slot of the probe's `CallPool`
//! (`calls.rs`), and returns into its own entry of the probe's stub
//! (`arch/riscv/trampoline.rs`), which names the slot: so recursion, tail
//! calls, the same function on several harts, and a task that sleeps
//! inside the function and wakes on another hart all stay apart, and a
//! return finds its call without a search. The pool holds `maxactive`
//! calls; a call that finds none runs normally and counts as missed.

use crate::arch::current::{trampoline, TrapFrame};
use crate::calls::CallPool;
use crate::global::{self, Kprobes};
use crate::point::{EntryAction, Pre, PreAction, Probe, RetData};
use core::ops::Range;
use core::sync::atomic::Ordering;

/// The return-probe half of a `SyncFunc` probe.
pub(crate) struct RetState {
    /// Address of this probe's trampoline stub (in the slot area), with
    /// one entry per call slot.
    pub stub: usize,
    /// Calls whose return is still to be caught: the probe (and its stub)
    /// must outlive them, even after unregistration.
    pub calls: CallPool,
}

impl RetState {
    pub fn new(stub: usize, maxactive: usize) -> Self {
        RetState {
            stub,
            calls: CallPool::new(maxactive),
        }
    }

    pub fn maxactive(&self) -> usize {
        self.calls.capacity()
    }

    pub fn in_flight(&self) -> usize {
        self.calls.in_flight()
    }
}

/// At the function's entry breakpoint (not nested): takes an instance,
/// runs the entry handler and, unless it cancels, diverts `ra`.
#[link_section = ".text.rkprobes"]
pub(crate) fn on_entry(probe: &Probe, ret: &RetState, tf: &mut TrapFrame) -> PreAction {
    let Some(call) = ret.calls.claim() else {
        probe.count_miss();
        return PreAction::Continue;
    };
    probe.count_hit();
    let mut data = [0; 4];
    let (action, entry) = match &probe.pre {
        // The usual entry handler first, tested alone.
        Some(Pre::Entry(f)) => (PreAction::Continue, f(tf, &mut data)),
        Some(pre) => call_other_pre(pre, tf, &mut data),
        None => (PreAction::Continue, EntryAction::Continue),
    };
    if entry == EntryAction::Cancel {
        call.cancel();
        return action;
    }
    let back = trampoline::call_entry(ret.stub, call.index());
    call.publish(tf.sp(), tf.ra(), &data);
    tf.set_reg(TrapFrame::RA, back);
    action
}

/// A seed handler (behind its lock) or a plain one on a return probe: out
/// of line, so the usual entry handler's path keeps fewer registers.
#[inline(never)]
#[link_section = ".text.rkprobes"]
fn call_other_pre(pre: &Pre, tf: &mut TrapFrame, data: &mut RetData) -> (PreAction, EntryAction) {
    pre.call(tf, data)
}

/// Called by the trampoline with the registers at the function's return
/// (`a0`/`a1` hold the return value; the stub address and the call's
/// entry + 4 are in `t2` and `t0`). Runs the return handler and returns
/// the real return address.
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
    let index = trampoline::call_index(stub, tf.x[trampoline::LINK_REG]);
    let Some(call) = ret.calls.returning(index, tf.sp()) else {
        // Cannot happen unless the call's slot was reclaimed while its
        // frame was still live; there is no return address to go back to.
        panic!(
            "rkprobes: return into {stub:#x} for call slot {index} (sp {:#x}) with no such call in flight",
            tf.sp()
        );
    };
    let ret_addr = call.ret_addr();
    tf.set_reg(TrapFrame::RA, ret_addr);
    tf.set_pc(ret_addr);
    if let (Some(post), Some(kp)) = (&probe.post, global::get()) {
        // Inside the hit path while the handler runs: a probe it hits is
        // nested, and the registry refuses changes from it. `registered`
        // is read once inside, after the fence in `enter`: `remove_many`
        // clears it before its grace period, so no handler runs after
        // `unregister` returned (nothing else hangs on this load: relaxed).
        let hart = kp.hart();
        let nested = hart.enter();
        if probe.registered.load(Ordering::Relaxed) && probe.is_enabled() {
            if nested {
                probe.count_miss();
            } else {
                post.call(tf, &call.data());
            }
        }
        hart.leave(nested);
    }
    call.release();
    ret_addr
}

/// Releases the instances of calls whose frames lie in `stack` and will
/// never return (their task exited or its stack is being freed). Returns
/// how many were reclaimed.
pub fn reclaim_stack(stack: Range<usize>) -> usize {
    let Some(kp) = global::get() else {
        return 0;
    };
    let Ok(mut reg) = kp.registry() else {
        return 0;
    };
    let mut n = 0;
    for probe in reg.probes.values().chain(reg.zombies()) {
        if let Some(ret) = &probe.ret {
            n += ret.calls.reclaim(&stack);
        }
    }
    // An unregistered probe whose last calls were these goes now, stub
    // and all.
    reg.reap();
    n
}

/// Largest `maxactive`, as Linux's: each call slot costs 4 bytes of the
/// probe's stub (and its entry's `jal` must reach the stub's start).
pub const MAX_ACTIVE: usize = 4096;

/// Default pool size, as Linux: max(10, 2 * harts), within `MAX_ACTIVE`.
pub(crate) fn default_maxactive(kp: &Kprobes) -> usize {
    (2 * kp.os.max_harts()).clamp(10, MAX_ACTIVE)
}
