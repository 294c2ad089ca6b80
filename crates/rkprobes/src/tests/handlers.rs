//! What handlers can do: change registers, skip the instruction (idiomatic
//! `PreAction::Skip` or a seed handler moving the pc), see simulated
//! results; and what they cannot: unregister or register probes.

use super::fake_os::os;
use super::fake_text::off;
use super::harness::*;
use crate::{
    kprobe_register, kprobe_unregister, unregister_id, Error, Kprobe, PreAction, ProbeType,
    SeedHandler, TrapFrame,
};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use std::sync::Mutex;

const A0: usize = 10;
const A1: usize = 11;
const RA: usize = 1;

/// Records `(sepc, a0, a1, ra)` each time it runs.
type Seen = Arc<Mutex<Vec<[usize; 4]>>>;

fn record(seen: &Seen, tf: &TrapFrame) {
    seen.lock()
        .unwrap()
        .push([tf.sepc, tf.x[A0], tf.x[A1], tf.x[RA]]);
}

fn taken(seen: &Seen) -> Vec<[usize; 4]> {
    core::mem::take(&mut *seen.lock().unwrap())
}

#[test]
fn pre_handler_register_changes_take_effect() {
    let _g = shared();
    let f = os().func("pre_regs");
    let seen: Seen = Default::default();

    // Out of line: `addi a0, a0, 5` runs on the handler's a0.
    let addi = f.addr + off::ADDI;
    let s = seen.clone();
    let h1 = Kprobe::at(addi)
        .pre(|tf| tf.x[A0] = 10)
        .post(move |tf| record(&s, tf))
        .register()
        .unwrap();
    let mut tf = frame(addi);
    tf.x[A0] = 1;
    assert!(matches!(hit(&mut tf), Path::Stepped { .. }));
    assert_eq!((tf.sepc, tf.x[A0]), (addi + 4, 15));
    assert_eq!(taken(&seen), [[addi + 4, 15, 0, 0]]);

    // Simulated: `beq a0, a1, +8` is taken because the handler made a0 == a1.
    let beq = f.addr + off::BEQ;
    let s = seen.clone();
    let h2 = Kprobe::at(beq)
        .pre(|tf| tf.x[A0] = tf.x[A1])
        .post(move |tf| record(&s, tf))
        .register()
        .unwrap();
    let mut tf = frame(beq);
    tf.x[A0] = 1;
    tf.x[A1] = 2;
    assert_eq!(hit(&mut tf), Path::Resumed);
    assert_eq!(tf.sepc, beq + 8);
    assert_eq!(taken(&seen), [[beq + 8, 2, 2, 0]]);

    h1.unregister().unwrap();
    h2.unregister().unwrap();
}

#[test]
fn simulated_instructions_finish_in_one_trap() {
    let _g = shared();
    let f = os().func("simulated");
    let seen: Seen = Default::default();
    let handles: Vec<_> = [off::JAL, off::C_BEQZ, off::AUIPC, off::BEQ, off::C_RET]
        .iter()
        .map(|o| {
            let s = seen.clone();
            Kprobe::at(f.addr + o)
                .post(move |tf| record(&s, tf))
                .register()
                .unwrap()
        })
        .collect();
    // (offset, a0, a1, ra) -> (pc, a0, ra) afterwards.
    let ra = 0x8000_1234;
    let cases = [
        (
            off::JAL,
            0,
            0,
            0,
            (f.addr + off::JAL + 16, 0, f.addr + off::JAL + 4),
        ),
        (off::C_BEQZ, 0, 0, ra, (f.addr + off::C_BEQZ + 6, 0, ra)),
        (off::C_BEQZ, 3, 0, ra, (f.addr + off::C_BEQZ + 2, 3, ra)),
        (
            off::AUIPC,
            3,
            0,
            ra,
            (f.addr + off::AUIPC + 4, f.addr + off::AUIPC + 0x1000, ra),
        ),
        (off::BEQ, 7, 7, ra, (f.addr + off::BEQ + 8, 7, ra)),
        (off::BEQ, 7, 8, ra, (f.addr + off::BEQ + 4, 7, ra)),
        (off::C_RET, 7, 8, ra, (ra, 7, ra)),
    ];
    for (o, a0, a1, ra0, (pc, a0_after, ra_after)) in cases {
        let mut tf = frame(f.addr + o);
        tf.x[A0] = a0;
        tf.x[A1] = a1;
        tf.x[RA] = ra0;
        assert_eq!(hit(&mut tf), Path::Resumed, "+{o:#x}");
        assert_eq!(
            (tf.sepc, tf.x[A0], tf.x[RA]),
            (pc, a0_after, ra_after),
            "+{o:#x}"
        );
        assert_eq!(
            taken(&seen),
            [[pc, a0_after, a1, ra_after]],
            "post of +{o:#x}"
        );
    }
    let hits: Vec<u64> = handles.iter().map(|h| h.hits()).collect();
    assert_eq!(hits, [1, 2, 1, 2, 1]);
    for h in handles {
        h.unregister().unwrap();
    }
}

