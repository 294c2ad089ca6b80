//! Jump probes: a 32-bit instruction becomes `jal` to a detour, and a hit
//! (played here as `rkprobes_detour_entry` would make it) resumes by the
//! frame the detour's `sret` restores.

use super::fake_os::{os, Event};
use super::fake_text::{off, ADDI_A0_A0_5, ADDI_A0_ZERO_1};
use super::harness::*;
use crate::arch::current::decode::{decode, Action};
use crate::arch::current::detour::{
    self, DETOUR_SIZE, HOST_ENTRY, IRQS_OFF_AT, IRQS_ON_AT, RET_OFFSET,
};
use crate::arch::current::insn::Insn;
use crate::arch::current::simulate::SimOp;
use crate::hit::rkprobes_detour_hit;
use crate::{kprobes_fault_handler, memory_stats, Kprobe, KprobeOs, TrapFrame};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

const SIE: usize = 1 << 1;
const SPP: usize = 1 << 8;
const SUM: usize = 1 << 18;

/// Turns jump probes on for the test (only the `jumps` function gets them:
/// detours stay with their address for good).
struct Jumps;
impl Jumps {
    fn on() -> Self {
        HOST_ENTRY.store(os().func("jumps").addr, Ordering::Relaxed);
        Jumps
    }
}
impl Drop for Jumps {
    fn drop(&mut self) {
        HOST_ENTRY.store(0, Ordering::Relaxed);
    }
}

fn word(addr: usize) -> u32 {
    u32::from_le_bytes(os().bytes(addr, 4).try_into().unwrap())
}

/// The detour the `jal` at `addr` leads to.
fn detour_of(addr: usize) -> usize {
    let w = word(addr);
    let insn = Insn::from_parcels(w as u16, (w >> 16) as u16).unwrap();
    match decode(insn).action {
        Action::Simulate(SimOp::Jal { rd, offset }) if rd.index() == 0 => {
            addr.wrapping_add(offset as usize)
        }
        other => panic!("{w:#010x} at {addr:#x} is not `jal x0`: {other:?}"),
    }
}

/// A frame as the detour's entry saves it: pc = the detour's return
/// address, sstatus as live at the probe.
fn detour_frame(d: usize, sstatus: usize) -> TrapFrame {
    let mut tf = TrapFrame {
        sepc: d + RET_OFFSET,
        sstatus,
        ..TrapFrame::default()
    };
    detour::frame_status(&mut tf.sstatus);
    tf
}

/// A hit through the detour's common way in.
fn detour_hit(d: usize, sstatus: usize) -> TrapFrame {
    let mut tf = detour_frame(d, sstatus);
    rkprobes_detour_hit(&mut tf);
    tf
}

#[test]
fn a_32_bit_instruction_gets_a_jal_to_its_detour() {
    let _g = exclusive();
    let _j = Jumps::on();
    let addr = os().addr("jumps", off::ADDI_ZERO); // 0 mod 4, out of line
    let slot_bytes = memory_stats().slot_bytes;
    let seen: Arc<Mutex<Vec<(usize, usize)>>> = Arc::default();
    let s = seen.clone();
    let h = Kprobe::at(addr)
        .pre(move |tf| s.lock().unwrap().push((tf.pc(), tf.sstatus)))
        .register()
        .expect("register");
    let d = detour_of(addr);
    assert!(os().slot_area().contains(&d));
    let insn = Insn::from_parcels(ADDI_A0_ZERO_1 as u16, (ADDI_A0_ZERO_1 >> 16) as u16).unwrap();
    let kp = crate::global::get().unwrap();
    let cell = kp.detour_cell(d).unwrap() as *const _ as usize;
    let entries = detour::common_entries();
    let code = detour::code(
        insn,
        (addr, d),
        (entries, detour::WayIn::Common),
        true,
        cell,
        None,
    )
    .unwrap();
    assert_eq!(os().bytes(d, DETOUR_SIZE), code);
    assert_eq!(memory_stats().slot_bytes, slot_bytes + DETOUR_SIZE);

    // Interrupts on at the probe: the handler sees a trap-like frame, the
    // copy runs with them masked and re-enables them itself.
    let tf = detour_hit(d, SIE | SUM);
    assert_eq!(*seen.lock().unwrap(), [(addr, SPP | SSTATUS_SPIE | SUM)]);
    assert_eq!((tf.sepc, tf.sstatus), (d + IRQS_ON_AT, SPP | SUM));
    // Interrupts off: the other copy, and they stay off.
    let tf = detour_hit(d, SUM);
    assert_eq!((tf.sepc, tf.sstatus), (d + IRQS_OFF_AT, SPP | SUM));
    assert_eq!(h.hits(), 2);

    // A fault in a copy is reported at the probe, interrupts as they were.
    let mut tf = frame(d + IRQS_ON_AT);
    tf.sstatus = SPP;
    assert_eq!(kprobes_fault_handler(&mut tf), Some(addr));
    assert_eq!((tf.sepc, tf.sstatus), (addr, SPP | SSTATUS_SPIE));

    // Removal puts the instruction back; the detour stays, and a hart
    // still on its way through it runs the original without handlers.
    h.unregister().expect("unregister");
    assert_eq!(word(addr), ADDI_A0_ZERO_1);
    let tf = detour_hit(d, SIE);
    assert_eq!(tf.sepc, d + IRQS_ON_AT);
    assert_eq!(seen.lock().unwrap().len(), 2);

    // The same address again: the same detour, nothing new written.
    let slot_bytes = memory_stats().slot_bytes;
    let h = Kprobe::at(addr).register().expect("register again");
    assert_eq!(detour_of(addr), d);
    assert_eq!(memory_stats().slot_bytes, slot_bytes);
    h.unregister().expect("unregister");
}

