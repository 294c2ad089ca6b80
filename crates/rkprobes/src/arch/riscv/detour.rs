//! Jump probes: a 32-bit instruction replaced by `jal x0, detour` instead
//! of `ebreak`. The hit then costs no trap: the detour saves a full
//! `TrapFrame` on the stack, calls the library, and leaves with `sret`
//! (which restores the interrupt state and jumps in one instruction).
//!
//! A compressed instruction has no room for the `jal` alone: it gets one
//! that covers the next instruction too where that is safe (below), else
//! it keeps its breakpoint, and when it runs out of line it gets a detour
//! too, for the copies alone (padded with `c.nop`), so the trap returns
//! straight into a copy that jumps back (`hit::handle_breakpoint`): one
//! trap per hit.
//!
//! One detour per probed address, in the slot area (`jal` reaches ±1 MiB):
//! ```text
//!  D + 0   addi sp, sp, -FRAME
//!  D + 4   sd   ra, 8(sp)
//!  D + 8   jal  ra, entry                ra = D + 12 names the detour
//!  D + 12  <insn>                           out of line, irqs were on
//!  D + 16  csrsi sstatus, SIE
//!  D + 20  <second> | jal x0, back          see below
//!  D + 24  jal  x0, back
//!  D + 28  <insn>                           out of line, irqs were off
//!  D + 32  <second> | jal x0, back
//!  D + 36  jal  x0, back
//!  D + 40  <insn>                           out of line, post handlers
//!  D + 44  addi sp, sp, -FRAME              follow (back into the library
//!  D + 48  sd   ra, 8(sp)                   after the instruction, no
//!  D + 52  jal  ra, post entry              trap): ra = D + 56
//!  D + 56  .quad cell                       where its point is published
//! ```
//! `back` is the address after the probed instruction. A compressed
//! instruction may get a jump too, when the OS can tell that no hart is
//! stopped right after it (`KprobeOs::wait_harts_out_of`) and nothing but
//! the instruction itself leads there (`region::second_for_jump`): then
//! the `jal` covers it and the start of the next instruction, `<second>`,
//! whose copies follow the probed one's, and `back` is after `<second>`.
//! Every way on to the second instruction from the probed one (falling
//! through, a branch to it, a handler's skip) resumes at `D + 20`
//! (`SECOND_AT`), whatever the interrupt state.
//!
//! Each `jal` into the library goes straight to its entry
//! (`rkprobes_detour_entry`, `rkprobes_detour_post_entry`) when that is in
//! reach, else to a stub next to the detours that jumps on to it
//! (`entries_for`). An entry finishes the frame with interrupts masked and
//! calls the library. `rkprobes_detour_hit` sets the frame's pc: the next
//! pc of a simulated instruction, or `D + 12` / `D + 24` / `D + 32` (with
//! interrupts masked by `sret`) for one executed out of line;
//! `rkprobes_detour_post` runs the post handlers on the instruction's
//! result and resumes after the probe. The out-of-line copies run with
//! interrupts masked; only a final `jal` back can be interrupted, and a
//! detour never changes once written (it is reused only for the same
//! address), so an interrupted hart always comes back to the same code.
//!
//! A detour made for return probes (at a function's entry) enters through
//! a third entry, `rkprobes_detour_fn_entry`, whose way back restores only
//! the registers a Rust call may change (`fn_restore!`) when the hit says
//! that will do. It serves any point: a hit that is not one return probe's
//! entry asks for every register.
//!
//! A detour made for function probes (`on_call`/`on_return`) takes the
//! light way in, `rkprobes_detour_call_entry`, from its first word, which
//! links in `t0` (free at a function's entry, as under Linux's ftrace):
//! ```text
//!  D + 0   jal  t0, call entry           t0 = D + 4 names the detour
//!  D + 4   nop
//!  D + 8   nop
//!  D + 12  ...                           as above
//! ```
//! It saves only what a call passes and the registers a Rust call may
//! change, and goes on straight into the copy at `D + 12` / `D + 28` (no
//! `sret`). A hit it cannot take (another kind of point, a nested or
//! removed one) saves the rest and takes the common path, as if it had
//! come through `D + 8`.

use super::insn::{code_bytes, Insn};

