//! Checks that `getpid` is stable across `yield`s; prints the pid and
//! exits with `pid % 100`.
#![no_std]
#![no_main]

use user::{getpid, println, yield_now};

const YIELDS: usize = 10;

#[no_mangle]
fn main(_args: &[&str]) -> i32 {
    let pid = getpid();
    for _ in 0..YIELDS {
        yield_now();
        if getpid() != pid {
            println!("ids: pid changed");
            return -2;
        }
    }
    println!("ids: pid {pid}, stable across {YIELDS} yields");
    (pid % 100) as i32
}