/// With a post handler, the instruction runs in the detour's `STEP_AT` copy,
/// which comes back into the library through the post entry (no trap): the
/// post handler sees the result, the hart resumes after the probe with
/// interrupts as they were, and leaves the hit path.
#[test]
fn a_post_handler_sees_the_result_without_a_trap() {
    let _g = exclusive();
    let _j = Jumps::on();
    let addr = os().addr("jumps", off::ADDI_ZERO); // addi a0, zero, 1
    type Seen = Vec<(&'static str, usize, usize)>; // (handler, pc, a0)
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let (s1, s2) = (seen.clone(), seen.clone());
    let h = Kprobe::at(addr)
        .pre(move |tf| s1.lock().unwrap().push(("pre", tf.pc(), tf.x[10])))
        .post(move |tf| s2.lock().unwrap().push(("post", tf.pc(), tf.x[10])))
        .register()
        .expect("register");
    let d = detour_of(addr);
    let kp = crate::global::get().unwrap();
    for irqs in [SIE, 0] {
        seen.lock().unwrap().clear();
        let mut tf = detour_hit(d, irqs | SUM);
        // To the copy, interrupts masked; the hart stays inside.
        assert_eq!((tf.sepc, tf.sstatus), (d + detour::STEP_AT, SPP | SUM));
        assert!(kp.hart().is_inside());
        // The copy ran (a0 = 1) and its `jal` came back to the post entry,
        // which saved the frame with interrupts still masked.
        tf.x[10] = 1;
        tf.sepc = d + detour::POST_RET_OFFSET;
        tf.sstatus = SUM;
        detour::frame_status(&mut tf.sstatus);
        crate::hit::rkprobes_detour_post(&mut tf);
        let spie = if irqs == SIE { SSTATUS_SPIE } else { 0 };
        assert_eq!((tf.sepc, tf.sstatus), (addr + 4, SPP | spie | SUM));
        assert!(!kp.hart().is_inside());
        assert_eq!(
            *seen.lock().unwrap(),
            [("pre", addr, 0), ("post", addr + 4, 1)]
        );
    }
    assert_eq!((h.hits(), h.missed()), (2, 0));
    h.unregister().expect("unregister");
}

/// A hart that left for a detour before its probe was removed, while the
/// address got another instruction and a new probe (and detour), runs
/// what its own detour was built for, not the new point.
#[test]
fn a_stale_detour_runs_its_own_instruction() {
    let _g = exclusive();
    let _j = Jumps::on();
    let addr = os().addr("jumps", off::ADDI_ZERO);
    let h = Kprobe::at(addr).register().expect("register");
    let old = detour_of(addr);
    h.unregister().expect("unregister");
    // `beq a0, a1, +8` (simulated) where the `addi` was.
    let beq = super::fake_text::BEQ_A0_A1_8;
    os().write_text(addr, &beq.to_le_bytes());
    let called = Arc::new(AtomicUsize::new(0));
    let c = called.clone();
    let h = Kprobe::at(addr)
        .pre(move |_| {
            c.fetch_add(1, Ordering::Relaxed);
        })
        .register()
        .expect("register the new instruction");
    let new = detour_of(addr);
    let stale = detour_hit(old, SIE);
    let fresh = detour_hit(new, SIE);
    h.unregister().expect("unregister");
    os().write_text(addr, &ADDI_A0_ZERO_1.to_le_bytes());
    assert_ne!(new, old);
    // The stale hart runs the `addi` copy; the new probe sees one hit.
    assert_eq!(stale.sepc, old + IRQS_ON_AT);
    assert_eq!(fresh.sepc, addr + 8, "beq with a0 == a1 taken");
    assert_eq!(called.load(Ordering::Relaxed), 1);
}

#[test]
fn simulated_and_skipped_hits_resume_where_the_frame_says() {
    let _g = exclusive();
    let _j = Jumps::on();
    let beq = os().addr("jumps", off::BEQ); // beq a0, a1, +8
    let h = Kprobe::at(beq).register().expect("register");
    let d = detour_of(beq);
    // Nothing of a simulated instruction runs from the detour.
    assert_eq!(os().bytes(d + IRQS_ON_AT, 4), [0; 4]);
    let mut tf = TrapFrame {
        sepc: d + RET_OFFSET,
        sstatus: SIE,
        ..TrapFrame::default()
    };
    (tf.x[10], tf.x[11]) = (3, 3);
    detour::frame_status(&mut tf.sstatus);
    rkprobes_detour_hit(&mut tf);
    assert_eq!((tf.sepc, tf.sstatus), (beq + 8, SPP | SSTATUS_SPIE));
    tf.sepc = d + RET_OFFSET;
    tf.sstatus = SIE;
    tf.x[11] = 4;
    detour::frame_status(&mut tf.sstatus);
    rkprobes_detour_hit(&mut tf);
    assert_eq!(tf.sepc, beq + 4);
    h.unregister().expect("unregister");
    // A hart still on its way when the probe went: the branch is simulated
    // at its own address all the same, taken and not.
    for (b, next) in [(3, beq + 8), (4, beq + 4)] {
        tf.sepc = d + RET_OFFSET;
        tf.sstatus = SIE;
        (tf.x[10], tf.x[11]) = (3, b);
        detour::frame_status(&mut tf.sstatus);
        rkprobes_detour_hit(&mut tf);
        assert_eq!(tf.sepc, next, "removed, a1 = {b}");
    }

    // (`auipc a0`, simulated: skipping leaves a0 alone.)
    let auipc = os().addr("jumps", off::AUIPC);
    let skips = Arc::new(AtomicUsize::new(0));
    let s = skips.clone();
    let h = Kprobe::at(auipc)
        .pre(move |_| {
            s.fetch_add(1, Ordering::Relaxed);
            crate::PreAction::Skip
        })
        .register()
        .expect("register");
    let tf = detour_hit(detour_of(auipc), 0);
    assert_eq!((tf.sepc, skips.load(Ordering::Relaxed)), (auipc + 4, 1));
    assert_eq!(tf.x[10], 0, "a0 untouched");
    h.unregister().expect("unregister");
}

#[test]
fn jal_at_2_mod_4_goes_through_c_ebreak_and_compressed_keeps_a_breakpoint() {
    let _g = exclusive();
    let _j = Jumps::on();
    let addr = os().addr("jumps", off::ADDI); // 2 mod 4
    assert_eq!(addr % 4, 2);
    let log = os().log_len();
    let h = Kprobe::at(addr).register().expect("register");
    let d = detour_of(addr);
    let jal = detour::jal(0, addr, d).unwrap();
    let text: Vec<Event> = os()
        .events_since(log)
        .into_iter()
        .filter(|e| !matches!(e, Event::Write { addr: a, .. } if os().slot_area().contains(a)))
        .skip_while(|e| *e == Event::Sync)
        .collect();
    let parcel = |a: usize, p: u16| Event::Write {
        addr: a,
        bytes: p.to_le_bytes().to_vec(),
    };
    assert_eq!(
        text,
        [
            parcel(addr, 0x9002),
            Event::Sync,
            parcel(addr + 2, (jal >> 16) as u16),
            Event::Sync,
            parcel(addr, jal as u16),
            Event::Sync,
        ]
    );
    h.unregister().expect("unregister");
    assert_eq!(word(addr), ADDI_A0_A0_5);

    let c_li = os().addr("jumps", off::C_LI);
    let h = Kprobe::at(c_li).register().expect("register");
    assert_eq!(os().bytes(c_li, 2), [0x02, 0x90], "c.ebreak");
    h.unregister().expect("unregister");
}

/// A compressed instruction run out of line keeps its breakpoint, but its
/// copy lives in a detour and jumps back by itself: one trap per hit, the
/// hart outside once the trap returns. A post handler still sees the
/// result without a second trap (the copy at `STEP_AT`).
#[test]
fn a_compressed_instruction_runs_its_copy_in_a_detour_without_a_second_trap() {
    use crate::handle_breakpoint;
    let _g = exclusive();
    let _j = Jumps::on();
    let addr = os().addr("jumps", off::C_LI); // c.li a0, 1
    let pres = Arc::new(AtomicUsize::new(0));
    let p = pres.clone();
    let h = Kprobe::at(addr)
        .pre(move |_| {
            p.fetch_add(1, Ordering::Relaxed);
        })
        .register()
        .expect("register");
    assert_eq!(os().bytes(addr, 2), [0x02, 0x90], "c.ebreak stays");
    let kp = crate::global::get().unwrap();
    let mut d = 0;
    for (irqs, at) in [(SSTATUS_SPIE, IRQS_ON_AT), (0, IRQS_OFF_AT)] {
        let mut tf = TrapFrame {
            sepc: addr,
            sstatus: irqs | SPP | SUM,
            ..TrapFrame::default()
        };
        assert!(handle_breakpoint(&mut tf));
        d = tf.sepc - at;
        assert!(kp.detours.contains(&d) && (d - kp.detours.start).is_multiple_of(DETOUR_SIZE));
        // The copy (padded with `c.nop`) runs with interrupts masked...
        assert_eq!(tf.sstatus, SPP | SUM);
        assert_eq!(os().bytes(tf.sepc, 4), [0x05, 0x45, 0x01, 0x00]);
        // ... and jumps back after the probe (turning them on first if
        // they were on).
        let back = if at == IRQS_ON_AT { at + 8 } else { at + 4 };
        let jal = word(d + back);
        assert_eq!(jal & 0xfff, 0x06f, "jal x0 at {back}");
        let j = Insn::from_parcels(jal as u16, (jal >> 16) as u16).unwrap();
        let Action::Simulate(SimOp::Jal { offset, .. }) = decode(j).action else {
            panic!("{jal:#x} is not a jal");
        };
        assert_eq!((d + back).wrapping_add(offset as usize), addr + 2);
        assert!(!kp.hart().is_inside(), "no second trap to wait for");
    }
    assert_eq!((pres.load(Ordering::Relaxed), h.hits()), (2, 2));

    // With a post handler the hit steps the copy at `STEP_AT`, which
    // comes back through the post entry.
    let seen = Arc::new(AtomicUsize::new(0));
    let s = seen.clone();
    let post = Kprobe::at(addr)
        .post(move |tf| s.store(tf.pc(), Ordering::Relaxed))
        .register()
        .expect("register");
    let mut tf = TrapFrame {
        sepc: addr,
        sstatus: SSTATUS_SPIE | SPP,
        ..TrapFrame::default()
    };
    assert!(handle_breakpoint(&mut tf));
    assert_eq!(tf.sepc, d + detour::STEP_AT);
    assert!(kp.hart().is_inside());
    tf.sepc = d + detour::POST_RET_OFFSET;
    tf.sstatus = 0;
    detour::frame_status(&mut tf.sstatus);
    crate::hit::rkprobes_detour_post(&mut tf);
    assert_eq!(tf.sepc, addr + 2);
    assert_eq!(seen.load(Ordering::Relaxed), addr + 2);
    assert!(!kp.hart().is_inside());
    post.unregister().expect("unregister");
    h.unregister().expect("unregister");
    assert_eq!(os().bytes(addr, 2), 0x4505u16.to_le_bytes());
}

/// A detour made for a return probe (at a 32-bit function entry) enters
/// through the function-entry way in, for good. Its hit asks for the
/// light restore (0) only for one return probe with an `entry` handler:
/// with an instruction probe beside it, or with a plain pre handler, every
/// register comes back (1).
#[test]
fn a_detour_made_for_a_return_probe_enters_through_the_function_way_in() {
    let _g = exclusive();
    let _j = Jumps::on();
    let addr = os().func("wide_entry").addr;
    let ret = Kprobe::function(addr)
        .entry(|_, _| ())
        .ret(|_, _| ())
        .register()
        .expect("register the return probe");
    let d = detour_of(addr);
    let entries = detour::common_entries();
    let entry_target = || {
        let at = d + detour::ENTRY_JAL_AT;
        at.wrapping_add(jal_offset(word(at)))
    };
    assert_eq!(entry_target(), entries.func);
    const STACK: usize = 0x9100_0000;
    let fn_hit = || {
        let mut tf = detour_frame(d, SIE);
        tf.x[1] = 0x8000_4321;
        tf.x[2] = STACK;
        let full = crate::hit::rkprobes_detour_fn_hit(&mut tf);
        assert!(os().slot_area().contains(&tf.x[1]), "ra diverted");
        assert_eq!(tf.sepc, d + IRQS_ON_AT, "to the copy");
        full
    };
    assert_eq!(fn_hit(), 0, "one return probe: the light restore");
    let insn = Kprobe::at(addr).register().expect("register beside it");
    assert_eq!(fn_hit(), 1, "another probe at the point: every register");
    insn.unregister().expect("unregister the instruction probe");
    assert_eq!(entry_target(), entries.func, "the detour never changes");
    assert_eq!(fn_hit(), 0);
    assert_eq!((ret.hits(), ret.in_flight()), (3, 3));
    // SAFETY: the played calls never return; no handler is running.
    assert_eq!(unsafe { crate::reclaim_stack(STACK..STACK + 1) }, 3);
    ret.unregister().expect("unregister the return probe");

    // A plain pre handler may change any register: the same detour, every
    // register back.
    let plain = Kprobe::function(addr)
        .pre(|_| ())
        .register()
        .expect("register with a plain pre handler");
    assert_eq!(detour_of(addr), d);
    assert_eq!(fn_hit(), 1);
    // SAFETY: as above.
    assert_eq!(unsafe { crate::reclaim_stack(STACK..STACK + 1) }, 1);
    plain.unregister().expect("unregister");
}

/// A detour made for an instruction probe keeps the common way in: a
/// return probe added to its point, left alone there when the instruction
/// probe goes, is hit through the general path (its entry handler runs,
/// `ra` goes to the stub, the copy runs). A point of its own gets a detour
/// of its own way in.
#[test]
fn a_return_probe_on_an_instruction_probes_detour_takes_the_common_way_in() {
    let _g = exclusive();
    let _j = Jumps::on();
    let addr = os().func("wide_entry_insn_first").addr;
    let insn = Kprobe::at(addr)
        .register()
        .expect("register the instruction probe");
    let d = detour_of(addr);
    let entries = Arc::new(AtomicUsize::new(0));
    let e = entries.clone();
    let ret = Kprobe::function(addr)
        .entry(move |_, _| {
            e.fetch_add(1, Ordering::Relaxed);
        })
        .register()
        .expect("register the return probe");
    insn.unregister().expect("unregister the instruction probe");
    assert_eq!(detour_of(addr), d, "the point keeps its detour");
    let at = d + detour::ENTRY_JAL_AT;
    assert_eq!(
        at.wrapping_add(jal_offset(word(at))),
        detour::common_entries().pre
    );
    const STACK: usize = 0x9200_0000;
    let mut tf = detour_frame(d, SIE);
    tf.x[2] = STACK;
    rkprobes_detour_hit(&mut tf);
    assert!(os().slot_area().contains(&tf.x[1]), "ra diverted");
    assert_eq!(tf.sepc, d + IRQS_ON_AT, "to the copy");
    assert_eq!((entries.load(Ordering::Relaxed), ret.in_flight()), (1, 1));
    // SAFETY: the played call never returns; no handler is running.
    assert_eq!(unsafe { crate::reclaim_stack(STACK..STACK + 1) }, 1);
    ret.unregister().expect("unregister the return probe");
    let alone = Kprobe::function(addr)
        .entry(|_, _| ())
        .register()
        .expect("register it again");
    let own = detour_of(addr);
    assert_ne!(own, d, "a detour of its own way in");
    let at = own + detour::ENTRY_JAL_AT;
    assert_eq!(
        at.wrapping_add(jal_offset(word(at))),
        detour::common_entries().func
    );
    alone.unregister().expect("unregister");
}

fn jal_offset(raw: u32) -> usize {
    let insn = Insn::from_parcels(raw as u16, (raw >> 16) as u16).unwrap();
    match decode(insn).action {
        Action::Simulate(SimOp::Jal { offset, .. }) => offset as usize,
        other => panic!("{raw:#010x} is not a jal: {other:?}"),
    }
}

/// A function probe alone at a function gets the light way in. Its call
/// (played as `rkprobes_detour_call_entry` makes it) runs the call handler
/// on the arguments, diverts `ra` after it and goes on into the copy for
/// the interrupt state; its return (played as the light trampoline makes
/// it) runs the return handler on the return value and gives back the
/// real return address. With another probe beside it, the call asks for
/// the common path (0).
#[test]
fn a_function_probe_takes_the_light_way_in_and_out() {
    use super::fake_os::FakeOs;
    use crate::arch::current::trampoline::call_entry;
    use crate::global::Typed;
    use crate::ReturnRegs;
    let _g = exclusive();
    let _j = Jumps::on();
    let addr = os().func("light_entry").addr;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (s1, s2) = (seen.clone(), seen.clone());
    let f = Kprobe::function(addr)
        .on_call(move |r, d| {
            s1.lock().unwrap().push((r.arg(1), r.ra(), r.pc()));
            d[0] = 7;
            r.set_arg(1, 42);
        })
        .on_return(move |r, d| {
            s2.lock().unwrap().push((r.ret(), r.pc(), r.sp()));
            r.set_ret(r.ret() + d[0]);
        })
        .register()
        .expect("register");
    let d = detour_of(addr);
    assert_eq!(word(d) >> 7 & 31, 5, "links in t0");
    assert_eq!(
        d.wrapping_add(jal_offset(word(d))),
        detour::common_entries().call
    );
    const STACK: usize = 0x9300_0000;
    const CALLER: usize = 0x8000_1234;
    let call = |sstatus| {
        let mut tf = TrapFrame {
            sepc: d + detour::CALL_RET_OFFSET,
            sstatus,
            ..TrapFrame::default()
        };
        (tf.x[1], tf.x[2], tf.x[11]) = (CALLER, STACK, 5);
        let on = crate::retprobe::call_hit::<Typed<FakeOs>>(&mut tf);
        (on, tf)
    };
    let (on, tf) = call(SIE);
    assert_eq!(on, d + IRQS_ON_AT, "the copy that enables interrupts");
    assert_eq!(tf.x[11], 42, "the new argument");
    let entry = tf.x[1];
    assert!(os().slot_area().contains(&entry), "ra diverted");
    assert_eq!(*seen.lock().unwrap(), [(5, CALLER, addr)], "the real ra");
    // The return: `t2` = the stub, `t0` = the call's entry + 4.
    let stub = entry - call_entry(0, 0);
    let mut regs = ReturnRegs::saved(100, 0, STACK);
    let back = crate::retprobe::return_hit::<Typed<FakeOs>>(&mut regs, stub, entry + 4);
    assert_eq!((back, regs.ret()), (CALLER, 107));
    assert_eq!(seen.lock().unwrap()[1], (100, CALLER, STACK));
    assert_eq!(f.in_flight(), 0);
    let (on, _) = call(0);
    assert_eq!(on, d + IRQS_OFF_AT, "interrupts off: the other copy");
    let insn = Kprobe::at(addr).register().expect("register beside it");
    assert_eq!(call(SIE).0, 0, "two probes: the common path");
    insn.unregister().expect("unregister the instruction probe");
    // SAFETY: the played calls never return; no handler is running.
    assert_eq!(unsafe { crate::reclaim_stack(STACK..STACK + 1) }, 1);
    f.unregister().expect("unregister");
}