/// Bytes of one detour.
pub const DETOUR_SIZE: usize = 64;
/// Where a detour keeps the address of its point cell (the library's
/// `AtomicPtr` holding the point armed for it, or null).
pub const CELL_AT: usize = 56;
/// The detour's `jal` into the library before the instruction.
pub const ENTRY_JAL_AT: usize = 8;
/// `ra` after the detour's `jal` into the common entry.
pub const RET_OFFSET: usize = ENTRY_JAL_AT + 4;
/// `t0` after a function probe's detour's `jal` into the light entry.
pub const CALL_RET_OFFSET: usize = 4;
/// `ra` after the `jal` into the post entry, once the copy at `STEP_AT`
/// has run.
pub const POST_RET_OFFSET: usize = 56;
/// Out-of-line copy entered when interrupts were enabled at the probe.
pub const IRQS_ON_AT: usize = 12;
/// Out-of-line copy entered when interrupts were disabled at the probe.
pub const IRQS_OFF_AT: usize = 28;
/// A jump over two instructions: the copy of the second one, where a hart
/// goes on after the first (entered with the interrupt state it resumes
/// with: nothing after it changes that).
pub const SECOND_AT: usize = 20;
/// The same copy after the first one run with interrupts off.
const SECOND_OFF_AT: usize = 32;
/// Copy followed by the way back into the library, for post handlers.
pub const STEP_AT: usize = 40;
/// Bytes the common entry reserves below `sp`: one `TrapFrame`.
pub const FRAME: usize = 272;
const _: () = assert!(core::mem::size_of::<super::frame::TrapFrame>() == FRAME);

const ADDI_SP_SP_MINUS_FRAME: u32 =
    ((FRAME.wrapping_neg() as u32 & 0xfff) << 20) | 2 << 15 | 2 << 7 | 0x13;
const SD_RA_8_SP: u32 = 1 << 20 | 2 << 15 | 3 << 12 | 8 << 7 | 0x23;
const CSRSI_SSTATUS_SIE: u32 = 0x100 << 20 | 2 << 15 | 6 << 12 | 0x73;
const NOP: u32 = 0x13;

/// `jal rd, target` placed at `at`, if `target` is within reach.
pub fn jal(rd: u32, at: usize, target: usize) -> Option<u32> {
    let off = target.wrapping_sub(at) as isize;
    if !(-(1 << 20)..(1 << 20)).contains(&off) || off % 2 != 0 {
        return None;
    }
    let o = off as u32;
    let imm =
        (o >> 20 & 1) << 31 | (o >> 1 & 0x3ff) << 21 | (o >> 11 & 1) << 20 | (o >> 12 & 0xff) << 12;
    Some(imm | (rd & 31) << 7 | 0x6f)
}

/// Where a detour's two `jal`s enter the library (`func` is the `pre` of a
/// detour made for return probes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entries {
    /// Before the instruction (`rkprobes_detour_entry`).
    pub pre: usize,
    /// After the copy at `STEP_AT` (`rkprobes_detour_post_entry`).
    pub post: usize,
    /// Before the instruction, for a detour at a function's entry made
    /// for a return probe (`rkprobes_detour_fn_entry`): its hit may skip
    /// restoring the registers a Rust call keeps.
    pub func: usize,
    /// From the first word, for a detour made for function probes
    /// (`rkprobes_detour_call_entry`).
    pub call: usize,
}

/// Which entry a detour's way in leads to (the kind of the probes it is
/// made for; it then serves any point at its address).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum WayIn {
    /// `Entries::pre`.
    Common,
    /// `Entries::func`: return probes.
    Function,
    /// `Entries::call`: the light way, for a lone return probe without a
    /// full-frame entry handler (a function probe's `on_call`, or none).
    Call,
}

