//! uprobes at a hit: handlers and counts, simulated instructions setting
//! the pc as they would, out-of-line ones stepped in the slot page,
//! uretprobes (the trampoline, the return, nesting, a full pool), and
//! breakpoints that are not (or no longer) a uprobe's.

use super::fake_text::{off, EBREAK};
use super::fake_uos::*;
use crate::uprobe::MAX_INSTANCES;
use crate::{EntryAction, PreAction, ProbeType, TrapFrame, Uprobe, Uprobes};
use alloc::sync::Arc;
use alloc::vec::Vec;
use std::sync::Mutex;

const RA: usize = TrapFrame::RA;
const SP: usize = TrapFrame::SP;
const A0: usize = TrapFrame::A0;
const A1: usize = TrapFrame::A0 + 1;

/// Records `(pc, a0, a1, ra)` each time a handler runs (handlers never
/// assert: the test checks what they saw afterwards).
type Seen = Arc<Mutex<Vec<[usize; 4]>>>;

fn recorder() -> (Seen, impl Fn(&mut TrapFrame) + Send + Sync + 'static) {
    let seen = Seen::default();
    let s = seen.clone();
    let f = move |tf: &mut TrapFrame| {
        s.lock()
            .unwrap()
            .push([tf.pc(), tf.x[A0], tf.x[A1], tf.x[RA]])
    };
    (seen, f)
}

fn taken(seen: &Seen) -> Vec<[usize; 4]> {
    core::mem::take(&mut *seen.lock().unwrap())
}

fn work(o: usize) -> usize {
    uos().sym(A, "work") + o
}

/// A uretprobe on `work` of program A, to be given handlers.
fn work_uretprobe() -> Uprobe {
    Uprobe::new(A).symbol("work").kind(ProbeType::SyncFunc)
}

#[test]
fn hit_runs_pre_and_post_handlers_around_the_instruction() {
    let _w = world();
    let pid = start(A);
    let addr = work(off::ADDI);
    let (pre, pre_f) = recorder();
    let (post, post_f) = recorder();
    let h = Uprobe::new(A)
        .addr(addr)
        .pre(pre_f)
        .post(post_f)
        .register()
        .unwrap();
    let mut tf = frame(addr);
    tf.x[A0] = 1;
    assert!(matches!(hit(pid, &mut tf), Path::Stepped { .. }));
    assert_eq!((tf.pc(), tf.x[A0]), (addr + 4, 6));
    assert_eq!(taken(&pre), [[addr, 1, 0, CALLER]]);
    assert_eq!(taken(&post), [[addr + 4, 6, 0, CALLER]]);
    assert_eq!(h.hits(), 1);
    assert_eq!(Uprobes::get().list()[0].hits, 1);
    h.unregister().unwrap();
}

#[test]
fn out_of_line_instructions_step_through_their_slot_and_back() {
    let _w = world();
    let pid = start(A);
    let mut slots = Vec::new();
    for (o, len) in [
        (off::C_LI, 2),
        (off::ADDI, 4),
        (off::ADD, 4),
        (off::C_MV, 2),
    ] {
        let addr = work(o);
        let h = Uprobe::new(A).addr(addr).register().unwrap();
        let mut tf = frame(addr);
        assert!(trap(pid, &mut tf));
        let slot = tf.pc();
        assert!(in_slot_page(slot) && slot > SLOT_VA, "+{o}: pc {slot:#x}");
        assert_eq!(uos().mem(pid, slot + len, 4), EBREAK.to_le_bytes());
        // The whole step, checked by `hit`.
        assert_eq!(hit(pid, &mut frame(addr)), Path::Stepped { slot });
        assert_eq!(h.hits(), 2);
        slots.push((slot, h));
    }
    let mut distinct: Vec<_> = slots.iter().map(|s| s.0).collect();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), slots.len(), "probes share a slot");
    for (_, h) in slots {
        h.unregister().unwrap();
    }
}

