//! Breakpoints that are not (or no longer) a probe's, and faults while
//! stepping a slot.

use super::fake_os::os;
use super::fake_text::off;
use super::harness::*;
use crate::{
    handle_breakpoint, kprobes_fault_handler, kprobes_trap_handler, unowned_breakpoints,
    unregister_id, Kprobe, KprobeOs,
};
use core::sync::atomic::Ordering;

const A0: usize = 10;

#[test]
fn foreign_breakpoints_are_stepped_over_and_counted() {
    let _g = exclusive(); // the unowned count is global
    let f = os().func("foreign");
    let before = unowned_breakpoints();
    for (o, len) in [(0, 2), (2, 4)] {
        let mut tf = frame(f.addr + o);
        assert!(!handle_breakpoint(&mut tf), "+{o} claimed");
        assert_eq!(tf.sepc, f.addr + o, "+{o} moved by handle_breakpoint");
        kprobes_trap_handler(&mut tf);
        assert_eq!(tf.sepc, f.addr + o + len, "+{o} not stepped over");
    }
    assert_eq!(unowned_breakpoints(), before + 2);
}

#[test]
fn trap_after_removal_runs_the_original_instruction() {
    let _g = exclusive(); // checks the unowned count
    let before = unowned_breakpoints();
    let f = os().func("race");
    let runs = counter();
    let (addi, jal) = (f.addr + off::ADDI, f.addr + off::JAL);
    for addr in [addi, jal] {
        let r = runs.clone();
        let h = Kprobe::at(addr)
            .pre(move |_| {
                r.fetch_add(1, Ordering::SeqCst);
            })
            .register()
            .unwrap();
        unregister_id(h.id()).unwrap();
        assert_eq!(h.hits(), 0);
    }
    // The harts trapped before the removals and arrive now: the original
    // instructions are back, and each runs once, without handlers.
    let mut tf = frame(addi);
    tf.x[A0] = 1;
    assert!(matches!(hit(&mut tf), Path::Stepped { .. }));
    assert_eq!((tf.sepc, tf.x[A0]), (addi + 4, 6));
    let mut tf = frame(jal);
    assert_eq!(hit(&mut tf), Path::Resumed);
    assert_eq!((tf.sepc, tf.x[1]), (jal + 16, jal + 4));
    // Through the trap handler entry too.
    let mut tf = frame(jal);
    kprobes_trap_handler(&mut tf);
    assert_eq!((tf.sepc, tf.x[1]), (jal + 16, jal + 4));
    assert_eq!(get(&runs), 0);
    assert_eq!(unowned_breakpoints(), before);
}

#[test]
fn fault_in_a_slot_returns_to_the_probe_address() {
    let _g = shared();
    let addr = os().addr("fault", off::ADD);
    let post = counter();
    let p = post.clone();
    let h = Kprobe::at(addr)
        .post(move |_| {
            p.fetch_add(1, Ordering::SeqCst);
        })
        .register()
        .unwrap();
    let mut tf = frame(addr);
    let sstatus = tf.sstatus;
    assert!(handle_breakpoint(&mut tf));
    let slot = tf.sepc;
    assert!(os().slot_area().contains(&slot));
    assert_eq!(tf.sstatus & SSTATUS_SPIE, 0);

    // A fault elsewhere, while stepping, is not the library's.
    let mut other = frame(addr + 4);
    assert_eq!(kprobes_fault_handler(&mut other), None);
    assert_eq!(other.sepc, addr + 4);

    // The slot's instruction faults.
    assert_eq!(kprobes_fault_handler(&mut tf), Some(addr));
    assert_eq!((tf.sepc, tf.sstatus), (addr, sstatus));
    assert_eq!(get(&post), 0);
    // The step is gone: neither a second fault nor the slot's breakpoint
    // belongs to it any more.
    let mut again = frame(slot);
    assert_eq!(kprobes_fault_handler(&mut again), None);
    let mut ret = frame(slot + 4);
    assert!(!handle_breakpoint(&mut ret));

    // The hart takes the probe again, and is not stuck "inside".
    let mut tf = frame(addr);
    tf.x[A0] = 2;
    tf.x[11] = 3;
    assert!(matches!(hit(&mut tf), Path::Stepped { .. }));
    assert_eq!(
        (tf.sepc, tf.x[A0], get(&post), h.hits()),
        (addr + 4, 5, 1, 2)
    );
    h.unregister().expect("unregister after a fault");
}
