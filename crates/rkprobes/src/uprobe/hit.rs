//! The hit path: a user thread trapped on a breakpoint. No lock is taken
//! (besides a seed handler's own mutex) and nothing is allocated: the
//! snapshot's index is read inside a reader section; what a thread is
//! stepping is derived from its pc in the slot page, never from per-hart
//! state, so it may be preempted and resume on another hart anywhere in
//! between, and threads of one process may hit on several harts at once
//! (calls in flight are told apart by their stack pointer).

use super::layout::{self, SlotTrap, SLOT_PAGE_SIZE};
use super::os::UprobeOs;
use super::state::{Index, ProcState, UPoint};
use super::Uprobes;
use crate::arch::current::{breakpoint, Run, TrapFrame};
use crate::point::{EntryAction, Pre, PreAction, ProbeType, RetData};
use core::sync::atomic::Ordering;

impl Uprobes {
    #[link_section = ".text.rkprobes"]
    pub(crate) fn trap(&self, cx: &mut TrapFrame) -> bool {
        let Some(os) = self.os.get() else {
            return false;
        };
        let Some((pid, hart)) = os.current() else {
            return false;
        };
        let reader = self.published.read(hart);
        let Some(index) = reader.index() else {
            return false;
        };
        let Some(state) = index.proc(pid) else {
            return false;
        };
        let pc = cx.pc();
        let offset = pc.wrapping_sub(state.slot_va);
        if offset < SLOT_PAGE_SIZE {
            return self.slot_trap(hart, index, state, offset, cx);
        }
        let Some(point) = index.point(state.path, pc) else {
            return gone(*os, index, state, cx);
        };
        if point.solo {
            self.hit_solo(hart, state, point, cx);
        } else {
            self.hit(hart, state, point, cx);
        }
        true
    }

    /// A point with one probe, an instruction probe with at most a pre
    /// handler (`UPoint::solo`): the common hit, kept short.
    #[inline(always)]
    fn hit_solo(&self, hart: usize, state: &ProcState, point: &UPoint, cx: &mut TrapFrame) {
        let probe = &point.probes[0];
        if probe.live() {
            probe.hits.fetch_add(1, Ordering::Relaxed);
            if let Some(Pre::Fn(f)) = &probe.pre {
                let pc = cx.pc();
                if self.published.in_handler(hart, || f.call(cx)) == PreAction::Skip {
                    if cx.pc() == pc {
                        cx.set_pc(pc + point.prepared.len());
                    }
                    return;
                }
            }
        }
        match &point.run {
            Run::Simulate(sim) => cx.sepc = sim.run(&mut cx.x),
            Run::OutOfLine => to_slot(state, point, cx),
        }
    }

