//! Function entry and return probes (`SyncFunc`) under a real kernel:
//! recursion, several harts, a task that sleeps inside the function and
//! wakes on another hart, maxactive, cancel, unregister in flight, frames
//! that never return, and probes on real kernel functions by name.

use super::asm_case::asm_case;
use super::coroutine::{Coroutine, Yielder};
use super::with_breakpoints;
use super::{Test, TestResult};
use crate::{arch, check, check_eq, smp};
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::hint::black_box;
use core::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use rkprobes::{CallRegs, EntryAction, Kprobe, ProbeHandle, ProbeType, ReturnRegs, TrapFrame};
use spin::Mutex;

pub fn tests() -> Vec<Test> {
    let mut tests = alloc::vec![
        Test::new("retprobes::seed_api_sync_func", seed_sync_func),
        Test::new("retprobes::not_a_function_entry", not_entry),
        Test::new(
            "fprobes::handlers_change_arguments_and_return_value",
            change_args_and_value
        ),
        Test::new(
            "fprobes::light_way_in_shared_with_an_instruction_probe",
            shared_with_insn_probe
        ),
        Test::new(
            "fprobes::light_kind_through_a_breakpoint",
            light_through_breakpoint
        ),
        Test::new(
            "fprobes::function_reading_t0_on_entry_keeps_it",
            t0_on_entry
        ),
    ];
    // Each of these for both kinds: return probes (`entry`/`ret`, full
    // frames) and function probes (`on_call`/`on_return`, the light way).
    let both: [(&str, KindTest); 9] = [
        ("recursion_counts_and_values", recursion),
        ("tail_calls_each_return_to_their_caller", tail_calls),
        ("four_harts_one_function", four_harts),
        ("task_sleeps_inside_and_resumes_on_other_hart", migrates),
        ("maxactive_overflow_counted_as_missed", maxactive_overflow),
        ("entry_handler_cancels_and_passes_data", cancel_and_data),
        ("unregister_with_call_in_flight", unregister_in_flight),
        ("frame_that_never_returns_is_reclaimed", never_returns),
        ("real_kernel_functions_by_name", by_name),
    ];
    for (name, f) in both {
        for (kind, prefix) in [(Kind::Full, "retprobes"), (Kind::Light, "fprobes")] {
            tests.push(Test::new(&format!("{prefix}::{name}"), move || f(kind)));
        }
    }
    tests
}

type KindTest = fn(Kind) -> TestResult;

/// Which handlers a test's probe gets: `entry`/`ret` (full frames) or
/// `on_call`/`on_return` (function probes: arguments and return value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Full,
    Light,
}

/// `$b` with the entry handler `$e` and the return handler `$r` of
/// `$kind`: the same closure text serves both (`arg`, `ret` read the same
/// on either kind's registers).
macro_rules! with_handlers {
    ($kind:expr, $b:expr, entry: $e:expr, ret: $r:expr) => {
        match $kind {
            Kind::Full => $b.entry($e).ret($r),
            Kind::Light => $b.on_call($e).on_return($r),
        }
    };
    ($kind:expr, $b:expr, ret: $r:expr) => {
        match $kind {
            Kind::Full => $b.ret($r),
            Kind::Light => $b.on_return($r),
        }
    };
}

fn err(e: rkprobes::Error) -> String {
    format!("{e}")
}

/// Depth of recursion; not a tail call, so every level is a real call.
#[inline(never)]
pub fn kt_depth(n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    black_box(kt_depth(black_box(n - 1))) + 1
}

/// A function whose result identifies its arguments.
#[inline(never)]
pub fn kt_mix(a: usize, b: usize) -> usize {
    black_box(a.wrapping_mul(31).wrapping_add(b))
}

/// Stops inside itself (through the coroutine) before returning.
#[inline(never)]
pub fn kt_sleeper(x: usize, y: &Yielder) -> usize {
    let v = black_box(x * 2);
    y.yield_now();
    black_box(v + 1)
}

// `kt_tail(n)`: counts `a0` down to zero by tail-calling itself (a jump
// back to its first instruction, `ra` untouched): every pass is a new call
// of the function with the same `sp` and the previous call's diverted `ra`.
asm_case!(
    kt_tail,
    kt_tail_entry,
    "",
    "addi a0, a0, -1",
    "bnez a0, kt_tail\nret"
);

