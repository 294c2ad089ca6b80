//! Kernel return probes on the host: the entry breakpoint diverts `ra` to
//! its call's entry in the probe's trampoline stub, and the return is
//! played by calling `rkprobes_ret_handler` as the trampoline would (the
//! stub in `t2`, the entry + 4 in `t0`).

use super::fake_os::os;
use super::fake_text::off;
use super::harness::*;
use crate::arch::current::decode::{decode, Action};
use crate::arch::current::insn::Insn;
use crate::arch::current::simulate::SimOp;
use crate::arch::current::trampoline::{ret_stub_size, LINK_REG, STUB_REG};
use crate::retprobe::rkprobes_ret_handler;
use crate::{unregister_id, Kprobe, KprobeOs, TrapFrame};
use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const SP: usize = 2;
const RA: usize = 1;
const A0: usize = 10;
const CALLER: usize = 0x8000_1234;
const STACK: usize = 0x9000_0000;

/// The function's entry hit with `ra` = `CALLER`, `sp` = `STACK`; returns
/// the frame after it (its `ra` is the call's entry in the stub).
fn enter(entry: usize) -> TrapFrame {
    let mut tf = frame(entry);
    tf.x[RA] = CALLER;
    tf.x[SP] = STACK;
    hit(&mut tf);
    tf
}

/// The stub a call's entry at `ra` belongs to: where its `jal t0` leads.
fn stub_of(ra: usize) -> usize {
    let insn = Insn::from_bytes(&os().bytes(ra, 4)).expect("an instruction at ra");
    let Action::Simulate(SimOp::Jal { rd, offset }) = decode(insn).action else {
        panic!("no jal at ra {ra:#x}");
    };
    assert_eq!(rd.index(), LINK_REG);
    ra.wrapping_add(offset as usize)
}

/// The function returns `a0` to `ra` (a call's entry in a stub): plays the
/// entry's `jal t0, stub` and the stub's `auipc t2`, then the trampoline.
fn ret(ra: usize, a0: usize) -> (usize, TrapFrame) {
    let mut tf = frame(ra);
    tf.x[LINK_REG] = ra + 4;
    tf.x[STUB_REG] = stub_of(ra);
    tf.x[SP] = STACK;
    tf.x[RA] = ra;
    tf.x[A0] = a0;
    (rkprobes_ret_handler(&mut tf), tf)
}

fn wait_for(what: &str, f: impl Fn() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < Duration::from_secs(10), "timed out: {what}");
        std::thread::yield_now();
    }
}

#[test]
fn return_goes_back_to_the_caller_with_the_entry_data() {
    let _g = shared();
    let entry = os().addr("retprobe", 0);
    let seen = counter();
    let s = seen.clone();
    let h = Kprobe::function(entry)
        .entry(|tf, data| data[0] = tf.sp())
        .ret(move |tf, data| {
            if data[0] == STACK && tf.ret() == 7 {
                s.fetch_add(1, Ordering::SeqCst);
            }
        })
        .register()
        .expect("register");
    let tf = enter(entry);
    let back = tf.x[RA];
    assert!(
        os().slot_area().contains(&back),
        "ra {back:#x} is no call entry in a stub"
    );
    assert_eq!(h.in_flight(), 1);
    let (to, tf) = ret(back, 7);
    assert_eq!((to, tf.sepc, tf.x[RA]), (CALLER, CALLER, CALLER));
    assert_eq!((get(&seen), h.in_flight(), h.hits()), (1, 0, 1));
    h.unregister().expect("unregister");
}

/// A call in flight keeps its unregistered probe and stub: the return
/// still reaches the caller (without the handler), and the stub is freed
/// only after it.
#[test]
fn a_call_in_flight_outlives_unregister() {
    let _g = exclusive();
    let entry = os().addr("retprobe", 0);
    let seen = counter();
    let s = seen.clone();
    let h = Kprobe::function(entry)
        .ret(move |_, _| {
            s.fetch_add(1, Ordering::SeqCst);
        })
        .register()
        .expect("register");
    let back = enter(entry).x[RA];
    // The whole stub: header (probe pointer) and every call's entry.
    let whole = stub_of(back)..stub_of(back) + ret_stub_size(h.maxactive());
    let code = os().bytes(whole.start, whole.len());
    unregister_id(h.id()).expect("unregister");
    assert_eq!((h.in_flight(), h.is_registered()), (1, false));
    // Another probe's registration may not take the stub meanwhile.
    let other = Kprobe::function(entry).register().expect("register again");
    let other_back = enter(entry).x[RA];
    assert_ne!(other_back, back);
    assert_eq!(
        os().bytes(whole.start, whole.len()),
        code,
        "the zombie's stub was reused"
    );
    let (to, _) = ret(other_back, 0);
    assert_eq!(to, CALLER);
    let (to, _) = ret(back, 0);
    assert_eq!((to, get(&seen), h.in_flight()), (CALLER, 0, 0));
    other.unregister().expect("unregister the other");
}

