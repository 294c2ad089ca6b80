//! Jump probes: a probe on a 32-bit instruction is a `jal` to a detour and
//! its hits take no breakpoint trap; a compressed one stays a breakpoint.
//! The interrupt state at the probe survives the detour either way.

use super::asm_case::asm_case;
use super::{Test, TestResult};
use crate::arch::{self, IrqGuard};
use crate::trap::watch;
use crate::{check, check_eq};
use alloc::format;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use rkprobes::{Kprobe, PreAction, TrapFrame};

asm_case!(
    kt_jump_add,
    kt_jump_add_at,
    "",
    ".option push\n.option norvc\nadd a0, a0, a1\n.option pop",
    "ret"
);
asm_case!(kt_jump_c_add, kt_jump_c_add_at, "", "c.add a0, a1", "ret");
// The same, where the next instruction cannot be covered by the jump:
// a branch leads to it, or it is PC-relative.
asm_case!(
    kt_jump_c_add_loop,
    kt_jump_c_add_loop_at,
    "",
    "c.add a0, a1",
    "1:\naddi a1, a1, -1\nbnez a1, 1b\nret"
);
asm_case!(
    kt_jump_c_add_pcrel,
    kt_jump_c_add_pcrel_at,
    "",
    "c.add a0, a1",
    "auipc t0, 0\nret"
);
// A compressed instruction followed by a 32-bit load that can fault, run
// from its copy in the detour.
asm_case!(
    kt_jump_c_ld,
    kt_jump_c_ld_at,
    "",
    "c.mv a0, a0",
    ".option push\n.option norvc\nld a0, 0(a0)\n.option pop\nret\n.globl kt_jump_c_ld_recover\nkt_jump_c_ld_recover:\nli a0, 0x77\nret"
);
extern "C" {
    static kt_jump_c_ld_recover: u8;
}
// A 32-bit load that can fault (`ld` would be compressed otherwise).
asm_case!(
    kt_jump_ld,
    kt_jump_ld_at,
    "",
    ".option push\n.option norvc\nld a0, 0(a0)\n.option pop",
    "ret\n.globl kt_jump_ld_recover\nkt_jump_ld_recover:\nli a0, 0x77\nret"
);
extern "C" {
    static kt_jump_ld_recover: u8;
}
// A function whose first instruction is 32-bit (a return probe's entry
// through a detour), and a caller that keeps values in every callee-saved
// register and `tp` across a call of it: returns the result, or
// `usize::MAX` if any of them changed.
asm_case!(
    kt_jump_ret_add,
    kt_jump_ret_add_at,
    "",
    ".option push\n.option norvc\nadd a0, a0, a1\n.option pop",
    "ret"
);
core::arch::global_asm!(
    ".pushsection .text.kt.kt_keep_sregs,\"ax\",@progbits",
    ".globl kt_keep_sregs",
    ".type kt_keep_sregs, @function",
    ".p2align 2",
    "kt_keep_sregs:",
    "addi sp, sp, -128",
    "sd ra, 0(sp)",
    "sd tp, 104(sp)",
    "sd a0, 112(sp)",
    ".irp i, 0,1,2,3,4,5,6,7,8,9,10,11",
    "sd s\\i, 8+8*\\i(sp)",
    "addi s\\i, a0, 0x100+\\i",
    ".endr",
    "call kt_jump_ret_add",
    "ld t2, 112(sp)",
    ".irp i, 0,1,2,3,4,5,6,7,8,9,10,11",
    "addi t0, t2, 0x100+\\i",
    "bne t0, s\\i, 1f",
    ".endr",
    "ld t0, 104(sp)",
    "beq t0, tp, 2f",
    "1:",
    "li a0, -1",
    "2:",
    ".irp i, 0,1,2,3,4,5,6,7,8,9,10,11",
    "ld s\\i, 8+8*\\i(sp)",
    ".endr",
    "ld ra, 0(sp)",
    "addi sp, sp, 128",
    "ret",
    ".size kt_keep_sregs, . - kt_keep_sregs",
    ".popsection",
);
extern "C" {
    fn kt_keep_sregs(a0: usize, a1: usize) -> usize;
}