// `kt_t0_user` reads `t0` on entry (as code the machine outliner makes
// does); `kt_t0_caller(a0, _)` calls it with `t0 = a0` and returns what
// it saw.
asm_case!(
    kt_t0_user,
    kt_t0_user_entry,
    "",
    "addi sp, sp, -16",
    "mv a0, t0\naddi sp, sp, 16\nret"
);
asm_case!(
    kt_t0_caller,
    kt_t0_caller_at,
    "addi sp, sp, -16\nsd ra, 8(sp)",
    "mv t0, a0",
    "call kt_t0_user\nld ra, 8(sp)\naddi sp, sp, 16\nret"
);

fn addr_of(name: &str) -> Result<usize, String> {
    crate::symbols::symbol_by_name(name)
        .map(|s| s.addr)
        .ok_or(format!("no symbol {name}"))
}

fn recursion(kind: Kind) -> TestResult {
    static RETURNS: Mutex<Vec<usize>> = Mutex::new(Vec::new());
    RETURNS.lock().clear();
    let entries = Arc::new(AtomicUsize::new(0));
    let e2 = entries.clone();
    let p = with_handlers!(
        kind,
        Kprobe::symbol("kernel::test::retprobes::kt_depth"),
        entry: move |_, _| {
            e2.fetch_add(1, SeqCst);
        },
        ret: |tf, _| RETURNS.lock().push(tf.ret())
    )
    .maxactive(32)
    .register()
    .map_err(err)?;
    // (`kt_depth` starts with a branch, simulated: no light way in.)
    let r = kt_depth(10);
    let (hits, missed, in_flight) = (p.hits(), p.missed(), p.in_flight());
    p.unregister().map_err(err)?;
    check_eq!(r, 10);
    check_eq!(entries.load(SeqCst), 11);
    check_eq!((hits, missed, in_flight), (11, 0, 0));
    // Innermost returns first: 0, 1, ..., 10.
    check_eq!(*RETURNS.lock(), (0..=10).collect::<Vec<_>>());
    Ok(())
}

/// Tail calls into a return-probed function: each pass through the entry
/// is a call in flight of its own, returning (innermost first) through the
/// one before it to the real caller.
fn tail_calls(kind: Kind) -> TestResult {
    const N: usize = 12;
    static SEEN: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());
    SEEN.lock().clear();
    let p = with_handlers!(
        kind,
        Kprobe::symbol("kt_tail"),
        entry: |tf, d| d[0] = tf.arg(0),
        ret: |tf, d| SEEN.lock().push((d[0], tf.ret()))
    )
    .maxactive(N)
    .register()
    .map_err(err)?;
    // SAFETY: an assembly function of the C ABI (asm_case).
    let r = unsafe { kt_tail(black_box(N), 0) };
    let (hits, missed, in_flight) = (p.hits(), p.missed(), p.in_flight());
    let at = p.addr();
    p.unregister().map_err(err)?;
    check_eq!(at, (&raw const kt_tail_entry) as usize);
    check_eq!(r, 0);
    check_eq!((hits, missed, in_flight), (N as u64, 0, 0));
    // Entered with N, N-1, ..., 1; the last entered returns first.
    check_eq!(*SEEN.lock(), (1..=N).map(|n| (n, 0)).collect::<Vec<_>>());
    Ok(())
}