/// A return probe at `retprobe` unregistered with one call in flight
/// (returning to `back`, with `sp` = `STACK`): (entry, handle, back).
fn zombie_with_a_call() -> (usize, crate::ProbeHandle, usize) {
    let entry = os().addr("retprobe", 0);
    let h = Kprobe::function(entry).register().expect("register");
    let back = enter(entry).x[RA];
    unregister_id(h.id()).expect("unregister");
    assert_eq!(h.in_flight(), 1, "a zombie with its call in flight");
    (entry, h, back)
}

/// A frame that never returns (its task exited) is reclaimed; an
/// unregistered probe whose last call it was goes with it, stub and all.
#[test]
fn reclaimed_last_call_frees_the_zombie_stub() {
    let _g = exclusive();
    let (entry, h, back) = zombie_with_a_call();
    // SAFETY: the played call never returns; no handler is running.
    unsafe {
        assert_eq!(crate::reclaim_stack(STACK + 0x100..STACK + 0x200), 0);
        assert_eq!(crate::reclaim_stack(STACK - 0x100..STACK + 0x100), 1);
    }
    assert_eq!(h.in_flight(), 0);
    // The zombie's stub is free again: the next return probe gets it.
    let other = Kprobe::function(entry).register().expect("register again");
    assert_eq!(enter(entry).x[RA], back);
    let (to, _) = ret(back, 0);
    assert_eq!(to, CALLER);
    other.unregister().expect("unregister the other");
}

/// A return frees its call before its handler runs and reads the probe
/// until it leaves the hit path: freeing an unregistered probe whose last
/// call is gone waits for every hart inside (here a fake hart that
/// entered, as such a return would have, before the call went).
#[test]
fn a_zombie_is_freed_only_after_harts_inside_left() {
    let _g = exclusive();
    let (entry, h, back) = zombie_with_a_call();
    let (inside, leave) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let (i, l) = (inside.clone(), leave.clone());
    let hart = std::thread::spawn(move || {
        let hart = crate::global::get().unwrap().hart();
        let nested = hart.enter();
        i.store(true, Ordering::SeqCst);
        while !l.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        hart.leave(nested);
    });
    wait_for("the fake hart inside", || inside.load(Ordering::SeqCst));
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    let reaper = std::thread::spawn(move || {
        // SAFETY: the played call never returns; no handler is running.
        let n = unsafe { crate::reclaim_stack(STACK - 0x100..STACK + 0x100) };
        d.store(true, Ordering::SeqCst);
        n
    });
    wait_for("the call released", || h.in_flight() == 0);
    // (The reaper holds the registry meanwhile: nothing else registers.)
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        !done.load(Ordering::SeqCst),
        "freed while a hart was inside"
    );
    leave.store(true, Ordering::SeqCst);
    hart.join().unwrap();
    assert_eq!(reaper.join().unwrap(), 1);
    // Freed now: the next return probe gets the stub.
    let other = Kprobe::function(entry).register().expect("register again");
    assert_eq!(enter(entry).x[RA], back);
    let (to, _) = ret(back, 0);
    assert_eq!(to, CALLER);
    other.unregister().expect("unregister the other");
}

/// `unregister` returns once no hart can be in the probe: a return that
/// comes in while it waits for another hart must not run the return
/// handler after `unregister` has returned.
#[test]
fn no_return_handler_runs_after_unregister_returned() {
    let _g = exclusive();
    let entry = os().addr("retprobe", 0);
    let block_at = os().addr("retprobe", off::ADDI);
    let unregistered = Arc::new(AtomicBool::new(false));
    let late = counter();
    let post_started = Arc::new(AtomicBool::new(false));
    let (u, l, ps) = (unregistered.clone(), late.clone(), post_started.clone());
    let r = Kprobe::function(entry)
        .ret(move |_, _| {
            ps.store(true, Ordering::SeqCst);
            // Does `unregister` return while this handler still runs?
            let t0 = Instant::now();
            while !u.load(Ordering::SeqCst) && t0.elapsed() < Duration::from_secs(2) {
                std::thread::yield_now();
            }
            if u.load(Ordering::SeqCst) {
                l.fetch_add(1, Ordering::SeqCst);
            }
        })
        .register()
        .expect("register the return probe");
    let (blocked, release) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let (b, rl) = (blocked.clone(), release.clone());
    let blocker = Kprobe::at(block_at)
        .pre(move |_| {
            b.store(true, Ordering::SeqCst);
            while !rl.load(Ordering::SeqCst) {
                std::thread::yield_now();
            }
        })
        .register()
        .expect("register the blocking probe");
    let back = Arc::new(AtomicUsize::new(0));
    let go = Arc::new(AtomicBool::new(false));
    let returned = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|s| {
        // The returning hart gets a lower index than the blocked one:
        // `synchronize` has looked at it before it waits for the other.
        let (st, g, rd) = (back.clone(), go.clone(), returned.clone());
        s.spawn(move || {
            os().hart_id();
            let tf = enter(entry);
            st.store(tf.x[RA], Ordering::SeqCst);
            wait_for("go", || g.load(Ordering::SeqCst));
            let (to, _) = ret(tf.x[RA], 0);
            rd.store(to, Ordering::SeqCst);
        });
        wait_for("the call's entry", || back.load(Ordering::SeqCst) != 0);
        s.spawn(|| {
            let mut tf = frame(block_at);
            hit(&mut tf);
        });
        wait_for("the blocked hart", || blocked.load(Ordering::SeqCst));
        let relaxes = os().relaxes.load(Ordering::SeqCst);
        let u = unregistered.clone();
        s.spawn(move || {
            r.unregister().expect("unregister");
            u.store(true, Ordering::SeqCst);
        });
        // The unregistering hart now waits for the blocked one.
        wait_for("unregister waiting", || {
            os().relaxes.load(Ordering::SeqCst) > relaxes
        });
        go.store(true, Ordering::SeqCst);
        wait_for("the return", || {
            post_started.load(Ordering::SeqCst) || returned.load(Ordering::SeqCst) != 0
        });
        release.store(true, Ordering::SeqCst);
    });
    blocker.unregister().expect("unregister the blocker");
    assert_eq!(returned.load(Ordering::SeqCst), CALLER);
    assert_eq!(get(&late), 0, "a late return handler");
}