/// The bytes of the detour at `detour` for `insn` at `addr`, entering the
/// library at `entries` by `way`. `None` if a jump is out of reach.
/// `out_of_line`: whether the copies of `insn` are ever run (a
/// PC-relative instruction is simulated instead; its copies stay zero, an
/// illegal instruction). `cell`: the address of the detour's point cell.
/// `second`: the instruction after a compressed `insn` that its jump
/// covers too (see the module's text), or `None`.
///
/// A compressed instruction without a `second` has no room for the `jal`
/// at `addr`: it keeps a breakpoint, and its detour serves only for the
/// copies, which jump back without a second trap.
pub fn code(
    insn: Insn,
    (addr, detour): (usize, usize),
    (entries, way): (Entries, WayIn),
    out_of_line: bool,
    cell: usize,
    second: Option<Insn>,
) -> Option<[u8; DETOUR_SIZE]> {
    jal(0, addr, detour)?;
    let back = addr + insn.len() + second.map_or(0, |s| s.len());
    let copy = match out_of_line {
        false => 0,
        true => padded(insn),
    };
    let at = |offset: usize| detour + offset;
    // Without a second instruction, the jump back comes straight after the
    // copy (no extra instruction per hit); the word after it is unused.
    let second_on = second.map_or(jal(0, at(SECOND_AT), back), |s| Some(padded(s)))?;
    let second_off = second.map_or(jal(0, at(SECOND_OFF_AT), back), |s| Some(padded(s)))?;
    let framed = |entry| {
        Some([
            ADDI_SP_SP_MINUS_FRAME,
            SD_RA_8_SP,
            jal(1, at(ENTRY_JAL_AT), entry)?,
        ])
    };
    let head = match way {
        WayIn::Call => [jal(5, at(0), entries.call)?, NOP, NOP],
        WayIn::Common => framed(entries.pre)?,
        WayIn::Function => framed(entries.func)?,
    };
    let words = [
        head[0],
        head[1],
        head[2],
        copy,
        CSRSI_SSTATUS_SIE,
        second_on,
        jal(0, at(SECOND_AT + 4), back)?,
        copy,
        second_off,
        jal(0, at(SECOND_OFF_AT + 4), back)?,
        copy,
        ADDI_SP_SP_MINUS_FRAME,
        SD_RA_8_SP,
        jal(1, at(STEP_AT + 12), entries.post)?,
    ];
    const _: () = assert!(CELL_AT == 14 * 4, "the cell follows the words");
    const _: () = assert!(POST_RET_OFFSET == STEP_AT + 16);
    const _: () = assert!(IRQS_ON_AT + 8 == SECOND_AT && IRQS_OFF_AT + 4 == SECOND_OFF_AT);
    Some(code_bytes(&words, &[cell as u64]))
}

/// Where a hart goes on after the probed instruction of the detour at
/// `detour` (`after` in the text): there, or, for a jump over two
/// instructions, the second one's copy.
pub fn resume_after(detour: usize, after: usize, over_two: bool) -> usize {
    match over_two {
        true => detour + SECOND_AT,
        false => after,
    }
}

/// A copy of `insn` in one word (a compressed one padded with `c.nop`).
fn padded(insn: Insn) -> u32 {
    const C_NOP: u32 = 0x0001;
    match insn.is_compressed() {
        true => insn.raw() & 0xffff | C_NOP << 16,
        false => insn.raw(),
    }
}

/// The point cell of the detour at `detour`, read from the detour itself
/// (its bytes never change once written).
///
/// # Safety
/// `detour` must be the start of a detour written by `code`, with the
/// address of a cell that lives as long as the library.
#[inline(always)]
pub unsafe fn point_cell<T>(detour: usize) -> &'static core::sync::atomic::AtomicPtr<T> {
    // SAFETY: per the contract, an 8-byte aligned word of a written detour
    // in the slot area, which the OS maps readable, holding a cell's
    // address.
    unsafe { &*(((detour + CELL_AT) as *const usize).read_volatile() as *const _) }
}

/// The instruction that sends a hart at `addr` to `detour`.
pub fn jump_to(addr: usize, detour: usize) -> Option<Insn> {
    let raw = jal(0, addr, detour)?;
    Insn::from_parcels(raw as u16, (raw >> 16) as u16)
}

/// The assembly of one entry from a detour into the library: `$entry`
/// (saves `t0`), `$saved` (where a stub continues, `t0` saved), the Rust
/// function `$target(&mut TrapFrame)` it calls and `$restore`, the way
/// back (`full_restore!` or `fn_restore!`).
#[cfg(target_arch = "riscv64")]
macro_rules! detour_entry_asm {
    ($entry:literal, $saved:literal, $target:literal, $restore:expr) => {
        concat!(
            r#"
    .pushsection .text.rkprobes.detour, "ax", @progbits
    .globl "#,
            $entry,
            r#"
    .type "#,
            $entry,
            r#", @function
    .p2align 2
"#,
            $entry,
            r#":
    /* sp is already lowered by FRAME and ra saved at 8(sp); ra names the
       detour. The entry stub saves t0 itself and continues at the next
       label (see `entry_stub_code`). */
    sd      t0, 5*8(sp)
    .globl "#,
            $saved,
            r#"
"#,
            $saved,
            r#":
    /* Mask interrupts; the frame's sstatus as a trap would leave it
       (`frame_status`): SPIE = SIE at the probe, SIE = 0, SPP = S. */
    sd      t1, 6*8(sp)
    csrrci  t0, sstatus, 2
    andi    t1, t0, 2
    slli    t1, t1, 4
    andi    t0, t0, -35
    or      t0, t0, t1
    ori     t0, t0, 0x100
    sd      t0, 33*8(sp)
    .irp i, 3,4,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    sd      x\i, \i*8(sp)
    .endr
    addi    t0, sp, {frame}
    sd      t0, 2*8(sp)
    sd      ra, 32*8(sp)
    mv      a0, sp
    /* Relaxable: the linker makes it one `jal` when the target is near. */
    .option push
    .option relax
    call    "#,
            $target,
            r#"
    .option pop
    ld      t0, 32*8(sp)
    csrw    sepc, t0
    ld      t0, 33*8(sp)
    csrw    sstatus, t0
"#,
            $restore,
            r#"
    .size "#,
            $entry,
            r#", . - "#,
            $entry,
            r#"
    .popsection
"#
        )
    };
}

