//! The hit path: what runs when a hart traps on a probe's breakpoint
//! (`handle_breakpoint`) or enters a jump probe's detour
//! (`rkprobes_detour_hit`); return probes come back through
//! `retprobe::rkprobes_ret_handler`.
//!
//! No lock is taken (besides a seed handler's own mutex) and nothing is
//! allocated: the point is found in the lock-free table, per-hart state
//! lives in a preallocated array. Every function here sits in the
//! `.text.rkprobes` section, which the OS blacklists.

use crate::arch::current::detour::{self, CopyFault};
use crate::arch::current::{self as arch, simulate::Bound, Exec, Run, TrapFrame};
use crate::global::{self, Kprobes};
use crate::hart::{HartState, Step};
use crate::point::{Fast, OnePre, OneRet, Post, Pre, PreAction, ProbePoint};
use core::sync::atomic::Ordering;

/// Handles a breakpoint exception. Returns `true` if it was a probe's (the
/// frame now says where to resume), `false` if the breakpoint belongs to
/// someone else and the OS must deal with it.
#[link_section = ".text.rkprobes"]
pub fn handle_breakpoint(tf: &mut TrapFrame) -> bool {
    breakpoint_hit(tf)
}

/// `handle_breakpoint`'s body, inlined into both entries (each kept in
/// `.text.rkprobes`), so the seed's entry makes no extra call.
#[inline(always)]
fn breakpoint_hit(tf: &mut TrapFrame) -> bool {
    let Some(kp) = global::get() else {
        return false;
    };
    let pc = tf.pc();
    let hart = kp.hart();
    if kp.slots.contains(&pc) {
        return finish_step(kp, hart, tf);
    }
    let nested = hart.enter();
    let Some(point) = kp.table.lookup(pc) else {
        return removed_probe(kp, hart, tf, nested);
    };
    // The most common case on its own short path, as for jump hits.
    if let (Fast::OnePre(one), false) = (&point.fast, nested) {
        if one_pre(one, tf) == PreAction::Skip {
            skip(hart, point, tf);
            return true;
        }
        match &point.run {
            // Tested alone first: `c.beqz`/`c.bnez`, the compressed
            // branches (breakpoints are on compressed instructions).
            Run::Simulate(sim @ Bound::Zero { .. }) => tf.sepc = sim.run(&mut tf.x),
            Run::Simulate(sim) => tf.sepc = sim.run(&mut tf.x),
            Run::OutOfLine if point.detour != 0 => {
                detour::out_of_line(point.detour, &mut tf.sepc, &mut tf.sstatus)
            }
            // The hart stays inside until the slot's breakpoint.
            Run::OutOfLine => {
                step_slot(hart, point, tf, false);
                return true;
            }
        }
        hart.leave(false);
        return true;
    }
    other_hit(hart, point, tf, nested);
    true
}

/// A hit off the short path: a nested one (through a breakpoint or a
/// detour), or a breakpoint hit on a point with several probes, post
/// handlers, a seed handler or a return probe.
#[inline(never)]
#[link_section = ".text.rkprobes"]
fn other_hit(hart: &HartState, point: &ProbePoint, tf: &mut TrapFrame, nested: bool) {
    // A function's entry with one return probe (a compressed first
    // instruction whose jump cannot cover the next one).
    if let (Fast::OneRet(one), false) = (&point.fast, nested) {
        ret_entry::<false>(hart, point, one, tf);
        return;
    }
    if nested {
        count_nested(point);
    } else if pre_handlers(point, tf) == PreAction::Skip {
        return skip(hart, point, tf);
    }
    match &point.run {
        Run::Simulate(sim) => simulate(hart, point, tf, sim, nested),
        // The copy in the detour jumps back by itself: no trap unless a
        // post handler must see its result (then the copy at `STEP_AT`,
        // or a breakpoint probe's slot, is stepped).
        Run::OutOfLine if point.detour != 0 && (nested || !point.has_post) => {
            // The point is not read after `leave`: it may be freed then.
            detour::out_of_line(point.detour, &mut tf.sepc, &mut tf.sstatus);
            hart.leave(nested);
        }
        Run::OutOfLine => step_slot(hart, point, tf, nested),
    }
}