#[test]
fn simulated_jal_jumps_and_links() {
    let _w = world();
    let pid = start(A);
    let addr = work(off::JAL);
    let (post, post_f) = recorder();
    let h = Uprobe::new(A).addr(addr).post(post_f).register().unwrap();
    let mut tf = frame(addr);
    assert_eq!(hit(pid, &mut tf), Path::Resumed);
    assert_eq!((tf.pc(), tf.x[RA]), (addr + 16, addr + 4));
    assert_eq!(taken(&post), [[addr + 16, 0, 0, addr + 4]]);
    assert_eq!(h.hits(), 1);
    h.unregister().unwrap();
}

#[test]
fn simulated_branches_go_where_the_registers_say() {
    let _w = world();
    let pid = start(A);
    let (beqz, beq) = (work(off::C_BEQZ), work(off::BEQ));
    let hs = [
        Uprobe::new(A).addr(beqz).register().unwrap(),
        Uprobe::new(A).addr(beq).register().unwrap(),
    ];
    // (pc, a0, a1) -> pc after.
    let cases = [
        (beqz, 0, 0, beqz + 6),
        (beqz, 1, 0, beqz + 2),
        (beq, 3, 3, beq + 8),
        (beq, 3, 4, beq + 4),
    ];
    for (pc, a0, a1, want) in cases {
        let mut tf = frame(pc);
        tf.x[A0] = a0;
        tf.x[A1] = a1;
        assert_eq!(hit(pid, &mut tf), Path::Resumed);
        assert_eq!(tf.pc(), want, "{pc:#x} with a0={a0} a1={a1}");
    }
    assert_eq!(hs.each_ref().map(|h| h.hits()), [2, 2]);
    for h in hs {
        h.unregister().unwrap();
    }
}

#[test]
fn simulated_auipc_adds_to_the_probes_own_pc() {
    let _w = world();
    let pid = start(A);
    let addr = work(off::AUIPC);
    let h = Uprobe::new(A).addr(addr).register().unwrap();
    let mut tf = frame(addr);
    assert_eq!(hit(pid, &mut tf), Path::Resumed);
    assert_eq!((tf.pc(), tf.x[A0]), (addr + 4, addr + 0x1000));
    h.unregister().unwrap();
}

#[test]
fn skip_resumes_after_the_instruction_without_running_it() {
    let _w = world();
    let pid = start(A);
    let addr = work(off::ADDI);
    let (post, post_f) = recorder();
    let h = Uprobe::new(A)
        .addr(addr)
        .pre(|_| PreAction::Skip)
        .post(post_f)
        .register()
        .unwrap();
    let mut tf = frame(addr);
    tf.x[A0] = 1;
    assert_eq!(hit(pid, &mut tf), Path::Resumed);
    assert_eq!((tf.pc(), tf.x[A0]), (addr + 4, 1));
    assert!(taken(&post).is_empty(), "post handler ran");
    h.unregister().unwrap();
}

#[test]
fn handler_cannot_register_or_unregister() {
    let _w = world();
    let pid = start(A);
    let addr = work(off::ADD);
    let other = Uprobe::new(A).addr(work(off::C_MV)).register().unwrap();
    let id = other.id();
    let results = Arc::new(Mutex::new(Vec::new()));
    let r = results.clone();
    let h = Uprobe::new(A)
        .addr(addr)
        .pre(move |_| {
            let reg = Uprobe::new(A).addr(work(off::C_LI)).register().err();
            r.lock()
                .unwrap()
                .push((reg, Uprobes::get().unregister(id).err()));
        })
        .register()
        .unwrap();
    hit(pid, &mut frame(addr));
    let in_handler = Some(crate::Error::InHandler);
    assert_eq!(*results.lock().unwrap(), [(in_handler, in_handler)]);
    assert_eq!(Uprobes::get().list().len(), 2);
    h.unregister().unwrap();
    other.unregister().unwrap();
}