const CALLS: u64 = 1000;
const SSTATUS_SPIE: usize = 1 << 5;

pub fn tests() -> Vec<Test> {
    alloc::vec![
        Test::new("jumps::word_probe_is_a_jal_and_takes_no_trap", no_trap),
        Test::new(
            "jumps::compressed_probe_covers_the_next_instruction",
            covers_next
        ),
        Test::new(
            "jumps::compressed_probe_keeps_its_breakpoint_where_the_next_cannot_be_covered",
            breakpoint
        ),
        Test::new(
            "jumps::fault_in_the_covered_instruction_reported_at_its_address",
            fault_in_second
        ),
        Test::new(
            "jumps::a_probe_on_the_covered_instruction_uncovers_it",
            covered_uncovers
        ),
        Test::new(
            "jumps::handlers_see_the_covered_instruction_at_its_address",
            covered_pcs
        ),
        Test::new("jumps::interrupt_state_survives_the_detour", irq_state),
        Test::new(
            "jumps::fault_in_detour_copy_reported_at_probe",
            fault_in_copy
        ),
        Test::new("jumps::nested_jump_hit_counts_a_miss", nested),
        Test::new(
            "jumps::return_probe_through_a_detour_keeps_the_callers_registers",
            return_keeps_registers
        ),
    ]
}

/// A return probe on a function whose entry is a jump probe: the entry
/// and return come back through the lighter restores (the detour's
/// function-entry way in, the trampoline), which put back only what a
/// call may change. The caller's callee-saved registers and `tp` survive,
/// an argument the entry handler changes and a return value the return
/// handler changes take effect.
fn return_keeps_registers() -> TestResult {
    static SEEN: AtomicU64 = AtomicU64::new(0);
    SEEN.store(0, SeqCst);
    // SAFETY: only the address of the asm label is taken.
    let addr = at(unsafe { &kt_jump_ret_add_at });
    let p = Kprobe::function(addr)
        .entry(|tf, data| {
            data[0] = tf.x[10];
            tf.x[11] += 1000; // the second argument
        })
        .ret(|tf, data| {
            if tf.ret() == data[0] + 2 + 1000 {
                SEEN.fetch_add(1, SeqCst);
            }
            tf.x[10] += 1; // the return value
        })
        .register()
        .map_err(|e| format!("{e}"))?;
    let jump = rkprobes::probes().iter().any(|i| i.addr == addr && i.jump);
    let mut wrong = 0;
    for i in 0..CALLS as usize {
        // SAFETY: C-ABI asm functions without memory access but their own
        // stack frame.
        let r = unsafe { kt_keep_sregs(i, 2) };
        wrong += usize::from(r != i + 2 + 1000 + 1);
    }
    let (hits, in_flight) = (p.hits(), p.in_flight());
    p.unregister().map_err(|e| format!("{e}"))?;
    check!(jump);
    check_eq!((wrong, hits, in_flight), (0, CALLS, 0));
    check_eq!(SEEN.load(SeqCst), CALLS);
    // And unprobed, as a check of the check.
    // SAFETY: as above.
    check_eq!(unsafe { kt_keep_sregs(7, 2) }, 9);
    Ok(())
}

fn add(a: usize, b: usize) -> usize {
    // SAFETY: C-ABI asm function without memory access.
    unsafe { kt_jump_add(a, b) }
}

fn c_add(a: usize, b: usize) -> usize {
    // SAFETY: as above.
    unsafe { kt_jump_c_add(a, b) }
}

type AddFn = fn(usize, usize) -> usize;

fn c_add_loop(a: usize, b: usize) -> usize {
    // SAFETY: as above (loops `b` times).
    unsafe { kt_jump_c_add_loop(a, b) }
}

fn c_add_pcrel(a: usize, b: usize) -> usize {
    // SAFETY: as above (`t0` is caller-saved).
    unsafe { kt_jump_c_add_pcrel(a, b) }
}

