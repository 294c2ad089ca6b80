//! kprobes under a real kernel: every instruction class, handlers that
//! change registers or skip, several probes per address, nesting, faults,
//! bad input, no allocation on the hit path, and SMP churn.

use super::asm_case::asm_case;
use super::{Test, TestResult};
use crate::mm::{self, heap};
use crate::{arch, check, check_eq, smp, trap};
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};
use rkprobes::{Error, Kprobe, PreAction, ProbeType, TrapFrame};

type AsmFn = unsafe extern "C" fn(usize, usize) -> usize;

/// Inputs a case is called with (a0, a1).
#[derive(Clone, Copy)]
pub enum Inputs {
    Any,
    Compare,
    Alu,
    /// a0 points to a fresh 32-byte buffer, compared after the call too.
    Memory,
    Float,
}

pub struct Case {
    pub name: &'static str,
    pub func: AsmFn,
    pub at: usize,
    /// a0 right after the probed instruction is the function's result.
    pub post_a0_is_result: bool,
    pub inputs: Inputs,
}

macro_rules! case {
    ($name:literal, $func:ident, $at:ident, $post:expr, $inputs:expr) => {
        super::kprobes::Case {
            name: $name,
            func: super::insn_cases::$func,
            at: (&raw const super::insn_cases::$at) as usize,
            post_a0_is_result: $post,
            inputs: $inputs,
        }
    };
}
pub(crate) use case;

asm_case!(kt_csr, kt_csr_at, "", "csrr a0, sstatus", "ret");
asm_case!(
    kt_fault,
    kt_fault_at,
    "",
    "ld a0, 0(a0)",
    "ret\n.globl kt_fault_recover\nkt_fault_recover:\nli a0, 0x77\nret"
);
extern "C" {
    static kt_fault_recover: u8;
}

pub fn tests() -> Vec<Test> {
    let mut tests: Vec<Test> = super::insn_cases::cases()
        .into_iter()
        .map(|c| Test::new(&format!("kprobes::insn::{}", c.name), move || run_case(&c)))
        .collect();
    // The same cases as breakpoint probes: what a 32-bit instruction gets
    // when jump probes are off or out of reach.
    tests.extend(super::insn_cases::cases().into_iter().map(|c| {
        Test::new(&format!("kprobes::insn_bp::{}", c.name), move || {
            super::with_breakpoints(|| run_case(&c))
        })
    }));
    tests.extend([
        Test::new(
            "kprobes::pre_handler_changes_registers",
            pre_changes_registers,
        ),
        Test::new("kprobes::pre_handler_skips_instruction", pre_skips),
        Test::new("kprobes::seed_api_register_and_unregister", seed_api),
        Test::new("kprobes::several_probes_share_one_address", shared_address),
        Test::new("kprobes::disabled_probe_runs_no_handler", disabled_probe),
        Test::new("kprobes::nested_hit_counts_miss_and_executes", nested_hit),
        Test::new("kprobes::fault_in_slot_reported_at_probe", fault_in_slot),
        Test::new("kprobes::bad_input_typed_errors_text_unchanged", bad_input),
        Test::new("kprobes::register_by_symbol_and_list", by_symbol_and_list),
        Test::new("kprobes::hit_path_allocates_nothing", no_alloc_on_hit),
        Test::new("kprobes::smp_register_unregister_under_load", smp_churn),
    ]);
    tests
}

fn f64s(a: f64, b: f64) -> (usize, usize) {
    (a.to_bits() as usize, b.to_bits() as usize)
}

fn inputs(kind: Inputs) -> Vec<(usize, usize)> {
    match kind {
        Inputs::Any => vec![(1, 2), (3, 4)],
        Inputs::Compare => vec![
            (1, 1),
            (1, 2),
            (2, 1),
            (usize::MAX, 1),
            (1, usize::MAX),
            (0, 0),
            (0, 5),
        ],
        Inputs::Alu => vec![
            (5, 7),
            (usize::MAX, 3),
            (1 << 63, 2),
            (123_456_789, 1000),
            (9, 0),
        ],
        Inputs::Memory => vec![(0, 0x55), (0, usize::MAX), (0, 0x1234_5678_9abc_def0)],
        Inputs::Float => vec![
            f64s(1.5, 2.25),
            f64s(-3.0, 0.5),
            f64s(1e300, 1e10),
            f64s(2.0, -0.0),
        ],
    }
}

