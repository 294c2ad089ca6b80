//! `fib [n]`: prints the n-th Fibonacci number (default 20). `compute` is
//! a plain function with its own symbol, a target for probes.
#![no_std]
#![no_main]

use user::println;

#[no_mangle]
#[inline(never)]
pub extern "C" fn compute(n: u64) -> u64 {
    let (mut a, mut b) = (0u64, 1u64);
    for _ in 0..n {
        (a, b) = (b, a.wrapping_add(b));
    }
    a
}

#[no_mangle]
fn main(args: &[&str]) -> i32 {
    let n = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20);
    println!("fib({n}) = {}", compute(n));
    0
}