/// Every register back from the frame, a handler's changes included.
#[cfg(target_arch = "riscv64")]
macro_rules! full_restore {
    () => {
        r#"
    .irp i, 1,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    ld      x\i, \i*8(sp)
    .endr
    ld      sp, 2*8(sp)
    sret
"#
    };
}

/// At a function's entry, when the Rust side returned 0: only the
/// registers a Rust call may change (`ra`, `t0`-`t6`, `a0`-`a7`) and `sp`
/// come back from the frame; `gp`, `tp` and `s0`-`s11` are still live,
/// kept by the Rust code (so a handler's writes to them do not take
/// effect there). Otherwise every register, as `full_restore!`.
#[cfg(target_arch = "riscv64")]
macro_rules! fn_restore {
    () => {
        concat!(
            r#"
    bnez    a0, 1f
    .irp i, 1,5,6,7,10,11,12,13,14,15,16,17,28,29,30,31
    ld      x\i, \i*8(sp)
    .endr
    ld      sp, 2*8(sp)
    sret
1:"#,
            full_restore!()
        )
    };
}

#[cfg(target_arch = "riscv64")]
core::arch::global_asm!(
    detour_entry_asm!(
        "rkprobes_detour_entry",
        "rkprobes_detour_entry_saved",
        "rkprobes_detour_hit",
        full_restore!()
    ),
    detour_entry_asm!(
        "rkprobes_detour_post_entry",
        "rkprobes_detour_post_entry_saved",
        "rkprobes_detour_post",
        full_restore!()
    ),
    detour_entry_asm!(
        "rkprobes_detour_fn_entry",
        "rkprobes_detour_fn_entry_saved",
        "rkprobes_detour_fn_hit",
        fn_restore!()
    ),
    r#"
    .pushsection .text.rkprobes.detour, "ax", @progbits
    .globl rkprobes_detour_call_entry
    .type rkprobes_detour_call_entry, @function
    .p2align 2
    /* The registers a call may pass that a Rust call may change (all
       but t0/t1, free at a function's entry, and ra, sp), each in its
       frame word: `call_regs sd` saves them, `call_regs ld` restores. */
    .macro call_regs op
    .irp i, 7,10,11,12,13,14,15,16,17,28,29,30,31
    \op     x\i, \i*8(sp)
    .endr
    .endm
rkprobes_detour_call_entry:
    /* t0 = D + 4 names the detour. Saved: what a call passes, and what a
       Rust call may change (t0 and t1 hold nothing at a function's
       entry). Interrupts masked: the hit uses per-hart state. */
    addi    sp, sp, -{frame}
    sd      ra, 1*8(sp)
    sd      t0, 32*8(sp)
    csrrci  t1, sstatus, 2
    sd      t1, 33*8(sp)
    call_regs sd
    addi    t1, sp, {frame}
    sd      t1, 2*8(sp)
    mv      a0, sp
    /* retprobe::call_hit, made for the OS's type at `init`. */
    ld      t1, RKPROBES_CALL_HIT
    jalr    t1
    beqz    a0, 1f
    /* On into the copy, interrupts still masked: the copy at D + 12
       enables them after the instruction (they were on at the probe). */
    mv      t0, a0
    ld      ra, 1*8(sp)
    call_regs ld
    addi    sp, sp, {frame}
    jr      t0
1:  /* Not a hit this way can take: back to the state at D + 8 (interrupts
       as at the probe, the registers a call passes, ra = D + 12 as that
       word's link) and in through the common entry. */
    ld      t0, 33*8(sp)
    andi    t0, t0, 2
    csrs    sstatus, t0
    ld      t0, 32*8(sp)
    addi    ra, t0, {gap}
    call_regs ld
    j       rkprobes_detour_entry
    .size rkprobes_detour_call_entry, . - rkprobes_detour_call_entry
    .popsection
"#,
    frame = const FRAME,
    gap = const RET_OFFSET - CALL_RET_OFFSET,
);

/// Bytes of the stub detours enter the library through.
pub const ENTRY_STUB_SIZE: usize = 32;

