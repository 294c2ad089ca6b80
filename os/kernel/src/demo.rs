//! `cargo xtask run`: live traces of the kernel by rkprobes. Each part
//! registers probes, runs real kernel code under them, prints what the
//! handlers saw, and removes them.

use crate::{arch, smp};
use alloc::string::String;
use alloc::vec::Vec;
use core::hint::black_box;
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use rkprobes::{CallRegs, Kprobe, RetData, ReturnRegs, TrapFrame};

/// Naive Fibonacci: recursive, so its return probe sees many live calls.
#[inline(never)]
fn demo_fib(n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    black_box(demo_fib(n - 1)) + black_box(demo_fib(n - 2))
}

/// Called on every hart by the SMP part.
#[inline(never)]
fn demo_work(hart: usize, round: usize) -> usize {
    black_box(hart * 100 + round)
}

/// Reads a `&str` argument passed in two registers.
fn str_arg(tf: &TrapFrame, n: usize) -> String {
    let (ptr, len) = (tf.arg(n), tf.arg(n + 1));
    // SAFETY: the probed function's signature is `(&str, ..)`: a valid
    // pointer and length to UTF-8 bytes that live across the call.
    let bytes = unsafe { core::slice::from_raw_parts(ptr as *const u8, len.min(64)) };
    String::from_utf8_lossy(bytes).into()
}

pub fn run() {
    println!("\n== kprobe on kernel::bootargs::get: print its &str argument ==");
    let p = Kprobe::symbol("kernel::bootargs::get")
        .pre(|tf: &mut TrapFrame| {
            println!(
                "  [kprobe] hart {} bootargs::get({:?})",
                arch::hart_id(),
                str_arg(tf, 0)
            );
        })
        .register();
    let _ = crate::bootargs::get("mode");
    let _ = crate::bootargs::get("filter");
    if let Ok(p) = p {
        println!("  {} hits", p.hits());
        let _ = p.unregister();
    }

    println!("\n== entry + return probe on demo_fib (recursive): fib(n) = value ==");
    let p = Kprobe::symbol("kernel::demo::demo_fib")
        .entry(|tf: &mut TrapFrame, d: &mut RetData| d[0] = tf.arg(0))
        .ret(|tf: &mut TrapFrame, d: &RetData| {
            if d[0] >= 4 {
                println!("  [kretprobe] fib({}) = {}", d[0], tf.ret());
            }
        })
        .maxactive(32)
        .register();
    let r = demo_fib(6);
    if let Ok(p) = p {
        println!(
            "  fib(6) = {r}: {} calls traced, {} missed",
            p.hits(),
            p.missed()
        );
        let _ = p.unregister();
    }

    println!(
        "\n== function probe on demo_fib (on_call/on_return: arguments and return value \
         only, the light way in and out) =="
    );
    let p = Kprobe::symbol("kernel::demo::demo_fib")
        .on_call(|r: &mut CallRegs, d: &mut RetData| d[0] = r.arg(0))
        .on_return(|r: &mut ReturnRegs, d: &RetData| {
            if d[0] >= 5 {
                println!("  [fprobe] fib({}) = {}", d[0], r.ret());
            }
        })
        .maxactive(32)
        .register();
    let r = demo_fib(7);
    if let Ok(p) = p {
        println!(
            "  fib(7) = {r}: {} calls traced, {} missed",
            p.hits(),
            p.missed()
        );
        let _ = p.unregister();
    }

    println!("\n== kprobe on demo_work while every hart calls it ==");
    static PER_HART: [AtomicUsize; crate::boot::MAX_HARTS] =
        [const { AtomicUsize::new(0) }; crate::boot::MAX_HARTS];
    let per_hart = &PER_HART;
    let p = Kprobe::symbol("kernel::demo::demo_work")
        .pre(|_: &mut TrapFrame| {
            PER_HART[arch::hart_id()].fetch_add(1, Relaxed);
        })
        .register();
    smp::run_on_all(true, &|hart| {
        for round in 0..1000 {
            demo_work(hart, round);
        }
    });
    if let Ok(p) = p {
        let counts: Vec<_> = smp::harts()
            .map(|h| (h, per_hart[h].load(Relaxed)))
            .collect();
        println!("  hits per hart: {counts:?}; total {}", p.hits());
        println!("\n== the probe list while it is registered ==");
        for i in rkprobes::probes() {
            println!(
                "  #{} {:#x} {} {:?} hits={} missed={}",
                i.id,
                i.addr,
                i.symbol.as_deref().unwrap_or("?"),
                i.kind,
                i.hits,
                i.missed
            );
        }
        let _ = p.unregister();
    }
    let m = rkprobes::memory_stats();
    println!(
        "  after removal: {} probes, {} slot bytes in use (detours stay, for a hart \
         that may still be in one and for the next probe there), {} detours free\n",
        m.probes, m.slot_bytes, m.detours_free
    );
}
