//! Probe every function: with `probe_all=1` on the command line, an entry
//! and return probe (every other one a function probe, `on_return`) goes
//! on every function of the kernel's symbol table
//! that rkprobes accepts, before all other tests run; the tests must still
//! pass, and afterwards the counters must show the probes fired and the
//! text must come back byte for byte.

use super::kprobes::text_checksum;
use super::{Test, TestResult};
use crate::{check, symbols};
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use rkprobes::{CallRegs, Kprobe, ProbeHandle, RetData, ReturnRegs, TrapFrame};
use spin::Mutex;

/// Functions the other tests read byte for byte (their exact text is what
/// those tests check), so a probe at their entry would make them fail for
/// the wrong reason.
const EXCLUDED_PREFIXES: &[(&str, &str)] = &[
    ("kt_", "assembly test target whose bytes the kprobes tests compare"),
    (
        "kernel::test::retprobes::kt_",
        "test target the seed-API test unregisters by address (which removes every probe there)",
    ),
    (
        "kernel::test::asyncprobes::kt_",
        "async test target the seed-API test unregisters by address",
    ),
    (
        "kernel::test::probe_all::",
        "this harness and its handlers (a probe there only counts nested misses)",
    ),
    ("insn_diff_", "differential-test harness: rewritten at run time, runs with random registers and sscratch in use"),
];

struct Armed {
    handles: Vec<ProbeHandle>,
    checksum: u64,
}

static ARMED: Mutex<Option<Armed>> = Mutex::new(None);
static RETURNS: AtomicU64 = AtomicU64::new(0);

pub fn enabled() -> bool {
    crate::bootargs::get("probe_all") == Some("1")
}

/// (first tests, last tests) when enabled.
pub fn tests() -> (Vec<Test>, Vec<Test>) {
    if !enabled() {
        return (Vec::new(), Vec::new());
    }
    (
        alloc::vec![Test::new("probe_all::arm_every_function", arm)],
        alloc::vec![
            Test::new("probe_all::probes_fired_during_the_tests", fired),
            Test::new("probe_all::unregister_all_restores_text", disarm),
        ],
    )
}

/// Why a function was not probed, as a short category.
fn reason(e: &rkprobes::Error) -> String {
    match e {
        rkprobes::Error::UnsupportedInstruction { mnemonic, .. } => {
            format!("first instruction `{mnemonic}` refused")
        }
        rkprobes::Error::Blacklisted { .. } => "blacklisted (trap path, hit path, no-probe)".into(),
        other => format!("{other:?}")
            .split([' ', '{'])
            .next()
            .unwrap_or("error")
            .into(),
    }
}

fn arm() -> TestResult {
    let checksum = text_checksum();
    let mut why: BTreeMap<String, usize> = BTreeMap::new();
    let mut builders = Vec::new();
    for sym in symbols::all() {
        if let Some((_, r)) = EXCLUDED_PREFIXES
            .iter()
            .find(|(p, _)| sym.name.starts_with(p))
        {
            *why.entry(format!("excluded: {r}")).or_default() += 1;
            continue;
        }
        // Every other function gets a function probe (the light way in
        // and out, which also takes `t0`/`t1` at the entry), the others a
        // return probe with full frames both ways.
        let f = Kprobe::function(sym.addr);
        builders.push(match builders.len() % 2 {
            0 => f.on_call(|_: &mut CallRegs, _: &mut RetData| ()).on_return(
                |_: &mut ReturnRegs, _: &RetData| {
                    RETURNS.fetch_add(1, Relaxed);
                },
            ),
            _ => f.entry(|_: &mut TrapFrame, _: &mut RetData| ()).ret(
                |_: &mut TrapFrame, _: &RetData| {
                    RETURNS.fetch_add(1, Relaxed);
                },
            ),
        });
    }
    let total = symbols::count();
    let mut handles = Vec::new();
    for r in rkprobes::register_many(builders) {
        match r {
            Ok(h) => handles.push(h),
            Err(e) => *why.entry(reason(&e)).or_default() += 1,
        }
    }
    println!(
        "  probe_all: {total} functions, {} probed, {} not:",
        handles.len(),
        total - handles.len()
    );
    for (r, n) in &why {
        println!("    {n:5}  {r}");
    }
    // How the entries were placed: a jump (over the first instruction
    // alone, or over a compressed one and the next), or a breakpoint.
    let listed = rkprobes::probes();
    let jumps = listed.iter().filter(|p| p.jump).count();
    let covering = listed.iter().filter(|p| p.covers.is_some()).count();
    let compressed = listed
        .iter()
        .filter(|p| p.mnemonic.starts_with("c."))
        .count();
    println!(
        "  probe_all: {jumps} jumps ({covering} of them over a compressed first instruction and the next, of {compressed} compressed), {} breakpoints",
        listed.len() - jumps
    );
    check!(
        handles.len() * 2 > total,
        "fewer than half of the functions were probed"
    );
    check!(text_checksum() != checksum, "no breakpoint written");
    *ARMED.lock() = Some(Armed { handles, checksum });
    Ok(())
}

fn fired() -> TestResult {
    let guard = ARMED.lock();
    let armed = guard.as_ref().ok_or("arm_every_function did not run")?;
    let fired = armed.handles.iter().filter(|h| h.hits() > 0).count();
    let entries: u64 = armed.handles.iter().map(|h| h.hits()).sum();
    let missed: u64 = armed.handles.iter().map(|h| h.missed()).sum();
    let returns = RETURNS.load(Relaxed);
    println!(
        "  probe_all: {fired} of {} probes fired; {entries} entries, {returns} returns, {missed} missed",
        armed.handles.len()
    );
    check!(fired >= 50, "only {fired} probes fired");
    // Calls still in flight (this test, its callers) have entered but not
    // returned; every return had an entry.
    check!(
        returns <= entries && returns > 0,
        "{returns} returns for {entries} entries"
    );
    Ok(())
}

fn disarm() -> TestResult {
    let armed = ARMED
        .lock()
        .take()
        .ok_or("arm_every_function did not run")?;
    let n = armed.handles.len();
    let errors: Vec<_> = rkprobes::unregister_many(armed.handles)
        .into_iter()
        .filter_map(|r| r.err())
        .collect();
    check!(
        errors.is_empty(),
        "{} of {n} probes failed to unregister: {errors:?}",
        errors.len()
    );
    check!(
        text_checksum() == armed.checksum,
        "text differs after removing every probe"
    );
    Ok(())
}