/// The stub next to the detours (`jal` reach) that continues into the
/// common entry at `entry` wherever it is: saves `t0` as the entry would,
/// then jumps through a literal.
/// ```text
///  S + 0   sd   t0, 40(sp)
///  S + 4   auipc t0, 0
///  S + 8   ld   t0, 12(t0)      the literal at S + 16
///  S + 12  jr   t0              -> `entry`
///  S + 16  .quad entry
/// ```
/// `entry` is `rkprobes_detour_entry_saved`, past the entry's own save of
/// `t0`.
pub fn entry_stub_code(entry: usize) -> [u8; ENTRY_STUB_SIZE] {
    const SD_T0_40_SP: u32 = 1 << 25 | 5 << 20 | 2 << 15 | 3 << 12 | 8 << 7 | 0x23;
    const AUIPC_T0_0: u32 = 5 << 7 | 0x17;
    const LD_T0_12_T0: u32 = 12 << 20 | 5 << 15 | 3 << 12 | 5 << 7 | 0x03;
    const JR_T0: u32 = 5 << 15 | 0x67;
    code_bytes(
        &[SD_T0_40_SP, AUIPC_T0_0, LD_T0_12_T0, JR_T0],
        &[entry as u64],
    )
}

/// The stub that continues into the light entry (`Entries::call`) at
/// `entry` wherever it is: `t0` holds the detour's link, so it jumps
/// through `t1`, which is free there too.
/// ```text
///  S + 0   auipc t1, 0
///  S + 4   ld   t1, 16(t1)      the literal at S + 16
///  S + 8   jr   t1              -> `entry`
///  S + 12  nop
///  S + 16  .quad entry
/// ```
pub fn call_stub_code(entry: usize) -> [u8; ENTRY_STUB_SIZE] {
    const AUIPC_T1_0: u32 = 6 << 7 | 0x17;
    const LD_T1_16_T1: u32 = 16 << 20 | 6 << 15 | 3 << 12 | 6 << 7 | 0x03;
    const JR_T1: u32 = 6 << 15 | 0x67;
    code_bytes(&[AUIPC_T1_0, LD_T1_16_T1, JR_T1, NOP], &[entry as u64])
}

/// On hosts the entries are not built: host tests that play a jump
/// probe's hit set an address in reach here (0: no jump probes).
#[cfg(not(target_arch = "riscv64"))]
pub static HOST_ENTRY: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

/// Where the detour at `detour` enters the library: straight into each
/// entry when it is within `jal` reach (three instructions fewer per
/// hit), else through `stubs` (or, on hosts, the test's entry).
pub fn entries_for(detour: usize, stubs: Option<Entries>) -> Entries {
    let stubs = stubs.unwrap_or_else(common_entries);
    #[cfg(target_arch = "riscv64")]
    {
        extern "C" {
            fn rkprobes_detour_entry();
            fn rkprobes_detour_post_entry();
            fn rkprobes_detour_fn_entry();
            fn rkprobes_detour_call_entry();
        }
        let pre = rkprobes_detour_entry as *const () as usize;
        let post = rkprobes_detour_post_entry as *const () as usize;
        let func = rkprobes_detour_fn_entry as *const () as usize;
        let call = rkprobes_detour_call_entry as *const () as usize;
        Entries {
            pre: jal(1, detour + ENTRY_JAL_AT, pre).map_or(stubs.pre, |_| pre),
            post: jal(1, detour + STEP_AT + 12, post).map_or(stubs.post, |_| post),
            func: jal(1, detour + ENTRY_JAL_AT, func).map_or(stubs.func, |_| func),
            call: jal(5, detour, call).map_or(stubs.call, |_| call),
        }
    }
    #[cfg(not(target_arch = "riscv64"))]
    {
        let _ = detour;
        stubs
    }
}

/// Addresses of the entries past their save of `t0` (where an entry stub
/// continues).
pub fn common_entries() -> Entries {
    #[cfg(target_arch = "riscv64")]
    {
        extern "C" {
            fn rkprobes_detour_entry_saved();
            fn rkprobes_detour_post_entry_saved();
            fn rkprobes_detour_fn_entry_saved();
            fn rkprobes_detour_call_entry();
        }
        Entries {
            pre: rkprobes_detour_entry_saved as *const () as usize,
            post: rkprobes_detour_post_entry_saved as *const () as usize,
            func: rkprobes_detour_fn_entry_saved as *const () as usize,
            call: rkprobes_detour_call_entry as *const () as usize,
        }
    }
    #[cfg(not(target_arch = "riscv64"))]
    {
        // Four addresses, so tests can tell where a `jal` leads.
        let entry = HOST_ENTRY.load(core::sync::atomic::Ordering::Relaxed);
        Entries {
            pre: entry,
            post: entry + 4,
            func: entry + 8,
            call: entry + 12,
        }
    }
}