/// A jump probe's hit: `rkprobes_detour_entry` (arch/riscv/detour.rs) saved
/// the frame with `sepc` = the detour's return address and `sstatus` as it
/// was at the probe; what this leaves in the frame is restored by `sret`.
/// Same steps as `handle_breakpoint`, but an instruction run out of line
/// takes no second trap: it runs in the detour, which jumps back after it
/// or, when a post handler must see its result, enters the library again
/// (`rkprobes_detour_post`).
#[no_mangle]
#[link_section = ".text.rkprobes"]
pub(crate) extern "C" fn rkprobes_detour_hit(tf: &mut TrapFrame) {
    jump_hit::<false>(tf);
}

/// `rkprobes_detour_hit` for a detour made for return probes at a
/// function's entry (`rkprobes_detour_fn_entry`). Returns 0 when only the
/// registers a Rust call may change need to come back from the frame: a
/// return probe's entry, where the callee-saved ones are the caller's and
/// an entry handler has no business changing them (documented on
/// `entry`; `OneRet::light`). Any other hit returns 1: every register
/// comes back.
#[no_mangle]
#[link_section = ".text.rkprobes"]
pub(crate) extern "C" fn rkprobes_detour_fn_hit(tf: &mut TrapFrame) -> usize {
    jump_hit::<true>(tf) as usize
}

/// The body of both jump entries; `true` if every register must come
/// back from the frame. `FN_ENTRY`: the function-entry way in, where a
/// return probe alone is the expected point, tested first and inlined.
#[inline(always)]
fn jump_hit<const FN_ENTRY: bool>(tf: &mut TrapFrame) -> bool {
    let detour = tf.pc() - detour::RET_OFFSET;
    let Some(kp) = global::get() else {
        lost_detour(detour)
    };
    let hart = kp.hart();
    let nested = hart.enter();
    // SAFETY: only a detour's own `jal` enters here, with `ra` (saved as
    // the frame's pc) right after it; its cell lives in `kp`.
    let cell = unsafe { detour::point_cell::<ProbePoint>(detour) };
    // Null: the probe was removed while this hart was on its way (the
    // address may even be probed anew, with another detour). It runs
    // what its own detour was built for.
    let p = arch::order::load_published(cell);
    if p.is_null() {
        hart.leave(nested);
        removed_jump_probe(tf);
        return true;
    }
    // SAFETY: a published point stays alive while this hart is inside.
    let point = unsafe { &*p };
    tf.set_pc(point.addr);
    if nested {
        nested_jump_hit(hart, point, tf);
        return true;
    }
    if let (Fast::OneRet(one), true) = (&point.fast, FN_ENTRY) {
        return ret_entry::<true>(hart, point, one, tf);
    }
    // The most common case on its own short path: one probe, one plain
    // pre handler, no post handler.
    if let Fast::OnePre(one) = &point.fast {
        if one_pre(one, tf) == PreAction::Skip {
            skip(hart, point, tf);
            return true;
        }
        match &point.run {
            // Tested alone first: `beq`/`bne`, the most common kind.
            Run::Simulate(sim @ Bound::Eq { .. }) => tf.sepc = sim.run(&mut tf.x),
            Run::Simulate(sim) => tf.sepc = sim.run(&mut tf.x),
            Run::OutOfLine => detour::out_of_line(point.detour, &mut tf.sepc, &mut tf.sstatus),
        }
        hart.leave(false);
        return true;
    }
    // A return probe alone, through the common way in (a detour first
    // made for an instruction probe): out of line, or the return entry
    // inlined here would cost the short path above its registers.
    if let Fast::OneRet(one) = &point.fast {
        return ret_entry_hit(hart, point, one, tf);
    }
    if pre_handlers(point, tf) == PreAction::Skip {
        skip(hart, point, tf);
        return true;
    }
    match &point.run {
        Run::Simulate(sim) => simulate(hart, point, tf, sim, false),
        Run::OutOfLine if point.has_post => step_slot(hart, point, tf, false),
        Run::OutOfLine => {
            // The point is not read after `leave`: it may be freed then.
            detour::out_of_line(point.detour, &mut tf.sepc, &mut tf.sstatus);
            hart.leave(false);
        }
    }
    true
}

/// `ret_entry` out of line, for `jump_hit`'s common way in.
#[inline(never)]
#[link_section = ".text.rkprobes"]
fn ret_entry_hit(hart: &HartState, point: &ProbePoint, one: &OneRet, tf: &mut TrapFrame) -> bool {
    ret_entry::<true>(hart, point, one, tf)
}

