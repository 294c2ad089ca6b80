//! `kretprobe` and `fprobe` per hit with many return probes registered:
//! 100 and every kernel function the library accepts (probes=1 is the hit
//! row). The other functions get an entry and return probe of the row's
//! kind with empty handlers; the row's own probe is on `bench_ret` /
//! `bench_call`, measured as in `rows.rs`.

use super::measure::{Harts, N};
use super::rows::hit_cost;
use super::targets;
use super::tracer::{Handlers, Rkprobes};
use super::Report;
use crate::symbols;
use alloc::vec::Vec;
use rkprobes::{CallRegs, Kprobe, ProbeHandle, RetData, ReturnRegs, TrapFrame};

fn function_probe(addr: usize, handlers: Handlers) -> Kprobe {
    let k = Kprobe::function(addr);
    match handlers {
        Handlers::CallReturn => k
            .on_call(|_: &mut CallRegs, _: &mut RetData| ())
            .on_return(|_: &mut ReturnRegs, _: &RetData| ()),
        _ => k
            .entry(|_: &mut TrapFrame, _: &mut RetData| ())
            .ret(|_: &mut TrapFrame, _: &RetData| ()),
    }
}

/// Return probes of the kind of `handlers` on up to `limit` functions
/// other than the bench targets.
fn probe_others(limit: usize, handlers: Handlers) -> Vec<ProbeHandle> {
    let mut handles = Vec::new();
    // Not the bench itself: its loop and handlers would only add nested
    // hits (as in the probe-all test, which excludes its own harness).
    let candidates = symbols::all().filter(|s| {
        let name = s.name.trim_start_matches('<');
        !name.starts_with("bench_") && !name.starts_with("kernel::bench::")
    });
    if limit == usize::MAX {
        let builders = candidates
            .map(|s| function_probe(s.addr, handlers))
            .collect();
        handles.extend(rkprobes::register_many(builders).into_iter().flatten());
    } else {
        for s in candidates {
            if handles.len() == limit {
                break;
            }
            handles.extend(function_probe(s.addr, handlers).register());
        }
    }
    handles
}

pub fn rows(floor: f64, report: &mut Report) {
    let kinds = [
        ("kretprobe", targets::RET, Handlers::EntryReturn),
        ("fprobe", targets::CALL, Handlers::CallReturn),
    ];
    for (name, target, handlers) in kinds {
        for limit in [99, usize::MAX] {
            let others = probe_others(limit, handlers);
            let probes = others.len() + 1;
            match hit_cost(&Rkprobes, target, handlers, Harts::One, floor) {
                Ok(v) => report.row(name, "rkprobes", 1, probes, v, N),
                Err(e) => report.skip(name, "rkprobes", 1, &alloc::format!("{probes} probes: {e}")),
            }
            if rkprobes::unregister_many(others).iter().any(Result::is_err) {
                report.skip(name, "rkprobes", 1, "unregistering the others failed");
            }
        }
    }
}