pub const SSTATUS_SIE: usize = 1 << 1;
const SSTATUS_SPIE: usize = 1 << 5;
const SSTATUS_SPP: usize = 1 << 8;

/// Turns the live `sstatus` at the probe into what a trap frame holds:
/// previous mode S, SPIE = the interrupt state at the probe, SIE clear.
/// The entry does this in assembly (five instructions, above); host tests
/// play a detour's entry with this function.
pub fn frame_status(tf_sstatus: &mut usize) {
    let on = *tf_sstatus & SSTATUS_SIE != 0;
    let mut s = (*tf_sstatus & !(SSTATUS_SIE | SSTATUS_SPIE)) | SSTATUS_SPP;
    if on {
        s |= SSTATUS_SPIE;
    }
    *tf_sstatus = s;
}

/// The frame's pc and status to run the out-of-line copy of the detour at
/// `detour`: the copy matching the interrupt state the frame asks for
/// (SPIE: a handler may have changed it), entered with interrupts masked.
#[inline(always)]
pub fn out_of_line(detour: usize, sepc: &mut usize, sstatus: &mut usize) {
    let on = *sstatus & SSTATUS_SPIE != 0;
    *sepc = detour + if on { IRQS_ON_AT } else { IRQS_OFF_AT };
    *sstatus &= !SSTATUS_SPIE;
}

/// Where a fault at `offset` into a detour was: in a copy run without a
/// trap, or `None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyFault {
    /// The probed instruction's copy, entered with interrupts masked;
    /// whether they were on at the probe.
    Probed { irqs_were_on: bool },
    /// The copy of the second instruction a jump covers, run with the
    /// interrupt state of the code around it. It stays the place to
    /// restart at: the text after the probed instruction is the jump's.
    Second,
}

