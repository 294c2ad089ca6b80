//! The user-mode rows: the user trap floor and uprobe / uretprobe hits,
//! each (N calls with the probe − N calls without) / N of the same user
//! loop, counted by the program itself (`user_run.rs`).

use super::hook;
use super::measure::N;
use super::user_run::{self, PATH};
use super::Report;
use crate::loader;
use alloc::format;
use alloc::string::String;
use core::sync::atomic::{AtomicU64, Ordering};
use rkprobes::{Uprobe, UprobeHandle};

const IMPL: &str = "rkprobes";

/// Returns seen by the `uretprobe` row's return handler: the library
/// counts a uretprobe's entries only.
static RETURNS: AtomicU64 = AtomicU64::new(0);

/// A per-hit uprobe row: which `ubench` function is called and probed.
struct UserRow {
    name: &'static str,
    /// The `ubench` FUNC argument.
    func: &'static str,
    /// The probe on it, with empty handlers.
    probe: fn() -> Uprobe,
    /// Whether it is a return probe (then its returns are counted too).
    ret: bool,
}

const ROWS: [UserRow; 3] = [
    // `add a0, a0, a1`: stepped out of line in the slot page.
    UserRow {
        name: "uprobe",
        func: "add",
        probe: || Uprobe::new(PATH).symbol("ubench_add").pre(|_| ()),
        ret: false,
    },
    // `bne a0, a1`: simulated on the trap frame.
    UserRow {
        name: "uprobe_simulated",
        func: "branch",
        probe: || Uprobe::new(PATH).symbol("ubench_branch").pre(|_| ()),
        ret: false,
    },
    // Entry (its `add`, out of line) and return of one call.
    UserRow {
        name: "uretprobe",
        func: "add",
        probe: || {
            Uprobe::new(PATH)
                .symbol("ubench_add")
                .entry(|_, _| ())
                .ret(|_, _| {
                    RETURNS.fetch_add(1, Ordering::Relaxed);
                })
        },
        ret: true,
    },
];

/// `utrap_floor`: a user `ebreak` the user trap path's bench hook skips,
/// against a `nop` in its place. No counter in the hook (it would be part
/// of the floor): an `ebreak` the hook did not skip would kill the
/// program, so a clean exit means all N went through it.
fn user_floor() -> Result<f64, String> {
    let (at, _) = loader::elf_symbol(PATH, "ubench_ebreak_at")
        .ok_or_else(|| format!("no ubench_ebreak_at in {PATH}"))?;
    let base = user_run::count("nop")?;
    hook::set_user_floor(at);
    let trap = user_run::count("ebreak");
    hook::set_user_floor(0);
    per_hit(base, trap?)
}

fn per_hit(base: u64, probed: u64) -> Result<f64, String> {
    let delta = probed
        .checked_sub(base)
        .ok_or_else(|| format!("probed run {probed} < unprobed run {base}"))?;
    Ok(delta as f64 / N as f64)
}

fn unregister(h: UprobeHandle) -> Result<(), String> {
    h.unregister().map_err(|e| format!("unregister: {e}"))
}

/// Cost per hit of `row`'s probe; checks it fired N times (N returns too
/// for a return probe) and cost at least one user trap.
fn hit_cost(row: &UserRow, floor: f64) -> Result<f64, String> {
    let base = user_run::count(row.func)?;
    RETURNS.store(0, Ordering::Relaxed);
    let h = (row.probe)()
        .register()
        .map_err(|e| format!("register: {e}"))?;
    let probed = user_run::count(row.func);
    let (hits, missed) = (h.hits(), h.missed());
    unregister(h)?;
    let v = per_hit(base, probed?)?;
    if (hits, missed) != (N, 0) {
        return Err(format!("{hits} hits, {missed} missed, expected {N} hits"));
    }
    let returns = RETURNS.load(Ordering::Relaxed);
    if row.ret && returns != N {
        return Err(format!("{returns} returns, expected {N}"));
    }
    if v < floor {
        return Err(format!(
            "{v:.2} instructions per hit is below the user trap floor"
        ));
    }
    Ok(v)
}

pub fn rows(report: &mut Report) {
    let floor = match user_floor() {
        Ok(v) => {
            report.row("utrap_floor", IMPL, 1, 1, v, N);
            v
        }
        Err(e) => {
            report.skip("utrap_floor", IMPL, 1, &e);
            return;
        }
    };
    for row in &ROWS {
        match hit_cost(row, floor) {
            Ok(v) => report.row(row.name, IMPL, 1, 1, v, N),
            Err(e) => report.skip(row.name, IMPL, 1, &e),
        }
    }
}
