//! `uprobed MODE [n]`: a target for uprobes tests. `step` and `depth` are
//! plain functions with their own symbols.
//! - `work n`: n rounds, each calls `step` once and computes a while (long
//!   enough to be preempted and run on several harts);
//! - `fork n`: forks; parent and child each do `work n`; the child exits
//!   with 7, the parent waits for it;
//! - `exec n`: `work n`, then becomes `fib 12`;
//! - `rec n`: calls `depth(n)`, which recurses n times.
#![no_std]
#![no_main]

use user::{exec, exit, fork, getpid, println, wait};

const SPIN_PER_ROUND: u64 = 20_000;

/// One round's value: a mix of loads, stores, arithmetic and branches.
#[no_mangle]
#[inline(never)]
pub extern "C" fn step(i: u64) -> u64 {
    let mut v = [i, i * 3, i ^ 0x55];
    for x in v.iter_mut() {
        *x = x.wrapping_mul(2654435761).rotate_left(7);
    }
    v[0] ^ v[1] ^ v[2]
}

/// Recurses `n` times: returns `n * (n + 1) / 2`.
#[no_mangle]
#[inline(never)]
pub extern "C" fn depth(n: u64) -> u64 {
    if n == 0 {
        0
    } else {
        n + core::hint::black_box(depth(n - 1))
    }
}

fn work(rounds: u64) -> u64 {
    let mut acc = 0u64;
    for i in 0..rounds {
        acc = acc.wrapping_add(step(core::hint::black_box(i)));
        for j in 0..SPIN_PER_ROUND {
            acc = core::hint::black_box(acc.wrapping_mul(31).wrapping_add(j));
        }
    }
    acc % 1_000_000
}

#[no_mangle]
fn main(args: &[&str]) -> i32 {
    let mode = args.get(1).copied().unwrap_or("work");
    let n: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(10);
    match mode {
        "work" => println!("uprobed: {n} rounds, {}", work(n)),
        "fork" => match fork() {
            Some(0) => {
                println!("uprobed child: {n} rounds, {}", work(n));
                exit(7);
            }
            Some(child) => {
                let r = work(n);
                let code = wait(Some(child)).map(|(_, c)| c);
                println!(
                    "uprobed parent {}: {n} rounds, {r}, child {code:?}",
                    getpid()
                );
            }
            None => return 1,
        },
        "exec" => {
            println!("uprobed: {n} rounds, {}", work(n));
            let err = exec("/bin/fib", &["fib", "12"]);
            println!("uprobed: exec failed with {err}");
            return 1;
        }
        "rec" => println!("uprobed: depth({n}) = {}", depth(n)),
        _ => return 2,
    }
    0
}
