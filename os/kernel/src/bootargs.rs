//! The kernel command line (`-append` in QEMU), read from the device tree:
//! `mode=test|demo|bench`, `inject=fail|panic|hang` (to prove the test
//! harness catches each), `filter=<substring>` to run only some tests.

use alloc::string::{String, ToString};
use spin::Once;

pub struct BootInfo {
    pub args: String,
    pub harts: usize,
    pub ram_end: usize,
}

static INFO: Once<BootInfo> = Once::new();

/// Parses the device tree at `dtb` (physical, identity-accessible).
pub fn init(dtb: usize) -> &'static BootInfo {
    INFO.call_once(|| {
        // SAFETY: OpenSBI passes a valid flattened device tree in a1.
        let fdt = unsafe { fdt::Fdt::from_ptr(dtb as *const u8) }.expect("bad device tree");
        let args = fdt.chosen().bootargs().unwrap_or("").to_string();
        let harts = fdt.cpus().count();
        let ram_end = fdt
            .memory()
            .regions()
            .filter_map(|r| Some(r.starting_address as usize + r.size?))
            .max()
            .unwrap_or(0x8800_0000);
        BootInfo {
            args,
            harts,
            ram_end,
        }
    })
}

pub fn info() -> &'static BootInfo {
    INFO.get().expect("boot info read before init")
}

/// The value of `key=value` on the command line.
pub fn get(key: &str) -> Option<&'static str> {
    info()
        .args
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}