const BUFFER: [u64; 4] = [
    0x1111_2222_3333_4444,
    0x8877_6655_4433_2211,
    0xdead_beef_cafe_f00d,
    7,
];

/// Calls `func` on fresh memory; returns (result, memory after).
fn call(case: &Case, a0: usize, a1: usize) -> (usize, [u64; 4]) {
    let mut buf = BUFFER;
    let a0 = match case.inputs {
        Inputs::Memory => buf.as_mut_ptr() as usize,
        _ => a0,
    };
    // SAFETY: the asm functions follow the C ABI; memory cases only touch
    // the 32-byte buffer a0 points to.
    let r = unsafe { (case.func)(a0, a1) };
    let r = if matches!(case.inputs, Inputs::Memory) && r == a0 {
        0
    } else {
        r
    };
    (r, buf)
}

fn text_bytes(addr: usize, n: usize) -> Vec<u8> {
    // SAFETY: kernel text is mapped readable.
    (0..n)
        .map(|i| unsafe { ((addr + i) as *const u8).read_volatile() })
        .collect()
}

static PRE_PC: AtomicUsize = AtomicUsize::new(0);
static PRE_A0: AtomicUsize = AtomicUsize::new(0);
static PRE_HITS: AtomicUsize = AtomicUsize::new(0);
static POST_PC: AtomicUsize = AtomicUsize::new(0);
static POST_A0: AtomicUsize = AtomicUsize::new(0);
static POST_HITS: AtomicUsize = AtomicUsize::new(0);

fn record_pre(tf: &mut TrapFrame) {
    PRE_PC.store(tf.sepc, SeqCst);
    PRE_A0.store(tf.arg(0), SeqCst);
    PRE_HITS.fetch_add(1, SeqCst);
}

fn record_post(tf: &mut TrapFrame) {
    POST_PC.store(tf.sepc, SeqCst);
    POST_A0.store(tf.ret(), SeqCst);
    POST_HITS.fetch_add(1, SeqCst);
}

fn run_case(case: &Case) -> TestResult {
    let original = text_bytes(case.at, 4);
    let args = inputs(case.inputs);
    let native: Vec<_> = args.iter().map(|&(a, b)| call(case, a, b)).collect();
    let detours_free = rkprobes::memory_stats().detours_free;
    let probe = Kprobe::at(case.at)
        .pre(record_pre)
        .post(record_post)
        .register()
        .map_err(|e| format!("register at {:#x}: {e}", case.at))?;
    check!(text_bytes(case.at, 2) != original[..2], "probe not written");
    // A 32-bit instruction gets a jump probe unless they are off or the
    // detour area was used up (kernel text is in reach of the slot area);
    // a compressed one only if its jump covers the next instruction, whose
    // first parcel it then rewrites.
    let word = original[0] & 3 == 3;
    let info = rkprobes::probes().into_iter().find(|p| p.addr == case.at);
    let (jump, covers) = info.map_or((false, None), |p| (p.jump, p.covers));
    check_eq!(
        jump,
        rkprobes::jump_probes() && (word || covers.is_some()) && detours_free > 0
    );
    check!(
        !word || covers.is_none(),
        "a 32-bit instruction covers another"
    );
    if let Some(next) = covers {
        check_eq!(next, case.at + 2);
        check!(
            text_bytes(next, 2) != original[2..],
            "second parcel not written"
        );
    }
    let mut outcome = Ok(());
    for (i, (&(a, b), expected)) in args.iter().zip(&native).enumerate() {
        let (pre0, post0) = (PRE_HITS.load(SeqCst), POST_HITS.load(SeqCst));
        let got = call(case, a, b);
        let result = (|| -> TestResult {
            check_eq!(got, *expected);
            check_eq!(PRE_HITS.load(SeqCst), pre0 + 1);
            check_eq!(POST_HITS.load(SeqCst), post0 + 1);
            check_eq!(PRE_PC.load(SeqCst), case.at);
            check!(
                POST_PC.load(SeqCst) != case.at,
                "post handler saw pc at the probe"
            );
            if case.post_a0_is_result {
                check_eq!(POST_A0.load(SeqCst), got.0);
            }
            Ok(())
        })();
        if let Err(e) = result {
            outcome = Err(format!("input #{i} ({a:#x}, {b:#x}): {e}"));
            break;
        }
    }
    let hits = probe.hits();
    probe.unregister().map_err(|e| format!("unregister: {e}"))?;
    outcome?;
    check_eq!(hits, args.len() as u64);
    check_eq!(text_bytes(case.at, 4), original);
    let after: Vec<_> = args.iter().map(|&(a, b)| call(case, a, b)).collect();
    check_eq!(after, native);
    Ok(())
}

