//! Return-probe trampolines.
//!
//! A probed function returns into its own call's entry in the probe's stub
//! (in the slot area): the return address names the call, so the return
//! finds it without a search.
//! ```text
//!  S + 0        auipc t2, 0          t2 = S, which names the probe
//!  S + 4        ld    t1, 16(t2)
//!  S + 8        jr    t1             -> rkprobes_ret_trampoline
//!  S + 12       nop
//!  S + 16       .quad rkprobes_ret_trampoline
//!  S + 24       .quad probe          (the library's `*const Probe`)
//!  S + 32 + 4i  jal   t0, S          the return address of the call in
//!                                    the probe's call slot `i`
//! ```
//! `t0`, `t1` and `t2` are dead at a function return (caller-saved), so the
//! stub may use them. The literal names the trampoline: the light one for
//! a function probe (`on_return`, or no return handler) saves only the
//! return value (`ReturnRegs`), masks interrupts, calls
//! `retprobe::return_hit(&mut ReturnRegs, stub, link) -> real return
//! address` and jumps there with the (possibly edited) return value.
//! The common trampoline saves a full `TrapFrame`, masks
//! interrupts, calls `rkprobes_ret_handler(&mut TrapFrame) -> real return
//! address`, restores the (possibly edited) return value `a0`/`a1` and
//! jumps there: no second trap. The caller's own registers (`gp`, `tp`,
//! `s0`-`s11`) are still live: the handler is Rust code, which keeps
//! them. The ones a call clobbers by the calling convention (`ra`,
//! `t0`-`t6`, `a2`-`a7`) no caller reads after a call.

use alloc::vec::Vec;

/// Bytes before the calls' entries.
const HEADER: usize = 32;
const PROBE_PTR_OFFSET: usize = 24;

const AUIPC_T2_0: u32 = 0x0000_0397;
const LD_T1_16_T2: u32 = 0x0103_b303;
const JR_T1: u32 = 0x0003_0067;
const NOP: u32 = 0x0000_0013;

/// Bytes of the stub of a probe with `calls` call slots.
pub fn ret_stub_size(calls: usize) -> usize {
    HEADER + 4 * calls
}

/// The stub's bytes for the probe at `probe`, written at `stub`, with
/// `calls` call slots; `light`: it returns through the light trampoline.
pub fn ret_stub_code(stub: usize, probe: usize, calls: usize, light: bool) -> Vec<u8> {
    const _: () = assert!(
        PROBE_PTR_OFFSET == 4 * 4 + 8,
        "after the trampoline's address"
    );
    let (common, call) = trampolines();
    let trampoline = if light { call } else { common };
    let mut code = super::insn::code_bytes::<HEADER>(
        &[AUIPC_T2_0, LD_T1_16_T2, JR_T1, NOP],
        &[trampoline as u64, probe as u64],
    )
    .to_vec();
    for i in 0..calls {
        let at = call_entry(stub, i);
        let jal = super::detour::jal(5, at, stub).expect("a stub's entries reach its start");
        code.extend_from_slice(&jal.to_le_bytes());
    }
    code
}

/// Where the call in slot `i` of the probe whose stub is at `stub`
/// returns to.
#[inline(always)]
pub fn call_entry(stub: usize, i: usize) -> usize {
    stub + HEADER + 4 * i
}

/// The call slot a return came from: `link` is `t0` as the entry's `jal`
/// left it (the entry + 4), `stub` is `t2`.
#[inline(always)]
pub fn call_index(stub: usize, link: usize) -> usize {
    link.wrapping_sub(stub + HEADER + 4) / 4
}

/// The probe a stub names. `stub` must be a stub written by `ret_stub_code`.
#[inline(always)]
pub fn stub_probe(stub: usize) -> usize {
    // SAFETY: the caller passes the address of a live stub (the trampoline
    // got it from `auipc` in that stub); its probe word is 8-byte aligned.
    unsafe { ((stub + PROBE_PTR_OFFSET) as *const usize).read_volatile() }
}

/// The register that holds the stub address when the trampoline runs.
pub const STUB_REG: usize = 7; // t2
/// The register that holds the call's entry + 4 (`call_index`).
pub const LINK_REG: usize = 5; // t0