/// Calls in slots of the second mask word return through their own stub
/// entries (index >= 64), and the whole 32 + 4 * maxactive stub is freed
/// with the probe.
#[test]
fn calls_past_the_first_mask_word_and_stub_freed() {
    let _g = exclusive();
    let entry = os().addr("retprobe", 0);
    let before = crate::memory_stats().slot_bytes;
    let seen = Arc::new(std::sync::Mutex::new(std::vec::Vec::new()));
    let s = seen.clone();
    let h = Kprobe::function(entry)
        .entry(|tf, d| d[0] = tf.x[A0])
        .ret(move |_, d| s.lock().unwrap().push(d[0]))
        .maxactive(70)
        .register()
        .expect("register");
    let with = crate::memory_stats().slot_bytes;
    assert!(
        with - before >= (32 + 4 * 70usize).div_ceil(8) * 8,
        "stub of 70 entries"
    );
    let mut ras = std::vec::Vec::new();
    for i in 0..70 {
        let mut tf = frame(entry);
        tf.x[RA] = CALLER + 4 * i;
        tf.x[SP] = STACK;
        tf.x[A0] = i;
        hit(&mut tf);
        ras.push(tf.x[RA]);
    }
    assert_eq!(h.in_flight(), 70);
    // One more misses.
    let t = enter(entry);
    assert_eq!((t.x[RA], h.missed()), (CALLER, 1));
    for (i, ra) in ras.iter().enumerate().rev() {
        let (to, _) = ret(*ra, 0);
        assert_eq!(to, CALLER + 4 * i, "slot {i}");
    }
    assert_eq!(
        *seen.lock().unwrap(),
        (0..70).rev().collect::<std::vec::Vec<_>>()
    );
    h.unregister().expect("unregister");
    assert_eq!(crate::memory_stats().slot_bytes, before);
}

/// `maxactive` out of 1..=MAX_ACTIVE is refused with its reason, and the
/// text and slot area stay as they were.
#[test]
fn maxactive_out_of_range_is_refused() {
    let _g = exclusive();
    let entry = os().addr("retprobe", 0);
    let before = os().snapshot();
    let max = crate::MAX_ACTIVE;
    for n in [0, max + 1, usize::MAX] {
        let e = Kprobe::function(entry).maxactive(n).register().err();
        assert_eq!(
            e,
            Some(crate::Error::BadMaxactive { requested: n, max }),
            "maxactive {n}"
        );
    }
    assert!(
        os().snapshot() == before,
        "a refused probe changed text or slots"
    );
    // Within the bound (the fake slot area has no room for `max`).
    let h = Kprobe::function(entry)
        .maxactive(300)
        .register()
        .expect("300");
    assert_eq!(h.maxactive(), 300);
    h.unregister().expect("unregister");
}

/// A return probe's pool of calls in flight counts in the bookkeeping: a
/// cache line per call, and a pair of mask words per 64 calls.
#[test]
fn call_pools_count_in_the_bookkeeping() {
    let _g = exclusive();
    let entry = os().addr("retprobe", 0);
    let before = crate::memory_stats().bookkeeping_bytes;
    let grown = |maxactive: usize| {
        let h = Kprobe::function(entry)
            .maxactive(maxactive)
            .register()
            .expect("register");
        let bytes = crate::memory_stats().bookkeeping_bytes - before;
        h.unregister().expect("unregister");
        bytes
    };
    let (one, many) = (grown(1), grown(129));
    assert_eq!(many - one, 128 * 64 + 2 * 16);
}
