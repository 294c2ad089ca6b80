//! The QEMU test suites run by `cargo xtask test`. Add a suite by adding a
//! line to [`SUITES`].

use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct Suite {
    pub name: &'static str,
    /// Kernel command line.
    pub bootargs: &'static str,
    pub smp: u32,
    pub timeout: Duration,
}

const fn suite(name: &'static str, bootargs: &'static str, smp: u32, timeout_secs: u64) -> Suite {
    Suite {
        name,
        bootargs,
        smp,
        timeout: Duration::from_secs(timeout_secs),
    }
}

#[rustfmt::skip]
pub const SUITES: &[Suite] = &[
    //    name      bootargs     smp  timeout (s)
    suite("kernel", "mode=test", 4,   600),
    // Every other test again, with an entry+return probe on every function.
    suite("probe-all", "mode=test probe_all=1", 4, 900),
];