fn add_at() -> usize {
    (&raw const super::insn_cases::kt_add_at) as usize
}

fn kt_add(a: usize, b: usize) -> usize {
    // SAFETY: C-ABI asm function without memory access.
    unsafe { super::insn_cases::kt_add(a, b) }
}

fn kt_xor(a: usize, b: usize) -> usize {
    // SAFETY: C-ABI asm function without memory access.
    unsafe { super::insn_cases::kt_xor(a, b) }
}

fn pre_changes_registers() -> TestResult {
    let p = Kprobe::at(add_at())
        .pre(|tf: &mut TrapFrame| tf.x[11] = 1000)
        .register()
        .map_err(|e| format!("{e}"))?;
    let r = kt_add(1, 2);
    p.unregister().map_err(|e| format!("{e}"))?;
    check_eq!(r, 1001);
    check_eq!(kt_add(1, 2), 3);
    Ok(())
}

fn pre_skips() -> TestResult {
    let p = Kprobe::at(add_at())
        .pre(|_: &mut TrapFrame| PreAction::Skip)
        .register()
        .map_err(|e| format!("{e}"))?;
    let skipped = kt_add(1, 2);
    p.unregister().map_err(|e| format!("{e}"))?;
    check_eq!(skipped, 1);
    // A pre handler that moves the pc resumes there.
    let p = Kprobe::at(add_at())
        .pre(|tf: &mut TrapFrame| {
            tf.sepc += 4;
            tf.x[10] = 99;
            PreAction::Skip
        })
        .register()
        .map_err(|e| format!("{e}"))?;
    let moved = kt_add(1, 2);
    p.unregister().map_err(|e| format!("{e}"))?;
    check_eq!(moved, 99);
    Ok(())
}

fn seed_api() -> TestResult {
    let calls = Arc::new(AtomicUsize::new(0));
    let (c1, c2) = (calls.clone(), calls.clone());
    let pre: rkprobes::SeedHandler = Arc::new(rkprobes::Mutex::new(move |tf: &mut TrapFrame| {
        c1.fetch_add(1, SeqCst);
        check_seed_pc(tf);
    }));
    let post: rkprobes::SeedHandler = Arc::new(rkprobes::Mutex::new(move |_: &mut TrapFrame| {
        c2.fetch_add(100, SeqCst);
    }));
    check_eq!(
        rkprobes::kprobe_register(add_at(), pre, Some(post), ProbeType::Insn),
        0
    );
    check_eq!(kt_add(2, 3), 5);
    check_eq!(calls.load(SeqCst), 101);
    check_eq!(rkprobes::kprobe_unregister(add_at()), 0);
    check_eq!(
        rkprobes::kprobe_unregister(add_at()),
        Error::NotRegistered.errno()
    );
    check_eq!(kt_add(2, 3), 5);
    check_eq!(calls.load(SeqCst), 101);
    Ok(())
}

fn check_seed_pc(tf: &TrapFrame) {
    PRE_PC.store(tf.sepc, SeqCst);
}

