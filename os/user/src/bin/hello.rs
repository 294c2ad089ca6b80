//! Prints one line.
#![no_std]
#![no_main]

use user::println;

#[no_mangle]
fn main(_args: &[&str]) -> i32 {
    println!("Hello from user mode!");
    0
}
