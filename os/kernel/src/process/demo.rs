//! The demo's user-process part: a few programs on every hart, traced
//! with uprobes: a uretprobe on `/bin/fib`'s `compute` (its argument and
//! return value) and a uprobe on `/bin/threads`' `tstep`, hit by the
//! program's four threads on several harts.

use super::{run_until_idle, spawn};
use crate::arch;
use crate::boot::MAX_HARTS;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use rkprobes::{ProbeType, TrapFrame, Uprobe, UprobeHandle};

/// What the handlers saw (they run in the hit path: no printing there).
static FIB_ARG: AtomicU64 = AtomicU64::new(0);
static FIB_RET: AtomicU64 = AtomicU64::new(0);
static TSTEP_PER_HART: [AtomicUsize; MAX_HARTS] = [const { AtomicUsize::new(0) }; MAX_HARTS];

fn probes() -> [Result<UprobeHandle, rkprobes::Error>; 2] {
    let fib = Uprobe::new("/bin/fib")
        .symbol("compute")
        .kind(ProbeType::SyncFunc)
        .pre(|tf: &mut TrapFrame| FIB_ARG.store(tf.arg(0) as u64, Relaxed))
        .post(|tf: &mut TrapFrame| FIB_RET.store(tf.ret() as u64, Relaxed))
        .register();
    let tstep = Uprobe::new("/bin/threads")
        .symbol("tstep")
        .pre(|_: &mut TrapFrame| {
            TSTEP_PER_HART[arch::hart_id()].fetch_add(1, Relaxed);
        })
        .register();
    [fib, tstep]
}

pub fn run() {
    println!(
        "[demo] user processes: /bin/hello, /bin/fib 30, /bin/forktest, /bin/threads work 500"
    );
    let probes = probes();
    for p in &probes {
        match p {
            Ok(h) => println!("[demo] uprobe #{} registered", h.id()),
            Err(e) => println!("[demo] uprobe refused: {e}"),
        }
    }
    let programs: [(&str, &[&str]); 4] = [
        ("/bin/hello", &["hello"]),
        ("/bin/fib", &["fib", "30"]),
        ("/bin/forktest", &["forktest"]),
        ("/bin/threads", &["threads", "work", "500"]),
    ];
    let spawned: alloc::vec::Vec<_> = programs
        .iter()
        .filter_map(|(path, args)| spawn(path, args).ok().map(|p| (path, p)))
        .collect();
    run_until_idle();
    for (path, p) in spawned {
        println!(
            "[demo] {path} (pid {}) exited with {:?}, ran on harts {:#b}",
            p.pid(),
            p.exit_code(),
            p.harts_seen()
        );
    }
    let [fib, tstep] = probes;
    if let Ok(h) = fib {
        println!(
            "[uretprobe] /bin/fib compute({}) = {} ({} call, {} missed)",
            FIB_ARG.load(Relaxed),
            FIB_RET.load(Relaxed),
            h.hits(),
            h.missed()
        );
        let _ = h.unregister();
    }
    if let Ok(h) = tstep {
        let per_hart: alloc::vec::Vec<_> = TSTEP_PER_HART
            .iter()
            .enumerate()
            .map(|(i, c)| (i, c.load(Relaxed)))
            .filter(|&(_, c)| c > 0)
            .collect();
        println!(
            "[uprobe] /bin/threads tstep: {} hits from 4 threads, per hart {per_hart:?}",
            h.hits()
        );
        let _ = h.unregister();
    }
}
