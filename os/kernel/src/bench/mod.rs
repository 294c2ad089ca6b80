//! `mode=bench`: what a probe hit costs, in instructions, held against the
//! bare trap round trip and against the `kprobe` crate 0.6.
//!
//! Counted with `instret`, interrupts masked during every measured loop
//! (timer ticks stay out), under QEMU `-icount shift=0,sleep=off` where
//! the counts are exact and repeatable. `cargo xtask bench` boots a 1-hart
//! machine (every row with `harts=1`) and a 4-hart one (the `harts=4`
//! per-hit rows, see `measure.rs`), and parses the output
//! (xtask/src/bench.rs).
//!
//! - `targets.rs`: the assembly functions called and probed;
//! - `measure.rs`: instret around N calls, on one hart or on all at once;
//! - `hook.rs`: the trap handler's bench hook (trap floor, kprobe routing);
//! - `tracer.rs`: the library interface, and rkprobes behind it;
//! - `kprobe06/`: the `kprobe` crate behind it;
//! - `rows.rs`: the workloads;
//! - `async_row.rs`: one poll of a traced `async fn`;
//! - `user_run.rs`, `user_rows.rs`: the user-mode workload (`/bin/ubench`)
//!   and the user trap floor, uprobe and uretprobe rows.

mod async_row;
mod hook;
mod kprobe06;
mod measure;
mod ret_scaling;
mod rows;
mod targets;
mod tracer;
mod user_rows;
mod user_run;

pub use hook::{on_breakpoint, on_user_breakpoint};

use tracer::Tracer;

/// Counts rows that could not be measured for a reason other than a
/// documented limitation of a library.
#[derive(Default)]
pub struct Report {
    failures: u32,
}

impl Report {
    pub fn row(&mut self, name: &str, imp: &str, harts: usize, probes: usize, v: f64, hits: u64) {
        println!(
            "[BENCH] name={name} impl={imp} harts={harts} probes={probes} \
             instructions_per_hit={v:.2} hits={hits}"
        );
    }

    /// A row that cannot exist; the reason goes on a comment line.
    pub fn skip(&mut self, name: &str, imp: &str, harts: usize, why: &str) {
        println!("# {name} impl={imp} harts={harts}: not measured: {why}");
        // Limits of the `kprobe` crate (or of this bench's use of it) are
        // reported, not failures of the run.
        if !why.contains("kprobe 0.6") {
            self.failures += 1;
        }
    }

    pub fn mem(&mut self, imp: &str, slot: usize, bookkeeping: usize, fixed: usize, note: &str) {
        println!("[BENCH-MEM] impl={imp} slot_bytes={slot} bookkeeping_bytes={bookkeeping}");
        println!("# memory impl={imp}: per probe over 1000 probes, {note}; fixed bytes {fixed}");
    }
}

/// The library's rows; returns its trap floor. With several harts
/// online: the per-hit rows alone (the others count on one hart, see
/// `measure`).
fn run_library<T: Tracer>(t: &T, report: &mut Report) -> f64 {
    let floor = rows::trap_floor(T::IMPL, report);
    rows::hit_rows(t, floor, report);
    if crate::smp::online() == 1 {
        rows::scaling(t, floor, report);
    }
    floor
}

/// Runs every workload for both libraries; returns the exit code.
pub fn run() -> u32 {
    let mut report = Report::default();
    println!(
        "# instret deltas over N={} calls per hart, interrupts masked in measured loops; \
         register/unregister rows: instructions per call (hits = calls)",
        measure::N
    );
    // `bench=user` / `bench=hits` on the command line: the user rows / the
    // kernel per-hit rows alone (for tracing one kind of hit).
    match crate::bootargs::get("bench") {
        Some("user") => user_rows::rows(&mut report),
        // `cargo xtask bench --quick`: the kernel per-hit rows alone.
        Some("hits") => {
            let floor = rows::trap_floor(tracer::Rkprobes::IMPL, &mut report);
            rows::hit_rows(&tracer::Rkprobes, floor, &mut report);
        }
        _ => {}
    }
    if crate::bootargs::get("bench").is_some() {
        println!("[BENCH] done");
        return u32::from(report.failures > 0);
    }
    // Rows only rkprobes can have: async probes and uprobes (1-hart
    // machine only).
    let floor = run_library(&tracer::Rkprobes, &mut report);
    if crate::smp::online() == 1 {
        // The async row before the scaling rows, whose thousands of
        // registrations leave the heap (which each of its polls uses)
        // in another state.
        async_row::row(floor, &mut report);
        ret_scaling::rows(floor, &mut report);
        user_rows::rows(&mut report);
    }
    match kprobe06::Kprobe06::new() {
        Ok(k) => {
            hook::route_to_kprobe06(true);
            run_library(&k, &mut report);
            hook::route_to_kprobe06(false);
        }
        Err(e) => report.skip("all", "kprobe-0.6", 0, e),
    }
    println!("[BENCH] done");
    u32::from(report.failures > 0)
}
