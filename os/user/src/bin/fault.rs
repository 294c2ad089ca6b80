//! `fault null|text`: loads from address 0, or stores into its own
//! (read+execute) text. Either way the kernel kills the process.
#![no_std]
#![no_main]

use user::println;

#[no_mangle]
fn main(args: &[&str]) -> i32 {
    let what = args.get(1).copied().unwrap_or("null");
    println!("fault: {what}");
    match what {
        // SAFETY: deliberately faults; the kernel kills the process.
        "null" => unsafe { core::arch::asm!("ld t0, 0(zero)", out("t0") _) },
        // SAFETY: as above: text is mapped without W.
        "text" => unsafe {
            core::arch::asm!("sd zero, 0({0})", in(reg) main as *const () as usize)
        },
        _ => return 2,
    }
    println!("fault: survived (must not happen)");
    0
}