/// What a fault at `offset` into a detour hit (`CopyFault`).
pub fn fault_in_copy(offset: usize) -> Option<CopyFault> {
    match offset {
        IRQS_ON_AT => Some(CopyFault::Probed { irqs_were_on: true }),
        IRQS_OFF_AT => Some(CopyFault::Probed {
            irqs_were_on: false,
        }),
        SECOND_AT | SECOND_OFF_AT => Some(CopyFault::Second),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::decode::{decode, Action};
    use super::super::simulate::SimOp;
    use super::*;

    /// Where the detours of these tests enter the library.
    const ENTRIES: Entries = Entries {
        pre: 0x8020_0100,
        post: 0x8020_0200,
        func: 0x8020_0300,
        call: 0x8020_0400,
    };

    /// The detour at `d` for `add a0, a0, a1` at `addr`, run out of line,
    /// its cell at `cell`, entering by `way`.
    fn add_detour(addr: usize, d: usize, way: WayIn, cell: usize) -> [u8; DETOUR_SIZE] {
        const ADD: u32 = 0x00b5_0533;
        code(insn(ADD), (addr, d), (ENTRIES, way), true, cell, None).unwrap()
    }

    fn insn(raw: u32) -> Insn {
        Insn::from_parcels(raw as u16, (raw >> 16) as u16).unwrap()
    }

    fn jal_offset(raw: u32) -> i64 {
        match decode(insn(raw)).action {
            Action::Simulate(SimOp::Jal { offset, .. }) => offset,
            other => panic!("{raw:#x} decodes as {other:?}"),
        }
    }

    /// The encoder agrees with the decoder on every reachable offset shape.
    #[test]
    fn jal_round_trips_through_the_decoder() {
        for off in [
            0isize, 2, -2, 4094, -4096, 0x7fffe, -0x80000, 0xffffe, -0x100000, 0x12344,
        ] {
            let raw = jal(0, 0x8020_0000, (0x8020_0000isize + off) as usize).unwrap();
            assert_eq!(jal_offset(raw), off as i64, "offset {off:#x}");
        }
        assert_eq!(jal(0, 0x8020_0000, 0x8030_0000), None);
        assert_eq!(jal(0, 0x8030_0000, 0x801f_fffe), None);
        assert_eq!(jal(0, 0x8020_0000, 0x8020_0001), None);
    }

    #[test]
    fn detour_layout() {
        let add = 0x00b5_0533; // add a0, a0, a1
        let (addr, d) = (0x8020_1000, 0x8028_0000);
        let entries = ENTRIES;
        let cell = 0x8040_0008;
        let c = add_detour(addr, d, WayIn::Common, cell);
        let w = |i: usize| u32::from_le_bytes(c[i..i + 4].try_into().unwrap());
        for at in [0, STEP_AT + 4] {
            assert_eq!(w(at), 0xef01_0113, "addi sp, sp, -272 at {at}");
            assert_eq!(w(at + 4), 0x0011_3423, "sd ra, 8(sp) at {at}");
        }
        assert_eq!(jal_offset(w(8)), entries.pre as i64 - (d as i64 + 8));
        assert_eq!(w(8) >> 7 & 31, 1, "links in ra");
        assert_eq!(8 + 4, RET_OFFSET);
        assert_eq!([w(IRQS_ON_AT), w(IRQS_OFF_AT), w(STEP_AT)], [add; 3]);
        assert_eq!(w(16), 0x1001_6073, "csrsi sstatus, 2");
        // Straight back after each copy.
        for at in [SECOND_AT, SECOND_OFF_AT] {
            assert_eq!(jal_offset(w(at)), (addr + 4) as i64 - (d + at) as i64);
            assert_eq!(w(at) >> 7 & 31, 0, "no link");
        }
        // After the stepped copy: back into the library, linking in ra.
        assert_eq!(jal_offset(w(52)), entries.post as i64 - (d as i64 + 52));
        assert_eq!(w(52) >> 7 & 31, 1, "links in ra");
        assert_eq!(52 + 4, POST_RET_OFFSET);
        assert_eq!(c[CELL_AT..], (cell as u64).to_le_bytes());
        // Simulated instructions never run from the detour.
        let c = code(
            insn(add),
            (addr, d),
            (entries, WayIn::Common),
            false,
            0,
            None,
        )
        .unwrap();
        assert_eq!(&c[12..16], &[0; 4]);
        // A compressed instruction's copies are padded with `c.nop` and
        // jump back 2 bytes on.
        let c_li = Insn::from_parcels(0x4505, 0).unwrap(); // c.li a0, 1
        let c = code(c_li, (addr, d), (entries, WayIn::Common), true, cell, None).unwrap();
        let w = |i: usize| u32::from_le_bytes(c[i..i + 4].try_into().unwrap());
        assert_eq!(
            [w(IRQS_ON_AT), w(IRQS_OFF_AT), w(STEP_AT)],
            [0x0001_4505; 3]
        );
        assert_eq!(jal_offset(w(20)), (addr + 2) as i64 - (d as i64 + 20));
        assert_eq!(jal_offset(w(32)), (addr + 2) as i64 - (d as i64 + 32));
        // Far detours get none.
        assert!(code(
            insn(add),
            (addr, addr + (1 << 20)),
            (entries, WayIn::Common),
            true,
            0,
            None
        )
        .is_none());
    }

    /// A jump over a compressed instruction and the one after it: the
    /// second one's copies follow the first one's, and both ways jump back
    /// past the second.
    #[test]
    fn a_jump_over_two_instructions_copies_both() {
        let (addr, d) = (0x8020_1002, 0x8028_0000);
        let entries = ENTRIES;
        let c_li = Insn::from_parcels(0x4505, 0).unwrap(); // c.li a0, 1
        let add = insn(0x00b5_0533); // add a0, a0, a1
        let c = code(
            c_li,
            (addr, d),
            (entries, WayIn::Common),
            true,
            0x8040_0008,
            Some(add),
        )
        .unwrap();
        let w = |i: usize| u32::from_le_bytes(c[i..i + 4].try_into().unwrap());
        assert_eq!([w(IRQS_ON_AT), w(IRQS_OFF_AT)], [0x0001_4505; 2]);
        assert_eq!(w(16), 0x1001_6073, "csrsi sstatus, 2 before the second");
        assert_eq!([w(SECOND_AT), w(SECOND_OFF_AT)], [add.raw(); 2]);
        for at in [SECOND_AT + 4, SECOND_OFF_AT + 4] {
            assert_eq!(jal_offset(w(at)), (addr + 6) as i64 - (d + at) as i64);
        }
        // A compressed second instruction is padded too, and the way
        // back is 4 bytes on.
        let c_mv = Insn::from_parcels(0x852e, 0).unwrap(); // c.mv a0, a1
        let c = code(
            c_li,
            (addr, d),
            (entries, WayIn::Common),
            false,
            0,
            Some(c_mv),
        )
        .unwrap();
        let w = |i: usize| u32::from_le_bytes(c[i..i + 4].try_into().unwrap());
        assert_eq!(
            w(IRQS_ON_AT),
            0,
            "a simulated first instruction is not copied"
        );
        assert_eq!([w(SECOND_AT), w(SECOND_OFF_AT)], [0x0001_852e; 2]);
        assert_eq!(
            jal_offset(w(SECOND_AT + 4)),
            (addr + 4) as i64 - (d + SECOND_AT + 4) as i64
        );
    }

    /// A detour made for a function probe enters the light way from its
    /// first word, linking in `t0`; from `D + 12` on it is laid out as any
    /// other (the common path falls back on it).
    #[test]
    fn a_function_probes_detour_links_in_t0_from_its_first_word() {
        let (addr, d, cell) = (0x8020_1000, 0x8028_0000, 0x8040_0008);
        let light = add_detour(addr, d, WayIn::Call, cell);
        let w = |i: usize| u32::from_le_bytes(light[i..i + 4].try_into().unwrap());
        assert_eq!(jal_offset(w(0)), ENTRIES.call as i64 - d as i64);
        assert_eq!(w(0) >> 7 & 31, 5, "links in t0");
        assert_eq!(CALL_RET_OFFSET, 4);
        assert_eq!([w(4), w(8)], [NOP; 2]);
        let common = add_detour(addr, d, WayIn::Common, cell);
        assert_eq!(light[12..], common[12..]);
        let func = add_detour(addr, d, WayIn::Function, cell);
        let f8 = u32::from_le_bytes(func[8..12].try_into().unwrap());
        assert_eq!(jal_offset(f8), ENTRIES.func as i64 - (d as i64 + 8));
        assert_eq!(func[..8], common[..8]);
        // Out of reach of the light entry: no detour.
        let far = Entries {
            call: d + (1 << 20),
            ..ENTRIES
        };
        let add = insn(0x00b5_0533);
        assert!(code(add, (addr, d), (far, WayIn::Call), true, cell, None).is_none());
    }

    /// The light entry's stub keeps `t0` (the detour's link) and jumps
    /// through `t1`.
    #[test]
    fn call_stub_keeps_t0_and_jumps_through_t1() {
        let c = call_stub_code(0x8020_1234);
        let w = |i: usize| u32::from_le_bytes(c[i..i + 4].try_into().unwrap());
        let names: [&str; 4] = core::array::from_fn(|i| decode(insn(w(4 * i))).mnemonic);
        assert_eq!(names, ["auipc", "ld", "jalr", "addi"]);
        for i in 0..3 {
            assert_eq!(w(4 * i) >> 7 & 31, [6, 6, 0][i], "rd of word {i}");
        }
        assert_eq!(w(4) >> 15 & 31, 6, "ld from t1");
        assert_eq!(w(4) >> 20, 16, "ld from auipc + 16 = the literal");
        assert_eq!(w(8) >> 15 & 31, 6, "jr t1");
        assert_eq!(c[16..24], 0x8020_1234u64.to_le_bytes());
    }

    #[test]
    fn entry_stub_saves_t0_and_jumps_through_its_literal() {
        let c = entry_stub_code(0x8020_1234);
        let w = |i: usize| u32::from_le_bytes(c[i..i + 4].try_into().unwrap());
        let names: [&str; 4] = core::array::from_fn(|i| decode(insn(w(4 * i))).mnemonic);
        assert_eq!(names, ["sd", "auipc", "ld", "jalr"]);
        assert_eq!(w(0), 0x0251_3423, "sd t0, 40(sp)");
        assert_eq!(w(8) >> 20, 12, "ld from auipc + 12 = the literal");
        assert_eq!(c[16..24], 0x8020_1234u64.to_le_bytes());
    }

    #[test]
    fn frame_status_looks_like_a_trap() {
        let mut s = SSTATUS_SIE | 1 << 18;
        frame_status(&mut s);
        assert_eq!(s, SSTATUS_SPIE | SSTATUS_SPP | 1 << 18);
        let mut s = SSTATUS_SPIE;
        frame_status(&mut s);
        assert_eq!(s, SSTATUS_SPP);
        let (mut pc, mut st) = (0, SSTATUS_SPIE | SSTATUS_SPP);
        out_of_line(0x1000, &mut pc, &mut st);
        assert_eq!((pc, st), (0x1000 + IRQS_ON_AT, SSTATUS_SPP));
        out_of_line(0x1000, &mut pc, &mut st);
        assert_eq!((pc, st), (0x1000 + IRQS_OFF_AT, SSTATUS_SPP));
        assert_eq!(
            fault_in_copy(IRQS_OFF_AT),
            Some(CopyFault::Probed {
                irqs_were_on: false
            })
        );
        assert_eq!(fault_in_copy(SECOND_OFF_AT), Some(CopyFault::Second));
        assert_eq!(fault_in_copy(STEP_AT), None);
    }
}