fn shared_address() -> TestResult {
    let (a, b) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (a2, b2) = (a.clone(), b.clone());
    let original = text_bytes(add_at(), 4);
    let pa = Kprobe::at(add_at())
        .pre(move |_: &mut TrapFrame| {
            a2.fetch_add(1, SeqCst);
        })
        .register();
    let pb = Kprobe::at(add_at())
        .post(move |_: &mut TrapFrame| {
            b2.fetch_add(1, SeqCst);
        })
        .register();
    let (pa, pb) = (
        pa.map_err(|e| format!("{e}"))?,
        pb.map_err(|e| format!("{e}"))?,
    );
    check_eq!(kt_add(1, 1), 2);
    check_eq!((a.load(SeqCst), b.load(SeqCst)), (1, 1));
    pa.unregister().map_err(|e| format!("{e}"))?;
    check_eq!(kt_add(1, 1), 2);
    check_eq!((a.load(SeqCst), b.load(SeqCst)), (1, 2));
    check!(
        text_bytes(add_at(), 4) != original,
        "breakpoint removed while a probe remains"
    );
    pb.unregister().map_err(|e| format!("{e}"))?;
    check_eq!(text_bytes(add_at(), 4), original);
    Ok(())
}

fn disabled_probe() -> TestResult {
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    let p = Kprobe::at(add_at())
        .pre(move |_: &mut TrapFrame| {
            n2.fetch_add(1, SeqCst);
        })
        .disabled()
        .register()
        .map_err(|e| format!("{e}"))?;
    check_eq!(kt_add(1, 2), 3);
    check_eq!(n.load(SeqCst), 0);
    p.enable();
    check_eq!(kt_add(1, 2), 3);
    check_eq!(n.load(SeqCst), 1);
    check_eq!(p.hits(), 1);
    p.unregister().map_err(|e| format!("{e}"))
}

fn nested_hit() -> TestResult {
    let xor_at = (&raw const super::insn_cases::kt_xor_at) as usize;
    let inner = Kprobe::at(xor_at)
        .pre(record_pre)
        .register()
        .map_err(|e| format!("{e}"))?;
    let inner_result = Arc::new(AtomicUsize::new(0));
    let r2 = inner_result.clone();
    let outer = Kprobe::at(add_at())
        .pre(move |_: &mut TrapFrame| r2.store(kt_xor(0b1100, 0b1010), SeqCst))
        .register()
        .map_err(|e| format!("{e}"))?;
    let r = kt_add(4, 5);
    let (outer_hits, inner_hits, inner_missed) = (outer.hits(), inner.hits(), inner.missed());
    outer.unregister().map_err(|e| format!("{e}"))?;
    inner.unregister().map_err(|e| format!("{e}"))?;
    check_eq!(r, 9);
    check_eq!(inner_result.load(SeqCst), 0b0110);
    check_eq!((outer_hits, inner_hits, inner_missed), (1, 0, 1));
    Ok(())
}

fn fault_in_slot() -> TestResult {
    let at = (&raw const kt_fault_at) as usize;
    let recover = (&raw const kt_fault_recover) as usize;
    let p = Kprobe::at(at).register().map_err(|e| format!("{e}"))?;
    let mut r = 0;
    // An address in the unmapped low half: the load faults in the slot.
    let reported = trap::expect_fault(recover, || {
        // SAFETY: the fault is expected and resumes at `kt_fault_recover`.
        r = unsafe { kt_fault(0x10, 0) };
    });
    p.unregister().map_err(|e| format!("{e}"))?;
    check_eq!(r, 0x77);
    check_eq!(reported, Some(at));
    // The hart left the probe cleanly: probes still work.
    check_eq!(kt_add(1, 2), 3);
    Ok(())
}

/// FNV-1a over kernel text (slots excluded).
pub(super) fn text_checksum() -> u64 {
    let (start, end) = (mm::sym(mm::stext), mm::sym(mm::skprobe_slots));
    (start..end)
        .step_by(8)
        .fold(0xcbf2_9ce4_8422_2325u64, |h, a| {
            // SAFETY: kernel text is mapped readable.
            let w = unsafe { (a as *const u64).read_volatile() };
            (h ^ w).wrapping_mul(0x100_0000_01b3)
        })
}

/// Marked never to be probed: the kernel's own extension of the blacklist.
#[inline(never)]
#[link_section = ".text.noprobe.kt_no_probe"]
fn kt_no_probe(x: usize) -> usize {
    core::hint::black_box(x) + 1
}

