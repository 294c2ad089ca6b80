//! The workloads, each printed as `[BENCH]` rows for one library.
//!
//! Per-hit rows: instret of N calls with the probe minus N calls without
//! it, over N, on each hart (averaged when several harts run at once).
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
pub const HIT_ROWS: [HitRow; 6] = [
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
    // Compressed instructions: rkprobes' breakpoint probes (a trap per
    // hit, and a second one to end the out-of-line step).
    HitRow {
        name: "kprobe_simulated_bp",
        target: targets::C_BRANCH,
        handlers: Handlers::Pre,
    },
    HitRow {
        name: "kprobe_xol_bp",
        target: targets::C_ADD,
        handlers: Handlers::Pre,
    },
    // `bench_add`'s first instruction is its entry: entry and return of
    // one call.
    HitRow {
        name: "kretprobe",
        target: targets::ADD,
        handlers: Handlers::EntryReturn,
    },
];

/// Whether the `harts=4` rows run. Off, for two reasons found under
/// QEMU 7.2 `-icount shift=0,sleep=off` (all vCPUs round-robin on one host
/// thread):
/// - the first `smp::run_on_all` hangs: a vCPU that has an interrupt
///   pending (or is runnable) can be passed over indefinitely while hart 0
///   spins; seen both for a hart woken from `wfi` (stuck right after
///   OpenSBI's `stimecmp` write) and, with the tick off, for a hart waiting
///   in OpenSBI's boot `wfi`. Idle harts busy-polling instead of `wfi`
///   gets `run_on_all` through;
/// - even then the counts are not per hart: QEMU 7.2 reads `instret`
///   (and `cycle`) as the global icount, the instructions of all harts,
///   so a hart's delta includes whatever the others ran in its window
///   (trap_floor came out 361 instead of 114 with 4 harts; a `register`
///   with a remote fence.i took 490 million). Per-hart rows need a
///   per-hart counter (e.g. a QEMU whose PMU counts per vCPU) or
///   counting in software.
///
/// The 4-hart code paths run when this is on (without `-icount` they
/// complete, but the counts are then not exact).
pub const SMP_ROWS: bool = false;

/// The hart sets each per-hit row runs on.
fn hart_sets() -> &'static [Harts] {
    if SMP_ROWS {
        &[Harts::One, Harts::All]
    } else {
        &[Harts::One]
    }
}

/// Says once per library why the 4-hart rows are missing.
pub fn note_smp(impl_name: &str) {
    if !SMP_ROWS {
        println!(
            "# harts=4 rows impl={impl_name}: not measured: under QEMU 7.2 -icount \
             instret counts all harts, and run_on_all hangs (see bench/rows.rs SMP_ROWS)"
        );
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
        let v = per_hit(&base, &trap, N);
        if harts == Harts::One {
            one_hart = v;
        }
        report.row(
            "trap_floor",
            impl_name,
            harts.count(),
            1,
            v,
            N * harts.count() as u64,
        );
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
    let v = per_hit(&base, &probed, N);
    let expected = N * harts.count() as u64;
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
    for row in &HIT_ROWS {
        for &harts in hart_sets() {
            match hit_cost(t, row.target, row.handlers, harts, floor) {
                Ok(v) => report.row(
                    row.name,
                    T::IMPL,
                    harts.count(),
                    1,
                    v,
                    N * harts.count() as u64,
                ),
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
        let v = per_hit(&base, &probed, N);
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
