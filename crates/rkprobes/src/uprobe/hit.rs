//! The hit path: a user thread trapped on a breakpoint. No lock is taken
//! (besides a seed handler's own mutex) and nothing is allocated: the
//! snapshot is read inside a reader section; what a thread is stepping is
//! derived from its pc in the slot page, never from per-hart state, so it
//! may be preempted and resume on another hart anywhere in between.

use super::layout::{self, SlotTrap, SLOT_PAGE_SIZE};
use super::state::{ProcState, Snapshot, UPoint};
use super::Uprobes;
use crate::arch::current::{breakpoint, Exec, TrapFrame};
use crate::point::{EntryAction, Pre, PreAction, ProbeType, RetData};
use core::sync::atomic::Ordering;

impl Uprobes {
    #[link_section = ".text.rkprobes"]
    pub(crate) fn trap(&self, cx: &mut TrapFrame) -> bool {
        let Some(os) = self.os.get() else {
            return false;
        };
        let Some(pid) = os.current_process() else {
            return false;
        };
        let hart = os.hart_id();
        let reader = self.published.read(hart);
        let Some(snap) = reader.snapshot() else {
            return false;
        };
        let Some(state) = snap.procs.get(&pid) else {
            return false;
        };
        let pc = cx.pc();
        let offset = pc.wrapping_sub(state.slot_va);
        if offset < SLOT_PAGE_SIZE {
            return self.slot_trap(hart, snap, state, offset, cx);
        }
        match snap.points.get(&(state.path, pc)) {
            Some(point) => {
                self.hit(hart, state, point, cx);
                true
            }
            None => {
                // Removed while this thread was on its way here: the
                // original instruction is back, fetch it again. A
                // breakpoint still there is nobody's.
                let mut b = [0u8; 4];
                let ok = os.read_user(pid, pc, &mut b[..2]);
                let lo = u16::from_le_bytes([b[0], b[1]]);
                let hi = if ok
                    && breakpoint::len_of(lo) == 4
                    && os.read_user(pid, pc + 2, &mut b[2..])
                {
                    u16::from_le_bytes([b[2], b[3]])
                } else {
                    0
                };
                ok && !breakpoint::is_breakpoint(lo, hi)
            }
        }
    }

    #[link_section = ".text.rkprobes"]
    fn hit(&self, hart: usize, state: &ProcState, point: &UPoint, cx: &mut TrapFrame) {
        let pc = cx.pc();
        let mut action = PreAction::Continue;
        for probe in point.probes.iter().filter(|p| p.live()) {
            let a = if probe.kind == ProbeType::SyncFunc {
                let Some(slot) = state.instances.claim() else {
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
                    state.instances.unclaim(slot);
                } else {
                    state
                        .instances
                        .fill(slot, probe.id, cx.sp(), cx.ra(), &data);
                    cx.set_reg(TrapFrame::RA, state.slot_va);
                }
                a
            } else {
                probe.hits.fetch_add(1, Ordering::Relaxed);
                match &probe.pre {
                    Some(Pre::Fn(f)) => self.published.in_handler(hart, || f(cx)),
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
        match point.prepared.exec {
            Exec::Simulate(op) => {
                point.prepared.simulate(op, pc, cx);
                if point.has_post {
                    self.run_post(hart, point, cx);
                }
            }
            Exec::OutOfLine => {
                // Straight back from the slot unless a post handler must
                // see the result (then the slot's breakpoint returns here).
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
        }
    }

    /// A trap in the slot page: a return through the trampoline, or the
    /// breakpoint after a slot's instruction.
    #[link_section = ".text.rkprobes"]
    fn slot_trap(
        &self,
        hart: usize,
        snap: &Snapshot,
        state: &ProcState,
        offset: usize,
        cx: &mut TrapFrame,
    ) -> bool {
        match layout::classify(offset) {
            Some(SlotTrap::Return) => {
                let Some(call) = state.instances.pop(cx.sp()) else {
                    return false;
                };
                cx.set_reg(TrapFrame::RA, call.ret_addr);
                cx.set_pc(call.ret_addr);
                if let Some(probe) = snap.probes.get(&call.probe).filter(|p| p.live()) {
                    if let Some(post) = &probe.post {
                        self.published
                            .in_handler(hart, || post.call(cx, &call.data));
                    }
                }
                true
            }
            Some(SlotTrap::Slot { index, within }) => {
                let Some(point) = snap.slots.get(&index) else {
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
        let pid = os.current_process()?;
        let reader = self.published.read(os.hart_id());
        let snap = reader.snapshot()?;
        let state = snap.procs.get(&pid)?;
        let offset = cx.pc().wrapping_sub(state.slot_va);
        let Some(SlotTrap::Slot { index, .. }) = layout::classify(offset) else {
            return None;
        };
        let addr = snap.slots.get(&index)?.addr;
        cx.set_pc(addr);
        Some(addr)
    }
}