/// The entry of a return probe alone at its point, through a breakpoint
/// (`other_hit`) or a detour (`jump_hit`) (an entry handler never skips;
/// a return probe has no post handler here). `false`: the light restore will do (see
/// `OneRet::light`). `JUMP`: a jump probe's hit, whose point always has a
/// detour.
#[inline(always)]
fn ret_entry<const JUMP: bool>(
    hart: &HartState,
    point: &ProbePoint,
    one: &OneRet,
    tf: &mut TrapFrame,
) -> bool {
    if one.probe().is_enabled()
        && crate::retprobe::on_entry(one.probe(), one.ret(), tf) == PreAction::Skip
    {
        skip(hart, point, tf);
        return true;
    }
    match &point.run {
        Run::Simulate(sim) => tf.sepc = sim.run(&mut tf.x),
        // A compressed instruction's copy detour, or a jump probe's.
        Run::OutOfLine if JUMP || point.detour != 0 => {
            detour::out_of_line(point.detour, &mut tf.sepc, &mut tf.sstatus)
        }
        // A breakpoint probe without a detour: the hart stays inside
        // until the slot's breakpoint.
        Run::OutOfLine => {
            step_slot(hart, point, tf, false);
            return true;
        }
    }
    hart.leave(false);
    !one.light
}

/// A jump probe's copy at `STEP_AT` (run because a post handler must see
/// its result) came back through the post entry: runs the post handlers
/// and resumes after the probe, without a trap. The hart has been inside
/// since `step_slot` began the step.
#[no_mangle]
#[link_section = ".text.rkprobes"]
pub(crate) extern "C" fn rkprobes_detour_post(tf: &mut TrapFrame) {
    let detour = tf.pc() - detour::POST_RET_OFFSET;
    let Some(kp) = global::get() else {
        lost_detour(detour)
    };
    let hart = kp.hart();
    let Some(step) = hart.take_step() else {
        lost_step(detour)
    };
    // SAFETY: the point stays alive while this hart is inside, which it
    // has been since `begin_step`.
    let point = unsafe { &*step.point };
    arch::restore_irqs(tf, step.irqs_were_on);
    tf.set_pc(point.resume_after);
    if point.has_post && !step.nested {
        run_post(point, tf);
    }
    hart.leave(step.nested);
}

/// Only a step begun by `step_slot` runs a detour's `STEP_AT` copy.
#[cold]
#[inline(never)]
#[link_section = ".text.rkprobes"]
fn lost_step(detour: usize) -> ! {
    panic!("rkprobes: a detour's stepped copy ran with no step in progress ({detour:#x})")
}

/// A jump hit from inside a handler: `other_hit`, marked cold so the
/// common jump hit keeps its registers.
#[cold]
#[inline(never)]
#[link_section = ".text.rkprobes"]
fn nested_jump_hit(hart: &HartState, point: &ProbePoint, tf: &mut TrapFrame) {
    other_hit(hart, point, tf, true)
}

/// The jump probe was removed while this hart was on its way: the detour
/// still knows the original instruction.
#[cold]
#[inline(never)]
#[link_section = ".text.rkprobes"]
fn removed_jump_probe(tf: &mut TrapFrame) {
    let detour = tf.pc() - detour::RET_OFFSET;
    let Some(kp) = global::get() else {
        lost_detour(detour)
    };
    let Some((_, info)) = kp.detour_at(detour) else {
        lost_detour(detour)
    };
    let (addr, prepared) = (info.addr, info.prepared);
    tf.set_pc(addr);
    match prepared.exec {
        // Going on as its point did (a jump over two: at the second copy).
        Exec::Simulate(op) => {
            let after = addr + prepared.len();
            let on = detour::resume_after(detour, after, info.second.is_some());
            tf.sepc = Bound::new(op, addr, prepared.len())
                .redirect(after, on)
                .run(&mut tf.x);
        }
        Exec::OutOfLine => detour::out_of_line(detour, &mut tf.sepc, &mut tf.sstatus),
    }
}

/// Only the library's own `jal` leads into a detour, after its info was
/// set: there is no address to resume at if that is broken.
#[cold]
#[inline(never)]
#[link_section = ".text.rkprobes"]
fn lost_detour(detour: usize) -> ! {
    panic!("rkprobes: entered a detour that was never written ({detour:#x})")
}