fn four_harts(kind: Kind) -> TestResult {
    const CALLS: usize = 2_000;
    check_eq!(crate::smp::online(), 4);
    let bad = Arc::new(AtomicUsize::new(0));
    let returns = Arc::new(AtomicUsize::new(0));
    let (b2, r2) = (bad.clone(), returns.clone());
    let p = with_handlers!(
        kind,
        Kprobe::symbol("kernel::test::retprobes::kt_mix"),
        entry: |tf, d| {
            d[0] = tf.arg(0);
            d[1] = tf.arg(1);
            d[2] = arch::hart_id();
        },
        ret: move |tf, d| {
            r2.fetch_add(1, SeqCst);
            if tf.ret() != d[0].wrapping_mul(31).wrapping_add(d[1]) || d[2] != arch::hart_id() {
                b2.fetch_add(1, SeqCst);
            }
        }
    )
    .register()
    .map_err(err)?;
    check_eq!(light_way_in(p.addr()), kind == Kind::Light);
    let wrong = AtomicUsize::new(0);
    smp::run_on_all(true, &|hart| {
        for i in 0..CALLS {
            if kt_mix(hart, i) != hart * 31 + i {
                wrong.fetch_add(1, SeqCst);
            }
        }
    });
    let hits = p.hits();
    p.unregister().map_err(err)?;
    let calls = CALLS * smp::online();
    check_eq!(wrong.load(SeqCst), 0);
    check_eq!(bad.load(SeqCst), 0);
    check_eq!(hits as usize, calls);
    check_eq!(returns.load(SeqCst), calls);
    Ok(())
}

/// Registers a return probe on `kt_sleeper` recording the entry hart, the
/// return hart and the return value.
fn sleeper_probe(
    kind: Kind,
    log: Arc<Mutex<Vec<(usize, usize, usize)>>>,
) -> Result<ProbeHandle, String> {
    with_handlers!(
        kind,
        Kprobe::symbol("kernel::test::retprobes::kt_sleeper"),
        entry: |_, d| d[0] = arch::hart_id(),
        ret: move |tf, d| {
            log.lock().push((d[0], arch::hart_id(), tf.ret()));
        }
    )
    .register()
    .map_err(err)
}

fn other_hart() -> Result<usize, String> {
    let me = arch::hart_id();
    smp::harts()
        .find(|&h| h != me)
        .ok_or_else(|| "needs two harts".into())
}

fn migrates(kind: Kind) -> TestResult {
    let log = Arc::new(Mutex::new(Vec::new()));
    let p = sleeper_probe(kind, log.clone())?;
    let result = Arc::new(AtomicUsize::new(0));
    let r2 = result.clone();
    let co = Mutex::new(Coroutine::new(move |y| r2.store(kt_sleeper(20, y), SeqCst)));
    check!(!co.lock().resume(), "finished without sleeping");
    check_eq!(p.in_flight(), 1);
    let target = other_hart()?;
    let finished = AtomicUsize::new(0);
    smp::run_on_all(false, &|hart| {
        if hart == target && co.lock().resume() {
            finished.store(1, SeqCst);
        }
    });
    p.unregister().map_err(err)?;
    check_eq!(finished.load(SeqCst), 1);
    check_eq!(result.load(SeqCst), 41);
    check_eq!(*log.lock(), alloc::vec![(arch::hart_id(), target, 41)]);
    Ok(())
}

fn maxactive_overflow(kind: Kind) -> TestResult {
    let returns = Arc::new(AtomicUsize::new(0));
    let r2 = returns.clone();
    let p = with_handlers!(
        kind,
        Kprobe::symbol("kernel::test::retprobes::kt_depth"),
        ret: move |_, _| {
            r2.fetch_add(1, SeqCst);
        }
    )
    .maxactive(2)
    .register()
    .map_err(err)?;
    let r = kt_depth(4);
    let (hits, missed) = (p.hits(), p.missed());
    p.unregister().map_err(err)?;
    check_eq!(r, 4);
    check_eq!((hits, missed), (2, 3));
    check_eq!(returns.load(SeqCst), 2);
    Ok(())
}

fn cancel_and_data(kind: Kind) -> TestResult {
    static SEEN: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());
    SEEN.lock().clear();
    let p = with_handlers!(
        kind,
        Kprobe::symbol("kernel::test::retprobes::kt_mix"),
        entry: |tf, d| {
            d[0] = tf.arg(0) + 1000;
            if tf.arg(0) % 2 == 1 {
                EntryAction::Cancel
            } else {
                EntryAction::Continue
            }
        },
        ret: |tf, d| SEEN.lock().push((d[0], tf.ret()))
    )
    .register()
    .map_err(err)?;
    check_eq!(light_way_in(p.addr()), kind == Kind::Light);
    let results: Vec<usize> = (0..4).map(|i| kt_mix(i, 1)).collect();
    let (hits, in_flight) = (p.hits(), p.in_flight());
    p.unregister().map_err(err)?;
    check_eq!(results, alloc::vec![1, 32, 63, 94]);
    check_eq!(*SEEN.lock(), alloc::vec![(1000, 1), (1002, 63)]);
    // A cancelled call holds no instance.
    check_eq!((hits, in_flight), (4, 0));
    Ok(())
}