fn bad_input() -> TestResult {
    static DATA: u64 = 0;
    let before = text_checksum();
    let probes_before = rkprobes::probes().len();
    let at = add_at();
    let csr_at = (&raw const kt_csr_at) as usize;
    let trap_handler =
        crate::symbols::symbol_by_name("trap_handler").ok_or("no trap_handler symbol")?;
    let expect = |addr: usize, want: fn(&Error) -> bool| -> TestResult {
        match Kprobe::at(addr).register() {
            Ok(p) => {
                let _ = p.unregister();
                Err(format!("{addr:#x} was accepted"))
            }
            Err(e) if want(&e) => Ok(()),
            Err(e) => Err(format!("{addr:#x}: unexpected error {e:?}")),
        }
    };
    expect(at + 1, |e| matches!(e, Error::Misaligned { .. }))?;
    expect(at + 2, |e| {
        matches!(e, Error::NotInstructionBoundary { .. })
    })?;
    expect((&raw const DATA) as usize, |e| {
        matches!(e, Error::OutsideText { .. })
    })?;
    expect(mm::sym(mm::skprobe_slots), |e| {
        matches!(e, Error::OutsideText { .. })
    })?;
    let marked = kt_no_probe as *const () as usize;
    expect(marked, |e| matches!(e, Error::Blacklisted { .. }))?;
    expect(trap_handler.addr, |e| {
        matches!(e, Error::Blacklisted { .. })
    })?;
    expect(csr_at, |e| {
        matches!(
            e,
            Error::UnsupportedInstruction {
                mnemonic: "csrrs",
                ..
            }
        )
    })?;
    check_eq!(rkprobes::unregister_id(u64::MAX), Err(Error::NotRegistered));
    let p = Kprobe::at(at).register().map_err(|e| format!("{e}"))?;
    let id = p.id();
    p.unregister().map_err(|e| format!("{e}"))?;
    check_eq!(rkprobes::unregister_id(id), Err(Error::NotRegistered));
    check_eq!(
        rkprobes::kprobe_unregister(at),
        Error::NotRegistered.errno()
    );
    check_eq!(
        Kprobe::symbol("no::such::function").register().err(),
        Some(Error::UnknownSymbol)
    );
    check_eq!(kt_no_probe(1), 2);
    check_eq!(text_checksum(), before);
    check_eq!(rkprobes::probes().len(), probes_before);
    Ok(())
}

fn by_symbol_and_list() -> TestResult {
    let sym = crate::symbols::symbol_at(add_at()).ok_or("kt_add has no symbol")?;
    check_eq!(sym.name, "kt_add");
    let p = Kprobe::symbol("kt_add")
        .register()
        .map_err(|e| format!("{e}"))?;
    check_eq!(p.addr(), sym.addr);
    check_eq!(kt_add(1, 2), 3);
    let list: Vec<_> = rkprobes::probes()
        .into_iter()
        .filter(|i| i.id == p.id())
        .collect();
    p.unregister().map_err(|e| format!("{e}"))?;
    check_eq!(list.len(), 1);
    check_eq!(list[0].symbol.as_deref(), Some("kt_add+0x0"));
    check_eq!(list[0].hits, 1);
    check_eq!(list[0].kind, ProbeType::Insn);
    let off = Kprobe::symbol("kt_add+0x10").register().err();
    check!(off.is_some(), "offset beyond the function accepted");
    Ok(())
}

fn no_alloc_on_hit() -> TestResult {
    let beq_at = (&raw const super::insn_cases::kt_beq_at) as usize;
    let a = Kprobe::at(add_at())
        .pre(|_: &mut TrapFrame| ())
        .post(|_: &mut TrapFrame| ())
        .register();
    let b = Kprobe::at(beq_at).pre(|_: &mut TrapFrame| ()).register();
    let (a, b) = (
        a.map_err(|e| format!("{e}"))?,
        b.map_err(|e| format!("{e}"))?,
    );
    let before = heap::allocations_on_this_hart();
    let mut sum = 0;
    for i in 0..5_000 {
        sum += kt_add(i, 1);
        // SAFETY: C-ABI asm function without memory access.
        sum += unsafe { super::insn_cases::kt_beq(i, 7) };
    }
    let allocs = heap::allocations_on_this_hart() - before;
    let hits = a.hits() + b.hits();
    a.unregister().map_err(|e| format!("{e}"))?;
    b.unregister().map_err(|e| format!("{e}"))?;
    check!(sum > 0);
    check_eq!(hits, 10_000);
    check_eq!(allocs, 0);
    Ok(())
}

