//! `threads MODE [n]`: a target for thread and uprobes tests.
//! - `work n` (default): 4 threads of this process each call `tstep` `n`
//!   times (computing a while between calls, so they are preempted and
//!   spread over harts), then end with code `10 + k`; the first thread
//!   joins them in order and prints each one's result and exit code, then
//!   their total (the output does not depend on how they interleave);
//! - `exit`: thread 2 calls `exit(5)` while the others spin forever: the
//!   process ends with 5;
//! - `last`: the first thread ends with `thread_exit(3)` before the other
//!   (which ends with 4): the process ends with the last thread's code 4;
//! - `exitin`: 20 threads, one after the other, each end inside `texit`
//!   (it calls `thread_exit` for a non-zero argument), then the first
//!   thread calls `texit(0)`, which returns 7, and prints it.
//!
//! `tstep` is assembly (no compressed instructions): `tstep` itself (an
//! `slli`, stepped out of line), `tstep+4` an `auipc` (simulated, PC
//! relative) that finds a constant next to it, `tstep+16` a `bnez`
//! (simulated).
#![no_std]
#![no_main]

use core::arch::global_asm;
use core::hint::black_box;
use core::sync::atomic::{AtomicU64, Ordering};
use user::{exit, println, thread_exit, thread_join, thread_spawn, yield_now};

const THREADS: usize = 4;
const STACK: usize = 16 * 1024;
const SPIN_PER_CALL: u64 = 3_000;

global_asm!(
    ".pushsection .text.tstep,\"ax\",@progbits",
    ".option push",
    ".option norvc",
    ".p2align 2",
    ".globl tstep",
    ".type tstep, @function",
    "tstep:",
    "slli a1, a0, 1",
    "1: auipc t0, %pcrel_hi(tstep_k)",
    "ld t0, %pcrel_lo(1b)(t0)",
    "add a0, a0, t0",
    "bnez a0, 2f",
    "addi a0, a0, 1",
    "2: xor a0, a0, a1",
    "ret",
    ".size tstep, . - tstep",
    // texit(a0): a0 != 0 ends the calling thread (thread_exit(0)) inside
    // the function; a0 == 0 returns 7.
    ".globl texit",
    ".type texit, @function",
    "texit:",
    "beqz a0, 3f",
    "li a0, 0",
    "li a7, 1001",
    "ecall",
    "3: li a0, 7",
    "ret",
    ".size texit, . - texit",
    ".p2align 3",
    "tstep_k:",
    ".dword 0x9e3779b97f4a7c15",
    ".option pop",
    ".popsection",
);

extern "C" {
    fn tstep(i: u64) -> u64;
    fn texit(end_thread: u64) -> u64;
}

/// Threads that end inside `texit` in mode `exitin`.
const EXIT_INSIDE: usize = 20;

#[repr(C, align(16))]
struct ExitStack([u8; STACK]);

static mut EXIT_STACK: ExitStack = ExitStack([0; STACK]);

extern "C" fn end_inside(_: usize) -> i32 {
    // SAFETY: `texit` follows the C ABI; with 1 it never returns.
    unsafe { texit(1) };
    unreachable!("texit(1) returned")
}

static RESULTS: [AtomicU64; THREADS] = [const { AtomicU64::new(0) }; THREADS];
static CALLS: AtomicU64 = AtomicU64::new(2000);

#[repr(C, align(16))]
struct Stacks([[u8; STACK]; THREADS]);

static mut STACKS: Stacks = Stacks([[0; STACK]; THREADS]);

/// Thread `k`'s stack (each handed out once).
fn stack(k: usize) -> &'static mut [u8] {
    // SAFETY: `main` hands out each of the `THREADS` stacks once, to the
    // one thread that uses it.
    unsafe { &mut (*core::ptr::addr_of_mut!(STACKS)).0[k] }
}

extern "C" fn worker(k: usize) -> i32 {
    let calls = CALLS.load(Ordering::Relaxed);
    let mut acc = 0u64;
    for i in 0..calls {
        // SAFETY: `tstep` follows the C ABI and touches only a0, a1, t0.
        acc = acc.wrapping_add(unsafe { tstep(black_box(k as u64 * 1_000_000 + i)) });
        for j in 0..SPIN_PER_CALL {
            black_box(j);
        }
    }
    RESULTS[k].store(acc, Ordering::Relaxed);
    10 + k as i32
}

extern "C" fn spin_forever(_: usize) -> i32 {
    loop {
        black_box(0);
    }
}

extern "C" fn exit_soon(_: usize) -> i32 {
    for _ in 0..3 {
        yield_now();
    }
    exit(5)
}

extern "C" fn end_last(_: usize) -> i32 {
    for _ in 0..5 {
        yield_now();
    }
    4
}

fn start(f: extern "C" fn(usize) -> i32, k: usize) -> usize {
    match thread_spawn(f, k, stack(k)) {
        Some(tid) => tid,
        None => {
            println!("threads: thread_spawn failed");
            exit(1)
        }
    }
}

#[no_mangle]
fn main(args: &[&str]) -> i32 {
    let mode = args.get(1).copied().unwrap_or("work");
    if let Some(n) = args.get(2).and_then(|a| a.parse().ok()) {
        CALLS.store(n, Ordering::Relaxed);
    }
    match mode {
        "work" => {
            let tids: [usize; THREADS] = core::array::from_fn(|k| start(worker, k));
            let mut total = 0u64;
            for (k, tid) in tids.iter().enumerate() {
                let code = thread_join(*tid);
                let r = RESULTS[k].load(Ordering::Relaxed);
                total = total.wrapping_add(r);
                println!("thread {k}: result {r:#x}, exit code {code:?}");
            }
            let again = thread_join(tids[0]);
            println!(
                "threads: {THREADS} x {} calls, total {total:#x}, join again {again:?}",
                CALLS.load(Ordering::Relaxed)
            );
            0
        }
        "exit" => {
            for k in 0..THREADS {
                start(if k == 2 { exit_soon } else { spin_forever }, k);
            }
            loop {
                black_box(0);
            }
        }
        "last" => {
            start(end_last, 0);
            thread_exit(3)
        }
        "exitin" => {
            for _ in 0..EXIT_INSIDE {
                // SAFETY: one thread at a time uses the stack: the
                // previous one was joined (it ended) before the next
                // starts.
                let stack = unsafe { &mut (*core::ptr::addr_of_mut!(EXIT_STACK)).0 };
                match thread_spawn(end_inside, 0, stack) {
                    Some(tid) => {
                        thread_join(tid);
                    }
                    None => return 1,
                }
            }
            // SAFETY: as above; 0 returns.
            let r = unsafe { texit(0) };
            println!("threads: {EXIT_INSIDE} ended inside texit, texit(0) = {r}");
            0
        }
        _ => 2,
    }
}