#[test]
fn uretprobe_entry_replaces_ra_with_the_trampoline() {
    let _w = world();
    let pid = start(A);
    let entry = work(0);
    let h = Uprobe::new(A)
        .addr(entry)
        .kind(ProbeType::SyncFunc)
        .register()
        .unwrap();
    let mut tf = frame(entry);
    assert!(matches!(hit(pid, &mut tf), Path::Stepped { .. }));
    assert_eq!((tf.pc(), tf.x[RA]), (entry + 2, SLOT_VA));
    assert_eq!(uos().mem(pid, SLOT_VA, 4), EBREAK.to_le_bytes());
    assert_eq!(Uprobes::get().calls_in_flight(pid), 1);
    assert_eq!(h.hits(), 1);
    h.unregister().unwrap();
}

/// The probed function returns (`ret` to the trampoline) with `a0`.
fn ret(pid: u64, tf: &mut TrapFrame, a0: usize) -> bool {
    tf.x[A0] = a0;
    tf.set_pc(tf.x[RA]);
    trap(pid, tf)
}

#[test]
fn uretprobe_return_restores_ra_and_runs_the_return_handler() {
    let _w = world();
    let pid = start(A);
    let (seen, f) = recorder();
    let h = work_uretprobe().post(f).register().unwrap();
    let mut tf = frame(work(0));
    hit(pid, &mut tf);
    assert!(taken(&seen).is_empty(), "return handler ran at entry");
    assert!(ret(pid, &mut tf, 42));
    assert_eq!((tf.pc(), tf.x[RA]), (CALLER, CALLER));
    assert_eq!(taken(&seen), [[CALLER, 42, 0, CALLER]]);
    assert_eq!(Uprobes::get().calls_in_flight(pid), 0);
    h.unregister().unwrap();
}

#[test]
fn entry_data_reaches_the_return_handler_of_its_call() {
    let _w = world();
    let pid = start(A);
    let sums = Arc::new(Mutex::new(Vec::new()));
    let s = sums.clone();
    let h = Uprobe::new(A)
        .symbol("work")
        .entry(|tf, data| data[0] = tf.arg(0) * 1000)
        .ret(move |tf, data| s.lock().unwrap().push(data[0] + tf.ret()))
        .register()
        .unwrap();
    let mut tf = frame(work(0));
    tf.x[A0] = 7;
    hit(pid, &mut tf);
    assert!(ret(pid, &mut tf, 55));
    assert_eq!(*sums.lock().unwrap(), [7055]);
    h.unregister().unwrap();
}

#[test]
fn nested_calls_return_to_their_own_callers() {
    let _w = world();
    let pid = start(A);
    let (seen, f) = recorder();
    let h = work_uretprobe().post(f).register().unwrap();
    let mut outer = frame(work(0));
    hit(pid, &mut outer);
    // `work` calls itself from work+0x20 with a deeper stack.
    let mut inner = frame(work(0));
    inner.x[SP] = STACK - 0x40;
    inner.x[RA] = work(0x20);
    hit(pid, &mut inner);
    assert_eq!(Uprobes::get().calls_in_flight(pid), 2);
    assert!(ret(pid, &mut inner, 1));
    assert_eq!(inner.pc(), work(0x20));
    assert!(ret(pid, &mut outer, 2));
    assert_eq!(outer.pc(), CALLER);
    let returns: Vec<_> = taken(&seen).iter().map(|s| (s[0], s[1])).collect();
    assert_eq!(returns, [(work(0x20), 1), (CALLER, 2)]);
    h.unregister().unwrap();
}

#[test]
fn two_uretprobes_on_one_function_both_see_the_return() {
    let _w = world();
    let pid = start(A);
    let (first, f1) = recorder();
    let (second, f2) = recorder();
    let hs = [f1, f2].map(|f| {
        Uprobe::new(A)
            .symbol("work")
            .kind(ProbeType::SyncFunc)
            .post(f)
            .register()
            .unwrap()
    });
    let mut tf = frame(work(0));
    hit(pid, &mut tf);
    assert!(ret(pid, &mut tf, 9));
    // The second probe's return leads to the first's trampoline.
    assert_eq!(tf.pc(), SLOT_VA);
    assert!(trap(pid, &mut tf), "trampoline not owned");
    assert_eq!((tf.pc(), tf.x[RA]), (CALLER, CALLER));
    assert_eq!(taken(&first).len(), 1);
    assert_eq!(taken(&second).len(), 1);
    for h in hs {
        h.unregister().unwrap();
    }
}

