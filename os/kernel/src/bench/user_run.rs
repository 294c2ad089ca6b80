//! Running the user-mode workload `/bin/ubench` (os/user/src/bin/ubench.rs)
//! and reading the count it prints.
//!
//! The program counts itself: `rdinstret` right around its loop, so exec,
//! start-up, printing and exit stay out of the figure, while the kernel's
//! work on every trap taken inside the loop is in it (`instret` counts
//! every privilege level). While it runs, this hart takes no interrupt at
//! all: in user mode `sstatus.SIE` does not mask supervisor interrupts, so
//! `sie` is cleared instead; no tick lands in the count and the process is
//! never preempted.

use super::measure::N;
use crate::process::{self, capture};
use alloc::format;
use alloc::string::{String, ToString};

/// The bench program's path.
pub const PATH: &str = "/bin/ubench";

const SCOUNTEREN_IR: usize = 1 << 2;

/// For its lifetime: user mode may read `instret`, and this hart takes no
/// interrupt (both restored on drop).
struct QuietHart {
    sie: usize,
    scounteren: usize,
}

impl QuietHart {
    fn new() -> Self {
        let (sie, scounteren): (usize, usize);
        // SAFETY: clears every supervisor interrupt enable and lets user
        // mode read `instret`; no memory effect. One hart runs the bench
        // and it runs only the bench program meanwhile.
        unsafe {
            core::arch::asm!(
                "csrrw {sie}, sie, zero",
                "csrrs {cnt}, scounteren, {ir}",
                sie = out(reg) sie,
                cnt = out(reg) scounteren,
                ir = in(reg) SCOUNTEREN_IR,
            )
        };
        QuietHart { sie, scounteren }
    }
}

impl Drop for QuietHart {
    fn drop(&mut self) {
        // SAFETY: restores both CSRs as they were; a tick that came due
        // meanwhile is taken now and re-arms the timer.
        unsafe {
            core::arch::asm!(
                "csrw scounteren, {cnt}",
                "csrw sie, {sie}",
                sie = in(reg) self.sie,
                cnt = in(reg) self.scounteren,
            )
        };
    }
}

/// Instructions retired by N calls of `func` in `/bin/ubench`, as the
/// program counted them; an error if it did not exit normally (e.g.
/// killed by a breakpoint nobody owned).
pub fn count(func: &str) -> Result<u64, String> {
    let n = N.to_string();
    let (spawned, out) = {
        let _quiet = QuietHart::new();
        capture::begin();
        let p = process::spawn(PATH, &["ubench", func, &n]);
        process::run_until_idle();
        (p, capture::end())
    };
    let p = spawned.map_err(|e| format!("spawn {PATH}: {e:?}"))?;
    let text = out.of(p.pid());
    if p.exit_code() != Some(0) {
        return Err(format!(
            "ubench {func} exited with {:?}: {text:?}",
            p.exit_code()
        ));
    }
    text.trim()
        .strip_prefix("ubench: instret=")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("ubench {func}: unexpected output {text:?}"))
}
