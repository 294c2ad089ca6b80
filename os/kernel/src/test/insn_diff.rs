//! Differential test of the probe's instruction handling: every instruction
//! the decoder accepts runs natively and under a probe from many random
//! register states, and everything it can change is compared.
//!
//! The table is generated: for each mnemonic the decoder accepts (found by
//! scanning the decoder itself), encodings with random register fields.
//! Encodings are laid out in a batch in `insn_diff_area_*`, c.nop-filled
//! functions in kernel text (real symbols, so the library's boundary walk
//! accepts them), one cell per encoding, and a batch is probed with one
//! `register_many`:
//!
//! ```text
//!  at - 124        prologue: ld x1..x31 from ctx.input (a0 = ctx, last)
//!  at              the instruction under test (probed in the second run)
//!  at + len        "fall-through" collect stub
//!  at + off        "target" collect stub of a jump or branch
//!  area end        a fixed collect stub that catches a wild jump
//! ```
//!
//! A collect stub saves x31 in `sscratch`, points x31 at the context, saves
//! x30, puts its own pc in x30 (the path marker) and jumps to
//! `insn_diff_collect`, which stores all registers, `fcsr` and the marker and
//! returns to `insn_diff_enter`'s caller. `sscratch` is back to 0 before
//! anything can trap (the trap entry needs 0 in kernel mode).

use super::{Test, TestResult};
use crate::{arch, check, mm};
use alloc::collections::BTreeSet;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::mem::offset_of;
use rkprobes::arch::riscv::decode::{decode, mnemonic, Action};
use rkprobes::arch::riscv::insn::Insn;
use rkprobes::arch::riscv::simulate::SimOp;
use rkprobes::Kprobe;

pub fn tests() -> Vec<Test> {
    alloc::vec![
        Test::new("kprobes::insn_diff", insn_diff),
        Test::new("kprobes::insn_diff_breakpoints", || {
            super::with_breakpoints(insn_diff)
        }),
    ]
}

/// Encodings generated per accepted mnemonic (random register fields).
const VARIANTS: usize = 4;
/// Random register states each encoding runs from.
const STATES: usize = 64;
/// Mnemonics the decoder accepts that the table may leave out, with why.
/// Anything accepted, absent from the table and not listed fails the test.
const EXCLUDED: &[(&str, &str)] = &[];

// ---------------------------------------------------------------------------
// The harness: context block, scratch memory, and the fixed assembly.
// ---------------------------------------------------------------------------

/// A full register file: what goes in and what comes out of a run.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq)]
struct Regs {
    x: [u64; 32],
    f: [u64; 32],
    fcsr: u64,
}

impl Regs {
    const ZERO: Regs = Regs {
        x: [0; 32],
        f: [0; 32],
        fcsr: 0,
    };
}

#[repr(C)]
struct Ctx {
    input: Regs,
    output: Regs,
    /// pc of the collect stub that ended the run.
    marker: u64,
    /// The Rust caller's sp, for the way back.
    host_sp: u64,
}

const IN_X: usize = offset_of!(Ctx, input) + offset_of!(Regs, x);
const IN_F: usize = offset_of!(Ctx, input) + offset_of!(Regs, f);
const IN_FCSR: usize = offset_of!(Ctx, input) + offset_of!(Regs, fcsr);
const OUT_X: usize = offset_of!(Ctx, output) + offset_of!(Regs, x);
const OUT_F: usize = offset_of!(Ctx, output) + offset_of!(Regs, f);
const OUT_FCSR: usize = offset_of!(Ctx, output) + offset_of!(Regs, fcsr);
const MARKER: usize = offset_of!(Ctx, marker);
const HOST_SP: usize = offset_of!(Ctx, host_sp);
// Every offset is reached with a 12-bit load/store immediate.
const _: () = assert!(core::mem::size_of::<Ctx>() < 2048);

/// Stack for the run (the probe's trap frame and handler live below sp),
/// then the memory window loads and stores hit.
const STACK: usize = 60 * 1024;
const WINDOW: usize = 4096;
/// sp is `window + 16 * k` for k below this, so sp-relative accesses land
/// in the window and everything below sp is the stack.
const SP_SLOTS: u64 = 16;
/// Accesses through other base registers land at or above this offset
/// (above every sp), so the probe's trap frame can never overlap them.
const DATA_START: u64 = SP_SLOTS * 16;

#[repr(C, align(4096))]
struct Scratch {
    stack: [u8; STACK],
    window: [u8; WINDOW],
}

/// Memory only the test hart touches, while it runs this test.
struct Shared<T>(UnsafeCell<T>);
// SAFETY: the test runs on one hart; no other hart reads or writes these.
unsafe impl<T> Sync for Shared<T> {}

#[no_mangle]
static INSN_DIFF_CTX: Shared<Ctx> = Shared(UnsafeCell::new(Ctx {
    input: Regs::ZERO,
    output: Regs::ZERO,
    marker: 0,
    host_sp: 0,
}));

static SCRATCH: Shared<Scratch> = Shared(UnsafeCell::new(Scratch {
    stack: [0; STACK],
    window: [0; WINDOW],
}));

/// Bytes of the `insn_diff_area_*` functions together, before the fixed
/// tail stub; each function is a `CHUNK`. Nothing written may straddle two
/// functions (a boundary walk starts at each).
const AREA: usize = 64 * 1024;
const CHUNK: usize = 4096;
/// Jump offsets are drawn as if the instruction sat in the middle, so they
/// reach both ways; the layout then finds a place where they fit.
const P: usize = AREA / 2;
/// Prologue: 31 loads.
const PROLOGUE: usize = 31 * 4;
/// A generated collect stub: six 32-bit instructions.
const STUB: usize = 24;