#[test]
fn skip_resumes_without_the_instruction_or_post_handlers() {
    let _g = shared();
    let f = os().func("skip");
    let post = counter();
    let p = post.clone();
    let target = 0x8020_0000usize;

    // Out of line, pc left alone: resume after the instruction, no slot.
    let addi = f.addr + off::ADDI;
    let p1 = p.clone();
    let h1 = Kprobe::at(addi)
        .pre(|_| PreAction::Skip)
        .post(move |_| {
            p1.fetch_add(1, Ordering::SeqCst);
        })
        .register()
        .unwrap();
    let mut tf = frame(addi);
    tf.x[A0] = 1;
    assert_eq!(hit(&mut tf), Path::Resumed);
    assert_eq!((tf.sepc, tf.x[A0]), (addi + 4, 1));
    assert_eq!(h1.hits(), 1);

    // Simulated, pc set by the handler: resume there, `jal` not run.
    let jal = f.addr + off::JAL;
    let h2 = Kprobe::at(jal)
        .pre(move |tf| {
            tf.sepc = target;
            PreAction::Skip
        })
        .post(move |_| {
            p.fetch_add(1, Ordering::SeqCst);
        })
        .register()
        .unwrap();
    let mut tf = frame(jal);
    assert_eq!(hit(&mut tf), Path::Resumed);
    assert_eq!((tf.sepc, tf.x[RA]), (target, 0));
    assert_eq!(get(&post), 0, "post handlers ran after a skip");

    h1.unregister().unwrap();
    h2.unregister().unwrap();
}

#[test]
fn seed_handler_that_moves_the_pc_skips() {
    let _g = shared();
    let addr = os().addr("seed_skip", off::ADDI);
    let target = 0x8030_0000usize;
    let redirect = Arc::new(core::sync::atomic::AtomicBool::new(false));
    let (pre_runs, post_runs) = (counter(), counter());
    let (r, pr, po) = (redirect.clone(), pre_runs.clone(), post_runs.clone());
    let pre: SeedHandler = Arc::new(crate::Mutex::new(move |tf: &mut TrapFrame| {
        pr.fetch_add(1, Ordering::SeqCst);
        if r.load(Ordering::SeqCst) {
            tf.sepc = target;
        }
    }));
    let post: SeedHandler = Arc::new(crate::Mutex::new(move |_: &mut TrapFrame| {
        po.fetch_add(1, Ordering::SeqCst);
    }));
    assert_eq!(kprobe_register(addr, pre, Some(post), ProbeType::Insn), 0);

    let mut tf = frame(addr);
    tf.x[A0] = 1;
    assert!(matches!(hit(&mut tf), Path::Stepped { .. }));
    assert_eq!((tf.sepc, tf.x[A0]), (addr + 4, 6));
    assert_eq!((get(&pre_runs), get(&post_runs)), (1, 1));

    redirect.store(true, Ordering::SeqCst);
    let mut tf = frame(addr);
    tf.x[A0] = 1;
    assert_eq!(hit(&mut tf), Path::Resumed);
    assert_eq!((tf.sepc, tf.x[A0]), (target, 1));
    assert_eq!((get(&pre_runs), get(&post_runs)), (2, 1));

    assert_eq!(kprobe_unregister(addr), 0);
}