    /// Any other point: every probe's handlers, return probes' calls.
    #[link_section = ".text.rkprobes"]
    #[inline(never)]
    fn hit(&self, hart: usize, state: &ProcState, point: &UPoint, cx: &mut TrapFrame) {
        let pc = cx.pc();
        let mut action = PreAction::Continue;
        for probe in point.probes.iter().filter(|p| p.live()) {
            let a = if probe.kind == ProbeType::SyncFunc {
                let Some(call) = state.instances.claim() else {
                    probe.missed.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                probe.hits.fetch_add(1, Ordering::Relaxed);
                let mut data: RetData = [0; 4];
                let (a, entry) = match &probe.pre {
                    Some(pre) => self.published.in_handler(hart, || pre.call(cx, &mut data)),
                    None => (PreAction::Continue, EntryAction::Continue),
                };
                if entry == EntryAction::Cancel {
                    call.cancel();
                } else {
                    let thread = self.os.get().map_or(0, |os| os.current_thread());
                    call.fill((probe.id, thread), cx.sp(), cx.ra(), &data);
                    cx.set_reg(TrapFrame::RA, state.slot_va);
                }
                a
            } else {
                probe.hits.fetch_add(1, Ordering::Relaxed);
                match &probe.pre {
                    Some(pre) => self
                        .published
                        .in_handler(hart, || pre.call(cx, &mut [0; 4]).0),
                    None => PreAction::Continue,
                }
            };
            if a == PreAction::Skip {
                action = PreAction::Skip;
            }
        }
        if action == PreAction::Skip {
            if cx.pc() == pc {
                cx.set_pc(pc + point.prepared.len());
            }
            return;
        }
        match &point.run {
            Run::Simulate(sim) => {
                cx.sepc = sim.run(&mut cx.x);
                if point.has_post {
                    self.run_post(hart, point, cx);
                }
            }
            Run::OutOfLine => to_slot(state, point, cx),
        }
    }

    /// A trap in the slot page: a return through the trampoline, or the
    /// breakpoint after a slot's instruction.
    #[link_section = ".text.rkprobes"]
    #[inline(never)]
    fn slot_trap(
        &self,
        hart: usize,
        index: &Index,
        state: &ProcState,
        offset: usize,
        cx: &mut TrapFrame,
    ) -> bool {
        match layout::classify(offset) {
            Some(SlotTrap::Return) => {
                let Some(call) = state.instances.take(cx.sp()) else {
                    return false;
                };
                cx.set_reg(TrapFrame::RA, call.ret_addr);
                cx.set_pc(call.ret_addr);
                if let Some(probe) = index.probe(call.tag).filter(|p| p.live()) {
                    if let Some(post) = &probe.post {
                        self.published
                            .in_handler(hart, || post.call(cx, &call.data));
                    }
                }
                true
            }
            Some(SlotTrap::Slot {
                index: slot,
                within,
            }) => {
                let Some(point) = index.slot(slot) else {
                    return false;
                };
                if within != layout::STEP_AT + point.prepared.len() {
                    return false;
                }
                cx.set_pc(point.addr + point.prepared.len());
                self.run_post(hart, point, cx);
                true
            }
            None => false,
        }
    }

    #[link_section = ".text.rkprobes"]
    fn run_post(&self, hart: usize, point: &UPoint, cx: &mut TrapFrame) {
        // A return probe's post handler runs at the return.
        for probe in point
            .probes
            .iter()
            .filter(|p| p.kind != ProbeType::SyncFunc && p.live())
        {
            if let Some(post) = &probe.post {
                self.published.in_handler(hart, || post.call(cx, &[0; 4]));
            }
        }
    }

    /// A fault in a slot: reported at the probe's address.
    pub(crate) fn fault(&self, cx: &mut TrapFrame) -> Option<usize> {
        let os = self.os.get()?;
        let (pid, hart) = os.current()?;
        let reader = self.published.read(hart);
        let index = reader.index()?;
        let state = index.proc(pid)?;
        let offset = cx.pc().wrapping_sub(state.slot_va);
        let Some(SlotTrap::Slot { index: slot, .. }) = layout::classify(offset) else {
            return None;
        };
        let addr = index.slot(slot)?.addr;
        cx.set_pc(addr);
        Some(addr)
    }
}

/// No point at `pc` in this process's program: either its probe was
/// removed while this thread was on its way here (the original
/// instruction is back), or the breakpoint is nobody's (`false`). In the
/// first case the instruction is run here, not fetched again: this hart's
/// fetch may still see the breakpoint (an emulator's translation can lag
/// behind the fence), and fetching again could trap forever. It runs from
/// the removed point's slot, which stays in the slot page while the
/// process lives, or is simulated.
#[link_section = ".text.rkprobes"]
#[inline(never)]
#[cold]
fn gone(os: &dyn UprobeOs, index: &Index, state: &ProcState, cx: &mut TrapFrame) -> bool {
    let pc = cx.pc();
    let mut b = [0u8; 4];
    if !os.read_user(state.pid, pc, &mut b[..2]) {
        return false;
    }
    let lo = u16::from_le_bytes([b[0], b[1]]);
    let len = breakpoint::len_of(lo);
    if len == 4 && !os.read_user(state.pid, pc + 2, &mut b[2..]) {
        // Half an instruction: fetch it again.
        return true;
    }
    let hi = u16::from_le_bytes([b[2], b[3]]);
    if breakpoint::is_breakpoint(lo, if len == 4 { hi } else { 0 }) {
        return false;
    }
    // A removed point of this instruction whose slot this process holds
    // (a slot of an older point at the same address may be another's).
    let holds = |p: &UPoint| {
        let at = state.slot_va + layout::slot_offset(p.slot);
        let mut have = [0u8; layout::SLOT_SIZE];
        p.prepared.insn.to_bytes()[..len] == b[..len]
            && os.read_user(state.pid, at, &mut have)
            && have == layout::slot_code(p.prepared.insn, at, p.addr)
    };
    if let Some(point) = index.retired(state.path, pc, holds) {
        to_slot(state, point, cx);
    } else if let Ok(p) = crate::arch::current::prepare(&b[..len]) {
        if let crate::arch::current::Exec::Simulate(op) = p.exec {
            p.simulate(op, pc, cx);
        }
    }
    true
}

/// Sends the thread to `point`'s slot: straight back from there unless a
/// post handler must see the result (then the slot's breakpoint returns
/// to the library).
#[link_section = ".text.rkprobes"]
#[inline(always)]
fn to_slot(state: &ProcState, point: &UPoint, cx: &mut TrapFrame) {
    let slot = state.slot_va + layout::slot_offset(point.slot);
    let jump = !point.has_post && layout::in_reach(slot, point.addr);
    cx.set_pc(
        slot + if jump {
            layout::JUMP_AT
        } else {
            layout::STEP_AT
        },
    );
}