fn unregister_in_flight(kind: Kind) -> TestResult {
    let log = Arc::new(Mutex::new(Vec::new()));
    // A detour, once written for an address, stays (a hart may still be
    // in it): place and remove a probe first, so the figure below counts
    // only what this test must give back.
    sleeper_probe(kind, log.clone())?
        .unregister()
        .map_err(err)?;
    let slots_before = rkprobes::memory_stats().slot_bytes;
    let p = sleeper_probe(kind, log.clone())?;
    let result = Arc::new(AtomicUsize::new(0));
    let r2 = result.clone();
    let mut co = Coroutine::new(move |y| r2.store(kt_sleeper(5, y), SeqCst));
    check!(!co.resume());
    check_eq!(p.in_flight(), 1);
    p.unregister().map_err(err)?;
    // The call still returns to its real caller, without a handler.
    check!(co.resume(), "coroutine did not finish");
    check_eq!(result.load(SeqCst), 11);
    check_eq!(log.lock().len(), 0);
    // The stub of the removed probe is freed at the next registry change.
    let q = sleeper_probe(kind, log.clone())?;
    q.unregister().map_err(err)?;
    check_eq!(rkprobes::memory_stats().slot_bytes, slots_before);
    Ok(())
}

fn never_returns(kind: Kind) -> TestResult {
    let log = Arc::new(Mutex::new(Vec::new()));
    let p = sleeper_probe(kind, log.clone())?;
    let mut co = Coroutine::new(move |y| {
        kt_sleeper(7, y);
    });
    check!(!co.resume());
    check_eq!(p.in_flight(), 1);
    // The task dies inside the function: its stack goes away.
    let stack = co.stack_range();
    drop(co);
    // Every call in flight on that stack is reclaimed: ours, and under
    // `probe_all=1` those of the other probed functions on it too.
    // SAFETY: the coroutine was dropped inside the function: nothing on
    // its stack runs again.
    let reclaimed = unsafe { rkprobes::reclaim_stack(stack) };
    check!(reclaimed >= 1, "reclaimed {reclaimed}");
    check_eq!(p.in_flight(), 0);
    p.unregister().map_err(err)?;
    check_eq!(log.lock().len(), 0);
    Ok(())
}

fn seed_sync_func() -> TestResult {
    let addr = addr_of("kernel::test::retprobes::kt_mix")?;
    let seen = Arc::new(AtomicUsize::new(0));
    let (s1, s2) = (seen.clone(), seen.clone());
    let entry: rkprobes::SeedHandler = Arc::new(rkprobes::Mutex::new(move |tf: &mut TrapFrame| {
        s1.fetch_add(tf.arg(0), SeqCst);
    }));
    let ret: rkprobes::SeedHandler = Arc::new(rkprobes::Mutex::new(move |tf: &mut TrapFrame| {
        s2.fetch_add(tf.ret() * 1000, SeqCst);
    }));
    check_eq!(
        rkprobes::kprobe_register(addr, entry, Some(ret), ProbeType::SyncFunc),
        0
    );
    let r = kt_mix(2, 3);
    check_eq!(rkprobes::kprobe_unregister(addr), 0);
    check_eq!(r, 65);
    check_eq!(seen.load(SeqCst), 2 + 65_000);
    Ok(())
}