#[test]
fn handlers_cannot_unregister_or_register() {
    let _g = shared();
    let f = os().func("in_handler");
    let other = Kprobe::at(f.addr + off::ADDI_ZERO).register().unwrap();
    let other_id = other.id();
    let other_addr = other.addr();
    let results: Arc<Mutex<Vec<Result<(), Error>>>> = Default::default();
    let errnos: Arc<Mutex<Vec<isize>>> = Default::default();
    let (r1, r2, e1) = (results.clone(), results.clone(), errnos.clone());
    let free = f.addr + off::C_MV;
    let h = Kprobe::at(f.addr + off::ADDI)
        .pre(move |_| {
            let mut r = r1.lock().unwrap();
            r.push(unregister_id(other_id));
            r.push(Kprobe::at(free).register().map(|_| ()));
            e1.lock().unwrap().push(kprobe_unregister(other_addr));
        })
        .post(move |_| r2.lock().unwrap().push(unregister_id(other_id)))
        .register()
        .unwrap();
    let mut tf = frame(h.addr());
    assert!(matches!(hit(&mut tf), Path::Stepped { .. }));
    assert_eq!(*results.lock().unwrap(), [Err(Error::InHandler); 3]);
    assert_eq!(*errnos.lock().unwrap(), [-35]);
    assert!(other.is_registered());
    assert_eq!(os().bytes(free, 2), os().pristine(free, 2));
    assert_eq!(os().bytes(other_addr, 4), [0x73, 0x00, 0x10, 0x00]);
    h.unregister().unwrap();
    other.unregister().unwrap();
}

/// A handler that unregisters while another hart holds the registry and
/// waits for the handler's hart to leave its probe must get `InHandler`,
/// not wait for the lock (a deadlock).
#[test]
fn handler_unregister_while_another_hart_removes() {
    use crate::Error;
    use std::sync::mpsc;
    use std::time::Duration;
    let _g = exclusive();
    let f = os().func("in_handler");
    let victim = Kprobe::at(f.addr + off::C_MV).register().unwrap();
    let victim_id = victim.id();
    let other = Kprobe::at(f.addr + off::ADDI_ZERO).register().unwrap();
    let other_id = other.id();
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel::<Result<(), Error>>();
    let (started_tx, done_tx) = (Mutex::new(started_tx), Mutex::new(done_tx));
    let h = Kprobe::at(f.addr + off::ADDI)
        .pre(move |_| {
            let relaxes = os().relaxes.load(Ordering::SeqCst);
            started_tx.lock().unwrap().send(()).unwrap();
            while os().relaxes.load(Ordering::SeqCst) < relaxes + 10 {
                std::thread::yield_now(); // until the remover waits for us
            }
            let _ = done_tx.lock().unwrap().send(crate::unregister_id(other_id));
        })
        .register()
        .unwrap();
    let addr = h.addr();
    let hitter = std::thread::spawn(move || try_hit(&mut frame(addr)));
    started_rx.recv().unwrap();
    let remover = std::thread::spawn(move || crate::unregister_id(victim_id));
    let r = done_rx.recv_timeout(Duration::from_secs(5));
    assert_eq!(
        r,
        Ok(Err(Error::InHandler)),
        "handler's unregister deadlocked"
    );
    assert_eq!(remover.join().unwrap(), Ok(()));
    assert!(hitter.join().unwrap().is_ok());
    h.unregister().unwrap();
    other.unregister().unwrap();
}