/// The pre handlers of `point` (not nested) off the short paths; one
/// instruction probe kept short.
#[inline(always)]
fn pre_handlers(point: &ProbePoint, tf: &mut TrapFrame) -> PreAction {
    match &point.fast {
        // The short path's (`one_pre`) unless nested; here for completeness.
        Fast::OnePre(one) => one_pre(one, tf),
        Fast::One(probe) => {
            if !probe.is_enabled() {
                return PreAction::Continue;
            }
            probe.count_hit();
            // A plain function here only with a post handler.
            match &probe.pre {
                Some(Pre::Fn(f)) => f.call(tf),
                Some(pre) => call_pre(pre, tf),
                None => PreAction::Continue,
            }
        }
        // Both callers take a lone return probe first (`ret_entry`).
        Fast::OneRet(_) => unreachable!("a lone return probe takes ret_entry"),
        Fast::Many => run_pre(point, tf),
    }
}

/// The one plain pre handler of a `Fast::OnePre` point, if its probe is
/// enabled.
#[inline(always)]
fn one_pre(one: &OnePre, tf: &mut TrapFrame) -> PreAction {
    if !one.probe().is_enabled() {
        return PreAction::Continue;
    }
    one.probe().count_hit();
    one.call(tf)
}

/// A seed handler (behind its lock) or an entry handler: kept out of line,
/// so the common case keeps its registers.
#[inline(never)]
#[link_section = ".text.rkprobes"]
fn call_pre(pre: &Pre, tf: &mut TrapFrame) -> PreAction {
    pre.call(tf, &mut [0; 4]).0
}

/// A hit from inside a handler: handlers are skipped, each enabled probe
/// counts a miss.
#[cold]
#[inline(never)]
#[link_section = ".text.rkprobes"]
fn count_nested(point: &ProbePoint) {
    for probe in point.probes.iter().filter(|p| p.is_enabled()) {
        probe.count_miss();
    }
}

/// A pre handler asked to skip the instruction: resume where it set the
/// pc, or after the instruction. Out of line, so the common path keeps no
/// register for the probe's address across its handler.
#[cold]
#[inline(never)]
#[link_section = ".text.rkprobes"]
fn skip(hart: &HartState, point: &ProbePoint, tf: &mut TrapFrame) {
    if tf.pc() == point.addr {
        tf.set_pc(point.resume_after);
    } else {
        // Set past the instruction by hand (`sepc += len`).
        tf.set_pc(point.pc_to_run(tf.pc()));
    }
    hart.leave(false);
}

#[inline(always)]
fn simulate(hart: &HartState, point: &ProbePoint, tf: &mut TrapFrame, sim: &Bound, nested: bool) {
    tf.sepc = sim.run(&mut tf.x);
    if point.has_post && !nested {
        run_post(point, tf);
    }
    hart.leave(nested);
}

/// Runs the instruction in the point's slot, which ends in a breakpoint
/// (`finish_step`) or, in a jump probe's detour, in a `jal` back into the
/// library (`rkprobes_detour_post`). The hart stays `inside` until then;
/// the slot runs with interrupts masked.
#[inline(always)]
fn step_slot(hart: &HartState, point: &ProbePoint, tf: &mut TrapFrame, nested: bool) {
    let irqs_were_on = arch::mask_irqs_on_return(tf);
    hart.begin_step(Step {
        point,
        irqs_were_on,
        nested,
    });
    tf.set_pc(point.slot);
}

/// Pre handlers (and return-probe entries) of every probe at the point.
#[inline(never)]
#[link_section = ".text.rkprobes"]
fn run_pre(point: &ProbePoint, tf: &mut TrapFrame) -> PreAction {
    let mut action = PreAction::Continue;
    for probe in point.probes.iter().filter(|p| p.is_enabled()) {
        let a = match &probe.ret {
            Some(ret) => crate::retprobe::on_entry(probe, ret, tf),
            None => {
                probe.count_hit();
                match &probe.pre {
                    Some(pre) => call_pre(pre, tf),
                    None => PreAction::Continue,
                }
            }
        };
        if a == PreAction::Skip {
            action = PreAction::Skip;
        }
    }
    action
}