fn by_name(kind: Kind) -> TestResult {
    // Real kernel functions, called for real below.
    let names = [
        "kernel::bootargs::get",
        "kernel::symbols::symbol_at",
        "kernel::symbols::symbol_by_name",
    ];
    let mut compressed = 0;
    let counts: Vec<Arc<(AtomicUsize, AtomicUsize)>> = names
        .iter()
        .map(|_| Arc::new((AtomicUsize::new(0), AtomicUsize::new(0))))
        .collect();
    let mut handles = Vec::new();
    for (name, c) in names.iter().zip(&counts) {
        let (e, r) = (c.clone(), c.clone());
        let h = with_handlers!(
            kind,
            Kprobe::symbol(name),
            entry: move |_, _| {
                e.0.fetch_add(1, SeqCst);
            },
            ret: move |_, _| {
                r.1.fetch_add(1, SeqCst);
            }
        )
        .register()
        .map_err(|e| format!("{name}: {e}"))?;
        // The original first instruction (the text may hold a probe's
        // `jal` now, this one's or the probe-all suite's).
        let listed = rkprobes::probes().into_iter().find(|p| p.addr == h.addr());
        if listed.is_some_and(|p| p.mnemonic.starts_with("c.")) {
            compressed += 1;
        }
        handles.push(h);
    }
    let mode = crate::bootargs::get("mode");
    let found = crate::symbols::symbol_at(kt_mix as *const () as usize).map(|s| s.name);
    let by_name = crate::symbols::symbol_by_name("kt_add").is_some();
    for h in handles {
        h.unregister().map_err(err)?;
    }
    check_eq!(mode, Some("test"));
    check_eq!(found, Some("kernel::test::retprobes::kt_mix"));
    check!(by_name);
    check!(
        compressed >= 1,
        "no probed function starts with a compressed instruction"
    );
    for (name, c) in names.iter().zip(&counts) {
        let (e, r) = (c.0.load(SeqCst), c.1.load(SeqCst));
        check!(e >= 1 && e == r, "{name}: {e} entries, {r} returns");
    }
    Ok(())
}

fn not_entry() -> TestResult {
    let addr = addr_of("kernel::test::retprobes::kt_mix")?;
    // SAFETY: kernel text is mapped readable.
    let first = unsafe { (addr as *const u16).read_volatile() };
    let second = addr + if first & 0b11 == 0b11 { 4 } else { 2 };
    let e = Kprobe::function(second).register().err();
    check_eq!(e, Some(rkprobes::Error::NotFunctionEntry { addr: second }));
    Ok(())
}

/// Per call: the return address and `sp` at the call equal to the pc and
/// `sp` at the return, and the pc at the call.
type Seen = Vec<(bool, bool, usize)>;

/// Whether a call of the function at `addr` goes through a detour's light
/// way in: the text there is a `jal` to a detour whose first word is a
/// `jal` linking in `t0` (`rkprobes::arch::riscv::detour`).
fn light_way_in(addr: usize) -> bool {
    let jal_at = |at: usize| {
        // SAFETY: kernel text and the slot area are mapped readable.
        let raw = unsafe { (at as *const u32).read_volatile() };
        (raw & 0x7f == 0x6f).then(|| {
            let imm = (raw >> 31 & 1) << 20
                | (raw >> 21 & 0x3ff) << 1
                | (raw >> 20 & 1) << 11
                | (raw >> 12 & 0xff) << 12;
            let offset = ((imm << 11) as i32 >> 11) as isize;
            (raw >> 7 & 31, at.wrapping_add_signed(offset))
        })
    };
    matches!(jal_at(addr), Some((0, d)) if matches!(jal_at(d), Some((5, _))))
}

/// `kt_mix` with a function probe whose call handler adds one to its
/// second argument and whose return handler doubles the result; each
/// records what it saw. Returns the result of `kt_mix(2, 3)`, the
/// records and whether the call took the light way in.
fn doubled_mix() -> Result<(usize, Seen, bool), String> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let p = Kprobe::symbol("kernel::test::retprobes::kt_mix")
        .on_call(|r: &mut CallRegs, d: &mut rkprobes::RetData| {
            *d = [r.ra(), r.sp(), r.pc(), 0];
            r.set_arg(1, r.arg(1) + 1);
        })
        .on_return(move |r: &mut ReturnRegs, d: &rkprobes::RetData| {
            s2.lock().push((d[0] == r.pc(), d[1] == r.sp(), d[2]));
            r.set_ret(r.ret() * 2);
        })
        .register()
        .map_err(err)?;
    let light = light_way_in(p.addr());
    let v = kt_mix(black_box(2), black_box(3));
    p.unregister().map_err(err)?;
    let seen = seen.lock().clone();
    Ok((v, seen, light))
}

