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
use crate::calls::{CallPool, Claim};
use crate::global::{self, Kprobes};
use crate::point::{EntryAction, Pre, PreAction, Probe};
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

/// At the function's entry (not nested): takes an instance, runs the
/// entry handler and, unless it cancels, diverts `ra`.
#[inline(always)]
pub(crate) fn on_entry(probe: &Probe, ret: &RetState, tf: &mut TrapFrame) -> PreAction {
    let Some(mut call) = ret.calls.claim() else {
        return missed(probe);
    };
    probe.count_hit();
    match &probe.pre {
        // The usual entry handler, and none, kept short.
        Some(Pre::Entry(f)) => {
            if f(tf, call.zeroed_data()) == EntryAction::Cancel {
                return cancel(call);
            }
        }
        // No entry handler: the return handler sees zeros.
        None => {
            call.zeroed_data();
        }
        Some(pre) => return other_entry(pre, call, ret.stub, tf),
    }
    let back = trampoline::call_entry(ret.stub, call.index());
    call.publish(tf.sp(), tf.ra());
    tf.set_reg(TrapFrame::RA, back);
    PreAction::Continue
}

/// The pool is full: the call runs without its return caught.
#[cold]
#[inline(never)]
#[link_section = ".text.rkprobes"]
fn missed(probe: &Probe) -> PreAction {
    probe.count_miss();
    PreAction::Continue
}

/// The entry handler cancelled: no return probe for this call.
#[cold]
#[inline(never)]
#[link_section = ".text.rkprobes"]
fn cancel(call: Claim<'_>) -> PreAction {
    call.cancel();
    PreAction::Continue
}

/// A seed handler (behind its lock) or a plain one on a return probe: out
/// of line, so the usual entry handler's path keeps fewer registers.
#[inline(never)]
#[link_section = ".text.rkprobes"]
fn other_entry(pre: &Pre, mut call: Claim<'_>, stub: usize, tf: &mut TrapFrame) -> PreAction {
    let (action, entry) = pre.call(tf, call.zeroed_data());
    if entry == EntryAction::Cancel {
        call.cancel();
        return action;
    }
    let back = trampoline::call_entry(stub, call.index());
    call.publish(tf.sp(), tf.ra());
    tf.set_reg(TrapFrame::RA, back);
    action
}

/// Called by the trampoline with the registers at the function's return
/// (`a0`/`a1` hold the return value; the stub address and the call's
/// entry + 4 are in `t2` and `t0`). Runs the return handler and returns
/// the real return address.
#[no_mangle]
#[link_section = ".text.rkprobes"]
pub extern "C" fn rkprobes_ret_handler(tf: &mut TrapFrame) -> usize {
    let stub = tf.x[trampoline::STUB_REG];
    let Some(kp) = global::get() else {
        lost_return(stub, usize::MAX, tf.sp())
    };
    // This hart first (a call: nothing else is live across it). Inside
    // the hit path while the handler runs: a probe it hits is nested, and
    // the registry refuses changes from it.
    let hart = kp.hart();
    let nested = hart.enter();
    // SAFETY: the stub names a probe that stays alive while it has calls
    // in flight, and this call is one of them until `release` below; then
    // while this hart is inside (an unregistered probe whose last call
    // this was is reaped only after a grace period).
    let probe = unsafe { &*(trampoline::stub_probe(stub) as *const Probe) };
    let index = trampoline::call_index(stub, tf.x[trampoline::LINK_REG]);
    let Some(call) = probe
        .ret
        .as_ref()
        .and_then(|ret| ret.calls.returning(index, tf.sp()))
    else {
        lost_return(stub, index, tf.sp())
    };
    let ret_addr = call.ret_addr();
    tf.set_reg(TrapFrame::RA, ret_addr);
    tf.set_pc(ret_addr);
    let data = call.data();
    call.release();
    // `registered` is read after the fence in `enter`: `remove_many`
    // clears it before its grace period, so no handler runs after
    // `unregister` returned (nothing else hangs on this load: relaxed).
    let live = probe.registered.load(Ordering::Relaxed) && probe.is_enabled();
    if let (Some(post), true) = (&probe.post, live) {
        if nested {
            probe.count_miss();
        } else {
            post.call_at_return(tf, &data);
        }
    }
    hart.leave(nested);
    ret_addr
}

/// Cannot happen unless the call's slot was reclaimed while its frame was
/// still live: there is no return address to go back to.
#[cold]
#[inline(never)]
#[link_section = ".text.rkprobes"]
fn lost_return(stub: usize, index: usize, sp: usize) -> ! {
    panic!(
        "rkprobes: return into {stub:#x} for call slot {index} (sp {sp:#x}) with no such call in flight"
    )
}

/// Releases the instances of calls whose frames lie in `stack` and will
/// never return (their task exited or its stack is being freed). Returns
/// how many were reclaimed: 0 also when called from inside a handler,
/// where the registry is refused (the OS calls it from its scheduler).
///
/// # Safety
/// No call with a frame in `stack` may still return, or still be running
/// its return probe's entry or return handler: a released slot is handed
/// to the next call, whose entry handler writes its data in place.
pub unsafe fn reclaim_stack(stack: Range<usize>) -> usize {
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
    reg.reap(kp);
    n
}

/// Largest `maxactive`, as Linux's: each call slot costs 4 bytes of the
/// probe's stub (and its entry's `jal` must reach the stub's start).
pub const MAX_ACTIVE: usize = 4096;

/// Default pool size, as Linux: max(10, 2 * harts), within `MAX_ACTIVE`.
pub(crate) fn default_maxactive(kp: &Kprobes) -> usize {
    (2 * kp.os.max_harts()).clamp(10, MAX_ACTIVE)
}