/// No probe at `pc`. Either the breakpoint is someone else's, or a probe
/// was removed while this hart was on its way here: then the original
/// instruction is back in memory, but this hart's instruction fetch may
/// still see the breakpoint (its icache, or an emulator's translation, can
/// lag behind the remote fence). Re-fetching could trap forever, so the
/// instruction is run here: simulated, or stepped in this hart's scratch
/// slot.
#[cold]
#[inline(never)]
#[link_section = ".text.rkprobes"]
fn removed_probe(kp: &Kprobes, hart: &HartState, tf: &mut TrapFrame, nested: bool) -> bool {
    let pc = tf.pc();
    if breakpoint_at(pc) {
        // Someone else's, unless a probe was installed here since the
        // lookup: then trap again and find it.
        let ours = kp.table.lookup(pc).is_some();
        hart.leave(nested);
        return ours;
    }
    let n = arch::insn_len_at(&crate::text::read(pc, 2))
        .unwrap_or(2)
        .min(4);
    let bytes = crate::text::read(pc, n);
    // The parcels are read one at a time: a probe armed in between could
    // tear them. Two equal reads with no breakpoint are one instruction.
    if bytes != crate::text::read(pc, n) || breakpoint_at(pc) {
        hart.leave(nested);
        return true;
    }
    match arch::prepare(&bytes) {
        Ok(p) => match p.exec {
            Exec::Simulate(op) => {
                p.simulate(op, pc, tf);
                hart.leave(nested);
            }
            Exec::OutOfLine => {
                let slot = kp.scratch_slot();
                kp.os.write_text(slot, &p.slot_code());
                kp.os.sync_icache_local();
                let irqs_were_on = arch::mask_irqs_on_return(tf);
                hart.begin_scratch_step(pc, p.len(), irqs_were_on, nested);
                tf.set_pc(slot);
            }
        },
        // Never probeable, so never a probe's: let the hart fetch it again.
        Err(_) => hart.leave(nested),
    }
    true
}

/// The breakpoint after a slot's instruction: resume after the probe.
#[link_section = ".text.rkprobes"]
fn finish_step(kp: &Kprobes, hart: &HartState, tf: &mut TrapFrame) -> bool {
    // A point's step (the common case) or the rare scratch step: never
    // both, the slot runs with interrupts masked.
    let Some(step) = hart.take_step() else {
        return finish_scratch_step(kp, hart, tf);
    };
    // SAFETY: the point stays alive while this hart is `inside`, which it
    // has been since `begin_step`.
    let point = unsafe { &*step.point };
    if tf.pc() != point.prepared.slot_return_pc(point.slot) {
        hart.begin_step(step);
        return false;
    }
    arch::restore_irqs(tf, step.irqs_were_on);
    tf.set_pc(point.resume_after);
    if point.has_post && !step.nested {
        run_post(point, tf);
    }
    hart.leave(step.nested);
    true
}

#[cold]
#[inline(never)]
#[link_section = ".text.rkprobes"]
fn finish_scratch_step(kp: &Kprobes, hart: &HartState, tf: &mut TrapFrame) -> bool {
    let scratch = kp.scratch_slot();
    if !(scratch..scratch + arch::SLOT_SIZE).contains(&tf.pc()) {
        return false;
    }
    let Some((addr, len, irqs_were_on, nested)) = hart.take_scratch_step() else {
        return false;
    };
    arch::restore_irqs(tf, irqs_were_on);
    tf.set_pc(addr + len);
    hart.leave(nested);
    true
}

#[inline(never)]
#[link_section = ".text.rkprobes"]
fn run_post(point: &ProbePoint, tf: &mut TrapFrame) {
    if point.second.is_some() {
        return run_post_covering(point, tf);
    }
    post_handlers(point, tf);
}

/// Post handlers see the pc in the text, even where a jump covers the
/// next instruction; it goes back to the copy after them.
#[inline(never)]
#[link_section = ".text.rkprobes"]
fn run_post_covering(point: &ProbePoint, tf: &mut TrapFrame) {
    tf.set_pc(point.pc_in_text(tf.pc()));
    post_handlers(point, tf);
    tf.set_pc(point.pc_to_run(tf.pc()));
}

#[inline(always)]
fn post_handlers(point: &ProbePoint, tf: &mut TrapFrame) {
    // A return probe's post handler runs at the return, not here.
    for probe in point
        .probes
        .iter()
        .filter(|p| p.ret.is_none() && p.is_enabled())
    {
        match &probe.post {
            // The usual one tested alone; the others out of line.
            Some(Post::Fn(f)) => f(tf),
            Some(post) => other_post(post, tf),
            None => {}
        }
    }
}

