//! The workloads, each printed as `[BENCH]` rows for one library.
//!
//! Per-hit rows: instret of N calls with the probe minus N calls without
//! it, over N; with 4 harts, of 4 x N calls at once over 4N.
//! Registration rows: instructions per register / unregister call.

use super::measure::{self, calls_on, per_hit, Harts, N};
use super::targets::{self, Target, FILL_SLOTS};
use super::tracer::{Handlers, Tracer};
use super::Report;
use alloc::vec::Vec;

/// A per-hit row: which instruction is probed, with which handlers.
pub struct HitRow {
    pub name: &'static str,
    pub target: Target,
    pub handlers: Handlers,
}

/// Extension point: a new kernel probe kind joins this list with a
/// `Handlers` variant, a target in `targets.rs` and the `Tracer::register`
/// arm; a library that cannot do one returns an error, which becomes a
/// `#` line instead of a row. Rows only rkprobes has live elsewhere:
/// `async_row.rs` (async probes) and `user_rows.rs` (uprobes, with their
/// own user-mode loop).
pub const HIT_ROWS: [HitRow; 12] = [
    HitRow {
        name: "kprobe_simulated",
        target: targets::BRANCH,
        handlers: Handlers::Pre,
    },
    HitRow {
        name: "kprobe_xol",
        target: targets::ADD,
        handlers: Handlers::Pre,
    },
    HitRow {
        name: "kprobe_post",
        target: targets::ADD,
        handlers: Handlers::PrePost,
    },
    // Compressed instructions: rkprobes' jump covers the next instruction
    // too (no trap per hit).
    HitRow {
        name: "kprobe_simulated_c",
        target: targets::C_BRANCH,
        handlers: Handlers::Pre,
    },
    HitRow {
        name: "kprobe_xol_c",
        target: targets::C_ADD,
        handlers: Handlers::Pre,
    },
    // Compressed instructions whose next one the jump cannot cover:
    // rkprobes' breakpoint probes (a trap per hit).
    HitRow {
        name: "kprobe_simulated_bp",
        target: targets::C_BRANCH_BP,
        handlers: Handlers::Pre,
    },
    HitRow {
        name: "kprobe_xol_bp",
        target: targets::C_ADD_BP,
        handlers: Handlers::Pre,
    },
    // `bench_ret`'s first instruction (an `add`, as `bench_add`'s) is its
    // entry: entry and return of one call.
    HitRow {
        name: "kretprobe",
        target: targets::RET,
        handlers: Handlers::EntryReturn,
    },
    // The same on a function whose first instruction is compressed (as
    // most are: `c.addi sp, -N`), covered by the jump with the next one.
    HitRow {
        name: "kretprobe_c",
        target: targets::C_RET,
        handlers: Handlers::EntryReturn,
    },
    // And where the jump cannot cover the next one: the entry takes a
    // breakpoint.
    HitRow {
        name: "kretprobe_bp",
        target: targets::C_ADD_BP,
        handlers: Handlers::EntryReturn,
    },
    // A function probe (`on_call`/`on_return`): the arguments and the
    // return value alone, through the light way in and out.
    HitRow {
        name: "fprobe",
        target: targets::CALL,
        handlers: Handlers::CallReturn,
    },
    HitRow {
        name: "fprobe_c",
        target: targets::C_CALL,
        handlers: Handlers::CallReturn,
    },
];

/// The hart sets each per-hit row runs on. A 1-hart machine gives the
/// `harts=1` rows; a 4-hart one (`cargo xtask bench` boots both) the
/// `harts=4` rows: every hart makes N calls at once and the per-hit figure
/// is the window's instructions (probed minus unprobed) over 4N hits.
/// `instret` is not per hart under QEMU `-icount`, so the window holds
/// nothing but the workload: see `measure::window`. The 4-hart machine
/// also measures each row with the boot hart alone (the others halted)
/// as a check: it must match the 1-hart machine's row.
fn hart_sets() -> &'static [Harts] {
    if crate::smp::online() == 1 {
        &[Harts::One]
    } else {
        &[Harts::One, Harts::All]
    }
}

/// Prints a per-hit row; on a machine with several harts the boot-hart-
/// alone figure is a `#` check line, not a row.
fn emit(report: &mut Report, name: &str, imp: &str, harts: Harts, v: f64) {
    if harts == Harts::One && crate::smp::online() > 1 {
        println!(
            "# check {name} impl={imp} harts=1 on the {}-hart machine, the others halted: \
             instructions_per_hit={v:.2}",
            crate::smp::online()
        );
    } else {
        report.row(name, imp, harts.count(), 1, v, N * harts.count() as u64);
    }
}

/// The probe counts of the scaling rows.
pub const SCALES: [usize; 3] = [1, 100, 1000];