#[test]
fn cancelled_entry_leaves_ra_alone() {
    let _w = world();
    let pid = start(A);
    let h = Uprobe::new(A)
        .symbol("work")
        .entry(|_, _| EntryAction::Cancel)
        .ret(|_, _| {})
        .register()
        .unwrap();
    let mut tf = frame(work(0));
    hit(pid, &mut tf);
    assert_eq!(tf.x[RA], CALLER);
    assert_eq!(Uprobes::get().calls_in_flight(pid), 0);
    assert_eq!(h.hits(), 1);
    h.unregister().unwrap();
}

#[test]
fn full_pool_of_calls_counts_a_miss_and_runs_unprobed() {
    let _w = world();
    let pid = start(A);
    let h = work_uretprobe().register().unwrap();
    for depth in 0..MAX_INSTANCES {
        let mut tf = frame(work(0));
        tf.x[SP] = STACK - 0x40 * depth;
        hit(pid, &mut tf);
        assert_eq!(tf.x[RA], SLOT_VA);
    }
    let mut tf = frame(work(0));
    tf.x[SP] = STACK - 0x40 * MAX_INSTANCES;
    assert!(matches!(hit(pid, &mut tf), Path::Stepped { .. }));
    assert_eq!(tf.x[RA], CALLER, "ra replaced without an instance");
    assert_eq!((h.hits(), h.missed()), (MAX_INSTANCES as u64, 1));
    assert_eq!(Uprobes::get().list()[0].missed, 1);
    h.unregister().unwrap();
}

#[test]
fn return_after_unregister_still_reaches_the_caller() {
    let _w = world();
    let pid = start(A);
    let (seen, f) = recorder();
    let h = work_uretprobe().post(f).register().unwrap();
    let mut tf = frame(work(0));
    hit(pid, &mut tf);
    h.unregister().unwrap();
    assert!(ret(pid, &mut tf, 1));
    assert_eq!((tf.pc(), tf.x[RA]), (CALLER, CALLER));
    assert!(taken(&seen).is_empty(), "handler of a removed probe ran");
}

#[test]
fn forked_child_returns_through_the_calls_in_flight_it_inherited() {
    let _w = world();
    let parent = start(A);
    let (seen, f) = recorder();
    let h = work_uretprobe().post(f).register().unwrap();
    let mut tf = frame(work(0));
    hit(parent, &mut tf);
    let child = fork(parent);
    let mut child_tf = tf;
    assert!(ret(child, &mut child_tf, 0));
    assert_eq!(child_tf.pc(), CALLER);
    assert_eq!(Uprobes::get().calls_in_flight(parent), 1);
    assert!(ret(parent, &mut tf, 1));
    assert_eq!(tf.pc(), CALLER);
    let returns: Vec<_> = taken(&seen).iter().map(|s| s[1]).collect();
    assert_eq!(returns, [0, 1]);
    h.unregister().unwrap();
}

/// Calls in flight belong to the thread that made them: a thread that
/// ends takes its calls along, and a child forked by one thread keeps
/// only that thread's (the others do not exist in the child).
#[test]
fn calls_in_flight_belong_to_their_thread() {
    let _w = world();
    let parent = start(A);
    let h = work_uretprobe().register().unwrap();
    let mut calls = Vec::new();
    for thread in [1, 2, 2] {
        set_thread(thread);
        let mut tf = frame(work(0));
        tf.x[SP] -= 0x100 * thread as usize + 0x10 * calls.len();
        hit(parent, &mut tf);
        calls.push(tf);
    }
    set_thread(2);
    let child = fork(parent);
    assert_eq!(Uprobes::get().calls_in_flight(child), 2, "thread 2's");
    assert!(ret(child, &mut calls[2].clone(), 0));
    assert!(!ret(child, &mut calls[0].clone(), 0), "thread 1's call");
    assert_eq!(Uprobes::get().thread_exit(parent, 1), 1);
    assert_eq!(Uprobes::get().calls_in_flight(parent), 2);
    assert!(
        !ret(parent, &mut calls[0].clone(), 0),
        "an ended thread's call"
    );
    assert!(ret(parent, &mut calls[1].clone(), 0));
    assert_eq!(Uprobes::get().thread_exit(parent, 2), 1);
    assert_eq!(Uprobes::get().calls_in_flight(parent), 0);
    set_thread(0);
    h.unregister().unwrap();
}