/// A seed post handler (behind its lock), or a return handler run as an
/// instruction probe's.
#[inline(never)]
#[link_section = ".text.rkprobes"]
fn other_post(post: &Post, tf: &mut TrapFrame) {
    post.call(tf, &[0; 4]);
}

/// Whether the text at `pc` currently holds a breakpoint.
#[link_section = ".text.rkprobes"]
fn breakpoint_at(pc: usize) -> bool {
    // SAFETY: the hart just trapped on an instruction at `pc`, so at least
    // its first parcel is mapped readable text; the second parcel is read
    // only when the first announces a 32-bit instruction.
    let lo = unsafe { (pc as *const u16).read_volatile() };
    let hi = if arch::breakpoint::len_of(lo) == 4 {
        // SAFETY: see above: a 32-bit instruction's second parcel.
        unsafe { ((pc + 2) as *const u16).read_volatile() }
    } else {
        0
    };
    arch::breakpoint::is_breakpoint(lo, hi)
}

/// The seed's trap-handler entry: handles a probe's breakpoint; any other
/// breakpoint is reported with its address, counted
/// (`unowned_breakpoints`) and stepped over so it cannot re-trap forever.
#[link_section = ".text.rkprobes"]
pub fn kprobes_trap_handler(tf: &mut TrapFrame) {
    if !breakpoint_hit(tf) {
        report_unowned(tf);
    }
}

/// Counts and reports a breakpoint nobody owns, and steps over it.
#[cold]
#[inline(never)]
#[link_section = ".text.rkprobes"]
fn report_unowned(tf: &mut TrapFrame) {
    let pc = tf.pc();
    if let Some(kp) = global::get() {
        kp.unowned.fetch_add(1, Ordering::Relaxed);
    }
    log::error!(
        "unowned breakpoint at {pc:#x} ({})",
        crate::symbols::Describe(pc)
    );
    // SAFETY: as in `breakpoint_at`.
    let lo = unsafe { (pc as *const u16).read_volatile() };
    tf.set_pc(pc + arch::breakpoint::len_of(lo));
}

/// Breakpoints `kprobes_trap_handler` found no owner for.
pub fn unowned_breakpoints() -> u64 {
    global::get().map_or(0, |kp| kp.unowned.load(Ordering::Relaxed))
}

/// Call from the OS's exception handler for any other exception. If the
/// hart faulted while stepping a probe's slot, the step is abandoned, the
/// frame's pc is set back to the probe's address (where the fault is then
/// reported, and where execution restarts if the OS fixes the fault up) and
/// that address is returned. A fault in the copy of the instruction after
/// a compressed one whose jump covers it too is reported at that
/// instruction's address, but the pc stays in the copy (the text there
/// starts with the jump's upper half): restart at the frame's pc.
pub fn kprobes_fault_handler(tf: &mut TrapFrame) -> Option<usize> {
    let kp = global::get()?;
    if !kp.slots.contains(&tf.pc()) {
        return None;
    }
    // A jump probe's copy, run without a trap: nothing to end but the
    // interrupt state to put back.
    if let Some((d, info)) = kp.detour_at(tf.pc()) {
        match detour::fault_in_copy(tf.pc() - d) {
            Some(CopyFault::Probed { irqs_were_on }) => {
                arch::restore_irqs(tf, irqs_were_on);
                tf.set_pc(info.addr);
                return Some(info.addr);
            }
            // The second instruction of a jump over two: reported at its
            // address, but restarted from its copy (its own bytes start
            // with the jump's).
            Some(CopyFault::Second) if info.second.is_some() => {
                return Some(info.addr + info.prepared.len())
            }
            _ => {}
        }
    }
    let hart = kp.hart();
    let scratch = kp.scratch_slot();
    if (scratch..scratch + arch::SLOT_SIZE).contains(&tf.pc()) {
        let (addr, _, irqs_were_on, nested) = hart.take_scratch_step()?;
        arch::restore_irqs(tf, irqs_were_on);
        tf.set_pc(addr);
        hart.leave(nested);
        return Some(addr);
    }
    let step = hart.take_step()?;
    // SAFETY: alive while this hart is inside, as in `finish_step`.
    let point = unsafe { &*step.point };
    arch::restore_irqs(tf, step.irqs_were_on);
    tf.set_pc(point.addr);
    hart.leave(step.nested);
    Some(point.addr)
}