core::arch::global_asm!(
    ".pushsection .text.insn_diff,\"ax\",@progbits",
    ".option push",
    ".option arch, +m, +a, +f, +d, +c",
    // insn_diff_enter(ctx, entry): saves the C callee-saved state (and gp,
    // tp, fcsr) on the caller's stack, loads the FP state, jumps to the
    // generated prologue with a0 = ctx.
    ".globl insn_diff_enter",
    ".type insn_diff_enter, @function",
    ".p2align 2",
    "insn_diff_enter:",
    "addi sp, sp, -224",
    "sd ra, 0(sp)",
    "sd gp, 8(sp)",
    "sd tp, 16(sp)",
    ".irp i, 0,1,2,3,4,5,6,7,8,9,10,11",
    "sd s\\i, 24+\\i*8(sp)",
    "fsd fs\\i, 120+\\i*8(sp)",
    ".endr",
    "frcsr t0",
    "sd t0, 216(sp)",
    "sd sp, {host_sp}(a0)",
    ".irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31",
    "fld f\\i, {in_f}+\\i*8(a0)",
    ".endr",
    "ld t0, {in_fcsr}(a0)",
    "fscsr t0",
    "jr a1",
    ".size insn_diff_enter, . - insn_diff_enter",
    // The scratch area, c.nop-filled so a boundary walk through it is valid,
    // in 16 functions so that walks stay short.
    ".p2align 2",
    ".irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15",
    ".globl insn_diff_area_\\n",
    ".type insn_diff_area_\\n, @function",
    "insn_diff_area_\\n:",
    ".rept {chunk} / 2",
    ".2byte 0x0001",
    ".endr",
    ".size insn_diff_area_\\n, . - insn_diff_area_\\n",
    ".endr",
    // A jump that lands nowhere slides down the c.nops to here.
    ".type insn_diff_tail, @function",
    "insn_diff_tail:",
    "csrrw x0, sscratch, x31",
    "la x31, {ctx}",
    "sd x30, {out_x}+30*8(x31)",
    "auipc x30, 0",
    "j insn_diff_collect",
    ".size insn_diff_tail, . - insn_diff_tail",
    // insn_diff_collect: x31 = ctx, x30 = marker, the run's x30 is saved and
    // its x31 is in sscratch. Stores everything, returns to the Rust caller.
    ".type insn_diff_collect, @function",
    "insn_diff_collect:",
    "sd x30, {marker}(x31)",
    "csrrw x30, sscratch, x0",
    "sd x30, {out_x}+31*8(x31)",
    ".irp i, 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29",
    "sd x\\i, {out_x}+\\i*8(x31)",
    ".endr",
    ".irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31",
    "fsd f\\i, {out_f}+\\i*8(x31)",
    ".endr",
    "frcsr x30",
    "sd x30, {out_fcsr}(x31)",
    "ld sp, {host_sp}(x31)",
    "ld t0, 216(sp)",
    "fscsr t0",
    ".irp i, 0,1,2,3,4,5,6,7,8,9,10,11",
    "ld s\\i, 24+\\i*8(sp)",
    "fld fs\\i, 120+\\i*8(sp)",
    ".endr",
    "ld tp, 16(sp)",
    "ld gp, 8(sp)",
    "ld ra, 0(sp)",
    "addi sp, sp, 224",
    "ret",
    ".size insn_diff_collect, . - insn_diff_collect",
    ".option pop",
    ".popsection",
    ctx = sym INSN_DIFF_CTX,
    chunk = const CHUNK,
    host_sp = const HOST_SP,
    in_f = const IN_F,
    in_fcsr = const IN_FCSR,
    out_x = const OUT_X,
    out_f = const OUT_F,
    out_fcsr = const OUT_FCSR,
    marker = const MARKER,
);

extern "C" {
    fn insn_diff_enter(ctx: *mut Ctx, entry: usize);
    static insn_diff_area_0: u8;
}
const _: () = assert!(AREA == 16 * CHUNK);

fn area_base() -> usize {
    (&raw const insn_diff_area_0) as usize
}

fn window_base() -> u64 {
    // SAFETY: only the address is taken.
    (unsafe { &raw const (*SCRATCH.0.get()).window }) as u64
}

/// Writes code into the area through its writable alias. The caller runs
/// `arch::fence_i` before executing it (only this hart runs the area).
fn write_code(off: usize, raw: u32, len: usize) {
    let addr = area_base() + off;
    for i in (0..len).step_by(2) {
        let parcel = (raw >> (8 * i)) as u16;
        // SAFETY: `addr + i` is a 2-byte aligned parcel inside
        // `insn_diff_area`, which no other code executes or patches; the
        // linear alias maps it read+write.
        unsafe { (mm::linear_alias(addr + i) as *mut u16).write_volatile(parcel) };
    }
}

/// Back to c.nops, so the boundary walk stays valid for the next encoding.
fn clear_code(off: usize, len: usize) {
    for o in (off..off + len).step_by(2) {
        write_code(o, 0x0001, 2);
    }
}

/// The prologue right before the instruction at `at`: loads x1..x31 from
/// `ctx.input` (a0 last: it is the base) and falls into the instruction.
fn write_prologue(at: usize) {
    let regs = (1..32).filter(|&r| r != 10).chain([10]);
    for (i, r) in regs.enumerate() {
        let load = i_type(0x03, 3, r, 10, (IN_X + 8 * r as usize) as i32);
        write_code(at - PROLOGUE + 4 * i, load, 4);
    }
}

/// A collect stub at `off` (see the module comment).
fn write_stub(off: usize) {
    let pc = (area_base() + off) as i64;
    let delta = INSN_DIFF_CTX.0.get() as i64 - (pc + 4);
    let hi = (delta + 0x800) >> 12;
    let lo = delta - (hi << 12);
    let collect = {
        extern "C" {
            static insn_diff_collect: u8;
        }
        (&raw const insn_diff_collect) as i64
    };
    let code = [
        i_type(0x73, 1, 0, 31, 0x140), // csrrw x0, sscratch, x31
        u_type(0x17, 31, hi as u32),   // auipc x31, hi
        i_type(0x13, 0, 31, 31, lo as i32),
        s_type(3, 31, 30, (OUT_X + 30 * 8) as i32), // sd x30, out.x30(x31)
        u_type(0x17, 30, 0),                        // auipc x30, 0: the marker
        j_type(0, (collect - (pc + 20)) as i32),
    ];
    for (i, w) in code.into_iter().enumerate() {
        write_code(off + 4 * i, w, 4);
    }
}

/// What a run leaves behind.
#[derive(Clone)]
struct Outcome {
    regs: Regs,
    /// Offset in the area of the collect stub's marker.
    path: usize,
    /// Window bytes that changed: (offset, new value).
    window: Vec<(usize, u8)>,
}

/// Runs the cell whose instruction is at `at` from `input` over a window
/// holding `mem`.
fn run(at: usize, input: &Regs, mem: &[u8]) -> Outcome {
    let ctx = INSN_DIFF_CTX.0.get();
    // SAFETY: this hart alone uses the scratch window and the context; no
    // run is in progress.
    unsafe {
        (*SCRATCH.0.get()).window.copy_from_slice(mem);
        (*ctx).input = *input;
    }
    {
        let _irqs = arch::IrqGuard::new();
        // SAFETY: the prologue and stubs in the area were written and
        // fenced; `insn_diff_enter` saves and restores the C callee-saved
        // registers, and every path through the area ends in a collect stub
        // that returns here. Inputs keep tp = hart id and sp on the scratch
        // stack, and all memory accesses inside the window (see
        // `make_state`), so a probe's trap works as anywhere in the kernel.
        unsafe { insn_diff_enter(ctx, area_base() + at - PROLOGUE) };
    }
    // SAFETY: the run is over; as above.
    let (regs, marker, window) = unsafe {
        (
            (*ctx).output,
            (*ctx).marker as usize,
            &(*SCRATCH.0.get()).window,
        )
    };
    Outcome {
        regs,
        path: marker.wrapping_sub(area_base()),
        window: (0..WINDOW)
            .filter(|&i| window[i] != mem[i])
            .map(|i| (i, window[i]))
            .collect(),
    }
}

/// Where each cell of a batch goes: parcels in use across the area.
struct Layout {
    used: Vec<bool>,
}

impl Layout {
    fn new() -> Self {
        Layout {
            used: vec![false; AREA / 2],
        }
    }

