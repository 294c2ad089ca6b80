//! `spin [rounds]`: computes long enough to be preempted many times, and
//! records the harts it ran on.
#![no_std]
#![no_main]

use user::{gethartid, getpid, println};

const WORK_PER_ROUND: u64 = 200_000;

#[no_mangle]
fn main(args: &[&str]) -> i32 {
    let rounds: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(40);
    let mut harts = 0usize;
    let mut acc = 0u64;
    for _ in 0..rounds {
        for i in 0..WORK_PER_ROUND {
            acc = core::hint::black_box(acc.wrapping_mul(31).wrapping_add(i));
        }
        harts |= 1 << gethartid();
    }
    println!(
        "spin: pid {} done, {rounds} rounds, harts seen {harts:#b}, acc {}",
        getpid(),
        acc % 1000
    );
    0
}
