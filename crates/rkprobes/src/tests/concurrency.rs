//! Harts hitting probes while another hart registers and removes probes at
//! the same addresses: every hit must see a whole point (right slot
//! contents, right resume pc, right result), every handler run must be a
//! counted hit, and everything must be freed at the end.

use super::fake_os::os;
use super::fake_text::off;
use super::harness::*;
use crate::{memory_stats, unregister_id, Kprobe, ProbeHandle};
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

const A0: usize = 10;
const RA: usize = 1;
const HITTERS: usize = 3;
const CYCLES: usize = 300;

/// Handler runs of one probe, and handler runs that saw a wrong frame.
#[derive(Default)]
struct Runs {
    pre: AtomicUsize,
    post: AtomicUsize,
    wrong: AtomicUsize,
}

/// A probe at `addr` whose handlers count runs and check the pc they see.
fn counted(addr: usize, resume: usize) -> (ProbeHandle, Arc<Runs>) {
    let runs = Arc::new(Runs::default());
    let (r1, r2) = (runs.clone(), runs.clone());
    let h = Kprobe::at(addr)
        .pre(move |tf| {
            r1.pre.fetch_add(1, Ordering::SeqCst);
            if tf.sepc != addr {
                r1.wrong.fetch_add(1, Ordering::SeqCst);
            }
        })
        .post(move |tf| {
            r2.post.fetch_add(1, Ordering::SeqCst);
            if tf.sepc != resume {
                r2.wrong.fetch_add(1, Ordering::SeqCst);
            }
        })
        .register()
        .expect("register");
    (h, runs)
}

/// Unregisters and checks that handler runs match the counted hits.
fn retire(h: ProbeHandle, runs: &Runs) -> Result<u64, String> {
    let id = h.id();
    unregister_id(id).map_err(|e| format!("unregister: {e}"))?;
    // No hart is in the probe any more: the counts are final.
    let (hits, pre, post) = (
        h.hits() as usize,
        runs.pre.load(Ordering::SeqCst),
        runs.post.load(Ordering::SeqCst),
    );
    if hits != pre || hits != post || runs.wrong.load(Ordering::SeqCst) != 0 {
        return Err(format!(
            "probe {id}: {hits} hits, {pre} pre, {post} post, {} wrong frames",
            runs.wrong.load(Ordering::SeqCst)
        ));
    }
    Ok(h.hits())
}

/// One hit at `addr` and a check of its outcome. The address may have lost
/// its probe (the race path): the library runs the original instruction or
/// resumes at `addr`, where the hart fetches again whatever is there now.
fn hit_and_check(addr: usize) -> Result<(), String> {
    let f = os().func("conc");
    let mut tf = frame(addr);
    tf.x[A0] = 100;
    let len = os().insn_len(addr);
    let mut path = try_hit(&mut tf)?;
    let mut fetches = 0;
    while path == Path::Resumed && tf.sepc == addr {
        fetches += 1;
        if fetches > 1000 {
            return Err(format!("+{:#x} resumed at itself for ever", addr - f.addr));
        }
        let now = os().bytes(addr, len);
        if now == os().pristine(addr, len) {
            emulate(&now, &mut tf)?;
            tf.sepc = addr + len;
        } else {
            path = try_hit(&mut tf)?; // a breakpoint (maybe half written)
        }
    }
    let got = (tf.sepc, tf.x[A0], tf.x[RA]);
    let want = match addr - f.addr {
        off::C_LI => (addr + 2, 1, 0),
        off::ADDI => (addr + 4, 105, 0),
        off::JAL => (addr + 16, 100, addr + 4),
        off::ADDI_ZERO => (addr + 4, 1, 0),
        o => unreachable!("offset {o}"),
    };
    if got != want {
        return Err(format!(
            "+{:#x} {path:?}: {got:x?}, not {want:x?}",
            addr - f.addr
        ));
    }
    Ok(())
}

#[test]
fn hits_race_with_registration() {
    let _g = exclusive(); // memory statistics are global
    let f = os().func("conc");
    let (c_li, addi, jal) = (f.addr + off::C_LI, f.addr + off::ADDI, f.addr + off::JAL);
    let li = f.addr + off::ADDI_ZERO;
    let before = memory_stats();
    // Always probed: the 32-bit out-of-line `addi` at 2 mod 4 and the
    // simulated `jal`. The `c.li` and `li` points come and go with their
    // slots, created in alternating order so that each reuses the other's
    // slot: a slot freed too early shows up as the wrong instruction.
    let (pa, ra) = counted(addi, addi + 4);
    let (pj, rj) = counted(jal, jal + 16);

    let stop = Arc::new(AtomicBool::new(false));
    let hitters: Vec<_> = (0..HITTERS)
        .map(|i| {
            let stop = stop.clone();
            std::thread::spawn(move || -> Result<usize, String> {
                let order = [
                    [c_li, addi, jal, li],
                    [jal, li, c_li, addi],
                    [li, addi, jal, c_li],
                ][i];
                let mut rounds = 0;
                while !stop.load(Ordering::SeqCst) {
                    for &a in &order {
                        hit_and_check(a)?;
                    }
                    rounds += 1;
                }
                Ok(rounds)
            })
        })
        .collect();

    let churn = std::thread::spawn(move || -> Result<u64, String> {
        let mut hits = 0;
        for cycle in 0..CYCLES {
            let extra_a = counted(addi, addi + 4);
            let extra_j = counted(jal, jal + 16);
            let (x, y) = if cycle % 2 == 0 {
                (counted(c_li, c_li + 2), counted(li, li + 4))
            } else {
                let y = counted(li, li + 4);
                (counted(c_li, c_li + 2), y)
            };
            for (h, runs) in [x, extra_j, y, extra_a] {
                hits += retire(h, &runs)?;
            }
        }
        Ok(hits)
    });
    let churn = churn.join().expect("churn thread panicked");
    stop.store(true, Ordering::SeqCst);
    let hit_calls: Vec<_> = hitters
        .into_iter()
        .map(|t| t.join().expect("hitter panicked"))
        .collect();
    churn.unwrap();
    let rounds: Vec<usize> = hit_calls
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("{e}")))
        .collect();
    assert!(
        rounds.iter().all(|&r| r > 0),
        "a hitter never ran: {rounds:?}"
    );
    let rounds: usize = rounds.iter().sum();

    // Every round hit each permanent probe exactly once.
    assert_eq!(retire(pa, &ra).unwrap(), rounds as u64);
    assert_eq!(retire(pj, &rj).unwrap(), rounds as u64);
    assert_eq!(memory_stats(), before);
    assert_eq!(os().bytes(f.addr, f.size), os().pristine(f.addr, f.size));
}
