//! What registration writes into the text, and what removal puts back.

use super::fake_os::{os, Event};
use super::fake_text::off;
use super::harness::*;
use crate::arch::current::SLOT_SIZE;
use crate::{memory_stats, unregister_id, Kprobe};
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

fn write(addr: usize, parcel: u16) -> Event {
    Event::Write {
        addr,
        bytes: parcel.to_le_bytes().to_vec(),
    }
}

#[test]
fn breakpoints_replace_the_instruction_and_removal_restores_it() {
    let _g = exclusive();
    let f = os().func("patch");
    let size = f.size;
    let cases = [
        (off::C_LI, 2),
        (off::ADDI, 4),      // 2 mod 4, out of line
        (off::JAL, 4),       // 2 mod 4, simulated
        (off::C_BEQZ, 2),    // simulated
        (off::AUIPC, 4),     // 0 mod 4, simulated
        (off::ADDI_ZERO, 4), // 0 mod 4, out of line
        (off::C_MV, 2),
    ];
    let mut ids = Vec::new();
    for (o, len) in cases {
        let addr = f.addr + o;
        let log = os().log_len();
        let h = Kprobe::at(addr).register().expect("register");
        let want: &[u8] = if len == 2 {
            &[0x02, 0x90]
        } else {
            &[0x73, 0x00, 0x10, 0x00]
        };
        assert_eq!(os().bytes(addr, len), want, "breakpoint at +{o:#x}");
        // The text patch is its own writes, each made visible at once.
        let text_events: Vec<Event> = os()
            .events_since(log)
            .into_iter()
            .filter(|e| match e {
                Event::Write { addr: a, .. } => os().func("patch").contains(*a),
                Event::Sync => true,
            })
            .skip_while(|e| *e == Event::Sync) // the slot's own sync
            .collect();
        let patch = if len == 2 {
            vec![write(addr, 0x9002), Event::Sync]
        } else if addr.is_multiple_of(4) && os().pristine(addr + 2, 2) == [0x10, 0x00] {
            // Only the low parcel differs from `ebreak`: one parcel store.
            vec![write(addr, 0x0073), Event::Sync]
        } else {
            // A fetch may see the parcels of a word at different times:
            // through `c.ebreak`, at any alignment.
            vec![
                write(addr, 0x9002),
                Event::Sync,
                write(addr + 2, 0x0010),
                Event::Sync,
                write(addr, 0x0073),
                Event::Sync,
            ]
        };
        assert_eq!(text_events, patch, "patch sequence at +{o:#x}");
        ids.push(h.id());
    }
    // Everything else in the function is untouched.
    let mut expect = os().pristine(f.addr, size);
    for (o, len) in cases {
        let bp: &[u8] = if len == 2 {
            &[0x02, 0x90]
        } else {
            &[0x73, 0x00, 0x10, 0x00]
        };
        expect[o..o + len].copy_from_slice(bp);
    }
    assert_eq!(os().bytes(f.addr, size), expect);

    for (i, id) in ids.iter().enumerate().rev() {
        let (o, len) = cases[i];
        unregister_id(*id).expect("unregister");
        expect[o..o + len].copy_from_slice(&os().pristine(f.addr + o, len));
        assert_eq!(os().bytes(f.addr, size), expect, "after removing +{o:#x}");
    }
    assert_eq!(os().bytes(f.addr, size), os().pristine(f.addr, size));
}

#[test]
fn probes_at_one_address_share_one_breakpoint() {
    let _g = exclusive();
    let addr = os().addr("shared", off::ADDI);
    let before = memory_stats();
    let runs: Vec<_> = (0..3).map(|_| (counter(), counter())).collect();
    let mut handles: Vec<_> = runs
        .iter()
        .map(|(pre, post)| {
            let (pre, post) = (pre.clone(), post.clone());
            Kprobe::at(addr)
                .pre(move |_| {
                    pre.fetch_add(1, Ordering::SeqCst);
                })
                .post(move |_| {
                    post.fetch_add(1, Ordering::SeqCst);
                })
                .register()
                .expect("register")
        })
        .collect();
    let stats = memory_stats();
    assert_eq!(stats.points, before.points + 1);
    assert_eq!(stats.probes, before.probes + 3);
    assert_eq!(stats.slot_bytes, before.slot_bytes + SLOT_SIZE);
    assert_eq!(os().bytes(addr, 4), [0x73, 0x00, 0x10, 0x00]);

    let mut tf = frame(addr);
    assert!(matches!(hit(&mut tf), Path::Stepped { .. }));
    for (pre, post) in &runs {
        assert_eq!((get(pre), get(post)), (1, 1));
    }

    // Removing the middle probe keeps the breakpoint for the other two.
    let middle = handles.remove(1);
    middle.unregister().expect("unregister");
    assert_eq!(os().bytes(addr, 4), [0x73, 0x00, 0x10, 0x00]);
    assert_eq!(memory_stats().points, before.points + 1);
    let mut tf = frame(addr);
    assert!(matches!(hit(&mut tf), Path::Stepped { .. }));
    let counts: Vec<_> = runs.iter().map(|(a, b)| (get(a), get(b))).collect();
    assert_eq!(counts, [(2, 2), (1, 1), (2, 2)]);
    assert_eq!(handles.iter().map(|h| h.hits()).collect::<Vec<_>>(), [2, 2]);

    for h in handles {
        h.unregister().expect("unregister");
    }
    assert_eq!(os().bytes(addr, 4), os().pristine(addr, 4));
    assert_eq!(memory_stats(), before);
}
