//! Program entry and exit: the kernel starts a program at `_start` with its
//! arguments (see `abi::ArgPair`); `main`'s return value is the exit code.

use abi::{ArgPair, MAX_ARGS};

extern "Rust" {
    /// Defined by each program.
    fn main(args: &[&str]) -> i32;
}

#[no_mangle]
#[link_section = ".text.entry"]
extern "C" fn _start(argc: usize, argv: *const ArgPair) -> ! {
    let mut args = [""; MAX_ARGS];
    let argc = argc.min(MAX_ARGS);
    for (i, arg) in args.iter_mut().enumerate().take(argc) {
        // SAFETY: the kernel put `argc` pairs at `argv`, each the address
        // and length of UTF-8 it checked, on this process's stack.
        *arg = unsafe {
            let [ptr, len] = *argv.add(i);
            core::str::from_utf8_unchecked(core::slice::from_raw_parts(ptr as *const u8, len))
        };
    }
    // SAFETY: every program defines `main` with this signature.
    let code = unsafe { main(&args[..argc]) };
    crate::exit(code)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    println!("panicked: {info}");
    crate::exit(101)
}