#[cfg(target_arch = "riscv64")]
core::arch::global_asm!(
    r#"
    .pushsection .text.rkprobes.trampoline, "ax", @progbits
    .globl rkprobes_ret_trampoline
    .type rkprobes_ret_trampoline, @function
    .p2align 2
rkprobes_ret_trampoline:
    addi    sp, sp, -288
    sd      x1, 1*8(sp)
    .irp i, 3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    sd      x\i, \i*8(sp)
    .endr
    addi    t1, sp, 288
    sd      t1, 2*8(sp)
    sd      t0, 32*8(sp)
    /* The handler runs with interrupts masked: it uses per-hart state. */
    csrrci  t1, sstatus, 2
    sd      t1, 33*8(sp)
    mv      a0, sp
    /* Relaxable: the linker makes it one `jal` when the target is near. */
    .option push
    .option relax
    call    rkprobes_ret_handler
    .option pop
    mv      t0, a0
    ld      t1, 33*8(sp)
    andi    t1, t1, 2
    csrs    sstatus, t1
    /* x5 (t0) holds the target. The return value comes back from the
       frame, a handler's change included; gp, tp and s0-s11 are live
       (kept by the Rust code); the rest (ra, t0-t6, a2-a7) a call
       clobbers by the calling convention, so no caller reads it. */
    ld      a0, 10*8(sp)
    ld      a1, 11*8(sp)
    addi    sp, sp, 288
    jr      t0
    .size rkprobes_ret_trampoline, . - rkprobes_ret_trampoline

    .globl rkprobes_ret_call_trampoline
    .type rkprobes_ret_call_trampoline, @function
    .p2align 2
rkprobes_ret_call_trampoline:
    /* `ReturnRegs` (a0, a1, sp, pc) and sstatus; a2-a7 are free here. */
    addi    sp, sp, -48
    sd      a0, 0(sp)
    sd      a1, 8(sp)
    addi    a0, sp, 48
    sd      a0, {sp_at}(sp)
    csrrci  a0, sstatus, 2
    sd      a0, 32(sp)
    mv      a0, sp
    mv      a1, t2
    mv      a2, t0
    /* retprobe::return_hit, made for the OS's type at `init`. */
    ld      t1, RKPROBES_RETURN_HIT
    jalr    t1
    mv      t0, a0
    ld      t1, 32(sp)
    andi    t1, t1, 2
    csrs    sstatus, t1
    ld      a0, 0(sp)
    ld      a1, 8(sp)
    addi    sp, sp, 48
    jr      t0
    .size rkprobes_ret_call_trampoline, . - rkprobes_ret_call_trampoline
    .popsection
"#,
    sp_at = const super::frame::RETURN_REGS_SP,
);

/// Addresses of the common and the light trampoline (0 on hosts, where
/// they are not built).
pub fn trampolines() -> (usize, usize) {
    #[cfg(target_arch = "riscv64")]
    {
        extern "C" {
            fn rkprobes_ret_trampoline();
            fn rkprobes_ret_call_trampoline();
        }
        (
            rkprobes_ret_trampoline as *const () as usize,
            rkprobes_ret_call_trampoline as *const () as usize,
        )
    }
    #[cfg(not(target_arch = "riscv64"))]
    {
        (0, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::riscv::decode::{decode, Action};
    use crate::arch::riscv::insn::Insn;
    use crate::arch::riscv::simulate::SimOp;

    #[test]
    fn stub_decodes_as_intended() {
        let stub = 0x8030_0000;
        let code = ret_stub_code(stub, 0x1234_5678, 3, false);
        assert_eq!(code.len(), ret_stub_size(3));
        let insn = |at: usize| decode(Insn::from_bytes(&code[at..]).unwrap());
        let names: std::vec::Vec<_> = (0..4).map(|i| insn(i * 4).mnemonic).collect();
        assert_eq!(names, ["auipc", "ld", "jalr", "addi"]);
        assert!(matches!(insn(4).action, Action::OutOfLine));
        assert_eq!(
            u64::from_le_bytes(code[24..32].try_into().unwrap()),
            0x1234_5678
        );
        // Each call's entry links in t0 and jumps back to the start, and
        // the link names its slot.
        for i in 0..3 {
            let at = call_entry(stub, i);
            let raw = u32::from_le_bytes(code[at - stub..at - stub + 4].try_into().unwrap());
            assert_eq!(raw >> 7 & 31, LINK_REG as u32);
            match insn(at - stub).action {
                Action::Simulate(SimOp::Jal { offset, .. }) => {
                    assert_eq!(at as i64 + offset, stub as i64)
                }
                other => panic!("slot {i}: {other:?}"),
            }
            assert_eq!(call_index(stub, at + 4), i);
        }
    }
}
