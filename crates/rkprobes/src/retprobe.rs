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

use crate::arch::current::{detour, order, trampoline, CallRegs, ReturnRegs, TrapFrame};
use crate::calls::{CallPool, Claim};
use crate::global::{self, FindHart, Kprobes};
use crate::hart::HartState;
use crate::point::{EntryAction, Fast, OneRet, Post, Pre, PreAction, Probe, ProbePoint, RetData};
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
    /// The rest of a return through the light trampoline, made for the
    /// probe's return handler (`ReturnFn::hit`, or the one for none), and
    /// the handler's closure; for a stub that names the common
    /// trampoline, the one for none (never called).
    pub light: (ReturnHit, *const ()),
}

// SAFETY: `light` points to a closure (`Send + Sync`) the probe owns in
// its `post`.
unsafe impl Send for RetState {}
// SAFETY: as above.
unsafe impl Sync for RetState {}

impl RetState {
    /// `post`: the probe's return handler, whose closure `light` names.
    pub fn new(stub: usize, maxactive: usize, post: Option<&Post>) -> Self {
        RetState {
            stub,
            calls: CallPool::new(maxactive),
            light: match post {
                Some(Post::Return(f)) => (f.hit, f.data()),
                _ => (return_without, core::ptr::null()),
            },
        }
    }