#[test]
fn trampoline_trap_without_a_call_is_not_owned() {
    let _w = world();
    let pid = start(A);
    let h = work_uretprobe().register().unwrap();
    let mut tf = frame(SLOT_VA);
    assert!(!trap(pid, &mut tf));
    assert_eq!(tf.pc(), SLOT_VA);
    h.unregister().unwrap();
}

#[test]
fn breakpoint_in_an_unprobed_process_is_not_owned() {
    let _w = world();
    let (a, b) = (start(A), start(B));
    let addr = work(off::ADDI);
    let h = Uprobe::new(A).addr(addr).register().unwrap();
    // /bin/b's own `c.ebreak`, and the probe's address in /bin/b.
    for pc in [uos().sym(B, "foreign"), addr] {
        let mut tf = frame(pc);
        assert!(!trap(b, &mut tf), "{pc:#x} owned");
        assert_eq!(tf.pc(), pc);
    }
    // No current process: not a user trap uprobes knows.
    set_current(None);
    assert!(!Uprobes::get().uprobes_trap_handler(&mut frame(addr)));
    assert_eq!(h.hits(), 0);
    assert!(matches!(hit(a, &mut frame(addr)), Path::Stepped { .. }));
    h.unregister().unwrap();
}

#[test]
fn foreign_breakpoint_in_a_probed_process_is_not_owned() {
    let _w = world();
    let pid = start(A);
    let h = Uprobe::new(A).symbol("work").register().unwrap();
    for o in [0, 2] {
        let pc = uos().sym(A, "foreign") + o;
        let mut tf = frame(pc);
        assert!(!trap(pid, &mut tf), "+{o} owned");
        assert_eq!(tf.pc(), pc);
    }
    h.unregister().unwrap();
}

/// A thread that trapped, then found the probe gone before it got the
/// lock: the original instruction is back in memory, but the thread runs
/// it without fetching it again (a stale fetch would trap forever): from
/// the removed point's slot, or simulated. No handler runs.
#[test]
fn trap_after_unregister_runs_the_restored_instruction_in_place() {
    let _w = world();
    let pid = start(A);
    let addr = work(off::ADDI);
    let (seen, f) = recorder();
    let h = Uprobe::new(A).addr(addr).pre(f).register().unwrap();
    h.unregister().unwrap();
    let mut tf = frame(addr);
    tf.x[A0] = 1;
    assert!(trap(pid, &mut tf), "trap of a removed probe not owned");
    let slot = tf.pc();
    assert_ne!(slot, addr, "fetched again");
    // The slot holds the original and jumps back after it.
    let code = uos().mem(pid, slot, 4);
    assert_eq!(code, uos().mem(pid, addr, 4));
    super::harness::emulate(&code, &mut tf).unwrap();
    assert_eq!(tf.x[A0], 6, "addi a0, a0, 5 ran");
    // A simulated one (`jal ra, +16`) is simulated.
    let (seen2, f) = recorder();
    let jal = work(off::JAL);
    let h = Uprobe::new(A).addr(jal).pre(f).register().unwrap();
    h.unregister().unwrap();
    let mut tf = frame(jal);
    assert!(trap(pid, &mut tf));
    assert_eq!((tf.pc(), tf.x[1]), (jal + 16, jal + 4), "jal ran");
    assert!(taken(&seen).is_empty() && taken(&seen2).is_empty());
}

