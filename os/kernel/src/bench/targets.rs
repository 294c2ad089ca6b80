//! The functions the benchmark calls and probes, in assembly so every run
//! executes exactly the same instructions and each probe sits on a known
//! instruction.
//!
//! All are `extern "C" fn(a0, a1) -> a0` with a symbol size (the probe
//! libraries check instruction boundaries against it) and use only
//! caller-saved registers. `.option norvc` keeps every instruction 32-bit,
//! so `ebreak` is not compressed and both libraries see the same `add`.

use core::arch::global_asm;

/// One function of the benchmark: `body` is emitted between the symbol and
/// `ret`; `$at` labels the first instruction of the body.
macro_rules! bench_fn {
    ($func:ident, $at:ident, $body:literal) => {
        global_asm!(concat!(
            ".pushsection .text.bench.",
            stringify!($func),
            ",\"ax\",@progbits\n",
            ".globl ",
            stringify!($func),
            "\n.globl ",
            stringify!($at),
            "\n.type ",
            stringify!($func),
            ", @function\n",
            ".p2align 2\n",
            // Module-level asm does not inherit the target's extensions.
            ".option push\n.option arch, +m, +a, +f, +d, +c\n.option norvc\n",
            stringify!($func),
            ":\n",
            stringify!($at),
            ":\n",
            $body,
            "\nret\n",
            ".option pop\n",
            ".size ",
            stringify!($func),
            ", . - ",
            stringify!($func),
            "\n.popsection\n"
        ));
        // Not every function is called, nor every label probed.
        #[allow(dead_code)]
        extern "C" {
            pub fn $func(a0: usize, a1: usize) -> usize;
            static $at: u8;
        }
    };
}

// The trap floor: a bare `ebreak` the bench hook skips, and its baseline
// with a `nop` in its place.
bench_fn!(bench_floor_trap, bench_floor_trap_at, "ebreak");
bench_fn!(bench_floor_base, bench_floor_base_at, "nop");
// A branch (simulated by rkprobes): taken, to the next instruction.
bench_fn!(bench_branch, bench_branch_at, "bne a0, a1, 1f\n1:");
// An `add`: stepped out of line by both libraries.
bench_fn!(bench_add, bench_add_at, "add a0, a0, a1");
// The same, for the return probe rows alone: rkprobes makes a jump
// probe's detour for the kind of the first probe at an address (one for
// return probes has a lighter way back), so they get a function no
// instruction probe came to first.
bench_fn!(bench_ret, bench_ret_at, "add a0, a0, a1");
// The same for the function probe rows (`on_call`/`on_return`, whose
// detour takes the light way in).
bench_fn!(bench_call, bench_call_at, "add a0, a0, a1");
// The same two as compressed instructions: rkprobes' jump covers the
// `ret` after them too (see `region.rs`).
bench_fn!(
    bench_c_branch,
    bench_c_branch_at,
    ".option rvc\nc.bnez a0, 1f\n1:\n.option norvc"
);
bench_fn!(
    bench_c_add,
    bench_c_add_at,
    ".option rvc\nc.add a0, a1\n.option norvc"
);
// `bench_c_add` again for the return probe rows (see `bench_ret`).
bench_fn!(
    bench_c_ret,
    bench_c_ret_at,
    ".option rvc\nc.add a0, a1\n.option norvc"
);
// And for the function probe rows (see `bench_call`).
bench_fn!(
    bench_c_call,
    bench_c_call_at,
    ".option rvc\nc.add a0, a1\n.option norvc"
);
// The compressed two again, followed by an instruction rkprobes' jump
// cannot cover (PC-relative, see `region.rs`): they keep a breakpoint.
bench_fn!(
    bench_c_branch_bp,
    bench_c_branch_bp_at,
    ".option rvc\nc.bnez a0, 1f\n1:\n.option norvc\nauipc t0, 0"
);
bench_fn!(
    bench_c_add_bp,
    bench_c_add_bp_at,
    ".option rvc\nc.add a0, a1\n.option norvc\nauipc t0, 0"
);
// 1,024 distinct probe addresses for the scaling rows; never called.
bench_fn!(
    bench_fill,
    bench_fill_at,
    ".rept 1024\naddi t0, t0, 1\n.endr"
);

pub type TargetFn = unsafe extern "C" fn(usize, usize) -> usize;

/// Instructions in `bench_fill` that can carry a probe.
pub const FILL_SLOTS: usize = 1024;

/// A function to call and the instruction in it to probe.
#[derive(Clone, Copy)]
pub struct Target {
    pub func: TargetFn,
    pub probe_at: fn() -> usize,
}

pub fn floor_trap_at() -> usize {
    (&raw const bench_floor_trap_at) as usize
}

pub const FLOOR_TRAP: TargetFn = bench_floor_trap;
pub const FLOOR_BASE: TargetFn = bench_floor_base;

pub const BRANCH: Target = Target {
    func: bench_branch,
    probe_at: || (&raw const bench_branch_at) as usize,
};

pub const ADD: Target = Target {
    func: bench_add,
    probe_at: || (&raw const bench_add_at) as usize,
};

pub const RET: Target = Target {
    func: bench_ret,
    probe_at: || (&raw const bench_ret_at) as usize,
};

pub const CALL: Target = Target {
    func: bench_call,
    probe_at: || (&raw const bench_call_at) as usize,
};

pub const C_CALL: Target = Target {
    func: bench_c_call,
    probe_at: || (&raw const bench_c_call_at) as usize,
};

pub const C_BRANCH: Target = Target {
    func: bench_c_branch,
    probe_at: || (&raw const bench_c_branch_at) as usize,
};

pub const C_ADD: Target = Target {
    func: bench_c_add,
    probe_at: || (&raw const bench_c_add_at) as usize,
};

pub const C_RET: Target = Target {
    func: bench_c_ret,
    probe_at: || (&raw const bench_c_ret_at) as usize,
};

pub const C_BRANCH_BP: Target = Target {
    func: bench_c_branch_bp,
    probe_at: || (&raw const bench_c_branch_bp_at) as usize,
};

pub const C_ADD_BP: Target = Target {
    func: bench_c_add_bp,
    probe_at: || (&raw const bench_c_add_bp_at) as usize,
};

/// The `i`-th instruction of `bench_fill` (`i < FILL_SLOTS`).
pub fn fill_at(i: usize) -> usize {
    assert!(i < FILL_SLOTS);
    (&raw const bench_fill_at) as usize + 4 * i
}
