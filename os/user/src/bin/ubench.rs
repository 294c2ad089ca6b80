//! `ubench FUNC n`: the user-mode workload of `cargo xtask bench`. Calls
//! one assembly function `n` times in a loop and prints
//! `ubench: instret=<delta>`, the instructions the hart retired during the
//! loop (user and kernel alike: a probe hit's trap is counted), read with
//! `rdinstret` (the bench kernel sets `scounteren.IR`).
//!
//! The same loop code runs for every FUNC, so the kernel's per-hit figure
//! `(probed - unprobed) / n` is exact. FUNC is one of:
//! - `nop`, `ebreak`: the user trap floor and its baseline (the bench
//!   kernel skips this `ebreak` at `ubench_ebreak_at`);
//! - `add`: `add a0, a0, a1` (stepped out of line by a uprobe; also the
//!   function's entry, for the uretprobe row);
//! - `branch`: `bne a0, a1` to the next instruction (simulated).
#![no_std]
#![no_main]

use core::arch::global_asm;
use core::hint::black_box;
use user::println;

// `.option norvc`: every instruction is 32 bits, so the kernel skips the
// `ebreak` with `sepc += 4`.
global_asm!(
    ".pushsection .text.ubench,\"ax\",@progbits",
    ".option push",
    ".option norvc",
    ".p2align 2",
    ".globl ubench_nop",
    ".type ubench_nop, @function",
    "ubench_nop:",
    "nop",
    "ret",
    ".size ubench_nop, . - ubench_nop",
    ".globl ubench_ebreak",
    ".globl ubench_ebreak_at",
    ".type ubench_ebreak, @function",
    "ubench_ebreak:",
    "ubench_ebreak_at:",
    "ebreak",
    "ret",
    ".size ubench_ebreak, . - ubench_ebreak",
    ".globl ubench_add",
    ".type ubench_add, @function",
    "ubench_add:",
    "add a0, a0, a1",
    "ret",
    ".size ubench_add, . - ubench_add",
    ".globl ubench_branch",
    ".type ubench_branch, @function",
    "ubench_branch:",
    "bne a0, a1, 1f",
    "1:",
    "ret",
    ".size ubench_branch, . - ubench_branch",
    ".option pop",
    ".popsection",
);

type Func = unsafe extern "C" fn(usize, usize) -> usize;

extern "C" {
    fn ubench_nop(a0: usize, a1: usize) -> usize;
    fn ubench_ebreak(a0: usize, a1: usize) -> usize;
    fn ubench_add(a0: usize, a1: usize) -> usize;
    fn ubench_branch(a0: usize, a1: usize) -> usize;
}

fn instret() -> u64 {
    let v: u64;
    // SAFETY: reading a counter CSR has no side effect; the bench kernel
    // lets user mode read `instret` (scounteren.IR).
    unsafe { core::arch::asm!("csrr {}, instret", out(reg) v) };
    v
}

/// Instructions retired by `n` calls of `f`. Not inlined: every FUNC runs
/// exactly this code around its calls.
#[inline(never)]
fn counted(f: Func, n: u64) -> u64 {
    let start = instret();
    for i in 0..n {
        // SAFETY: the functions above follow the C ABI and touch only a0.
        black_box(unsafe { f(black_box(i as usize), 1) });
    }
    instret() - start
}

#[no_mangle]
fn main(args: &[&str]) -> i32 {
    let f: Func = match args.get(1).copied() {
        Some("nop") => ubench_nop,
        Some("ebreak") => ubench_ebreak,
        Some("add") => ubench_add,
        Some("branch") => ubench_branch,
        _ => return 2,
    };
    let Some(n) = args.get(2).and_then(|a| a.parse().ok()) else {
        return 2;
    };
    println!("ubench: instret={}", counted(black_box(f), n));
    0
}