fn text_parcels(addr: usize) -> [u16; 2] {
    // SAFETY: kernel text, 2-byte aligned, mapped readable.
    [0, 2].map(|o| unsafe { ((addr + o) as *const u16).read_volatile() })
}

fn at(sym: &u8) -> usize {
    sym as *const u8 as usize
}

/// Registers a counting pre handler at `addr`, calls `f` CALLS times and
/// returns (handler calls, breakpoint traps at `addr`, listed as a jump).
fn run(
    addr: usize,
    f: fn(usize, usize) -> usize,
) -> Result<(u64, u64, bool), alloc::string::String> {
    static CALLED: AtomicU64 = AtomicU64::new(0);
    CALLED.store(0, SeqCst);
    let p = Kprobe::at(addr)
        .pre(|tf: &mut TrapFrame| {
            if tf.x[10] == 40 {
                CALLED.fetch_add(1, SeqCst);
            }
        })
        .register()
        .map_err(|e| format!("{e}"))?;
    let jump = rkprobes::probes().iter().any(|i| i.addr == addr && i.jump);
    watch::watch(addr);
    let mut wrong = 0;
    for _ in 0..CALLS {
        wrong += usize::from(f(40, 2) != 42);
    }
    let traps = watch::traps();
    watch::watch(0);
    let hits = p.hits();
    p.unregister().map_err(|e| format!("{e}"))?;
    check_eq!(wrong, 0);
    check_eq!(hits, CALLS);
    Ok((CALLED.load(SeqCst), traps, jump))
}

fn no_trap() -> TestResult {
    // SAFETY: only the address of the asm label is taken.
    let addr = at(unsafe { &kt_jump_add_at });
    let original = text_word(addr);
    let (called, traps, jump) = run(addr, add)?;
    check_eq!((called, traps), (CALLS, 0));
    check!(jump);
    check_eq!(text_word(addr), original);
    Ok(())
}

/// A compressed instruction followed by one the jump can cover: a `jal`
/// over both, no trap, and both back after.
fn covers_next() -> TestResult {
    // SAFETY: only the address of the asm label is taken.
    let addr = at(unsafe { &kt_jump_c_add_at });
    let original = text_parcels(addr);
    let (called, traps, jump) = run(addr, c_add)?;
    check_eq!((called, traps), (CALLS, 0));
    check!(jump);
    check_eq!(text_parcels(addr), original);
    Ok(())
}

/// Where a branch leads to the next instruction, or it is PC-relative,
/// the compressed instruction keeps its breakpoint: one trap per call.
fn breakpoint() -> TestResult {
    // SAFETY: only the addresses of the asm labels are taken.
    let cases: [(usize, AddFn); 2] = [
        (at(unsafe { &kt_jump_c_add_loop_at }), c_add_loop),
        (at(unsafe { &kt_jump_c_add_pcrel_at }), c_add_pcrel),
    ];
    for (addr, f) in cases {
        let original = text_parcels(addr);
        let (called, traps, jump) = run(addr, f)?;
        check_eq!((called, traps), (CALLS, CALLS));
        check!(!jump);
        check_eq!(text_parcels(addr), original);
    }
    Ok(())
}

/// A fault in the covered instruction's copy is reported at its own
/// address, and the OS's fix-up resumes as it would without the probe.
fn fault_in_second() -> TestResult {
    // SAFETY: only the addresses of the asm labels are taken.
    let (addr, recover) = (
        at(unsafe { &kt_jump_c_ld_at }),
        at(unsafe { &kt_jump_c_ld_recover }),
    );
    let p = Kprobe::at(addr).register().map_err(|e| format!("{e}"))?;
    let info = rkprobes::probes().into_iter().find(|i| i.addr == addr);
    let ld = |a: usize| {
        // SAFETY: loads from `a`; a bad address faults into `expect_fault`.
        unsafe { kt_jump_c_ld(a, 0) }
    };
    let mut r = 0;
    let fault_at = crate::trap::expect_fault(recover, || r = ld(0x10));
    let x = 0x1234usize;
    let ok = ld(&x as *const usize as usize);
    let hits = p.hits();
    p.unregister().map_err(|e| format!("{e}"))?;
    check_eq!(info.and_then(|i| i.covers), Some(addr + 2));
    check_eq!(r, 0x77);
    check_eq!(fault_at, Some(addr + 2));
    check_eq!(ok, 0x1234);
    check_eq!(hits, 2);
    Ok(())
}

