//! Tries to exec a missing file (must fail), then becomes `fib 10`.
#![no_std]
#![no_main]

use user::{exec, getpid, println};

#[no_mangle]
fn main(_args: &[&str]) -> i32 {
    println!("exec: pid {}", getpid());
    let err = exec("/bin/missing", &["missing"]);
    println!("exec: /bin/missing failed with {err}");
    let err = exec("/bin/fib", &["fib", "10"]);
    println!("exec: /bin/fib failed with {err}");
    1
}