    /// The byte ranges a cell with its instruction at `at` occupies.
    fn regions(e: &Enc, at: i64) -> impl Iterator<Item = (i64, i64)> {
        let body = [(at - PROLOGUE as i64, at + (e.len + STUB) as i64)];
        let target = e
            .kind
            .target()
            .map(|off| (at + off as i64, at + off as i64 + STUB as i64));
        body.into_iter().chain(target)
    }

    fn fits(&self, e: &Enc, at: i64) -> bool {
        Self::regions(e, at).all(|(a, b)| {
            a >= 0
                && b <= AREA as i64
                && a / CHUNK as i64 == (b - 1) / CHUNK as i64
                && (a / 2..b / 2).all(|p| !self.used[p as usize])
        })
    }

    /// Finds a place for `e` (instruction at `align` mod 4, so both 4-byte
    /// positions of 32-bit instructions are probed) and takes it.
    fn place(&mut self, e: &Enc, align: usize) -> Option<usize> {
        let at = (PROLOGUE as i64..AREA as i64)
            .step_by(4)
            .map(|a| a + align as i64)
            .find(|&a| self.fits(e, a))?;
        for (a, b) in Self::regions(e, at) {
            (a / 2..b / 2).for_each(|p| self.used[p as usize] = true);
        }
        Some(at as usize)
    }
}

// ---------------------------------------------------------------------------
// Encoders.
// ---------------------------------------------------------------------------

fn field(v: u32, hi: u32, lo: u32) -> u32 {
    (v >> lo) & ((1 << (hi - lo + 1)) - 1)
}

fn r_type(op: u32, f3: u32, f7: u32, rd: u32, rs1: u32, rs2: u32) -> u32 {
    f7 << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | rd << 7 | op
}

fn i_type(op: u32, f3: u32, rd: u32, rs1: u32, imm: i32) -> u32 {
    ((imm as u32) & 0xfff) << 20 | rs1 << 15 | f3 << 12 | rd << 7 | op
}

fn s_type(f3: u32, rs1: u32, rs2: u32, imm: i32) -> u32 {
    s_type_op(0x23, f3, rs1, rs2, imm)
}

fn s_type_op(op: u32, f3: u32, rs1: u32, rs2: u32, imm: i32) -> u32 {
    let i = imm as u32;
    field(i, 11, 5) << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | field(i, 4, 0) << 7 | op
}

fn b_type(f3: u32, rs1: u32, rs2: u32, off: i32) -> u32 {
    let i = off as u32;
    field(i, 12, 12) << 31
        | field(i, 10, 5) << 25
        | rs2 << 20
        | rs1 << 15
        | f3 << 12
        | field(i, 4, 1) << 8
        | field(i, 11, 11) << 7
        | 0x63
}

fn u_type(op: u32, rd: u32, imm20: u32) -> u32 {
    (imm20 & 0xfffff) << 12 | rd << 7 | op
}

fn j_type(rd: u32, off: i32) -> u32 {
    let i = off as u32;
    field(i, 20, 20) << 31
        | field(i, 10, 1) << 21
        | field(i, 11, 11) << 20
        | field(i, 19, 12) << 12
        | rd << 7
        | 0x6f
}

fn r4_type(op: u32, fmt: u32, rm: u32, rd: u32, rs1: u32, rs2: u32, rs3: u32) -> u32 {
    rs3 << 27 | fmt << 25 | rs2 << 20 | rs1 << 15 | rm << 12 | rd << 7 | op
}

/// `rd'`/`rs'` fields name x8..x15 (or f8..f15).
fn c3(r: u32) -> u32 {
    r - 8
}

/// CI format: funct3, imm[5] at bit 12, rd, imm[4:0] at bits 6:2.
fn ci(f3: u32, rd: u32, imm6: u32, q: u32) -> u32 {
    f3 << 13 | field(imm6, 5, 5) << 12 | rd << 7 | field(imm6, 4, 0) << 2 | q
}

/// c.lw / c.sw / (f3 for c.flw would be RV32 only).
fn cl_w(f3: u32, rs1: u32, rd: u32, u: u32) -> u32 {
    f3 << 13
        | field(u, 5, 3) << 10
        | c3(rs1) << 7
        | field(u, 2, 2) << 6
        | field(u, 6, 6) << 5
        | c3(rd) << 2
}

/// c.ld / c.sd / c.fld / c.fsd.
fn cl_d(f3: u32, rs1: u32, rd: u32, u: u32) -> u32 {
    f3 << 13 | field(u, 5, 3) << 10 | c3(rs1) << 7 | field(u, 7, 6) << 5 | c3(rd) << 2
}

fn c_j(off: i32) -> u32 {
    let o = off as u32;
    0b101 << 13
        | field(o, 11, 11) << 12
        | field(o, 4, 4) << 11
        | field(o, 9, 8) << 9
        | field(o, 10, 10) << 8
        | field(o, 6, 6) << 7
        | field(o, 7, 7) << 6
        | field(o, 3, 1) << 3
        | field(o, 5, 5) << 2
        | 1
}

fn c_bz(f3: u32, rs1: u32, off: i32) -> u32 {
    let o = off as u32;
    f3 << 13
        | field(o, 8, 8) << 12
        | field(o, 4, 3) << 10
        | c3(rs1) << 7
        | field(o, 7, 6) << 5
        | field(o, 2, 1) << 3
        | field(o, 5, 5) << 2
        | 1
}

/// c.ldsp / c.fldsp.
fn c_ldsp(f3: u32, rd: u32, u: u32) -> u32 {
    f3 << 13 | field(u, 5, 5) << 12 | rd << 7 | field(u, 4, 3) << 5 | field(u, 8, 6) << 2 | 2
}

/// c.sdsp / c.fsdsp.
fn c_sdsp(f3: u32, rs2: u32, u: u32) -> u32 {
    f3 << 13 | field(u, 5, 3) << 10 | field(u, 8, 6) << 7 | rs2 << 2 | 2
}

fn c_cr(b12: u32, rd: u32, rs2: u32) -> u32 {
    0b100 << 13 | b12 << 12 | rd << 7 | rs2 << 2 | 2
}

// ---------------------------------------------------------------------------
// The table: encodings with what their inputs must satisfy.
// ---------------------------------------------------------------------------

/// Deterministic xorshift64: the same table and states every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
    /// Any integer register but sp and tp: a destination. A random sp would
    /// send the probe's trap frame anywhere, and the trap handler reads the
    /// hart id from tp; the sp forms are generated on purpose elsewhere.
    fn rd(&mut self) -> u32 {
        loop {
            let r = self.below(32) as u32;
            if r != 2 && r != 4 {
                return r;
            }
        }
    }
    /// Like `rd` but never x0 either.
    fn rd_nz(&mut self) -> u32 {
        loop {
            let r = self.rd();
            if r != 0 {
                return r;
            }
        }
    }
    /// Any register as a source.
    fn rs(&mut self) -> u32 {
        self.below(32) as u32
    }
    /// A compressed-field register, x8..x15.
    fn c(&mut self) -> u32 {
        8 + self.below(8) as u32
    }
    /// A rounding mode: the five static ones or dynamic.
    fn rm(&mut self) -> u32 {
        self.pick(&[0, 1, 2, 3, 4, 7])
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    /// Only registers in, registers out.
    Plain,
    /// A load, store or AMO of `size` bytes at `x[base] + imm`.
    Mem {
        base: u32,
        imm: i32,
        size: u64,
    },
    /// Jumps (or branches) to `P + off`; `base + imm` is the target for
    /// `jalr`-like forms, compared registers decide a branch.
    Jump {
        off: i32,
    },
    JumpReg {
        base: u32,
        imm: i32,
        off: i32,
    },
    Branch {
        rs1: u32,
        rs2: u32,
        off: i32,
    },
}