/// Where a jump covers the next instruction, handlers still see text
/// addresses: a post handler the pc after the probed instruction, and a
/// pre handler that skips by moving the pc past it (`sepc += 2`) resumes
/// at the covered instruction, which still runs.
fn covered_pcs() -> TestResult {
    static POST_PC: AtomicUsize = AtomicUsize::new(0);
    // SAFETY: only the address of the asm label is taken.
    let addr = at(unsafe { &kt_jump_c_add_at });
    let p = Kprobe::at(addr)
        .post(|tf: &mut TrapFrame| POST_PC.store(tf.sepc, SeqCst))
        .register()
        .map_err(|e| format!("{e}"))?;
    let covers = rkprobes::probes()
        .into_iter()
        .find(|i| i.addr == addr)
        .and_then(|i| i.covers);
    let with_post = c_add(40, 2);
    p.unregister().map_err(|e| format!("{e}"))?;
    let p = Kprobe::at(addr)
        .pre(|tf: &mut TrapFrame| {
            tf.sepc += 2;
            tf.x[10] = 99;
            PreAction::Skip
        })
        .register()
        .map_err(|e| format!("{e}"))?;
    let skipped = c_add(40, 2);
    p.unregister().map_err(|e| format!("{e}"))?;
    check_eq!(covers, Some(addr + 2));
    check_eq!(with_post, 42);
    check_eq!(POST_PC.load(SeqCst), addr + 2);
    check_eq!(skipped, 99);
    Ok(())
}

/// A probe placed on the instruction a jump covers: the covering probe
/// becomes a breakpoint first (keeping its hits coming), both fire, and
/// the text comes back whole.
fn covered_uncovers() -> TestResult {
    // SAFETY: only the address of the asm label is taken.
    let addr = at(unsafe { &kt_jump_c_add_at });
    let original = text_parcels(addr);
    let listed = |a: usize| rkprobes::probes().into_iter().find(|p| p.addr == a);
    let p = Kprobe::at(addr).register().map_err(|e| format!("{e}"))?;
    let before = listed(addr).map(|i| (i.jump, i.covers));
    let q = Kprobe::at(addr + 2).register().map_err(|e| format!("{e}"));
    let after = listed(addr).map(|i| (i.jump, i.covers));
    let second = listed(addr + 2).map(|i| i.mnemonic);
    let mut wrong = 0;
    for i in 0..100 {
        wrong += usize::from(c_add(40, i) != 40 + i);
    }
    let hits = (p.hits(), q.as_ref().map_or(0, |q| q.hits()));
    p.unregister().map_err(|e| format!("{e}"))?;
    let q = q?;
    q.unregister().map_err(|e| format!("{e}"))?;
    check_eq!(before, Some((true, Some(addr + 2))));
    check_eq!(after, Some((false, None)));
    check_eq!(second, Some("c.jr"));
    check_eq!(wrong, 0);
    check_eq!(hits, (100, 100));
    check_eq!(text_parcels(addr), original);
    Ok(())
}

/// The handler sees SPIE = the interrupt state at the probe, and the code
/// after the probe runs with that state again.
fn irq_state() -> TestResult {
    static SAW_SPIE: AtomicUsize = AtomicUsize::new(usize::MAX);
    // SAFETY: only the address of the asm label is taken.
    let addr = at(unsafe { &kt_jump_add_at });
    let p = Kprobe::at(addr)
        .pre(|tf: &mut TrapFrame| SAW_SPIE.store(tf.sstatus & SSTATUS_SPIE, SeqCst))
        .register()
        .map_err(|e| format!("{e}"))?;
    let was_on = arch::irq_disable();
    arch::irq_enable();
    let on = add(1, 2);
    let still_on = irqs_on();
    let saw_on = SAW_SPIE.load(SeqCst);
    let (off, still_off, saw_off) = {
        let _irq = IrqGuard::new();
        let r = add(1, 2);
        (r, !irqs_on(), SAW_SPIE.load(SeqCst))
    };
    if !was_on {
        arch::irq_disable();
    }
    p.unregister().map_err(|e| format!("{e}"))?;
    check_eq!((on, off), (3, 3));
    check!(still_on && still_off);
    check_eq!((saw_on, saw_off), (SSTATUS_SPIE, 0));
    Ok(())
}