#[test]
fn thread_in_a_removed_probes_slot_still_comes_back() {
    let _w = world();
    let pid = start(A);
    let addr = work(off::ADDI);
    let h = Uprobe::new(A).addr(addr).register().unwrap();
    let mut tf = frame(addr);
    tf.x[A0] = 1;
    assert!(trap(pid, &mut tf));
    let slot = tf.pc();
    h.unregister().unwrap();
    // Another probe meanwhile does not take over the slot.
    let other = Uprobe::new(A).addr(work(off::ADD)).register().unwrap();
    let mut other_tf = frame(work(off::ADD));
    assert!(matches!(hit(pid, &mut other_tf), Path::Stepped { slot: s } if s != slot));
    // The preempted thread runs the slot and comes back.
    let code = uos().mem(pid, slot, 4);
    super::harness::emulate(&code, &mut tf).unwrap();
    tf.set_pc(slot + 4);
    assert!(trap(pid, &mut tf), "slot return not owned");
    assert_eq!((tf.pc(), tf.x[A0]), (addr + 4, 6));
    other.unregister().unwrap();
}

#[test]
fn fault_in_a_slot_is_reported_at_the_probe() {
    let _w = world();
    let pid = start(A);
    let addr = work(off::ADD);
    let h = Uprobe::new(A).addr(addr).register().unwrap();
    let mut tf = frame(addr);
    assert!(trap(pid, &mut tf));
    assert!(in_slot_page(tf.pc()));
    assert_eq!(Uprobes::get().uprobes_fault_handler(&mut tf), Some(addr));
    assert_eq!(tf.pc(), addr);
    // A fault elsewhere is not uprobes'.
    let mut elsewhere = frame(work(off::C_MV));
    assert_eq!(Uprobes::get().uprobes_fault_handler(&mut elsewhere), None);
    h.unregister().unwrap();
}

/// Threads of one process on several harts at once (host threads, each
/// its own hart and user stack): every hit steps through the one shared
/// slot and comes back to its own thread's next instruction, every call
/// returns to its own caller with its own entry data, counts are exact.
#[test]
fn threads_of_one_process_hit_at_once_on_several_harts() {
    const THREADS: usize = 4;
    const CALLS: usize = 500;
    let _w = world();
    let pid = start(A);
    let addi = work(off::ADDI);
    let step = Uprobe::new(A).addr(addi).register().unwrap();
    let wrong = Arc::new(core::sync::atomic::AtomicUsize::new(0));
    let bad = wrong.clone();
    let call = Uprobe::new(A)
        .symbol("work")
        .entry(|tf, data| {
            data[0] = tf.arg(0);
            data[1] = tf.sp();
        })
        .ret(move |tf, data| {
            // Each thread returns arg + 1 from its own stack.
            if tf.ret() != data[0] + 1 || tf.sp() != data[1] {
                bad.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
            }
        })
        .register()
        .unwrap();
    std::thread::scope(|s| {
        for t in 0..THREADS {
            s.spawn(move || {
                let stack = STACK - 0x1000 * t;
                let caller = CALLER + 4 * t;
                for i in 0..CALLS {
                    let mut tf = frame(work(0));
                    tf.x[SP] = stack;
                    tf.x[RA] = caller;
                    tf.x[A0] = t * 10_000 + i;
                    assert!(matches!(hit(pid, &mut tf), Path::Stepped { .. }));
                    assert_eq!((tf.pc(), tf.x[RA]), (work(2), SLOT_VA));
                    tf.x[A0] = 1;
                    tf.set_pc(addi);
                    assert!(matches!(hit(pid, &mut tf), Path::Stepped { .. }));
                    assert_eq!((tf.pc(), tf.x[A0]), (addi + 4, 6));
                    std::thread::yield_now();
                    assert!(ret(pid, &mut tf, t * 10_000 + i + 1));
                    assert_eq!((tf.pc(), tf.x[RA], tf.sp()), (caller, caller, stack));
                }
            });
        }
    });
    let n = (THREADS * CALLS) as u64;
    assert_eq!((step.hits(), call.hits(), call.missed()), (n, n, 0));
    assert_eq!(wrong.load(core::sync::atomic::Ordering::Relaxed), 0);
    assert_eq!(Uprobes::get().calls_in_flight(pid), 0);
    step.unregister().unwrap();
    call.unregister().unwrap();
}
