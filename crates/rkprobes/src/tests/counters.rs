//! Enabling and disabling, hit and miss counters, the probe listing.

use super::fake_os::os;
use super::fake_text::off;
use super::harness::*;
use crate::{probes, Kprobe, ProbeInfo, ProbeType};
use alloc::string::ToString;
use core::sync::atomic::Ordering;

const A0: usize = 10;

fn listed(id: u64) -> Option<ProbeInfo> {
    probes().into_iter().find(|p| p.id == id)
}

#[test]
fn disabled_probes_run_nothing_and_count_nothing() {
    let _g = shared();
    let addr = os().addr("enable", off::ADDI);
    let runs = counter();
    let (pre, post) = (runs.clone(), runs.clone());
    let h = Kprobe::at(addr)
        .pre(move |_| {
            pre.fetch_add(1, Ordering::SeqCst);
        })
        .post(move |_| {
            post.fetch_add(1, Ordering::SeqCst);
        })
        .disabled()
        .register()
        .unwrap();
    // The breakpoint is there; the instruction still runs.
    assert_eq!(os().bytes(addr, 4), [0x73, 0x00, 0x10, 0x00]);
    let step = |a0: usize| {
        let mut tf = frame(addr);
        tf.x[A0] = a0;
        assert!(matches!(hit(&mut tf), Path::Stepped { .. }));
        assert_eq!((tf.sepc, tf.x[A0]), (addr + 4, a0 + 5));
    };
    step(1);
    assert_eq!((get(&runs), h.hits(), h.missed()), (0, 0, 0));
    assert!(!listed(h.id()).unwrap().enabled);

    h.enable();
    step(2);
    step(3);
    assert_eq!((get(&runs), h.hits(), h.missed()), (4, 2, 0));
    assert!(listed(h.id()).unwrap().enabled);

    h.disable();
    step(4);
    assert_eq!((get(&runs), h.hits(), h.missed()), (4, 2, 0));
    h.unregister().unwrap();
}

#[test]
fn listing_shows_each_probe() {
    let _g = shared();
    let f = os().func("listing");
    let a = Kprobe::at(f.addr + off::ADDI).register().unwrap();
    let b = Kprobe::symbol("listing+0xa").disabled().register().unwrap();
    for _ in 0..3 {
        hit(&mut frame(a.addr()));
    }
    hit(&mut frame(b.addr())); // disabled: simulated, not counted

    let la = listed(a.id()).expect("a listed");
    assert_eq!(
        (
            la.addr,
            la.symbol.as_deref(),
            la.kind,
            la.enabled,
            la.hits,
            la.missed
        ),
        (f.addr + 2, Some("listing+0x2"), ProbeType::Insn, true, 3, 0)
    );
    let lb = listed(b.id()).expect("b listed");
    assert_eq!(
        (lb.addr, lb.symbol, lb.enabled, lb.hits),
        (f.addr + 0xa, Some("listing+0xa".to_string()), false, 0)
    );
    let ids: alloc::vec::Vec<u64> = probes().iter().map(|p| p.id).collect();
    assert!(ids.is_sorted(), "listing not by id: {ids:?}");

    let (ida, idb) = (a.id(), b.id());
    a.unregister().unwrap();
    assert!(listed(ida).is_none());
    assert!(listed(idb).is_some());
    b.unregister().unwrap();
    assert!(listed(idb).is_none());
}