fn ld(addr: usize) -> usize {
    // SAFETY: reads `addr`, which the callers either map or expect to fault
    // (`expect_fault` resumes at `kt_jump_ld_recover`).
    unsafe { kt_jump_ld(addr, 0) }
}

/// A fault in the detour's copy of the instruction is reported at the
/// probe, with interrupts on and off, and the interrupt state is back
/// after the fault is fixed up.
fn fault_in_copy() -> TestResult {
    // SAFETY: only the addresses of the asm labels are taken.
    let (addr, recover) = (
        at(unsafe { &kt_jump_ld_at }),
        at(unsafe { &kt_jump_ld_recover }),
    );
    let p = Kprobe::at(addr).register().map_err(|e| format!("{e}"))?;
    let jump = rkprobes::probes().iter().any(|i| i.addr == addr && i.jump);
    let was_on = arch::irq_disable();
    arch::irq_enable();
    let mut r_on = 0;
    let at_on = crate::trap::expect_fault(recover, || r_on = ld(0x10));
    let still_on = irqs_on();
    let (r_off, at_off, still_off) = {
        let _irq = IrqGuard::new();
        let mut r = 0;
        let at = crate::trap::expect_fault(recover, || r = ld(0x10));
        (r, at, !irqs_on())
    };
    if !was_on {
        arch::irq_disable();
    }
    p.unregister().map_err(|e| format!("{e}"))?;
    check!(jump);
    check_eq!((r_on, r_off), (0x77, 0x77));
    check_eq!((at_on, at_off), (Some(addr), Some(addr)));
    check!(still_on && still_off);
    Ok(())
}

/// A handler that runs code with its own jump probe: that hit is nested,
/// counted as missed, and still computes the right result.
fn nested() -> TestResult {
    static OUTER: AtomicU64 = AtomicU64::new(0);
    static INNER_RESULT: AtomicUsize = AtomicUsize::new(0);
    // SAFETY: only the addresses of the asm labels are taken.
    let (add_at, ld_at) = (
        at(unsafe { &kt_jump_add_at }),
        at(unsafe { &kt_jump_ld_at }),
    );
    let inner = Kprobe::at(add_at).register().map_err(|e| format!("{e}"))?;
    let outer = Kprobe::at(ld_at)
        .pre(|_: &mut TrapFrame| {
            OUTER.fetch_add(1, SeqCst);
            INNER_RESULT.store(add(5, 6), SeqCst);
        })
        .register()
        .map_err(|e| format!("{e}"))?;
    static X: usize = 0x1234;
    let r = ld(&X as *const usize as usize);
    let (hits, missed) = (inner.hits(), inner.missed());
    inner.unregister().map_err(|e| format!("{e}"))?;
    outer.unregister().map_err(|e| format!("{e}"))?;
    check_eq!(r, 0x1234);
    check_eq!(INNER_RESULT.load(SeqCst), 11);
    check_eq!((OUTER.load(SeqCst), hits, missed), (1, 0, 1));
    Ok(())
}

fn irqs_on() -> bool {
    let s: usize;
    // SAFETY: reading sstatus has no side effect.
    unsafe { core::arch::asm!("csrr {}, sstatus", out(reg) s) };
    s & arch::SSTATUS_SIE != 0
}

fn text_word(addr: usize) -> u32 {
    // SAFETY: `addr` is 4-byte aligned kernel text, mapped readable.
    unsafe { (addr as *const u32).read_volatile() }
}
