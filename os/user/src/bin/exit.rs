//! `exit code`: exits through the system call with `code`, not by
//! returning from `main`.
#![no_std]
#![no_main]

use user::exit;

#[no_mangle]
fn main(args: &[&str]) -> i32 {
    let code = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(0);
    exit(code)
}
