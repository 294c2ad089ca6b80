//! Executes `ebreak`: with no probe there, the kernel kills the process.
#![no_std]
#![no_main]

use user::println;

#[no_mangle]
fn main(_args: &[&str]) -> i32 {
    println!("ebreak: before");
    // SAFETY: a breakpoint trap; the kernel decides what happens next.
    unsafe { core::arch::asm!("ebreak") };
    println!("ebreak: after (must not happen)");
    0
}
