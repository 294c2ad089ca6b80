//! Test functions written in assembly, so a test knows exactly which
//! instruction it probes.
//!
//! `asm_case!(func, at, "before", "probed", "after")` defines
//! `extern "C" fn func(a0, a1) -> a0` (a real function symbol with a size,
//! so the instruction-boundary check sees it) and a label `at` on the probed
//! instruction. Bodies follow the C ABI: only caller-saved registers.

macro_rules! asm_case {
    ($func:ident, $at:ident, $before:literal, $probed:literal, $after:literal) => {
        core::arch::global_asm!(concat!(
            ".pushsection .text.kt.",
            stringify!($func),
            ",\"ax\",@progbits\n",
            ".globl ",
            stringify!($func),
            "\n",
            ".globl ",
            stringify!($at),
            "\n",
            ".type ",
            stringify!($func),
            ", @function\n",
            ".p2align 2\n",
            // Module-level asm does not inherit the target's extensions.
            ".option push\n.option arch, +m, +a, +f, +d, +c\n",
            stringify!($func),
            ":\n",
            $before,
            "\n",
            stringify!($at),
            ":\n",
            $probed,
            "\n",
            $after,
            "\n",
            ".option pop\n",
            ".size ",
            stringify!($func),
            ", . - ",
            stringify!($func),
            "\n",
            ".popsection\n"
        ));
        extern "C" {
            #[allow(dead_code)]
            pub fn $func(a0: usize, a1: usize) -> usize;
            #[allow(dead_code)]
            pub static $at: u8;
        }
    };
}
pub(crate) use asm_case;