/// `trap_floor` on one hart and on all: the bare breakpoint round trip.
pub fn trap_floor(impl_name: &str, report: &mut Report) -> f64 {
    let mut one_hart = 0.0;
    for &harts in hart_sets() {
        let base = calls_on(harts, targets::FLOOR_BASE, N);
        let trap = calls_on(harts, targets::FLOOR_TRAP, N);
        let v = per_hit(base, trap, N * harts.count() as u64);
        if harts == Harts::One {
            one_hart = v;
        }
        emit(report, "trap_floor", impl_name, harts, v);
    }
    one_hart
}

/// Cost per hit of one probe on `target`, with `others` already registered.
pub(super) fn hit_cost<T: Tracer>(
    t: &T,
    target: Target,
    handlers: Handlers,
    harts: Harts,
    floor: f64,
) -> Result<f64, alloc::string::String> {
    let base = calls_on(harts, target.func, N);
    let probe = t.register((target.probe_at)(), handlers)?;
    let probed = calls_on(harts, target.func, N);
    let hits = t.hits(&probe);
    t.unregister(probe)?;
    let expected = N * harts.count() as u64;
    let v = per_hit(base, probed, expected);
    if hits.is_some_and(|h| h != expected) {
        return Err(alloc::format!("counted {hits:?} hits, expected {expected}"));
    }
    // A hit takes at least one trap: less means the probe did not fire.
    if v < floor {
        return Err(alloc::format!(
            "{v:.2} instructions per hit is below the trap floor"
        ));
    }
    Ok(v)
}

pub fn hit_rows<T: Tracer>(t: &T, floor: f64, report: &mut Report) {
    // `row=NAME` on the command line: that row alone (for tracing it).
    let only = crate::bootargs::get("row");
    for row in HIT_ROWS.iter().filter(|r| only.is_none_or(|n| n == r.name)) {
        for &harts in hart_sets() {
            match hit_cost(t, row.target, row.handlers, harts, floor) {
                Ok(v) => emit(report, row.name, T::IMPL, harts, v),
                Err(e) => report.skip(row.name, T::IMPL, harts.count(), &e),
            }
        }
    }
}

/// Registers `count` probes (the `add` target first, then `bench_fill`'s
/// instructions), measures `kprobe_xol` on the target with all of them in
/// place, and unregisters them. Also prints the memory row at 1,000.
pub fn scaling<T: Tracer>(t: &T, floor: f64, report: &mut Report) {
    for &count in &SCALES {
        assert!(count - 1 <= FILL_SLOTS);
        let base = calls_on(Harts::One, targets::ADD.func, N);
        let addrs: Vec<usize> = core::iter::once((targets::ADD.probe_at)())
            .chain((0..count - 1).map(targets::fill_at))
            .collect();
        let mut probes = Vec::with_capacity(count);
        let mut failed = None;
        let mem_before = t.memory();
        let reg = measure::counted(|| {
            for &a in &addrs {
                match t.register(a, Handlers::Pre) {
                    Ok(p) => probes.push(p),
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
        });
        let mem_after = t.memory();
        let probed = calls_on(Harts::One, targets::ADD.func, N);
        let hits = probes.first().and_then(|p| t.hits(p));
        let registered = probes.len();
        let mut unreg_failed = None;
        let unreg = measure::counted(|| {
            for p in probes.drain(..) {
                if let Err(e) = t.unregister(p) {
                    unreg_failed.get_or_insert(e);
                }
            }
        });
        if let Some(e) = failed.or(unreg_failed) {
            report.skip(
                "register",
                T::IMPL,
                1,
                &alloc::format!("{count} probes: {e}"),
            );
            continue;
        }
        let calls = registered as u64;
        report.row(
            "register",
            T::IMPL,
            1,
            count,
            reg as f64 / calls as f64,
            calls,
        );
        report.row(
            "unregister",
            T::IMPL,
            1,
            count,
            unreg as f64 / calls as f64,
            calls,
        );
        let v = per_hit(base, probed, N);
        if hits.is_some_and(|h| h != N) || v < floor {
            report.skip(
                "kprobe_xol",
                T::IMPL,
                1,
                "probe did not fire with many registered",
            );
        } else if count > 1 {
            // probes=1 is the per-hit row itself.
            report.row("kprobe_xol", T::IMPL, 1, count, v, N);
        }
        if count == 1000 {
            let per = |a: usize, b: usize| (a.saturating_sub(b)) / count;
            report.mem(
                T::IMPL,
                per(mem_after.slot_bytes, mem_before.slot_bytes),
                per(mem_after.bookkeeping_bytes, mem_before.bookkeeping_bytes),
                mem_after.fixed_bytes,
                T::MEMORY_NOTE,
            );
        }
    }
}
