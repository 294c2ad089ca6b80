//! A probe hit while a handler runs (the handler called a probed
//! function): the inner probe's handlers are skipped and counted as missed,
//! but its instruction still runs, and the outer hit completes normally.

use super::fake_os::os;
use super::fake_text::off;
use super::harness::*;
use crate::Kprobe;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use std::sync::Mutex;

const A0: usize = 10;
const A1: usize = 11;
const RA: usize = 1;

/// How an inner hit went: its path, then the pc and one result register.
type InnerHit = Result<(Path, usize, usize), String>;

#[test]
fn hit_inside_a_handler_is_missed_but_executed() {
    // Exclusive: the other test here probes the same two functions, and
    // its hits would run this test's outer handler too.
    let _g = exclusive();
    let inner = os().func("nested_inner");
    let (add, jal) = (inner.addr + off::ADD, inner.addr + off::JAL);
    let inner_runs = counter();
    let inner_probes: Vec<_> = [add, jal]
        .iter()
        .map(|&a| {
            let (pre, post) = (inner_runs.clone(), inner_runs.clone());
            Kprobe::at(a)
                .pre(move |_| {
                    pre.fetch_add(1, Ordering::SeqCst);
                })
                .post(move |_| {
                    post.fetch_add(1, Ordering::SeqCst);
                })
                .register()
                .unwrap()
        })
        .collect();

    // The outer pre handler "calls" the inner function: an out-of-line
    // `add` (stepped through its slot) then a simulated `jal`.
    let outcome: Arc<Mutex<Vec<InnerHit>>> = Default::default();
    let o = outcome.clone();
    let outer_post = counter();
    let op = outer_post.clone();
    let outer_addr = os().addr("nested_outer", off::ADDI);
    let outer = Kprobe::at(outer_addr)
        .pre(move |_| {
            let mut tf = frame(add);
            tf.x[A0] = 3;
            tf.x[A1] = 4;
            let r1 = try_hit(&mut tf).map(|p| (p, tf.sepc, tf.x[A0]));
            let mut tf = frame(jal);
            let r2 = try_hit(&mut tf).map(|p| (p, tf.sepc, tf.x[RA]));
            let mut o = o.lock().unwrap();
            o.push(r1);
            o.push(r2);
        })
        .post(move |tf| {
            if tf.sepc == outer_addr + 4 {
                op.fetch_add(1, Ordering::SeqCst);
            }
        })
        .register()
        .unwrap();

    let mut tf = frame(outer_addr);
    tf.x[A0] = 1;
    assert!(matches!(hit(&mut tf), Path::Stepped { .. }));
    assert_eq!((tf.sepc, tf.x[A0]), (outer_addr + 4, 6));
    assert_eq!(get(&outer_post), 1);
    assert_eq!(outer.hits(), 1);

    let outcome = outcome.lock().unwrap().clone();
    assert_eq!(outcome.len(), 2, "{outcome:?}");
    let stepped = outcome[0]
        .clone()
        .unwrap_or_else(|e| panic!("inner add: {e}"));
    assert!(matches!(stepped.0, Path::Stepped { .. }), "{stepped:?}");
    assert_eq!((stepped.1, stepped.2), (add + 4, 7), "inner add");
    assert_eq!(
        outcome[1].clone().map_err(|e| format!("inner jal: {e}")),
        Ok((Path::Resumed, jal + 16, jal + 4))
    );
    assert_eq!(get(&inner_runs), 0, "inner handlers ran nested");
    for p in &inner_probes {
        assert_eq!((p.hits(), p.missed()), (0, 1));
    }

    // Outside a handler the inner probes work as usual.
    let mut tf = frame(add);
    assert!(matches!(hit(&mut tf), Path::Stepped { .. }));
    let mut tf = frame(jal);
    assert_eq!(hit(&mut tf), Path::Resumed);
    assert_eq!(get(&inner_runs), 4);
    for p in &inner_probes {
        assert_eq!((p.hits(), p.missed()), (1, 1));
    }

    outer.unregister().unwrap();
    for p in inner_probes {
        p.unregister().unwrap();
    }
}

/// A nested hit's step that faults is left as nested: the outer hit is
/// still inside afterwards (the registry refuses changes), and the hart is
/// outside once the outer hit completes.
#[test]
fn fault_in_a_nested_step_keeps_the_outer_hit_inside() {
    use crate::hit::{handle_breakpoint, kprobes_fault_handler};
    let _g = exclusive();
    let inner = os().func("nested_inner");
    let add = inner.addr + off::ADD;
    let ip = Kprobe::at(add).pre(|_| ()).register().unwrap();
    let seen: Arc<Mutex<Vec<String>>> = Default::default();
    let s = seen.clone();
    let outer_addr = os().addr("nested_outer", off::ADDI);
    let outer = Kprobe::at(outer_addr)
        .pre(move |_| {
            let mut tf = frame(add);
            let mut s = s.lock().unwrap();
            s.push(format!("bp {}", handle_breakpoint(&mut tf)));
            s.push(format!(
                "fault {:?}",
                kprobes_fault_handler(&mut tf).map(|a| a == add)
            ));
            s.push(format!(
                "inside {}",
                crate::global::get().unwrap().hart().is_inside()
            ));
        })
        .register()
        .unwrap();
    let mut tf = frame(outer_addr);
    hit(&mut tf);
    assert_eq!(
        *seen.lock().unwrap(),
        ["bp true", "fault Some(true)", "inside true"]
    );
    assert!(!crate::global::get().unwrap().hart().is_inside());
    outer.unregister().unwrap();
    ip.unregister().unwrap();
}