    /// Whether the stub returns through the light trampoline: with a
    /// return handler that needs no more than the return value, or none.
    pub fn is_light(post: Option<&Post>) -> bool {
        matches!(post, None | Some(Post::Return(_)))
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

/// A function probe's call through its detour's light way in
/// (`rkprobes_detour_call_entry`, arch/riscv/detour.rs): the frame holds
/// what a call passes (`CallRegs`), `ra`, `sp`, the interrupt state and,
/// as its pc, the detour's link; its other words are not written (only
/// `CallRegs` reads this frame), its other registers still live, kept by
/// the Rust code. Returns where to go on (the copy of the instruction in
/// the detour, entered with interrupts masked), or 0 for a hit this way
/// cannot take (another kind of point, a nested hit, a removed probe):
/// the way in then goes through the common entry.
///
/// Made for the OS's type at `init` (`F`), called through
/// `global::RKPROBES_CALL_HIT`.
#[link_section = ".text.rkprobes"]
pub(crate) extern "C" fn call_hit<F: FindHart>(tf: &mut TrapFrame) -> usize {
    let detour = tf.pc() - detour::CALL_RET_OFFSET;
    let Some(kp) = global::get() else {
        return 0;
    };
    // SAFETY: `init` made this for the OS's type.
    let hart = unsafe { F::hart(kp) };
    let nested = hart.enter();
    // SAFETY: only a detour's own `jal t0` enters here, with its link
    // (saved as the frame's pc) right after it; its cell lives in `kp`.
    let cell = unsafe { detour::point_cell::<ProbePoint>(detour) };
    let p = order::load_published(cell);
    // SAFETY: a published point stays alive while this hart is inside.
    let point = unsafe { p.as_ref() };
    let Some((point, one, (hit, data))) = point.and_then(|pt| match &pt.fast {
        Fast::OneRet(one) if !nested => one.call.map(|c| (pt, one, c)),
        _ => None,
    }) else {
        hart.leave(nested);
        return 0;
    };
    tf.set_pc(point.addr);
    // The copy entered with interrupts on, or off (no branch).
    const _: () = assert!(detour::IRQS_OFF_AT - detour::IRQS_ON_AT == detour::SSTATUS_SIE << 3);
    let resume = detour + detour::IRQS_OFF_AT - ((tf.sstatus & detour::SSTATUS_SIE) << 3);
    // The rest in one call that this one ends with (no registers kept).
    // SAFETY: `hit` was made for the closure at `data` (`OneRet::call`).
    unsafe { hit(data, one, tf, (hart, resume)) }
}

/// The call of a function probe, made for its call handler's closure
/// (`CallFn::hit`): `(closure, probe, frame, (this hart, where to go
/// on))`; leaves the hart and returns where to go on (`call_hit`).
pub(crate) type CallHit =
    unsafe fn(*const (), &OneRet, &mut TrapFrame, (&HartState, usize)) -> usize;

/// The call of a function probe without a call handler.
pub(crate) const NO_CALL_HANDLER: (CallHit, *const ()) = (call_without, core::ptr::null());

/// `CallHit` for a closure of type `G`.
///
/// # Safety
/// `closure` must point to a live `G`.
#[link_section = ".text.rkprobes"]
pub(crate) unsafe fn call_with<G>(
    closure: *const (),
    one: &OneRet,
    tf: &mut TrapFrame,
    on: (&HartState, usize),
) -> usize
where
    G: Fn(&mut CallRegs, &mut RetData) -> EntryAction,
{
    // SAFETY: per the contract.
    let g = unsafe { &*closure.cast::<G>() };
    on_call(one, tf, on, |tf, data| g(CallRegs::of(tf), data))
}

#[link_section = ".text.rkprobes"]
fn call_without(_: *const (), one: &OneRet, tf: &mut TrapFrame, on: (&HartState, usize)) -> usize {
    on_call(one, tf, on, |_, _| EntryAction::Continue)
}

/// `on_entry` for a function probe; leaves the hart. It calls nothing but
/// the handler, so with a short handler inlined it keeps no registers.
#[inline(always)]
fn on_call<H>(one: &OneRet, tf: &mut TrapFrame, on: (&HartState, usize), handler: H) -> usize
where
    H: FnOnce(&mut TrapFrame, &mut RetData) -> EntryAction,
{
    let probe = one.probe();
    if probe.is_enabled() {
        match one.ret().calls.claim_inline() {
            Some(call) => on_call_claimed(one, call, tf, handler),
            None => probe.count_miss(),
        }
    }
    on.0.leave(false);
    on.1
}

/// The call is put in flight before its call handler runs (a cancel
/// takes it back), so that nothing is kept across the handler.
#[inline(always)]
fn on_call_claimed<H>(one: &OneRet, call: Claim<'_>, tf: &mut TrapFrame, handler: H)
where
    H: FnOnce(&mut TrapFrame, &mut RetData) -> EntryAction,
{
    one.probe().count_hit();
    let index = call.index();
    let data = call.publish_zeroed(tf.sp(), tf.ra());
    match handler(tf, data) {
        EntryAction::Continue => {
            tf.set_reg(TrapFrame::RA, trampoline::call_entry(one.ret().stub, index))
        }
        EntryAction::Cancel => one.ret().calls.unpublish(index),
    }
}

/// Called by the light trampoline at a function probe's return with the
/// return value (`regs`), the stub's address and the call's entry + 4
/// (`t2` and `t0` in the stub). Runs the return handler and returns the
/// real return address.
///
/// Made for the OS's type at `init` (`F`), called through
/// `global::RKPROBES_RETURN_HIT`.
#[link_section = ".text.rkprobes"]
pub(crate) extern "C" fn return_hit<F: FindHart>(
    regs: &mut ReturnRegs,
    stub: usize,
    link: usize,
) -> usize {
    let Some(kp) = global::get() else {
        lost_return(stub, usize::MAX, regs.sp())
    };
    // SAFETY: `init` made this for the OS's type.
    let hart = unsafe { F::hart(kp) };
    let nested = hart.enter();
    // SAFETY: as in `rkprobes_ret_handler`.
    let probe = unsafe { &*(trampoline::stub_probe(stub) as *const Probe) };
    let index = trampoline::call_index(stub, link);
    // SAFETY: a stub is written for a probe with return state.
    let (hit, data) = unsafe { probe.ret.as_ref().unwrap_unchecked() }.light;
    // The rest in one call that this one ends with (no registers kept).
    // SAFETY: `hit` was made for the closure at `data` (`RetState::new`).
    unsafe { hit(data, probe, regs, index, hart, nested) }
}

/// The rest of a function probe's return, made for its return handler's
/// closure (`ReturnFn::hit`): `(closure, probe, regs, call slot, this
/// hart, nested)`; returns the real return address.
pub(crate) type ReturnHit =
    unsafe fn(*const (), &Probe, &mut ReturnRegs, usize, &HartState, bool) -> usize;

/// `ReturnHit` for a closure of type `G`.
///
/// # Safety
/// `closure` must point to a live `G`.
#[link_section = ".text.rkprobes"]
pub(crate) unsafe fn return_with<G: Fn(&mut ReturnRegs, &RetData)>(
    closure: *const (),
    probe: &Probe,
    regs: &mut ReturnRegs,
    index: usize,
    hart: &HartState,
    nested: bool,
) -> usize {
    // SAFETY: per the contract.
    let g = unsafe { &*closure.cast::<G>() };
    on_return(probe, regs, index, (hart, nested), g)
}

#[link_section = ".text.rkprobes"]
fn return_without(
    _: *const (),
    probe: &Probe,
    regs: &mut ReturnRegs,
    index: usize,
    hart: &HartState,
    nested: bool,
) -> usize {
    on_return(probe, regs, index, (hart, nested), |_, _| ())
}

#[inline(always)]
fn on_return(
    probe: &Probe,
    regs: &mut ReturnRegs,
    index: usize,
    (hart, nested): (&HartState, bool),
    handler: impl FnOnce(&mut ReturnRegs, &RetData),
) -> usize {
    // SAFETY: a stub is written for a probe with return state.
    let ret = unsafe { probe.ret.as_ref().unwrap_unchecked() };
    // SAFETY: the stub names only the pool's slots (`ret_stub_code`).
    let Some(call) = (unsafe { ret.calls.returning_at(index, regs.sp()) }) else {
        lost_return(ret.stub, index, regs.sp())
    };
    let ret_addr = call.ret_addr();
    regs.set_pc(ret_addr);
    // `registered` is read after the fence in `enter` (see
    // `rkprobes_ret_handler`).
    if probe.registered.load(Ordering::Relaxed) && probe.is_enabled() {
        match nested {
            true => probe.count_miss(),
            // The data in place: the call is released after the handler
            // (nobody writes a call in flight's data).
            false => handler(regs, call.data_ref()),
        }
    }
    call.release();
    hart.leave(nested);
    ret_addr
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