/// Three harts call probed functions while the boot hart registers and
/// unregisters the probes in a loop. Each call is classified by the phase
/// around it: inside an armed window it must be counted, outside any
/// window it must not.
fn smp_churn() -> TestResult {
    const TARGET_HITS: usize = 100_000;
    // Phase counter: % 4 == 0 disarmed, 1 registering, 2 armed, 3 removing.
    static PHASE: AtomicUsize = AtomicUsize::new(0);
    static STOP: AtomicBool = AtomicBool::new(false);
    static DEFINITE: AtomicUsize = AtomicUsize::new(0);
    static MAYBE: AtomicUsize = AtomicUsize::new(0);
    static WRONG: AtomicUsize = AtomicUsize::new(0);
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    for s in [&PHASE, &DEFINITE, &MAYBE, &WRONG, &RUNS] {
        s.store(0, SeqCst);
    }
    STOP.store(false, SeqCst);
    let me = arch::hart_id();
    let unowned_before = rkprobes::unowned_breakpoints();
    let probes_before = rkprobes::probes().len();
    let beq_at = (&raw const super::insn_cases::kt_beq_at) as usize;
    let counted = AtomicUsize::new(0);
    let error: spin::Mutex<Option<String>> = spin::Mutex::new(None);
    let rounds = AtomicUsize::new(0);
    smp::run_on_all(true, &|hart| {
        if hart == me {
            while RUNS.load(SeqCst) < TARGET_HITS {
                let pre = |_: &mut TrapFrame| {
                    RUNS.fetch_add(1, Relaxed);
                };
                PHASE.fetch_add(1, SeqCst);
                let a = Kprobe::at(add_at()).pre(pre).register();
                let b = Kprobe::at(beq_at).pre(pre).register();
                let (Ok(a), Ok(b)) = (a, b) else {
                    *error.lock() = Some("register failed".into());
                    break;
                };
                PHASE.fetch_add(1, SeqCst);
                let t = arch::time() + 100_000;
                while arch::time() < t {
                    core::hint::spin_loop();
                }
                PHASE.fetch_add(1, SeqCst);
                counted.fetch_add((a.hits() + b.hits()) as usize, SeqCst);
                let ok = a.unregister().is_ok() & b.unregister().is_ok();
                PHASE.fetch_add(1, SeqCst);
                if !ok {
                    *error.lock() = Some("unregister failed".into());
                    break;
                }
                rounds.fetch_add(1, Relaxed);
            }
            STOP.store(true, SeqCst);
        } else {
            let mut i = hart;
            while !STOP.load(SeqCst) {
                let g1 = PHASE.load(SeqCst);
                let sum = kt_add(i, 1);
                // SAFETY: C-ABI asm function without memory access.
                let branch = unsafe { super::insn_cases::kt_beq(i, i) };
                let g2 = PHASE.load(SeqCst);
                if sum != i + 1 || branch != 20 {
                    WRONG.fetch_add(1, Relaxed);
                }
                if g1 == g2 && g1 % 4 == 2 {
                    DEFINITE.fetch_add(2, Relaxed);
                } else if g1 != g2 || g1 % 2 == 1 {
                    MAYBE.fetch_add(2, Relaxed);
                }
                i += 1;
            }
        }
    });
    if let Some(e) = error.lock().take() {
        return Err(e);
    }
    let (runs, def, maybe) = (RUNS.load(SeqCst), DEFINITE.load(SeqCst), MAYBE.load(SeqCst));
    let counted = counted.load(SeqCst);
    crate::println!(
        "  smp churn: {} rounds, {runs} hits, {def} calls while armed, {maybe} racing a change",
        rounds.load(SeqCst)
    );
    check_eq!(WRONG.load(SeqCst), 0);
    check_eq!(rkprobes::unowned_breakpoints(), unowned_before);
    check!(runs >= TARGET_HITS);
    check!(
        counted <= runs,
        "probe counters {counted} exceed handler runs {runs}"
    );
    check!(
        def <= runs && runs <= def + maybe,
        "hits {runs} outside [{def}, {}]",
        def + maybe
    );
    check_eq!(rkprobes::probes().len(), probes_before);
    Ok(())
}