impl Kind {
    fn target(&self) -> Option<i32> {
        match *self {
            Kind::Jump { off } | Kind::JumpReg { off, .. } | Kind::Branch { off, .. } => Some(off),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Enc {
    name: &'static str,
    raw: u32,
    len: usize,
    kind: Kind,
}

/// A jump offset within `±limit` (and even) whose target stub fits in the
/// area without touching the prologue, the instruction or its fall-through
/// stub. Half of them short, to keep both near and far targets.
fn pick_off(r: &mut Rng, limit: i64) -> i32 {
    let lo = (PROLOGUE as i64 - P as i64).max(-limit);
    let hi = ((AREA - STUB) as i64 - P as i64).min(limit - 2);
    loop {
        let off = if r.below(2) == 0 {
            r.range(-96, 96)
        } else {
            r.range(lo, hi)
        } & !1;
        let clear = off + (STUB + PROLOGUE) as i64 <= 0 || off >= (4 + STUB) as i64;
        if (lo..=hi).contains(&off) && clear {
            return off as i32;
        }
    }
}

/// Base register and immediate of a generated load/store. `sp_form` forces
/// sp as the base; then the immediate is non-negative so the access stays
/// at or above sp (memory below sp belongs to traps).
fn mem_base(r: &mut Rng, sp_form: bool, size: u64) -> (u32, i32) {
    let base = if sp_form {
        2
    } else {
        loop {
            let b = r.rs();
            if b != 0 && b != 4 {
                break b;
            }
        }
    };
    let imm = if base == 2 {
        r.below(2040 / size) as i32 * size as i32
    } else {
        r.range(-2048, 2047) as i32
    };
    (base, imm)
}

/// One encoding of `name`, or None if this table does not know it.
/// `sp_form`: use sp where the form can (base of loads/stores, addi sp).
fn gen(name: &'static str, r: &mut Rng, sp_form: bool) -> Option<Enc> {
    use Kind::*;
    let plain = |raw: u32| Some((raw, Plain));
    let (raw, kind) = match name {
        // --- RV64I loads and stores.
        "lb" | "lh" | "lw" | "ld" | "lbu" | "lhu" | "lwu" => {
            let f3 = ["lb", "lh", "lw", "ld", "lbu", "lhu", "lwu"]
                .iter()
                .position(|n| *n == name)? as u32;
            let size = 1 << (f3 & 3);
            let (base, imm) = mem_base(r, sp_form, size);
            (i_type(0x03, f3, r.rd(), base, imm), Mem { base, imm, size })
        }
        "sb" | "sh" | "sw" | "sd" => {
            let f3 = ["sb", "sh", "sw", "sd"].iter().position(|n| *n == name)? as u32;
            let size = 1 << f3;
            let (base, imm) = mem_base(r, sp_form, size);
            (s_type(f3, base, r.rs(), imm), Mem { base, imm, size })
        }
        "flw" | "fld" => {
            let (f3, size) = if name == "flw" { (2, 4) } else { (3, 8) };
            let (base, imm) = mem_base(r, sp_form, size);
            (i_type(0x07, f3, r.rs(), base, imm), Mem { base, imm, size })
        }
        "fsw" | "fsd" => {
            let (f3, size) = if name == "fsw" { (2, 4) } else { (3, 8) };
            let (base, imm) = mem_base(r, sp_form, size);
            (
                s_type_op(0x27, f3, base, r.rs(), imm),
                Mem { base, imm, size },
            )
        }
        // --- Fences: random predecessor / successor sets.
        "fence" => plain(i_type(0x0f, 0, r.rs(), r.rs(), r.below(256) as i32))?,
        "fence.tso" => plain(0x8330_000f | r.rs() << 15 | r.rs() << 7)?,
        // --- Register-immediate.
        "addi" if sp_form => {
            let imm = r.range(-8, 8) as i32 * 16;
            plain(i_type(0x13, 0, 2, 2, imm))?
        }
        "addi" | "slti" | "sltiu" | "xori" | "ori" | "andi" | "addiw" => {
            let (op, f3) = match name {
                "addi" => (0x13, 0),
                "slti" => (0x13, 2),
                "sltiu" => (0x13, 3),
                "xori" => (0x13, 4),
                "ori" => (0x13, 6),
                "andi" => (0x13, 7),
                _ => (0x1b, 0),
            };
            plain(i_type(op, f3, r.rd(), r.rs(), r.range(-2048, 2047) as i32))?
        }
        "slli" | "srli" | "srai" => {
            let (f3, hi) = match name {
                "slli" => (1, 0),
                "srli" => (5, 0),
                _ => (5, 0x400),
            };
            plain(i_type(0x13, f3, r.rd(), r.rs(), hi | r.below(64) as i32))?
        }
        "slliw" | "srliw" | "sraiw" => {
            let (f3, hi) = match name {
                "slliw" => (1, 0),
                "srliw" => (5, 0),
                _ => (5, 0x400),
            };
            plain(i_type(0x1b, f3, r.rd(), r.rs(), hi | r.below(32) as i32))?
        }
        "lui" => plain(u_type(0x37, r.rd(), r.next() as u32))?,
        "auipc" => plain(u_type(0x17, r.rd(), r.next() as u32))?,
        // --- Register-register.
        "add" | "sll" | "slt" | "sltu" | "xor" | "srl" | "or" | "and" | "sub" | "sra" | "mul"
        | "mulh" | "mulhsu" | "mulhu" | "div" | "divu" | "rem" | "remu" => {
            const BASE: [&str; 8] = ["add", "sll", "slt", "sltu", "xor", "srl", "or", "and"];
            const M: [&str; 8] = [
                "mul", "mulh", "mulhsu", "mulhu", "div", "divu", "rem", "remu",
            ];
            let (f7, f3) = match name {
                "sub" => (0x20, 0),
                "sra" => (0x20, 5),
                n if M.contains(&n) => (1, M.iter().position(|m| *m == n)?),
                n => (0, BASE.iter().position(|m| *m == n)?),
            };
            plain(r_type(0x33, f3 as u32, f7, r.rd(), r.rs(), r.rs()))?
        }
        "addw" | "sllw" | "srlw" | "subw" | "sraw" | "mulw" | "divw" | "divuw" | "remw"
        | "remuw" => {
            let (f7, f3) = match name {
                "addw" => (0, 0),
                "sllw" => (0, 1),
                "srlw" => (0, 5),
                "subw" => (0x20, 0),
                "sraw" => (0x20, 5),
                "mulw" => (1, 0),
                "divw" => (1, 4),
                "divuw" => (1, 5),
                "remw" => (1, 6),
                _ => (1, 7),
            };
            plain(r_type(0x3b, f3, f7, r.rd(), r.rs(), r.rs()))?
        }
        // --- Atomics (lr/sc are refused by the decoder).
        n if n.starts_with("amo") => {
            let (op, width) = n.split_once('.')?;
            let f5 = match op {
                "amoswap" => 0b00001,
                "amoadd" => 0b00000,
                "amoxor" => 0b00100,
                "amoand" => 0b01100,
                "amoor" => 0b01000,
                "amomin" => 0b10000,
                "amomax" => 0b10100,
                "amominu" => 0b11000,
                "amomaxu" => 0b11100,
                _ => return None,
            };
            let (f3, size) = if width == "w" { (2, 4) } else { (3, 8) };
            let (base, _) = mem_base(r, sp_form, size);
            let f7 = f5 << 2 | r.below(4) as u32; // aq, rl
            let raw = r_type(0x2f, f3, f7, r.rd(), base, r.rs());
            (raw, Mem { base, imm: 0, size })
        }
        // --- Floating point.
        "fmadd.s" | "fmadd.d" | "fmsub.s" | "fmsub.d" | "fnmsub.s" | "fnmsub.d" | "fnmadd.s"
        | "fnmadd.d" => {
            let op = match &name[..name.len() - 2] {
                "fmadd" => 0x43,
                "fmsub" => 0x47,
                "fnmsub" => 0x4b,
                _ => 0x4f,
            };
            let fmt = u32::from(name.ends_with(".d"));
            plain(r4_type(op, fmt, r.rm(), r.rs(), r.rs(), r.rs(), r.rs()))?
        }
        n if n.starts_with('f') => return gen_op_fp(name, r),
        // --- Control transfer (simulated by the probe).
        "jal" => {
            let off = pick_off(r, 1 << 20);
            (j_type(r.rd(), off), Jump { off })
        }
        "jalr" => {
            let off = pick_off(r, 1 << 20);
            let imm = r.range(-2048, 2047) as i32;
            let base = r.rd_nz();
            (
                i_type(0x67, 0, r.rd(), base, imm),
                JumpReg { base, imm, off },
            )
        }
        "beq" | "bne" | "blt" | "bge" | "bltu" | "bgeu" => {
            let f3 = match name {
                "beq" => 0,
                "bne" => 1,
                "blt" => 4,
                "bge" => 5,
                "bltu" => 6,
                _ => 7,
            };
            let off = pick_off(r, 4096);
            let (rs1, rs2) = (r.rs(), r.rs());
            (b_type(f3, rs1, rs2, off), Branch { rs1, rs2, off })
        }
        n if n.starts_with("c.") => return gen_compressed(name, r, sp_form),
        _ => return None,
    };
    Some(Enc {
        name,
        raw,
        len: 4,
        kind,
    })
}

/// OP-FP forms: funct5, format, funct3 (None: a random rounding mode),
/// rs2 (None: a random register), and whether rd is an integer register.
fn gen_op_fp(name: &'static str, r: &mut Rng) -> Option<Enc> {
    const INT: [&str; 4] = ["w", "wu", "l", "lu"];
    let (stem, suffix) = name.rsplit_once('.')?;
    let (f5, fmt, f3, rs2, int_rd) = match (stem, suffix) {
        // Conversions whose last letter is not the instruction's format.
        ("fcvt.s", "d") => (0b01000, 0, None, Some(1), false),
        ("fcvt.d", "s") => (0b01000, 1, None, Some(0), false),
        ("fcvt.s" | "fcvt.d", src) => {
            let src = INT.iter().position(|s| *s == src)? as u32;
            (0b11010, u32::from(stem == "fcvt.d"), None, Some(src), false)
        }
        ("fmv.x", "w") => (0b11100, 0, Some(0), Some(0), true),
        ("fmv.w" | "fmv.d", "x") => (0b11110, u32::from(stem == "fmv.d"), Some(0), Some(0), false),
        (stem, "s" | "d") => {
            let fmt = u32::from(suffix == "d");
            let (f5, f3, rs2, int_rd) = match stem {
                "fadd" => (0b00000, None, None, false),
                "fsub" => (0b00001, None, None, false),
                "fmul" => (0b00010, None, None, false),
                "fdiv" => (0b00011, None, None, false),
                "fsqrt" => (0b01011, None, Some(0), false),
                "fsgnj" => (0b00100, Some(0), None, false),
                "fsgnjn" => (0b00100, Some(1), None, false),
                "fsgnjx" => (0b00100, Some(2), None, false),
                "fmin" => (0b00101, Some(0), None, false),
                "fmax" => (0b00101, Some(1), None, false),
                "fle" => (0b10100, Some(0), None, true),
                "flt" => (0b10100, Some(1), None, true),
                "feq" => (0b10100, Some(2), None, true),
                "fmv.x" => (0b11100, Some(0), Some(0), true), // fmv.x.d
                "fclass" => (0b11100, Some(1), Some(0), true),
                s => {
                    let dst = INT
                        .iter()
                        .position(|i| Some(*i) == s.strip_prefix("fcvt."))?;
                    (0b11000, None, Some(dst as u32), true)
                }
            };
            (f5, fmt, f3, rs2, int_rd)
        }
        _ => return None,
    };
    let rd = if int_rd { r.rd() } else { r.rs() };
    let f3 = f3.unwrap_or_else(|| r.rm());
    let rs2 = rs2.unwrap_or_else(|| r.rs());
    Some(Enc {
        name,
        raw: r_type(0x53, f3, f5 << 2 | fmt, rd, r.rs(), rs2),
        len: 4,
        kind: Kind::Plain,
    })
}

fn gen_compressed(name: &'static str, r: &mut Rng, sp_form: bool) -> Option<Enc> {
    use Kind::*;
    let sh = |r: &mut Rng| 1 + r.below(63) as u32; // shamt 0 is a HINT QEMU may refuse
    let imm6 = |r: &mut Rng| r.below(64) as u32;
    let (raw, kind) = match name {
        "c.addi4spn" => {
            let u = 4 * (1 + r.below(255) as u32);
            let raw = field(u, 5, 4) << 11
                | field(u, 9, 6) << 7
                | field(u, 2, 2) << 6
                | field(u, 3, 3) << 5;
            (raw | c3(r.c()) << 2, Plain)
        }
        "c.lw" | "c.sw" => {
            let u = 4 * r.below(32) as u32;
            let base = r.c();
            let f3 = if name == "c.lw" { 0b010 } else { 0b110 };
            let raw = cl_w(f3, base, r.c(), u);
            (
                raw,
                Mem {
                    base,
                    imm: u as i32,
                    size: 4,
                },
            )
        }
        "c.ld" | "c.sd" | "c.fld" | "c.fsd" => {
            let u = 8 * r.below(32) as u32;
            let base = r.c();
            let f3 = match name {
                "c.fld" => 0b001,
                "c.ld" => 0b011,
                "c.fsd" => 0b101,
                _ => 0b111,
            };
            (
                cl_d(f3, base, r.c(), u),
                Mem {
                    base,
                    imm: u as i32,
                    size: 8,
                },
            )
        }
        "c.nop" => (ci(0, 0, imm6(r), 1), Plain),
        "c.addi" if sp_form => {
            let imm = if r.below(2) == 0 { 16 } else { 0x30 }; // +16, -16
            (ci(0, 2, imm, 1), Plain)
        }
        "c.addi" => (ci(0, r.rd_nz(), imm6(r), 1), Plain),
        "c.addiw" => (ci(1, r.rd_nz(), imm6(r), 1), Plain),
        "c.li" => (ci(2, r.rd(), imm6(r), 1), Plain),
        "c.lui" => (ci(3, r.rd(), 1 + r.below(63) as u32, 1), Plain),
        "c.addi16sp" => {
            let i = 16
                * loop {
                    let k = r.range(-32, 31) as i32;
                    if k != 0 {
                        break k;
                    }
                } as u32;
            let raw = 0b011 << 13
                | field(i, 9, 9) << 12
                | 2 << 7
                | field(i, 4, 4) << 6
                | field(i, 6, 6) << 5
                | field(i, 8, 7) << 3
                | field(i, 5, 5) << 2
                | 1;
            (raw, Plain)
        }
        "c.srli" | "c.srai" | "c.andi" => {
            let (f2, v) = match name {
                "c.srli" => (0, sh(r)),
                "c.srai" => (1, sh(r)),
                _ => (2, imm6(r)),
            };
            let raw = 0b100 << 13
                | field(v, 5, 5) << 12
                | f2 << 10
                | c3(r.c()) << 7
                | field(v, 4, 0) << 2
                | 1;
            (raw, Plain)
        }
        "c.sub" | "c.xor" | "c.or" | "c.and" | "c.subw" | "c.addw" => {
            let k = ["c.sub", "c.xor", "c.or", "c.and", "c.subw", "c.addw"]
                .iter()
                .position(|n| *n == name)? as u32;
            let raw = 0b100 << 13 | (k / 4) << 12 | 3 << 10 | c3(r.c()) << 7 | (k % 4) << 5;
            (raw | c3(r.c()) << 2 | 1, Plain)
        }
        "c.j" => {
            let off = pick_off(r, 2048);
            (c_j(off), Jump { off })
        }
        "c.beqz" | "c.bnez" => {
            let off = pick_off(r, 256);
            let rs1 = r.c();
            let f3 = if name == "c.beqz" { 0b110 } else { 0b111 };
            (c_bz(f3, rs1, off), Branch { rs1, rs2: 0, off })
        }
        "c.slli" => (ci(0, r.rd(), sh(r), 2), Plain),
        "c.fldsp" | "c.ldsp" => {
            let u = 8 * r.below(64) as u32;
            let (f3, rd) = if name == "c.fldsp" {
                (0b001, r.rs())
            } else {
                (0b011, r.rd_nz())
            };
            (
                c_ldsp(f3, rd, u),
                Mem {
                    base: 2,
                    imm: u as i32,
                    size: 8,
                },
            )
        }
        "c.lwsp" => {
            let u = 4 * r.below(64) as u32;
            let raw = 0b010 << 13
                | field(u, 5, 5) << 12
                | r.rd_nz() << 7
                | field(u, 4, 2) << 4
                | field(u, 7, 6) << 2
                | 2;
            (
                raw,
                Mem {
                    base: 2,
                    imm: u as i32,
                    size: 4,
                },
            )
        }
        "c.fsdsp" | "c.sdsp" => {
            let u = 8 * r.below(64) as u32;
            let f3 = if name == "c.fsdsp" { 0b101 } else { 0b111 };
            (
                c_sdsp(f3, r.rs(), u),
                Mem {
                    base: 2,
                    imm: u as i32,
                    size: 8,
                },
            )
        }
        "c.swsp" => {
            let u = 4 * r.below(64) as u32;
            let raw = 0b110 << 13 | field(u, 5, 2) << 9 | field(u, 7, 6) << 7 | r.rs() << 2 | 2;
            (
                raw,
                Mem {
                    base: 2,
                    imm: u as i32,
                    size: 4,
                },
            )
        }
        "c.jr" | "c.jalr" => {
            let off = pick_off(r, 1 << 20);
            let base = r.rd_nz();
            let b12 = u32::from(name == "c.jalr");
            (c_cr(b12, base, 0), JumpReg { base, imm: 0, off })
        }
        "c.mv" => (c_cr(0, r.rd(), 1 + r.below(31) as u32), Plain),
        "c.add" => (c_cr(1, r.rd(), 1 + r.below(31) as u32), Plain),
        _ => return None,
    };
    Some(Enc {
        name,
        raw,
        len: 2,
        kind,
    })
}

/// Forms that must also be run with sp as their base or destination (the
/// random table avoids sp as a destination, and picks it as a base only now
/// and then): the shapes of function prologues and epilogues.
const SP_FORMS: &[&str] = &[
    "addi", "c.addi", "ld", "sd", "lw", "sw", "fld", "fsd", "amoadd.d",
];

// ---------------------------------------------------------------------------
// Coverage: what the decoder accepts, straight from the decoder.
// ---------------------------------------------------------------------------

fn insn(raw: u32) -> Insn {
    Insn::from_parcels(raw as u16, (raw >> 16) as u16).expect("16- or 32-bit")
}

/// Every mnemonic `decode` does not reject: all 16-bit encodings, and every
/// 32-bit major opcode x funct3 x bits 31:20 (funct7 and rs2, where the
/// remaining funct fields live) with two choices of rd / rs1. `decode` maps
/// names to actions, so it runs once per run of equal names (`mnemonic` alone
/// is cheap enough for the million 32-bit words).
fn accepted_mnemonics() -> BTreeSet<&'static str> {
    let mut set = BTreeSet::new();
    let mut last: Option<&'static str> = None;
    let mut add = |raw: u32| {
        let i = insn(raw);
        let Some(name) = mnemonic(i) else { return };
        if last.is_some_and(|l| core::ptr::eq(l, name)) {
            return;
        }
        last = Some(name);
        if !matches!(decode(i).action, Action::Reject(_)) {
            set.insert(name);
        }
    };
    (0..=u16::MAX)
        .filter(|lo| lo & 3 != 3)
        .for_each(|lo| add(u32::from(lo)));
    for op in (0..32u32).map(|o| o << 2 | 3).filter(|o| o & 0x1c != 0x1c) {
        for f3 in 0..8 {
            for regs in [0, 1 << 15 | 2 << 7] {
                for hi in 0..4096u32 {
                    add(hi << 20 | f3 << 12 | regs | op);
                }
            }
        }
    }
    set
}

/// Checks an encoding against the decoder: the name we meant, accepted, and
/// for PC-relative forms the operands the simulator will use.
fn check_encoding(e: &Enc) -> TestResult {
    let d = decode(insn(e.raw));
    check!(
        d.mnemonic == e.name,
        "encoder: {:#x} decodes as {}, meant {}",
        e.raw,
        d.mnemonic,
        e.name
    );
    let ok = match (e.kind, d.action) {
        (Kind::Jump { off }, Action::Simulate(SimOp::Jal { offset, .. })) => offset == off as i64,
        (Kind::JumpReg { base, imm, .. }, Action::Simulate(SimOp::Jalr { rs1, offset, .. })) => {
            u32::from(rs1.0) == base && offset == imm as i64
        }
        (
            Kind::Branch {
                rs1: a,
                rs2: b,
                off,
            },
            Action::Simulate(SimOp::Branch {
                rs1, rs2, offset, ..
            }),
        ) => (u32::from(rs1.0), u32::from(rs2.0), offset) == (a, b, off as i64),
        (Kind::Plain, Action::Simulate(SimOp::Auipc { .. })) => e.name == "auipc",
        (Kind::Plain | Kind::Mem { .. }, Action::OutOfLine) => true,
        _ => false,
    };
    check!(
        ok,
        "encoder: {} {:#x} is {:?}, table says {:?}",
        e.name,
        e.raw,
        d.action,
        e.kind
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Random states.
// ---------------------------------------------------------------------------

const INT_SPECIAL: [u64; 14] = [
    0,
    1,
    u64::MAX,
    1 << 63,
    i64::MAX as u64,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0xffff_ffff_8000_0000,
    1 << 32,
    31,
    32,
    63,
    64,
];

fn int_value(r: &mut Rng) -> u64 {
    match r.below(4) {
        0 | 1 => r.next(),
        2 => r.range(-16, 16) as u64,
        _ => r.pick(&INT_SPECIAL),
    }
}

const F32_SPECIAL: [u32; 10] = [
    0,
    0x8000_0000,
    0x3f80_0000, // 1.0
    0x7f80_0000, // inf
    0xff80_0000, // -inf
    0x7fc0_0000, // qNaN
    0x7f80_0001, // sNaN
    0x0000_0001, // smallest subnormal
    0x7f7f_ffff, // largest finite
    0x4f00_0000, // 2^31
];
const F64_SPECIAL: [u64; 10] = [
    0,
    1 << 63,
    0x3ff0_0000_0000_0000,
    0x7ff0_0000_0000_0000,
    0xfff0_0000_0000_0000,
    0x7ff8_0000_0000_0000,
    0x7ff0_0000_0000_0001,
    1,
    0x7fef_ffff_ffff_ffff,
    0x43e0_0000_0000_0000, // 2^63
];
const BOX: u64 = 0xffff_ffff_0000_0000;

/// FP register contents: NaN-boxed singles, doubles, specials of both, and
/// raw bits (an unboxed single reads as NaN).
fn fp_value(r: &mut Rng) -> u64 {
    let sign = r.below(2);
    match r.below(6) {
        0 => r.next(),
        1 => BOX | u64::from(r.pick(&F32_SPECIAL)),
        2 => r.pick(&F64_SPECIAL),
        3 => {
            let exp = r.range(127 - 40, 127 + 40) as u64;
            BOX | sign << 31 | exp << 23 | r.below(1 << 23)
        }
        _ => {
            let exp = r.range(1023 - 70, 1023 + 70) as u64;
            sign << 63 | exp << 52 | r.below(1 << 52)
        }
    }
}

/// A random state for `e` that keeps the harness and the kernel sound:
/// sp in the window's sp slots with the scratch stack below, tp = hart id,
/// memory operands inside the window (above every sp), jump targets on
/// the collect stub; branches compare equal operands half the time.
fn make_state(e: &Enc, at: usize, r: &mut Rng) -> (Regs, Vec<u8>) {
    let win = window_base();
    let mut x = [0u64; 32];
    x.iter_mut().skip(1).for_each(|v| *v = int_value(r));
    x[2] = win + 16 * r.below(SP_SLOTS);
    x[4] = arch::hart_id() as u64;
    let fixed = |reg: u32| reg == 0 || reg == 2 || reg == 4;
    match e.kind {
        Kind::Mem { base, imm, size } if base != 2 => {
            let slots = (WINDOW as u64 - DATA_START) / size;
            let addr = win + DATA_START + size * r.below(slots);
            x[base as usize] = addr.wrapping_sub(imm as i64 as u64);
        }
        Kind::JumpReg { base, imm, off } => {
            let target = (area_base() + at) as i64 + off as i64;
            // Bit 0 of the sum is ignored by jalr: set it half the time.
            x[base as usize] = (target - imm as i64) as u64 + r.below(2);
        }
        Kind::Branch { rs1, rs2, .. } if r.below(2) == 0 => {
            let (a, b) = (rs1 as usize, rs2 as usize);
            if !fixed(rs2) {
                x[b] = x[a];
            } else if !fixed(rs1) {
                x[a] = x[b];
            }
        }
        _ => {}
    }
    let mut f = [0u64; 32];
    f.iter_mut().for_each(|v| *v = fp_value(r));
    // frm 5..7 is reserved: a dynamic-rm instruction would trap.
    let fcsr = r.below(5) << 5 | r.below(32);
    let mem = (0..WINDOW / 8)
        .flat_map(|_| r.next().to_le_bytes())
        .collect();
    (Regs { x, f, fcsr }, mem)
}

// ---------------------------------------------------------------------------
// The test.
// ---------------------------------------------------------------------------

/// Differences between the native and the probed outcome. Memory is
/// compared from the highest sp either run had: below sp, traps may write.
fn differences(sp_in: u64, native: &Outcome, probed: &Outcome) -> Vec<String> {
    let mut out = Vec::new();
    let (n, p) = (&native.regs, &probed.regs);
    for i in 1..32 {
        if n.x[i] != p.x[i] {
            out.push(format!("x{i} {:#x} != {:#x}", n.x[i], p.x[i]));
        }
    }
    for i in 0..32 {
        if n.f[i] != p.f[i] {
            out.push(format!("f{i} {:#x} != {:#x}", n.f[i], p.f[i]));
        }
    }
    if n.fcsr != p.fcsr {
        out.push(format!("fcsr {:#x} != {:#x}", n.fcsr, p.fcsr));
    }
    if native.path != probed.path {
        out.push(format!(
            "path area+{:#x} != area+{:#x}",
            native.path, probed.path
        ));
    }
    let lo = sp_in.max(n.x[2]).max(p.x[2]).saturating_sub(window_base());
    let above = |w: &[(usize, u8)]| -> Vec<(usize, u8)> {
        w.iter().copied().filter(|&(i, _)| i as u64 >= lo).collect()
    };
    let (nw, pw) = (above(&native.window), above(&probed.window));
    if nw != pw {
        out.push(format!("memory writes {nw:x?} != {pw:x?}"));
    }
    out
}

/// An encoding placed in a batch: instruction at `at` in the area.
struct Cell {
    e: Enc,
    at: usize,
    /// Seeds the states, so the probed run regenerates what the native saw.
    seed: u64,
}

impl Cell {
    fn state(&self, i: usize) -> (Regs, Vec<u8>) {
        let mut r = Rng(self.seed ^ (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        make_state(&self.e, self.at, &mut r)
    }
    fn fall_marker(&self) -> usize {
        // The stub's marker is its fifth instruction.
        self.at + self.e.len + 16
    }
    fn target_marker(&self) -> Option<usize> {
        let off = self.e.kind.target()?;
        Some((self.at as i64 + off as i64) as usize + 16)
    }
}

/// Mismatches found so far: how many, and the first few described.
#[derive(Default)]
struct Mismatches {
    count: usize,
    shown: Vec<String>,
}

const SHOWN: usize = 10;

/// Per branch cell of a batch: how often the native run fell through and
/// how often it took the branch.
type BranchPaths = Vec<(&'static str, [usize; 2])>;

/// Runs a batch from `STATES` states each, natively, then with every cell's
/// instruction probed (one `register_many`).
fn run_batch(cells: &[Cell], found: &mut Mismatches) -> Result<BranchPaths, String> {
    for c in cells {
        write_prologue(c.at);
        write_code(c.at, c.e.raw, c.e.len);
        write_stub(c.at + c.e.len);
        if let Some(m) = c.target_marker() {
            write_stub(m - 16);
        }
    }
    arch::fence_i();
    let mut native = Vec::new();
    for c in cells {
        let runs: Vec<Outcome> = (0..STATES)
            .map(|i| {
                let (regs, mem) = c.state(i);
                run(c.at, &regs, &mem)
            })
            .collect();
        native.push(runs);
    }

    let probes = cells
        .iter()
        .map(|c| Kprobe::at(area_base() + c.at).pre(|_| ()).post(|_| ()))
        .collect();
    let mut handles = Vec::new();
    for (c, h) in cells.iter().zip(rkprobes::register_many(probes)) {
        handles.push(h.map_err(|err| format!("{} {:#x}: register: {err}", c.e.name, c.e.raw))?);
    }
    let mut paths = Vec::new();
    for (c, native) in cells.iter().zip(&native) {
        let mut taken = [0; 2];
        for (i, n) in native.iter().enumerate() {
            let (regs, mem) = c.state(i);
            let p = run(c.at, &regs, &mem);
            if n.path == c.fall_marker() {
                taken[0] += 1;
            } else if Some(n.path) == c.target_marker() {
                taken[1] += 1;
            } else {
                return Err(format!(
                    "harness: native {} {:#x} state {i} ended at area+{:#x}",
                    c.e.name, c.e.raw, n.path
                ));
            }
            let d = differences(regs.x[2], n, &p);
            if !d.is_empty() {
                found.count += 1;
            }
            if !d.is_empty() && found.shown.len() < SHOWN {
                found.shown.push(format!(
                    "{} {:#010x} at area+{:#x} state {i}: {} (native != probed)",
                    c.e.name,
                    c.e.raw,
                    c.at,
                    d.join(", ")
                ));
            }
        }
        if matches!(c.e.kind, Kind::Branch { .. }) {
            paths.push((c.e.name, taken));
        }
    }
    let hits: Vec<u64> = handles.iter().map(|h| h.hits()).collect();
    for r in rkprobes::unregister_many(handles) {
        r.map_err(|err| format!("unregister: {err}"))?;
    }
    for (c, hits) in cells.iter().zip(hits) {
        check!(
            hits == STATES as u64,
            "{} {:#x}: probe hit {hits} times in {STATES} runs",
            c.e.name,
            c.e.raw
        );
    }

    for c in cells {
        clear_code(c.at - PROLOGUE, PROLOGUE + c.e.len + STUB);
        if let Some(m) = c.target_marker() {
            clear_code(m - 16, STUB);
        }
    }
    arch::fence_i();
    Ok(paths)
}

/// Cuts the table into batches that fit the area.
fn layout(table: &[Enc], rng: &mut Rng) -> Result<Vec<Vec<Cell>>, String> {
    let mut batches = vec![Vec::new()];
    let mut l = Layout::new();
    for e in table {
        let align = 2 * rng.below(2) as usize;
        let at = match l.place(e, align) {
            Some(at) => at,
            None => {
                batches.push(Vec::new());
                l = Layout::new();
                l.place(e, align)
                    .ok_or(format!("harness: {} {:#x} fits nowhere", e.name, e.raw))?
            }
        };
        let seed = rng.next();
        batches.last_mut().unwrap().push(Cell { e: *e, at, seed });
    }
    Ok(batches)
}

fn insn_diff() -> TestResult {
    let start = arch::time();
    let accepted = accepted_mnemonics();
    let mut rng = Rng(0x5eed_1d1f_f00d_cafe);
    let mut table = Vec::new();
    let mut no_encoder = Vec::new();
    for &name in &accepted {
        for _ in 0..VARIANTS {
            match gen(name, &mut rng, false) {
                Some(e) => table.push(e),
                None => {
                    no_encoder.push(name);
                    break;
                }
            }
        }
    }
    for &name in SP_FORMS {
        let e = gen(name, &mut rng, true).ok_or(format!("no encoder for sp form {name}"))?;
        table.push(e);
    }
    for e in &table {
        check_encoding(e)?;
    }
    let covered: BTreeSet<&str> = table.iter().map(|e| e.name).collect();
    let excluded: BTreeSet<&str> = EXCLUDED.iter().map(|(n, _)| *n).collect();
    let missing: Vec<&str> = accepted
        .iter()
        .filter(|n| !covered.contains(*n) && !excluded.contains(*n))
        .copied()
        .collect();
    if EXCLUDED.is_empty() {
        println!("insn-diff exclusions: none");
    }
    for (name, why) in EXCLUDED {
        println!("insn-diff exclusion: {name}: {why}");
    }

    let mut found = Mismatches::default();
    let mut branch_paths: alloc::collections::BTreeMap<&str, [usize; 2]> = Default::default();
    for batch in layout(&table, &mut rng)? {
        let paths = run_batch(&batch, &mut found)?;
        for (name, [fall, taken]) in paths {
            let t = branch_paths.entry(name).or_default();
            t[0] += fall;
            t[1] += taken;
        }
    }

    let (encodings, states, mismatches) = (table.len(), table.len() * STATES, found.count);
    for r in &found.shown {
        println!("insn-diff mismatch: {r}");
    }
    println!("insn-diff: {encodings} encodings, {states} states, {mismatches} mismatches");
    let secs = (arch::time() - start) / crate::timer::TICKS_PER_SEC;
    println!(
        "insn-diff: {} mnemonics accepted by the decoder, all covered; {secs} s",
        accepted.len()
    );
    check!(
        no_encoder.is_empty() && missing.is_empty(),
        "accepted by the decoder but not in the table: {missing:?} (no encoder: {no_encoder:?})"
    );
    let one_sided: Vec<_> = branch_paths
        .iter()
        .filter(|(_, p)| p[0] == 0 || p[1] == 0)
        .collect();
    check!(
        one_sided.is_empty(),
        "branches with only one outcome tested: {one_sided:?}"
    );
    check!(mismatches == 0, "{mismatches} mismatches");
    Ok(())
}