/// A call handler's new argument reaches the function, a return handler's
/// new value reaches the caller, and both see where the call came from.
fn change_args_and_value() -> TestResult {
    let addr = addr_of("kernel::test::retprobes::kt_mix")?;
    let (v, seen, light) = doubled_mix()?;
    check!(light, "not through the light way in");
    // (2 * 31 + 4) * 2
    check_eq!(v, 132);
    check_eq!(seen, alloc::vec![(true, true, addr)]);
    check_eq!(kt_mix(2, 3), 65);
    Ok(())
}

/// An instruction probe placed where a function probe's light way in
/// leads: every hit there goes through the common entry, with both
/// probes' handlers; the function probe alone again takes the light way.
fn shared_with_insn_probe() -> TestResult {
    let addr = addr_of("kernel::test::retprobes::kt_mix")?;
    let calls = Arc::new(AtomicUsize::new(0));
    let returns = Arc::new(AtomicUsize::new(0));
    let (c2, r2) = (calls.clone(), returns.clone());
    let f = Kprobe::function(addr)
        .on_call(move |r: &mut CallRegs, d: &mut rkprobes::RetData| {
            c2.fetch_add(1, SeqCst);
            d[0] = r.arg(0);
        })
        .on_return(move |r: &mut ReturnRegs, d: &rkprobes::RetData| {
            if r.ret() == d[0] * 31 + 1 {
                r2.fetch_add(1, SeqCst);
            }
        })
        .register()
        .map_err(err)?;
    let light = light_way_in(addr);
    let first = kt_mix(1, 1);
    let pres = Arc::new(AtomicUsize::new(0));
    let p2 = pres.clone();
    let i = Kprobe::at(addr)
        .pre(move |tf: &mut TrapFrame| {
            if tf.arg(0) == 2 {
                p2.fetch_add(1, SeqCst);
            }
        })
        .register()
        .map_err(err)?;
    let second = kt_mix(2, 1);
    i.unregister().map_err(err)?;
    let third = kt_mix(3, 1);
    f.unregister().map_err(err)?;
    check!(light, "not through the light way in");
    check_eq!((first, second, third), (32, 63, 94));
    check_eq!(pres.load(SeqCst), 1);
    check_eq!((calls.load(SeqCst), returns.load(SeqCst)), (3, 3));
    Ok(())
}

/// With jump probes off, a function probe's call comes through a
/// breakpoint (a full frame shown as `CallRegs`); its return still takes
/// the light trampoline.
fn light_through_breakpoint() -> TestResult {
    let addr = addr_of("kernel::test::retprobes::kt_mix")?;
    let (v, seen, light) = with_breakpoints(doubled_mix)?;
    check!(!light, "a jump with jump probes off");
    check_eq!(v, 132);
    check_eq!(seen, alloc::vec![(true, true, addr)]);
    Ok(())
}

/// A function that reads `t0` on entry gets no light way in (which would
/// take `t0`): its function probe fires and the function still sees the
/// caller's `t0`.
fn t0_on_entry() -> TestResult {
    let addr = (&raw const kt_t0_user_entry) as usize;
    let calls = Arc::new(AtomicUsize::new(0));
    let c2 = calls.clone();
    let p = Kprobe::function(addr)
        .on_call(move |_: &mut CallRegs, _: &mut rkprobes::RetData| {
            c2.fetch_add(1, SeqCst);
        })
        .on_return(|_: &mut ReturnRegs, _: &rkprobes::RetData| ())
        .register()
        .map_err(err)?;
    let light = light_way_in(addr);
    // SAFETY: an assembly function of the C ABI (asm_case).
    let seen = unsafe { kt_t0_caller(black_box(0x1234), 0) };
    let (hits, in_flight) = (p.hits(), p.in_flight());
    p.unregister().map_err(err)?;
    check!(!light, "the light way in on a function reading t0");
    check_eq!(seen, 0x1234);
    check_eq!((calls.load(SeqCst), hits, in_flight), (1, 1, 0));
    Ok(())
}
